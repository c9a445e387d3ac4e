"""Find the extracts a run linked, and prove they are the same bytes (SHA-256 against the manifests).

A run folder holds copies of the extract manifests it used (`inputs/`, or `inputs/manifests/`) and,
once `linkage run` writes it, `run.json` naming each extract's Parquet file. Journeys and releases
must read exactly the data the run linked: a changed or swapped extract is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from linkage.errors import ConfigError, InputError, VerificationError
from linkage.extract.manifest import read_manifest
from linkage.util import sha256_file

AGENCIES = ("police", "prosecution", "court", "prison")


def locate_extracts(run_dir: Path, extracts_dir: Path | None = None) -> dict[str, Path]:
    """Return {agency: Parquet path} for a run, each checked against its manifest copy in ``inputs/``.

    The Parquet is taken from ``extracts_dir`` when given, else from ``run.json``; its SHA-256 must
    equal ``output.sha256`` in the manifest the run copied. Raises VerificationError on a mismatch.
    """
    run_dir = Path(run_dir)
    manifests = {}
    for path in sorted((run_dir / "inputs").rglob("*.manifest.json")):
        manifest, _ = read_manifest(path)
        manifests[manifest.agency] = manifest
    missing = [a for a in AGENCIES if a not in manifests]
    if missing:
        raise InputError(f"{run_dir}/inputs: no manifest copy for {', '.join(missing)}")
    run_json = run_dir / "run.json"
    listed: dict[str, str] = {}
    if extracts_dir is None:
        if not run_json.is_file():
            raise ConfigError(f"{run_dir}: no run.json naming the extracts; pass --extracts DIR")
        listed = {a: e["parquet"] for a, e in json.loads(run_json.read_text())["extracts"].items()}
    found: dict[str, Path] = {}
    for agency in AGENCIES:
        manifest = manifests[agency]
        path = Path(extracts_dir) / manifest.output.file if extracts_dir else Path(listed.get(agency, ""))
        if not path.is_file():
            raise InputError(f"{path}: extract for {agency} not found")
        if sha256_file(path) != manifest.output.sha256:
            raise VerificationError(
                f"{path}: SHA-256 differs from the manifest the run linked; journeys must read exactly "
                "the data the run linked"
            )
        found[agency] = path
    return found
