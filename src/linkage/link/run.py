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

import json
import logging
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
from linkage.config.linkage import LinkageConfig, column_family
from linkage.errors import ConfigError, VerificationError
from linkage.extract.manifest import Manifest, signature_path
from linkage.extract.verify import ExtractCheck, VerifyReport, verify_extracts
from linkage.keys import load_trusted_keys
from linkage.link import correlated, recalibrate
from linkage.link.backend import PREDICTION_COLUMNS, Backend, open_backend
from linkage.link.cluster import cluster
from linkage.link.derive import derive, read_coverage, render_model, resolve_blocking
from linkage.link.given import given_model, load_given
from linkage.link.metrics import RunMetrics, collect_metrics, estimate_blocking_recall, scored_rules
from linkage.link.model import (
    cap_column,
    capped,
    input_columns,
    one_table,
    settings,
)
from linkage.link.report import write_quality_report
from linkage.link.train import check_em_coverage, fill_unobserved_u, train
from linkage.runfolder import RunWriter, record_from_verified, remove_stale_work

if TYPE_CHECKING:
    from linkage.link.splink_adapter import SplinkDataFrame
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
    wanted = config.extracts.agencies or found
    missing = sorted(set(wanted) - set(found))
    extra = sorted(set(found) - set(wanted))
    if missing:
        reasons.append(f"no extract for {', '.join(missing)} (the config's extracts.agencies requires it)")
    if extra:
        reasons.append(f"extract(s) for {', '.join(extra)} not listed in extracts.agencies")
    if reasons:
        raise VerificationError(
            f"refusing to link the extracts in {extracts_dir}:\n" + "\n".join(f"  - {r}" for r in reasons)
        )
    return report


def _manifest(check: ExtractCheck) -> Manifest:
    """The manifest of an extract that passed verification (a failed read is a problem, refused)."""
    if check.manifest is None:
        raise VerificationError(f"{check.manifest_path}: manifest could not be read, yet was not refused")
    return check.manifest


def _parquet(check: ExtractCheck) -> Path:
    """The Parquet file of an extract that passed verification."""
    path = check.parquet_path
    if path is None:
        raise VerificationError(f"{check.manifest_path}: manifest could not be read, yet was not refused")
    return path


def _copy_inputs(config_path: Path, report: VerifyReport, folder: RunWriter) -> None:
    """Copy the config and every manifest (with its signature) into inputs/."""
    folder.copy_in(config_path, "inputs/linkage.yaml")
    for check in report.extracts:
        for path in (check.manifest_path, signature_path(check.manifest_path)):
            folder.copy_in(path, f"inputs/manifests/{path.name}")


def _folder(config: LinkageConfig, config_path: Path, given: Path | None, key: str, option: str) -> Path:
    value = getattr(config.extracts, key)
    if given is None and value is None:
        raise ConfigError(f"no {key.replace('_', ' ')} folder: give {option} or set extracts.{key}")
    return Path(given or config.resolve(config_path, value))


def load_inputs(
    backend: Backend, extracts: dict[str, Path], config: LinkageConfig, also: set[str] | None = None
) -> list[SplinkDataFrame]:
    """Each extract's model columns (and the columns ``also`` names, a given model's: flags excepted)
    as a Splink table, with the flags of the capped blocking rules."""
    caps = capped(config.blocking_rules)
    backend.load_common_values(extracts, caps)
    flags = {f for r in caps if (f := cap_column(r))}
    columns = sorted(set(input_columns(config)) | {c for c in also or () if c not in flags})
    return [backend.load_extract(a, p, columns, caps) for a, p in extracts.items()]


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
    folder: RunWriter,
    *,
    manifests: dict[str, Manifest],
    seconds: dict[str, float],
    step: Callable[[str], None],
    write_scored_pairs: bool,
    model_facts: dict[str, Any],
) -> RunMetrics:
    """Cluster the scored pairs and write clusters, pairs, model, metrics inputs and the quality report.

    Shared by `linkage run` and `linkage recluster`, so both give the same run folder from the same
    pairs and threshold. ``model_facts`` are metrics fields about the derived model.
    """
    backend, predictions = scored.backend, scored.predictions
    inputs = {a: table.physical_name for a, table in zip(manifests, scored.tables, strict=True)}
    step("checking the model against a checked id")
    t = time.perf_counter()
    calibration = recalibrate.fit(
        backend, predictions.physical_name, inputs, resolved, scored.linker.misc.save_model_to_json()
    )
    seconds["recalibrate"] = time.perf_counter() - t
    step("clustering")
    t = time.perf_counter()
    clustered = cluster(
        backend, predictions, scored.record_index, inputs, resolved.clustering,
        largest=resolved.report.largest_clusters,
    )  # fmt: skip
    seconds["cluster"] = time.perf_counter() - t

    step("writing outputs")
    t = time.perf_counter()
    with folder.writing("clusters.parquet") as tmp:
        backend.con.execute(f"COPY {clustered.table} TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
    if write_scored_pairs:  # ids and weights only; owner-only like every output
        with folder.writing("pairs.parquet") as tmp:
            columns = ", ".join(PREDICTION_COLUMNS)
            backend.con.execute(
                f"COPY (SELECT {columns} FROM {predictions.physical_name} ORDER BY ALL) "
                f"TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
            )
    model = scored.linker.misc.save_model_to_json(str(folder.path("model.json")), overwrite=True)
    folder.register("model.json")
    seconds["write"] = time.perf_counter() - t

    step("measuring clusters")
    t = time.perf_counter()
    metrics = collect_metrics(
        resolved, backend, predictions, scored.pairs_per_rule, clustered.table,
        run_id=folder.run_id, model=model, clustered=clustered, manifests=manifests,
    )  # fmt: skip
    for key, value in model_facts.items():
        setattr(metrics, key, value)
    if scored_rules(resolved, model)[1]:
        metrics.blocking_recall = estimate_blocking_recall(
            backend, predictions.physical_name, inputs,
            resolved.blocking_rules,
            [*input_columns(resolved), *(str(cap_column(r)) for r in capped(resolved.blocking_rules))],
        )  # fmt: skip
    else:  # the estimate reads each config rule's columns; a given model's rules are SQL alone
        metrics.model_notes.append(
            "blocking recall not estimated: the given model blocks with rules of its own"
        )
    metrics.expected_clusters = clustered.expected  # measured once, when the threshold was settled
    metrics.id_calibration = calibration
    seconds["metrics"] = time.perf_counter() - t

    step("writing the quality report")
    metrics.timings_seconds = {k: round(v, 3) for k, v in seconds.items()}
    t = time.perf_counter()
    write_quality_report(folder.path("quality.html"), resolved, backend, scored.linker, predictions, metrics)
    folder.register("quality.html")
    seconds["report"] = time.perf_counter() - t
    return metrics


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
    log: EntryBuilder | None = None,
) -> RunResult:
    """Link the verified extracts and write the run folder; ``step`` reports progress.

    The model is derived from the extracts and the config (link/derive.py); with ``model_path`` (a
    model.json of an earlier run) nothing is trained: that model scores the pairs. The folder is
    completed (its marker written last) only when every output is written; ``log`` is the run-log
    entry of the command, which then lists every output and the marker.

    Raises VerificationError (nothing is linked) if an extract fails verification, ConfigError
    for unusable settings or paths.
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    config_path, out_dir = Path(config_path), Path(out_dir)
    extracts_dir = _folder(config, config_path, extracts_dir, "directory", "--extracts")
    keys_dir = _folder(config, config_path, trusted_keys_dir, "trusted_keys", "--trusted-keys")
    given = load_given(Path(model_path)) if model_path else None
    if config.training.em_rules and config.comparisons:
        check_em_coverage(config)  # a config that fixes both is refused before anything is read

    with _peak_rss() as peak_rss:
        step(f"verifying the extracts in {extracts_dir}")
        t = time.perf_counter()
        report = _verified(config, extracts_dir, keys_dir)
        by_agency = {_manifest(e).agency: e for e in report.extracts}
        extracts = {a: _parquet(by_agency[a]) for a in config.extracts.agencies or sorted(by_agency)}
        seconds["verify"] = time.perf_counter() - t

        step("deriving the model from the token families present")
        coverage = read_coverage(extracts)
        derived = derive(config, coverage)
        check_em_coverage(derived.config)
        given_columns: set[str] = set()
        if given is not None:  # its columns are loaded too, whatever the derived model would read
            if given["link_type"] != derived.config.link_type:
                raise ConfigError(
                    f"the given model links {given['link_type']}, the config {derived.config.link_type}: "
                    "score with a model of the config's link type"
                )
            flags = {f for r in capped(derived.config.blocking_rules) if (f := cap_column(r))}
            given, given_columns = given_model(given, flags, str(config.backend.engine))
            for c in sorted(c for c in given_columns if column_family(c) and not coverage.sources(c)):
                derived.notes.append(f"the given model compares {c}, which no extract holds: always missing")

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
            tables = load_inputs(backend, extracts, derived.config, given_columns)  # every candidate's cap
            records = {a: _manifest(by_agency[a]).counts.records for a in extracts}  # victim mentions too
            seconds["load"] = time.perf_counter() - t

            step("choosing blocking rules under the comparison budget")
            t = time.perf_counter()
            resolved, rule_counts = resolve_blocking(derived, tables, sum(records.values()))
            seconds["blocking_choice"] = time.perf_counter() - t

            together: list[correlated.CorrelatedCheck] = []  # measured when the model is trained here
            with _splink_warnings(derived.notes):
                if given is None:
                    linker = Linker(tables, settings(resolved), log_level=None)
                    training_seconds = train(
                        linker, resolved.training, step, notes=derived.notes, records=records,
                        link_type=resolved.link_type,
                    )  # fmt: skip
                    seconds.update({f"train_{k}": v for k, v in training_seconds.items()})
                    t = time.perf_counter()
                    fill_unobserved_u(linker, backend, resolved, records, derived.notes)
                    seconds["train_u_unseen"] = time.perf_counter() - t
                    step("measuring evidence that comes together (correlated comparisons)")
                    t = time.perf_counter()
                    trained = linker.misc.save_model_to_json()
                    together = correlated.measure(backend, resolved, trained, list(records))
                    correlated.corrected(linker, resolved, together)
                    seconds["train_correlated"] = time.perf_counter() - t
                else:
                    if resolved.training.correlated:
                        derived.notes.append(
                            "evidence that comes together not measured: the given model's own correction "
                            "(a correlated_ comparison in its model.json), if any, is used"
                        )
                    step(f"loading the trained model {model_path}")
                    linker = Linker(tables, given, log_level=None)

            step("scoring candidate pairs")
            t = time.perf_counter()
            # the trained model scores over one table with an integer key per record (model.one_table)
            one = one_table(linker.misc.save_model_to_json())
            table = backend.one_table(list(extracts), record_index) if one else None
            scorer = Linker(table, one, log_level=None) if one and table else linker
            # the pairs to score are materialised first so that they can be counted per blocking rule
            # (exactly, for free); predict() then scores this cached table
            blocked = scorer.inference.compute_blocked_pairs_for_predict()
            pairs_per_rule = backend.count_per_rule(blocked.physical_name)
            seconds["predict_blocking"] = time.perf_counter() - t  # of which: finding the pairs
            predictions = scorer.inference.predict(
                threshold_match_weight=config.report.pair_floor_match_weight, warning_mode="never"
            )
            blocked.drop_table_from_database_and_remove_from_cache()
            # Spark: bring the scored pairs (ids, weights) and the model to the local DuckDB
            linker, predictions = backend.localise(linker, predictions)
            seconds["predict"] = time.perf_counter() - t

            metrics = finish(
                Scored(backend, linker, predictions, record_index, tables, pairs_per_rule),
                resolved,
                folder,
                manifests={a: _manifest(by_agency[a]) for a in extracts},
                seconds=seconds,
                step=step,
                write_scored_pairs=True,
                model_facts={
                    "model_notes": derived.notes,
                    "blocking_candidates": [c.__dict__ for c in rule_counts],
                    "blocking_budget": derived.budget,
                    "correlated": together,
                },
            )
            folder.write_bytes("model.yaml", render_model(derived, resolved, rule_counts).encode())

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
        key_fingerprint=_manifest(report.extracts[0]).key_fingerprint,
    )


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
        found = {_manifest(e).agency: _parquet(e) for e in report.extracts}
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
        tables = load_inputs(backend, extracts, derived.config)
        records = backend.sql(
            "SELECT count(*) FROM "
            + " UNION ALL SELECT count(*) FROM ".join(backend.input_table(a) for a in extracts)
        )
        resolved, counts = resolve_blocking(derived, tables, sum(r[0] for r in records))
    return render_model(derived, resolved, counts)
