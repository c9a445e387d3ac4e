"""`linkage run`: verify the extracts, train, score, cluster, and write the run folder.

The run folder is the contract with every later stage:
  clusters.parquet  one row per input record: source_dataset, record_key, source_row, person_id
  pairs.parquet     every scored pair above the report's floor (ids and weights; owner-only, mode 0600):
                    `linkage recluster` re-clusters it at another threshold without retraining
  model.json        Splink's trained model (reload with `Linker(tables, "model.json")`, or
                    `linkage run --model`)
  model.yaml        the model derived from the extracts, as the config that reproduces it
  metrics.json      counts, comparisons per blocking rule, cluster sizes, timings, peak memory
  run.json          what was linked: each extract's Parquet path and SHA-256 (journeys read it)
  quality.html      the offline quality report
  inputs/           a copy of the linkage config and every extract manifest (and signature) used
No file in it carries a token: clusters and pairs hold record keys and row numbers only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import splink
from splink import Linker

from linkage import __version__
from linkage.config.linkage import LinkageConfig
from linkage.errors import ConfigError, VerificationError
from linkage.extract.manifest import Manifest, signature_path
from linkage.extract.verify import VerifyReport, verify_extracts
from linkage.keys import load_trusted_keys
from linkage.link.backend import PREDICTION_COLUMNS, Backend, open_backend
from linkage.link.cluster import cluster
from linkage.link.derive import derive, read_coverage, render_model, resolve_blocking
from linkage.link.metrics import RunMetrics, collect_metrics, estimate_blocking_recall
from linkage.link.model import blocking_rules_sql, input_columns, settings
from linkage.link.report import write_quality_report
from linkage.link.train import check_em_coverage, train
from linkage.util import atomic_path, atomic_write_bytes

if TYPE_CHECKING:
    # the one module allowed Splink's private API (from the install issue; typing only here)
    from linkage.link.splink_adapter import SplinkDataFrame

OUTPUTS = (
    "clusters.parquet",
    "pairs.parquet",
    "model.json",
    "model.yaml",
    "metrics.json",
    "quality.html",
    "run.json",
)
PAIRS_MODE = 0o600  # microdata: readable by its owner only


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
    wanted = config.extracts.agencies or found
    missing = sorted(set(wanted) - set(found))
    extra = sorted(set(found) - set(wanted))
    if not found and not reasons:
        reasons.append("no extract found")
    if missing:
        reasons.append(f"no extract for {', '.join(missing)} (the config's extracts.agencies requires it)")
    if extra:
        reasons.append(f"extract(s) for {', '.join(extra)} not listed in extracts.agencies")
    if reasons:
        raise VerificationError(
            f"refusing to link the extracts in {extracts_dir}:\n" + "\n".join(f"  - {r}" for r in reasons)
        )
    return report


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out_dir}: run folder exists and is not empty (choose a new run id)")
        for name in (*OUTPUTS, "inputs", "work"):
            target = out_dir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _copy_inputs(config_path: Path, report: VerifyReport, out_dir: Path) -> list[Path]:
    """Copy the config and every manifest (with its signature) into inputs/; return the copies."""
    inputs = out_dir / "inputs"
    (inputs / "manifests").mkdir(parents=True)
    copies = [Path(shutil.copy2(config_path, inputs / "linkage.yaml"))]
    for check in report.extracts:
        for path in (check.manifest_path, signature_path(check.manifest_path)):
            copies.append(Path(shutil.copy2(path, inputs / "manifests" / path.name)))
    return copies


def _write_run_json(
    out_dir: Path, config_path: Path, extracts_dir: Path, report: VerifyReport, order: list[str]
) -> None:
    """Name the exact extracts linked, so later stages (journeys) read the same bytes; in the order
    they were linked in (record numbering, hence person ids, follow it: recluster keeps it)."""
    by_agency = {e.manifest.agency: e for e in report.extracts}
    extracts = {
        a: {
            "parquet": str(by_agency[a].parquet_path.resolve()),
            "manifest": str(by_agency[a].manifest_path.resolve()),
            "sha256": by_agency[a].manifest.output.sha256,
            "rows": by_agency[a].manifest.output.rows,
        }
        for a in order
    }
    run = {
        "run_id": out_dir.name,
        "config": str(config_path.resolve()),
        "extracts_dir": str(extracts_dir.resolve()),
        "extracts": extracts,
        "key_fingerprint": report.extracts[0].manifest.key_fingerprint,
    }
    atomic_write_bytes(out_dir / "run.json", (json.dumps(run, indent=2) + "\n").encode())


def _folder(config: LinkageConfig, config_path: Path, given: Path | None, key: str, option: str) -> Path:
    value = getattr(config.extracts, key)
    if given is None and value is None:
        raise ConfigError(f"no {key.replace('_', ' ')} folder: give {option} or set extracts.{key}")
    return Path(given or config.resolve(config_path, value))


def write_pairs(backend: Backend, predictions: str, path: Path) -> None:
    """The scored pairs as Parquet (ids and weights only), owner-only, written atomically."""
    columns = ", ".join(PREDICTION_COLUMNS)
    with atomic_path(path) as tmp:
        backend.con.execute(
            f"COPY (SELECT {columns} FROM {predictions} ORDER BY ALL) TO '{tmp}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        os.chmod(tmp, PAIRS_MODE)


@dataclass
class Scored:
    """What scoring leaves for the later steps (all in the local DuckDB)."""

    backend: Backend
    linker: Linker
    predictions: SplinkDataFrame
    record_index: str
    tables: list[SplinkDataFrame]
    pairs_per_rule: dict[int, int]


def finish(
    scored: Scored,
    resolved: LinkageConfig,
    out_dir: Path,
    *,
    manifests: dict[str, Manifest],
    seconds: dict[str, float],
    step: Callable[[str], None],
    write_scored_pairs: bool,
    model_facts: dict[str, Any],
) -> RunMetrics:
    """Cluster the scored pairs and write clusters, model, metrics and the quality report.

    Shared by `linkage run` and `linkage recluster`, so that both give the same run folder from
    the same pairs and threshold. ``model_facts`` are metrics fields about the derived model.
    """
    backend, predictions = scored.backend, scored.predictions
    step("clustering")
    t = time.perf_counter()
    inputs = {a: table.physical_name for a, table in zip(manifests, scored.tables, strict=True)}
    clustered = cluster(
        backend,
        predictions,
        scored.record_index,
        inputs,
        resolved.clustering,
        largest=resolved.report.largest_clusters,
    )
    seconds["cluster"] = time.perf_counter() - t

    step("writing outputs")
    t = time.perf_counter()
    with atomic_path(out_dir / "clusters.parquet") as tmp:
        backend.con.execute(f"COPY {clustered.table} TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
    if write_scored_pairs:
        write_pairs(backend, predictions.physical_name, out_dir / "pairs.parquet")
    model = scored.linker.misc.save_model_to_json(str(out_dir / "model.json"), overwrite=True)
    seconds["write"] = time.perf_counter() - t

    step("measuring clusters")
    t = time.perf_counter()
    metrics = collect_metrics(
        resolved,
        backend,
        predictions,
        scored.pairs_per_rule,
        clustered.table,
        run_id=out_dir.name,
        model=model,
        clustered=clustered,
        manifests=manifests,
    )
    for key, value in model_facts.items():
        setattr(metrics, key, value)
    metrics.blocking_recall = estimate_blocking_recall(
        backend,
        predictions.physical_name,
        inputs,
        [r.sql for r in blocking_rules_sql(resolved.blocking_rules)],
        input_columns(resolved),
    )
    seconds["metrics"] = time.perf_counter() - t

    step("writing the quality report")
    metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
    t = time.perf_counter()
    write_quality_report(out_dir / "quality.html", resolved, backend, scored.linker, predictions, metrics)
    seconds["report"] = time.perf_counter() - t
    return metrics


def run_linkage(
    config: LinkageConfig,
    config_path: Path,
    out_dir: Path,
    *,
    extracts_dir: Path | None = None,
    trusted_keys_dir: Path | None = None,
    model_path: Path | None = None,
    overwrite: bool = False,
    step: Callable[[str], None] = lambda _msg: None,
) -> RunResult:
    """Link the verified extracts and write the run folder; ``step`` reports progress.

    The model is derived from the extracts and the config (link/derive.py); with ``model_path`` (a
    model.json of an earlier run) nothing is trained: that model scores the pairs.
    Raises VerificationError (nothing is linked) if an extract fails verification, ConfigError
    for unusable settings or paths.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    config_path, out_dir = Path(config_path), Path(out_dir)
    extracts_dir = _folder(config, config_path, extracts_dir, "directory", "--extracts")
    keys_dir = _folder(config, config_path, trusted_keys_dir, "trusted_keys", "--trusted-keys")
    if config.training.em_rules and config.comparisons:
        check_em_coverage(config)  # a config that fixes both is refused before anything is read

    with _peak_rss() as peak_rss:
        step(f"verifying the extracts in {extracts_dir}")
        t = time.perf_counter()
        report = _verified(config, extracts_dir, keys_dir)
        by_agency = {e.manifest.agency: e for e in report.extracts}
        extracts = {a: by_agency[a].parquet_path for a in config.extracts.agencies or sorted(by_agency)}
        seconds["verify"] = time.perf_counter() - t

        step("deriving the model from the token families present")
        derived = derive(config, read_coverage(extracts))
        check_em_coverage(derived.config)

        _prepare_out_dir(out_dir, overwrite)
        copies = _copy_inputs(config_path, report, out_dir)
        _write_run_json(out_dir, config_path, extracts_dir, report, list(extracts))
        database_dir = config.backend.database_dir
        work_dir = (
            config.resolve(config_path, database_dir) / out_dir.name if database_dir else out_dir / "work"
        )

        with open_backend(config.backend, work_dir) as backend:
            step("loading the extracts")
            t = time.perf_counter()
            record_index = backend.load_record_index(extracts)
            columns = input_columns(derived.config)
            tables = [backend.load_extract(a, p, columns) for a, p in extracts.items()]
            records = {a: by_agency[a].manifest.counts.written for a in extracts}
            seconds["load"] = time.perf_counter() - t

            step("choosing blocking rules under the comparison budget")
            t = time.perf_counter()
            resolved, rule_counts = resolve_blocking(derived, tables, sum(records.values()))
            seconds["blocking_choice"] = time.perf_counter() - t

            with _splink_warnings(derived.notes):
                if model_path is None:
                    linker = Linker(tables, settings(resolved), log_level=None)
                    training_seconds = train(
                        linker,
                        resolved.training,
                        step,
                        notes=derived.notes,
                        records=records,
                        link_type=resolved.link_type,
                    )
                    seconds.update({f"train_{k}": v for k, v in training_seconds.items()})
                else:
                    step(f"loading the trained model {model_path}")
                    linker = Linker(tables, json.loads(Path(model_path).read_text()), log_level=None)

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

            metrics = finish(
                Scored(backend, linker, predictions, record_index, tables, pairs_per_rule),
                resolved,
                out_dir,
                manifests={a: by_agency[a].manifest for a in extracts},
                seconds=seconds,
                step=step,
                write_scored_pairs=True,
                model_facts={
                    "model_notes": derived.notes,
                    "blocking_candidates": [c.__dict__ for c in rule_counts],
                    "blocking_budget": derived.budget,
                },
            )
            atomic_write_bytes(out_dir / "model.yaml", render_model(derived, resolved, rule_counts).encode())

        seconds["total"] = time.perf_counter() - started
        metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
        metrics.peak_rss_bytes = peak_rss()

    metrics.created_at = datetime.now(UTC).replace(microsecond=0)
    metrics.tool_version, metrics.splink_version = __version__, splink.__version__
    metrics.write(out_dir / "metrics.json")
    manifests = [e.manifest_path for e in report.extracts]
    return RunResult(
        out_dir=out_dir,
        metrics=metrics,
        outputs=[out_dir / name for name in OUTPUTS] + copies,
        inputs=[*manifests, *extracts.values()],
        key_fingerprint=report.extracts[0].manifest.key_fingerprint,
    )


@contextmanager
def _splink_warnings(notes: list[str]) -> Iterator[None]:
    """Splink's training warnings (a level never observed...) become notes in the report."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = " ".join(record.getMessage().split())
            # a probe finding no pair only means the pass is small enough to use whole
            if record.levelno >= logging.WARNING and "Probe returned zero blocked pairs" not in message:
                notes.append("Splink: " + message.removeprefix("WARNING: "))

    logger, handler = logging.getLogger("splink"), Collect()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def describe_model(
    config: LinkageConfig,
    config_path: Path,
    extracts_dir: Path,
    trusted_keys_dir: Path | None,
    work_dir: Path,
) -> str:
    """The model `linkage run` would use on these extracts, as commented YAML (`linkage model`).

    With trusted keys the extracts are verified first, as a run would; without, the manifests are
    read as they are (a preview: the run itself always verifies).
    """
    if trusted_keys_dir is not None:
        report = _verified(config, Path(extracts_dir), Path(trusted_keys_dir))
        found = {e.manifest.agency: e.parquet_path for e in report.extracts}
    else:
        found = {}
        for manifest in sorted(Path(extracts_dir).glob("*.manifest.json")):
            parquet = manifest.with_name(manifest.name.removesuffix(".manifest.json") + ".parquet")
            found[json.loads(manifest.read_text())["agency"]] = parquet
        if not found:
            raise ConfigError(f"{extracts_dir}: no *.manifest.json (pseudonymised extracts) found")
    extracts = {a: found[a] for a in config.extracts.agencies or sorted(found) if a in found}
    derived = derive(config, read_coverage(extracts))
    check_em_coverage(derived.config)
    with open_backend(config.backend, work_dir) as backend:
        columns = input_columns(derived.config)
        tables = [backend.load_extract(a, p, columns) for a, p in extracts.items()]
        records = backend.sql(
            "SELECT count(*) FROM "
            + " UNION ALL SELECT count(*) FROM ".join(backend.input_table(a) for a in extracts)
        )
        resolved, counts = resolve_blocking(derived, tables, sum(r[0] for r in records))
    return render_model(derived, resolved, counts)
