"""Token spec v2: the columns every pseudonymised extract carries, and how each is keyed.

This module is the cross-agency contract (docs/token-spec.md explains each entry) and the one owner
of "which token and marker columns each identifier type produces": transform, tokenise, audit and
linkage derive their lists from ``columns_for`` and the tables below. Every extract has every fixed
token column, NULL where the agency lacks the identifier, so linkage sees one schema; generic ids
(``id_<family>``) exist only in the extracts that declare them. A change to anything here, to
standardisation, to the nickname table or to the transliteration library's table is a new spec version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TOKEN_SPEC_VERSION = "2"
SUPPORTED_TOKEN_SPEC_VERSIONS = frozenset({TOKEN_SPEC_VERSION})
MIGRATION_HINT = "re-pseudonymise every extract with token spec v2 (docs/token-spec.md, 'Migrating from v1')"


class Purpose(StrEnum):
    """Each purpose has its own HKDF subkey (domain separation)."""

    names = "names"
    dates = "dates"
    postcodes = "postcodes"
    national_ids = "national_ids"
    case_refs = "case_refs"
    record_keys = "record_keys"
    addresses = "addresses"


@dataclass(frozen=True)
class TokenColumn:
    name: str
    purpose: Purpose
    family: str  # HMAC message prefix: values of one family are comparable across columns
    description: str


# Columns sharing (purpose, family) hold comparable tokens: fn1 and sn are both family "name", so a
# forename/surname swap shows up as fn1_l = sn_r; dob_swap is family "date" like dob.
TOKEN_COLUMNS: tuple[TokenColumn, ...] = (
    TokenColumn("fn1", Purpose.names, "name", "first forename, exact"),
    TokenColumn("fn2", Purpose.names, "name", "second forename, exact (NULL if none)"),
    TokenColumn("fn1_canon", Purpose.names, "name", "first forename mapped through the nickname table"),
    TokenColumn("fn1_phon", Purpose.names, "phon", "first forename, NYSIIS phonetic code"),
    TokenColumn("fn1_pre3", Purpose.names, "pre3", "first three letters of the first forename"),
    TokenColumn("sn", Purpose.names, "name", "surname, all parts joined without spaces"),
    TokenColumn("sn_phon", Purpose.names, "phon", "surname, NYSIIS phonetic code"),
    TokenColumn("sn_pre3", Purpose.names, "pre3", "first three letters of the surname"),
    TokenColumn("sn_p1", Purpose.names, "name", "first part of a multi-part surname (NULL if one part)"),
    TokenColumn("sn_p2", Purpose.names, "name", "last part of a multi-part surname (NULL if one part)"),
    TokenColumn("dob", Purpose.dates, "date", "date of birth, YYYY-MM-DD (NULL if valid only swapped)"),
    TokenColumn(
        "dob_swap",
        Purpose.dates,
        "date",
        "date of birth with day and month swapped (if valid); for a "
        "date valid only swapped, the date read swapped",
    ),
    TokenColumn("dob_ym", Purpose.dates, "ym", "year and month of birth"),
    TokenColumn("dob_yd", Purpose.dates, "yd", "year and day of birth"),
    TokenColumn("dob_md", Purpose.dates, "md", "month and day of birth"),
    TokenColumn("pc", Purpose.postcodes, "unit", "full postcode ('OUTWARD INWARD'; generic: alphanumerics)"),
    TokenColumn("pc_sector", Purpose.postcodes, "sector", "postcode sector (generic: first 4 characters)"),
    TokenColumn("pc_district", Purpose.postcodes, "district", "postcode district (generic: first 3)"),
    TokenColumn("pnc", Purpose.national_ids, "pnc", "PNC id, 'YY/NNNNNNNC'"),
    TokenColumn("cro", Purpose.national_ids, "cro", "CRO number, 'NNNNNN/YYC' or 'SFYY/NNNNNNC'"),
    TokenColumn("ni", Purpose.national_ids, "ni", "National Insurance number, 'AA999999' (suffix dropped)"),
    TokenColumn("nhs", Purpose.national_ids, "nhs", "NHS number, ten digits"),
    TokenColumn("case_ref", Purpose.case_refs, "case", "case reference shared by police, CPS and court"),
    TokenColumn("addr_house", Purpose.addresses, "house", "house number and street, one token"),
    TokenColumn("addr_street", Purpose.addresses, "street", "street name"),
    TokenColumn("addr_town", Purpose.addresses, "town", "town"),
)
TOKEN_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in TOKEN_COLUMNS)
_FAMILIES = {c.name: (c.purpose, c.family) for c in TOKEN_COLUMNS}

# Generic postal codes (`country: generic`) hash into their own families, so a generic code can never
# equal a UK postcode's token by accident; the manifest records the country of each extract.
GENERIC_POSTCODE_FAMILIES = {
    "pc": "unit/generic",
    "pc_sector": "sector/generic",
    "pc_district": "district/generic",
}
GENERIC_POSTCODE_SECTOR, GENERIC_POSTCODE_DISTRICT = 4, 3  # prefix lengths of a generic postal code

# Generic ids: one column per declared family, HMAC family "id/<family>" so families never collide.
GENERIC_ID_FAMILY = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
GENERIC_ID_PREFIX = "id_"


def generic_id_column(family: str) -> TokenColumn:
    """The token column of a generic id family (e.g. ``ssn`` -> ``id_ssn``)."""
    if not GENERIC_ID_FAMILY.match(family):
        raise ValueError(f"generic id family {family!r} must match {GENERIC_ID_FAMILY.pattern}")
    return TokenColumn(f"{GENERIC_ID_PREFIX}{family}", Purpose.national_ids, f"id/{family}", f"{family} id")


def token_family(column: str, *, postcode_country: str = "uk") -> tuple[Purpose, str]:
    """(purpose, HMAC family) of a token column; generic postal codes and generic ids have their own."""
    if postcode_country == "generic" and column in GENERIC_POSTCODE_FAMILIES:
        return Purpose.postcodes, GENERIC_POSTCODE_FAMILIES[column]
    if column in _FAMILIES:
        return _FAMILIES[column]
    c = generic_id_column(column.removeprefix(GENERIC_ID_PREFIX))
    return c.purpose, c.family


def is_token_column(name: str) -> bool:
    """A fixed token column or a generic id column."""
    return name in TOKEN_COLUMN_NAMES or (
        name.startswith(GENERIC_ID_PREFIX) and bool(GENERIC_ID_FAMILY.match(name[len(GENERIC_ID_PREFIX) :]))
    )


# Weak-evidence markers (BOOLEAN; NULL when the identifier is absent). dob_weak: a placeholder date, or
# a date valid only with day and month swapped. <id>_weak: parsed but failed only its check character.
WEAK_MARKERS: dict[str, str] = {
    "dob_weak": "date_of_birth",
    "pnc_weak": "pnc",
    "cro_weak": "cro",
    "ni_weak": "ni_number",
    "nhs_weak": "nhs_number",
}

# Identifier type -> the token and marker columns it produces.
_NAME_FORE = ("fn1", "fn2", "fn1_canon", "fn1_phon", "fn1_pre3")
_NAME_SUR = ("sn", "sn_phon", "sn_pre3", "sn_p1", "sn_p2")
IDENTIFIER_COLUMNS: dict[str, tuple[str, ...]] = {
    "forenames": _NAME_FORE,
    "surname": _NAME_SUR,
    "full_name": _NAME_FORE + _NAME_SUR,
    "date_of_birth": ("dob", "dob_swap", "dob_ym", "dob_yd", "dob_md", "dob_weak"),
    "postcode": ("pc", "pc_sector", "pc_district"),
    "address": ("addr_house", "addr_street", "addr_town"),
    "case_reference": ("case_ref",),
    "pnc": ("pnc", "pnc_weak"),
    "cro": ("cro", "cro_weak"),
    "ni_number": ("ni", "ni_weak"),
    "nhs_number": ("nhs", "nhs_weak"),
}
# Typed national ids: identifier type -> its token column (the marker is "<column>_weak").
NATIONAL_ID_TYPES: dict[str, str] = {"pnc": "pnc", "cro": "cro", "ni_number": "ni", "nhs_number": "nhs"}


def columns_for(identifier_type: str, family: str | None = None) -> tuple[str, ...]:
    """Token and marker columns an identifier type produces (``generic`` needs its family)."""
    if identifier_type == "generic":
        if family is None:
            raise ValueError("a generic id needs its family")
        return (generic_id_column(family).name,)
    return IDENTIFIER_COLUMNS[identifier_type]


RECORD_KEY = "record_key"  # keyed token of the agency's record id (family "record/<agency>")
SOURCE_ROW = "source_row"  # 1-based data-row number in the raw input (header excluded)
SEX = "sex"  # M / F / X / NULL: the one identifier-derived attribute that passes in the clear
ROLE = "role"  # 'subject' (the agency's own person) or 'victim' (a victim mention, a row of its own)
MENTION_OF = "mention_of"  # a victim mention's subject record_key; NULL for subjects
VICTIM_INDEX = "victim_index"  # a mention's position on its subject's row (victim 1, 2, ...); NULL: subject
ROLES = ("subject", "victim")
SOURCE_DATASET = "source_dataset"  # added by linkage, never written by an agency

# Names no agency attribute may take (nor any name starting with the generic id prefix).
RESERVED_COLUMNS = frozenset(
    {
        *TOKEN_COLUMN_NAMES,
        *WEAK_MARKERS,
        RECORD_KEY,
        SOURCE_ROW,
        SEX,
        ROLE,
        MENTION_OF,
        VICTIM_INDEX,
        SOURCE_DATASET,
        "person_id",
    }
)

# SHA-256 of tokens/data/forename_groups_v1.csv: the nickname table is part of the spec, so a change
# to it without a new spec version fails the tests (tests/test_token_vectors.py).
FORENAME_TABLE_SHA256 = "61e7096b3f2fc8be693ad8cc6657579f0ce8db924ff78ed58f8a2e607f8d8d49"

# Transliteration of non-Latin scripts: anyascii (ISC licence), pinned. The table hash is the SHA-256
# of anyascii(chr(c)) for every code point, joined by 0x1F; tests/test_token_vectors.py recomputes it,
# so an upgrade that changes any mapping fails the tests instead of silently changing tokens.
ANYASCII_VERSION = "0.3.3"
ANYASCII_TABLE_SHA256 = "bb7c99b4c2a1717ddfcd2058cb855d4f9f4a31f428e64d6671169138b6f18435"

TOKEN_BITS = 64  # HMAC-SHA256 truncated to its first 8 bytes, read as a signed big-endian int64
