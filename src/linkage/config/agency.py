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

from linkage.tokens.spec import GENERIC_ID_FAMILY, GENERIC_ID_PREFIX, RESERVED_COLUMNS, columns_for


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencyKind(StrEnum):
    """What the agency is; used only where journeys need it (the stage a record belongs to)."""

    police = "police"
    prosecution = "prosecution"
    court = "court"
    prison = "prison"
    probation = "probation"
    other = "other"


class OnInvalid(StrEnum):
    """What to do with a value that is present but fails validation."""

    missing = "missing"  # default: the value is blanked and counted; the row keeps its other identifiers
    reject = "reject"  # strict: the whole row goes to the rejects file


class Agency(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = Field(
        description="Short name; names the output files and becomes `source_dataset` in linkage."
    )
    kind: AgencyKind
    description: str = ""
    extraction_period: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}-\d{2}/\d{4}-\d{2}-\d{2}$",
        description="Period the extract covers, 'YYYY-MM-DD/YYYY-MM-DD' (or `pseudonymise --period`).",
    )


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
    on_invalid: OnInvalid = OnInvalid.missing


class NameLayout(StrEnum):
    surname_comma_forenames = "SURNAME, Forenames"
    forenames_surname = "Forenames SURNAME"
    surname_forenames = "SURNAME Forenames"
    upper_case_surname = "upper-case SURNAME"  # the run of upper-case words is the surname


class FullNameField(Field_):
    """A single column holding the whole name, split by the first of ``layouts`` that fits."""

    layouts: Annotated[list[NameLayout], Field(min_length=1)] = Field(
        description="Tried in order; the manifest counts which one matched each value."
    )


class ForenamesField(Strict):
    """Forenames, possibly spread over several columns (first name, middle names) in order."""

    columns: Annotated[list[str], Field(min_length=1)]
    on_invalid: OnInvalid = OnInvalid.missing


_PLACEHOLDER = r"^(\d{4}|\*)-\d{2}-\d{2}$"


class DateField(Field_):
    formats: Annotated[list[str], Field(min_length=1)] = Field(
        description="strptime formats tried in order, e.g. '%d/%m/%Y', '%Y-%m-%d', '%d-%b-%Y'."
    )
    placeholders: list[Annotated[str, Field(pattern=_PLACEHOLDER)]] = Field(
        ["*-01-01", "1900-01-01"],
        description="Dates systems write when the real one is unknown ('YYYY-MM-DD', or '*-MM-DD' for any "
        "year): tokenised but marked weak (dob_weak).",
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


class PostcodeField(Field_):
    country: Literal["uk", "generic"] = Field(
        "uk", description="uk: validated UK postcodes; generic: any country's code, alphanumerics + prefixes."
    )


class AddressField(Strict):
    """An address as tokens (never free text): a house number + street, the street, the town.

    Give ``line`` (e.g. '12a High St', the house number is read from it) or ``house_number`` and/or
    ``street`` columns; ``town`` is optional.
    """

    line: str | None = None
    house_number: str | None = None
    street: str | None = None
    town: str | None = None
    on_invalid: OnInvalid = OnInvalid.missing

    @model_validator(mode="after")
    def _one_form(self) -> AddressField:
        if self.line and (self.house_number or self.street):
            raise ValueError("give either `line` or `house_number`/`street`, not both")
        if not (self.line or self.street or self.town):
            raise ValueError("an address needs `line`, `street` or `town`")
        return self

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.line, self.house_number, self.street, self.town) if c]


class IdType(StrEnum):
    pnc = "pnc"
    cro = "cro"
    ni_number = "ni_number"
    nhs_number = "nhs_number"
    generic = "generic"


class IdField(Field_):
    """A national or agency identifier with its own validation and tokens (docs/agency-guide.md).

    A value that fails ``type`` but is valid as a type listed in ``also`` is tokenised as that type
    (e.g. a CRO number in the PNC column). A value that parses but fails only its check character is
    kept as an unverified token (``<type>_weak``).
    """

    type: IdType
    also: list[IdType] = []
    family: str | None = Field(None, description="generic ids only: family label, e.g. 'ssn' -> id_ssn.")
    pattern: str | None = Field(None, description="generic ids only: regex the normalised value must match.")
    normalise: Literal["alnum", "digits"] = Field(
        "alnum", description="generic ids only: keep upper-case letters and digits, or digits only."
    )

    @model_validator(mode="after")
    def _generic(self) -> IdField:
        if self.type is IdType.generic:
            if not self.family or not GENERIC_ID_FAMILY.match(self.family):
                raise ValueError(f"a generic id needs a `family` matching {GENERIC_ID_FAMILY.pattern}")
            if not self.pattern:
                raise ValueError("a generic id needs a `pattern` (e.g. '^\\d{9}$' for an SSN)")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
            if self.also:
                raise ValueError("`also` lists alternative typed ids; a generic id has none")
        elif self.family or self.pattern:
            raise ValueError("`family` and `pattern` are for `type: generic` only")
        if IdType.generic in self.also or self.type in self.also:
            raise ValueError("`also` may list only other typed ids (pnc, cro, ni_number, nhs_number)")
        return self

    @property
    def token_column(self) -> str:
        return columns_for(self.type.value, self.family)[0]


class VictimIdentifiers(Strict):
    """One victim's identifier columns in a subject's row; each becomes a victim-mention row."""

    full_name: FullNameField | None = None
    forenames: ForenamesField | None = None
    surname: Field_ | None = None
    date_of_birth: DateField | None = None
    sex: SexField | None = None
    postcode: PostcodeField | None = None
    address: AddressField | None = None
    ids: list[IdField] = []

    @model_validator(mode="after")
    def _one_name_layout(self) -> VictimIdentifiers:
        if self.full_name and (self.forenames or self.surname):
            raise ValueError("give either full_name or forenames/surname, not both")
        return self

    def columns(self) -> dict[str, str]:
        """Source column -> identifier field name."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            spec = getattr(self, name)
            if name == "attributes":  # a victim's own attributes pass through; they are not identifiers
                continue
            if spec is None or spec == []:
                continue
            for item in spec if isinstance(spec, list) else [spec]:
                if isinstance(item, RecordIdField):
                    cols = item.parts
                else:
                    cols = item.columns if isinstance(item, ForenamesField | AddressField) else [item.column]
                for col in cols:
                    out[col] = name if name != "ids" else item.type.value
        return out


class RecordIdField(Strict):
    """The agency's record id: one column, or several that only together tell rows apart (a crime
    reference and a suspect number, where a crime with two suspects is two rows)."""

    column: str | None = None
    columns: list[str] | None = Field(
        None, min_length=2, description="Several columns, in order: their trimmed values together are the id."
    )

    @model_validator(mode="after")
    def _one_form(self) -> RecordIdField:
        if (self.column is None) == (self.columns is None):
            raise ValueError("give record_id either `column` or `columns`")
        if self.columns and len(set(self.columns)) != len(self.columns):
            raise ValueError("record_id names a column twice")
        return self

    @property
    def parts(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns or [])


class Identifiers(VictimIdentifiers):
    """Identifier columns. Each is standardised and turned into keyed tokens; none passes in the clear
    (sex, a small code set, is the one exception and is listed as an attribute in the output)."""

    record_id: RecordIdField | None = Field(
        None,
        description="The agency's own record id -> `record_key` (`column`, or `columns` when only several "
        "together are unique per row); without it the row number is used.",
    )
    case_reference: Field_ | None = None

    @model_validator(mode="after")
    def _ids_distinct(self) -> Identifiers:
        columns = [i.token_column for i in self.ids]
        dupes = sorted({c for c in columns if columns.count(c) > 1 and c.startswith(GENERIC_ID_PREFIX)})
        if dupes:
            raise ValueError(f"generic id families declared twice: {dupes}")
        return self


class _Attribute(Strict):
    column: str
    name: str | None = Field(None, description="Output column name; defaults to the source column name.")
    on_invalid: OnInvalid = OnInvalid.missing
    victim: bool = Field(False, description="Also passed on the victim-mention rows (e.g. victim sex).")

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


class Victim(VictimIdentifiers):
    """One victim named in a subject's row: identifier columns, and attributes of this victim alone.

    ``attributes`` are read from the victim's own columns (e.g. victim 2's ethnicity) and written only
    on this victim's mention row; a subject attribute with ``victim: true`` is copied to every mention.
    """

    attributes: list[Attribute] = []

    @field_validator("attributes")
    @classmethod
    def _own(cls, v: list) -> list:
        if any(a.victim for a in v):
            raise ValueError("`victim: true` is for the subject's attributes; a victim's own need none")
        return v


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
    victims: list[Victim] = Field(
        [],
        description="Victims named in the same row (victim 1, victim 2, ...): each present one becomes a "
        "victim-mention row of its own (role 'victim', mention_of = the subject's record_key).",
    )
    attributes: list[Attribute] = []
    age_band: AgeBand | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AgencyConfig:
        id_cols = self.identifier_columns()
        names: set[str] = set()
        for attr in self.attributes:
            if attr.column in id_cols:
                raise ValueError(
                    f"column {attr.column!r} is an identifier ({id_cols[attr.column]}) and cannot also "
                    "pass through as an attribute"
                )
            if attr.out_name in RESERVED_COLUMNS or attr.out_name.startswith(GENERIC_ID_PREFIX):
                raise ValueError(f"attribute name {attr.out_name!r} is reserved by the token spec")
            if attr.out_name in names:
                raise ValueError(f"attribute name {attr.out_name!r} is used twice")
            names.add(attr.out_name)
        self._check_victim_attributes(names, id_cols)
        if self.age_band:
            if self.identifiers.date_of_birth is None:
                raise ValueError("age_band needs identifiers.date_of_birth")
            dates = {a.out_name for a in self.attributes if a.type == "date"}
            if self.age_band.at not in dates:
                raise ValueError(f"age_band.at must name a date attribute, one of {sorted(dates)}")
            if self.age_band.name in names or self.age_band.name in RESERVED_COLUMNS:
                raise ValueError(f"age_band name {self.age_band.name!r} clashes with another column")
        return self

    def _check_victim_attributes(self, subject_names: set[str], id_cols: dict[str, str]) -> None:
        """A victim's attribute writes a column of its own or one the subject's rows share (same type):
        e.g. victim 1 and victim 2 both write `ethnicity`, which holds the suspect's on subject rows."""
        types = {a.out_name: a.type for a in self.attributes}
        for i, victim in enumerate(self.victims, start=1):
            seen: set[str] = set()
            for attr in victim.attributes:
                where = f"victims[{i}] attribute {attr.out_name!r}"
                if attr.column in id_cols:
                    raise ValueError(f"{where}: column {attr.column!r} is an identifier")
                if attr.out_name in RESERVED_COLUMNS or attr.out_name.startswith(GENERIC_ID_PREFIX):
                    raise ValueError(f"{where}: the name is reserved by the token spec")
                if attr.out_name in seen:
                    raise ValueError(f"{where}: used twice for one victim")
                seen.add(attr.out_name)
                known = types.setdefault(attr.out_name, attr.type)
                if known != attr.type:
                    raise ValueError(f"{where}: type {attr.type} differs from {known} elsewhere")
        if self.age_band and self.age_band.name in types.keys() - subject_names:
            raise ValueError(f"age_band name {self.age_band.name!r} clashes with a victim attribute")

    def victim_only_attributes(self) -> list[Attribute]:
        """Victims' attributes whose column the subject rows do not have (first declaration wins)."""
        out: dict[str, Attribute] = {}
        subject = {a.out_name for a in self.attributes}
        for victim in self.victims:
            for attr in victim.attributes:
                if attr.out_name not in subject:
                    out.setdefault(attr.out_name, attr)
        return list(out.values())

    def identifier_columns(self) -> dict[str, str]:
        """Source column -> identifier field name, the subject's and every victim's."""
        out = self.identifiers.columns()
        for i, victim in enumerate(self.victims, start=1):
            out |= {c: f"victim {i} {name}" for c, name in victim.columns().items() if c not in out}
        return out

    def source_columns(self) -> list[str]:
        """Every source column the config reads (identifiers first, then attributes)."""
        cols = list(self.identifier_columns())
        attrs = [*self.attributes, *(a for v in self.victims for a in v.attributes)]
        return cols + list(dict.fromkeys(a.column for a in attrs if a.column not in cols))
