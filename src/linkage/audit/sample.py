"""A few rows of a raw extract, for the audit's `--sample AGENCY=FILE`: the real column list (so the
review can name the dropped columns) and, per attribute, the sampled values as they would leave the
agency (``passing``), to scan for identifiers whatever type the attribute is declared as.

Read inside the agency zone only; the audit reports counts and patterns, never a sampled value.
"""

from __future__ import annotations

import csv
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from linkage.config.agency import (
    AgencyConfig,
    Attribute,
    CategoryAttribute,
    CodeAttribute,
    CsvInput,
    DateAttribute,
    IntegerAttribute,
)
from linkage.errors import ConfigError
from linkage.tokens.standardise import InvalidValue, parse_date

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

    def passing(self, attr: Attribute) -> list[str]:
        """The sampled values of ``attr`` that `linkage pseudonymise` would let out, as they would leave.

        Mirrors extract/transform.py: codes matching the pattern, integers in range, a category's
        output for a listed value, parsed dates (ISO). Booleans leave as true/false only: none.
        """
        return [v for raw in self.values.get(attr.column, []) if (v := _would_pass(attr, raw)) is not None]


def _would_pass(attr: Attribute, raw: str) -> str | None:
    if isinstance(attr, CodeAttribute):
        code = raw.strip().upper()
        return code if re.match(attr.pattern, code) else None
    if isinstance(attr, IntegerAttribute):
        try:
            value = int(raw.strip())
        except ValueError:
            return None
        in_range = (attr.min is None or value >= attr.min) and (attr.max is None or value <= attr.max)
        return str(value) if in_range else None
    if isinstance(attr, CategoryAttribute):
        return category_outputs(attr).get(raw.strip().upper())
    if isinstance(attr, DateAttribute):
        try:
            return parse_date(raw, attr.formats).isoformat()
        except InvalidValue:
            return None
    return None


def category_outputs(attr: CategoryAttribute) -> dict[str, str | None]:
    """Upper-case raw value -> the value that leaves (extract/transform.py applies the same lookup)."""
    lookup: dict[str, str | None] = {v.upper(): v for v in attr.values or []}
    return lookup | {k.strip().upper(): v for k, v in (attr.map or {}).items()}


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
