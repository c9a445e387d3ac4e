"""Token spec v1: the columns every pseudonymised extract carries, and how each is keyed.

This table is the cross-agency contract (docs/token-spec.md explains each entry). Every extract has
every token column, NULL where the agency lacks the identifier, so linkage sees one schema.
A change to anything here, to standardisation or to the nickname table is a new spec version.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

TOKEN_SPEC_VERSION = "1"
SUPPORTED_TOKEN_SPEC_VERSIONS = frozenset({TOKEN_SPEC_VERSION})


class Purpose(StrEnum):
    """Each purpose has its own HKDF subkey (domain separation)."""

    names = "names"
    dates = "dates"
    postcodes = "postcodes"
    national_ids = "national_ids"
    case_refs = "case_refs"
    record_keys = "record_keys"


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
    TokenColumn("dob", Purpose.dates, "date", "date of birth, YYYY-MM-DD"),
    TokenColumn("dob_swap", Purpose.dates, "date", "date of birth with day and month swapped (if valid)"),
    TokenColumn("dob_ym", Purpose.dates, "ym", "year and month of birth"),
    TokenColumn("dob_yd", Purpose.dates, "yd", "year and day of birth"),
    TokenColumn("dob_md", Purpose.dates, "md", "month and day of birth"),
    TokenColumn("pc", Purpose.postcodes, "unit", "full postcode, 'OUTWARD INWARD'"),
    TokenColumn("pc_sector", Purpose.postcodes, "sector", "postcode sector, 'OUTWARD N'"),
    TokenColumn("pc_district", Purpose.postcodes, "district", "postcode district (outward code)"),
    TokenColumn("pnc", Purpose.national_ids, "pnc", "PNC id, 'YY/NNNNNNNC', check character verified"),
    TokenColumn("case_ref", Purpose.case_refs, "case", "case reference shared by police, CPS and court"),
)
TOKEN_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in TOKEN_COLUMNS)

RECORD_KEY = "record_key"  # keyed token of the agency's record id (family "record/<agency>")
SOURCE_ROW = "source_row"  # 1-based data-row number in the raw input (header excluded)
SEX = "sex"  # M / F / X / NULL: the one identifier-derived attribute that passes in the clear
SOURCE_DATASET = "source_dataset"  # added by linkage, never written by an agency

# Names no agency attribute may take.
RESERVED_COLUMNS = frozenset({*TOKEN_COLUMN_NAMES, RECORD_KEY, SOURCE_ROW, SEX, SOURCE_DATASET, "person_id"})

# SHA-256 of tokens/data/forename_groups_v1.csv: the nickname table is part of the spec, so a change
# to it without a new spec version fails the tests (tests/test_token_vectors.py).
FORENAME_TABLE_SHA256 = "61e7096b3f2fc8be693ad8cc6657579f0ce8db924ff78ed58f8a2e607f8d8d49"

TOKEN_BITS = 64  # HMAC-SHA256 truncated to its first 8 bytes, read as a signed big-endian int64
