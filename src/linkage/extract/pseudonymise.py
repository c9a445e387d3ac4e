"""`linkage pseudonymise`: raw agency extract -> tokens-only Parquet + signed manifest.

Pipeline: the reader streams batches (structural rejects found there), worker processes transform
them (value rejects found there), and this process writes results in input order. Everything is
written to temporary files and renamed at the end, so an interrupted run leaves no output that
looks complete; any mismatch between a Parquet file and its manifest is caught by `verify`.
"""

from __future__ import annotations

import csv
import gc
import multiprocessing
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from glob import escape as glob_escape
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage import __version__
from linkage.config import config_sha256
from linkage.config.agency import AgencyConfig
from linkage.errors import ConfigError
from linkage.extract.manifest import (
    ColumnInfo,
    Manifest,
    OutputInfo,
    RowCounts,
    SignerInfo,
    SourceInfo,
    manifest_path,
    signature_path,
    write_manifest,
)
from linkage.extract.reader import (
    CHUNK_BYTES,
    CsvChunk,
    CsvLayout,
    ExtractReader,
    RawBatch,
    Reject,
    parse_csv_chunk,
)
from linkage.extract.transform import BatchResult, BatchTransformer, output_schema
from linkage.keys import ProjectKey, SigningKey
from linkage.tokens.spec import RECORD_KEY, SOURCE_ROW, TOKEN_COLUMN_NAMES, TOKEN_SPEC_VERSION, Purpose
from linkage.util import atomic_path, sha256_file

REJECT_COLUMNS = ["file", "line", "source_row", "column", "reason", "record"]

# progress(bytes_done, rows_done)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PseudonymiseResult:
    parquet: Path
    manifest: Path
    rejects: Path
    manifest_data: Manifest


# --- worker processes --------------------------------------------------------------------------


@dataclass
class UnitResult:
    """A unit of work done: output rows, every reject (structural and value), and counters."""

    batch: pa.RecordBatch
    rejects: list[Reject]
    records: int
    nulled: Counter
    local_rows: bool  # source_row counts from the unit's start (CSV chunks)
    nbytes: int  # input bytes this unit covered (for progress)


class _Worker:
    """Parses (CSV) and transforms units of work; one per worker process."""

    def __init__(self, config: AgencyConfig, subkeys: dict[Purpose, bytes], layout: CsvLayout | None) -> None:
        self.transformer = BatchTransformer(config, subkeys)
        self.layout = layout

    def __call__(self, unit: CsvChunk | RawBatch) -> UnitResult:
        local = isinstance(unit, CsvChunk)
        raw = parse_csv_chunk(unit, self.layout) if local else unit
        result: BatchResult = self.transformer.transform(raw.columns, raw.source_rows)
        problems: dict[int, list[tuple[str, str]]] = {}
        for i, column, reason in result.rejects:
            problems.setdefault(i, []).append((column, reason))
        value_rejects = [
            Reject(
                raw.source_rows[i],
                raw.lines[i],
                ";".join(c for c, _ in p),
                "; ".join(r for _, r in p),
                raw.raw(i),
            )
            for i, p in problems.items()
        ]
        rejects = sorted([*raw.rejects, *value_rejects], key=lambda r: r.source_row or 0)
        nbytes = len(unit.data) if local else unit.nbytes
        return UnitResult(result.batch, rejects, raw.records, result.nulled, local, nbytes)


_worker: _Worker | None = None


def _exit_with_parent() -> None:
    """Block until the parent process is gone, then end this worker (a killed run leaves no workers).

    ``parent_process().join()`` waits on the parent's sentinel: a pipe on POSIX, the process handle on
    Windows, so the same code works on both (prctl's PR_SET_PDEATHSIG would be Linux only).
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(1)


def _init_worker(config_json: str, subkeys: dict[Purpose, bytes], layout: CsvLayout | None) -> None:
    global _worker
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    _worker = _Worker(AgencyConfig.model_validate_json(config_json), subkeys, layout)
    # The per-field caches hold up to 10^5 entries each, and every full collection of the cyclic GC
    # walked them all: 2 us a row of a worker's ~10 (measured). Objects that exist now (modules, the
    # caches' dicts) are frozen out of collection and collections are made rarer; the transform
    # makes no reference cycles, so memory stays bounded by the chunk size and cache limit.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _run_unit(unit: CsvChunk | RawBatch) -> UnitResult:
    assert _worker is not None
    return _worker(unit)


def _results(units: Iterator[CsvChunk | RawBatch], worker_args: tuple, workers: int) -> Iterator[UnitResult]:
    """Process units in order, with at most ``2 * workers`` in flight (bounded memory)."""
    if workers <= 1:
        worker = _Worker(*worker_args)
        for unit in units:
            yield worker(unit)
        return
    config, subkeys, layout = worker_args
    # Workers are spawned, not forked: forking a process that already runs DuckDB, Arrow or JVM threads
    # can crash the child, and `spawn` is the one start method Windows has, so the path tested here is
    # the agency desktops' too. Each worker exits when this process dies (_exit_with_parent). The subkeys
    # reach the workers through a pipe, never a file.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(config.model_dump_json(), subkeys, layout),
    ) as pool:
        window: deque[Future] = deque()
        for unit in units:
            window.append(pool.submit(_run_unit, unit))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def default_rejects_path(input_path: Path, agency: str, rejects_dir: Path | None) -> Path:
    if rejects_dir is not None:
        return Path(rejects_dir) / f"{agency}.rejects.csv"
    return Path(input_path).with_name(f"{Path(input_path).stem}.rejects.csv")


def pseudonymise(
    config: AgencyConfig,
    config_path: Path,
    key: ProjectKey,
    input_path: Path,
    out_dir: Path,
    *,
    rejects_dir: Path | None = None,
    signing_key: SigningKey | None = None,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Progress | None = None,
) -> PseudonymiseResult:
    """Pseudonymise one extract. Raises InputError before writing anything if the input is unusable."""
    agency = config.agency.name
    out_dir = Path(out_dir)
    rejects_path = default_rejects_path(input_path, agency, rejects_dir)
    if out_dir.resolve() in rejects_path.resolve().parents:
        raise ConfigError(
            f"rejects file {rejects_path} would be inside the output directory {out_dir}: rejected rows hold "
            "identifiers and must stay in the agency; choose another --rejects directory"
        )
    if signing_key is not None and signing_key.agency != agency:
        raise ConfigError(f"signing key belongs to agency {signing_key.agency!r}, config is for {agency!r}")
    reader = ExtractReader(config, input_path, chunk_bytes=chunk_bytes)
    units = reader.units()  # reads and checks the header: a missing column fails here, before any output
    workers = workers or os.cpu_count() or 1

    out_dir.mkdir(parents=True, exist_ok=True)
    parquet_path = out_dir / f"{agency}.parquet"
    _remove_stale_temporaries(
        [parquet_path, rejects_path, mpath := manifest_path(out_dir, agency), signature_path(mpath)]
    )
    read = written = 0
    reasons: Counter = Counter()
    blanked: Counter = Counter()
    coverage: Counter = Counter()
    input_name = str(input_path)
    worker_args = (config, key.subkeys(), reader.layout)
    with atomic_path(parquet_path) as tmp_parquet, atomic_path(rejects_path) as tmp_rejects:
        with open(tmp_rejects, "w", newline="", encoding="utf-8") as rej_fh:
            rejects_out = csv.writer(rej_fh)
            rejects_out.writerow(REJECT_COLUMNS)
            schema = output_schema(config)
            with pq.ParquetWriter(tmp_parquet, schema, compression=_compression(schema)) as writer:
                for unit in _results(units, worker_args, workers):
                    offset = read if unit.local_rows else 0
                    for r in unit.rejects:
                        row = r.source_row + offset if r.source_row else ""
                        rejects_out.writerow([input_name, r.line or "", row, r.column, r.reason, r.raw])
                        reasons[_reason_class(r.reason)] += 1
                    batch = unit.batch
                    if offset:
                        i = batch.schema.get_field_index(SOURCE_ROW)
                        batch = batch.set_column(i, batch.schema.field(i), pc.add(batch.column(i), offset))
                    if batch.num_rows:
                        writer.write_batch(batch)
                    for name in TOKEN_COLUMN_NAMES:
                        coverage[name] += batch.num_rows - batch.column(name).null_count
                    blanked.update(unit.nulled)
                    read += unit.records
                    written += batch.num_rows
                    if progress:
                        progress(unit.nbytes, unit.records)
        rejected = sum(reasons.values())
        duplicates = _duplicate_keys(tmp_parquet)
        schema = pq.read_schema(tmp_parquet)
        manifest = Manifest(
            tool_version=__version__,
            agency=agency,
            kind=config.agency.kind,
            created_at=datetime.now(UTC).replace(microsecond=0),
            token_spec_version=TOKEN_SPEC_VERSION,
            key_fingerprint=key.fingerprint,
            config_sha256=config_sha256(config_path),
            source=SourceInfo(
                file_name=Path(input_path).name,
                format=config.input.format,
                bytes=reader.size,
                sha256=reader.sha256,
            ),
            counts=RowCounts(read=read, written=written, rejected=rejected),
            rejects_by_reason=dict(sorted(reasons.items())),
            values_blanked=dict(sorted(blanked.items())),
            token_coverage={name: coverage[name] for name in TOKEN_COLUMN_NAMES},
            duplicate_record_keys=duplicates,
            output=OutputInfo(
                file=parquet_path.name,
                bytes=tmp_parquet.stat().st_size,
                rows=written,
                sha256=sha256_file(tmp_parquet),
            ),
            columns=[ColumnInfo(name=f.name, type=str(f.type), role=_role(f.name)) for f in schema],
            dropped_columns=reader.dropped_columns,
            signer=SignerInfo(agency=signing_key.agency, key_id=signing_key.key_id) if signing_key else None,
        )
    mpath = manifest_path(out_dir, agency)
    write_manifest(manifest, mpath, signing_key)
    return PseudonymiseResult(parquet_path, mpath, rejects_path, manifest)


def _remove_stale_temporaries(targets: list[Path]) -> None:
    """Delete the temporary files a killed run of this agency left beside its outputs (``atomic_path``
    names them ``.<target name>.<random>.tmp``); they may hold tokens or, for rejects, identifiers."""
    for target in targets:
        for stale in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def _compression(schema: pa.Schema) -> dict[str, str]:
    """zstd for attributes; none for keyed tokens, which are random bits that do not compress
    (compressing them doubled the writer's CPU time for a 1 % smaller file)."""
    return {f.name: "none" if _role(f.name) in ("key", "token") else "zstd" for f in schema}


def _role(column: str) -> str:
    if column == RECORD_KEY:
        return "key"
    if column == SOURCE_ROW:
        return "row"
    return "token" if column in TOKEN_COLUMN_NAMES else "attribute"


def _reason_class(reason: str) -> str:
    """Group reasons for the manifest: the text before any detail in parentheses."""
    return reason.split(" (", 1)[0]


def _duplicate_keys(parquet: Path) -> int:
    """Records sharing a record_key: counted out of core by DuckDB, so memory stays flat."""
    con = duckdb.connect()
    try:
        sql = "SELECT count(*) - count(DISTINCT record_key) FROM read_parquet(?)"
        return int(con.execute(sql, [str(parquet)]).fetchall()[0][0])
    finally:
        con.close()
