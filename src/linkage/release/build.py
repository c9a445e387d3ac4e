"""The release stage: journeys.parquet + a release policy -> a published bundle and a checker pack.

`build_release` is the plain stage function behind `linkage release` (release/command.py only parses
options and renders). Nothing is written unless every check passes: the policy's vocabulary
(config/release.py), the SDC floors (unless overridden), disclosure control, the last-line check
of every published value and ACRO's re-check. The folder layout and the completion order are in
release/bundle.py; the order of perturbation, threshold, rounding and suppression in
release/perturb.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from linkage import __version__
from linkage.config import config_sha256, load_config
from linkage.config.release import ReleasePolicy, below_floors
from linkage.errors import ConfigError
from linkage.extract.manifest import read_manifest
from linkage.release import acro_bundle, bundle, sdc
from linkage.release.lookups import with_force_names
from linkage.release.report import render_report
from linkage.release.tables import (
    ALL,
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    SUPPRESSED,
    Cube,
    DisclosureRefused,
    Published,
    build_cube,
    check_published,
    open_journeys,
    protect_cube,
    publish,
    published_counts,
)
from linkage.release.vocabulary import DIMENSIONS, MEASURES, STATISTICS, label
from linkage.runfolder import open_run
from linkage.runlog import logged
from linkage.util import sha256_file

GUARANTEES = (
    "Every published count is >= the threshold (journeys and distinct persons) and a multiple of the "
    "rounding base; zeros are withheld when zeros_disclosive. With cell key perturbation (the default) "
    "each count is randomly rounded to the base by a key derived from the journeys it counts, so the "
    "same journeys always give the same value and a difference of one journey shows as 0 or one base; "
    "means and quartiles of days are randomly rounded to the magnitude base the same way. Every additive "
    "line (a dimension's values and their total) of every table has 0 or >= 2 withheld cells, jointly "
    "across tables (shared cells share one decision), and no withheld count is exactly determined by the "
    "linear system of all published lines (audit, within linear_audit_max_cells). Not guaranteed: a "
    "minimum width of the interval an attacker can derive for a withheld cell, protection against "
    "information from outside the release, or hiding which cells changed between two releases."
)
ROW_NUMBER_WARNING = (
    "record keys of {agency} come from row numbers (manifest record_id_source: row_number): removing "
    "or reordering one row re-draws the perturbation of every later record, so releases of two extracts "
    "can be averaged; extract with a stable record id column"
)


@dataclass
class ReleaseResult:
    out_dir: Path
    checker_dir: Path
    tables: list[Published]
    meta: dict[str, Any]


def _provenance(run_dir: Path, policy_path: Path, journeys: Path) -> tuple[dict[str, Any], list[str]]:
    """What the release was built from, and a warning per extract whose record keys are row numbers."""
    manifests, warnings = {}, []
    for path in sorted((run_dir / "inputs").rglob("*.manifest.json")):
        manifest, _ = read_manifest(path)
        manifests[manifest.agency] = {
            "manifest_sha256": sha256_file(path),
            "extract_sha256": manifest.output.sha256,
        }
        # field added by the extract stage (issue 14); absent in older manifests: a stable id column
        if json.loads(path.read_text(encoding="utf-8")).get("record_id_source") == "row_number":
            warnings.append(ROW_NUMBER_WARNING.format(agency=manifest.agency))
    configs = {p.name: sha256_file(p) for p in sorted((run_dir / "inputs").rglob("*.yaml"))}
    provenance = {
        "run_id": run_dir.name,
        "policy_sha256": config_sha256(policy_path),
        "journeys_sha256": sha256_file(journeys),
        "clusters_sha256": sha256_file(run_dir / "clusters.parquet"),
        "linkage_configs_sha256": configs,
        "manifests": manifests,
    }
    return provenance, warnings


def _table_meta(t: Published, policy: ReleasePolicy, meta: dict[str, Any]) -> dict[str, Any]:
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
        "labels": {c: label(c) for c in [*spec.by, *spec.measures, *spec.statistics]},
        "symbols": {
            SUPPRESSED: "confidential: withheld by disclosure control",
            NOT_APPLICABLE: "not applicable: the table definition says the value cannot exist",
            NOT_AVAILABLE: "not available: no source of this release records it",
        },
        "not_available": {m: MEASURES[m].not_recorded for m in spec.measures if MEASURES[m].not_recorded},
        "not_applicable": {
            s: {d: list(v) for d, v in STATISTICS[s].not_applicable.items() if d in spec.by}
            for s in spec.statistics
            if any(d in spec.by for d in STATISTICS[s].not_applicable)
        },
        "margins": f"every combination of the breakdowns, with '{ALL}' for a margin",
        "sdc": policy.sdc.model_dump(),
        "floors_overridden": meta["floors_overridden"],
        "withheld": {"cells": t.cells, "count_cells_withheld": t.primary + t.secondary},
        "provenance": meta["provenance"],
    }


def _reasons(cube: Cube, values: dict, counts: sdc.Protection, policy: ReleasePolicy) -> list[list[str]]:
    """Why each withheld count is withheld, per table cell: for the checker pack only."""
    rows = []
    for table in cube.tables:
        for row in table.rows:
            for m, key in row.keys.items():
                if key not in counts.suppressed:
                    continue
                cell = cube.counts[key]
                if key in counts.secondary:
                    why = "secondary"
                else:
                    why = sdc.count_reason(cell.n, cell.persons, policy.sdc) or "perturbed below threshold"
                labels = "; ".join(f"{d}={v}" for d, v in row.labels.items())
                rows.append([table.spec.name, labels, m, why])
    return rows


def build_release(
    run_dir: Path,
    policy_path: Path,
    out_dir: Path,
    *,
    checker_dir: Path | None = None,
    allow_below_floors: bool = False,
    threads: int | None = None,
    step: Callable[[str], None] = lambda _msg: None,
) -> ReleaseResult:
    """Build, check and write a release bundle and its checker pack; raise before writing anything
    if a check fails. ``step`` reports progress."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    checker_dir = Path(checker_dir) if checker_dir else out_dir.with_name(out_dir.name + ".checker")
    journeys = run_dir / "journeys.parquet"
    for target in (out_dir, checker_dir):
        if target.exists():
            raise ConfigError(f"{target}: already exists (a release is never overwritten; choose a new id)")
    if checker_dir.resolve().is_relative_to(out_dir.resolve()):
        raise ConfigError(f"{checker_dir}: the checker pack may not be inside the published bundle")
    with logged("release", configs=[policy_path], inputs=[journeys, run_dir / "clusters.parquet"]) as entry:
        # refuses a run (and its journeys) that is incomplete, modified, or whose extracts changed
        open_run(run_dir, require=("journeys",))
        policy = load_config(policy_path, ReleasePolicy)
        loose = below_floors(policy.sdc)
        if loose and not allow_below_floors:
            raise DisclosureRefused(
                f"{policy_path}: below the release floors: {'; '.join(loose)} "
                "(only with --allow-below-floors, which is logged and printed in the bundle)"
            )
        if loose:
            entry.command = "release --allow-below-floors"  # the override is in the run log itself
        step("reading journeys")
        con, data_end = open_journeys(journeys, threads)
        step(f"building {len(policy.tables)} tables")
        cube = build_cube(con, policy)
        step(f"disclosure control over {len(cube.counts):,} count cells")
        values = published_counts(cube, policy)
        counts, magnitudes = protect_cube(cube, values, policy)
        tables = publish(cube, values, counts, magnitudes, policy)
        check_published(tables, policy)
        provenance, warnings = _provenance(run_dir, policy_path, journeys)
        meta = {
            "release_id": out_dir.name,
            "title": policy.title,
            "publisher": policy.publisher,
            "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "tool_version": __version__,
            "run_id": run_dir.name,
            "data_end": str(data_end),
            "sdc": policy.sdc.model_dump(),
            "floors_overridden": loose,
            "guarantees": GUARANTEES,
            "warnings": warnings,
            "withheld": {
                "count_cells": len(cube.counts),
                "count_cells_withheld": len(counts.suppressed),
                "magnitude_cells_withheld": len(magnitudes.suppressed),
            },
            "provenance": provenance,
            "tables": [t.spec.name for t in tables],
        }
        checker_meta = {
            "release_id": out_dir.name,
            "suppression": {
                "primary": len(counts.primary),
                "secondary": len(counts.secondary),
                "magnitude_primary": len(magnitudes.primary),
                "magnitude_secondary": len(magnitudes.secondary),
                "audit_skipped_groups": counts.audit_skipped_groups + magnitudes.audit_skipped_groups,
            },
        }
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        checker_dir.parent.mkdir(parents=True, exist_ok=True)
        with bundle.staged(out_dir) as (stage, place), bundle.staged(checker_dir) as (pack, place_pack):
            step("ACRO re-check of every table")
            checker_meta["acro"] = acro_bundle.check_and_record(con, tables, policy, pack / "acro")
            reasons = _reasons(cube, values, counts, policy)
            bundle.write_csv(pack / "suppression.csv", ["table", "row", "measure", "reason"], reasons)
            bundle.write_json(pack / "checker.json", checker_meta)
            bundle.write_sums(pack)
            step("writing the bundle")
            _write_bundle(stage, tables, policy, meta)
            place_pack()
            place()
        entry.add_output(out_dir)
        entry.add_output(checker_dir)
    bundle.mark_complete(out_dir)  # after the run-log entry: see release/bundle.py
    meta["acro"] = checker_meta["acro"]
    return ReleaseResult(out_dir, checker_dir, tables, meta)


def _write_bundle(stage: Path, tables: list[Published], policy: ReleasePolicy, meta: dict[str, Any]) -> None:
    (stage / "tables").mkdir()
    for t in tables:
        bundle.write_csv(stage / "tables" / f"{t.spec.name}.csv", *with_force_names(t.header, t.rows))
        bundle.write_json(stage / "tables" / f"{t.spec.name}.json", _table_meta(t, policy, meta))
    (stage / "report.html").write_text(render_report(tables, meta), encoding="utf-8")
    bundle.write_json(stage / "release.json", meta)
    bundle.write_sums(stage)
