"""A few rows of a raw extract, for the audit's `--sample AGENCY=FILE`: the real column list (so the
review can name the dropped columns) and values of the pass-through columns to scan.

Read inside the agency zone only; the audit reports counts and patterns, never a sampled value.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from linkage.config.agency import AgencyConfig, CsvInput
from linkage.errors import ConfigError

SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class Sample:
    path: Path
    header: list[str]
    values: dict[str, list[str]]  # column -> non-missing raw values of the first SAMPLE_ROWS rows

    def dropped(self, config: AgencyConfig) -> list[str]:
        """Columns of the file the config does not read: they never leave the agency."""
        used = set(config.source_columns())
        return [c for c in self.header if c not in used]


def read_sample(config: AgencyConfig, path: Path, rows: int = SAMPLE_ROWS) -> Sample:
    """Header and the first ``rows`` rows, read with the agency config's input settings."""
    missing = {v.strip().upper() for v in config.missing_values}
    try:
        if isinstance(config.input, CsvInput):
            spec = config.input
            with open(path, newline="", encoding=spec.encoding) as fh:
                reader = csv.reader(fh, delimiter=spec.delimiter, quotechar=spec.quotechar)
                header = [h.strip().removeprefix("\ufeff") for h in next(reader, [])]
                records = [dict(zip(header, r, strict=False)) for r in itertools.islice(reader, rows)]
        else:
            parquet = pq.ParquetFile(path)
            header = parquet.schema_arrow.names
            batch = next(parquet.iter_batches(batch_size=rows), None)
            records = (
                [{k: "" if v is None else str(v) for k, v in r.items()} for r in batch.to_pylist()]
                if batch
                else []
            )
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the sample ({exc.__class__.__name__})") from None
    values = {
        col: [v for r in records if (v := (r.get(col) or "").strip()) and v.upper() not in missing]
        for col in header
    }
    return Sample(path=path, header=header, values=values)
