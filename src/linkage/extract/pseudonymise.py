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
from linkage.errors import ConfigError, LinkageError
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
from linkage.extract.transform import (
    ACTION_REJECTED,
    BatchResult,
    BatchTransformer,
    FieldCounts,
    generic_id_columns,
    output_schema,
    rekey_row_numbers,
)
from linkage.keys import ProjectKey, SigningKey
from linkage.tokens.spec import (
    MENTION_OF,
    RECORD_KEY,
    ROLE,
    SOURCE_ROW,
    TOKEN_SPEC_VERSION,
    VICTIM_INDEX,
    WEAK_MARKERS,
    Purpose,
    is_token_column,
)
from linkage.tokens.tokenise import Tokeniser
from linkage.util import atomic_path, sha256_file

REJECT_COLUMNS = ["file", "line", "source_row", "column", "reason", "action", "record"]
DEFAULT_MAX_REJECT_RATE = 0.01
DEFAULT_MAX_BLANK_RATE = 0.5
MIN_ROWS_FOR_LIMITS = 100  # below this, a few bad rows are not a rate worth refusing over

# CSV injection (OWASP): a cell starting with one of these is run as a formula by spreadsheet tools.
# Such a cell gets a leading apostrophe, and so does a cell already starting with one, so the raw text
# is always recovered by removing one leading apostrophe (``recover_cell``).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


class ExtractRefused(LinkageError):
    """Too many rows rejected or values blanked: no extract is written (the rejects file is)."""


def neutralise_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def recover_cell(text: str) -> str:
    """The raw text of a rejects-file cell written by ``neutralise_cell``."""
    return text[1:] if text.startswith("'") else text


# progress(bytes_done, rows_done)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PseudonymiseResult:
    parquet: Path
    manifest: Path
    rejects: Path
    manifest_data: Manifest


# --- worker processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A field-level problem in a row that was kept (value blanked or kept unverified)."""

    source_row: int
    line: int | None
    column: str
    reason: str
    action: str


@dataclass
class UnitResult:
    """A unit of work done: output rows, every reject (structural and value), problems and counters."""

    batch: pa.RecordBatch
    rejects: list[Reject]
    problems: list[Problem]
    records: int
    counts: FieldCounts
    victim_rows: int
    local_rows: bool  # source_row counts from the unit's start (CSV chunks)
    nbytes: int  # input bytes this unit covered (for progress)


class _Worker:
    """Parses (CSV) and transforms units of work; one per worker process."""

    def __init__(self, config: AgencyConfig, subkeys: dict[Purpose, bytes], layout: CsvLayout | None) -> None:
        self.transformer = BatchTransformer(config, subkeys)
        self.layout = layout

    def __call__(self, unit: CsvChunk | RawBatch) -> UnitResult:
        local = isinstance(unit, CsvChunk)
        raw: RawBatch
        if isinstance(unit, CsvChunk):
            if self.layout is None:
                raise RuntimeError("CSV chunk but no CSV layout (the reader sets one for CSV input)")
            raw = parse_csv_chunk(unit, self.layout)
            nbytes = len(unit.data)
        else:
            raw = unit
            nbytes = unit.nbytes
        result: BatchResult = self.transformer.transform(raw.columns, raw.source_rows)
        by_row: dict[int, list[tuple[str, str]]] = {}
        for i, column, reason in result.rejects:
            by_row.setdefault(i, []).append((column, reason))
        value_rejects = [
            Reject(
                raw.source_rows[i],
                raw.lines[i],
                ";".join(c for c, _ in p),
                "; ".join(r for _, r in p),
                raw.raw(i),
            )
            for i, p in by_row.items()
        ]
        rejects = sorted([*raw.rejects, *value_rejects], key=lambda r: r.source_row or 0)
        problems = [
            Problem(raw.source_rows[i], raw.lines[i], column, reason, action)
            for i, column, reason, action in sorted(result.problems)
        ]
        return UnitResult(
            result.batch, rejects, problems, raw.records, result.counts, result.victim_rows, local, nbytes
        )


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
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
    max_blank_rate: float = DEFAULT_MAX_BLANK_RATE,
    period: str | None = None,
) -> PseudonymiseResult:
    """Pseudonymise one extract. Raises InputError before writing anything if the input is unusable,
    and ExtractRefused (writing only the rejects file) if the reject or blank limits are exceeded."""
    agency = config.agency.name
    out_dir = Path(out_dir)
    rejects_path = default_rejects_path(input_path, agency, rejects_dir)
    for what, path in (("rejects file", rejects_path), ("input file", Path(input_path))):
        if out_dir.resolve() in path.resolve().parents:
            raise ConfigError(
                f"{what} {path} would be inside the output directory {out_dir}: raw rows hold identifiers "
                "and must stay in the agency; choose another --out (or --rejects) directory"
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
    read = written = victim_rows = 0
    reasons: Counter = Counter()
    counts = FieldCounts()
    coverage: Counter = Counter()
    input_name = str(input_path)
    subkeys = key.subkeys()
    worker_args = (config, subkeys, reader.layout)
    row_numbers = config.identifiers.record_id is None
    rekey = Tokeniser({Purpose.record_keys: subkeys[Purpose.record_keys]}) if row_numbers else None
    schema = output_schema(config)
    token_columns = [f.name for f in schema if is_token_column(f.name)]
    refused: ExtractRefused | None = None
    with atomic_path(rejects_path) as tmp_rejects:
        try:
            with atomic_path(parquet_path) as tmp_parquet:
                with open(tmp_rejects, "w", newline="", encoding="utf-8") as rej_fh:
                    rejects_out = csv.writer(rej_fh)
                    rejects_out.writerow(REJECT_COLUMNS)
                    with pq.ParquetWriter(tmp_parquet, schema, compression=_compression(schema)) as writer:
                        for unit in _results(units, worker_args, workers):
                            offset = read if unit.local_rows else 0
                            _write_problems(rejects_out, input_name, offset, unit)
                            for r in unit.rejects:
                                reasons[_reason_class(r.reason)] += 1
                            batch = unit.batch
                            if offset:
                                i = batch.schema.get_field_index(SOURCE_ROW)
                                rows = pc.add(batch.column(i), offset)
                                batch = batch.set_column(i, batch.schema.field(i), rows)
                                if rekey is not None:
                                    batch = rekey_row_numbers(rekey, agency, batch)
                            if batch.num_rows:
                                writer.write_batch(batch)
                            for name in token_columns:
                                coverage[name] += batch.num_rows - batch.column(name).null_count
                            counts.update(unit.counts)
                            read += unit.records
                            written += batch.num_rows - unit.victim_rows
                            victim_rows += unit.victim_rows
                            if progress:
                                progress(unit.nbytes, unit.records)
                rejected = sum(reasons.values())
                problem = _over_limits(read, rejected, counts, max_reject_rate, max_blank_rate)
                if problem:
                    raise ExtractRefused(f"{agency}: refused, no extract written: {problem}")
                duplicates, example = _duplicate_keys(tmp_parquet)
                if duplicates:
                    # one id for two rows: the same record twice, or two records (two suspects of one
                    # crime) that the linkage could not tell apart; the agency chooses an id per row
                    id_column = (
                        " + ".join(config.identifiers.record_id.parts)
                        if config.identifiers.record_id
                        else "?"
                    )
                    raise ExtractRefused(
                        f"{agency}: refused, no extract written: {duplicates:,} row(s) repeat the record "
                        f"id of an earlier row (column {id_column}; first: data row {example[0]} repeats "
                        f"row {example[1]}); give each row an id of its own, or leave record_id out to key "
                        "rows by their number"
                    )
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
                    extraction_period=period or config.agency.extraction_period,
                    record_id_source="row_number" if row_numbers else "column",
                    postcode_country=config.identifiers.postcode.country
                    if config.identifiers.postcode
                    else None,
                    generic_ids=generic_id_columns(config),
                    counts=RowCounts(
                        read=read, written=written, rejected=rejected, victim_mentions=victim_rows
                    ),
                    rejects_by_reason=dict(sorted(reasons.items())),
                    values_present=dict(sorted(counts.present.items())),
                    values_blanked=_nested(counts.blanked),
                    values_unverified=_nested(counts.unverified),
                    value_notes=_nested(counts.notes),
                    token_coverage={name: coverage[name] for name in token_columns},
                    duplicate_record_keys=duplicates,
                    output=OutputInfo(
                        file=parquet_path.name,
                        bytes=tmp_parquet.stat().st_size,
                        rows=written + victim_rows,
                        sha256=sha256_file(tmp_parquet),
                    ),
                    columns=[ColumnInfo(name=f.name, type=str(f.type), role=_role(f.name)) for f in schema],
                    dropped_columns=reader.dropped_columns,
                    signer=SignerInfo(agency=signing_key.agency, key_id=signing_key.key_id)
                    if signing_key
                    else None,
                )
        except ExtractRefused as exc:
            refused = exc  # the rejects file is still written, for the agency to read
    if refused is not None:
        raise refused
    mpath = manifest_path(out_dir, agency)
    write_manifest(manifest, mpath, signing_key)
    return PseudonymiseResult(parquet_path, mpath, rejects_path, manifest)


def _remove_stale_temporaries(targets: list[Path]) -> None:
    """Delete the temporary files a killed run of this agency left beside its outputs (``atomic_path``
    names them ``.<target name>.<random>.tmp``); they may hold tokens or, for rejects, identifiers."""
    for target in targets:
        for stale in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def _write_problems(out, input_name: str, offset: int, unit: UnitResult) -> None:
    """Rejected rows (with their raw record) and field problems of kept rows, in row order; every cell
    neutralised against CSV injection."""
    rows = [
        (
            r.source_row + offset if r.source_row else "",
            r.line or "",
            r.column,
            r.reason,
            ACTION_REJECTED,
            r.raw,
        )
        for r in unit.rejects
    ]
    rows += [(p.source_row + offset, p.line or "", p.column, p.reason, p.action, "") for p in unit.problems]
    rows.sort(key=lambda r: r[0] or 0)
    for row, line, column, reason, action, raw in rows:
        cells = [input_name, line, row, column, reason, action, raw]
        out.writerow([neutralise_cell(c) if isinstance(c, str) else c for c in cells])


def _over_limits(read: int, rejected: int, counts: FieldCounts, max_reject: float, max_blank: float) -> str:
    """Why the run must be refused ('' if it need not): too many rows rejected or a field mostly blanked."""
    if read < MIN_ROWS_FOR_LIMITS:
        return ""
    problems = []
    if rejected / read > max_reject:
        problems.append(f"{rejected:,} of {read:,} rows rejected ({rejected / read:.1%} > {max_reject:.1%})")
    blanked: Counter = Counter()
    for (name, _), n in counts.blanked.items():
        blanked[name] += n
    for name, n in sorted(blanked.items()):
        present = counts.present[name]
        if present and n / present > max_blank:
            problems.append(
                f"{name}: {n:,} of {present:,} values blanked ({n / present:.1%} > {max_blank:.0%})"
            )
    return "; ".join(problems)


def _nested(counter: Counter) -> dict[str, dict[str, int]]:
    """(field, reason) -> n as {field: {reason: n}}, sorted."""
    out: dict[str, dict[str, int]] = {}
    for (name, reason), n in sorted(counter.items()):
        out.setdefault(name, {})[reason] = n
    return out


def _compression(schema: pa.Schema) -> dict[str, str]:
    """zstd for attributes; none for keyed tokens, which are random bits that do not compress
    (compressing them doubled the writer's CPU time for a 1 % smaller file)."""
    return {f.name: "none" if _role(f.name) in ("key", "token") else "zstd" for f in schema}


def _role(column: str) -> str:
    if column in (RECORD_KEY, MENTION_OF):
        return "key"
    if column == SOURCE_ROW:
        return "row"
    if column in WEAK_MARKERS:
        return "marker"
    if column in (ROLE, VICTIM_INDEX):
        return "role"
    return "token" if is_token_column(column) else "attribute"


def _reason_class(reason: str) -> str:
    """Group reasons for the manifest: the text before any detail in parentheses."""
    return reason.split(" (", 1)[0]


def _duplicate_keys(parquet: Path) -> tuple[int, tuple[int, int]]:
    """Rows repeating an earlier row's record_key, and the first such (its data row, the row it
    repeats): counted out of core by DuckDB, so memory stays flat. A row's victim mentions share its
    data row, so rows are counted, not records (a repeated row naming two victims is one row)."""
    con = duckdb.connect()
    try:
        sql = "SELECT count(*) - count(DISTINCT record_key) FROM read_parquet(?)"
        if not int(con.execute(sql, [str(parquet)]).fetchall()[0][0]):
            return 0, (0, 0)
        sql = f"""
            WITH keyed AS (  -- each record's row, and the first row holding its key
                SELECT {SOURCE_ROW} AS row, min({SOURCE_ROW}) OVER (PARTITION BY record_key) AS first
                FROM read_parquet(?)
            )
            SELECT count(DISTINCT row), min(row), arg_min(first, row) FROM keyed WHERE row > first
        """
        n, row, first = con.execute(sql, [str(parquet)]).fetchall()[0]
        return int(n), (int(row or 0), int(first or 0))
    finally:
        con.close()
