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
from linkage.journeys.assemble import STAGE_KEYS
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
    for agency, col in zip(("police", "prosecution", "court", "prison"), STAGE_KEYS, strict=True):
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
    assert summary["orphans"] == {"prosecution": 0, "court": 0, "prison": 0}


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
