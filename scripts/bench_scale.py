"""Scaling benchmark: `linkage run` (DuckDB) at growing N, and the Spark backend's overhead.

For each size, synthetic data (`linkage synth`, default noise, seed 2) is generated and
pseudonymised once and cached (shared with scripts/bench_link.py under /tmp/justice-linkage-bench);
then `run_linkage` with configs/linkage.yaml runs in a fresh process per size (so peak RSS is that
run's alone) and is scored with `linkage evaluate`. Reported per run: wall time per stage,
comparisons generated (after blocking), peak RSS, pairwise F1 and seconds per million records;
then the fitted growth exponent b in time ~ N^b (least squares on log-log; 1 = linear, N log N
looks like about 1.05-1.1 over this range, 2 = quadratic), overall and per stage.

The Spark backend (local mode, `local[*]`) runs on the smallest size too; its overhead is the
ratio of its wall time to DuckDB's, and its clusters are compared with DuckDB's.

    python scripts/bench_scale.py                 # 100 k, 1 M and 3 M records (+ Spark at 100 k)
    python scripts/bench_scale.py --quick         # 10 k and 100 k records (+ Spark at 10 k)
    python scripts/bench_scale.py --national --no-spark   # adds the 10 M-record point (~40 min, ~8 GB)

Writes scripts/results/bench_scale.json (or bench_scale_quick.json) and prints a Markdown table for
docs/benchmarks.md. Persons -> records: about 4.7 records per synthetic person since victims are records
of their own and probation a fifth source (2.62 before).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
CONFIG = ROOT / "configs" / "linkage.yaml"
FULL = (21_000, 212_000, 636_000)  # about 100 k, 1 M and 3 M records
QUICK = (2_100, 21_000)  # about 10 k and 100 k records
NATIONAL = 2_120_000  # about 10 M records: the national-scale point (issue 13)
STAGES = ("load", "train", "predict", "cluster", "outputs")


def run_child(data: Path, out: Path, engine: str) -> dict:
    """One linkage run in this process (called in a child): timings, comparisons, RSS, accuracy."""
    from linkage.config import load_config
    from linkage.config.linkage import LinkageConfig
    from linkage.evaluate import evaluate
    from linkage.link.run import run_linkage

    config = load_config(CONFIG, LinkageConfig)
    backend = config.backend.model_validate({**config.backend.model_dump(), "engine": engine})
    config = config.model_copy(update={"backend": backend})
    started = time.perf_counter()
    result = run_linkage(
        config, CONFIG, out, extracts_dir=data / "extracts", trusted_keys_dir=data / "trusted", overwrite=True
    )
    wall = time.perf_counter() - started
    m, t = result.metrics, result.metrics.timings_seconds
    pairwise = evaluate(out, data / "raw" / "truth").pairwise
    return {
        "engine": engine,
        "records": m.records_total,
        "comparisons": m.comparisons_total,
        "blocking": {b.name: b.comparisons for b in m.blocking},
        "pairs_above_floor": m.pairs_above_floor,
        "stages": {
            "load": t["verify"] + t["load"],
            "train": t["train_lambda"] + t["train_u"] + t["train_m"],
            "predict": t["predict"],
            "cluster": t["cluster"],
            "outputs": t["write"] + t["metrics"] + t["report"],
        },
        "timings_seconds": t,
        "wall_seconds": wall,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "precision": pairwise.precision,
        "recall": pairwise.recall,
        "f1": pairwise.f1,
        "threshold": result.metrics.threshold.model_dump(exclude={"curve"}),
        # the machine is shared: 1/5/15-minute load averages at the end (2 cores; above 2, times inflate)
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def cluster_agreement(a: Path, b: Path) -> dict:
    """How far two runs' clusters agree: records whose set of co-clustered records differs."""
    import duckdb

    con = duckdb.connect()
    for name, run in (("a", a), ("b", b)):
        con.execute(f"""
            CREATE TABLE {name} AS SELECT source_dataset, record_key,
                   min(source_dataset || ':' || record_key) OVER (PARTITION BY person_id) AS rep,
                   count(*) OVER (PARTITION BY person_id) AS size
            FROM read_parquet('{run / "clusters.parquet"}')
        """)
    # same partition <=> each record's smallest co-member and cluster size agree
    records, differ = con.execute("""
        SELECT count(*), count(*) FILTER (a.rep <> b.rep OR a.size <> b.size)
        FROM a JOIN b USING (source_dataset, record_key)
    """).fetchall()[0]
    return {"records": records, "records_in_different_clusters": differ}


def growth(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): y ~ x^b."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def markdown(runs: list[dict], spark: dict | None) -> str:
    lines = [
        "| records | engine | comparisons | load | train | predict | cluster | outputs | total s "
        "| s per M records | peak RSS GiB | GiB per M | F1 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [*runs, *([spark] if spark else [])]:
        st, per_m = r["stages"], r["records"] / 1e6
        rss = r["peak_rss_bytes"] / 2**30
        lines.append(
            f"| {r['records']:,} | {r['engine']} | {r['comparisons']:,} "
            + " ".join(f"| {st[s]:.1f}" for s in STAGES)
            + f" | {r['wall_seconds']:.1f} | {r['wall_seconds'] / per_m:.1f} | {rss:.2f} "
            f"| {rss / per_m:.2f} | {r['f1']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 k and 100 k records only (minutes).")
    parser.add_argument("--persons", type=int, action="append", help="Synthetic persons (repeatable).")
    parser.add_argument("--no-spark", action="store_true", help="Skip the Spark run.")
    parser.add_argument(
        "--national", action="store_true", help=f"Add {NATIONAL:,} persons (about 10 M records)."
    )
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/justice-linkage-bench"))
    parser.add_argument("--out", type=Path, help="Results JSON (default scripts/results/bench_scale*.json).")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, data, out = args.child
        print(json.dumps(run_child(Path(data), Path(out), engine)))
        return

    from bench_link import child, ensure_data

    sizes = list(args.persons or (QUICK if args.quick else FULL)) + ([NATIONAL] if args.national else [])
    out_json = args.out or ROOT / "scripts" / "results" / (
        "bench_scale_quick.json" if args.quick else "bench_scale.json"
    )
    runs, spark, built = [], None, {}
    for persons in sizes:
        t = time.perf_counter()
        data = ensure_data(persons, args.seed, args.cache)
        built[persons] = time.perf_counter() - t
        out = args.cache / f"scale-duckdb-{persons}"
        run = child("duckdb", data, out, __file__)
        run["persons"] = persons
        runs.append(run)
        print(f"{persons} persons, duckdb: {json.dumps(run)}", file=sys.stderr)
    if not args.no_spark:
        persons = sizes[0]
        data = ensure_data(persons, args.seed, args.cache)
        spark = child("spark", data, args.cache / f"scale-spark-{persons}", __file__)
        spark["persons"] = persons
        spark["overhead_vs_duckdb"] = spark["wall_seconds"] / runs[0]["wall_seconds"]
        spark["clusters_vs_duckdb"] = cluster_agreement(
            args.cache / f"scale-duckdb-{persons}", args.cache / f"scale-spark-{persons}"
        )
        print(f"{persons} persons, spark: {json.dumps(spark)}", file=sys.stderr)
    for persons in sizes:  # run folders hold tokens' derivatives only in work/ (deleted); keep the cache lean
        shutil.rmtree(args.cache / f"scale-duckdb-{persons}" / "work", ignore_errors=True)

    n = [r["records"] for r in runs]
    fitted = {
        "total": growth(n, [r["wall_seconds"] for r in runs]),
        "comparisons": growth(n, [r["comparisons"] for r in runs]),
        "peak_rss": growth(n, [r["peak_rss_bytes"] for r in runs]),
        **{stage: growth(n, [r["stages"][stage] for r in runs]) for stage in STAGES},
    }
    result = {
        "config": str(CONFIG.relative_to(ROOT)),
        "runs": runs,
        "spark": spark,
        "growth_exponent": fitted,
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(runs, spark))
    print(
        "\nfitted growth exponent b (time ~ N^b): "
        + ", ".join(f"{k} {v:.2f}" for k, v in fitted.items() if v is not None)
    )
    if spark:
        c = spark["clusters_vs_duckdb"]
        print(
            f"spark at {spark['records']:,} records: {spark['overhead_vs_duckdb']:.1f}x DuckDB's wall time; "
            f"{c['records_in_different_clusters']} of {c['records']:,} records clustered differently"
        )


if __name__ == "__main__":
    main()
