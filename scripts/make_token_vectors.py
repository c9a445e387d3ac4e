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
from linkage.tokens.spec import TOKEN_SPEC_VERSION, Purpose, generic_id_column
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
ADDRESSES = [
    {"line": "12a High St"},
    {"line": "Flat 2, 12A High Street", "town": "Leeds"},
    {"house_number": "007", "street": "Acacia Ave", "town": "St. Albans"},
    {"street": "Mill Lane"},
]


def build() -> dict:
    key = ProjectKey("vectors", datetime(2026, 1, 1, tzinfo=UTC), KEY)
    tok = Tokeniser(key.subkeys())
    vectors: list[dict] = []

    def add(kind: str, raw, standard: dict, plaintexts: dict, **options) -> None:
        tokens = tok.hash_plaintexts(
            {k: v for k, v in plaintexts.items() if not isinstance(v, bool)},
            postcode_country=options.get("country", "uk"),
        )
        markers = {k: v for k, v in plaintexts.items() if isinstance(v, bool)}
        vectors.append(
            {"type": kind, "raw": raw, **options, "standard": standard, "tokens": tokens, "markers": markers}
        )

    for raw in FORENAMES:
        parts = st.forename_parts([raw])
        first = parts[0] if parts else None
        standard = {
            "parts": parts,
            "canonical": first and canonical_forename(first),
            "phonetic": first and st.phonetic(first),
        }
        add("forenames", raw, standard, forename_plaintexts(parts))
    for raw in SURNAMES:
        parts = st.surname_parts(raw)
        add(
            "surname",
            raw,
            {"parts": parts, "phonetic": st.phonetic("".join(parts))},
            surname_plaintexts(parts),
        )
    for raw, layouts in FULL_NAMES:
        forenames, surname, layout = st.split_full_name_layouts(raw, layouts)
        fparts, sparts = st.forename_parts([forenames]), st.surname_parts(surname)
        standard = {
            "layout": layout,
            "forename_parts": fparts,
            "surname_parts": sparts,
            "canonical": canonical_forename(fparts[0]),
            "forename_phonetic": st.phonetic(fparts[0]),
            "surname_phonetic": st.phonetic("".join(sparts)),
        }
        add(
            "full_name",
            raw,
            standard,
            forename_plaintexts(fparts) | surname_plaintexts(sparts),
            layouts=layouts,
        )
    for raw, formats in DATES:
        d, swapped = st.read_birth_date(raw, formats, TODAY)
        weak = swapped or st.is_placeholder(d, PLACEHOLDERS)
        swap = st.swapped_date(d)
        standard = {
            "iso": d.isoformat(),
            "swapped_only": swapped,
            "swapped": None if swapped else swap and swap.isoformat(),
        }
        plain = dob_plaintexts(d, swapped_only=swapped) | {"dob_weak": weak}
        add("date_of_birth", raw, standard, plain, formats=formats, placeholders=PLACEHOLDERS)
    for raw in POSTCODES:
        inward, outward = st.standardise_postcode(raw)
        add("postcode", raw, {"outward": outward, "inward": inward}, postcode_plaintexts(inward, outward))
    for raw in GENERIC_POSTCODES:
        code, sector, district = st.standardise_generic_postcode(raw)
        standard = {"code": code, "sector": sector, "district": district}
        add("postcode", raw, standard, generic_postcode_plaintexts(code, sector, district), country="generic")
    columns = {"pnc": "pnc", "cro": "cro", "ni_number": "ni", "nhs_number": "nhs"}
    for kind, raw in NATIONAL_IDS:
        value = st.NATIONAL_ID_PARSERS[kind](raw)
        column = columns[kind]
        standard = {"canonical": value.canonical, "verified": value.verified}
        add(kind, raw, standard, {column: value.canonical, f"{column}_weak": not value.verified})
    for family, pattern, normalise, raw in GENERIC_IDS:
        value = st.standardise_generic_id(raw, re.compile(pattern), normalise)
        column = generic_id_column(family).name
        options = {"family": family, "pattern": pattern, "normalise": normalise}
        add("generic", raw, {"canonical": value}, {column: value}, **options)
    for raw in CASE_REFS:
        ref = st.standardise_reference(raw)
        add("case_reference", raw, {"canonical": ref}, {"case_ref": ref})
    for raw in ADDRESSES:
        if "line" in raw:
            house, street = st.split_address_line(raw["line"])
        else:
            house = st.standardise_house_number(raw["house_number"]) if "house_number" in raw else None
            street = st.standardise_street(raw["street"]) if "street" in raw else None
        town = st.standardise_town(raw["town"]) if "town" in raw else None
        add(
            "address",
            raw,
            {"house": house, "street": street, "town": town},
            address_plaintexts(house, street, town),
        )
    for agency, rid in (
        ("police", "CR0001"),
        ("court", "CR0001"),
        ("police", "CR0001/victim/1"),
        ("police", "row:7"),
    ):
        vectors.append(
            {
                "type": "record_id",
                "raw": rid,
                "standard": {"agency": agency},
                "tokens": {"record_key": tok.record_key(agency, rid)},
            }
        )
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
