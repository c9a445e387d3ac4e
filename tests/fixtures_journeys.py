"""Journey and release test helpers: a run folder with perfect linkage built from synthetic truth.

Clusters are the true persons, so journey assembly is tested on its own, independent of linkage
quality. The folder has the layout `linkage run` writes (clusters.parquet, inputs/manifests/, run.json).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from linkage.journeys.inputs import AGENCIES
from linkage.synth import generate
from test_agency_pipeline import pseudonymise_all


def perfect_run(extracts: Path, truth: Path, run_dir: Path) -> Path:
    """Write ``run_dir`` with clusters = true person ids; return it."""
    (run_dir / "inputs" / "manifests").mkdir(parents=True)
    selects = " UNION ALL ".join(
        f"SELECT '{a}' AS source_dataset, record_key, source_row FROM read_parquet('{extracts / a}.parquet')"
        for a in AGENCIES
    )
    duckdb.sql(f"""
        COPY (SELECT e.source_dataset, e.record_key, e.source_row, t.person_id
              FROM ({selects}) e JOIN read_parquet('{truth / "records.parquet"}') t
              USING (source_dataset, source_row))
        TO '{run_dir / "clusters.parquet"}' (FORMAT parquet)""")
    for agency in AGENCIES:
        shutil.copy2(extracts / f"{agency}.manifest.json", run_dir / "inputs" / "manifests")
    run = {
        "run_id": run_dir.name,
        "extracts_dir": str(extracts.resolve()),
        "extracts": {a: {"parquet": str((extracts / f"{a}.parquet").resolve())} for a in AGENCIES},
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    return run_dir


@dataclass
class LinkedRun:
    raw: Path  # synthetic raw extracts, truth/ inside
    extracts: Path
    run: Path  # perfect-linkage run folder with journeys.parquet


@pytest.fixture(scope="session")
def linked_run(tmp_path_factory, keys) -> LinkedRun:
    """synth (800 persons) -> pseudonymise x4 -> perfect-linkage run -> journeys, once per session."""
    from linkage.journeys.command import build_journeys

    raw = tmp_path_factory.mktemp("journey-raw")
    generate(800, 7, raw)
    extracts = raw.parent / (raw.name + "-extracts")
    pseudonymise_all(keys, raw, extracts)
    run = perfect_run(extracts, raw / "truth", raw.parent / (raw.name + "-run"))
    build_journeys(run)
    return LinkedRun(raw, extracts, run)
