"""Regenerate tests/vectors/token_spec_v2.json: raw value -> standard form -> tokens under a fixed key.

Run only when the token spec changes on purpose (and bump TOKEN_SPEC_VERSION): the vectors are
the contract any reimplementation must reproduce, and tests/test_token_vectors.py pins them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

from linkage.keys import ProjectKey
from linkage.tokens import standardise as st
from linkage.tokens.spec import NATIONAL_ID_TYPES, TOKEN_SPEC_VERSION, Purpose, generic_id_column
from linkage.tokens.tokenise import (
    Tokeniser,
    address_plaintexts,
    canonical_forename,
    dob_plaintexts,
    forename_plaintexts,
    generic_postcode_plaintexts,
    postcode_plaintexts,
    surname_plaintexts,
)

OUT = Path(__file__).resolve().parents[1] / "tests" / "vectors" / f"token_spec_v{TOKEN_SPEC_VERSION}.json"
KEY = bytes(range(32))  # a published test key: never use it for real data
TODAY = date(2026, 1, 1)  # dates of birth are checked against this day, so the vectors never age

FORENAMES = [
    "Robert James",
    "  bob ",
    "Zoë",
    "MR. Seán-Paul",
    "Mohamed",
    "KATE",
    "d'Arcy",
    "Ólafur Þór",
    "Иван",  # Cyrillic: transliterated (anyascii)
    "Γιώργος",  # Greek
    "Jo\u200bhn",  # zero-width space: removed, not a part separator
    "",
    "Dr",
]
SURNAMES = [
    "O'Brien",
    "Smith-Jones",
    "  van der  Berg ",
    "MÜLLER",
    "Featherstonehaugh Jr",
    "Ng",
    "Петров",
    "Сarter",  # Latin name typed with a Cyrillic 'С': folded to Latin, not transliterated
    "Smi\u200dth",  # zero-width joiner: does not split the surname
    "王",
]
FULL_NAMES = [
    ("SMITH-JONES, Anna Maria", ["SURNAME, Forenames", "upper-case SURNAME"]),
    ("Anna Maria SMITH", ["SURNAME, Forenames", "upper-case SURNAME"]),
    ("Anna Maria Smith", ["Forenames SURNAME"]),
    ("Smith Anna", ["SURNAME Forenames"]),
]
DATES = [
    ("05/03/1990", ["%d/%m/%Y"]),
    ("1990-03-05", ["%Y-%m-%d"]),
    ("05-Mar-1990", ["%d-%b-%Y"]),
    ("19901231", ["%Y%m%d"]),
    ("07/07/2001", ["%d/%m/%Y"]),
    ("20042803", ["%Y%m%d"]),  # valid only with day and month swapped: dob_swap only, weak
    ("01/01/1985", ["%d/%m/%Y"]),  # placeholder (1 January): tokenised, weak
    ("1900-01-01", ["%Y-%m-%d"]),  # placeholder
]
PLACEHOLDERS = list(st.DEFAULT_PLACEHOLDER_DATES)
POSTCODES = ["sw1a1aa", "SW1A 1AA", " m1  1ae ", "EC1A 1BB", "B33 8TH", "GIR 0AA", "CR2"]
GENERIC_POSTCODES = ["90210", "2000", "1012 AB", "k1a-0b1"]
NATIONAL_IDS = [
    ("pnc", "2001/0012345H"),
    ("pnc", "01/12345H"),
    ("pnc", "1999/0456789Q"),
    ("pnc", "2001/0012345A"),  # wrong check letter: unverified
    ("cro", "123456/89W"),
    ("cro", "12345/99n"),
    ("cro", "123456/89L"),  # wrong check letter: unverified
    ("cro", "SF95/123456K"),
    ("ni_number", "AB 12 34 56 C"),
    ("ni_number", "ab123456"),
    ("ni_number", "TN123456A"),  # prefix never allocated: unverified
    ("nhs_number", "943 476 5919"),
    ("nhs_number", "9434765918"),  # wrong check digit: unverified
]
GENERIC_IDS = [
    ("ssn", r"^\d{9}$", "digits", "123-45-6789"),
    ("passport", r"^[A-Z0-9]{6,9}$", "alnum", "x1234567"),
]
CASE_REFS = ["01YE0123456", "01-ye-0123456 "]
RECORD_IDS = [("police", "CR0001"), ("court", "CR0001"), ("police", "CR0001/victim/1"), ("police", "row:7")]
ADDRESSES = [
    {"line": "12a High St"},
    {"line": "Flat 2, 12A High Street", "town": "Leeds"},
    {"house_number": "007", "street": "Acacia Ave", "town": "St. Albans"},
    {"street": "Mill Lane"},
]


def engine_form(kind: str, raw, options: dict) -> tuple[dict, dict]:
    """The engine's standard form and plaintexts (markers included) of one raw value of an identifier
    type: what a vector pins. tests/test_token_vectors.py runs it again over the stored vectors."""
    if kind == "forenames":
        parts = st.forename_parts([raw])
        first = parts[0] if parts else None
        standard = {
            "parts": parts,
            "canonical": first and canonical_forename(first),
            "phonetic": first and st.phonetic(first),
        }
        return standard, forename_plaintexts(parts)
    if kind == "surname":
        parts = st.surname_parts(raw)
        return {"parts": parts, "phonetic": st.phonetic("".join(parts))}, surname_plaintexts(parts)
    if kind == "full_name":
        forenames, surname, layout = st.split_full_name_layouts(raw, options["layouts"])
        f, s = st.forename_parts([forenames]), st.surname_parts(surname)
        standard = {
            "layout": layout,
            "forename_parts": f,
            "surname_parts": s,
            "canonical": canonical_forename(f[0]),
            "forename_phonetic": st.phonetic(f[0]),
            "surname_phonetic": st.phonetic("".join(s)),
        }
        return standard, forename_plaintexts(f) | surname_plaintexts(s)
    if kind == "date_of_birth":
        d, swapped = st.read_birth_date(raw, options["formats"], TODAY)
        swap = st.swapped_date(d)
        standard = {
            "iso": d.isoformat(),
            "swapped_only": swapped,
            "swapped": None if swapped else swap and swap.isoformat(),
        }
        weak = swapped or st.is_placeholder(d, options["placeholders"])
        return standard, dob_plaintexts(d, swapped_only=swapped) | {"dob_weak": weak}
    if kind == "postcode" and options.get("country") == "generic":
        code, sector, district = st.standardise_generic_postcode(raw)
        standard = {"code": code, "sector": sector, "district": district}
        return standard, generic_postcode_plaintexts(code, sector, district)
    if kind == "postcode":
        inward, outward = st.standardise_postcode(raw)
        return {"outward": outward, "inward": inward}, postcode_plaintexts(inward, outward)
    if kind in st.NATIONAL_ID_PARSERS:
        value = st.NATIONAL_ID_PARSERS[kind](raw)
        column = NATIONAL_ID_TYPES[kind]
        standard = {"canonical": value.canonical, "verified": value.verified}
        return standard, {column: value.canonical, f"{column}_weak": not value.verified}
    if kind == "generic":
        value = st.standardise_generic_id(raw, re.compile(options["pattern"]), options["normalise"])
        return {"canonical": value}, {generic_id_column(options["family"]).name: value}
    if kind == "case_reference":
        ref = st.standardise_reference(raw)
        return {"canonical": ref}, {"case_ref": ref}
    if kind == "address":
        if "line" in raw:
            house, street = st.split_address_line(raw["line"])
        else:
            house = st.standardise_house_number(raw["house_number"]) if "house_number" in raw else None
            street = st.standardise_street(raw["street"]) if "street" in raw else None
        town = st.standardise_town(raw["town"]) if "town" in raw else None
        return {"house": house, "street": street, "town": town}, address_plaintexts(house, street, town)
    raise ValueError(f"unknown identifier type {kind!r}")


def hashed(tok: Tokeniser, plaintexts: dict, country: str = "uk") -> tuple[dict, dict]:
    """(tokens, markers) of an identifier's plaintexts: booleans are markers, the rest is hashed."""
    markers = {k: v for k, v in plaintexts.items() if isinstance(v, bool)}
    plain = {k: v for k, v in plaintexts.items() if not isinstance(v, bool)}
    return tok.hash_plaintexts(plain, postcode_country=country), markers


def build() -> dict:
    key = ProjectKey("vectors", datetime(2026, 1, 1, tzinfo=UTC), KEY)
    tok = Tokeniser(key.subkeys())
    vectors: list[dict] = []

    def add(kind: str, raw, **options) -> None:
        standard, plaintexts = engine_form(kind, raw, options)
        tokens, markers = hashed(tok, plaintexts, options.get("country", "uk"))
        vectors.append(
            {"type": kind, "raw": raw, **options, "standard": standard, "tokens": tokens, "markers": markers}
        )

    for raw in FORENAMES:
        add("forenames", raw)
    for raw in SURNAMES:
        add("surname", raw)
    for raw, layouts in FULL_NAMES:
        add("full_name", raw, layouts=layouts)
    for raw, formats in DATES:
        add("date_of_birth", raw, formats=formats, placeholders=PLACEHOLDERS)
    for raw in POSTCODES:
        add("postcode", raw)
    for raw in GENERIC_POSTCODES:
        add("postcode", raw, country="generic")
    for kind, raw in NATIONAL_IDS:
        add(kind, raw)
    for family, pattern, normalise, raw in GENERIC_IDS:
        add("generic", raw, family=family, pattern=pattern, normalise=normalise)
    for raw in CASE_REFS:
        add("case_reference", raw)
    for raw in ADDRESSES:
        add("address", raw)
    for agency, rid in RECORD_IDS:
        tokens = {"record_key": tok.record_key(agency, rid)}
        vectors.append({"type": "record_id", "raw": rid, "standard": {"agency": agency}, "tokens": tokens})
    return {
        "token_spec_version": TOKEN_SPEC_VERSION,
        "project_key_hex": KEY.hex(),
        "subkeys_hex": {p.value: key.subkey(p).hex() for p in Purpose},
        "fingerprint": key.fingerprint,
        "today": TODAY.isoformat(),
        "formula": "token = int.from_bytes(HMAC-SHA256(subkey, family || 0x1F || utf8(value))[:8], 'big', "
        "signed=True); families and values: docs/token-spec.md",
        "vectors": vectors,
    }


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
