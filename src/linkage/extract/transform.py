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
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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

CACHE_LIMIT = 100_000  # distinct values kept per field before the cache is reset (memory stays flat)
_DOB = "_dob"  # internal output: the parsed date of birth, used for the age band, never written
_JOIN = "\x1f"  # joins a multi-column field's raw values (unit separator: never in real data)


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

    def __post_init__(self) -> None:
        # converter dict -> tuple in output order, in C (a 1-output itemgetter returns a bare value)
        get = itemgetter(*self.outputs)
        self.pick = get if len(self.outputs) > 1 else lambda d: (get(d),)


@dataclass
class BatchResult:
    batch: pa.RecordBatch
    rejects: list[tuple[int, str, str]]  # (index in batch, column, reason)
    nulled: Counter  # field -> values blanked by on_invalid: missing


def output_schema(config: AgencyConfig) -> pa.Schema:
    """The pseudonymised extract's schema: the same token columns for every agency, then attributes."""
    arrow_types = {
        "date": pa.date32(),
        "code": pa.string(),
        "category": pa.string(),
        "integer": pa.int64(),
        "boolean": pa.bool_(),
    }
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
        self._types = {f.name: f.type for f in self.schema} | {_DOB: pa.date32()}
        self._missing_values = pa.array(sorted(self.missing), type=pa.string())
        self._record_key = self.tok.record_key_hasher(config.agency.name)

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

    def _convert(self, f: _Field, key: str) -> tuple | _Invalid | None:
        """Cached conversion of one distinct raw value; None means the value is missing."""
        cache = f.cache
        if key in cache:
            return cache[key]
        missing = self.missing
        if len(f.columns) == 1:
            present = [None if key.strip().upper() in missing else key]
        else:
            present = [None if r.strip().upper() in missing else r for r in key.split(_JOIN)]
        result: tuple | _Invalid | None = None
        if present.count(None) < len(present):
            try:
                result = f.pick(f.convert(*present))
            except InvalidValue as exc:
                result = _Invalid(str(exc))
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[key] = result
        return result

    def _source(self, f: _Field, columns: dict[str, pa.Array]) -> pa.Array:
        """The field's raw values as one string array (several columns joined by a separator)."""
        arrays = [columns[c] for c in f.columns]
        if len(arrays) == 1:
            return arrays[0]
        return pc.binary_join_element_wise(*arrays, _JOIN, null_handling="replace", null_replacement="")

    def transform(self, columns: dict[str, pa.Array], source_rows: list[int]) -> BatchResult:
        """Pseudonymise one batch.

        Each field is dictionary-encoded (in C), converted once per distinct value in Python, and
        expanded back to rows with ``take`` (in C): the Python cost grows with distinct values,
        not with rows. Only the record key, unique per row, is hashed row by row.
        """
        n = len(source_rows)
        arrays: dict[str, pa.Array] = {SOURCE_ROW: pa.array(source_rows, type=pa.int64())}
        rejects: list[tuple[int, str, str]] = []
        nulled: Counter = Counter()

        # record keys: unique per row, so hashed row by row; missing ids found in Arrow
        rid_column = self.config.identifiers.record_id.column
        rids = pc.utf8_trim_whitespace(columns[rid_column])
        absent = pc.fill_null(
            pc.or_(pc.equal(rids, ""), pc.is_in(pc.utf8_upper(rids), value_set=self._missing_values)), True
        )
        for i in pc.indices_nonzero(absent).to_pylist():
            rejects.append((i, rid_column, "record id is missing"))
        record_key = self._record_key
        keys = [
            0 if gone else record_key(rid)
            for rid, gone in zip(rids.to_pylist(), absent.to_pylist(), strict=True)
        ]
        arrays[RECORD_KEY] = pa.array(keys, type=pa.int64())

        for f in self.fields:
            encoded = self._source(f, columns).dictionary_encode()
            results = [self._convert(f, v) for v in encoded.dictionary.to_pylist()]
            absent = (None,) * len(f.outputs)
            rows_out = [r if type(r) is tuple else absent for r in results]
            per_output = list(zip(*rows_out, strict=True)) if rows_out else [()] * len(f.outputs)
            for name, values in zip(f.outputs, per_output, strict=True):
                arrays[name] = pc.take(pa.array(values, type=self._types[name]), encoded.indices)
            invalid = [type(r) is _Invalid for r in results]
            if not any(invalid):
                continue
            rows = pc.indices_nonzero(pc.fill_null(pc.take(pa.array(invalid), encoded.indices), False))
            if f.on_invalid is OnInvalid.reject:
                codes = encoded.indices
                column = ",".join(f.columns)
                rejects += [
                    (i, column, f"{f.name}: {results[codes[i].as_py()].reason}") for i in rows.to_pylist()
                ]
            else:
                nulled[f.name] += len(rows)

        if self.config.age_band:
            arrays[self.config.age_band.name] = self._age_bands(arrays[_DOB], arrays[self.config.age_band.at])
        batch = pa.RecordBatch.from_arrays(
            [
                arrays[name] if name in arrays else pa.nulls(n, self.schema.field(name).type)
                for name in self.schema.names
            ],
            schema=self.schema,
        )
        if rejects:
            rejected = {i for i, _, _ in rejects}
            batch = batch.filter(pa.array([i not in rejected for i in range(n)]))
        return BatchResult(batch, rejects, nulled)

    def _age_bands(self, dob: pa.Array, at: pa.Array) -> pa.Array:
        """Age in whole years at the event date, mapped to the configured band labels (NULL if unknown)."""
        spec = self.config.age_band
        birthday_passed = pc.greater_equal(
            pc.add(pc.multiply(pc.month(at), 100), pc.day(at)),
            pc.add(pc.multiply(pc.month(dob), 100), pc.day(dob)),
        )
        age = pc.subtract(
            pc.subtract(pc.year(at), pc.year(dob)), pc.cast(pc.invert(birthday_passed), pa.int64())
        )
        band = pa.array([0] * len(age), type=pa.int64())
        for edge in spec.bands:
            band = pc.add(band, pc.cast(pc.greater_equal(age, edge), pa.int64()))
        band = pc.if_else(pc.less(age, 0), pa.scalar(None, pa.int64()), band)
        return pc.take(pa.array(spec.labels()), band)
