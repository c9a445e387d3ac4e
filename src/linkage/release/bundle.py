"""The two folders a release writes, and the one way to read a published bundle back.

Published bundle (--out), the only thing that leaves the secure zone:
  tables/<name>.csv + tables/<name>.json   one protected table and its definitions, SDC and provenance
  report.html                              offline charts and tables for a policy reader
  release.json, SHA256SUMS                 what was released, from which run, and every file's hash
  RELEASE-COMPLETE                         written last, after the run-log entry (see below)

Checker pack (--checker-out, default `<out>.checker` beside the bundle, never inside it), for the
human output checker only: ACRO's results.json, outputs and session summary (acro/), why each
withheld cell is withheld (suppression.csv), checker.json and its own SHA256SUMS. Suppression
reasons tell which cells are zeros or below the threshold, so they never travel with the tables.

Completion. Both folders are built in temporary folders and renamed into place when every check has
passed; the run-log entry is appended after the renames, and RELEASE-COMPLETE (the hash of
SHA256SUMS) is written into the bundle only after that entry. A release killed between the rename
and the log entry therefore leaves a bundle without the marker, which `open_bundle` (and so every
reader in this project) refuses as incomplete; its folder name also blocks a re-run under the same
id until someone removes it, so it cannot be mistaken for a finished release.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from linkage.errors import InputError
from linkage.util import atomic_write_bytes, sha256_file

MARKER = "RELEASE-COMPLETE"
SUMS = "SHA256SUMS"


def write_sums(folder: Path) -> None:
    """SHA256SUMS over every file of ``folder`` (sorted paths, so the file is stable)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SUMS)
    lines = [f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    (folder / SUMS).write_text("".join(lines))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@contextmanager
def staged(target: Path):
    """A temporary folder beside ``target``; ``place()`` renames it into place, else it is removed."""
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield stage, lambda: os.replace(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def mark_complete(bundle: Path) -> None:
    """Write the completion marker (last, atomically): the hash of the bundle's SHA256SUMS."""
    atomic_write_bytes(bundle / MARKER, f"{sha256_file(bundle / SUMS)}  {SUMS}\n".encode())


def verify_bundle(bundle: Path) -> None:
    """Refuse a bundle that is incomplete (no marker: killed before its log entry) or modified."""
    bundle = Path(bundle)
    marker, sums = bundle / MARKER, bundle / SUMS
    if not marker.is_file() or not sums.is_file():
        raise InputError(
            f"{bundle}: incomplete release (no {MARKER}): it was interrupted before its run-log entry; "
            "remove it and release again"
        )
    if marker.read_text().split("  ")[0] != sha256_file(sums):
        raise InputError(f"{bundle}: {SUMS} does not match {MARKER}: the bundle was modified")
    listed = set()
    for line in sums.read_text().split("\n"):
        if not line:
            continue
        digest, name = line.split("  ", 1)
        listed.add(name)
        path = bundle / name
        if not path.is_file() or sha256_file(path) != digest:
            raise InputError(f"{bundle}: {name} is missing or modified")
    extra = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - listed
    extra -= {MARKER, SUMS}
    if extra:
        raise InputError(f"{bundle}: files not in {SUMS}: {', '.join(sorted(extra))}")


def open_bundle(bundle: Path) -> dict[str, list[dict[str, str]]]:
    """The published tables of a verified bundle, by name (rows as dicts of strings)."""
    verify_bundle(bundle)
    tables = {}
    for path in sorted((Path(bundle) / "tables").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            tables[path.stem] = list(csv.DictReader(fh))
    return tables
