"""What ingestion loses: rows rejected and values blanked per field, per input file.

    python scripts/measure_ingest.py --synth DIR            (a `linkage synth` output folder)
    python scripts/measure_ingest.py --public DIR           (scripts/export_public_sets.py output)

Pseudonymises each file under a throwaway key with the matching config (configs/agencies/ for synth,
configs/examples/ for the public sets), without the reject/blank limits, and prints one JSON line per
file: rows read / written / rejected, rejects by reason, values blanked and kept unverified per field
and reason, and, for synth, whether every rejected row is one `--bad-rows` injected (the target: no
row with a usable identifier is ever rejected).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from linkage.config import load_config
from linkage.config.agency import AgencyConfig
from linkage.extract.pseudonymise import pseudonymise
from linkage.keys import ProjectKey

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {
    "febrl4_a": "febrl4_a.yaml",
    "febrl4_b": "febrl4_b.yaml",
    "census": "census.yaml",
    "ssa": "ssa.yaml",
    "w2": "w2.yaml",
}


def measure(config_path: Path, input_path: Path, work: Path, injected: set[int] | None) -> dict:
    config = load_config(config_path, AgencyConfig)
    key = ProjectKey("measure", datetime.now(UTC), bytes(32))
    started = datetime.now(UTC)
    result = pseudonymise(
        config,
        config_path,
        key,
        input_path,
        work / "out",
        rejects_dir=work / "rejects",
        max_reject_rate=1.0,
        max_blank_rate=1.0,
    )
    m = result.manifest_data
    with open(result.rejects, newline="", encoding="utf-8") as fh:
        rejected_rows = {int(r["source_row"]) for r in csv.DictReader(fh) if r["action"] == "row rejected"}
    out = {
        "file": input_path.name,
        "config": str(config_path.relative_to(ROOT)),
        "read": m.counts.read,
        "written": m.counts.written,
        "rejected": m.counts.rejected,
        "rejects_by_reason": m.rejects_by_reason,
        "values_present": m.values_present,
        "values_blanked": m.values_blanked,
        "values_unverified": m.values_unverified,
        "value_notes": m.value_notes,
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 2),
    }
    if injected is not None:
        out["rejected_not_injected"] = len(rejected_rows - injected)
        out["injected_not_rejected"] = len(injected - rejected_rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synth", type=Path, help="a `linkage synth` output folder")
    parser.add_argument("--public", type=Path, help="scripts/export_public_sets.py output folder")
    args = parser.parse_args()
    jobs: list[tuple[Path, Path, set[int] | None]] = []
    if args.synth:
        bad = pq.read_table(args.synth / "truth" / "bad_rows.parquet").to_pylist()
        for agency in ("police", "prosecution", "court", "prison", "probation"):
            injected = {b["source_row"] for b in bad if b["source_dataset"] == agency}
            jobs.append(
                (ROOT / "configs" / "agencies" / f"{agency}.yaml", args.synth / f"{agency}.csv", injected)
            )
    if args.public:
        for name, config in PUBLIC.items():
            jobs.append((ROOT / "configs" / "examples" / config, args.public / f"{name}.csv", None))
    for config_path, input_path, injected in jobs:
        with tempfile.TemporaryDirectory(prefix="measure-ingest-") as work:
            print(json.dumps(measure(config_path, input_path, Path(work), injected)), flush=True)


if __name__ == "__main__":
    main()
