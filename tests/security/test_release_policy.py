"""Every route by which a release policy smuggled data out (issue 14, item 1) is refused by both
`linkage audit` and `linkage release`, with the file, line and key, and nothing is written.

The policy is a closed vocabulary (config/release.py): names must be vocabulary entries, `where`
values one of a dimension's closed values, and values reach DuckDB only as bound parameters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage.config.loader import parse_config
from linkage.config.release import ReleasePolicy
from linkage.errors import ConfigError
from linkage.release.tables import DisclosureRefused, Params, column
from linkage.release.vocabulary import DIMENSIONS

BIT = (
    "x' OR (SELECT (sn >> 3) & 1 FROM read_parquet('{extracts}/police.parquet') "
    "WHERE source_row = 1) = 1 AND 'a'='a"
)
SYSTEM_FILE = "x' OR (SELECT ascii(content[1]) FROM read_text('/etc/passwd')) = 114 OR 'a'='b"


def policy_text(table: dict) -> str:
    """A one-table policy: the attack goes into the table's keys or values."""
    base = {"title": "attack", "measures": ["recorded"], "where": {"police_record": "Yes"}}
    return yaml.safe_dump(
        {"policy_version": 1, "title": "t", "tables": [{"name": "t", **base, **table}]}, sort_keys=False
    )


ATTACKS = {
    # (table fields, the key the error must name)
    "bit-exfiltration-where-value": ({"where": {"police_record": "Yes", "da_flag": BIT}}, "tables.0.where"),
    "system-file-where-value": (
        {"where": {"police_record": "Yes", "ethnicity": SYSTEM_FILE}},
        "tables.0.where",
    ),
    "population-redefined": (
        {"where": {"police_record": "Yes", "da_flag": "DA' OR 'x'='x"}},
        "tables.0.where",
    ),
    "pattern-value-with-quote": (
        {"where": {"police_record": "Yes", "force_area": "E23000001' OR '1'='1"}},
        "tables.0.where",
    ),
    "where-key-is-sql": (
        {"where": {"police_record": "Yes", "da_flag = 'DA' OR true --": "Yes"}},
        "tables.0.where",
    ),
    "group-by-sql": ({"by": ["da_flag, person_id"]}, "tables.0.by"),
    "group-by-column": ({"by": ["suspect_sex", "recorded_date"]}, "tables.0.by"),
    "column-name-subquery": ({"measures": ["recorded) FROM rv; SELECT (1"]}, "tables.0.measures"),
    "statistic-cast": ({"statistics": ["custody_days)::DOUBLE, (SELECT 1"]}, "tables.0.statistics"),
    "table-name-path": ({"name": "../../../tmp/escape"}, "tables.0.name"),
    "table-name-absolute": ({"name": "/etc/cron.d/x"}, "tables.0.name"),
    "label-control-characters": ({"title": "fine\u2028injected log line"}, "tables.0.title"),
    "label-escape-sequence": ({"title": "\x1b[2Jcleared"}, "tables.0.title"),
    "non-string-value": ({"where": {"police_record": True}}, "tables.0.where"),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_audit_and_release_refuse_each_route(attack, linked_run, tmp_path, run_cli, run_log):  # noqa: F811
    fields, key = ATTACKS[attack]
    fields = json.loads(json.dumps(fields).replace("{extracts}", str(linked_run.extracts)))
    policy = write(tmp_path, policy_text(fields))

    audit = run_cli("audit", policy, "--json")
    assert audit.exit_code == 1
    report, _ = json.JSONDecoder().raw_decode(audit.stdout)  # (a failing --json prints a 2nd document)
    (finding,) = report["findings"]
    assert finding["code"] == "AUD001" and finding["severity"] == "high"
    assert f"field '{key}" in finding["reason"] and re.search(r"line \d+", finding["reason"])

    out = tmp_path / "out" / "r1"
    release = run_cli("release", "--run", linked_run.run, "--policy", policy, "--out", out)
    assert release.exit_code == 2
    assert str(policy) in release.stderr and f"field '{key}" in release.stderr
    assert re.search(r"line \d+", release.stderr)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # nothing written
    entry = json.loads(run_log.read_text().splitlines()[-1])
    assert entry["command"] == "release" and entry["outcome"] == "usage-error" and entry["outputs"] == []


def test_yaml_tags_cannot_build_objects(tmp_path):
    text = policy_text({}).replace("title: attack", "title: !!python/object/apply:os.system ['true']")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config(text, ReleasePolicy, tmp_path / "p.yaml")


def test_a_name_outside_the_vocabulary_never_becomes_a_column_even_past_the_model():
    with pytest.raises(DisclosureRefused):
        column("dim", "da_flag FROM rv; --")
    assert column("dim", "da_flag") == "dim_da_flag"


def test_policy_values_reach_duckdb_only_as_parameters():
    params = Params()
    sql = params.where({"da_flag": "DA", "force_area": "E23000001"})
    assert sql == "dim_da_flag = $p0 AND dim_force_area = $p1"
    assert params.values == {"p0": "DA", "p1": "E23000001"}


@settings(max_examples=300, deadline=None)
@given(dimension=st.sampled_from(sorted(DIMENSIONS)), value=st.text(max_size=40))
def test_any_accepted_where_value_is_a_closed_value(tmp_path_factory, dimension, value):
    """Property: the model accepts a value only if it is one of the dimension's closed values (or a
    full match of its code pattern, which admits no quote, semicolon or bracket)."""
    where = {"police_record": "Yes", dimension: value} if dimension != "police_record" else {dimension: value}
    text = policy_text({"where": where, "by": []})
    try:
        policy = parse_config(text, ReleasePolicy, Path("p.yaml"))
    except ConfigError:
        return
    accepted = policy.tables[0].where[dimension]
    dim = DIMENSIONS[dimension]
    assert accepted in dim.values or (dim.pattern and re.fullmatch(dim.pattern, accepted))
    assert not set(accepted) & set("'\";()\\")
