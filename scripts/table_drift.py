"""How far the engine's clusters move the release tables' counts, against the true clusters (before SDC).

Takes a finished demo folder (`make demo`: synthetic truth, signed extracts, a linkage run with its
journeys), assembles a second set of journeys from the same extracts with clusters = the true persons,
builds every table of the release policy from both, and compares them count cell by count cell, before
disclosure control (perturbation, rounding and suppression would hide the differences being measured).
Tables built from the true clusters equal counts computed independently from the synthetic truth
(tests/test_release_tables.py), so the gap is what linkage errors cost each table.

    .venv/bin/python scripts/table_drift.py [--demo demo] [--tables probation police_perpetrated ...]

Prints one JSON document per table (and writes them to scripts/results/table_drift.json): cells, cells
whose count differs, the sum and largest absolute difference, and the table's total under both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import duckdb

from linkage.config import load_config
from linkage.config.release import ReleasePolicy
from linkage.journeys.assemble import AGENCIES, assemble_journeys
from linkage.release.tables import ALL, Cube, build_cube, open_journeys

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "configs" / "release.yaml"
# the tables issue 15 adds for probation and police-perpetrated abuse (prefixes of their names)
DEFAULT_TABLES = ("probation", "police_perpetrated")


def true_journeys(extracts: Path, truth: Path, out: Path) -> Path:
    """journeys.parquet assembled from ``extracts`` with every record in its true person's cluster."""
    agencies = [a for a in AGENCIES if (extracts / f"{a}.parquet").exists()]
    selects = " UNION ALL ".join(
        f"SELECT '{a}' AS source_dataset, record_key, source_row FROM read_parquet('{extracts / a}.parquet')"
        for a in agencies
    )
    clusters = out / "clusters.parquet"
    duckdb.sql(f"""
        COPY (SELECT e.source_dataset, e.record_key, e.source_row, t.person_id
              FROM ({selects}) e JOIN read_parquet('{truth / "records.parquet"}') t
              USING (source_dataset, source_row))
        TO '{clusters}' (FORMAT parquet)""")
    journeys = out / "journeys.parquet"
    assemble_journeys(clusters, {a: extracts / f"{a}.parquet" for a in agencies}, journeys)
    return journeys


def _cube(journeys: Path, policy: ReleasePolicy) -> Cube:
    con, _ = open_journeys(journeys)
    return build_cube(con, policy)


def drift(engine: Cube, truth: Cube, names: list[str]) -> list[dict]:
    """Per table: how many of its count cells the engine's clusters change, and by how much."""
    out = []
    for t_eng, t_true in zip(engine.tables, truth.tables, strict=True):
        if t_eng.spec.name not in names:
            continue
        diffs, totals = [], {}
        for r_true in t_true.rows:
            for m, key in r_true.keys.items():
                true_n = truth.counts[key].n
                eng_n = engine.counts[key].n if key in engine.counts else 0
                diffs.append(eng_n - true_n)
                if all(v == ALL for v in r_true.labels.values()):
                    totals[m] = {"true": true_n, "engine": eng_n}
        # a breakdown value only the engine produced (e.g. a wrong DA history) is a cell truth lacks
        true_keys = {k for r in t_true.rows for k in r.keys.values()}
        extra = [engine.counts[k].n for r in t_eng.rows for k in r.keys.values() if k not in true_keys]
        diffs += extra
        out.append(
            {
                "table": t_eng.spec.name,
                "cells": len(diffs),
                "cells_changed": sum(1 for d in diffs if d),
                "sum_abs_difference": sum(abs(d) for d in diffs),
                "max_abs_difference": max((abs(d) for d in diffs), default=0),
                "totals": totals,
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=ROOT / "demo", help="folder `make demo` wrote")
    parser.add_argument("--run", default="demo", help="run name under DEMO/secure/runs/")
    parser.add_argument("--policy", type=Path, default=POLICY)
    parser.add_argument("--tables", nargs="*", default=list(DEFAULT_TABLES), help="table names or prefixes")
    args = parser.parse_args()
    policy = load_config(args.policy, ReleasePolicy)
    names = [t.name for t in policy.tables if t.name.startswith(tuple(args.tables))]
    engine_journeys = args.demo / "secure" / "runs" / args.run / "journeys.parquet"
    if not engine_journeys.is_file():
        print(f"{engine_journeys}: not found; run `make demo` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="table-drift-") as tmp:
        truth = true_journeys(args.demo / "secure" / "extracts", args.demo / "raw" / "truth", Path(tmp))
        result = {
            "policy": str(args.policy.relative_to(ROOT) if args.policy.is_relative_to(ROOT) else args.policy),
            "tables": drift(_cube(engine_journeys, policy), _cube(truth, policy), names),
        }
    text = json.dumps(result, indent=2)
    print(text)
    (ROOT / "scripts" / "results" / "table_drift.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
