"""Turn a batch of raw records into pseudonymised rows: tokens, validated attributes, rejects.

Runs in worker processes. Work is column by column with a bounded cache per field, because real
extracts repeat the same names, dates and postcodes many times: each distinct raw value is
standardised and hashed once per cache lifetime.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from linkage.config.agency import (
    AgencyConfig,
    BooleanAttribute,
    CategoryAttribute,
    CodeAttribute,
    DateAttribute,
    IntegerAttribute,
    OnInvalid,
)
from linkage.tokens.spec import RECORD_KEY, SEX, SOURCE_ROW, TOKEN_COLUMN_NAMES, Purpose
from linkage.tokens.standardise import (
    InvalidValue,
    check_birth_date,
    forename_parts,
    parse_date,
    split_full_name,
    standardise_pnc,
    standardise_postcode,
    standardise_reference,
    surname_parts,
)
from linkage.tokens.tokenise import Tokeniser

CACHE_LIMIT = 250_000  # distinct values kept per field before the cache is reset (memory stays flat)
_DOB = "_dob"  # internal output: the parsed date of birth, used for the age band, never written


@dataclass(frozen=True)
class _Invalid:
    reason: str


@dataclass
class _Field:
    """One identifier or attribute: source column(s), a converter, and the outputs it produces."""

    name: str
    columns: list[str]
    outputs: list[str]
    convert: Callable[..., dict[str, Any]]
    on_invalid: OnInvalid
    cache: dict = field(default_factory=dict)


@dataclass
class BatchResult:
    batch: pa.RecordBatch
    rejects: list[tuple[int, str, str]]  # (index in batch, column, reason)
    nulled: Counter  # field -> values blanked by on_invalid: missing


def output_schema(config: AgencyConfig) -> pa.Schema:
    """The pseudonymised extract's schema: the same token columns for every agency, then attributes."""
    arrow_types = {"date": pa.date32(), "code": pa.string(), "category": pa.string(),
                   "integer": pa.int64(), "boolean": pa.bool_()}  # fmt: skip
    fields = [
        pa.field(RECORD_KEY, pa.int64(), nullable=False),
        pa.field(SOURCE_ROW, pa.int64(), nullable=False),
    ]
    fields += [pa.field(name, pa.int64()) for name in TOKEN_COLUMN_NAMES]
    fields.append(pa.field(SEX, pa.string()))
    fields += [pa.field(a.out_name, arrow_types[a.type]) for a in config.attributes]
    if config.age_band:
        fields.append(pa.field(config.age_band.name, pa.string()))
    return pa.schema(fields)


class BatchTransformer:
    """Applies one agency config to batches of raw records."""

    def __init__(self, config: AgencyConfig, subkeys: dict[Purpose, bytes]) -> None:
        self.config = config
        self.tok = Tokeniser(subkeys)
        self.schema = output_schema(config)
        self.missing = frozenset(v.strip().upper() for v in config.missing_values)
        self.fields = self._identifier_fields() + [self._attribute_field(a) for a in config.attributes]

    # --- building the per-field converters ---------------------------------------------------------

    def _identifier_fields(self) -> list[_Field]:
        ids, tok = self.config.identifiers, self.tok
        fields: list[_Field] = []
        fn_cols = ["fn1", "fn2", "fn1_canon", "fn1_phon", "fn1_pre3"]
        sn_cols = ["sn", "sn_phon", "sn_pre3", "sn_p1", "sn_p2"]
        if ids.case_reference:

            def case_ref(raw: str) -> dict:
                ref = standardise_reference(raw)
                return {"case_ref": tok.case_ref_token(ref) if ref else None}

            fields.append(
                _Field(
                    "case_reference",
                    [ids.case_reference.column],
                    ["case_ref"],
                    case_ref,
                    ids.case_reference.on_invalid,
                )
            )
        if ids.full_name:
            layout = ids.full_name.layout.value

            def full_name(raw: str) -> dict:
                forenames, surname = split_full_name(raw, layout)
                return tok.forename_tokens(forename_parts([forenames])) | tok.surname_tokens(
                    surname_parts(surname)
                )

            fields.append(
                _Field(
                    "full_name",
                    [ids.full_name.column],
                    fn_cols + sn_cols,
                    full_name,
                    ids.full_name.on_invalid,
                )
            )
        if ids.forenames:
            fields.append(
                _Field(
                    "forenames",
                    ids.forenames.columns,
                    fn_cols,
                    lambda *raws: tok.forename_tokens(forename_parts(list(raws))),
                    ids.forenames.on_invalid,
                )
            )
        if ids.surname:
            fields.append(
                _Field(
                    "surname",
                    [ids.surname.column],
                    sn_cols,
                    lambda raw: tok.surname_tokens(surname_parts(raw)),
                    ids.surname.on_invalid,
                )
            )
        if ids.date_of_birth:
            formats = ids.date_of_birth.formats

            def dob(raw: str) -> dict:
                d = check_birth_date(parse_date(raw, formats))
                return tok.dob_tokens(d) | {_DOB: d}

            fields.append(
                _Field(
                    "date_of_birth",
                    [ids.date_of_birth.column],
                    ["dob", "dob_swap", "dob_ym", "dob_yd", "dob_md", _DOB],
                    dob,
                    ids.date_of_birth.on_invalid,
                )
            )
        if ids.sex:
            sex_map = {k.strip().upper(): v for k, v in ids.sex.map.items()}

            def sex(raw: str) -> dict:
                key = raw.strip().upper()
                if key not in sex_map:
                    raise InvalidValue("value is not in the sex map")
                return {SEX: sex_map[key]}

            fields.append(_Field("sex", [ids.sex.column], [SEX], sex, ids.sex.on_invalid))
        if ids.postcode:
            fields.append(
                _Field(
                    "postcode",
                    [ids.postcode.column],
                    ["pc", "pc_sector", "pc_district"],
                    lambda raw: tok.postcode_tokens(*standardise_postcode(raw)),
                    ids.postcode.on_invalid,
                )
            )
        if ids.pnc:
            fields.append(
                _Field(
                    "pnc",
                    [ids.pnc.column],
                    ["pnc"],
                    lambda raw: {"pnc": tok.pnc_token(standardise_pnc(raw))},
                    ids.pnc.on_invalid,
                )
            )
        return fields

    def _attribute_field(self, attr) -> _Field:
        out = attr.out_name
        if isinstance(attr, DateAttribute):

            def convert(raw: str) -> dict:
                return {out: parse_date(raw, attr.formats)}
        elif isinstance(attr, CodeAttribute):
            pattern = re.compile(attr.pattern)

            def convert(raw: str) -> dict:
                code = raw.strip().upper()
                if not pattern.match(code):
                    raise InvalidValue("code does not match the configured pattern")
                return {out: code}
        elif isinstance(attr, CategoryAttribute):
            lookup: dict[str, str | None] = {v.upper(): v for v in attr.values or []}
            lookup |= {k.strip().upper(): v for k, v in (attr.map or {}).items()}

            def convert(raw: str) -> dict:
                key = raw.strip().upper()
                if key not in lookup:
                    raise InvalidValue("value is not one of the configured categories")
                return {out: lookup[key]}
        elif isinstance(attr, IntegerAttribute):

            def convert(raw: str) -> dict:
                try:
                    value = int(raw.strip())
                except ValueError:
                    raise InvalidValue("not an integer") from None
                if (attr.min is not None and value < attr.min) or (attr.max is not None and value > attr.max):
                    raise InvalidValue(f"integer outside {attr.min}..{attr.max}")
                return {out: value}
        elif isinstance(attr, BooleanAttribute):
            truth = {v.upper(): True for v in attr.true_values} | {
                v.upper(): False for v in attr.false_values
            }

            def convert(raw: str) -> dict:
                key = raw.strip().upper()
                if key not in truth:
                    raise InvalidValue("not one of the configured true/false values")
                return {out: truth[key]}
        else:  # pragma: no cover - the discriminated union admits no other type
            raise TypeError(attr)
        return _Field(attr.column, [attr.column], [out], convert, attr.on_invalid)

    # --- applying them -----------------------------------------------------------------------------

    def _convert(self, f: _Field, raws: tuple) -> dict | _Invalid | None:
        """Cached conversion; None means every source value is missing."""
        key = raws if len(raws) > 1 else raws[0]
        hit = f.cache.get(key)
        if hit is not None or key in f.cache:
            return hit
        present = [r if r is not None and r.strip().upper() not in self.missing else None for r in raws]
        if all(r is None for r in present):
            result = None
        else:
            try:
                result = f.convert(*present)
            except InvalidValue as exc:
                result = _Invalid(str(exc))
        if len(f.cache) >= CACHE_LIMIT:
            f.cache.clear()
        f.cache[key] = result
        return result

    def transform(self, columns: dict[str, list[str | None]], source_rows: list[int]) -> BatchResult:
        n = len(source_rows)
        out: dict[str, list] = {name: [None] * n for name in self.schema.names}
        out[SOURCE_ROW] = source_rows
        out[_DOB] = [None] * n
        rejects: list[tuple[int, str, str]] = []
        rejected = [False] * n
        nulled: Counter = Counter()

        record_ids = columns[self.config.identifiers.record_id.column]
        agency = self.config.agency.name
        keys = out[RECORD_KEY]
        for i, raw in enumerate(record_ids):
            rid = raw.strip() if raw is not None else ""
            if not rid or rid.upper() in self.missing:
                rejects.append((i, self.config.identifiers.record_id.column, "record id is missing"))
                rejected[i] = True
                keys[i] = 0
            else:
                keys[i] = self.tok.record_key(agency, rid)

        for f in self.fields:
            sources = [columns[c] for c in f.columns]
            targets = [out[o] for o in f.outputs]
            for i, raws in enumerate(zip(*sources, strict=True)):
                result = self._convert(f, raws)
                if result is None:
                    continue
                if isinstance(result, _Invalid):
                    if f.on_invalid is OnInvalid.reject:
                        rejects.append((i, ",".join(f.columns), f"{f.name}: {result.reason}"))
                        rejected[i] = True
                    else:
                        nulled[f.name] += 1
                    continue
                for name, target in zip(f.outputs, targets, strict=True):
                    target[i] = result[name]

        if self.config.age_band:
            out[self.config.age_band.name] = self._age_bands(out[_DOB], out[self.config.age_band.at])
        arrays = [pa.array(out[name], type=self.schema.field(name).type) for name in self.schema.names]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if any(rejected):
            batch = batch.filter(pa.array([not r for r in rejected]))
        return BatchResult(batch, rejects, nulled)

    def _age_bands(self, dobs: list[date | None], at: list[date | None]) -> list[str | None]:
        spec = self.config.age_band
        labels, edges = spec.labels(), spec.bands
        bands: list[str | None] = []
        for born, when in zip(dobs, at, strict=True):
            if born is None or when is None or when < born:
                bands.append(None)
                continue
            age = when.year - born.year - ((when.month, when.day) < (born.month, born.day))
            bands.append(labels[sum(age >= e for e in edges)])
        return bands
