"""Tests of `linkage evaluate`: hand-computed pairwise, B-cubed and cluster measures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from linkage.errors import InputError, VerificationError
from linkage.evaluate import evaluate, evaluate_clusters
from linkage.runfolder import RunRecord, RunWriter

# Truth: person 1 has records a,b,c; person 2 has d,e; person 3 has f (a twin of person 2).
TRUTH = [
    ("police", 1, 1, None),
    ("police", 2, 1, None),
    ("court", 1, 1, None),
    ("police", 3, 2, "twin"),
    ("prison", 1, 2, "twin"),
    ("court", 2, 3, "twin"),
]


def seal_run(run: Path, clusters: pa.Table) -> Path:
    """A run folder holding ``clusters`` through the run-folder contract (no extracts: a unit test)."""
    record = RunRecord(run_id=run.name, created_at=datetime.now(UTC), tool_version="test", extracts={})
    folder = RunWriter.create(run, record, overwrite=True)
    with folder.writing("clusters.parquet") as tmp:
        pq.write_table(clusters, tmp)
    folder.complete()
    return run


def _write(tmp: Path, pred: list[object]) -> tuple[Path, Path]:
    run, truth = tmp / "run", tmp / "truth"
    truth.mkdir(exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "source_dataset": [t[0] for t in TRUTH],
                "source_row": pa.array([t[1] for t in TRUTH], pa.int64()),
                "person_id": pa.array([t[2] for t in TRUTH], pa.int64()),
                "case_id": pa.array([1] * 6, pa.int64()),
                "hard_case": pa.array([t[3] for t in TRUTH], pa.string()),
                "noise": pa.array([None] * 6, pa.string()),
            }
        ),
        truth / "records.parquet",
    )
    seal_run(
        run,
        pa.table(
            {
                "source_dataset": [t[0] for t in TRUTH],
                "record_key": pa.array(range(6), pa.int64()),
                "source_row": pa.array([t[1] for t in TRUTH], pa.int64()),
                "person_id": pred,
            }
        ),
    )
    return run, truth


def test_perfect_clustering_scores_one(tmp_path: Path) -> None:
    r = evaluate(*_write(tmp_path, ["x", "x", "x", "y", "y", "z"]))
    assert (r.pairwise.precision, r.pairwise.recall, r.pairwise.f1) == (1.0, 1.0, 1.0)
    assert r.bcubed.f1 == 1.0 and r.clusters.exact_cluster_rate == 1.0
    assert r.pairwise.true_pairs == 4 and r.records_missing_from_run == 0


def test_everything_in_one_cluster(tmp_path: Path) -> None:
    r = evaluate(*_write(tmp_path, [7] * 6))
    assert r.pairwise.predicted_pairs == 15
    assert r.pairwise.precision == pytest.approx(4 / 15) and r.pairwise.recall == 1.0
    assert r.clusters.largest_predicted == 6 and r.clusters.largest_true == 3
    assert r.clusters.exact_clusters == 0
    # B-cubed precision: (3 * 3/6 + 2 * 2/6 + 1 * 1/6) / 6.
    assert r.bcubed.precision == pytest.approx((9 + 4 + 1) / 36) and r.bcubed.recall == 1.0


def test_hand_computed_mixed_clustering(tmp_path: Path) -> None:
    # Predicted: {a,b}, {c}, {d,e,f}: c split from person 1, twin f merged with person 2.
    r = evaluate(*_write(tmp_path, [1, 1, 2, 3, 3, 3]))
    # TP: ab, de = 2; predicted pairs: 1 + 3 = 4; true pairs: 3 + 1 = 4.
    assert (r.pairwise.true_positive_pairs, r.pairwise.predicted_pairs, r.pairwise.true_pairs) == (2, 4, 4)
    assert r.pairwise.precision == 0.5 and r.pairwise.recall == 0.5 and r.pairwise.f1 == 0.5
    assert r.clusters.exact_clusters == 0 and r.clusters.predicted_clusters == 3
    # Twin tag: persons 2 and 3. TP de = 1; predicted pairs involving them de, df, ef = 3; true de = 1.
    twin = r.by_hard_case["twin"]
    assert (twin.true_positive_pairs, twin.predicted_pairs, twin.true_pairs) == (1, 3, 1)
    # Dataset pairs: police~police true ab (predicted ab: TP); court~police true ac, bc (missed).
    pp = r.by_dataset_pair["police~police"]
    assert (pp.true_positive_pairs, pp.predicted_pairs, pp.true_pairs) == (1, 1, 1)
    cp = r.by_dataset_pair["court~police"]
    assert (cp.true_positive_pairs, cp.predicted_pairs, cp.true_pairs) == (0, 1, 2)
    # B-cubed precision: a,b 1; c 1; d,e 2/3; f 1/3 -> (1+1+1+2/3+2/3+1/3)/6.
    assert r.bcubed.precision == pytest.approx((3 + 5 / 3) / 6)


def test_clusters_outside_a_run_folder_score_as_the_run_does(tmp_path: Path) -> None:
    """`evaluate_clusters`: a benchmark's re-clustering of a run's pairs (scripts/bench_link.py), which
    `evaluate` refuses for want of a completion marker, scores the same as the sealed run."""
    run, truth = _write(tmp_path, [1, 1, 2, 3, 3, 3])
    loose = tmp_path / "sweep"
    loose.mkdir()
    (loose / "clusters.parquet").write_bytes((run / "clusters.parquet").read_bytes())
    with pytest.raises(VerificationError, match="incomplete"):
        evaluate(loose, truth)
    sealed, unsealed = evaluate(run, truth), evaluate_clusters(loose / "clusters.parquet", truth)
    assert unsealed.pairwise == sealed.pairwise and unsealed.by_hard_case == sealed.by_hard_case
    with pytest.raises(InputError, match="not found"):
        evaluate_clusters(loose / "other.parquet", truth)


def test_missing_records_and_bad_input(tmp_path: Path) -> None:
    run, truth = _write(tmp_path, [1, 1, 1, 2, 2, 3])
    t = pq.read_table(run / "clusters.parquet").slice(0, 5)
    seal_run(run, t)
    r = evaluate(run, truth)
    assert r.records_missing_from_run == 1 and r.records_evaluated == 5
    seal_run(run, t.drop_columns(["source_row"]))
    with pytest.raises(InputError):
        evaluate(run, truth)


def test_on_synthetic_data_with_truth_as_prediction(tmp_path: Path) -> None:
    from linkage.synth import generate

    generate(300, 3, tmp_path / "d")
    rec = pq.read_table(tmp_path / "d" / "truth" / "records.parquet")
    run = seal_run(
        tmp_path / "run",
        pa.table(
            {
                "source_dataset": rec.column("source_dataset"),
                "record_key": rec.column("source_row"),
                "source_row": rec.column("source_row"),
                "person_id": rec.column("person_id"),
                "victim_index": rec.column("victim_index"),  # a victim mention shares its row's number
            }
        ),
    )
    r = evaluate(run, tmp_path / "d" / "truth")
    assert r.pairwise.f1 == 1.0 and r.clusters.exact_cluster_rate == 1.0
    assert set(r.by_hard_case) and all(m.f1 == 1.0 for m in r.by_hard_case.values())
    assert r.by_role["victim"].true_pairs > 0 and r.by_role["victim"].f1 == 1.0


def test_by_role_counts_pairs_involving_a_victim_mention(tmp_path: Path) -> None:
    """Two persons; A has a subject record and two victim mentions, B one subject record. Predicting
    one cluster of all four: victim pairs = C(4,2) - C(2,2) = 5 predicted, 3 true (A's mentions with
    each other and with A's subject record); subject pairs = 1 predicted (A~B), 0 true."""
    run, truth = tmp_path / "run", tmp_path / "truth"
    truth.mkdir()
    rows = [("police", 1, None, 1), ("police", 2, 1, 1), ("police", 2, 2, 1), ("court", 1, None, 2)]
    pq.write_table(
        pa.table(
            {
                "source_dataset": [r[0] for r in rows],
                "source_row": pa.array([r[1] for r in rows], pa.int64()),
                "person_id": pa.array([r[3] for r in rows], pa.int64()),
                "case_id": pa.array([1] * 4, pa.int64()),
                "hard_case": pa.array([None] * 4, pa.string()),
                "noise": pa.array([None] * 4, pa.string()),
                "role": ["subject", "victim", "victim", "subject"],
                "victim_index": pa.array([r[2] for r in rows], pa.int8()),
            }
        ),
        truth / "records.parquet",
    )
    clusters = {
        "source_dataset": [r[0] for r in rows],
        "record_key": pa.array(range(4), pa.int64()),
        "source_row": pa.array([r[1] for r in rows], pa.int64()),
        "person_id": [9] * 4,
        "victim_index": pa.array([r[2] for r in rows], pa.int8()),
    }
    r = evaluate(seal_run(run, pa.table(clusters)), truth)
    victim, subject = r.by_role["victim"], r.by_role["subject"]
    assert (victim.true_positive_pairs, victim.predicted_pairs, victim.true_pairs) == (3, 5, 3)
    assert (subject.true_positive_pairs, subject.predicted_pairs, subject.true_pairs) == (0, 1, 0)
    assert victim.precision == pytest.approx(3 / 5) and subject.recall == 1.0
    # without victim_index the two mentions of row 2 cannot be told apart: refused, not guessed
    seal_run(run, pa.table({k: v for k, v in clusters.items() if k != "victim_index"}))
    with pytest.raises(InputError):
        evaluate(run, truth)


def test_cli_evaluate_json_and_file(tmp_path: Path) -> None:
    from linkage.evaluate_command import evaluate_cmd

    run, truth = _write(tmp_path, [1, 1, 2, 3, 3, 3])
    out = tmp_path / "report.json"
    args = ["--run", str(run), "--truth", str(truth)]
    res = CliRunner().invoke(evaluate_cmd, [*args, "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pairwise"]["f1"] == 0.5
    assert json.loads(out.read_text())["pairwise"]["precision"] == 0.5
    table = CliRunner().invoke(evaluate_cmd, ["--run", str(run), "--truth", str(truth)])
    assert table.exit_code == 0 and "B-cubed" in table.output
