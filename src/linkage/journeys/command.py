"""`linkage journeys`: assemble a run's case journeys into RUN/journeys.parquet (secure zone only)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console

from linkage.journeys.assemble import JourneySummary, assemble_journeys
from linkage.journeys.inputs import locate_extracts
from linkage.runlog import logged
from linkage.ui import ExistingDir, Output, output_options, table
from linkage.util import atomic_write_bytes


def build_journeys(run_dir: Path, extracts_dir: Path | None = None) -> JourneySummary:
    """Assemble and write RUN/journeys.parquet and its summary RUN/journeys.json, with a run-log entry."""
    run_dir = Path(run_dir)
    extracts = locate_extracts(run_dir, extracts_dir)
    with logged("journeys", inputs=[run_dir / "clusters.parquet", *extracts.values()]) as entry:
        summary = assemble_journeys(run_dir / "clusters.parquet", extracts, run_dir / "journeys.parquet")
        atomic_write_bytes(run_dir / "journeys.json", (json.dumps(asdict(summary), indent=2) + "\n").encode())
        entry.add_output(run_dir / "journeys.parquet")
        entry.add_output(run_dir / "journeys.json")
    return summary


def _render(console: Console, s: JourneySummary, out: Path) -> None:
    rows = [
        [
            a,
            f"{s.records[a]:,}",
            f"{s.attached_by_reference[a]:,}",
            f"{s.attached_by_dates[a]:,}",
            f"{s.orphans[a]:,}",
        ]
        for a in ("prosecution", "court", "prison")
    ]
    console.print(
        table("How stages were attached", ["agency", "records", "by case ref", "by dates", "orphan"], rows)
    )
    console.print(
        f"{s.journeys:,} journeys of {s.persons:,} persons → {out}\n"
        f"police/CPS DA flag disagreements: {s.da_flag_disagreements:,}; case references shared by two "
        f"predicted persons: {s.case_reference_across_persons:,}; data end: {s.data_end}"
    )


@click.command("journeys")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=ExistingDir,
    help="Run folder written by `linkage run` (clusters.parquet, inputs/).",
)
@click.option(
    "--extracts",
    "extracts_dir",
    type=ExistingDir,
    help="Folder of the pseudonymised extracts [default: as named in RUN/run.json].",
)
@output_options
def journeys_cmd(run_dir: Path, extracts_dir: Path | None, ui: Output) -> None:
    """Assemble case journeys (police → CPS → court → prison) for every linked person.

    Writes RUN/journeys.parquet (one row per case journey, stage dates and source record keys, no
    tokens) and RUN/journeys.json. The extracts must be byte-identical to those the run linked.
    Journey microdata never leaves the secure environment: publish only through `linkage release`.
    """
    with ui.status("assembling case journeys"):
        summary = build_journeys(run_dir, extracts_dir)
    ui.result(asdict(summary), lambda c: _render(c, summary, run_dir / "journeys.parquet"))
