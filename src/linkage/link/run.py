"""`linkage run`: verify the extracts, train, score, cluster, and write the run folder.

The run folder is the contract with every later stage, written through `linkage.runfolder`:
  run.json          the run record: each extract's Parquet and signed manifest (SHA-256), the public
                    keys that verified them, config hashes, tool versions (journeys read it)
  clusters.parquet  one row per input record: source_dataset, record_key, source_row, person_id
  model.json        Splink's trained model (reload with `Linker(tables, "model.json")`)
  metrics.json      counts, comparisons per blocking rule, cluster sizes, timings, peak memory
  quality.html      the offline quality report
  inputs/           a copy of the linkage config and every extract manifest (and signature) used
  run.complete.json every file above with its SHA-256, written last; later stages refuse the run without it
No file in it carries a token: clusters hold record keys and row numbers only. Files are owner-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import splink
from splink import Linker

from linkage import __version__
from linkage.config.linkage import LinkageConfig
from linkage.errors import ConfigError, VerificationError
from linkage.extract.manifest import signature_path
from linkage.extract.verify import VerifyReport, verify_extracts
from linkage.keys import load_trusted_keys
from linkage.link.backend import open_backend
from linkage.link.cluster import cluster
from linkage.link.metrics import RunMetrics, collect_metrics
from linkage.link.model import input_columns, settings
from linkage.link.report import write_quality_report
from linkage.link.train import check_em_coverage, train
from linkage.runfolder import RunWriter, record_from_verified, remove_stale_work

if TYPE_CHECKING:
    from linkage.runlog import EntryBuilder


@dataclass
class RunResult:
    out_dir: Path
    metrics: RunMetrics
    outputs: list[Path]
    inputs: list[Path]  # the extracts and manifests read
    key_fingerprint: str


@contextmanager
def _peak_rss(interval: float = 0.2) -> Iterator[Callable[[], int]]:
    """Sample this process's resident memory in a thread; yields a getter for the peak so far."""
    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def _verified(config: LinkageConfig, extracts_dir: Path, keys_dir: Path) -> VerifyReport:
    """Verify every extract and check the agencies are exactly those the config names."""
    if not keys_dir.is_dir():
        raise ConfigError(
            f"{keys_dir}: trusted keys folder not found (extracts.trusted_keys or --trusted-keys)"
        )
    if not extracts_dir.is_dir():
        raise ConfigError(f"{extracts_dir}: extracts folder not found (extracts.directory or --extracts)")
    report = verify_extracts(
        [extracts_dir],
        load_trusted_keys([keys_dir]),
        expected_fingerprint=config.extracts.expected_key_fingerprint,
    )
    reasons = report.reasons()
    found = sorted(e.manifest.agency for e in report.extracts if e.manifest)
    missing = sorted(set(config.extracts.agencies) - set(found))
    extra = sorted(set(found) - set(config.extracts.agencies))
    if missing:
        reasons.append(f"no extract for {', '.join(missing)} (the config's extracts.agencies requires it)")
    if extra:
        reasons.append(f"extract(s) for {', '.join(extra)} not listed in extracts.agencies")
    if reasons:
        raise VerificationError(
            f"refusing to link the extracts in {extracts_dir}:\n" + "\n".join(f"  - {r}" for r in reasons)
        )
    return report


def _copy_inputs(config_path: Path, report: VerifyReport, folder: RunWriter) -> None:
    """Copy the config and every manifest (with its signature) into inputs/."""
    folder.copy_in(config_path, "inputs/linkage.yaml")
    for check in report.extracts:
        for path in (check.manifest_path, signature_path(check.manifest_path)):
            folder.copy_in(path, f"inputs/manifests/{path.name}")


def run_linkage(
    config: LinkageConfig,
    config_path: Path,
    out_dir: Path,
    *,
    extracts_dir: Path | None = None,
    trusted_keys_dir: Path | None = None,
    overwrite: bool = False,
    step: Callable[[str], None] = lambda _msg: None,
    log: EntryBuilder | None = None,
) -> RunResult:
    """Link the verified extracts and write the run folder; ``step`` reports progress.

    The folder is completed (its marker written last) only when every output is written; ``log`` is
    the run-log entry of the command, which then lists every output and the marker.

    Raises VerificationError (nothing is linked) if an extract fails verification, ConfigError
    for unusable settings or paths.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    config_path, out_dir = Path(config_path), Path(out_dir)
    extracts_dir = Path(extracts_dir or config.resolve(config_path, config.extracts.directory))
    keys_dir = Path(trusted_keys_dir or config.resolve(config_path, config.extracts.trusted_keys))
    check_em_coverage(config)

    with _peak_rss() as peak_rss:
        step(f"verifying the extracts in {extracts_dir}")
        t = time.perf_counter()
        report = _verified(config, extracts_dir, keys_dir)
        by_agency = {e.manifest.agency: e for e in report.extracts}
        extracts = {a: by_agency[a].parquet_path for a in config.extracts.agencies}
        seconds["verify"] = time.perf_counter() - t

        record = record_from_verified(
            out_dir.name,
            report,
            extracts_dir=extracts_dir,
            trusted_keys_dir=keys_dir,
            configs={"inputs/linkage.yaml": config_path},
            versions={"splink": splink.__version__},
        )
        folder = RunWriter.create(out_dir, record, overwrite=overwrite)
        _copy_inputs(config_path, report, folder)
        database_dir = config.backend.database_dir
        work_base = config.resolve(config_path, database_dir) if database_dir else None
        work_dir = work_base / out_dir.name if work_base else out_dir / "work"
        # work folders of killed runs (every token) are found by their released lock and removed
        stale = remove_stale_work(work_base.glob("*") if work_base else out_dir.parent.glob("*/work"))
        if stale:
            step(f"removed {len(stale)} work folder(s) left by interrupted runs")

        with open_backend(config.backend, work_dir) as backend:
            step("loading the extracts")
            t = time.perf_counter()
            record_index = backend.load_record_index(extracts)
            columns = input_columns(config)
            tables = [backend.load_extract(a, p, columns) for a, p in extracts.items()]
            linker = Linker(tables, settings(config), log_level=None)
            seconds["load"] = time.perf_counter() - t

            training_seconds = train(linker, config.training, step)
            seconds.update({f"train_{k}": v for k, v in training_seconds.items()})

            step("scoring candidate pairs")
            t = time.perf_counter()
            # the pairs to score are materialised first so that they can be counted per blocking rule
            # (exactly, for free); predict() then scores this cached table
            blocked = linker.inference.compute_blocked_pairs_for_predict()
            pairs_per_rule = backend.count_per_rule(blocked.physical_name)
            predictions = linker.inference.predict(
                threshold_match_weight=config.report.pair_floor_match_weight, warning_mode="never"
            )
            blocked.drop_table_from_database_and_remove_from_cache()
            # Spark: bring the scored pairs (ids, weights) and the model to the local DuckDB
            linker, predictions = backend.localise(linker, predictions)
            seconds["predict"] = time.perf_counter() - t

            step("clustering")
            t = time.perf_counter()
            inputs = {a: table.physical_name for a, table in zip(extracts, tables, strict=True)}
            clustered = cluster(
                backend,
                predictions,
                record_index,
                inputs,
                config.clustering,
                largest=config.report.largest_clusters,
            )
            clusters = clustered.table
            seconds["cluster"] = time.perf_counter() - t

            step("writing outputs")
            t = time.perf_counter()
            with folder.writing("clusters.parquet") as tmp:
                backend.con.execute(f"COPY {clusters} TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
            model = linker.misc.save_model_to_json(str(folder.path("model.json")), overwrite=True)
            folder.register("model.json")
            seconds["write"] = time.perf_counter() - t

            step("measuring clusters")
            t = time.perf_counter()
            metrics = collect_metrics(
                config,
                backend,
                predictions,
                pairs_per_rule,
                clusters,
                run_id=out_dir.name,
                model=model,
                clustered=clustered,
                manifests={a: by_agency[a].manifest for a in extracts},
            )
            seconds["metrics"] = time.perf_counter() - t

            step("writing the quality report")
            metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
            t = time.perf_counter()
            write_quality_report(folder.path("quality.html"), config, backend, linker, predictions, metrics)
            folder.register("quality.html")
            seconds["report"] = time.perf_counter() - t

        seconds["total"] = time.perf_counter() - started
        metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
        metrics.peak_rss_bytes = peak_rss()

    metrics.created_at = datetime.now(UTC).replace(microsecond=0)
    metrics.tool_version, metrics.splink_version = __version__, splink.__version__
    metrics.write(folder.path("metrics.json"))
    folder.register("metrics.json")
    marker = folder.complete(log)
    manifests = [e.manifest_path for e in report.extracts]
    return RunResult(
        out_dir=out_dir,
        metrics=metrics,
        outputs=[folder.path(name) for name in folder.outputs] + [marker],
        inputs=[*manifests, *extracts.values()],
        key_fingerprint=report.extracts[0].manifest.key_fingerprint,
    )
