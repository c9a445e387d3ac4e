"""Victims as linked people (issue 15): synthetic truth, the police config's victims, the release tables
of victims and perpetrators built from the TRUE clusters and checked cell by cell against counts
computed here from the synthetic truth (and what the police recorded), and victim-mention linkage.

The expected counts restate each definition in Python (docs/release-guide.md), never the release SQL.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conftest import CONFIGS, ROOT
from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage.config import load_config
from linkage.config.agency import AgencyConfig
from linkage.config.release import TableSpec
from linkage.release.tables import ALL
from test_release_tables import cube, truth_cases  # noqa: F401 (fixture)

POLICY = ROOT / "configs" / "release.yaml"
NOT_KNOWN = "Not known"
VICTIM_TABLES = (
    "victims_by_sex",
    "victims_by_age_band",
    "victims_by_ethnicity",
    "victims_by_force",
    "perpetrators_multiple_victims",
)
SEX = {"M": "Male", "F": "Female", "X": "Other"}


# --- synthetic truth ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def truth_dir(linked_run) -> Path:  # noqa: F811
    return linked_run.raw / "truth"


def test_synth_victims_have_the_shapes_the_tables_need(truth_dir):
    """Repeat victims (some within 12 months), perpetrators with several victims, victims with several
    perpetrators, people in both roles, crimes with several victims, children counts for DA crimes."""
    v = pq.read_table(truth_dir / "victims.parquet").to_pylist()
    da = [r for r in v if r["da_flag"]]
    crimes_of: dict[int, list] = defaultdict(list)
    for r in da:
        crimes_of[r["person_id"]].append(r["recorded_date"])
    repeat = [p for p, days in crimes_of.items() if len(set(days)) >= 2 or len(days) >= 2]
    within = [
        p
        for p, days in crimes_of.items()
        if any(abs((a - b).days) <= 365 for a, b in itertools.combinations(days, 2))
    ]
    assert len(repeat) >= 20 and len(within) >= 10
    victims_of = defaultdict(set)
    perps_of = defaultdict(set)
    for r in da:
        victims_of[r["suspect_person_id"]].add(r["person_id"])
        perps_of[r["person_id"]].add(r["suspect_person_id"])
    assert sum(len(s) >= 2 for s in victims_of.values()) >= 20
    assert sum(len(s) >= 2 for s in perps_of.values()) >= 1
    suspects = {r["person_id"] for r in pq.read_table(truth_dir / "persons.parquet").to_pylist()}
    both = {r["person_id"] for r in v} & suspects
    assert len(both) >= 10 and all(r["victim_is_suspect"] == (r["person_id"] in suspects) for r in v)
    # counter-allegations: two people each the other's DA victim
    pairs = {(r["suspect_person_id"], r["person_id"]) for r in da}
    assert any((b, a) in pairs for a, b in pairs)
    assert all(r["suspect_person_id"] != r["person_id"] for r in v)  # nobody is their own victim
    per_case = Counter(r["case_id"] for r in v)
    assert max(per_case.values()) == 3 and Counter(per_case.values())[2] > 0
    assert all(r["children_in_household"] is not None for r in da)
    assert all(r["children_in_household"] is None for r in v if not r["da_flag"])
    assert {r["sex"] for r in da} == {"M", "F"}
    # every victim mention is a truth record of its own, with the victim's person id
    rec = duckdb.sql(f"""
        SELECT count(*) FROM read_parquet('{truth_dir / "records.parquet"}') r
        JOIN read_parquet('{truth_dir / "victims.parquet"}') t
          ON r.role = 'victim' AND r.case_id = t.case_id AND r.victim_index = t.victim_index
         AND r.person_id = t.person_id""").fetchall()[0][0]
    assert rec == len(v)


def test_synth_victims_are_deterministic_for_a_seed(tmp_path):
    from linkage.synth import generate

    for d in ("a", "b"):
        generate(200, 9, tmp_path / d)
    for f in ("police.csv", "truth/victims.parquet", "truth/records.parquet"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


# --- the police config's victims ---------------------------------------------------------------------


def _police_spec() -> dict:
    return yaml.safe_load((CONFIGS / "police.yaml").read_text(encoding="utf-8"))


def test_shipped_police_config_names_three_victims_with_their_own_ethnicity():
    config = load_config(CONFIGS / "police.yaml", AgencyConfig)
    assert len(config.victims) == 3
    assert [a.out_name for v in config.victims for a in v.attributes] == ["ethnicity"] * 3
    shared = {a.out_name for a in config.attributes if a.victim}
    assert {"force_area", "recorded_date", "da_flag", "children_in_household"} <= shared


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ({"column": "v1_eth", "name": "ethnicity", "type": "code"}, "differs"),
        ({"column": "v1_eth", "name": "sn", "type": "code"}, "reserved"),
        ({"column": "victim1_surname", "name": "x", "type": "code"}, "identifier"),
        ({"column": "v1_eth", "name": "x", "type": "code", "victim": True}, "victim: true"),
    ],
)
def test_a_victims_own_attribute_is_checked(attribute, message):
    spec = _police_spec()
    spec["victims"][0]["attributes"] = [attribute]
    with pytest.raises(ValidationError, match=message):
        AgencyConfig.model_validate(spec)


def test_victim_mentions_carry_their_own_attributes_and_no_plaintext(linked_run):  # noqa: F811
    """A victim mention row holds the victim's own sex, age band and ethnicity (not the suspect's), the
    crime's shared attributes, and tokens only: no victim name, date of birth or postcode."""
    raw, extracts = linked_run.raw, linked_run.extracts
    with open(raw / "police.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    extract = pq.read_table(extracts / "police.parquet")
    values = {str(v) for col in extract.columns for v in col.to_pylist()}
    manifest = (extracts / "police.manifest.json").read_text(encoding="utf-8")
    needles = set()
    for r in rows:
        for i in (1, 2, 3):
            for c in ("surname", "forename", "dob", "postcode"):
                value = r[f"victim{i}_{c}"].strip()
                if len(value) >= 5:
                    needles.add(value)
    categories = {"White", "Black", "Asian", "Mixed", "Other", "Female", "Male"}
    needles -= categories
    assert len(needles) > 500
    assert not needles & values
    assert not any(n in manifest for n in needles)
    # the victim's own ethnicity and sex, from victim i's columns
    groups = {"W": "White", "B": "Black", "A": "Asian", "M": "Mixed", "O": "Other"}
    got = {
        (r["source_row"], r["victim_index"]): (r["ethnicity"], r["sex"])
        for r in extract.to_pylist()
        if r["role"] == "victim"
    }
    checked = 0
    for n, r in enumerate(rows, start=1):
        for i in (1, 2, 3):
            if (n, i) not in got:
                continue
            code, gender = r[f"victim{i}_ethnicity_code"], r[f"victim{i}_gender"]
            want = (groups.get(code[:1]) if code != "NS" else None, {"Male": "M", "Female": "F"}.get(gender))
            assert got[(n, i)] == want, (n, i)
            checked += 1
    assert checked > 1000


# --- release tables from the true clusters -----------------------------------------------------------


@pytest.fixture(scope="module")
def people(linked_run, truth_dir) -> tuple[list[dict], list[dict]]:  # noqa: F811
    """DA victims and DA perpetrators as the tables define them, from truth + what the police recorded."""
    cases = {c["case_id"]: c for c in truth_cases(truth_dir, linked_run.extracts)}
    con = duckdb.connect()
    # each victim mention: true case and person; the victim's recorded sex / age band / ethnicity and
    # the mention's record key (the tie-break of "first DA crime") from the extract
    mentions = con.execute(f"""
        SELECT r.case_id, r.person_id, e.record_key, e.sex, e.age_band, e.ethnicity, e.victim_index
        FROM read_parquet('{truth_dir / "records.parquet"}') r
        JOIN read_parquet('{linked_run.extracts / "police.parquet"}') e
          ON r.source_dataset = 'police' AND e.source_row = r.source_row AND r.role = 'victim'
         AND e.role = 'victim' AND e.victim_index = r.victim_index
        ORDER BY r.case_id, e.victim_index""").fetchall()
    subject_key = dict(
        con.execute(f"""
        SELECT r.case_id, e.record_key FROM read_parquet('{truth_dir / "records.parquet"}') r
        JOIN read_parquet('{linked_run.extracts / "police.parquet"}') e
          ON r.source_dataset = 'police' AND e.source_row = r.source_row AND r.role = 'subject'
         AND e.role = 'subject'""").fetchall()
    )
    true = {r["case_id"]: r for r in pq.read_table(truth_dir / "journeys.parquet").to_pylist()}
    children = {
        r["case_id"]: r["children_in_household"]
        for r in pq.read_table(truth_dir / "victims.parquet").to_pylist()
    }
    by_victim: dict[int, dict[int, tuple]] = defaultdict(dict)  # victim -> case -> first mention
    for case_id, person, key, sex, band, eth, _ in mentions:
        if cases[case_id]["dims"]["da_flag"] != "DA":
            continue
        by_victim[person].setdefault(case_id, (key, sex, band, eth))
    victims = []
    for crimes in by_victim.values():
        seq = sorted(crimes, key=lambda c: (true[c]["recorded_date"], crimes[c][0]))

        def first(i: int, crimes=crimes, seq=seq):
            return next((crimes[c][i] for c in seq if crimes[c][i] is not None), None)

        days = sorted(true[c]["recorded_date"] for c in crimes)
        kids = [children[c] for c in crimes if children.get(c) is not None]
        victims.append(
            {
                "force_area": true[seq[0]]["force_area"] or NOT_KNOWN,
                "victim_person_sex": SEX.get(first(1), NOT_KNOWN),
                "victim_age_band": first(2) or NOT_KNOWN,
                "victim_ethnicity": first(3) or NOT_KNOWN,
                "victim_children": ("Yes" if any(k >= 1 for k in kids) else "No") if kids else NOT_KNOWN,
                "repeat_victim_12m": "Yes"
                if any((b - a).days <= 365 for a, b in itertools.pairwise(days))
                else "No",
            }
        )
    by_perp: dict[int, dict[int, set]] = defaultdict(lambda: defaultdict(set))
    for case_id, person, *_ in mentions:
        if cases[case_id]["dims"]["da_flag"] == "DA":
            by_perp[true[case_id]["person_id"]][case_id].add(person)
    perpetrators = []
    for crimes in by_perp.values():
        seq = sorted(crimes, key=lambda c: (true[c]["recorded_date"], subject_key[c]))
        sex = next(
            (cases[c]["dims"]["suspect_sex"] for c in seq if cases[c]["dims"]["suspect_sex"] != NOT_KNOWN),
            NOT_KNOWN,
        )
        perpetrators.append(
            {
                "force_area": true[seq[0]]["force_area"] or NOT_KNOWN,
                "perpetrator_sex": sex,
                "perpetrator_victims": "Yes" if len(set().union(*crimes.values())) >= 2 else "No",
            }
        )
    return victims, perpetrators


MEASURE_TEST = {
    "victims": lambda p: True,
    "victims_with_children": lambda p: p["victim_children"] == "Yes",
    "repeat_victims_12m": lambda p: p["repeat_victim_12m"] == "Yes",
    "perpetrators": lambda p: True,
    "perpetrators_2plus_victims": lambda p: p["perpetrator_victims"] == "Yes",
}


def _expected(rows: list[dict], spec: TableSpec) -> Counter:
    counts: Counter = Counter()
    for p in rows:
        for combo in itertools.product(*[(p[d], ALL) for d in spec.by]):
            for m in spec.measures:
                counts[(combo, m)] += MEASURE_TEST[m](p)
    return counts


@pytest.mark.parametrize("name", VICTIM_TABLES)
def test_every_victim_table_cell_before_disclosure_control_equals_the_truth(cube, people, name):  # noqa: F811
    table = next(t for t in cube.tables if t.spec.name == name)
    victims, perpetrators = people
    rows = perpetrators if name.startswith("perpetrators") else victims
    counts = _expected(rows, table.spec)
    checked = 0
    for row in table.rows:
        combo = tuple(row.labels[d] for d in table.spec.by)
        for m, key in row.keys.items():
            assert cube.counts[key].n == counts[(combo, m)], (name, combo, m)
            checked += counts[(combo, m)] > 0
    shown = {tuple(r.labels[d] for d in table.spec.by) for r in table.rows}
    assert {combo for combo, _ in counts} <= shown
    assert checked >= 3


def test_victim_tables_count_people_not_journeys(cube, people):  # noqa: F811
    """A repeat victim is one person: the total of DA victims is below their DA victimisations."""
    victims, perpetrators = people
    total = next(t for t in cube.tables if t.spec.name == "victims_by_sex")
    all_row = next(r for r in total.rows if r.labels["victim_person_sex"] == ALL)
    assert cube.counts[all_row.keys["victims"]].n == len(victims)
    assert cube.counts[all_row.keys["repeat_victims_12m"]].n > 0
    assert any(p["perpetrator_victims"] == "Yes" for p in perpetrators)


def test_a_table_cannot_mix_journeys_and_people():
    with pytest.raises(ValidationError, match="different units"):
        TableSpec(name="x", title="x", measures=["recorded", "victims"])
    with pytest.raises(ValidationError, match="do not apply to victims"):
        TableSpec(name="x", title="x", measures=["victims"], by=["suspect_sex"])
    with pytest.raises(ValidationError, match="do not apply to journeys"):
        TableSpec(name="x", title="x", measures=["recorded"], by=["victim_age_band"])


# --- victim mentions through the transformer (property) ----------------------------------------------

_NAME = st.sampled_from(["", "N/K", "Ann", "Bob", "Zoë", "O'Neil", "  ", "Smith-Jones"])
_DOB = st.sampled_from(["", "31/02/1990", "05/03/1971", "01/01/1900", "12/13/1980", "N/K", "29/02/2004"])
_ETH = st.sampled_from(["", "W1", "B2", "NS", "A3", "ZZ"])
_VICTIM = st.tuples(_NAME, _NAME, _DOB, st.sampled_from(["", "Male", "Female", "Unknown"]), _ETH)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_VICTIM, min_size=3, max_size=3), min_size=1, max_size=6))
def test_victim_mentions_follow_the_usable_identifier_rule(keys, rows):
    """Whatever victims a crime row names: a mention exists exactly for each victim with two of surname,
    forename and a valid date of birth; it points at its row, holds its own position, sex, ethnicity and
    age band (from its own DOB), and the subject row is never lost because of its victims."""
    from conftest import POLICE_HEADER, POLICE_ROWS
    from linkage.extract.transform import BatchTransformer

    config = load_config(CONFIGS / "police.yaml", AgencyConfig)
    subject = dict(zip(POLICE_HEADER, POLICE_ROWS[0], strict=True))
    table: dict[str, list[str]] = {c: [] for c in config.source_columns()}
    for n, victims in enumerate(rows):
        record = subject | {"crime_ref": f"CR{n}"}
        for i, (fore, sur, dob, gender, eth) in enumerate(victims, start=1):
            record |= {
                f"victim{i}_forename": fore,
                f"victim{i}_surname": sur,
                f"victim{i}_dob": dob,
                f"victim{i}_gender": gender,
                f"victim{i}_ethnicity_code": eth,
            }
        for c in table:
            table[c].append(record[c])
    result = BatchTransformer(config, keys.project.subkeys()).transform(
        {c: pa.array(v, pa.string()) for c, v in table.items()}, list(range(1, len(rows) + 1))
    )
    out = result.batch.to_pylist()
    subjects = [r for r in out if r["role"] == "subject"]
    assert len(subjects) == len(rows) and not result.rejects  # victims never cost the subject its row
    key_of = {r["source_row"]: r["record_key"] for r in subjects}
    # 12/13/1980 is valid only day/month-swapped (13 Dec 1980): kept as weak evidence, and it counts
    valid_dob = {"05/03/1971": "45-54", "01/01/1900": "65+", "29/02/2004": "under 18", "12/13/1980": "35-44"}
    groups = {"W1": "White", "B2": "Black", "A3": "Asian"}
    want, got = set(), set()
    for n, victims in enumerate(rows, start=1):
        for i, (fore, sur, dob, gender, eth) in enumerate(victims, start=1):
            present = [v.strip() not in ("", "N/K") for v in (fore, sur)] + [dob in valid_dob]
            if sum(present) >= 2:
                band = valid_dob.get(dob)
                sex = {"Male": "M", "Female": "F"}.get(gender)
                want.add((n, i, key_of[n], sex, groups.get(eth), band))
    for r in out:
        if r["role"] == "victim":
            got.add(
                (r["source_row"], r["victim_index"], r["mention_of"], r["sex"], r["ethnicity"], r["age_band"])
            )
    assert got == want
    assert result.victim_rows == len(want)


def test_victims_of_different_chunks_are_different_people(tmp_path):
    """Victim-only persons are made per chunk of suspects: their ids must not repeat across chunks (a
    shared id would make two people one in the truth)."""
    from linkage.synth.generate import generate_from
    from linkage.synth.params import SynthParams

    generate_from(SynthParams(persons=300, seed=4, chunk_persons=100), tmp_path)
    v = pq.read_table(tmp_path / "truth" / "victims.parquet").to_pylist()
    by_person = defaultdict(set)
    for r in v:
        if not r["victim_is_suspect"]:
            by_person[r["person_id"]].add((r["sex"], r["date_of_birth"], (r["suspect_person_id"] - 1) // 100))
    chunks = {p // 10**9 for p in by_person}
    assert chunks == {1, 2, 3}
    # one person, one chunk: every victim's crimes come from suspects of its own chunk
    assert all(len({c for _, _, c in facts}) == 1 for facts in by_person.values())


def test_victims_file_is_part_of_the_journeys_stage_and_a_changed_one_is_refused(linked_run, tmp_path):  # noqa: F811
    """victims.parquet is hashed in journeys.complete.json: the release refuses a run whose victims file
    was edited (e.g. victims merged by hand), as it refuses an edited journeys.parquet."""
    import json
    import shutil

    from linkage.errors import VerificationError
    from linkage.runfolder import open_run

    marker = json.loads((linked_run.run / "journeys.complete.json").read_text())
    assert "victims.parquet" in marker["outputs"]
    copy = tmp_path / linked_run.run.name
    shutil.copytree(linked_run.run, copy)
    open_run(copy, require=("journeys",))  # the copy itself is accepted
    table = pq.read_table(copy / "victims.parquet")
    pq.write_table(table.slice(1), copy / "victims.parquet")
    with pytest.raises(VerificationError, match=r"victims\.parquet"):
        open_run(copy, require=("journeys",))
