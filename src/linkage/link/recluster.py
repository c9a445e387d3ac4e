"""`linkage recluster`: the scored pairs of a run, clustered again at another threshold.

Nothing is trained or scored: the pairs (pairs.parquet) and the model (model.json, model.yaml) of
the run are reused, so trying a threshold takes seconds. The result is a run folder of its own
(its record names the run it was made from), the same as `linkage run --model RUN/model.json`
with that threshold would write.

A threshold is a match probability or a match weight. Pairs were kept down to the run's pair floor
(`report.pair_floor_match_weight`), so any threshold at or above the floor is possible; below it,
pairs are missing and the threshold is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from splink import Linker

from linkage.config import load_config
from linkage.config.linkage import BackendEngine, LinkageConfig, match_weight
from linkage.errors import ConfigError
from linkage.extract.manifest import Manifest
from linkage.link.backend import open_backend
from linkage.link.given import given_model, load_given
from linkage.link.model import cap_column, capped
from linkage.link.run import RunMetrics, RunResult, Scored, _peak_rss, finish, load_inputs
from linkage.link.threshold import probability
from linkage.runfolder import RunWriter, open_run

if TYPE_CHECKING:
    from linkage.runlog import EntryBuilder

REUSED = ("pairs.parquet", "model.yaml")  # copied from the run into the new folder


def threshold_probability(run_floor: float, *, probability_: float | None, weight: float | None) -> float:
    """The threshold as a probability, refused below the pairs the run kept."""
    if (probability_ is None) == (weight is None):
        raise ConfigError("give the threshold as a match probability or as a match weight (one of them)")
    if probability_ is not None and not 0 < probability_ < 1:
        raise ConfigError(f"threshold {probability_:g}: a match probability is strictly between 0 and 1")
    w = match_weight(probability_) if probability_ is not None else weight
    assert w is not None  # exactly one of the two was given (checked above)
    if w < run_floor:
        raise ConfigError(
            f"threshold (match weight {w:.3g}, probability {probability(w):.4g}) is below the run's pair "
            f"floor (match weight {run_floor:g}, probability {probability(run_floor):.4g}): pairs under "
            "the floor were not kept; choose a threshold at or above it, or rerun with a lower "
            "report.pair_floor_match_weight"
        )
    return probability_ if probability_ is not None else probability(w)


def recluster(
    run_dir: Path,
    out_dir: Path,
    *,
    threshold: float | None = None,
    threshold_weight: float | None = None,
    overwrite: bool = False,
    step: Callable[[str], None] = lambda _msg: None,
    log: EntryBuilder | None = None,
) -> RunResult:
    """Cluster the run's scored pairs at a new threshold into ``out_dir`` (a complete run folder)."""
    started = time.perf_counter()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.resolve() == run_dir.resolve():
        raise ConfigError("--out must be a new run folder, not the run being re-clustered")
    step("checking the run and its extracts")
    run = open_run(run_dir)  # refuses an incomplete or modified run, or changed extracts
    config = load_config(run.path("model.yaml"), LinkageConfig)
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
    before = RunMetrics.model_validate_json(run.path("metrics.json").read_text())
    order = list(before.records)  # the run's record numbering (person ids) follows its extract order
    extracts = {a: run.extracts[a] for a in order}
    manifests = {
        a: Manifest.model_validate_json(
            run.path(f"inputs/manifests/{Path(run.record.extracts[a].manifest).name}").read_text()
        )
        for a in order
    }
    seconds: dict[str, float] = {}
    with _peak_rss() as peak_rss:
        folder = RunWriter.create(out_dir, run.child_record(out_dir.name), overwrite=overwrite)
        for name in REUSED:
            folder.copy_in(run.path(name), name)
        for name, _ in run.markers["run"].outputs.items():
            if name.startswith("inputs/"):
                folder.copy_in(run.path(name), name)
        with open_backend(config.backend, out_dir / "work") as backend:
            step("loading the scored pairs")
            t0 = time.perf_counter()
            record_index = backend.load_record_index(extracts)
            # the run's model may read columns its derived config does not (a `linkage run --model`)
            flags = {f for r in capped(config.blocking_rules) if (f := cap_column(r))}
            model, columns = given_model(
                load_given(run.path("model.json")), flags, str(config.backend.engine)
            )
            tables = load_inputs(backend, extracts, config, columns)
            linker = Linker(tables, model, log_level=None)
            backend.con.execute(
                "CREATE TABLE predictions AS SELECT * FROM read_parquet(?)", [str(run.path("pairs.parquet"))]
            )
            predictions = backend.db_api.register("predictions", table_name="__splink__df_predict")
            seconds["load"] = time.perf_counter() - t0
            metrics = finish(
                Scored(backend, linker, predictions, record_index, tables,
                       {i: b.comparisons for i, b in enumerate(before.blocking)}),
                config,
                folder,
                manifests=manifests,
                seconds=seconds,
                step=step,
                write_scored_pairs=False,
                model_facts={
                    k: getattr(before, k)
                    for k in ("model_notes", "blocking_candidates", "blocking_budget", "correlated")
                },
            )  # fmt: skip
        seconds["total"] = time.perf_counter() - started
        metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
        metrics.peak_rss_bytes = peak_rss()
    metrics.created_at = datetime.now(UTC).replace(microsecond=0)
    metrics.tool_version, metrics.splink_version = before.tool_version, before.splink_version
    metrics.write(folder.path("metrics.json"))
    folder.register("metrics.json")
    marker = folder.complete(log)
    return RunResult(
        out_dir=out_dir,
        metrics=metrics,
        outputs=[folder.path(name) for name in folder.outputs] + [marker],
        inputs=[run.path("pairs.parquet"), run.path("model.json"), *extracts.values()],
        key_fingerprint=run.record.key_fingerprint or "",
    )
