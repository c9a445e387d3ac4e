"""Stream a raw extract (CSV or Parquet) in batches, separating structurally bad records.

Structural problems (undecodable bytes, broken quoting, wrong number of fields) are found here and
returned as rejects; value problems (bad dates, bad ids) are found later by the transformer. Memory
stays bounded by the batch size whatever the file size.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.config.agency import AgencyConfig, CsvInput
from linkage.errors import InputError

# A single field may legitimately be long (free-text notes we are about to drop), but an unclosed
# quote must not swallow the rest of the file into memory: cap fields at 1 MiB.
csv.field_size_limit(1 << 20)


@dataclass(frozen=True)
class Reject:
    """One rejected record: where it was, why, and its raw text (kept inside the agency zone only)."""

    source_row: int | None
    line: int | None
    column: str
    reason: str
    raw: str


@dataclass
class RawBatch:
    """A batch of well-formed records: the needed columns as lists of strings (None = absent)."""

    columns: dict[str, list[str | None]]
    source_rows: list[int]
    lines: list[int | None]
    raw: list[str]
    rejects: list[Reject] = field(default_factory=list)  # structural rejects met while reading
    bytes_read: int = 0

    def __len__(self) -> int:
        return len(self.source_rows)


class ExtractReader:
    """Iterate ``RawBatch``es over an input file; ``sha256`` is the hash of its bytes once read."""

    def __init__(self, config: AgencyConfig, path: Path, batch_size: int = 20_000) -> None:
        self.config, self.path, self.batch_size = config, Path(path), batch_size
        self.needed = config.source_columns()
        self.header: list[str] = []
        self._hash = hashlib.sha256()
        if not self.path.is_file():
            raise InputError(f"{self.path}: input file not found")
        self.size = self.path.stat().st_size

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def dropped_columns(self) -> list[str]:
        return [c for c in self.header if c not in set(self.needed)]

    def _check_header(self, header: list[str]) -> None:
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise InputError(f"{self.path}: duplicated column names in the header: {dupes}")
        missing = [c for c in self.needed if c not in header]
        if missing:
            raise InputError(
                f"{self.path}: columns named in the agency config are missing from the input: {missing}"
            )
        self.header = header

    def batches(self) -> Iterator[RawBatch]:
        if isinstance(self.config.input, CsvInput):
            yield from self._csv_batches(self.config.input)
        else:
            yield from self._parquet_batches()

    # --- CSV -----------------------------------------------------------------------------------

    def _csv_batches(self, spec: CsvInput) -> Iterator[RawBatch]:
        encoding = spec.encoding
        span: list[str] = []  # physical lines of the record being parsed
        span_bad: list[bool] = [False]
        consumed = [0]

        def lines(fh) -> Iterator[str]:
            for raw in fh:
                self._hash.update(raw)
                consumed[0] += len(raw)
                try:
                    text = raw.decode(encoding)
                except UnicodeDecodeError:
                    text = raw.decode(encoding, errors="backslashreplace")
                    span_bad[0] = True
                span.append(text)
                yield text

        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed by the with-block below
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open input ({exc.strerror})") from None
        with fh:
            reader = csv.reader(lines(fh), delimiter=spec.delimiter, quotechar=spec.quotechar, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{self.path}: file is empty (no header line)") from None
            except csv.Error as exc:
                raise InputError(f"{self.path}: header line cannot be parsed ({exc})") from None
            if span_bad[0]:
                raise InputError(f"{self.path}: header line is not valid {encoding}")
            if header and header[0].startswith("\ufeff"):  # byte-order mark from Windows tools
                header[0] = header[0][1:]
            self._check_header([h.strip() for h in header])
            width = len(self.header)
            index = [self.header.index(c) for c in self.needed]
            batch = self._new_batch()
            last_line, row_no = reader.line_num, 0
            while True:
                span.clear()
                span_bad[0] = False
                try:
                    record = next(reader)
                    error = None
                except StopIteration:
                    break
                except csv.Error as exc:
                    record, error = None, f"unparseable CSV ({exc})"
                start, last_line = last_line + 1, reader.line_num
                raw = "".join(span).rstrip("\r\n")
                if record == [] and error is None:
                    continue  # blank line: not a record
                row_no += 1
                if span_bad[0]:
                    batch.rejects.append(Reject(row_no, start, "*", f"bytes not valid {encoding}", raw))
                elif error:
                    batch.rejects.append(Reject(row_no, start, "*", error, raw))
                elif len(record) != width:
                    reason = f"expected {width} fields, found {len(record)}"
                    batch.rejects.append(Reject(row_no, start, "*", reason, raw))
                else:
                    for col, i in zip(self.needed, index, strict=True):
                        batch.columns[col].append(record[i])
                    batch.source_rows.append(row_no)
                    batch.lines.append(start)
                    batch.raw.append(raw)
                if len(batch) + len(batch.rejects) >= self.batch_size:
                    batch.bytes_read, consumed[0] = consumed[0], 0
                    yield batch
                    batch = self._new_batch()
            batch.bytes_read = consumed[0]
            yield batch

    def _new_batch(self) -> RawBatch:
        return RawBatch(columns={c: [] for c in self.needed}, source_rows=[], lines=[], raw=[])

    # --- Parquet -------------------------------------------------------------------------------

    def _parquet_batches(self) -> Iterator[RawBatch]:
        try:
            pf = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: not a readable Parquet file ({exc.__class__.__name__})") from None
        self._check_header(pf.schema_arrow.names)
        with open(self.path, "rb") as fh:  # hash the bytes for provenance
            while block := fh.read(1 << 20):
                self._hash.update(block)
        total = max(pf.metadata.num_rows, 1)
        row_no = 0
        for rb in pf.iter_batches(batch_size=self.batch_size, columns=self.needed):
            cols = {c: _as_strings(rb.column(c)) for c in self.needed}
            n = rb.num_rows
            rows = list(range(row_no + 1, row_no + n + 1))
            row_no += n
            raw = [repr({c: cols[c][i] for c in self.needed}) for i in range(n)]
            yield RawBatch(cols, rows, [None] * n, raw, bytes_read=self.size * n // total)


def _as_strings(array: pa.Array) -> list[str | None]:
    """Parquet values as the strings the config's formats describe (dates as ISO YYYY-MM-DD)."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array.to_pylist()
    return pc.cast(array, pa.string()).to_pylist()
