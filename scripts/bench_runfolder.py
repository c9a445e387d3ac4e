"""Benchmark the run-folder contract: what writing and opening a run folder costs.

Every later stage (`journeys`, `release`, `evaluate`) opens a run through `linkage.runfolder.open_run`,
which re-hashes every listed output and every extract and re-checks each manifest's signature. This
measures that cost on a run over synthetic extracts (`linkage synth` -> pseudonymise, clusters = the
true persons, as tests/fixtures_journeys.py does), and the SHA-256 rate it comes from, so it can be
scaled to other sizes (the cost is linear in the bytes hashed).

Prints one JSON document (and writes it to scripts/results/bench_runfolder.json).
Usage: python scripts/bench_runfolder.py --persons 20000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
AGENCIES = ("police", "prosecution", "court", "prison", "probation")
PASSPHRASE = "benchmark passphrase, not secret"


def _sha256_rate(mb: int = 256) -> float:
    block = b"\0" * (1 << 20)
    h, t = hashlib.sha256(), time.perf_counter()
    for _ in range(mb):
        h.update(block)
    return mb / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from linkage.config import load_config
    from linkage.config.agency import AgencyConfig
    from linkage.extract.pseudonymise import pseudonymise
    from linkage.extract.verify import verify_extracts
    from linkage.keys import (
        load_project_key,
        load_signing_key,
        load_trusted_keys,
        new_project_key,
        new_signing_key,
    )
    from linkage.runfolder import RunWriter, open_run, record_from_verified
    from linkage.synth import generate

    with tempfile.TemporaryDirectory(prefix="bench-runfolder-") as tmp:
        tmp = Path(tmp)
        generate(args.persons, 1, tmp / "raw")
        new_project_key("bench", tmp / "project.key", PASSPHRASE, log2_n=12)
        project = load_project_key(tmp / "project.key", PASSPHRASE)
        for agency in AGENCIES:
            new_signing_key(agency, tmp / "keys", PASSPHRASE, log2_n=12)
            config_path = ROOT / "configs" / "agencies" / f"{agency}.yaml"
            pseudonymise(load_config(config_path, AgencyConfig), config_path, project,
                         tmp / "raw" / f"{agency}.csv", tmp / "extracts",
                         signing_key=load_signing_key(tmp / "keys" / f"{agency}.signing.key", PASSPHRASE),
                         workers=1)  # fmt: skip
        report = verify_extracts([tmp / "extracts"], load_trusted_keys([tmp / "keys"]))
        run = tmp / "run"
        t = time.perf_counter()
        record = record_from_verified(
            "r", report, extracts_dir=tmp / "extracts", trusted_keys_dir=tmp / "keys"
        )
        folder = RunWriter.create(run, record)
        selects = " UNION ALL ".join(
            f"SELECT '{a}' AS source_dataset, record_key, source_row "
            f"FROM read_parquet('{tmp}/extracts/{a}.parquet')"
            for a in AGENCIES
        )
        with folder.writing("clusters.parquet") as out:
            # clusters = the true persons (the contract's cost does not depend on linkage quality)
            duckdb.sql(f"""
                COPY (SELECT e.*, t.person_id FROM ({selects}) e
                      JOIN read_parquet('{tmp}/raw/truth/records.parquet') t
                      USING (source_dataset, source_row))
                TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
        folder.complete()
        write_seconds = time.perf_counter() - t

        extract_bytes = sum((tmp / "extracts" / f"{a}.parquet").stat().st_size for a in AGENCIES)
        output_bytes = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
        timings = {}
        for label, check in (("open_outputs_only", False), ("open_with_extracts", True)):
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                open_run(run, check_extracts=check)
                best = min(best, time.perf_counter() - t)
            timings[label] = round(best, 4)
        records = duckdb.sql(f"SELECT count(*) FROM read_parquet('{run}/clusters.parquet')").fetchall()[0][0]

    result = {
        "benchmark": "runfolder",
        "persons": args.persons,
        "records": records,
        "extract_bytes": extract_bytes,
        "run_folder_bytes": output_bytes,
        "write_record_clusters_and_marker_seconds": round(write_seconds, 4),
        "open_seconds": timings,
        "sha256_mb_per_s": round(_sha256_rate(), 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    (ROOT / "scripts" / "results" / "bench_runfolder.json").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
