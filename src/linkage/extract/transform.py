"""Turn a batch of raw records into pseudonymised rows: tokens, validated attributes, rejects.

Runs in worker processes. Work is column by column with a bounded cache per field, because real
extracts repeat the same names, dates and postcodes many times: each distinct raw value is
standardised and hashed once per cache lifetime. Hashing is batched: the values a batch adds to a
cache are hashed one token column at a time in C (``Tokeniser.column_tokens``). Values unique to
every row (record ids, case references) skip the cache and are handled whole-column in Arrow.
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
    ASCII_WHITESPACE,
    InvalidValue,
    check_birth_date,
    forename_parts,
    is_ascii,
    parse_date,
    pncs_ascii,
    references_ascii,
    split_full_name,
    standardise_pnc,
    standardise_postcode,
    standardise_reference,
    surname_parts,
)
from linkage.tokens.tokenise import (
    Tokeniser,
    dob_plaintexts,
    forename_plaintexts,
    postcode_plaintexts,
    surname_plaintexts,
)

CACHE_LIMIT = 100_000  # distinct values kept per field before the cache is reset (memory stays flat)
_DOB = "_dob"  # internal output: the parsed date of birth, used for the age band, never written
_JOIN = "\x1f"  # joins a multi-column field's raw values (unit separator: never in real data)
_ABSENT = object()  # the cached result of a missing value (a cache lookup returning None: not cached)


@dataclass(frozen=True)
class _Invalid:
    reason: str


@dataclass
class _Field:
    """One identifier or attribute: source column(s), a converter, and the outputs it produces.

    The converter returns a dict output -> value; for token outputs the value is the standardised
    plaintext, hashed afterwards in a batch. The cache holds final results (tokens, not plaintexts).
    """

    name: str
    columns: list[str]
    outputs: list[str]
    convert: Callable[..., dict[str, Any]]
    on_invalid: OnInvalid
    cache: dict = field(default_factory=dict)
    # whole-column form of convert + hash for a one-token field: (tokens, invalid reasons or None), or
    # None when the column needs the per-value path (text that is not ASCII)
    whole_column: Callable[[pa.Array], tuple[pa.Array, pa.Array | None] | None] | None = None

    def __post_init__(self) -> None:
        # converter dict -> tuple in output order, in C (a 1-output itemgetter returns a bare value)
        get = itemgetter(*self.outputs)
        self.pick = get if len(self.outputs) > 1 else lambda d: (get(d),)
        self.token_outputs = [(i, name) for i, name in enumerate(self.outputs) if name in TOKEN_COLUMN_NAMES]


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

    # --- building the per-field converters ---------------------------------------------------------

    def _identifier_fields(self) -> list[_Field]:
        ids = self.config.identifiers
        fields: list[_Field] = []
        fn_cols = ["fn1", "fn2", "fn1_canon", "fn1_phon", "fn1_pre3"]
        sn_cols = ["sn", "sn_phon", "sn_pre3", "sn_p1", "sn_p2"]
        if ids.case_reference:

            def case_ref(raw: str) -> dict:
                return {"case_ref": standardise_reference(raw)}

            fields.append(
                _Field(
                    "case_reference",
                    [ids.case_reference.column],
                    ["case_ref"],
                    case_ref,
                    ids.case_reference.on_invalid,
                    whole_column=self._case_refs,
                )
            )
        if ids.full_name:
            layout = ids.full_name.layout.value

            def full_name(raw: str) -> dict:
                forenames, surname = split_full_name(raw, layout)
                return forename_plaintexts(forename_parts([forenames])) | surname_plaintexts(
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
                    lambda *raws: forename_plaintexts(forename_parts(list(raws))),
                    ids.forenames.on_invalid,
                )
            )
        if ids.surname:
            fields.append(
                _Field(
                    "surname",
                    [ids.surname.column],
                    sn_cols,
                    lambda raw: surname_plaintexts(surname_parts(raw)),
                    ids.surname.on_invalid,
                )
            )
        if ids.date_of_birth:
            formats = ids.date_of_birth.formats

            def dob(raw: str) -> dict:
                d = check_birth_date(parse_date(raw, formats))
                return dob_plaintexts(d) | {_DOB: d}

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
                    lambda raw: postcode_plaintexts(*standardise_postcode(raw)),
                    ids.postcode.on_invalid,
                )
            )
        if ids.pnc:
            fields.append(
                _Field(
                    "pnc",
                    [ids.pnc.column],
                    ["pnc"],
                    lambda raw: {"pnc": standardise_pnc(raw)},
                    ids.pnc.on_invalid,
                    whole_column=self._pncs,
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

    def _standardise(self, f: _Field, key: str) -> list | _Invalid | object:
        """One distinct raw value's outputs (token outputs still plaintext), or _ABSENT if missing."""
        missing = self.missing
        if len(f.columns) == 1:
            present = [None if key.strip().upper() in missing else key]
        else:
            present = [None if r.strip().upper() in missing else r for r in key.split(_JOIN)]
        if present.count(None) == len(present):
            return _ABSENT
        try:
            return list(f.pick(f.convert(*present)))
        except InvalidValue as exc:
            return _Invalid(str(exc))

    def _results(self, f: _Field, keys: list[str]) -> list[tuple | _Invalid | object]:
        """Results for distinct raw values: from the cache, the rest converted and hashed in a batch."""
        cache = f.cache
        results = list(map(cache.get, keys))
        new = [i for i, r in enumerate(results) if r is None]
        if not new:
            return results
        converted = [self._standardise(f, keys[i]) for i in new]
        valid = [r for r in converted if type(r) is list]
        for pos, column in f.token_outputs:
            hashed = self.tok.column_tokens(column, [r[pos] for r in valid]).to_pylist()
            for r, token in zip(valid, hashed, strict=True):
                r[pos] = token
        if len(cache) + len(new) > CACHE_LIMIT:
            cache.clear()
        for i, value in zip(new, converted, strict=True):
            results[i] = cache[keys[i]] = tuple(value) if type(value) is list else value
        return results

    def _source(self, f: _Field, columns: dict[str, pa.Array]) -> pa.Array:
        """The field's raw values as one string array (several columns joined by a separator)."""
        arrays = [columns[c] for c in f.columns]
        if len(arrays) == 1:
            return arrays[0]
        return pc.binary_join_element_wise(*arrays, _JOIN, null_handling="replace", null_replacement="")

    def _missing_ascii(self, values: pa.Array) -> pa.Array:
        """The per-value missing rule (``_standardise``) for ASCII text: True where NULL or missing."""
        trimmed = pc.ascii_upper(pc.ascii_trim(values, ASCII_WHITESPACE))
        return pc.fill_null(pc.is_in(trimmed, value_set=self._missing_values), True)

    def _case_refs(self, values: pa.Array) -> tuple[pa.Array, None] | None:
        """case_ref tokens of a whole ASCII column (case references are unique per row)."""
        if not is_ascii(values):
            return None
        standard = pc.if_else(self._missing_ascii(values), None, references_ascii(values))
        return self.tok.column_tokens("case_ref", standard), None

    def _pncs(self, values: pa.Array) -> tuple[pa.Array, pa.Array] | None:
        """pnc tokens and invalid reasons of a whole ASCII column (PNC ids are unique per person)."""
        if not is_ascii(values):
            return None
        standard, reason = pncs_ascii(values)
        missing = self._missing_ascii(values)
        standard = pc.if_else(missing, None, standard)
        return self.tok.column_tokens("pnc", standard), pc.if_else(missing, None, reason)

    def transform(self, columns: dict[str, pa.Array], source_rows: list[int]) -> BatchResult:
        """Pseudonymise one batch.

        Each field is dictionary-encoded (in C), converted once per distinct value not yet cached
        in Python, hashed in batches (in C) and expanded back to rows with ``take`` (in C): the
        Python cost grows with distinct values, not with rows. Record keys and case references,
        unique per row, are computed whole-column.
        """
        n = len(source_rows)
        arrays: dict[str, pa.Array] = {SOURCE_ROW: pa.array(source_rows, type=pa.int64())}
        rejects: list[tuple[int, str, str]] = []
        nulled: Counter = Counter()

        # record keys: the trimmed record id, hashed whole-column; missing ids are rejects
        rid_column = self.config.identifiers.record_id.column
        rids = pc.utf8_trim_whitespace(columns[rid_column])
        absent = pc.fill_null(
            pc.or_(pc.equal(rids, ""), pc.is_in(pc.utf8_upper(rids), value_set=self._missing_values)), True
        )
        for i in pc.indices_nonzero(absent).to_pylist():
            rejects.append((i, rid_column, "record id is missing"))
        keys = self.tok.record_keys(self.config.agency.name, rids)
        arrays[RECORD_KEY] = pc.if_else(absent, 0, keys)

        for f in self.fields:
            source = self._source(f, columns)
            whole = f.whole_column(source) if f.whole_column is not None else None
            if whole is not None:
                (name,), (tokens, reasons) = f.outputs, whole
                arrays[name] = tokens
                if reasons is None or reasons.null_count == len(reasons):
                    continue
                invalid = pc.is_valid(reasons)
                if f.on_invalid is OnInvalid.reject:
                    column = ",".join(f.columns)
                    rows, why = pc.indices_nonzero(invalid).to_pylist(), reasons.drop_null().to_pylist()
                    rejects += [(i, column, f"{f.name}: {r}") for i, r in zip(rows, why, strict=True)]
                else:
                    arrays[name] = pc.if_else(invalid, None, tokens)
                    nulled[f.name] += len(reasons) - reasons.null_count
                continue
            encoded = source.dictionary_encode()
            results = self._results(f, encoded.dictionary.to_pylist())
            absent_row = (None,) * len(f.outputs)
            rows_out = [r if type(r) is tuple else absent_row for r in results]
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
        assert spec is not None  # called only when the config has an age band
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
