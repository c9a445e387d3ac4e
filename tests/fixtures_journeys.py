"""Journey and release test helpers: a run folder with perfect linkage built from synthetic truth.

Clusters are the true persons, so journey assembly is tested on its own, independent of linkage
quality. The folder is written through the run-folder contract (`linkage.runfolder`), as `linkage run` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from linkage.evaluate import write_true_clusters
from linkage.extract.verify import verify_extracts
from linkage.journeys.assemble import AGENCIES
from linkage.keys import load_trusted_keys
from linkage.runfolder import RunWriter, record_from_verified
from linkage.synth import generate
from test_agency_pipeline import pseudonymise_all


def perfect_run(extracts: Path, truth: Path, run_dir: Path, trusted_keys: Path) -> Path:
    """Write ``run_dir`` with clusters = true person ids through the run-folder contract; return it."""
    report = verify_extracts([extracts], load_trusted_keys([trusted_keys]))
    assert report.ok, report.reasons()
    record = record_from_verified(run_dir.name, report, extracts_dir=extracts, trusted_keys_dir=trusted_keys)
    folder = RunWriter.create(run_dir, record)
    agencies = [a for a in AGENCIES if (extracts / f"{a}.parquet").exists()]  # probation is optional
    with folder.writing("clusters.parquet") as tmp:
        write_true_clusters({a: extracts / f"{a}.parquet" for a in agencies}, truth, tmp)
    for agency in agencies:
        folder.copy_in(extracts / f"{agency}.manifest.json", f"inputs/manifests/{agency}.manifest.json")
    folder.complete()
    return run_dir


@dataclass
class LinkedRun:
    raw: Path  # synthetic raw extracts, truth/ inside
    extracts: Path
    run: Path  # perfect-linkage run folder with journeys.parquet


@pytest.fixture(scope="session")
def linked_run(tmp_path_factory, keys) -> LinkedRun:
    """synth (800 persons) -> pseudonymise x5 -> perfect-linkage run -> journeys, once per session."""
    from linkage.journeys.build import build_journeys

    raw = tmp_path_factory.mktemp("journey-raw")
    generate(800, 7, raw)
    extracts = raw.parent / (raw.name + "-extracts")
    pseudonymise_all(keys, raw, extracts)
    run = perfect_run(extracts, raw / "truth", raw.parent / (raw.name + "-run"), keys.signing_dir)
    # a session fixture runs before each test's own LINKAGE_LOG is set: give it a log of its own (the
    # journeys marker is checked against it later), never ./linkage-log.jsonl in the working tree
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINKAGE_LOG", str(raw.parent / (raw.name + "-log.jsonl")))
        build_journeys(run)
    return LinkedRun(raw, extracts, run)
