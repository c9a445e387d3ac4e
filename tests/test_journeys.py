"""Journey assembly on perfect-linkage synthetic data, measured against truth/journeys.parquet."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from fixtures_journeys import linked_run, perfect_run  # noqa: F401 (fixture)
from linkage.config import load_config
from linkage.errors import VerificationError
from linkage.evaluate import evaluate
from linkage.journeys.assemble import AGENCIES, STAGE_KEYS
from linkage.journeys.build import build_journeys
from linkage.runfolder import open_run
from linkage.tokens.spec import TOKEN_COLUMN_NAMES


def test_every_true_journey_reconstructed_with_perfect_linkage(linked_run):  # noqa: F811
    report = evaluate(linked_run.run, linked_run.raw / "truth").journeys
    assert report is not None
    assert report.true_journeys == report.predicted_journeys
    assert report.exact_rate == 1.0
    assert set(report.by_stage.values()) == {1.0}
    assert report.orders > 0 and report.order_breach_rate == 1.0
    # the journey flag is "police or CPS flagged it"; truth holds the police flag, which the CPS
    # contradicts on ~2 % of referred cases
    assert report.da_flag_rate > 0.99


def test_every_record_in_exactly_one_journey_and_no_tokens(linked_run):  # noqa: F811
    journeys = linked_run.run / "journeys.parquet"
    names = set(pq.read_schema(journeys).names)
    assert not names & set(TOKEN_COLUMN_NAMES)
    assert "source_row" not in names
    con = duckdb.connect()
    for agency, col in zip(AGENCIES, STAGE_KEYS, strict=True):
        in_journeys = con.execute(
            f"SELECT count({col}), count(DISTINCT {col}) FROM read_parquet('{journeys}')"
        ).fetchall()[0]
        rows = con.execute(  # victim mentions are people, not stages: subject records only
            f"SELECT count(*) FROM read_parquet('{linked_run.extracts / agency}.parquet')"
            " WHERE role = 'subject'"
        ).fetchall()[0][0]
        assert in_journeys == (rows, rows), agency


def test_derived_facts_are_consistent(linked_run):  # noqa: F811
    con = duckdb.connect()
    bad = con.execute(f"""
        SELECT count(*) FILTER (WHERE prison_reception_date IS NOT NULL AND da_history IS NULL),
               count(*) FILTER (WHERE order_breach_date IS NOT NULL AND order_breach_date <= order_date),
               count(*) FILTER (WHERE reoffence_date IS NOT NULL AND reoffence_date <= reoffence_index_date),
               count(*) FILTER (WHERE court_record_key IS NOT NULL AND cps_record_key IS NOT NULL
                                AND first_hearing_date < decision_date - 1)
        FROM read_parquet('{linked_run.run / "journeys.parquet"}')""").fetchall()[0]
    assert bad == (0, 0, 0, 0)
    summary = json.loads((linked_run.run / "journeys.json").read_text())
    assert summary["attached_by_reference"]["prosecution"] > summary["attached_by_dates"]["prosecution"]
    assert summary["orphans"] == {"prosecution": 0, "court": 0, "prison": 0, "probation": 0}


def test_extracts_moved_to_another_folder_are_found_and_still_checked(linked_run, tmp_path):  # noqa: F811
    copy = tmp_path / "extracts"
    shutil.copytree(linked_run.extracts, copy)
    assert open_run(linked_run.run, extracts_dir=copy).extracts["police"] == copy / "police.parquet"
    with open(copy / "court.parquet", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(VerificationError, match="SHA-256 differs"):
        open_run(linked_run.run, extracts_dir=copy)


def test_extracts_not_found_name_the_option(linked_run, tmp_path):  # noqa: F811
    with pytest.raises(VerificationError, match="--extracts"):
        open_run(linked_run.run, extracts_dir=tmp_path)


def test_journeys_after_probabilistic_linkage(linked_run, keys, tmp_path):  # noqa: F811
    """End to end with `linkage run` (Splink): journeys stay close to truth when linkage is not perfect."""
    run_mod = pytest.importorskip("linkage.link.run")
    from linkage.config.linkage import LinkageConfig

    config_path = ROOT / "configs" / "linkage.yaml"
    run = tmp_path / "run"
    run_mod.run_linkage(
        load_config(config_path, LinkageConfig),
        config_path,
        run,
        extracts_dir=linked_run.extracts,
        trusted_keys_dir=keys.signing_dir,
    )
    build_journeys(run, linked_run.extracts)
    report = evaluate(run, linked_run.raw / "truth").journeys
    assert report is not None and report.exact_rate > 0.98


def test_victim_mentions_are_people_of_the_run_but_never_crimes(linked_run):  # noqa: F811
    """The shipped police config names victims (token spec v2): each victim mention is a record the run
    clusters, but journeys are built from the subject records only, so no victim becomes a crime; the
    victims of each journey are victims.parquet, one row per (journey, victim person), as in truth."""
    journeys, extracts = linked_run.run / "journeys.parquet", linked_run.extracts
    con = duckdb.connect()
    mentions = con.execute(
        f"SELECT count(*) FROM read_parquet('{extracts / 'police.parquet'}') WHERE role = 'victim'"
    ).fetchall()[0][0]
    assert mentions > 0
    victims_in_journeys = con.execute(f"""
        SELECT count(*) FROM read_parquet('{journeys}') j
        JOIN read_parquet('{extracts / "police.parquet"}') e
          ON e.record_key = j.police_record_key AND e.role = 'victim'""").fetchall()[0][0]
    assert victims_in_journeys == 0
    # victims.parquet against truth/victims.parquet: (case, victim person), with perfect clusters the
    # person ids are the true ones and the journey's police record is the case's
    truth = linked_run.raw / "truth"
    got = con.execute(f"""
        SELECT r.case_id, v.victim_person_id
        FROM read_parquet('{linked_run.run / "victims.parquet"}') v
        JOIN read_parquet('{journeys}') j USING (journey_id)
        JOIN read_parquet('{linked_run.run / "clusters.parquet"}') c
          ON c.source_dataset = 'police' AND c.record_key = j.police_record_key
        JOIN read_parquet('{truth / "records.parquet"}') r
          ON r.source_dataset = 'police' AND r.source_row = c.source_row AND r.role = 'subject'
        ORDER BY ALL""").fetchall()
    want = con.execute(f"""
        SELECT DISTINCT v.case_id, v.person_id
        FROM read_parquet('{truth / "victims.parquet"}') v
        -- a victim is a record only where the police row keeps a usable identifier for them
        JOIN read_parquet('{truth / "records.parquet"}') r
          ON r.role = 'victim' AND r.case_id = v.case_id AND r.victim_index = v.victim_index
        JOIN read_parquet('{extracts / "police.parquet"}') e
          ON e.role = 'victim' AND e.source_row = r.source_row AND e.victim_index = r.victim_index
        ORDER BY ALL""").fetchall()
    assert got == want and len(got) > 100


PROBATION_COLUMNS = (
    "probation_type",
    "probation_start_date",
    "probation_expected_end_date",
    "probation_requirement",
    "probation_breach_date",
    "probation_end_date",
    "probation_termination",
)


def _case_of(con: duckdb.DuckDBPyConnection, linked_run, agency: str) -> str:  # noqa: F811
    """SQL of (record_key, case_id) of an agency's records, from the synthetic truth."""
    return f"""
        SELECT e.record_key, r.case_id
        FROM read_parquet('{linked_run.raw / "truth" / "records.parquet"}') r
        JOIN read_parquet('{linked_run.extracts / agency}.parquet') e USING (source_row)
        -- victim mentions share their police row's source_row: subjects only
        WHERE r.source_dataset = '{agency}' AND r.role = 'subject' AND e.role = 'subject'"""


def test_probation_stage_of_every_journey_is_the_true_supervision(linked_run):  # noqa: F811
    """Perfect linkage: the journey of every true case with a supervision carries exactly that
    supervision (type, dates, requirement, breach, termination) beside that case's police record."""
    con = duckdb.connect()
    cols = ", ".join(f"t.{c}, j.{c}" for c in PROBATION_COLUMNS)
    rows = con.execute(f"""
        SELECT t.case_id, t.sentence_type, t.prison_release_date, police.case_id, {cols}
        FROM read_parquet('{linked_run.raw / "truth" / "journeys.parquet"}') t
        LEFT JOIN ({_case_of(con, linked_run, "probation")}) b ON b.case_id = t.case_id
        LEFT JOIN read_parquet('{linked_run.run / "journeys.parquet"}') j
               ON j.probation_record_key = b.record_key
        LEFT JOIN ({_case_of(con, linked_run, "police")}) police ON police.record_key = j.police_record_key
        WHERE t.probation_type IS NOT NULL ORDER BY t.case_id""").fetchall()
    types = {r[4] for r in rows}
    assert types == {"Community order", "Suspended sentence order", "Licence"}, types
    for case_id, sentence, release, police_case, *pairs in rows:
        assert police_case == case_id, case_id
        truth, journey = pairs[0::2], pairs[1::2]
        assert journey == truth, (case_id, sentence, release)
    breached = sum(1 for r in rows if r[12] is not None)  # t.probation_breach_date
    ended = {r[16] for r in rows}  # t.probation_termination
    assert breached > 0 and {"Completed", "Recalled to custody", None} <= ended
    in_journeys = con.execute(
        f"SELECT count(probation_record_key) FROM read_parquet('{linked_run.run / 'journeys.parquet'}')"
    ).fetchall()[0][0]
    assert in_journeys == len(rows)


def test_da_history_at_supervision_start_matches_the_truth(linked_run):  # noqa: F811
    """An earlier DA police crime of the same person (not the case's own) before the supervision starts."""
    con = duckdb.connect()
    truth = linked_run.raw / "truth" / "journeys.parquet"
    expected = dict(
        con.execute(f"""
            SELECT t.case_id, EXISTS (SELECT 1 FROM read_parquet('{truth}') d
                                      WHERE d.person_id = t.person_id AND d.da_flag
                                        AND d.recorded_date < t.probation_start_date
                                        AND d.case_id <> t.case_id)
            FROM read_parquet('{truth}') t WHERE t.probation_type IS NOT NULL""").fetchall()
    )
    found = dict(
        con.execute(f"""
            SELECT b.case_id, j.probation_da_history
            FROM read_parquet('{linked_run.run / "journeys.parquet"}') j
            JOIN ({_case_of(con, linked_run, "probation")}) b ON b.record_key = j.probation_record_key
            """).fetchall()
    )
    assert found == expected
    assert 0 < sum(expected.values()) < len(expected)


def test_police_employee_suspects_reach_their_journeys(linked_run):  # noqa: F811
    con = duckdb.connect()
    truth = linked_run.raw / "truth" / "journeys.parquet"
    pairs = con.execute(f"""
        SELECT t.suspect_police_employee, j.suspect_police_employee
        FROM read_parquet('{truth}') t
        JOIN ({_case_of(con, linked_run, "police")}) p USING (case_id)
        JOIN read_parquet('{linked_run.run / "journeys.parquet"}') j ON j.police_record_key = p.record_key
        """).fetchall()
    assert pairs and all(t == j for t, j in pairs)
    share = sum(t for t, _ in pairs) / len(pairs)
    assert 0.002 < share < 0.012, share


def test_a_run_without_probation_has_empty_probation_columns(linked_run, keys, tmp_path):  # noqa: F811
    """Probation is an optional source: a four-agency run still assembles, with no supervision."""
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    for f in linked_run.extracts.iterdir():
        if not f.name.startswith("probation."):
            shutil.copy(f, extracts / f.name)
    run = perfect_run(extracts, linked_run.raw / "truth", tmp_path / "run", keys.signing_dir)
    result = build_journeys(run)
    assert result.summary.records["probation"] == 0
    con = duckdb.connect()
    with_probation, journeys = con.execute(
        f"SELECT count(probation_record_key), count(*) FROM read_parquet('{result.journeys}')"
    ).fetchall()[0]
    full = con.execute(
        f"SELECT count(*) - count(probation_record_key) FILTER (WHERE probation_link = 'orphan') "
        f"FROM read_parquet('{linked_run.run / 'journeys.parquet'}')"
    ).fetchall()[0][0]
    assert with_probation == 0 and journeys == full
