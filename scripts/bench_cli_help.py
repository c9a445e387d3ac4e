"""Benchmark `linkage --help` start-up against importing click and rich (the CLI's own floor).

Prints one JSON document (and writes it to scripts/results/bench_cli_help.json): the median wall time
of N runs (default 10) of each command in a new process, and the ratio. Targets: `linkage --help`
under 0.3 s and at most 5x `python -c "import click, rich"`.
Usage: python scripts/bench_cli_help.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "bench_cli_help.json")
    args = parser.parse_args()
    baseline = median_seconds([sys.executable, "-c", "import click, rich"], args.runs)
    help_cmd = [sys.executable, "-m", "linkage", "--help"]
    median_seconds(help_cmd, 1)  # warm the bytecode cache
    helped = median_seconds(help_cmd, args.runs)
    result = {
        "benchmark": "cli_help",
        "runs": args.runs,
        "median_seconds_import_click_rich": round(baseline, 4),
        "median_seconds_linkage_help": round(helped, 4),
        "ratio": round(helped / baseline, 2),
        "target_seconds": 0.3,
        "target_ratio": 5.0,
        "meets_targets": helped < 0.3 and helped / baseline <= 5.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
