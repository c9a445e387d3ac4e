"""The journeys stage: open a completed run, assemble its case journeys, add them to the run folder.

Plain function over the run-folder contract (`linkage.runfolder`): the run is refused unless it is
complete, unmodified and its extracts are the signed ones it linked; journeys.parquet, victims.parquet
(each journey's victims as linked people) and journeys.json are written owner-only, logged, and listed
in journeys.complete.json (written last), which `linkage release` and `linkage evaluate` require.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from linkage.errors import InputError
from linkage.journeys.assemble import AGENCIES, OPTIONAL, JourneySummary, assemble_journeys
from linkage.journeys.victims import assemble_victims
from linkage.runfolder import open_run
from linkage.runlog import logged


@dataclass(frozen=True)
class JourneysResult:
    run_dir: Path
    journeys: Path
    summary: JourneySummary


def build_journeys(run_dir: Path, extracts_dir: Path | None = None) -> JourneysResult:
    """Assemble RUN/journeys.parquet and its summary RUN/journeys.json, with a run-log entry.

    ``extracts_dir`` finds the run's extracts (by file name) in another folder than the one it
    recorded; they must still be byte-identical to the signed extracts the run linked.
    """
    run_dir = Path(run_dir)
    with logged("journeys") as entry:
        run = open_run(run_dir, ignore=("journeys",), extracts_dir=extracts_dir)
        if missing := [a for a in AGENCIES if a not in run.extracts and a not in OPTIONAL]:
            raise InputError(f"{run_dir}: the run linked no extract for {', '.join(missing)}")
        clusters = run.path("clusters.parquet")
        entry.key_fingerprint = run.record.key_fingerprint
        for path in [run_dir / "run.complete.json", clusters, *run.extracts.values()]:
            entry.add_input(path)
        stage = run.add_stage("journeys")
        with stage.writing("journeys.parquet") as tmp:
            summary = assemble_journeys(clusters, run.extracts, tmp)
        with stage.writing("victims.parquet") as tmp:  # one row per (journey, victim person)
            assemble_victims(clusters, run.extracts["police"], run_dir / "journeys.parquet", tmp)
        stage.write_bytes("journeys.json", (json.dumps(asdict(summary), indent=2) + "\n").encode())
        stage.complete(entry)
    return JourneysResult(run_dir, run_dir / "journeys.parquet", summary)
