"""`linkage journeys`: assemble a run's case journeys into RUN/journeys.parquet (secure zone only)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console

from linkage.journeys.build import JourneysResult, build_journeys
from linkage.ui import ExistingDir, Output, output_options, table


def _render(console: Console, result: JourneysResult) -> None:
    s = result.summary
    rows = [
        [
            a,
            f"{s.records[a]:,}",
            f"{s.attached_by_reference[a]:,}",
            f"{s.attached_by_dates[a]:,}",
            f"{s.orphans[a]:,}",
        ]
        for a in s.orphans
    ]
    console.print(
        table("How stages were attached", ["agency", "records", "by case ref", "by dates", "orphan"], rows)
    )
    console.print(
        f"{s.journeys:,} journeys of {s.persons:,} persons → {result.journeys}\n"
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
    help="Folder of the pseudonymised extracts [default: as recorded in RUN/run.json].",
)
@output_options
def journeys_cmd(run_dir: Path, extracts_dir: Path | None, ui: Output) -> None:
    """Assemble case journeys (police → CPS → court → prison / probation) for every linked person.

    Refuses (exit 1) a run that is incomplete, modified since it was written, or whose extracts are not
    the signed extracts it linked. Writes RUN/journeys.parquet (one row per case journey, stage dates
    and source record keys, no tokens) and RUN/journeys.json, owner-only. Journey microdata never leaves
    the secure environment: publish only through `linkage release`.
    """
    with ui.status("assembling case journeys"):
        result = build_journeys(run_dir, extracts_dir)
    ui.result(asdict(result.summary), lambda c: _render(c, result))
