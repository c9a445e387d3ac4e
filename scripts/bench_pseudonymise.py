"""Benchmark `linkage pseudonymise`: rows/s and tokens/s against this machine's raw HMAC rate.

Prints one JSON document (and writes it to scripts/results/bench_pseudonymise.json):
  * raw HMAC-SHA256 throughput: `openssl speed -hmac sha256` on 64-byte messages with one process
    per core, and the engine's own batch HMAC (C over OpenSSL) on one core;
  * for each --rows N: pseudonymise wall time, rows/s, tokens/s, and the peak RSS of the whole
    process tree (main + workers), sampled with psutil;
  * for each --rows N, in the same run: DuckDB's own CSV -> Parquet copy of the same file with the 7
    identifier columns replaced by `sha256()` (a floor for "read CSV, hash, write Parquet" on this
    machine), and the engine's wall time as a multiple of it (target at 4 M rows: <= 2.5);
  * the ratio of achieved tokens/s to the openssl rate (target >= 0.25) and the peak-RSS ratio
    between the largest and smallest N (target ~1: memory must stay flat).

The input is a police-layout CSV with realistic repetition (names, dates and postcodes drawn from
pools), generated here so the benchmark does not depend on `linkage synth`.
Usage: python scripts/bench_pseudonymise.py --rows 1000000 --rows 4000000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "agencies" / "police.yaml"
PASSPHRASE = "benchmark passphrase, not secret"
PNC_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"


def _pools(rng: random.Random) -> dict[str, list[str]]:
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(rng.randrange(1 << 30))
    return {
        "forename": [fake.first_name() for _ in range(3000)],
        "surname": [fake.last_name() for _ in range(8000)],
        "postcode": [fake.postcode() for _ in range(60000)],
    }


def write_input(path: Path, rows: int, seed: int = 7) -> None:
    """A police-layout CSV: ~30 k distinct people per 100 k rows, as repeat offending gives."""
    rng = random.Random(seed)
    pools = _pools(rng)
    header = [
        "crime_ref",
        "urn",
        "forename",
        "middle_names",
        "surname",
        "dob",
        "gender",
        "postcode",
        "pnc_id",
        "force_area_code",
        "recorded_date",
        "offence_date",
        "offence_code",
        "da_flag",
        "outcome",
        "outcome_date",
        "ethnicity_code",
        "victim_sex",
        "victim_relationship",
        "officer_notes",
    ]
    people = max(rows // 3, 1)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(rows):
            p = rng.randrange(people)
            prng = random.Random(p)
            yy, serial = prng.randrange(80, 124) % 100, prng.randrange(1, 9_999_999)
            check = PNC_LETTERS[int(f"{yy:02d}{serial:07d}") % 23]
            pnc = f"{2000 + yy if yy < 30 else 1900 + yy}/{serial:07d}{check}"
            w.writerow(
                [
                    f"CR{i:09d}",
                    f"01YE{rng.randrange(10**7):07d}",
                    prng.choice(pools["forename"]),
                    prng.choice(pools["forename"]) if prng.random() < 0.6 else "",
                    prng.choice(pools["surname"]),
                    f"{prng.randrange(1, 29):02d}/{prng.randrange(1, 13):02d}/{prng.randrange(1950, 2006)}",
                    prng.choice(["Male", "Female"]),
                    rng.choice(pools["postcode"]),
                    pnc if prng.random() < 0.7 else "",
                    f"E23{rng.randrange(1, 40):06d}",
                    f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/2021",
                    "01/01/2021",
                    "008/01",
                    rng.choice("YN"),
                    rng.choice(["", "1", "15", "16"]),
                    "",
                    rng.choice(["W1", "B1", "A1", "NS"]),
                    "Female",
                    "Partner",
                    "free text, dropped",
                ]
            )


def openssl_hmac_rate(seconds: int = 3) -> float | None:
    """HMAC-SHA256 operations/s on 64-byte messages with every core busy.

    One `openssl speed` process per core, summed (OpenSSL 3.0's `-multi` mislabels the HMAC line).
    """
    if not shutil.which("openssl"):
        return None
    cmd = ["openssl", "speed", "-seconds", str(seconds), "-bytes", "64", "-hmac", "sha256"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(os.cpu_count() or 1)
    ]
    total = 0.0
    for proc in procs:
        m = re.search(r"^hmac\(sha256\)\s+([\d.]+)k", proc.communicate()[0], re.MULTILINE)
        if not m:
            return None
        total += float(m.group(1)) * 1000 / 64
    return total


def hmac_path() -> str:
    from linkage.tokens.hmac64 import backend

    return backend()


def engine_hmac_rate(seconds: float = 2.0) -> float:
    """The engine's own HMAC (batch C loop over OpenSSL) on one core, messages shaped like real tokens."""
    import pyarrow as pa

    from linkage.tokens.spec import Purpose
    from linkage.tokens.tokenise import Tokeniser

    tok = Tokeniser({p: os.urandom(32) for p in Purpose})
    values = pa.array([f"NAME{i}" for i in range(10_000)])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tok.tokens(Purpose.names, "name", values)
        n += len(values)
    return n / (time.perf_counter() - start)


def run_pseudonymise(workdir: Path, input_path: Path) -> dict:
    env = {**os.environ, "LINKAGE_KEY_PASSPHRASE": PASSPHRASE}
    linkage = [sys.executable, "-m", "linkage"]
    key = workdir / "project.key"
    if not key.exists():
        subprocess.run(
            [*linkage, "keys", "new", "--project", "bench", "--out", str(key), "-q"], env=env, check=True
        )
    cmd = [
        *linkage,
        "pseudonymise",
        "--config",
        str(CONFIG),
        "--key",
        str(key),
        "--input",
        str(input_path),
        "--out",
        str(workdir / "out"),
        "--rejects",
        str(workdir / "rejects"),
        "--json",
    ]
    stdout, wall, peak = _measured(cmd, env)
    result = json.loads(stdout)
    manifest = json.loads(Path(result["manifest"]).read_text())
    tokens = sum(manifest["token_coverage"].values()) + manifest["counts"]["written"]  # + record_key
    return {
        "rows": manifest["counts"]["read"],
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(manifest["counts"]["read"] / wall),
        "tokens": tokens,
        "tokens_per_second": round(tokens / wall),
        "peak_rss_mib": round(peak / 2**20, 1),
        "rejected": manifest["counts"]["rejected"],
    }


# The identifier columns the engine tokenises; DuckDB replaces each by its SHA-256 (no key, no
# standardisation: a lower bound for the same I/O and hashing work, not an equivalent).
HASHED = ["urn", "forename", "middle_names", "surname", "dob", "postcode", "pnc_id"]
DUCKDB_COPY = """
import sys, duckdb
src, dst = sys.argv[1], sys.argv[2]
hashed = ", ".join(f"sha256({c}) AS {c}" for c in sys.argv[3].split(","))
duckdb.connect().execute(
    f"COPY (SELECT * REPLACE ({hashed}) FROM read_csv(?, all_varchar = true)) TO '{dst}' (FORMAT parquet)",
    [src],
)
"""


def run_duckdb_copy(workdir: Path, input_path: Path) -> dict:
    """DuckDB's CSV -> Parquet copy with 7 sha256() columns, in a fresh process (own RSS)."""
    out = workdir / "duckdb_copy.parquet"
    cmd = [sys.executable, "-c", DUCKDB_COPY, str(input_path), str(out), ",".join(HASHED)]
    _, wall, peak = _measured(cmd, dict(os.environ))
    out.unlink()
    return {"wall_seconds": round(wall, 2), "peak_rss_mib": round(peak / 2**20, 1)}


def _measured(cmd: list[str], env: dict) -> tuple[str, float, int]:
    """Run ``cmd``: (stdout, wall seconds, peak RSS of its process tree sampled every 50 ms)."""
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed with exit code {proc.returncode}")
    return stdout, time.perf_counter() - start, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="rows per run (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "bench_pseudonymise.json")
    args = parser.parse_args()
    sizes = sorted(args.rows or [1_000_000, 4_000_000])
    result: dict = {
        "benchmark": "pseudonymise",
        "machine": {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
        "openssl_hmac_sha256_per_second_all_cores": openssl_hmac_rate(),
        "engine_hmac_per_second_one_core": round(engine_hmac_rate()),
        "hmac_path": hmac_path(),  # LINKAGE_HMAC=python measures the pure-Python path
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-pseudo-") as tmp:
        work = Path(tmp)
        for n in sizes:
            data = work / f"police_{n}.csv"
            t = time.perf_counter()
            write_input(data, n)
            print(f"generated {n:,} rows in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            run = run_pseudonymise(work, data)
            copy = run_duckdb_copy(work, data)
            run["duckdb_copy_sha256"] = copy
            run["engine_vs_duckdb_copy"] = round(run["wall_seconds"] / copy["wall_seconds"], 2)
            print(json.dumps(run), file=sys.stderr)
            result["runs"].append(run)
            data.unlink()
    rate = result["openssl_hmac_sha256_per_second_all_cores"]
    best = max(r["tokens_per_second"] for r in result["runs"])
    result["tokens_per_second_vs_openssl"] = round(best / rate, 3) if rate else None
    peaks = [r["peak_rss_mib"] for r in result["runs"]]
    result["peak_rss_ratio_largest_vs_smallest"] = round(peaks[-1] / peaks[0], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
