"""`linkage run`: refusal of unverifiable extracts, output contract, determinism, accuracy, offline report.

One small synthetic set (2,000 persons, ~5,200 records) is generated and pseudonymised once per
session; one run over it is shared by the tests that only read outputs.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from splink import Linker

from conftest import ROOT, agency_config
from linkage.config import load_config
from linkage.config.agency import AgencyConfig
from linkage.config.linkage import BlockingRule, LinkageConfig, match_weight
from linkage.errors import ConfigError, VerificationError
from linkage.evaluate import blocking_recall, evaluate
from linkage.extract.pseudonymise import pseudonymise
from linkage.link.backend import open_backend
from linkage.link.model import settings
from linkage.link.run import RunResult, load_inputs, run_linkage
from linkage.link.train import fill_unobserved_u
from linkage.synth import generate
from linkage.tokens.spec import TOKEN_COLUMN_NAMES

CONFIG = ROOT / "configs" / "linkage.yaml"
AGENCIES = ("police", "prosecution", "court", "prison", "probation")


@dataclass
class SynthExtracts:
    extracts: Path
    trusted_keys: Path
    truth: Path


@pytest.fixture(scope="session")
def synth_extracts(keys, tmp_path_factory) -> SynthExtracts:
    """Signed pseudonymised extracts of 2,000 synthetic persons, with their ground truth."""
    base = tmp_path_factory.mktemp("link")
    generate(2000, 11, base / "raw")
    for agency in AGENCIES:
        config_path = ROOT / "configs" / "agencies" / f"{agency}.yaml"
        pseudonymise(
            agency_config(agency),
            config_path,
            keys.project,
            base / "raw" / f"{agency}.csv",
            base / "extracts",
            rejects_dir=base / "rejects",
            signing_key=keys.signing(agency),
            workers=1,
        )
    return SynthExtracts(base / "extracts", keys.signing_dir, base / "raw" / "truth")


@pytest.fixture(scope="session")
def config() -> LinkageConfig:
    return load_config(CONFIG, LinkageConfig)


def _run(config: LinkageConfig, data: SynthExtracts, out: Path, extracts: Path | None = None) -> RunResult:
    return run_linkage(
        config, CONFIG, out, extracts_dir=extracts or data.extracts, trusted_keys_dir=data.trusted_keys
    )


@pytest.fixture(scope="session")
def linked(config, synth_extracts, tmp_path_factory) -> RunResult:
    return _run(config, synth_extracts, tmp_path_factory.mktemp("runs") / "first")


def _clusters(run_dir: Path) -> list[tuple]:
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{run_dir / 'clusters.parquet'}') ORDER BY source_dataset, source_row"
    ).fetchall()


# --- refusal ------------------------------------------------------------------------------------


def _copy(data: SynthExtracts, tmp_path: Path) -> Path:
    return Path(shutil.copytree(data.extracts, tmp_path / "extracts"))


def test_refuses_altered_extract_and_writes_nothing(config, synth_extracts, tmp_path):
    extracts = _copy(synth_extracts, tmp_path)
    with open(extracts / "court.parquet", "r+b") as fh:  # flip one byte in the middle
        fh.seek(fh.seek(0, 2) // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(VerificationError, match=r"court\.parquet: SHA-256 differs"):
        _run(config, synth_extracts, tmp_path / "run", extracts)
    assert not (tmp_path / "run").exists()


def test_refuses_unsigned_extract_and_untrusted_keys(config, synth_extracts, tmp_path):
    extracts = _copy(synth_extracts, tmp_path)
    (extracts / "prison.manifest.json.sig").unlink()
    with pytest.raises(VerificationError, match=r"prison\.manifest\.json: manifest is not signed"):
        _run(config, synth_extracts, tmp_path / "run", extracts)
    strangers = tmp_path / "strangers"
    strangers.mkdir()
    shutil.copy(synth_extracts.trusted_keys / "other.signing.pub", strangers)
    with pytest.raises(VerificationError, match="not among the trusted public keys"):
        run_linkage(
            config, CONFIG, tmp_path / "run", extracts_dir=synth_extracts.extracts, trusted_keys_dir=strangers
        )


def test_refuses_missing_agency_and_wrong_fingerprint(config, synth_extracts, tmp_path):
    extracts = _copy(synth_extracts, tmp_path)
    for path in extracts.glob("prosecution.*"):
        path.unlink()
    with pytest.raises(VerificationError, match="no extract for prosecution"):
        _run(config, synth_extracts, tmp_path / "run", extracts)
    pinned = config.model_copy(
        update={"extracts": config.extracts.model_copy(update={"expected_key_fingerprint": "00" * 16})}
    )
    with pytest.raises(VerificationError, match="differs from the expected fingerprint") as err:
        _run(pinned, synth_extracts, tmp_path / "run")
    assert "00" * 16 not in str(err.value)  # reasons name files and checks, never values


# --- outputs ------------------------------------------------------------------------------------


def test_every_input_record_appears_exactly_once(linked, synth_extracts):
    schema = pq.read_schema(linked.out_dir / "clusters.parquet")
    # role and victim_index tell a victim mention from its subject row (they share source_row)
    assert schema.names == ["source_dataset", "record_key", "source_row", "person_id", "role", "victim_index"]
    assert not set(schema.names) & set(TOKEN_COLUMN_NAMES)  # the output carries no token
    selects = " UNION ALL ".join(
        f"SELECT '{a}' AS source_dataset, record_key, source_row "
        f"FROM read_parquet('{synth_extracts.extracts / a}.parquet')"
        for a in AGENCIES
    )
    missing, extra, dupes = duckdb.sql(f"""
        WITH c AS (SELECT * FROM read_parquet('{linked.out_dir / "clusters.parquet"}')), i AS ({selects})
        SELECT (SELECT count(*) FROM (SELECT source_dataset, record_key, source_row FROM i EXCEPT
                                      SELECT source_dataset, record_key, source_row FROM c)),
               (SELECT count(*) FROM (SELECT source_dataset, record_key, source_row FROM c EXCEPT
                                      SELECT source_dataset, record_key, source_row FROM i)),
               (SELECT count(*) - count(DISTINCT (source_dataset, record_key)) FROM c)
    """).fetchall()[0]
    assert (missing, extra, dupes) == (0, 0, 0)
    assert (
        linked.metrics.records_total == sum(linked.metrics.records.values()) == len(_clusters(linked.out_dir))
    )


def test_run_folder_contents_and_metrics(linked):
    out = linked.out_dir
    for name in ("clusters.parquet", "pairs.parquet", "model.json", "model.yaml", "metrics.json", "run.json"):
        assert (out / name).is_file(), name
    assert (out / "quality.html").is_file()
    assert (out / "inputs" / "linkage.yaml").read_bytes() == CONFIG.read_bytes()
    assert sorted(p.name for p in (out / "inputs" / "manifests").glob("*.manifest.json")) == sorted(
        f"{a}.manifest.json" for a in AGENCIES
    )
    assert not (out / "work").exists()  # the working database (tokens) is removed
    model = json.loads((out / "model.json").read_text())
    assert model["link_type"] == "link_and_dedupe"
    metrics = json.loads((out / "metrics.json").read_text())
    # exact ids first: the PNC, the generic id families (probation's CRN, the police nominal id), then the
    # shared case reference
    assert [b["name"] for b in metrics["blocking"]][:4] == ["pnc", "id_crn", "id_police_nominal", "case_ref"]
    assert metrics["comparisons_total"] == sum(b["comparisons"] for b in metrics["blocking"])
    sizes = metrics["clusters"]
    assert sizes["clusters"] == sum(sizes["size_distribution"].values())
    assert sizes["largest"] and sizes["largest"][0]["size"] == sum(sizes["largest"][0]["by_dataset"].values())
    assert {"verify", "train_u", "train_m", "predict", "cluster", "total"} <= set(metrics["timings_seconds"])
    assert metrics["peak_rss_bytes"] > 0
    # the model came from the data: absent v2 families are left out with a line each, never a crash
    assert any("'nhs' left out" in n for n in metrics["model_notes"])
    # the model's own estimate of the people's precision and recall (link/calibrate.py)
    expected = metrics["expected_clusters"]
    assert 0.9 < expected["expected_precision"] <= 1 and 0.9 < expected["expected_recall"] <= 1
    assert expected["pairs_joined"] >= expected["pairs_joined_scored"] > 0
    assert "expected precision of the people formed" in (out / "quality.html").read_text()
    # what each blocking rule's comparisons linked: every linked pair under the rule that found it
    assert sum(b["linked"] for b in metrics["blocking"]) == metrics["pairs_linked"]
    assert all(0 <= b["linked"] <= b["comparisons"] for b in metrics["blocking"])
    assert "What each blocking rule found" in (out / "quality.html").read_text()
    # checked against the PNC (link/recalibrate.py): pairs with other evidence of weight 6-16 are
    # right less often than the model says (twins, households), and the measured share never falls
    checked = metrics["id_calibration"]
    assert checked["identifier"] == "pnc" and checked["labelled_pairs"] >= 1000
    measured = [b["measured_probability"] for b in checked["bands"]]
    assert measured == sorted(measured)
    middle = [b for b in checked["bands"] if 6 <= b["match_weight_from"] < 16]
    assert sum(b["labelled_pairs"] * (b["model_probability"] - b["measured_probability"]) for b in middle) > 0
    assert 0.9 < expected["checked_precision"] < expected["expected_precision"]
    assert "The model checked against a checked id" in (out / "quality.html").read_text()
    # evidence that comes together (link/correlated.py): measured against the PNC; when the different
    # ids exceed the PNC's own errors, model.json holds the correction as a comparison of its own
    (together,) = metrics["correlated"]
    assert together["name"] == "surname_dob_place" and together["identifier"] == "pnc"
    assert together["agreeing_pairs"] >= together["labelled_pairs"] >= together["different_ids"] > 0
    added = [c for c in model["comparisons"] if c["output_column_name"] == "correlated_surname_dob_place"]
    assert len(added) == (together["weight"] is not None)
    for comparison in added:
        level = comparison["comparison_levels"][1]
        assert math.log2(level["m_probability"] / level["u_probability"]) == pytest.approx(together["weight"])
    assert "Evidence that comes together" in (out / "quality.html").read_text()
    assert not [n for n in metrics["model_notes"] if n.startswith("Splink:")]  # every level trained
    assert metrics["blocking_budget"] >= 2e6
    assert [c["name"] for c in metrics["blocking_candidates"] if c["chosen"]] == [
        b["name"] for b in metrics["blocking"] if not b["name"].endswith("(mirrored)")
    ]
    run = json.loads((out / "run.json").read_text())
    assert set(run["extracts"]) == set(AGENCIES)


def test_comparisons_per_rule_match_splinks_exact_count(linked, synth_extracts, tmp_path):
    """The run counts each rule's pairs from the table it scores; Splink's blocking analysis, which
    re-runs every blocking join, must give the same exact counts."""
    config = load_config(linked.out_dir / "model.yaml", LinkageConfig)  # the resolved model
    paths = {agency: synth_extracts.extracts / f"{agency}.parquet" for agency in AGENCIES}
    with open_backend(
        config.backend, tmp_path / "work"
    ) as backend:  # the inputs with the capped rules' flags
        linker = Linker(load_inputs(backend, paths, config), settings(config))
        expected = linker.blocking_analysis.count_comparisons_from_blocking_rules(
            record_sample_proportion=1.0
        )
    metrics = linked.metrics
    # a rule with a mirror (a date of birth against a transposed one) finds a pair in one form or the
    # other depending on which record is on the left, which differs between the run's scoring over one
    # table (model.one_table) and Splink's analysis over the agencies' tables: compare each rule with
    # its mirror together
    counted: dict[str, list[int]] = {}
    for b, r in zip(metrics.blocking, expected, strict=True):
        sums = counted.setdefault(b.name.removesuffix(" (mirrored)"), [0, 0])
        sums[0] += b.comparisons
        sums[1] += round(r["marginal_comparison_count"])
    assert all(ours == splinks for ours, splinks in counted.values()), counted
    assert metrics.comparisons_total == expected[-1]["cumulative_comparison_count"]
    assert metrics.total_possible_comparisons == expected[-1]["total_possible_comparison_count"]


def test_scoring_over_one_table_gives_splinks_own_pairs_and_weights(linked, synth_extracts, tmp_path):
    """The run scores as `dedupe_only` over one table with an integer key per record (model.one_table,
    for speed); the trained model scoring Splink's own way, `link_and_dedupe` over the agencies'
    tables, must find the same pairs with the same weights."""
    config = load_config(linked.out_dir / "model.yaml", LinkageConfig)
    model = json.loads((linked.out_dir / "model.json").read_text())
    assert model["link_type"] == "link_and_dedupe"  # what the run folder keeps
    paths = {agency: synth_extracts.extracts / f"{agency}.parquet" for agency in AGENCIES}
    with open_backend(config.backend, tmp_path / "work") as backend:
        linker = Linker(load_inputs(backend, paths, config), model, log_level=None)
        own = linker.inference.predict(threshold_match_weight=config.report.pair_floor_match_weight)
        ends = "source_dataset_l || record_key_l, source_dataset_r || record_key_r"
        pair = f"least({ends}) AS a, greatest({ends}) AS b, match_weight AS w"
        kept = f"read_parquet('{linked.out_dir / 'pairs.parquet'}')"
        differ = backend.sql(f"""
            SELECT count(*) FROM (SELECT {pair} FROM {own.physical_name}) AS x
            FULL JOIN (SELECT {pair} FROM {kept}) AS y USING (a, b)
            WHERE x.w IS NULL OR y.w IS NULL OR abs(x.w - y.w) > 1e-9
        """)[0][0]
        assert differ == 0 and linked.metrics.pairs_above_floor > 10_000


def test_a_level_random_sampling_never_saw_is_saved_with_its_exact_u(linked, synth_extracts, tmp_path):
    """At 10 M records u sampling saw no two records agree on the PNC: Splink saved no u for 'same
    PNC', and the saved model scored it with Splink's default (10 bits instead of about 20; precision
    0.996 -> 0.977). The level now gets its u counted exactly, and the saved model carries it."""
    config = load_config(linked.out_dir / "model.yaml", LinkageConfig)
    paths = {agency: synth_extracts.extracts / f"{agency}.parquet" for agency in AGENCIES}
    records = {a: pq.read_metadata(p).num_rows for a, p in paths.items()}
    notes: list[str] = []
    with open_backend(config.backend, tmp_path / "work") as backend:
        linker = Linker(load_inputs(backend, paths, config), settings(config), log_level=None)
        (pnc,) = [c for c in linker._settings_obj.comparisons if c.output_column_name == "pnc"]
        same = pnc.comparison_levels[1]
        same.m_probability, same.u_probability = 0.99, "level not observed in training dataset"
        fill_unobserved_u(linker, backend, config, records, notes)
        saved = linker.misc.save_model_to_json()
    values = " UNION ALL ".join(f"SELECT pnc FROM read_parquet('{p}')" for p in paths.values())
    agreeing = duckdb.sql(f"""
        SELECT sum(n * (n - 1) / 2)
        FROM (SELECT count(*) AS n FROM ({values}) WHERE pnc IS NOT NULL GROUP BY pnc)
    """).fetchall()[0][0]
    n = sum(records.values())
    level = next(c for c in saved["comparisons"] if c["output_column_name"] == "pnc")["comparison_levels"][1]
    assert agreeing > 0 and level["u_probability"] == pytest.approx(agreeing / (n * (n - 1) / 2), rel=1e-12)
    assert notes == [
        f"u of level 'same PNC' of comparison 'pnc' not seen among the random pairs: counted exactly: "
        f"{int(agreeing):,} of {n * (n - 1) // 2:,} pairs agree"
    ]
    # every level the run itself saved has a u (m may go unseen: Splink's default stands, with its note)
    model = json.loads((linked.out_dir / "model.json").read_text())
    levels = [
        lv for c in model["comparisons"] for lv in c["comparison_levels"] if not lv.get("is_null_level")
    ]
    assert all("u_probability" in lv for lv in levels if "m_probability" in lv)


def test_a_correction_is_wired_into_the_model_and_lowers_exactly_the_subject_pairs_agreeing_on_all(
    config, synth_extracts, linked, tmp_path, monkeypatch
):
    """2,000 persons are too few to measure a correction (link/correlated.py; its counts are tested on
    their own), so the measure's result is forced to -6 bits: the run must put it in the model, and
    the scored pairs must be those of the first run, 6 bits lower exactly where two subject records
    agree on surname, date of birth and postcode."""
    from linkage.link import correlated

    measured = correlated.measure

    def forced(*args, **kwargs):
        return [check.model_copy(update={"weight": -6.0}) for check in measured(*args, **kwargs)]

    monkeypatch.setattr(correlated, "measure", forced)
    out = _run(config, synth_extracts, tmp_path / "run").out_dir
    model = json.loads((out / "model.json").read_text())
    assert model["comparisons"][-1]["output_column_name"] == "correlated_surname_dob_place"
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE t AS SELECT regexp_extract(filename, '([a-z]+)[.]parquet$', 1) AS ds, record_key,
               sn, dob, pc, role = 'victim' AS victim
        FROM read_parquet('{synth_extracts.extracts}/*.parquet', filename = true, union_by_name = true)
    """)
    keys = "source_dataset_l, record_key_l, source_dataset_r, record_key_r"
    rows = con.execute(f"""
        WITH b AS (SELECT {keys}, match_weight AS w FROM '{linked.out_dir / "pairs.parquet"}'),
             a AS (SELECT {keys}, match_weight AS w FROM '{out / "pairs.parquet"}')
        SELECT round(a.w - b.w, 6) AS delta,
               l.sn = r.sn AND l.dob = r.dob AND l.pc = r.pc AND NOT coalesce(l.victim OR r.victim, false),
               count(*)
        FROM a JOIN b USING (source_dataset_l, record_key_l, source_dataset_r, record_key_r)
        JOIN t AS l ON l.ds = a.source_dataset_l AND l.record_key = a.record_key_l
        JOIN t AS r ON r.ds = a.source_dataset_r AND r.record_key = a.record_key_r
        GROUP BY ALL ORDER BY ALL
    """).fetchall()
    deltas = {(delta, bool(agree)) for delta, agree, _ in rows}
    assert deltas == {(-6.0, True), (0.0, False)}, rows


def test_quality_report_is_offline(linked):
    page = (linked.out_dir / "quality.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"@import\s+url\(\s*[\"']?(https?:)?//", page, re.IGNORECASE)
    assert "vegaEmbed" in page and "function" in page  # the libraries are inlined
    for title in ("Match weights", "m and u probabilities", "Match-weight histogram", "Cluster sizes"):
        assert title in page
    assert "waterfall" in page


def test_no_token_value_leaves_in_the_report_or_metrics(linked, synth_extracts):
    page = (linked.out_dir / "quality.html").read_text(encoding="utf-8")
    metrics = (linked.out_dir / "metrics.json").read_text() + (linked.out_dir / "model.yaml").read_text()
    columns = ", ".join(TOKEN_COLUMN_NAMES)
    tokens = {
        str(v)
        for a in AGENCIES
        for row in duckdb.sql(
            f"SELECT {columns} FROM read_parquet('{synth_extracts.extracts / a}.parquet')"
        ).fetchall()
        for v in row
        if v is not None
    }
    numbers = set(re.findall(r"-?\d{12,}", page + metrics))  # tokens are 64-bit: 12+ digits
    assert not numbers & tokens


def test_same_inputs_and_seed_give_the_same_clusters(linked, config, synth_extracts, tmp_path):
    again = _run(config, synth_extracts, tmp_path / "second")
    assert _clusters(again.out_dir) == _clusters(linked.out_dir)
    # Parameters agree to float precision (parallel sums may differ in the last bit).
    first, second = (_parameters(run.out_dir) for run in (linked, again))
    assert second == pytest.approx(first, rel=1e-9)


def _parameters(run_dir: Path) -> list[float]:
    model = json.loads((run_dir / "model.json").read_text())
    return [model["probability_two_random_records_match"]] + [
        level.get(p, -1.0)
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        for p in ("m_probability", "u_probability")
    ]


def test_accuracy_floor_on_synthetic_data(linked, synth_extracts):
    report = evaluate(linked.out_dir, synth_extracts.truth)
    assert report.records_missing_from_run == 0
    # At the default settings (model derived from the data, threshold chosen by the model, no ground
    # truth). Measured on this set: 0.9956 / 0.9895 (the hand-written v1 model: 0.9967 / 0.9880).
    assert linked.metrics.threshold.rule.startswith("highest expected F1")
    # suspects, defendants and prisoners (subject records); victim mentions have their own floor below
    subjects = report.by_role["subject"]
    assert subjects.precision >= 0.995
    assert subjects.recall >= 0.988
    assert report.clusters.largest_predicted <= 2 * report.clusters.largest_true
    assert report.by_hard_case["jr_sr"].precision >= 0.95
    # household members share surname and address and one agency never records their DOB; when that
    # agency is the police, a victim mention of one (no national id on it) may merge with the other
    # (measured 0.926 on this set since victims are linked, 0.95+ before; 0.902 with the kind-of-pair
    # prior, whose better-calibrated people's precision no longer raises the threshold here)
    assert report.by_hard_case["household"].precision >= 0.9
    # victim mentions carry no national id (the police nominal id is their only id, per force), so two
    # people of one name are kept apart only by DOB and postcode: measured on this set 0.9868 / 0.9934
    # with the other party and the kind-of-pair prior (0.9779 / 0.9947 before; subject pairs 0.9960 /
    # 0.9998). Issue 15's target for victims, 0.99 / 0.98, is measured at 100 k persons
    # (docs/analyst-guide.md): 18 wrong pairs of 1,367 here, a few merges of repeat victims.
    victims = report.by_role["victim"]
    assert victims.precision >= 0.97 and victims.recall >= 0.99
    diagnostics = linked.metrics.clusters.diagnostics
    assert diagnostics.merges_refused > 0 and set(diagnostics.clusters_with_conflicts) == {"pnc", "dob"}


def test_blocking_recall_estimate_is_near_the_true_share_of_pairs_compared(linked, synth_extracts):
    """The report's estimate against truth: the true pairs the run's blocking rules compare."""
    truth = blocking_recall(linked.out_dir, synth_extracts.extracts, synth_extracts.truth)
    assert truth.true_pairs == evaluate(linked.out_dir, synth_extracts.truth).pairwise.true_pairs
    assert 0 < truth.true_pairs - truth.compared < 0.01 * truth.true_pairs  # some are never compared
    estimate = linked.metrics.blocking_recall
    # measured on this set: 0.99979 against a true 0.99929 (Good-Turing's reading: 0.99845)
    assert abs(estimate.estimate - truth.recall) <= 0.001
    # each rule's misses are counted among the likely matches it could find, and shown in the report
    assert all(r.missed <= r.could_find for r in estimate.rules)
    assert sum(r.found_alone for r in estimate.rules) == estimate.found_by_one_rule
    shown = re.findall(r"<td>(\d+\.\d)% of ([\d,]+)</td>", (linked.out_dir / "quality.html").read_text())
    measured = [r for r in estimate.rules if r.could_find >= 20]
    assert len(shown) == len(measured) > 5


# --- config -------------------------------------------------------------------------------------


def _config_text(**replacements: str) -> str:
    text = CONFIG.read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("engine: duckdb", "engine: sparkle", r"line \d+.*'duckdb' or 'spark'"),
        ("threshold_match_probability: auto", "threshold_match_probability: 1.5", r"line \d+.*'auto'"),
        ("target_precision: 0.9995", "target_precision: 1.0", r"line \d+.*target_precision"),
        ("min_coverage: 0.01", "min_coverage: 1.5", r"line \d+.*min_coverage"),
        ("rule: max_expected_f1", "rule: best", r"line \d+.*max_expected_f1"),
        ("version: 2", "version: 3", r"line \d+.*version"),
        (
            "override_match_weight: 20",
            "override_match_weight: 20\n  never_link_different: [{ column: birth }]",
            r"line \d+.*'birth' is not a token column",
        ),
        (
            "one_to_one: false",
            "one_to_one: false\n  never_link_different: [{ column: dob, weak_marker: dob_wobbly }]",
            r"line \d+.*'dob_wobbly' is not a weak-evidence marker",
        ),
        (
            "derive:",
            "comparisons:\n  - { name: swap, missing_when: [fn1], levels: [{ label: x, equal: [fn1=dob] }] }"
            "\nderive:",
            r"line \d+.*different families",
        ),
        (
            "derive:",
            "blocking_rules:\n  - { name: b, equal: [surname, dob_ym] }\nderive:",
            r"line \d+.*'surname' is not a token column",
        ),
        (
            "derive:",
            'blocking_rules:\n  - { name: b, equal: ["sn; DROP TABLE x"] }\nderive:',
            r"line \d+.*not a column name",
        ),
        (
            "method: constrained_components\n  override_match_weight: 20",
            "method: connected_components\n  never_link_different: [pnc]\n  override_match_weight: 20",
            "used only by constrained_components",
        ),
    ],
)
def test_config_errors_name_the_line(tmp_path, old, new, message):
    path = tmp_path / "linkage.yaml"
    path.write_text(_config_text(**{old: new}))
    with pytest.raises(ConfigError, match=message):
        load_config(path, LinkageConfig)


def test_version_1_config_still_loads_and_overrides_every_part(synth_extracts, tmp_path):
    """A v1 file (every section written out) is a v2 file that fixes the whole model."""
    v1 = load_config(Path(__file__).parent / "linkage-v1.yaml", LinkageConfig)
    assert v1.version == 1 and len(v1.blocking_rules) == 13
    result = _run(v1, synth_extracts, tmp_path / "run")
    assert [b.name for b in result.metrics.blocking][:3] == ["pnc", "case_ref", "surname_birthday"]
    assert result.metrics.blocking_budget == 0  # the config's rules, no budget choice
    assert result.metrics.threshold.rule == "highest expected F1"


def test_em_passes_must_train_every_comparison(config, synth_extracts, tmp_path):
    training = config.training.model_copy(
        update={"em_rules": [BlockingRule(name="em_dob", equal=["dob"])]}  # dob only
    )
    narrow = config.model_copy(update={"training": training})
    with pytest.raises(ConfigError, match="date_of_birth"):
        _run(narrow, synth_extracts, tmp_path / "run")


# --- command line ---------------------------------------------------------------------------------


@pytest.fixture
def cli_with_run(run_cli, monkeypatch):
    """`linkage ...` with the run command registered (a no-op once cli.py registers it)."""
    from linkage.cli import cli
    from linkage.link.command import run_cmd

    monkeypatch.setitem(cli.commands, "run", run_cmd)
    return run_cli


def test_cli_exit_codes(cli_with_run, synth_extracts, tmp_path, monkeypatch):
    monkeypatch.setenv("LINKAGE_LOG", str(tmp_path / "log.jsonl"))
    base = ["run", "--config", CONFIG, "--extracts", synth_extracts.extracts]
    keys = ["--trusted-keys", synth_extracts.trusted_keys]
    bad = cli_with_run(*base, *keys, "--out", tmp_path / "spark", "--spark-conf", "no-equals-sign")
    assert bad.exit_code == 2 and "spark.some.key=value" in bad.stderr
    empty = tmp_path / "no-keys"
    empty.mkdir()
    refused = cli_with_run(*base, "--trusted-keys", empty, "--out", tmp_path / "refused", "--json")
    assert refused.exit_code in (1, 2) and json.loads(refused.stdout)["exit_code"] == refused.exit_code
    ok = cli_with_run(*base, *keys, "--out", tmp_path / "ok", "--json", "--threads", "1")
    assert ok.exit_code == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["records_total"] > 5000 and result["backend"]["threads"] == 1
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in log] == ["usage-error", "usage-error", "ok"]
    assert any(o["path"].endswith("clusters.parquet") for o in log[-1]["outputs"])


# --- recluster, link types, the derived model -------------------------------------------------------


def test_scored_pairs_are_an_owner_only_output_without_tokens(linked):
    pairs = linked.out_dir / "pairs.parquet"
    assert pairs.stat().st_mode & 0o777 == 0o600
    assert pq.read_schema(pairs).names == [
        "source_dataset_l",
        "record_key_l",
        "source_dataset_r",
        "record_key_r",
        "match_weight",
        "match_probability",
        "match_key",
    ]
    floor = linked.metrics.threshold.curve[0].match_weight
    assert duckdb.sql(f"SELECT min(match_weight) FROM read_parquet('{pairs}')").fetchall()[0][0] >= floor


def test_recluster_equals_a_run_with_the_same_model_at_that_threshold(
    linked, config, synth_extracts, tmp_path
):
    """Re-clustering the scored pairs must give exactly what a full run scoring with the same
    model.json at the same (fixed) threshold gives: same clusters, same linked pairs."""
    from linkage.link.recluster import recluster

    threshold = 0.97
    again = recluster(linked.out_dir, tmp_path / "re", threshold=threshold)
    fixed = config.model_copy(
        update={"clustering": config.clustering.model_copy(update={"threshold_match_probability": threshold})}
    )
    full = run_linkage(
        fixed,
        CONFIG,
        tmp_path / "full",
        extracts_dir=synth_extracts.extracts,
        trusted_keys_dir=synth_extracts.trusted_keys,
        model_path=linked.out_dir / "model.json",
    )
    assert _clusters(again.out_dir) == _clusters(full.out_dir)
    assert _clusters(again.out_dir) != _clusters(linked.out_dir)  # the threshold did change something
    assert again.metrics.pairs_linked == full.metrics.pairs_linked
    # what each blocking rule's comparisons linked: the same, and every linked pair counted once
    per_rule = [b.linked for b in again.metrics.blocking]
    assert per_rule == [b.linked for b in full.metrics.blocking]
    assert sum(per_rule) == again.metrics.pairs_linked and per_rule[0] > 0
    assert again.metrics.threshold_match_probability == threshold
    assert (again.out_dir / "pairs.parquet").stat().st_mode & 0o777 == 0o600
    # as a match weight, the same threshold
    by_weight = recluster(linked.out_dir, tmp_path / "w", threshold_weight=match_weight(threshold))
    assert _clusters(by_weight.out_dir) == _clusters(again.out_dir)


def _first_level(model: dict) -> dict:
    return model["comparisons"][0]["comparison_levels"][1]


SMUGGLED = "fn1_l = fn1_r OR 'x' = '\\' OR (SELECT count(*) FROM read_text($$/etc/hosts$$)) > 0 --'"


def _given(linked: RunResult, tmp_path: Path, edit) -> Path:
    model = json.loads((linked.out_dir / "model.json").read_text())
    edit(model)
    path = tmp_path / "given.json"
    path.write_text(json.dumps(model))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: _first_level(m).update(sql_condition="first_name_l = first_name_r"),
         "reads column\\(s\\) the linkage does not load: first_name"),
        (lambda m: _first_level(m).update(sql_condition="fn1_l = (SELECT max(x) FROM read_csv('/etc/x'))"),
         "comparison 'forename' holds Subquery"),
        # a file read DuckDB runs but a MySQL parser reads as one string (\\' escapes a quote there, not in
        # DuckDB): the model's own dialect is never used to check it
        (lambda m: (m.update(sql_dialect="mysql"), _first_level(m).update(sql_condition=SMUGGLED)),
         "comparison 'forename' (holds|has SQL that cannot be parsed)"),
        (lambda m: _first_level(m).update(sql_condition="levenshtein(fn1_l, fn1_r) <= 1"),
         "comparison 'forename' holds (Levenshtein|LTE)"),
        (lambda m: _first_level(m).update(sql_condition="l.fn1 = r.fn1"), "reads l.fn1, not <column>_l / _r"),
        (lambda m: m["blocking_rules_to_generate_predictions"].append({"blocking_rule": "l.sn = = r.sn"}),
         "a blocking rule has SQL that cannot be parsed"),
        (lambda m: m["blocking_rules_to_generate_predictions"].append({"blocking_rule": "sn_l = sn_r"}),
         "a blocking rule reads sn_l, not l.<column>"),
        (lambda m: m.pop("comparisons"), "not a model this project trained \\(comparisons: Field required"),
        (lambda m: m.update(linker_uid="x; DROP TABLE y"), "linker_uid: String should match pattern"),
        (lambda m: m.update(additional_columns_to_retain=["fn1"]), "additional_columns_to_retain"),
        (lambda m: m["comparisons"][0].update(output_column_name="x\t--\n"), "output_column_name"),
        (lambda m: m.update(extra_field=1), "extra_field: Extra inputs are not permitted"),
        (lambda m: m.update(link_type="link_only"), "the given model links link_only, the config link_and"),
        (lambda m: _first_level(m).pop("u_probability"), "level 'same first forename' has an m but no u"),
    ],
    ids=["unknown column", "subquery", "another dialect", "function", "level qualified", "broken SQL",
         "rule unqualified", "no comparisons", "linker uid", "retained columns", "column name",
         "unknown field", "link type", "u never met"],
)  # fmt: skip
def test_a_given_model_is_checked_before_any_sql_runs(
    linked, config, synth_extracts, tmp_path, edit, message
):
    """`--model` takes a file: its SQL is parsed first (a foreign or edited model failed in the engine
    as an internal error, and its SQL could read a file)."""
    with pytest.raises(ConfigError, match=message):
        run_linkage(
            config, CONFIG, tmp_path / "run", extracts_dir=synth_extracts.extracts,
            trusted_keys_dir=synth_extracts.trusted_keys, model_path=_given(linked, tmp_path, edit),
        )  # fmt: skip
    assert not (tmp_path / "run").exists()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"not a readable model\.json"):
        run_linkage(config, CONFIG, tmp_path / "run", extracts_dir=synth_extracts.extracts, model_path=broken)


def test_a_given_model_comparing_an_absent_family_scores_it_as_missing(
    linked, config, synth_extracts, tmp_path
):
    """A model trained on extracts holding a family these do not (another quarter's, another set): the
    column is loaded as missing and the report says so, instead of failing in SQL."""

    def add(model: dict) -> None:
        model["comparisons"].append(
            {
                "output_column_name": "ssn",
                "comparison_levels": [
                    {"sql_condition": "id_ssn_l IS NULL OR id_ssn_r IS NULL", "is_null_level": True},
                    {"sql_condition": "id_ssn_l = id_ssn_r", "m_probability": 0.9, "u_probability": 1e-6},
                    {"sql_condition": "ELSE", "m_probability": 0.1, "u_probability": 1.0 - 1e-6},
                ],
            }
        )

    result = run_linkage(
        config, CONFIG, tmp_path / "run", extracts_dir=synth_extracts.extracts,
        trusted_keys_dir=synth_extracts.trusted_keys, model_path=_given(linked, tmp_path, add),
    )  # fmt: skip
    note = "the given model compares id_ssn, which no extract holds: always missing"
    assert note in result.metrics.model_notes

    # missing on every pair: the same pairs and weights as the model without it
    def pairs(run: Path) -> list[tuple]:
        parquet = run / "pairs.parquet"
        sql = f"SELECT record_key_l, record_key_r, round(match_weight, 9) FROM read_parquet('{parquet}')"
        return duckdb.sql(sql + " ORDER BY ALL").fetchall()

    assert pairs(result.out_dir) == pairs(linked.out_dir)
    # its run re-clusters: the given model's extra column is loaded there too (it failed in SQL)
    from linkage.link.recluster import recluster

    again = recluster(
        result.out_dir, tmp_path / "again", threshold=result.metrics.threshold_match_probability
    )
    assert _clusters(again.out_dir) == _clusters(result.out_dir)


def test_a_given_models_own_blocking_rules_are_the_ones_counted(linked, config, synth_extracts, tmp_path):
    """metrics.json counted a given model's pairs under the derived rules' names (pairs per rule by
    position): its own rules are listed now, named after the config rule whose SQL they are, and the
    blocking recall estimate, which reads each config rule's columns, is left out with a note."""
    trained = [r["blocking_rule"] for r in json.loads((linked.out_dir / "model.json").read_text())[
        "blocking_rules_to_generate_predictions"]]  # fmt: skip
    assert linked.metrics.blocking[0].name == "pnc" and linked.metrics.blocking_recall

    def own_rules(model: dict) -> None:
        model["blocking_rules_to_generate_predictions"] = [
            {"blocking_rule": trained[0]},
            {"blocking_rule": "l.dob = r.dob AND l.sn = r.sn"},
        ]

    result = run_linkage(
        config, CONFIG, tmp_path / "run", extracts_dir=synth_extracts.extracts,
        trusted_keys_dir=synth_extracts.trusted_keys, model_path=_given(linked, tmp_path, own_rules),
    )  # fmt: skip
    blocking = result.metrics.blocking
    assert [(b.name, b.sql) for b in blocking] == [
        ("pnc", trained[0]),
        ("rule 2 of the given model", "l.dob = r.dob AND l.sn = r.sn"),
    ]
    assert sum(b.comparisons for b in blocking) == result.metrics.comparisons_total > 0
    assert all(b.comparisons > 0 for b in blocking)
    assert result.metrics.blocking_recall is None
    assert "blocking recall not estimated: the given model blocks with rules of its own" in (
        result.metrics.model_notes
    )


def test_recluster_refuses_thresholds_below_the_pair_floor(linked, tmp_path):
    from linkage.link.recluster import recluster

    with pytest.raises(ConfigError, match=r"below the run's pair floor \(match weight -5, probability 0\.03"):
        recluster(linked.out_dir, tmp_path / "low", threshold=0.01)
    recluster(linked.out_dir, tmp_path / "floor", threshold_weight=-5.0)  # at the floor: accepted
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        recluster(linked.out_dir, tmp_path / "one", threshold=1.0)


def test_link_only_compares_no_pair_within_a_source(config, synth_extracts, tmp_path):
    link_only = config.model_copy(update={"link_type": "link_only"})
    result = _run(link_only, synth_extracts, tmp_path / "run")
    pairs = result.out_dir / "pairs.parquet"
    within = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{pairs}') WHERE source_dataset_l = source_dataset_r"
    ).fetchall()[0][0]
    assert within == 0
    assert json.loads((result.out_dir / "model.json").read_text())["link_type"] == "link_only"
    n = result.metrics.records
    assert (
        result.metrics.total_possible_comparisons
        == (sum(n.values()) ** 2 - sum(v * v for v in n.values())) // 2
    )


def _only(config: LinkageConfig, agency: str, **update) -> LinkageConfig:
    """The config expecting ``agency``'s extract alone (with ``update`` besides)."""
    extracts = config.extracts.model_copy(update={"agencies": [agency]})
    return config.model_copy(update={"extracts": extracts, **update})


def _one_extract(data: SynthExtracts, tmp_path: Path, agency: str) -> Path:
    folder = tmp_path / "one"
    folder.mkdir()
    for suffix in (".parquet", ".manifest.json", ".manifest.json.sig"):
        shutil.copy(data.extracts / f"{agency}{suffix}", folder / f"{agency}{suffix}")
    return folder


def test_one_extract_is_deduplicated(config, synth_extracts, tmp_path):
    """One agency's extract alone is a deduplication study (Splink adds the source column itself only
    for two tables or more: one extract crashed in blocking before the input tables carried it)."""
    result = _run(
        _only(config, "police"),
        synth_extracts,
        tmp_path / "run",
        _one_extract(synth_extracts, tmp_path, "police"),
    )
    assert list(result.metrics.records) == ["police"]
    n = result.metrics.records_total
    assert result.metrics.total_possible_comparisons == n * (n - 1) // 2
    report = evaluate(result.out_dir, synth_extracts.truth)
    # every police record is in the run (the other agencies' truth rows are simply not in it)
    clustered = duckdb.sql(f"SELECT count(*) FROM read_parquet('{result.out_dir / 'clusters.parquet'}')")
    assert clustered.fetchall()[0][0] == n
    # a person's several police records and victim mentions are found again (measured 0.9961 / 0.9983)
    assert report.pairwise.precision >= 0.99 and report.pairwise.recall >= 0.99


def test_run_and_model_size_the_budget_by_every_record_victim_mentions_included(
    config, synth_extracts, tmp_path, monkeypatch
):
    """The blocking choice samples its counts by the number of records (derive.choose_blocking): the run
    passed the subject rows only and `linkage model` every record, so above 100,000 records the two
    sampled differently and could choose different rules (measured at 1 M records: 570,853 against
    999,530). Both now count every record linked, victim mentions included."""
    import linkage.link.run as run_module

    seen: list[int] = []
    original = run_module.resolve_blocking
    monkeypatch.setattr(run_module, "resolve_blocking", lambda m, t, n: seen.append(n) or original(m, t, n))
    result = _run(config, synth_extracts, tmp_path / "run")
    run_module.describe_model(config, CONFIG, synth_extracts.extracts, None, tmp_path / "work")
    rows = sum(pq.read_metadata(p).num_rows for p in synth_extracts.extracts.glob("*.parquet"))
    victims = sum(
        json.loads(m.read_text())["counts"]["victim_mentions"]
        for m in synth_extracts.extracts.glob("*.manifest.json")
    )
    assert victims > 0 and seen == [rows, rows] == [result.metrics.records_total] * 2


def test_one_small_extract_with_no_candidate_pair_still_gives_a_report(config, keys, police_csv, tmp_path):
    """Three police rows of three people: nothing to score. The report's histogram (Splink's) failed on
    no pairs; the run completes, every record its own person."""
    agency = ROOT / "configs" / "agencies" / "police.yaml"
    signing = keys.signing("police")
    pseudonymise(agency_config("police"), agency, keys.project, police_csv, tmp_path / "extracts",
                 rejects_dir=tmp_path / "rejects", signing_key=signing, workers=1)  # fmt: skip
    result = run_linkage(
        _only(config, "police"),
        CONFIG,
        tmp_path / "run",
        extracts_dir=tmp_path / "extracts",
        trusted_keys_dir=keys.signing_dir,
    )
    assert result.metrics.pairs_above_floor == 0 and result.metrics.pairs_linked == 0
    assert result.metrics.clusters.clusters == result.metrics.records_total
    assert "Match-weight histogram" not in (result.out_dir / "quality.html").read_text()


def test_link_only_needs_two_extracts(config, synth_extracts, tmp_path):
    one = _only(config, "court", link_type="link_only")
    with pytest.raises(ConfigError, match=r"link_only is for records of different .*only one \(court\)"):
        _run(one, synth_extracts, tmp_path / "run", _one_extract(synth_extracts, tmp_path, "court"))
    assert not (tmp_path / "run").exists()
    # each source holding each person once: as meaningless over one extract
    once = _only(config, "court", clustering=config.clustering.model_copy(update={"one_to_one": True}))
    with pytest.raises(ConfigError, match=r"clustering.one_to_one is for records of different extracts"):
        _run(once, synth_extracts, tmp_path / "run2", tmp_path / "one")


def test_linkage_model_prints_the_derived_model_as_a_config(run_cli, synth_extracts, tmp_path):
    out = run_cli(
        "model", "--extracts", synth_extracts.extracts, "--trusted-keys", synth_extracts.trusted_keys
    )
    assert out.exit_code == 0, out.stderr
    assert "# Left out, and why:" in out.stdout and "comparison 'pnc' left out" not in out.stdout
    path = tmp_path / "model.yaml"
    path.write_text(out.stdout)
    model = load_config(path, LinkageConfig)
    assert [c.name for c in model.comparisons] == [
        "forename", "surname", "date_of_birth", "place",
        "pnc", "id_crn", "id_police_nominal", "case_ref", "other_party", "sex", "record_roles",
    ]  # fmt: skip
    assert {r.column for r in model.clustering.conflict_rules()} == {"pnc", "dob"}
    assert [r.name for r in model.training.em_rules] == ["em_dob", "em_names"]


def _without(config: dict, families: tuple[str, ...]) -> dict:
    """An agency config (as YAML data) that no longer reads these identifier families. National ids
    are a key of their own in token spec v1 (`pnc:`) and entries of `ids:` in v2 (`type: pnc`)."""
    identifiers = config["identifiers"]
    for family in families:
        identifiers.pop(family, None)
        if "ids" in identifiers:
            identifiers["ids"] = [i for i in identifiers["ids"] if i.get("type") != family]
            if not identifiers["ids"]:
                del identifiers["ids"]
    for victim in config.get("victims", []):  # the victims named on a row hold the same families
        for family in families:
            victim.pop(family, None)
            victim["ids"] = [i for i in victim.get("ids", []) if i.get("type") != family]
    if "date_of_birth" in families:
        config.pop("age_band", None)  # an age band needs the date of birth
    return config


@pytest.fixture(scope="session")
def extracts_without_pnc(keys, synth_extracts, tmp_path_factory) -> Path:
    """The same raw data pseudonymised by agencies that hold no PNC id (configs edited in a copy)."""
    base = tmp_path_factory.mktemp("nopnc")
    raw = synth_extracts.truth.parent
    for agency in AGENCIES:
        data = yaml.safe_load((ROOT / "configs" / "agencies" / f"{agency}.yaml").read_text())
        path = base / f"{agency}.yaml"
        path.write_text(yaml.safe_dump(_without(data, ("pnc",))))
        pseudonymise(
            load_config(path, AgencyConfig),
            path,
            keys.project,
            raw / f"{agency}.csv",
            base / "extracts",
            rejects_dir=base / "rejects",
            signing_key=keys.signing(agency),
            workers=1,
        )
    return base / "extracts"


def test_an_absent_family_is_left_out_with_a_note_never_a_crash(
    extracts_without_pnc, synth_extracts, tmp_path
):
    """The shipped v1 model with no PNC in any extract: its deterministic rule and EM pass on PNC
    used to crash (math domain error, EMTrainingException); now they are left out and said so."""
    v1 = load_config(Path(__file__).parent / "linkage-v1.yaml", LinkageConfig)
    result = _run(v1, synth_extracts, tmp_path / "run", extracts_without_pnc)
    notes = result.metrics.model_notes
    for expected in (
        "comparison 'pnc' left out",
        "blocking rule 'pnc' left out",
        "deterministic rule 'same_pnc' left out",
        "EM pass 'em_pnc' left out",
        "conflict rule on 'pnc' left out",
    ):
        assert any(n.startswith(expected) for n in notes), expected
    report = evaluate(result.out_dir, synth_extracts.truth)
    assert report.pairwise.f1 >= 0.98


# --- any subset of identifier families ----------------------------------------------------------------

DROPPABLE = ("case_reference", "postcode", "pnc", "sex", "date_of_birth")
_rng = random.Random(13)
FAMILY_SUBSETS = [tuple(sorted(_rng.sample(DROPPABLE, k))) for k in (1, 2, 2, 3, 4)] + [
    DROPPABLE
]  # and every one of them: names alone


@pytest.mark.slow
@pytest.mark.parametrize("dropped", FAMILY_SUBSETS, ids=lambda d: "-".join(d))
def test_a_model_derived_for_any_subset_of_families_links_end_to_end(dropped, keys, tmp_path):
    """Agencies that hold only some identifier families (their configs edited in a copy): the derived
    model runs end to end, says what it left out, and still links (names alone included)."""
    generate(300, 29, tmp_path / "raw")
    for agency in AGENCIES:
        data = yaml.safe_load((ROOT / "configs" / "agencies" / f"{agency}.yaml").read_text())
        path = tmp_path / f"{agency}.yaml"
        path.write_text(yaml.safe_dump(_without(data, dropped)))
        pseudonymise(
            load_config(path, AgencyConfig),
            path,
            keys.project,
            tmp_path / "raw" / f"{agency}.csv",
            tmp_path / "extracts",
            rejects_dir=tmp_path / "rejects",
            signing_key=keys.signing(agency),
            workers=1,
        )
    config = LinkageConfig.model_validate({"version": 2})
    result = run_linkage(
        config,
        CONFIG,
        tmp_path / "run",
        extracts_dir=tmp_path / "extracts",
        trusted_keys_dir=keys.signing_dir,
    )
    comparisons = {"date_of_birth": "date_of_birth", "postcode": "place", "pnc": "pnc", "sex": "sex"}
    for family in dropped:
        if family in comparisons:
            assert any(
                n.startswith(f"comparison '{comparisons[family]}' left out")
                for n in result.metrics.model_notes
            )
    # (300 persons are too few for every level to be seen in training: Splink's warnings are notes)
    report = evaluate(result.out_dir, tmp_path / "raw" / "truth")
    assert report.records_missing_from_run == 0
    assert report.pairwise.f1 >= (0.9 if len(dropped) < 4 else 0.6)


def test_recluster_command_line(run_cli, linked, tmp_path, monkeypatch):
    monkeypatch.setenv("LINKAGE_LOG", str(tmp_path / "log.jsonl"))
    low = run_cli("recluster", "--run", linked.out_dir, "--threshold", "0.01", "--out", tmp_path / "low")
    assert low.exit_code == 2 and "pair floor" in low.stderr
    both = run_cli(
        "recluster",
        "--run",
        linked.out_dir,
        "--threshold",
        "0.9",
        "--match-weight",
        "3",
        "--out",
        tmp_path / "b",
    )
    assert both.exit_code == 2 and "one of them" in both.stderr
    ok = run_cli(
        "recluster", "--run", linked.out_dir, "--match-weight", "3", "--out", tmp_path / "w3", "--json"
    )
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["threshold_match_probability"] == pytest.approx(8 / 9)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in log] == ["usage-error", "usage-error", "ok"]
    assert any(o["path"].endswith("clusters.parquet") for o in log[-1]["outputs"])
