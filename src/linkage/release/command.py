"""`linkage release`: the only door out of the secure zone — protected aggregate tables and their evidence.

The bundle is built in a temporary folder beside --out and renamed into place only when every
check has passed, so a refused release writes nothing:
  tables/<name>.csv + tables/<name>.json   one protected table and its definitions, SDC and provenance
  report.html                              offline charts and tables for a policy reader
  acro/                                    ACRO's results.json, outputs, session summary and checksums
  release.json, SHA256SUMS                 what was released, from which run, and every file's hash
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from linkage import __version__
from linkage.config import config_sha256, load_config
from linkage.config.release import ReleasePolicy
from linkage.errors import ConfigError
from linkage.extract.manifest import read_manifest
from linkage.release import acro_bundle
from linkage.release.report import FUNNEL, render_report
from linkage.release.tables import (
    ALL,
    Published,
    build_cube,
    check_policy,
    check_published,
    open_journeys,
    protect_cube,
    publish,
)
from linkage.release.vocabulary import DIMENSIONS, MEASURES, STATISTICS
from linkage.runfolder import open_run
from linkage.runlog import logged
from linkage.ui import ExistingDir, ExistingFile, Output, output_options
from linkage.util import sha256_file

GUARANTEES = (
    "Every published count is >= the threshold (journeys and distinct persons) and a multiple of the "
    "rounding base; zeros are withheld when zeros_disclosive. Every additive line (a dimension's values and "
    "their total) of every table has 0 or >= 2 withheld cells, jointly across tables (shared cells share "
    "one decision), and no withheld count is exactly determined by the linear system of all published "
    "lines (audit, within linear_audit_max_cells). Not guaranteed: a minimum width of the interval an "
    "attacker can derive for a withheld cell, or protection against information from outside the release."
)


@dataclass
class ReleaseResult:
    out_dir: Path
    tables: list[Published]
    meta: dict[str, Any]


def _provenance(run_dir: Path, policy_path: Path, journeys: Path) -> dict[str, Any]:
    manifests = {}
    for path in sorted((run_dir / "inputs").rglob("*.manifest.json")):
        manifest, _ = read_manifest(path)
        manifests[manifest.agency] = {
            "manifest_sha256": sha256_file(path),
            "extract_sha256": manifest.output.sha256,
        }
    configs = {p.name: sha256_file(p) for p in sorted((run_dir / "inputs").rglob("*.yaml"))}
    return {
        "run_id": run_dir.name,
        "policy_sha256": config_sha256(policy_path),
        "journeys_sha256": sha256_file(journeys),
        "clusters_sha256": sha256_file(run_dir / "clusters.parquet"),
        "linkage_configs_sha256": configs,
        "manifests": manifests,
    }


def _table_meta(t: Published, policy: ReleasePolicy, provenance: dict[str, Any]) -> dict[str, Any]:
    spec = t.spec
    return {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "file": f"{spec.name}.csv",
        "unit": "case journey (one crime with a named suspect and what followed it)",
        "population": spec.where,
        "dimensions": {d: DIMENSIONS[d].description for d in [*spec.by, *spec.where]},
        "measures": {
            m: {
                "label": MEASURES[m].label,
                "definition": MEASURES[m].description,
                "conditions": MEASURES[m].conditions,
            }
            for m in spec.measures
        },
        "statistics": {s: STATISTICS[s].description for s in spec.statistics},
        "margins": f"every combination of the breakdowns, with '{ALL}' for a margin",
        "sdc": policy.sdc.model_dump(),
        "suppression": {
            "cells": t.cells,
            "primary": t.primary,
            "secondary": t.secondary,
            "statistics_withheld": t.stats_withheld,
        },
        "provenance": provenance,
    }


def build_release(run_dir: Path, policy_path: Path, out_dir: Path) -> ReleaseResult:
    """Build, check and write a release bundle; raise before writing anything if a check fails."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    journeys = run_dir / "journeys.parquet"
    if out_dir.exists():
        raise ConfigError(f"{out_dir}: already exists (a release is never overwritten; choose a new id)")
    with logged("release", configs=[policy_path], inputs=[journeys, run_dir / "clusters.parquet"]) as entry:
        # refuses a run (and its journeys) that is incomplete, modified, or whose extracts changed
        open_run(run_dir, require=("journeys",))
        policy = load_config(policy_path, ReleasePolicy)
        con, data_end = open_journeys(journeys)
        check_policy(
            policy,
            {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(journeys)]).fetchall()},
        )
        cube = build_cube(con, policy)
        counts, magnitudes = protect_cube(cube, policy)
        tables = publish(cube, counts, magnitudes, policy)
        check_published(tables, policy)
        provenance = _provenance(run_dir, policy_path, journeys)
        meta = {
            "release_id": out_dir.name,
            "title": policy.title,
            "publisher": policy.publisher,
            "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "tool_version": __version__,
            "run_id": run_dir.name,
            "data_end": str(data_end),
            "sdc": policy.sdc.model_dump(),
            "guarantees": GUARANTEES,
            "suppression": {
                "count_cells": len(cube.counts),
                "primary": len(counts.primary),
                "secondary": len(counts.secondary),
                "magnitude_primary": len(magnitudes.primary),
                "magnitude_secondary": len(magnitudes.secondary),
                "audit_skipped_groups": counts.audit_skipped_groups + magnitudes.audit_skipped_groups,
            },
            "provenance": provenance,
            "tables": [t.spec.name for t in tables],
        }
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            meta["acro"] = acro_bundle.check_and_record(con, tables, policy, stage / "acro")
            _write_bundle(stage, tables, policy, meta)
            os.replace(stage, out_dir)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        entry.add_output(out_dir)
    return ReleaseResult(out_dir, tables, meta)


def _write_bundle(stage: Path, tables: list[Published], policy: ReleasePolicy, meta: dict[str, Any]) -> None:
    (stage / "tables").mkdir()
    for t in tables:
        with open(stage / "tables" / f"{t.spec.name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(t.header)
            w.writerows(t.rows)
        table_meta = _table_meta(t, policy, meta["provenance"])
        (stage / "tables" / f"{t.spec.name}.json").write_text(json.dumps(table_meta, indent=2) + "\n")
    (stage / "report.html").write_text(render_report(tables, meta), encoding="utf-8")
    (stage / "release.json").write_text(json.dumps(meta, indent=2) + "\n")
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    sums = "".join(f"{sha256_file(p)}  {p.relative_to(stage)}\n" for p in files)
    (stage / "SHA256SUMS").write_text(sums)


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
    s, acro = result.meta["suppression"], result.meta["acro"]
    statuses = ", ".join(f"{v} {list(acro.values()).count(v)}" for v in sorted(set(acro.values())))
    console.print(
        f"{len(result.tables)} tables, {s['count_cells']:,} distinct count cells: {s['primary']:,} withheld "
        f"by the primary rules, {s['secondary']:,} by secondary suppression. ACRO outputs: {statuses}"
    )
    console.print(f"release bundle: {result.out_dir}\nreport: {result.out_dir / 'report.html'}")


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
@output_options
def release_cmd(run_dir: Path, policy_path: Path, out_dir: Path, ui: Output) -> None:
    """Build the policy's aggregate tables under disclosure control and write the release bundle.

    Counts below the threshold (journeys or persons) and zeros are withheld, then complementary cells so
    none can be derived from totals in any table of the release; the rest are rounded. ACRO re-checks
    every table. Refuses (exit 1, nothing written) tokens, record keys, row numbers and record-level tables.
    """
    result = build_release(run_dir, policy_path, out_dir)
    data = {**result.meta, "out_dir": str(result.out_dir), "report": str(result.out_dir / "report.html")}
    ui.result(data, lambda c: _render(c, result))
