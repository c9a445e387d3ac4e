"""How far the engine's clusters move the release tables' counts, against the true clusters (before SDC).

Synthetic data only (it reads truth/). For a run with journeys, the same journeys and victims are
assembled again from the same extracts with every record in its TRUE person (truth/records.parquet), and
every table of the release policy is built from both and compared count cell by count cell, before
disclosure control (perturbation, rounding and suppression would hide the differences being measured).
Tables built from the true clusters equal counts computed independently from the synthetic truth
(tests/test_release_tables.py, tests/test_victims.py), so the gap is what linkage errors cost each table.

    .venv/bin/python scripts/table_drift.py --demo demo [--tables probation victims ...]

Prints one JSON document (and writes it to scripts/results/table_drift.json unless --out says
otherwise): per table, its cells, the cells whose count differs, the sum and largest absolute
difference, and the table's totals under both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from linkage.config import load_config
from linkage.config.release import ReleasePolicy
from linkage.evaluate import write_true_clusters
from linkage.journeys.assemble import assemble_journeys
from linkage.journeys.victims import assemble_victims
from linkage.release.tables import ALL, Cube, build_cube, open_journeys
from linkage.runfolder import open_run

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "configs" / "release.yaml"

Cells = dict[tuple[tuple[str, ...], str], int]


def cells(cube: Cube, name: str) -> Cells:
    """A table's counts by (breakdown labels, measure)."""
    table = next(t for t in cube.tables if t.spec.name == name)
    return {
        (tuple(r.labels[d] for d in table.spec.by), m): cube.counts[k].n
        for r in table.rows
        for m, k in r.keys.items()
    }


def true_cube(run: Path, truth: Path, policy: ReleasePolicy, work: Path) -> Cube:
    """The policy's tables over journeys and victims assembled from the run's extracts, true clusters."""
    extracts = open_run(run, require=("journeys",)).extracts
    write_true_clusters(extracts, truth, work / "clusters.parquet")
    assemble_journeys(work / "clusters.parquet", extracts, work / "journeys.parquet")
    assemble_victims(
        work / "clusters.parquet", extracts["police"], work / "journeys.parquet", work / "victims.parquet"
    )
    return build_cube(open_journeys(work / "journeys.parquet")[0], policy)


def drift(engine: Cube, truth: Cube, policy: ReleasePolicy) -> list[dict]:
    """Per table: how many of its count cells the engine's clusters change, and by how much (a breakdown
    value only one side produced, e.g. a wrong DA history, counts as 0 on the other)."""
    out = []
    for spec in policy.tables:
        got, want = cells(engine, spec.name), cells(truth, spec.name)
        diffs = [abs(got.get(k, 0) - want.get(k, 0)) for k in got.keys() | want.keys()]
        everything = (ALL,) * len(spec.by)
        out.append(
            {
                "table": spec.name,
                "cells": len(diffs),
                "cells_changed": sum(1 for d in diffs if d),
                "sum_abs_difference": sum(diffs),
                "max_abs_difference": max(diffs, default=0),
                "totals": {
                    m: {"true": want.get((everything, m), 0), "engine": got.get((everything, m), 0)}
                    for m in spec.measures
                },
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=ROOT / "demo", help="folder `make demo` wrote")
    parser.add_argument("--run", default="demo", help="run name under DEMO/secure/runs/")
    parser.add_argument("--policy", type=Path, default=POLICY)
    parser.add_argument("--tables", nargs="*", default=[], help="table names or prefixes (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "table_drift.json")
    args = parser.parse_args(argv)
    policy = load_config(args.policy, ReleasePolicy)
    chosen = [t for t in policy.tables if t.name.startswith(tuple(args.tables) or ("",))]
    policy = policy.model_copy(update={"tables": chosen})
    run = args.demo / "secure" / "runs" / args.run
    if not (run / "journeys.parquet").is_file():
        print(f"{run / 'journeys.parquet'}: not found; run `make demo` first", file=sys.stderr)
        return 2
    engine = build_cube(open_journeys(run / "journeys.parquet")[0], policy)
    with tempfile.TemporaryDirectory(prefix="table-drift-") as tmp:
        truth = true_cube(run, args.demo / "raw" / "truth", policy, Path(tmp))
    result = {"run": str(run), "persons": json.loads((args.demo / "raw" / "truth" / "synth.json").read_text())
              .get("persons"), "tables": drift(engine, truth, policy)}  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
