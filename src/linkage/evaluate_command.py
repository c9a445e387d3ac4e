"""`linkage evaluate`: a linkage run measured against synthetic truth (thin click command over
``linkage.evaluate.evaluate``)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from linkage.evaluate import BCubed, EvaluationReport, PairwiseMetrics, evaluate
from linkage.ui import ExistingDir, Output, output_options


def _print_report(console: Console, r: EvaluationReport) -> None:
    table = Table(title="linkage accuracy against synthetic truth")
    for col in ("measure", "precision", "recall", "F1"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    rows: list[tuple[str, PairwiseMetrics | BCubed]] = [("pairwise", r.pairwise), ("B-cubed", r.bcubed)]
    rows += [(f"pairs involving {tag}", m) for tag, m in r.by_hard_case.items()]
    rows += [(f"pairs {pair}", m) for pair, m in r.by_dataset_pair.items()]
    labels = {"victim": "pairs involving a victim mention", "subject": "pairs of subject records"}
    rows += [(labels[role], m) for role, m in r.by_role.items()]
    for name, m in rows:
        table.add_row(name, f"{m.precision:.4f}", f"{m.recall:.4f}", f"{m.f1:.4f}")
    console.print(table)
    c = r.clusters
    console.print(
        f"records evaluated {r.records_evaluated:,} (missing from run {r.records_missing_from_run:,}, "
        f"not in truth {r.records_not_in_truth:,}); exact-cluster rate {c.exact_cluster_rate:.4f}; "
        f"clusters predicted {c.predicted_clusters:,} vs true {c.true_clusters:,}; "
        f"largest predicted {c.largest_predicted} vs true {c.largest_true}"
    )
    if (j := r.journeys) is not None:
        stages = ", ".join(f"{stage} {rate:.4f}" for stage, rate in j.by_stage.items())
        console.print(
            f"journeys: {j.exact:,} of {j.true_journeys:,} true journeys reconstructed with every stage "
            f"right ({j.exact_rate:.4f}); {j.predicted_journeys:,} predicted. By stage: {stages}; "
            f"DA flag {j.da_flag_rate:.4f}; order breaches {j.order_breach_rate:.4f} of {j.orders:,} orders"
        )


@click.command("evaluate")
@click.option(
    "--run",
    "run_dir",
    type=ExistingDir,
    required=True,
    help="Run directory holding clusters.parquet.",
)
@click.option(
    "--truth",
    "truth_dir",
    type=ExistingDir,
    required=True,
    help="The truth/ directory written by `linkage synth`.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as JSON to this file.",
)
@output_options
def evaluate_cmd(run_dir: Path, truth_dir: Path, out: Path | None, ui: Output) -> None:
    """Measure a linkage run against synthetic truth: pairwise and B-cubed precision/recall/F1,
    exact clusters, and errors broken down by hard case. Joins on source_dataset + source_row.
    When `linkage journeys` completed on the run, also the share of true journeys reconstructed exactly.
    Refuses (exit 1) a run folder that is incomplete or modified, or whose extracts changed."""
    with ui.status("evaluating against synthetic truth"):
        report = evaluate(run_dir, truth_dir)
    if out is not None:
        out.write_text(report.model_dump_json(indent=2) + "\n")
    ui.result(report.model_dump(mode="json"), lambda console: _print_report(console, report))
