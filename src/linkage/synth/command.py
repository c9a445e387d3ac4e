"""`linkage synth`: synthetic police, CPS, court and prison extracts with ground truth (the `synth` extra)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkage.synth import SynthSummary, generate
from linkage.synth.params import ErrorRate
from linkage.ui import Output, output_options


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
    help="Output directory for the five agency CSVs and truth/.",
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
