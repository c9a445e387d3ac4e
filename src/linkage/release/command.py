"""`linkage release`: options and rendering over release/build.py (the stage function)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from linkage.release.build import ReleaseResult, build_release
from linkage.release.report import FUNNEL
from linkage.release.tables import ALL
from linkage.release.vocabulary import MEASURES
from linkage.ui import ExistingDir, ExistingFile, Output, output_options


def _render(console: Console, result: ReleaseResult) -> None:
    funnel = next((t for t in result.tables if "recorded" in t.spec.measures and len(t.spec.by) <= 1), None)
    if funnel is not None:
        n_by = len(funnel.spec.by)
        heads = [str(r[0]) if n_by else ALL for r in funnel.rows]
        base_note = f"rounded to {result.meta['sdc']['rounding_base']}; [c] withheld"
        grid = Table(title=escape(f"{funnel.spec.title} ({base_note})"), title_justify="left")
        grid.add_column("stage")
        for h in heads:
            grid.add_column(h, justify="right")
        total = funnel.rows[-1]
        grid.add_column("% of recorded (All)", justify="right")
        base = total[n_by + funnel.spec.measures.index("recorded")]
        for i, m in enumerate(funnel.spec.measures):
            cells = [
                f"{r[n_by + i]:,}" if isinstance(r[n_by + i], int) else str(r[n_by + i]) for r in funnel.rows
            ]
            v = total[n_by + i]
            share = (
                f"{100 * v / base:.1f}%"
                if m in FUNNEL and isinstance(v, int) and isinstance(base, int) and base
                else ""
            )
            grid.add_row(MEASURES[m].label, *cells, share)
        console.print(grid)
    s, acro = result.meta["withheld"], result.meta["acro"]
    statuses = ", ".join(f"{v} {list(acro.values()).count(v)}" for v in sorted(set(acro.values())))
    console.print(
        f"{len(result.tables)} tables, {s['count_cells']:,} distinct count cells, "
        f"{s['count_cells_withheld']:,} withheld. ACRO outputs: {statuses}"
    )
    if result.meta["floors_overridden"]:
        console.print(f"[red]floors overridden:[/] {escape('; '.join(result.meta['floors_overridden']))}")
    console.print(
        f"release bundle: {result.out_dir}\nreport: {result.out_dir / 'report.html'}\n"
        f"checker pack (not for publication): {result.checker_dir}"
    )


@click.command("release")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=ExistingDir,
    help="Run folder holding journeys.parquet (from `linkage journeys`).",
)
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=ExistingFile,
    help="Release policy (YAML), e.g. configs/release.yaml.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="New release folder.")
@click.option(
    "--checker-out",
    "checker_dir",
    type=click.Path(path_type=Path),
    help="New folder for the output checker's pack (ACRO results, suppression reasons) "
    "[default: <out>.checker beside the bundle; never inside it].",
)
@click.option(
    "--allow-below-floors",
    is_flag=True,
    help="Release a policy looser than the floors (threshold 10, rounding base 5, dominance (2, 0.9), "
    "p% 0.10, zeros disclosive). Logged in the run log and printed in the bundle.",
)
@click.option("--threads", type=click.IntRange(min=1), help="DuckDB threads (tables never depend on it).")
@output_options
def release_cmd(
    run_dir: Path,
    policy_path: Path,
    out_dir: Path,
    checker_dir: Path | None,
    allow_below_floors: bool,
    threads: int | None,
    ui: Output,
) -> None:
    """Build the policy's aggregate tables under disclosure control and write the release bundle.

    Counts below the threshold (journeys or persons) and zeros are withheld, then complementary cells so
    none can be derived from totals in any table of the release; the rest are perturbed by cell key
    (randomly rounded to the base, the same way for the same journeys in every release). ACRO re-checks
    every table into a separate checker pack. Refuses (nothing written) a policy outside the release
    vocabulary (exit 2) or below the floors (exit 1).
    """
    started = time.perf_counter()

    def step(message: str) -> None:
        ui.info(f"[dim]{time.perf_counter() - started:7.1f}s[/] {escape(message)}")

    result = build_release(
        run_dir,
        policy_path,
        out_dir,
        checker_dir=checker_dir,
        allow_below_floors=allow_below_floors,
        threads=threads,
        step=step,
    )
    for warning in result.meta["warnings"]:
        ui.warn(escape(warning))
    data = {
        **result.meta,
        "out_dir": str(result.out_dir),
        "checker_dir": str(result.checker_dir),
        "report": str(result.out_dir / "report.html"),
    }
    ui.result(data, lambda c: _render(c, result))
