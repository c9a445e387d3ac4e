"""The agency config: what a raw extract looks like and what happens to each of its columns.

This model is the one place the agency-side schema is defined. A governance reviewer reads the
YAML; `linkage audit --schema` exports this model's JSON Schema.
"""

from __future__ import annotations

import itertools
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from linkage.tokens.spec import RESERVED_COLUMNS


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencyKind(StrEnum):
    police = "police"
    prosecution = "prosecution"
    court = "court"
    prison = "prison"


class OnInvalid(StrEnum):
    """What to do with a value that is present but fails validation."""

    reject = "reject"  # the whole row goes to the rejects file (default: nothing is lost silently)
    missing = "missing"  # the value becomes missing (NULL) and is counted in the manifest


class Agency(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = Field(
        description="Short name; names the output files and becomes `source_dataset` in linkage."
    )
    kind: AgencyKind
    description: str = ""


class CsvInput(Strict):
    format: Literal["csv"]
    encoding: str = Field("utf-8", description="Python codec name, e.g. utf-8, cp1252, latin-1.")
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    quotechar: Annotated[str, Field(min_length=1, max_length=1)] = '"'

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, v: str) -> str:
        import codecs

        try:
            name = codecs.lookup(v).name
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r}") from None
        if name.startswith(("utf-16", "utf-32")):
            # the reader splits lines on bytes, which needs an ASCII-compatible encoding
            raise ValueError(f"encoding {v!r} is not supported: re-export as UTF-8")
        return v


class ParquetInput(Strict):
    format: Literal["parquet"]


class Field_(Strict):
    """One source column; ``on_invalid`` says what happens to a value that fails validation."""

    column: str
    on_invalid: OnInvalid = OnInvalid.reject


class NameLayout(StrEnum):
    surname_comma_forenames = "SURNAME, Forenames"
    forenames_surname = "Forenames SURNAME"


class FullNameField(Field_):
    """A single column holding the whole name, split by ``layout``."""

    layout: NameLayout


class ForenamesField(Strict):
    """Forenames, possibly spread over several columns (first name, middle names) in order."""

    columns: Annotated[list[str], Field(min_length=1)]
    on_invalid: OnInvalid = OnInvalid.reject


class DateField(Field_):
    formats: Annotated[list[str], Field(min_length=1)] = Field(
        description="strptime formats tried in order, e.g. '%d/%m/%Y', '%Y-%m-%d', '%d-%b-%Y'."
    )

    @field_validator("formats")
    @classmethod
    def _has_date_parts(cls, v: list[str]) -> list[str]:
        for fmt in v:
            if not all(re.search(p, fmt) for p in (r"%d", r"%[mbB]", r"%[Yy]")):
                raise ValueError(f"format {fmt!r} must contain a day, a month and a year")
        return v


class SexField(Field_):
    map: dict[str, Literal["M", "F", "X"] | None] = Field(
        description="Raw value (case-insensitive) -> M, F, X (other) or null (unknown)."
    )


class Identifiers(Strict):
    """Identifier columns. Each is standardised and turned into keyed tokens; none passes in the clear
    (sex, a small code set, is the one exception and is listed as an attribute in the output)."""

    record_id: Field_ = Field(description="The agency's own record id; becomes `record_key`.")
    case_reference: Field_ | None = None
    full_name: FullNameField | None = None
    forenames: ForenamesField | None = None
    surname: Field_ | None = None
    date_of_birth: DateField | None = None
    sex: SexField | None = None
    postcode: Field_ | None = None
    pnc: Field_ | None = Field(None, description="Police National Computer id, check character verified.")

    @model_validator(mode="after")
    def _one_name_layout(self) -> Identifiers:
        if self.full_name and (self.forenames or self.surname):
            raise ValueError("give either full_name or forenames/surname, not both")
        return self

    def columns(self) -> dict[str, str]:
        """Source column -> identifier field name (for the audit and the dropped-column list)."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            spec = getattr(self, name)
            if spec is None:
                continue
            for col in spec.columns if isinstance(spec, ForenamesField) else [spec.column]:
                out[col] = name
        return out


class _Attribute(Strict):
    column: str
    name: str | None = Field(None, description="Output column name; defaults to the source column name.")
    on_invalid: OnInvalid = OnInvalid.reject

    @property
    def out_name(self) -> str:
        return self.name or self.column


class DateAttribute(_Attribute):
    type: Literal["date"]
    formats: Annotated[list[str], Field(min_length=1)]


class CodeAttribute(_Attribute):
    """A short code (offence code, court code); upper-cased, validated against ``pattern``."""

    type: Literal["code"]
    pattern: str = Field(r"^[A-Z0-9/._-]{1,20}$", description="Regular expression the code must match.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        return v


class CategoryAttribute(_Attribute):
    """A value from a closed list. ``map`` recodes raw values; ``values`` lists the allowed outputs."""

    type: Literal["category"]
    values: list[str] | None = None
    map: dict[str, str | None] | None = None

    @model_validator(mode="after")
    def _closed(self) -> CategoryAttribute:
        if not self.values and not self.map:
            raise ValueError("a category needs `values` or `map` (a closed list), so free text cannot pass")
        if self.values and self.map:
            bad = {v for v in self.map.values() if v is not None} - set(self.values)
            if bad:
                raise ValueError(f"map produces values not in `values`: {sorted(bad)}")
        return self


class IntegerAttribute(_Attribute):
    type: Literal["integer"]
    min: int | None = None
    max: int | None = None


class BooleanAttribute(_Attribute):
    type: Literal["boolean"]
    true_values: list[str] = ["Y", "YES", "TRUE", "1"]
    false_values: list[str] = ["N", "NO", "FALSE", "0"]


Attribute = Annotated[
    DateAttribute | CodeAttribute | CategoryAttribute | IntegerAttribute | BooleanAttribute,
    Field(discriminator="type"),
]


class AgeBand(Strict):
    """Derive a coarse age band from the date of birth at an event date; the DOB itself never passes."""

    at: str = Field(description="Name of a date attribute (e.g. the offence or reception date).")
    bands: Annotated[list[int], Field(min_length=1)] = [18, 25, 35, 45, 55, 65]
    name: str = "age_band"

    @field_validator("bands")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(v)) or v[0] <= 0:
            raise ValueError("bands must be positive and strictly increasing")
        return v

    def labels(self) -> list[str]:
        edges = self.bands
        out = [f"under {edges[0]}"]
        out += [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
        return [*out, f"{edges[-1]}+"]


class AgencyConfig(Strict):
    """Top level of `configs/agencies/<agency>.yaml`."""

    agency: Agency
    input: Annotated[CsvInput | ParquetInput, Field(discriminator="format")]
    missing_values: list[str] = Field(
        ["", "NULL", "N/A", "NA", "N/K", "NK", "UNKNOWN", "NOT KNOWN"],
        description="Values (case-insensitive, after trimming) that mean 'missing'; they become NULL.",
    )
    identifiers: Identifiers
    attributes: list[Attribute] = []
    age_band: AgeBand | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AgencyConfig:
        id_cols = self.identifiers.columns()
        names: set[str] = set()
        for attr in self.attributes:
            if attr.column in id_cols:
                raise ValueError(
                    f"column {attr.column!r} is an identifier ({id_cols[attr.column]}) and cannot also "
                    "pass through as an attribute"
                )
            if attr.out_name in RESERVED_COLUMNS:
                raise ValueError(f"attribute name {attr.out_name!r} is reserved by the token spec")
            if attr.out_name in names:
                raise ValueError(f"attribute name {attr.out_name!r} is used twice")
            names.add(attr.out_name)
        if self.age_band:
            if self.identifiers.date_of_birth is None:
                raise ValueError("age_band needs identifiers.date_of_birth")
            dates = {a.out_name for a in self.attributes if a.type == "date"}
            if self.age_band.at not in dates:
                raise ValueError(f"age_band.at must name a date attribute, one of {sorted(dates)}")
            if self.age_band.name in names or self.age_band.name in RESERVED_COLUMNS:
                raise ValueError(f"age_band name {self.age_band.name!r} clashes with another column")
        return self

    def source_columns(self) -> list[str]:
        """Every source column the config reads (identifiers first, then attributes)."""
        cols = list(self.identifiers.columns())
        return cols + [a.column for a in self.attributes if a.column not in cols]
