"""`linkage recluster`: the scored pairs of a run, clustered again at another threshold.

Nothing is trained or scored: the pairs (pairs.parquet) and the model (model.json, model.yaml) of
the run are reused, so trying a threshold takes seconds. The result is a run folder of its own,
the same as `linkage run --model RUN/model.json` with that threshold would write.

A threshold is a match probability or a match weight. Pairs were kept down to the run's pair floor
(`report.pair_floor_match_weight`), so any threshold at or above the floor is possible; below it,
pairs are missing and the threshold is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from splink import Linker

from linkage.config import load_config
from linkage.config.linkage import BackendEngine, LinkageConfig, match_weight
from linkage.errors import ConfigError, VerificationError
from linkage.extract.manifest import Manifest
from linkage.link.backend import open_backend
from linkage.link.model import input_columns
from linkage.link.run import (
    OUTPUTS,
    PAIRS_MODE,
    RunMetrics,
    RunResult,
    Scored,
    _peak_rss,
    _prepare_out_dir,
    finish,
)
from linkage.link.threshold import probability
from linkage.util import atomic_write_bytes


def threshold_probability(run_floor: float, *, probability_: float | None, weight: float | None) -> float:
    """The threshold as a probability, refused below the pairs the run kept."""
    if (probability_ is None) == (weight is None):
        raise ConfigError("give the threshold as a match probability or as a match weight (one of them)")
    if probability_ is not None and not 0 < probability_ < 1:
        raise ConfigError(f"threshold {probability_:g}: a match probability is strictly between 0 and 1")
    w = weight if weight is not None else match_weight(probability_)
    if w < run_floor:
        raise ConfigError(
            f"threshold (match weight {w:.3g}, probability {probability(w):.4g}) is below the run's pair "
            f"floor (match weight {run_floor:g}, probability {probability(run_floor):.4g}): pairs under "
            "the floor were not kept; choose a threshold at or above it, or rerun with a lower "
            "report.pair_floor_match_weight"
        )
    return probability_ if probability_ is not None else probability(w)


def _check_extracts(run: dict) -> dict[str, Path]:
    """The run's extracts, refused if any file changed since the run (SHA-256 against run.json)."""
    extracts = {}
    for agency, entry in run["extracts"].items():
        path = Path(entry["parquet"])
        if not path.is_file():
            raise VerificationError(f"{path}: extract of the run not found")
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            raise VerificationError(f"{path}: SHA-256 differs from the run's record (the extract changed)")
        extracts[agency] = path
    return extracts


def recluster(
    run_dir: Path,
    out_dir: Path,
    *,
    threshold: float | None = None,
    threshold_weight: float | None = None,
    overwrite: bool = False,
    step: Callable[[str], None] = lambda _msg: None,
) -> RunResult:
    """Cluster the run's scored pairs at a new threshold into ``out_dir``."""
    started = time.perf_counter()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    for name in ("pairs.parquet", "model.json", "model.yaml", "run.json", "metrics.json"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir}: not a run folder with scored pairs ({name} missing)")
    if out_dir.resolve() == run_dir.resolve():
        raise ConfigError("--out must be a new run folder, not the run being re-clustered")
    config = load_config(run_dir / "model.yaml", LinkageConfig)
    t = threshold_probability(
        config.report.pair_floor_match_weight, probability_=threshold, weight=threshold_weight
    )
    # nothing is scored: the embedded engine is enough whichever engine the run scored on
    config = config.model_copy(
        update={
            "clustering": config.clustering.model_copy(update={"threshold_match_probability": t}),
            "backend": config.backend.model_copy(update={"engine": BackendEngine.duckdb}),
        }
    )
    run = json.loads((run_dir / "run.json").read_text())
    before = RunMetrics.model_validate_json((run_dir / "metrics.json").read_text())
    copies = run_dir / "inputs" / "manifests"
    manifests = {
        a: Manifest.model_validate_json((copies / Path(e["manifest"]).name).read_text())
        for a, e in run["extracts"].items()
    }
    seconds: dict[str, float] = {}

    with _peak_rss() as peak_rss:
        step("checking the run's extracts")
        extracts = _check_extracts(run)
        _prepare_out_dir(out_dir, overwrite)
        with open_backend(config.backend, out_dir / "work") as backend:
            step("loading the scored pairs")
            t0 = time.perf_counter()
            record_index = backend.load_record_index(extracts)
            columns = input_columns(config)
            tables = [backend.load_extract(a, p, columns) for a, p in extracts.items()]
            linker = Linker(tables, json.loads((run_dir / "model.json").read_text()), log_level=None)
            backend.con.execute(
                "CREATE TABLE predictions AS SELECT * FROM read_parquet(?)", [str(run_dir / "pairs.parquet")]
            )
            predictions = backend.db_api.register("predictions", table_name="__splink__df_predict")
            seconds["load"] = time.perf_counter() - t0
            pairs_per_rule = {i: b.comparisons for i, b in enumerate(before.blocking)}
            metrics = finish(
                Scored(backend, linker, predictions, record_index, tables, pairs_per_rule),
                config,
                out_dir,
                manifests=manifests,
                seconds=seconds,
                step=step,
                write_scored_pairs=False,
                model_facts={
                    k: getattr(before, k) for k in ("model_notes", "blocking_candidates", "blocking_budget")
                },
            )
        shutil.copy2(run_dir / "pairs.parquet", out_dir / "pairs.parquet")
        (out_dir / "pairs.parquet").chmod(PAIRS_MODE)
        shutil.copytree(run_dir / "inputs", out_dir / "inputs")
        shutil.copy2(run_dir / "model.yaml", out_dir / "model.yaml")
        run["run_id"], run["reclustered_from"] = out_dir.name, str(run_dir.resolve())
        atomic_write_bytes(out_dir / "run.json", (json.dumps(run, indent=2) + "\n").encode())
        seconds["total"] = time.perf_counter() - started
        metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
        metrics.peak_rss_bytes = peak_rss()
    metrics.created_at = datetime.now(UTC).replace(microsecond=0)
    metrics.tool_version, metrics.splink_version = before.tool_version, before.splink_version
    metrics.write(out_dir / "metrics.json")
    return RunResult(
        out_dir=out_dir,
        metrics=metrics,
        outputs=[out_dir / name for name in OUTPUTS],
        inputs=[run_dir / "pairs.parquet", run_dir / "model.json", *extracts.values()],
        key_fingerprint=run["key_fingerprint"],
    )
