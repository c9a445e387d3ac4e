"""How far the engine's clusters move the victim and perpetrator tables, against the true clusters.

Synthetic data only (it reads truth/). For a completed run (clusters + journeys), the same journeys and
victims are assembled again from the TRUE person ids (truth/records.parquet joined to the run's own
extracts), and every victim / perpetrator table of the release policy is built from both, before
disclosure control. Prints one JSON object: per table, the cells compared, how many differ, the sum and
the largest absolute difference, and the "All" row of each measure (engine vs truth).

    .venv/bin/python scripts/victims_drift.py --run demo/secure/runs/demo --truth demo/raw/truth
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
from linkage.release.tables import ALL, Cube, build_cube, open_journeys, unit_of
from linkage.runfolder import open_run


def cells(cube: Cube, name: str) -> dict[tuple, int]:
    table = next(t for t in cube.tables if t.spec.name == name)
    return {
        (tuple(r.labels[d] for d in table.spec.by), m): cube.counts[k].n
        for r in table.rows
        for m, k in r.keys.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="completed run folder with journeys")
    ap.add_argument("--truth", type=Path, required=True, help="the synthetic data's truth/ folder")
    ap.add_argument("--policy", type=Path, default=Path("configs/release.yaml"))
    args = ap.parse_args(argv)
    run = open_run(args.run, require=("journeys",))
    policy = load_config(args.policy, ReleasePolicy)
    people = [t for t in policy.tables if unit_of(t) != "journeys"]
    policy = policy.model_copy(update={"tables": people})
    engine = build_cube(open_journeys(args.run / "journeys.parquet")[0], policy)
    with tempfile.TemporaryDirectory(prefix="victims-drift-") as tmp:
        folder = Path(tmp)
        write_true_clusters(run.extracts, args.truth, folder / "clusters.parquet")
        assemble_journeys(folder / "clusters.parquet", run.extracts, folder / "journeys.parquet")
        assemble_victims(
            folder / "clusters.parquet",
            run.extracts["police"],
            folder / "journeys.parquet",
            folder / "victims.parquet",
        )
        truth = build_cube(open_journeys(folder / "journeys.parquet")[0], policy)
    out = {}
    for spec in people:
        got, want = cells(engine, spec.name), cells(truth, spec.name)
        keys = got.keys() | want.keys()
        diffs = [abs(got.get(k, 0) - want.get(k, 0)) for k in keys]
        totals = {
            m: {
                "engine": got.get(((ALL,) * len(spec.by), m), 0),
                "truth": want.get(((ALL,) * len(spec.by), m), 0),
            }
            for m in spec.measures
        }
        out[spec.name] = {
            "cells": len(keys),
            "cells_differing": sum(d > 0 for d in diffs),
            "sum_abs_difference": sum(diffs),
            "max_abs_difference": max(diffs, default=0),
            "totals": totals,
        }
    json.dump({"run": str(args.run), "tables": out}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
