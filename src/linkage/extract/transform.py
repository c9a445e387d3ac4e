"""Turn a batch of raw records into pseudonymised rows: tokens, markers, validated attributes, rejects.

Runs in worker processes. Work is column by column with a bounded cache per field, because real
extracts repeat the same names, dates and postcodes many times: each distinct raw value is
standardised and hashed once per cache lifetime. Hashing is batched: the values a batch adds to a
cache are hashed one token column at a time in C (``Tokeniser.column_tokens``). Values unique to
every row (record ids, case references, PNC ids) skip the cache and are handled whole-column in Arrow.

Never lose a person: a value that cannot be used is blanked (``on_invalid: missing``, the default)
and an id failing only its check is kept as an unverified token; both are counted per field and
reason and listed as field problems. A row is rejected only when a strict field (``on_invalid:
reject``) fails or no usable identifier is left.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.config.agency import (
    AgencyConfig,
    BooleanAttribute,
    CategoryAttribute,
    CodeAttribute,
    DateAttribute,
    IdField,
    IdType,
    IntegerAttribute,
    OnInvalid,
    VictimIdentifiers,
)
from linkage.tokens.spec import (
    MENTION_OF,
    NATIONAL_ID_TYPES,
    RECORD_KEY,
    ROLE,
    SEX,
    SOURCE_ROW,
    TOKEN_COLUMN_NAMES,
    VICTIM_INDEX,
    WEAK_MARKERS,
    Purpose,
    columns_for,
    is_token_column,
)
from linkage.tokens.standardise import (
    ASCII_WHITESPACE,
    NATIONAL_ID_PARSERS,
    InvalidValue,
    compiled,
    forename_parts,
    is_ascii,
    is_placeholder,
    name_parts,
    parse_date,
    pncs_ascii,
    read_birth_date,
    references_ascii,
    split_address_line,
    split_full_name_layouts,
    standardise_generic_id,
    standardise_generic_postcode,
    standardise_house_number,
    standardise_postcode,
    standardise_reference,
    standardise_street,
    standardise_town,
    surname_parts,
    text_notes,
)
from linkage.tokens.tokenise import (
    Tokeniser,
    address_plaintexts,
    dob_plaintexts,
    forename_plaintexts,
    generic_postcode_plaintexts,
    postcode_plaintexts,
    surname_plaintexts,
)

CACHE_LIMIT = 100_000  # distinct values kept per field before the cache is reset (memory stays flat)
_DOB = "_dob"  # internal output: the parsed date of birth, used for the age band, never written
_NOTES = "_notes"  # internal output: what standardisation noted about a value (counted, never written)
_JOIN = "\x1f"  # joins a multi-column field's raw values (unit separator: never in real data)
_ABSENT = object()  # the cached result of a missing value (a cache lookup returning None: not cached)
_NEEDS_LOOK = ("absent or invalid",)  # notes cell of a value that is not a tuple of outputs
UNVERIFIED = "unverified: check character wrong"
NO_USABLE_IDENTIFIER = (
    "no usable identifier left (needs two of surname, forename, date of birth, or a valid id)"
)
ROW_NUMBER_PREFIX = "row:"  # record ids made from row numbers when the config names no record id column
RECORD_ID_SEPARATOR = "\x1f"  # joins the values of a record id of several columns (docs/token-spec.md)

# What happened to a value, as written in the rejects file's `action` column.
ACTION_REJECTED = "row rejected"
ACTION_BLANKED = "value blanked"
ACTION_UNVERIFIED = "value kept unverified"
ACTION_SWAPPED = "value kept as swapped date"
_SWAPPED = "valid only with day and month swapped"
_PLACEHOLDER = "placeholder date"


@dataclass(frozen=True)
class _Invalid:
    reason: str


@dataclass
class _Field:
    """One identifier or attribute: source column(s), a converter, and the outputs it produces.

    The converter returns a dict output -> value; for token outputs the value is the standardised
    plaintext, hashed afterwards in a batch. The cache holds final results (tokens, not plaintexts)
    with the value's notes last.
    """

    name: str
    columns: list[str]
    outputs: list[str]
    convert: Callable[..., dict[str, Any]]
    on_invalid: OnInvalid
    postcode_country: str = "uk"
    cache: dict = field(default_factory=dict)
    # whole-column form for an id unique to (nearly) every row: see BatchTransformer._pncs
    whole_column: Callable[[pa.Array], tuple[dict[str, pa.Array], pa.Array] | None] | None = None

    def __post_init__(self) -> None:
        # converter dict -> tuple in output order, in C (a 1-output itemgetter returns a bare value)
        get = itemgetter(*self.outputs)
        self.pick = get if len(self.outputs) > 1 else lambda d: (get(d),)
        self.token_outputs = [(i, name) for i, name in enumerate(self.outputs) if is_token_column(name)]


@dataclass
class FieldCounts:
    """Per field: values present, blanked and unverified (by reason), and notes (layouts, scripts...)."""

    present: Counter = field(default_factory=Counter)  # field -> non-missing source values
    blanked: Counter = field(default_factory=Counter)  # (field, reason) -> values
    unverified: Counter = field(default_factory=Counter)  # (field, reason) -> values
    notes: Counter = field(default_factory=Counter)  # (field, note) -> values

    def update(self, other: FieldCounts) -> None:
        for mine, theirs in zip(self.parts(), other.parts(), strict=True):
            mine.update(theirs)

    def parts(self) -> tuple[Counter, Counter, Counter, Counter]:
        return self.present, self.blanked, self.unverified, self.notes


@dataclass
class BatchResult:
    batch: pa.RecordBatch  # subject rows (filtered), then victim-mention rows
    rejects: list[tuple[int, str, str]]  # (index in batch, column, reason): the row is rejected
    problems: list[tuple[int, str, str, str]]  # (index in batch, column, reason, action): row kept
    counts: FieldCounts
    victim_rows: int = 0


def output_schema(config: AgencyConfig) -> pa.Schema:
    """The extract's schema: keys, every fixed token column, markers, generic ids, role, attributes."""
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
    fields += [pa.field(name, pa.int64()) for name in generic_id_columns(config)]
    fields += [pa.field(name, pa.bool_()) for name in WEAK_MARKERS]
    fields += [pa.field(SEX, pa.string()), pa.field(ROLE, pa.string()), pa.field(MENTION_OF, pa.int64())]
    fields.append(pa.field(VICTIM_INDEX, pa.int8()))
    attributes = [*config.attributes, *config.victim_only_attributes()]
    fields += [pa.field(a.out_name, arrow_types[a.type]) for a in attributes]
    if config.age_band:
        fields.append(pa.field(config.age_band.name, pa.string()))
    return pa.schema(fields)


def generic_id_columns(config: AgencyConfig) -> dict[str, str]:
    """Generic id column -> family, for every family the subject or a victim declares."""
    ids = [i for v in [config.identifiers, *config.victims] for i in v.ids if i.type is IdType.generic]
    return {i.token_column: i.family for i in ids if i.family}


def _weak_marker(token_column: str) -> str:
    return f"{token_column}_weak"


_TYPED_ID_COLUMNS = frozenset(NATIONAL_ID_TYPES.values())
_TYPED_ID_MARKERS = frozenset(map(_weak_marker, _TYPED_ID_COLUMNS))


class _Identity:
    """The converters of one person's identifier columns (the subject's, or one victim's)."""

    def __init__(self, transformer: BatchTransformer, ids: VictimIdentifiers, prefix: str) -> None:
        self.fields: list[_Field] = []
        self.t = transformer
        self.prefix = prefix  # "" for the subject, "victim 1 " for victim 1 (field names in the manifest)
        self._names(ids)
        if ids.date_of_birth:
            self._date_of_birth(ids.date_of_birth)
        if ids.sex:
            self._sex(ids.sex)
        if ids.postcode:
            self._postcode(ids.postcode)
        if ids.address:
            self._address(ids.address)
        for spec in ids.ids:
            self._national_id(spec)
        # the usable-identifier rule applies only if the config gives the means to satisfy it
        parts = 2 * bool(ids.full_name) + bool(ids.surname) + bool(ids.forenames) + bool(ids.date_of_birth)
        self.can_be_usable = bool(ids.ids) or parts >= 2

    def _add(self, name: str, columns: list[str], outputs: list[str], convert, on_invalid, **kw) -> _Field:
        f = _Field(self.prefix + name, columns, outputs, convert, on_invalid, **kw)
        self.fields.append(f)
        return f

    def _names(self, ids: VictimIdentifiers) -> None:
        if ids.full_name:
            layouts = [layout.value for layout in ids.full_name.layouts]

            def full_name(raw: str) -> dict:
                forenames, surname, layout = split_full_name_layouts(raw, layouts)
                plain: dict[str, Any] = forename_plaintexts(forename_parts([forenames])) | surname_plaintexts(
                    surname_parts(surname)
                )
                plain[_NOTES] = (f"layout {layout}", *text_notes(raw))
                return plain

            self._add(
                "full_name",
                [ids.full_name.column],
                list(columns_for("full_name")),
                full_name,
                ids.full_name.on_invalid,
            )
        if ids.forenames:

            def forenames(*raws: str | None) -> dict:
                joined = " ".join(filter(None, raws))
                plain: dict[str, Any] = forename_plaintexts(name_parts(joined, drop_titles=True))
                if not joined.isascii():
                    plain[_NOTES] = text_notes(joined)
                return plain

            outputs = list(columns_for("forenames"))
            self._add("forenames", ids.forenames.columns, outputs, forenames, ids.forenames.on_invalid)
        if ids.surname:

            def surname(raw: str) -> dict:
                plain: dict[str, Any] = surname_plaintexts(surname_parts(raw))
                if not raw.isascii():
                    plain[_NOTES] = text_notes(raw)
                return plain

            outputs = list(columns_for("surname"))
            self._add("surname", [ids.surname.column], outputs, surname, ids.surname.on_invalid)

    def _date_of_birth(self, spec) -> None:
        formats, placeholders = spec.formats, spec.placeholders

        def dob(raw: str) -> dict:
            d, swapped = read_birth_date(raw, formats)
            if swapped:
                return {
                    **dob_plaintexts(d, swapped_only=True),
                    "dob_weak": True,
                    _DOB: d,
                    _NOTES: (_SWAPPED,),
                }
            placeholder = is_placeholder(d, placeholders)
            plain: dict[str, Any] = {**dob_plaintexts(d), "dob_weak": placeholder, _DOB: d}
            if placeholder:
                plain[_NOTES] = (_PLACEHOLDER,)
            return plain

        outputs = [*columns_for("date_of_birth"), _DOB]
        self._add("date_of_birth", [spec.column], outputs, dob, spec.on_invalid)

    def _sex(self, spec) -> None:
        sex_map = {k.strip().upper(): v for k, v in spec.map.items()}

        def sex(raw: str) -> dict:
            key = raw.strip().upper()
            if key not in sex_map:
                raise InvalidValue("value is not in the sex map")
            return {SEX: sex_map[key]}

        self._add("sex", [spec.column], [SEX], sex, spec.on_invalid)

    def _postcode(self, spec) -> None:
        if spec.country == "uk":

            def postcode(raw: str) -> dict:
                return postcode_plaintexts(*standardise_postcode(raw))
        else:

            def postcode(raw: str) -> dict:
                return generic_postcode_plaintexts(*standardise_generic_postcode(raw))

        outputs = list(columns_for("postcode"))
        self._add(
            "postcode", [spec.column], outputs, postcode, spec.on_invalid, postcode_country=spec.country
        )

    def _address(self, spec) -> None:
        parts = [
            ("line", spec.line),
            ("house_number", spec.house_number),
            ("street", spec.street),
            ("town", spec.town),
        ]
        present = [name for name, column in parts if column]

        def address(*raws: str | None) -> dict:
            raw = dict(zip(present, raws, strict=True))
            line, number, street_raw, town_raw = (
                raw.get(k) for k in ("line", "house_number", "street", "town")
            )
            if line:
                house, street = split_address_line(line)
            else:
                house = _house_number(number) if number else None
                street = standardise_street(street_raw) if street_raw else None
            town = standardise_town(town_raw) if town_raw else None
            notes = tuple(n for r in raws if r for n in text_notes(r))
            if raw.get("house_number") and house is None:
                notes += ("house number unreadable (street and town kept)",)
            plain: dict[str, Any] = address_plaintexts(house, street, town)
            plain[_NOTES] = notes
            return plain

        self._add("address", spec.columns, list(columns_for("address")), address, spec.on_invalid)

    def _national_id(self, spec: IdField) -> None:
        if spec.type is IdType.generic:
            pattern, normalise, column = compiled(spec.pattern), spec.normalise, spec.token_column

            def generic(raw: str) -> dict:
                return {column: standardise_generic_id(raw, pattern, normalise)}

            self._add(column, [spec.column], [column], generic, spec.on_invalid)
            return
        types = [spec.type.value, *(t.value for t in spec.also)]
        outputs = [c for t in types for c in columns_for(t)]
        convert = _typed_id_converter(types)
        f = self._add(spec.type.value, [spec.column], outputs, convert, spec.on_invalid)
        if spec.type is IdType.pnc:
            f.whole_column = lambda values: self.t._pncs(values, f)


def _house_number(raw: str) -> str | None:
    """A house number, or None when unreadable: the street and town of the address are still kept."""
    try:
        return standardise_house_number(raw)
    except InvalidValue:
        return None


def _typed_id_converter(types: list[str]) -> Callable[[str], dict]:
    """Declared type first, then each `also` type; verified beats unverified, declared beats `also`."""
    empty = {c: None for t in types for c in columns_for(t)}

    def convert(raw: str) -> dict:
        parsed: list[tuple[str, Any]] = []
        for t in types:
            try:
                parsed.append((t, NATIONAL_ID_PARSERS[t](raw)))
            except InvalidValue:
                continue
        if not parsed:
            raise InvalidValue(f"not a valid {' or '.join(types)}")
        t, value = next(((t, v) for t, v in parsed if v.verified), parsed[0])
        column = NATIONAL_ID_TYPES[t]
        notes: tuple[str, ...] = () if t == types[0] else (f"read as {t}",)
        if not value.verified:
            notes += (UNVERIFIED,)
        return empty | {column: value.canonical, _weak_marker(column): not value.verified, _NOTES: notes}

    return convert


class BatchTransformer:
    """Applies one agency config to batches of raw records."""

    def __init__(self, config: AgencyConfig, subkeys: dict[Purpose, bytes]) -> None:
        self.config = config
        self.tok = Tokeniser(subkeys)
        self.schema = output_schema(config)
        self.missing = frozenset(v.strip().upper() for v in config.missing_values)
        self._missing_values = pa.array(sorted(self.missing), type=pa.string())
        self.subject = _Identity(self, config.identifiers, "")
        self.victims = [_Identity(self, v, f"victim {i} ") for i, v in enumerate(config.victims, start=1)]
        for identity, victim in zip(self.victims, config.victims, strict=True):
            identity.fields += [self._attribute_field(a, identity.prefix) for a in victim.attributes]
        self.other_fields = [self._attribute_field(a) for a in config.attributes]
        if config.identifiers.case_reference:
            spec = config.identifiers.case_reference
            self.other_fields.insert(
                0,
                _Field(
                    "case_reference",
                    [spec.column],
                    ["case_ref"],
                    lambda raw: {"case_ref": standardise_reference(raw)},
                    spec.on_invalid,
                    whole_column=self._case_refs,
                ),
            )
        self._types = {f.name: f.type for f in self.schema} | {_DOB: pa.date32()}
        self.row_numbers = config.identifiers.record_id is None

    def _attribute_field(self, attr, prefix: str = "") -> _Field:
        """The converter of one attribute (``prefix`` names a victim's own, e.g. 'victim 2 ')."""
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
        return _Field(prefix + attr.column, [attr.column], [out], convert, attr.on_invalid)

    # --- one field over a batch ---------------------------------------------------------------------

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
            converted = f.convert(*present)
        except InvalidValue as exc:
            return _Invalid(str(exc))
        out = list(f.pick(converted))
        out.append(converted.get(_NOTES, ()))  # the notes, last (most values have none)
        return out

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
            plain = [r[pos] for r in valid]
            hashed = self.tok.column_tokens(column, plain, postcode_country=f.postcode_country).to_pylist()
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

    def _case_refs(self, values: pa.Array) -> tuple[dict[str, pa.Array], pa.Array] | None:
        """case_ref tokens of a whole ASCII column (case references are unique per row), and where the
        value is missing."""
        if not is_ascii(values):
            return None
        missing = self._missing_ascii(values)
        standard = pc.if_else(missing, None, references_ascii(values))
        return {"case_ref": self.tok.column_tokens("case_ref", standard)}, missing

    def _pncs(self, values: pa.Array, f: _Field) -> tuple[dict[str, pa.Array], pa.Array] | None:
        """pnc tokens and markers of a whole ASCII column (PNC ids are unique per person), and where the
        value is missing.

        Returns only the rows whose value parses as a PNC id (plus missing ones); the caller sends
        the rest (other types listed in ``also``, unparseable values) down the per-value path.
        """
        if not is_ascii(values):
            return None
        canonical, verified = pncs_ascii(values)
        missing = self._missing_ascii(values)
        canonical = pc.if_else(missing, None, canonical)
        out = {name: pa.nulls(len(values), self._types[name]) for name in f.outputs if name != _DOB}
        out["pnc"] = self.tok.column_tokens("pnc", canonical)
        out["pnc_weak"] = pc.if_else(pc.is_valid(canonical), pc.invert(verified), None)
        return out, missing

    def _field(self, f: _Field, source: pa.Array, arrays: dict[str, pa.Array], out: BatchResult) -> None:
        """Convert one field over a batch into ``arrays``; count and list what happened to its values."""
        done = f.whole_column(source) if f.whole_column is not None else None
        if done is None:
            self._per_value(f, source, arrays, out, None)
            return
        whole, missing = done
        self._counts_whole(f, whole, out)
        # values present that the whole-column form could not read go down the per-value path
        left = pc.and_(pc.is_null(whole[f.outputs[0]]), pc.invert(missing))
        if pc.any(left).as_py():
            rows = np.flatnonzero(left.to_numpy(zero_copy_only=False))
            sub: dict[str, pa.Array] = {}
            self._per_value(f, pc.take(source, rows), sub, out, rows)
            whole = {k: pc.replace_with_mask(v, left, sub[k]) if k in sub else v for k, v in whole.items()}
        arrays.update(whole)

    def _counts_whole(self, f: _Field, whole: dict[str, pa.Array], out: BatchResult) -> None:
        column = f.outputs[0]
        present = pc.sum(pc.is_valid(whole[column])).as_py() or 0
        out.counts.present[f.name] += present
        weak = whole.get(_weak_marker(column))
        if weak is None:
            return
        rows = np.flatnonzero(pc.fill_null(weak, False).to_numpy(zero_copy_only=False))
        if len(rows):
            out.counts.unverified[f.name, UNVERIFIED.removeprefix("unverified: ")] += len(rows)
            out.counts.notes[f.name, UNVERIFIED] += len(rows)
            self._problems(f, rows, UNVERIFIED, out, reject=f.on_invalid == OnInvalid.reject)

    def _per_value(self, f: _Field, source: pa.Array, arrays: dict, out: BatchResult, rows_of) -> None:
        """Dictionary-encode, convert each distinct value once, expand back with ``take`` (all in C but
        the conversion of values not cached yet). ``rows_of`` maps this source's rows to the batch's."""
        encoded = source.dictionary_encode()
        results = self._results(f, encoded.dictionary.to_pylist())
        # absent and invalid values: NULL outputs, and a truthy notes cell so `compress` finds them
        absent_row = (None,) * len(f.outputs) + (_NEEDS_LOOK,)
        rows_out = [r if type(r) is tuple else absent_row for r in results]
        per_output = list(zip(*rows_out, strict=True)) if rows_out else [()] * (len(f.outputs) + 1)
        for name, values in zip(f.outputs, per_output[:-1], strict=True):
            arrays[name] = pc.take(pa.array(values, type=self._types[name]), encoded.indices)
        codes = pc.fill_null(encoded.indices, len(results)).to_numpy(zero_copy_only=False)
        counts = np.bincount(codes, minlength=len(results) + 1)
        # Only values that are absent, invalid or carry notes need Python work: one comprehension finds
        # them (most distinct values have none), and the rest of the count is done on `counts`.
        flagged = list(compress(range(len(results)), per_output[-1]))
        absent = [k for k in flagged if results[k] is _ABSENT]
        out.counts.present[f.name] += len(codes) - int(counts[len(results)]) - int(counts[absent].sum())
        by_action: dict[tuple[str, str], list[int]] = {}
        for k in flagged:
            r, n = results[k], int(counts[k])
            if r is _ABSENT:
                continue
            if type(r) is _Invalid:
                out.counts.blanked[f.name, r.reason] += n
                by_action.setdefault((r.reason, ACTION_BLANKED), []).append(k)
                continue
            assert isinstance(r, tuple)  # neither absent nor invalid: the converted outputs and notes
            for note in r[-1]:
                out.counts.notes[f.name, note] += n
                if note.startswith("unverified: "):
                    out.counts.unverified[f.name, note.removeprefix("unverified: ")] += n
                    by_action.setdefault((note, ACTION_UNVERIFIED), []).append(k)
                elif note == _SWAPPED:
                    by_action.setdefault((note, ACTION_SWAPPED), []).append(k)
        for (reason, action), ks in by_action.items():
            rows = np.flatnonzero(np.isin(codes, ks))
            if rows_of is not None:
                rows = rows_of[rows]
            strict = f.on_invalid == OnInvalid.reject and action != ACTION_SWAPPED
            self._problems(f, rows, reason, out, reject=strict, action=action)

    def _problems(
        self,
        f: _Field,
        rows: np.ndarray,
        reason: str,
        out: BatchResult,
        *,
        reject: bool,
        action: str = ACTION_UNVERIFIED,
    ) -> None:
        column = ",".join(f.columns)
        if reject:
            out.rejects += [(i, column, f"{f.name}: {reason}") for i in rows.tolist()]
        else:
            out.problems += [(i, column, f"{f.name}: {reason}", action) for i in rows.tolist()]

    # --- a batch --------------------------------------------------------------------------------------

    def transform(self, columns: dict[str, pa.Array], source_rows: list[int]) -> BatchResult:
        """Pseudonymise one batch.

        Each field is dictionary-encoded (in C), converted once per distinct value not yet cached
        in Python, hashed in batches (in C) and expanded back to rows with ``take`` (in C): the
        Python cost grows with distinct values, not with rows. Record keys, case references and PNC
        ids, unique per row, are computed whole-column.
        """
        n = len(source_rows)
        out = BatchResult(pa.RecordBatch.from_pylist([]), [], [], FieldCounts())
        arrays: dict[str, pa.Array] = {SOURCE_ROW: pa.array(source_rows, type=pa.int64())}
        rids = self._record_ids(columns, source_rows, out)
        arrays[RECORD_KEY] = pc.fill_null(self.tok.record_keys(self.config.agency.name, rids), 0)
        self._run_fields(self.subject.fields + self.other_fields, columns, arrays, out)
        if self.subject.can_be_usable:
            for i in np.flatnonzero(~_usable(arrays, n)).tolist():
                out.rejects.append((i, "*", NO_USABLE_IDENTIFIER))
        if self.config.age_band:
            arrays[self.config.age_band.name] = self._age_bands(arrays[_DOB], arrays[self.config.age_band.at])
        arrays[ROLE] = pa.repeat(pa.scalar("subject"), n)
        batch = self._batch(arrays, n)
        keep = None
        if out.rejects:
            rejected = {i for i, _, _ in out.rejects}
            keep = pa.array([i not in rejected for i in range(n)])
            batch = batch.filter(keep)  # field problems of rejected rows stay listed: they say why
        victims = [
            self._victim_rows(v, i, columns, arrays, rids, keep, out) for i, v in enumerate(self.victims, 1)
        ]
        victims = [v for v in victims if v.num_rows]
        if victims:
            out.victim_rows = sum(v.num_rows for v in victims)
            batch = pa.Table.from_batches([batch, *victims]).combine_chunks().to_batches()[0]
        out.rejects.sort()
        out.problems.sort()
        out.batch = batch
        return out

    def _record_ids(self, columns: dict[str, pa.Array], source_rows: list[int], out: BatchResult) -> pa.Array:
        """The trimmed record id per row (missing ids are rejects); 'row:<n>' without a record id column.

        Row-number ids are local to a CSV chunk here; the main process rekeys them (``rekey_row_numbers``).
        """
        spec = self.config.identifiers.record_id
        if spec is None:
            return pc.binary_join_element_wise(
                ROW_NUMBER_PREFIX, pc.cast(pa.array(source_rows), pa.string()), ""
            )
        parts, absent_any = [], None
        for column in spec.parts:  # several columns: each must hold a value; joined by U+001F
            part = pc.utf8_trim_whitespace(columns[column])
            absent = pc.fill_null(
                pc.or_(pc.equal(part, ""), pc.is_in(pc.utf8_upper(part), value_set=self._missing_values)),
                True,
            )
            for i in pc.indices_nonzero(absent).to_pylist():
                out.rejects.append((i, column, "record id is missing"))
            parts.append(part)
            absent_any = absent if absent_any is None else pc.or_(absent_any, absent)
        rids = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, RECORD_ID_SEPARATOR)
        return pc.if_else(absent_any, None, rids)

    def _run_fields(
        self, fields: list[_Field], columns, arrays: dict[str, pa.Array], out: BatchResult
    ) -> None:
        """Run fields into ``arrays``. Several fields may fill one typed id column (a CRO column, and CRO
        numbers found in the PNC column): per row the first verified value wins, else the first one."""
        typed: dict[str, list[tuple[pa.Array, pa.Array]]] = {}
        for f in fields:
            got: dict[str, pa.Array] = {}
            self._field(f, self._source(f, columns), got, out)
            for name, values in got.items():
                if name in _TYPED_ID_COLUMNS:
                    typed.setdefault(name, []).append((values, got[_weak_marker(name)]))
                elif name not in _TYPED_ID_MARKERS:
                    arrays[name] = values
        for name, candidates in typed.items():
            token, weak = candidates[0]
            for t, w in candidates[1:]:
                better = pc.and_kleene(
                    pc.is_valid(t), pc.or_kleene(pc.is_null(token), pc.and_kleene(weak, pc.invert(w)))
                )
                better = pc.fill_null(better, False)
                token, weak = pc.if_else(better, t, token), pc.if_else(better, w, weak)
            arrays[name], arrays[_weak_marker(name)] = token, weak

    def _batch(self, arrays: dict[str, pa.Array], n: int) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays(
            [
                arrays[name] if name in arrays else pa.nulls(n, self.schema.field(name).type)
                for name in self.schema.names
            ],
            schema=self.schema,
        )

    def _victim_rows(
        self, identity: _Identity, index: int, columns, subject: dict, rids, keep, out: BatchResult
    ):
        """Victim-mention rows for victim ``index`` of every kept subject row that names a usable victim."""
        n = len(subject[SOURCE_ROW])
        arrays: dict[str, pa.Array] = {SOURCE_ROW: subject[SOURCE_ROW]}
        self._run_fields(identity.fields, columns, arrays, out)
        usable = _usable(arrays, n)
        if keep is not None:
            usable &= keep.to_numpy(zero_copy_only=False)
        victim_ids = pc.binary_join_element_wise(rids, f"/victim/{index}", "")
        arrays[RECORD_KEY] = pc.fill_null(self.tok.record_keys(self.config.agency.name, victim_ids), 0)
        arrays[MENTION_OF] = subject[RECORD_KEY]
        arrays[ROLE] = pa.repeat(pa.scalar("victim"), n)
        arrays[VICTIM_INDEX] = pa.repeat(pa.scalar(index, pa.int8()), n)
        for attr in self.config.attributes:
            if attr.victim:
                arrays[attr.out_name] = subject[attr.out_name]
        band = self.config.age_band
        if band and _DOB in arrays:  # the victim's own age at the subject row's event date
            arrays[band.name] = self._age_bands(arrays[_DOB], subject[band.at])
        if identity.prefix:
            out.counts.notes[identity.prefix.strip(), "mentions with a usable identifier"] += int(
                usable.sum()
            )
        return self._batch(arrays, n).filter(pa.array(usable))

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


def rekey_row_numbers(tok: Tokeniser, agency: str, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Record keys from the file-wide row number (a worker saw only its chunk's row numbers): 'row:<n>'
    for a subject, 'row:<n>/victim/<i>' for a mention, whose ``mention_of`` is its subject's key."""
    rows = pc.binary_join_element_wise(ROW_NUMBER_PREFIX, pc.cast(batch.column(SOURCE_ROW), pa.string()), "")
    victim = batch.column(VICTIM_INDEX)
    suffix = pc.if_else(
        pc.is_valid(victim), pc.binary_join_element_wise("/victim/", pc.cast(victim, pa.string()), ""), ""
    )
    keys = tok.record_keys(agency, pc.binary_join_element_wise(rows, suffix, ""))
    mention_of = pc.if_else(pc.is_valid(victim), tok.record_keys(agency, rows), None)
    for name, values in ((RECORD_KEY, keys), (MENTION_OF, mention_of)):
        i = batch.schema.get_field_index(name)
        batch = batch.set_column(i, batch.schema.field(i), values)
    return batch


def _usable(arrays: dict[str, pa.Array], n: int) -> np.ndarray:
    """Rows that keep a usable identifier: two of surname, forename and date of birth (a date valid only
    swapped counts), or a verified typed id, or a generic id (it passed its pattern)."""

    def valid(name: str) -> np.ndarray:
        return (
            pc.is_valid(arrays[name]).to_numpy(zero_copy_only=False) if name in arrays else np.zeros(n, bool)
        )

    sn, fn, dob = valid("sn"), valid("fn1"), valid("dob") | valid("dob_swap")
    usable = (sn & fn) | (sn & dob) | (fn & dob)
    for column in NATIONAL_ID_TYPES.values():
        if column in arrays:
            usable |= pc.fill_null(pc.invert(arrays[_weak_marker(column)]), False).to_numpy(
                zero_copy_only=False
            )
    for name in arrays:
        if name.startswith("id_"):
            usable |= valid(name)
    return usable
