"""Issue 14, item 7: the audit finds identifiers however they are declared.

The adversarial pass declared postcodes and surnames as a `category` and passed a date of birth as an
integer column named `born`: each audited clean (exit 0, even with `--sample`) and then left the agency
in the clear. Each must now be a high finding, with and without a sample, and never quoted.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import POLICE_HEADER, POLICE_ROWS, write_csv
from linkage.audit.detect import NAMES, value_kinds
from linkage.audit.review import run_audit
from test_audit import add_attribute, audit_json, codes, police

# The ten most common surnames in England and Wales (ONS), and postcodes of public buildings.
SURNAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
]
POSTCODES = ["SW1A 1AA", "SW1A 2AA", "EH99 1SP", "CF99 1SN", "BT4 3XX", "M1 1AE"]
DOBS = ["19710305", "19851231", "19900717"]  # the dates of birth of POLICE_ROWS, as integers


def _sample(tmp_path, column: str, values: list[str]):
    rows = [[*POLICE_ROWS[i % len(POLICE_ROWS)], v] for i, v in enumerate(values)]
    return write_csv(tmp_path / "police.csv", [*POLICE_HEADER, column], rows)


CASES = {
    "category of postcodes": ({"column": "area", "type": "category", "values": POSTCODES}, POSTCODES),
    "category of surnames": ({"column": "group", "type": "category", "values": SURNAMES}, SURNAMES),
    "category mapping codes to surnames": (
        {"column": "group", "type": "category", "map": {f"G{i}": s for i, s in enumerate(SURNAMES)}},
        [f"G{i}" for i in range(len(SURNAMES))],
    ),
    "date of birth as integer named born": ({"column": "born", "type": "integer"}, DOBS),
}


@pytest.mark.parametrize("case", CASES)
def test_identifiers_declared_as_attributes_are_high_without_a_sample(tmp_path, run_cli, case):
    attr, _ = CASES[case]
    config = police(tmp_path, add_attribute(attr))
    code, report = audit_json(run_cli, config)
    assert code == 1, report["findings"]
    assert {f["code"] for f in report["findings"]} & {"AUD101", "AUD108"}
    assert all(f["severity"] == "high" for f in report["findings"])


@pytest.mark.parametrize("case", CASES)
def test_identifiers_declared_as_attributes_are_high_with_a_sample_and_never_quoted(tmp_path, run_cli, case):
    attr, values = CASES[case]
    config = police(tmp_path, add_attribute(attr))
    sample = _sample(tmp_path, attr["column"], values)
    code, report = audit_json(run_cli, config, "--sample", f"police={sample}")
    assert code == 1
    sampled = [f for f in report["findings"] if f["code"] == "AUD104"]
    assert sampled and sampled[0]["severity"] == "high"
    text = run_cli("audit", config, "--sample", f"police={sample}")
    for value in values:  # the review shows what the config lists, the findings quote no value
        assert value not in json.dumps(report["findings"])
    for value in ["Featherstonehaugh", "05/03/1971", *DOBS]:  # in the sample only
        assert value not in text.stdout + text.stderr + json.dumps(report)


def test_integer_date_of_birth_under_an_innocent_name_is_found_by_its_values(tmp_path):
    config = police(tmp_path, add_attribute({"column": "x7", "type": "integer"}))
    assert run_audit([config]).exit_code == 0  # nothing in the name gives it away ...
    report = run_audit([config], {"police": _sample(tmp_path, "x7", DOBS)})
    assert (
        codes(report) == {"AUD104"} and "3 look like dates" in report.findings[0].reason
    )  # ... the values do


def test_parquet_sample_with_an_integer_column(tmp_path):
    def change(data: dict) -> None:
        data["input"] = {"format": "parquet"}
        data["attributes"].append({"column": "x7", "type": "integer"})

    columns = {h: [r[i] for r in POLICE_ROWS] for i, h in enumerate(POLICE_HEADER)}
    pq.write_table(pa.table({**columns, "x7": [int(d) for d in DOBS]}), tmp_path / "police.parquet")
    report = run_audit([police(tmp_path, change)], {"police": tmp_path / "police.parquet"})
    assert codes(report) == {"AUD104"}, [f.reason for f in report.findings]


def test_a_category_named_like_an_identifier_is_flagged(tmp_path):
    attr = {"column": "suspect_surname", "type": "category", "values": ["A", "B"]}
    assert "AUD101" in codes(run_audit([police(tmp_path, add_attribute(attr))]))


def test_ordinary_categories_are_not_names(tmp_path):
    """Labels that happen to be surnames (White, Green) do not make a column of names."""
    labels = ["White", "Black", "Green", "Mixed", "Asian", "Other", "Partner", "Ex-partner", "Family member"]
    assert NAMES not in value_kinds(labels)
    attr = {"column": "colour", "type": "category", "values": labels}
    assert run_audit([police(tmp_path, add_attribute(attr))]).exit_code == 0


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)))
def test_every_date_written_as_an_integer_is_seen_as_a_date(d):
    assert value_kinds([d.strftime("%Y%m%d")]).get("dates") == 1
    assert value_kinds([d.strftime("%d%m%Y")]).get("dates") == 1


@given(st.integers(min_value=0, max_value=36500))
def test_counts_and_durations_are_not_dates(n):
    assert "dates" not in value_kinds([str(n)])


def test_sentence_lengths_are_not_flagged(tmp_path):
    attr = {"column": "sentence_days", "type": "integer", "min": 0, "max": 36500}
    lengths = [str(int(timedelta(days=d).days)) for d in (30, 180, 365)]
    report = run_audit(
        [police(tmp_path, add_attribute(attr))], {"police": _sample(tmp_path, "sentence_days", lengths)}
    )
    assert report.exit_code == 0, [f.reason for f in report.findings]


def test_date_of_birth_declared_as_a_date_attribute_is_found_by_its_values(tmp_path):
    """`dob` under an innocent name, declared `date`: its dates lie decades before the events."""
    attr = {"column": "d1", "type": "date", "formats": ["%d/%m/%Y"]}
    config = police(tmp_path, add_attribute(attr))
    dobs = [row[POLICE_HEADER.index("dob")] for row in POLICE_ROWS]
    report = run_audit([config], {"police": _sample(tmp_path, "d1", dobs)})
    assert codes(report) == {"AUD104"} and "3 look like dates of birth" in report.findings[0].reason
    events = [row[POLICE_HEADER.index("offence_date")] for row in POLICE_ROWS]
    assert run_audit([config], {"police": _sample(tmp_path, "d1", events)}).exit_code == 0
