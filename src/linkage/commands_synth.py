"""Click commands `linkage synth` and `linkage evaluate` (registered on the main group by cli.py)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkage.evaluate import EvaluationReport, evaluate
from linkage.synth import SynthSummary, generate
from linkage.synth.params import ErrorRate
from linkage.ui import ExistingDir, Output, output_options


def _print_summary(console: Console, s: SynthSummary) -> None:
    table = Table(title=f"synthetic data in {s.out_dir} (seed {s.seed}, {s.persons:,} persons)")
    table.add_column("agency")
    table.add_column("records", justify="right")
    table.add_column("bad rows", justify="right")
    for agency, n in s.records.items():
        table.add_row(agency, f"{n:,}", str(s.bad_rows[agency]))
    console.print(table)
    hard = ", ".join(f"{k} {v}" for k, v in s.hard_case_persons.items()) or "none"
    console.print(f"cases {s.cases:,}; hard-case persons: {hard}; {s.seconds:.1f} s")


@click.command("synth")
@click.option("--persons", type=click.IntRange(min=1), required=True, help="Number of distinct people.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed; the same seed gives byte-identical files.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory for the four agency CSVs and truth/.",
)
@click.option(
    "--da-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.3,
    show_default=True,
    help="Share of police crimes flagged as domestic abuse.",
)
@click.option(
    "--error-rate",
    type=click.Choice([e.value for e in ErrorRate]),
    default="medium",
    show_default=True,
    help="Identifier noise preset (low = 0.4x, high = 2x the medium rates).",
)
@click.option(
    "--bad-rows",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Deliberately malformed rows per file (listed in truth/bad_rows.parquet).",
)
@click.option(
    "--hard-cases/--no-hard-cases",
    default=True,
    show_default=True,
    help="Include twins, Jr/Sr, siblings, households, same-name cohorts and hostel residents.",
)
@click.option("--overwrite", is_flag=True, help="Replace synthetic data already in --out.")
@output_options
def synth_cmd(
    persons: int,
    seed: int,
    out: Path,
    da_share: float,
    error_rate: str,
    bad_rows: int,
    hard_cases: bool,
    overwrite: bool,
    ui: Output,
) -> None:
    """Generate synthetic police, CPS, court and prison extracts with ground truth.

    Writes OUT/police.csv, prosecution.csv, court.csv and prison.csv in each agency's native layout
    (matching configs/agencies/), and OUT/truth/ (records, persons, journeys, bad rows), which
    `linkage run` never reads.
    """
    err = ui.err
    show = ui.chatty and err.is_terminal
    with Progress(
        TextColumn("persons"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
    ) as bar:
        task = bar.add_task("synth", total=persons)
        summary = generate(
            persons,
            seed,
            out,
            da_share=da_share,
            error_rate=error_rate,
            bad_rows=bad_rows,
            hard_cases=hard_cases,
            overwrite=overwrite,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    ui.result(summary.model_dump(mode="json"), lambda console: _print_summary(console, summary))


def _print_report(console: Console, r: EvaluationReport) -> None:
    table = Table(title="linkage accuracy against synthetic truth")
    for col in ("measure", "precision", "recall", "F1"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    rows = [("pairwise", r.pairwise), ("B-cubed", r.bcubed)]
    rows += [(f"pairs involving {tag}", m) for tag, m in r.by_hard_case.items()]
    rows += [(f"pairs {pair}", m) for pair, m in r.by_dataset_pair.items()]
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
    help="Run folder written by `linkage run`.",
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
    report = evaluate(run_dir, truth_dir)
    if out is not None:
        out.write_text(report.model_dump_json(indent=2) + "\n")
    ui.result(report.model_dump(mode="json"), lambda console: _print_report(console, report))


__all__ = ["evaluate_cmd", "synth_cmd"]
