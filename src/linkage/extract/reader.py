"""Read a raw extract (CSV or Parquet) in bounded units of work, separating structurally bad records.

CSV is split here, in the main process, into byte chunks that end on a record boundary: a chunk
ends at a newline where the count of quote characters so far is even, which is exact for RFC 4180
quoting (an escaped quote is doubled, so it does not change the parity). Chunks are parsed in the
worker processes (`parse_csv_chunk`), so both cores do the expensive work. Structural problems
(undecodable bytes, broken quoting, wrong number of fields) become rejects there; value problems
(bad dates, bad ids) are found later by the transformer. Memory is bounded by the chunk size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.config.agency import AgencyConfig, CsvInput
from linkage.errors import InputError

# A single field may legitimately be long (free-text notes we are about to drop), but an unclosed
# quote must not swallow the rest of the file into memory: cap fields at 1 MiB.
csv.field_size_limit(1 << 20)

CHUNK_BYTES = 2 << 20
MAX_RECORD_BYTES = 16 << 20  # a quoted record longer than this is treated as an unclosed quote


@dataclass(frozen=True)
class Reject:
    """One rejected record: where it was, why, and its raw text (kept inside the agency zone only)."""

    source_row: int | None
    line: int | None
    column: str
    reason: str
    raw: str


@dataclass(frozen=True)
class CsvChunk:
    """Raw bytes of whole CSV records, and the physical line number of the first one."""

    data: bytes
    first_line: int


@dataclass
class RawBatch:
    """Well-formed records as columns of strings (None = absent), with where each came from.

    ``source_rows`` are 1-based record numbers; for CSV chunks they count from the chunk's start
    and the main process adds the running offset (only it knows how many records came before).
    The raw text of a record is rebuilt only when it is rejected (``raw``).
    """

    columns: dict[str, pa.Array]  # string arrays
    source_rows: list[int]
    lines: list[int | None]
    rejects: list[Reject] = field(default_factory=list)
    records: int = 0  # well-formed + structurally rejected records in this unit
    nbytes: int = 0  # share of the input file's bytes (Parquet progress)
    chunk: CsvChunk | None = None  # CSV: the bytes the records came from
    encoding: str = "utf-8"
    spans: list[tuple[int, int]] | None = None  # CSV: each record's lines in the chunk (None: line i)
    _text_lines: list[str] | None = field(default=None, repr=False)  # the chunk decoded once, for ``raw``

    def __len__(self) -> int:
        return len(self.source_rows)

    def raw(self, i: int) -> str:
        """The i-th well-formed record as it appeared in the input (for the rejects file)."""
        if self.chunk is not None:
            if self._text_lines is None:  # decoded once per chunk, not once per rejected record
                self._text_lines, _ = _decode_lines(self.chunk.data, self.encoding)
            text_lines = self._text_lines
            a, b = self.spans[i] if self.spans is not None else (i, i + 1)
            return "".join(text_lines[a:b]).rstrip("\r\n")
        return repr({c: values[i].as_py() for c, values in self.columns.items()})


@dataclass(frozen=True)
class CsvLayout:
    """What a worker needs to parse a chunk: dialect, encoding, header width, needed column positions."""

    encoding: str
    delimiter: str
    quotechar: str
    header: tuple[str, ...]
    needed: tuple[str, ...]
    index: tuple[int, ...]

    @property
    def width(self) -> int:
        return len(self.header)

    def quotes_look_well_formed(self, data: bytes) -> bool:
        """True if every quote opens a field, closes one, or is a doubled quote inside one.

        Doubled quotes are dropped (one C-speed ``bytes.replace``); then one regex search, which
        skips from quote to quote in C, looks for a quote with neither a line start or delimiter
        before it nor a delimiter or line end after it (0.2 us a row; the earlier chain of seven
        ``bytes.replace`` passes cost 1.4). A False sends the chunk to the strict record-by-record
        parser, which has the last word.
        """
        q = self.quotechar.encode()
        return _stray_quote(q, self.delimiter.encode()).search(data.replace(q + q, b"")) is None


@cache
def _stray_quote(quote: bytes, delimiter: bytes) -> re.Pattern[bytes]:
    """A quote not next to a record or field boundary (the start and end of the data count as one)."""
    q, d = re.escape(quote), re.escape(delimiter)
    return re.compile(q + rb"(?<=[^\n" + d + rb"]" + q + rb")(?!" + d + rb"|\r?\n|\r?\Z)")


class ExtractReader:
    """Opens an input, checks its header, then yields units of work (``CsvChunk`` or ``RawBatch``)."""

    def __init__(self, config: AgencyConfig, path: Path, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.config, self.path, self.chunk_bytes = config, Path(path), chunk_bytes
        self.needed = config.source_columns()
        self.header: list[str] = []
        self.layout: CsvLayout | None = None
        self._hash = hashlib.sha256()
        if not self.path.is_file():
            raise InputError(f"{self.path}: input file not found")
        self.size = self.path.stat().st_size

    @property
    def sha256(self) -> str:
        """SHA-256 of the input's bytes (complete once every unit has been read)."""
        return self._hash.hexdigest()

    @property
    def dropped_columns(self) -> list[str]:
        return [c for c in self.header if c not in set(self.needed)]

    def _check_header(self, header: list[str]) -> None:
        # Positions, never names: a file without a header line has data in its first line, and this
        # message reaches the terminal and the run log.
        dupes = [i for i, c in enumerate(header, start=1) if header.count(c) > 1]
        if dupes:
            raise InputError(
                f"{self.path}: the header line repeats column names (columns {dupes}); is the header missing?"
            )
        missing = [c for c in self.needed if c not in header]
        if missing:
            raise InputError(
                f"{self.path}: columns named in the agency config are missing from the input: {missing}"
            )
        self.header = header

    def units(self) -> Iterator[CsvChunk | RawBatch]:
        """Check the header (raising InputError before any output), then yield units of work."""
        if isinstance(self.config.input, CsvInput):
            return self._csv_chunks(self.config.input)
        return self._parquet_batches()

    # --- CSV -----------------------------------------------------------------------------------

    def _csv_chunks(self, spec: CsvInput) -> Iterator[CsvChunk]:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed by the generator below
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open input ({exc.strerror})") from None
        quote = spec.quotechar.encode(spec.encoding)
        header_bytes, header_lines = _read_record(fh, quote)
        self._hash.update(header_bytes)
        if not header_bytes.strip():
            fh.close()
            raise InputError(f"{self.path}: file is empty (no header line)")
        try:
            text = header_bytes.decode(spec.encoding).removeprefix("\ufeff")  # BOM from Windows tools
            header = next(csv.reader([text], delimiter=spec.delimiter, quotechar=spec.quotechar, strict=True))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            fh.close()
            raise InputError(f"{self.path}: header line cannot be read as {spec.encoding} CSV") from None
        self._check_header([h.strip() for h in header])
        self.layout = CsvLayout(
            spec.encoding,
            spec.delimiter,
            spec.quotechar,
            tuple(self.header),
            tuple(self.needed),
            tuple(self.header.index(c) for c in self.needed),
        )
        return self._chunks_after_header(fh, quote, header_lines + 1)

    def _chunks_after_header(self, fh, quote: bytes, first_line: int) -> Iterator[CsvChunk]:
        """Chunks of whole records: each ends at the last newline where the count of quotes since the
        header is even, wherever the read blocks end. The bytes after that newline (an unfinished
        record, e.g. a quoted field spanning lines) are carried into the next chunk."""
        with fh:
            carry = b""
            while lines := fh.readlines(self.chunk_bytes):
                block = b"".join(lines)
                self._hash.update(block)
                data = carry + block
                cut = _last_record_end(data, quote)
                if cut == 0 and len(data) > MAX_RECORD_BYTES:
                    # A stray unclosed quote would make the rest of the file one "record": past
                    # MAX_RECORD_BYTES the data is emitted anyway (the parser rejects the unclosed
                    # record, raw text kept) and counting restarts, so memory stays bounded.
                    cut = len(data)
                if cut:
                    yield CsvChunk(data[:cut], first_line)
                    first_line += data.count(b"\n", 0, cut)
                carry = data[cut:]
            if carry:  # an unclosed quote runs to the end of the file: the parser reports it
                yield CsvChunk(carry, first_line)

    # --- Parquet -------------------------------------------------------------------------------

    def _parquet_batches(self) -> Iterator[RawBatch]:
        try:
            pf = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: not a readable Parquet file ({exc.__class__.__name__})") from None
        self._check_header(pf.schema_arrow.names)
        return self._parquet_rows(pf)

    def _parquet_rows(self, pf: pq.ParquetFile) -> Iterator[RawBatch]:
        with open(self.path, "rb") as fh:  # hash the bytes for provenance
            while block := fh.read(1 << 20):
                self._hash.update(block)
        row_no, total = 0, max(pf.metadata.num_rows, 1)
        for rb in pf.iter_batches(batch_size=20_000, columns=self.needed):
            cols = {c: _as_strings(rb.column(c)) for c in self.needed}
            n = rb.num_rows
            rows = list(range(row_no + 1, row_no + n + 1))
            yield RawBatch(cols, rows, [None] * n, records=n, nbytes=self.size * n // total)
            row_no += n


def _last_record_end(data: bytes, quote: bytes) -> int:
    """Offset just after the last newline where the quotes before it are even (0 if there is none).

    Exact for RFC 4180 quoting: an escaped quote is doubled and does not change the parity. Walks
    back one line at a time from the end, counting quotes in C; a quoted field rarely spans many lines.
    """
    parity = data.count(quote) % 2
    end = len(data)
    if not data.endswith(b"\n"):  # the last line is unfinished (end of file without a newline)
        end = data.rfind(b"\n") + 1
        parity = data.count(quote, 0, end) % 2
    while end > 0:
        if parity == 0:
            return end
        start = data.rfind(b"\n", 0, end - 1) + 1
        parity = (parity - data.count(quote, start, end)) % 2
        end = start
    return 0


def _read_record(fh, quote: bytes) -> tuple[bytes, int]:
    """Read physical lines until the quote count is even: one whole record (the header)."""
    lines: list[bytes] = []
    while line := fh.readline():
        lines.append(line)
        if b"".join(lines).count(quote) % 2 == 0:
            break
    return b"".join(lines), len(lines)


def _parse_with_arrow(chunk: CsvChunk, layout: CsvLayout) -> RawBatch | None:
    """Fast path, in Arrow's C++ CSV reader, for the common chunk: one well-formed record per line.

    Arrow is more lenient than the strict record-by-record parser (it reads ``"a"b`` as ``ab``), so
    the chunk must pass the same checks: every quote inside a well-formed quoted field, every line a
    record of the right width (Arrow raises otherwise), the bytes valid in the encoding. Returns None
    when the chunk needs the record-by-record path, which then reports exactly what is wrong.
    """
    data = chunk.data
    if layout.quotechar.encode() in data and not layout.quotes_look_well_formed(data):
        return None
    # Blank lines are not records: the record-by-record path skips them (Arrow would read each as a
    # row of empty fields, whatever the width). Two memchr-speed scans; blank lines are rare.
    if data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data:
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=list(layout.header), use_threads=False, encoding=layout.encoding,
                block_size=max(len(data), 1 << 16) + 1,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.delimiter, quote_char=layout.quotechar, double_quote=True,
                newlines_in_values=False, ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(layout.header, pa.string()), include_columns=list(layout.needed),
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, UnicodeError):
        return None
    n = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if table.num_rows != n:
        return None
    return RawBatch(
        columns={c: table.column(c).combine_chunks() for c in layout.needed},
        source_rows=list(range(1, n + 1)),
        lines=list(range(chunk.first_line, chunk.first_line + n)),
        records=n,
        chunk=chunk,
        encoding=layout.encoding,
    )


def _decode_lines(data: bytes, encoding: str) -> tuple[list[str], set[int]]:
    """The chunk's physical lines as text, and the indices of lines whose bytes did not decode."""
    try:
        return io.StringIO(data.decode(encoding), newline="").readlines(), set()
    except UnicodeDecodeError:
        pass  # slow path: find the offending lines, keep them visible with backslash escapes
    lines, bad = [], set()
    for raw in _physical_lines(data):
        try:
            lines.append(raw.decode(encoding))
        except UnicodeDecodeError:
            lines.append(raw.decode(encoding, errors="backslashreplace"))
            bad.add(len(lines) - 1)
    return lines, bad


def parse_csv_chunk(chunk: CsvChunk, layout: CsvLayout) -> RawBatch:
    """Parse one chunk into columns (runs in a worker). Blank lines are not records."""
    fast = _parse_with_arrow(chunk, layout)
    if fast is not None:
        return fast
    text_lines, bad = _decode_lines(chunk.data, layout.encoding)
    reader = csv.reader(text_lines, delimiter=layout.delimiter, quotechar=layout.quotechar, strict=True)
    spans: list[tuple[int, int]] = []
    batch = RawBatch(columns={}, source_rows=[], lines=[], chunk=chunk, encoding=layout.encoding, spans=spans)
    records: list[list[str]] = []
    end, row_no = 0, 0
    while True:
        try:
            record, error = next(reader), None
        except StopIteration:
            break
        except csv.Error as exc:
            record, error = [], f"unparseable CSV ({exc})"
        start, end = end, reader.line_num
        if record == [] and error is None:
            continue
        row_no += 1
        if error or (bad and not bad.isdisjoint(range(start, end))) or len(record) != layout.width:
            if error is None:
                bytes_ok = not bad or bad.isdisjoint(range(start, end))
                error = (
                    f"expected {layout.width} fields, found {len(record)}"
                    if bytes_ok
                    else (f"bytes not valid {layout.encoding}")
                )
            raw = "".join(text_lines[start:end]).rstrip("\r\n")
            batch.rejects.append(Reject(row_no, chunk.first_line + start, "*", error, raw))
            continue
        records.append(record)
        batch.source_rows.append(row_no)
        batch.lines.append(chunk.first_line + start)
        spans.append((start, end))
    columns = list(zip(*records, strict=True)) if records else [()] * layout.width
    batch.columns = {
        c: pa.array(columns[i], type=pa.string()) for c, i in zip(layout.needed, layout.index, strict=True)
    }
    batch.records = row_no
    return batch


def _physical_lines(data: bytes) -> Iterator[bytes]:
    """Split on LF only (bytes.splitlines would also split on a lone CR inside a value)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        yield data[start:end]
        start = end


def _as_strings(array: pa.Array) -> pa.Array:
    """Parquet values as the strings the config's formats describe (dates as ISO YYYY-MM-DD)."""
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())
