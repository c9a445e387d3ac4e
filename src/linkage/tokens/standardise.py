"""Standardisation rules of token spec v1 (docs/token-spec.md is the normative text).

Every agency must turn the same person's identifiers into the same strings before hashing, so each
rule here is deliberately simple enough to reimplement in another language. Functions return the
standard form, ``None`` for a missing value, or raise ``InvalidValue`` (whose message never
contains the value itself, so it is safe to log).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

import jellyfish
import pyarrow as pa
import pyarrow.compute as pc


class InvalidValue(ValueError):
    """A present value that fails validation. The message names the rule, never the value."""


# Letters NFKD does not decompose into ASCII. Written out (rather than an unidecode-style library)
# because the mapping is part of the spec: it must not change when a dependency is upgraded.
_TRANSLITERATE = str.maketrans(
    {
        "Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ß": "SS",
        "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "TH", "þ": "th",
        "ı": "i", "Ħ": "H", "ħ": "h",
    }
)  # fmt: skip
_APOSTROPHES = re.compile(r"['’‘`´.]")  # removed: O'Brien -> OBRIEN, St. John -> ST JOHN
_NON_LETTERS = re.compile(r"[^A-Z]+")  # everything else (spaces, hyphens, digits) separates parts
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_SPACE = re.compile(r"\s")

TITLES = frozenset({"MR", "MRS", "MS", "MISS", "MX", "DR", "SIR", "DAME", "LORD", "LADY", "REV", "PROF"})
SUFFIXES = frozenset({"JR", "JNR", "JUNIOR", "SR", "SNR", "SENIOR", "II", "III", "IV"})


def ascii_upper(raw: str) -> str:
    """NFKD, accents stripped, the transliteration table applied, upper-cased."""
    if raw.isascii():  # the common case: nothing to decompose (upper() of ASCII stays ASCII)
        return raw.upper()
    text = unicodedata.normalize("NFKD", raw.translate(_TRANSLITERATE))
    return "".join(c for c in text if not unicodedata.combining(c)).upper()


def name_parts(raw: str | None, *, drop_titles: bool = False) -> list[str]:
    """Split a name into upper-case A-Z parts; generational suffixes always, titles optionally, dropped."""
    if raw is None:
        return []
    parts = [p for p in _NON_LETTERS.split(_APOSTROPHES.sub("", ascii_upper(raw))) if p]
    parts = [p for p in parts if p not in SUFFIXES]
    if drop_titles:
        while parts and parts[0] in TITLES:
            parts.pop(0)
    return parts


def forename_parts(raws: list[str | None]) -> list[str]:
    """Forenames from one or more columns (first name, middle names), in order, titles dropped."""
    return name_parts(" ".join(r for r in raws if r), drop_titles=True)


def surname_parts(raw: str | None) -> list[str]:
    return name_parts(raw)


def split_full_name(raw: str, layout: str) -> tuple[str, str]:
    """Split one name column into (forenames, surname) following the config's layout."""
    if layout == "SURNAME, Forenames":
        surname, sep, forenames = raw.partition(",")
        if not sep:
            raise InvalidValue("name has no comma between surname and forenames")
        return forenames, surname
    # "Forenames SURNAME": the last whitespace-separated word is the surname
    words = raw.split()
    if len(words) < 2:
        raise InvalidValue("name has fewer than two words")
    return " ".join(words[:-1]), words[-1]


def phonetic(name: str) -> str:
    """NYSIIS code of a standardised name (jellyfish's implementation, pinned by the test vectors)."""
    return jellyfish.nysiis(name)


# --- dates -----------------------------------------------------------------------------------------

EARLIEST_BIRTH = date(1900, 1, 1)


def parse_date(raw: str, formats: list[str]) -> date:
    """Parse with the first matching strptime format; raise InvalidValue if none match."""
    text = raw.strip()
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidValue(f"date matches none of the formats {formats}")


def check_birth_date(d: date, today: date | None = None) -> date:
    """A date of birth must lie between 1900-01-01 and today."""
    if d < EARLIEST_BIRTH or d > (today or date.today()):
        raise InvalidValue("date of birth outside 1900-01-01 .. today")
    return d


def swapped_date(d: date) -> date | None:
    """The date with day and month exchanged, when that is a different valid date."""
    if d.day > 12 or d.day == d.month:
        return None
    return date(d.year, d.day, d.month)


# --- postcodes -------------------------------------------------------------------------------------

# Outward code: area letters, district digit, optional digit/letter. Inward: digit + two letters that
# are never C, I, K, M, O or V. GIR 0AA is the one historic exception.
_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
_POSTCODE = re.compile(rf"^({_OUTWARD})([0-9][ABD-HJLNP-UW-Z]{{2}})$")
_OUTWARD_ONLY = re.compile(rf"^{_OUTWARD}$")


def standardise_postcode(raw: str) -> tuple[str | None, str]:
    """Return (inward, outward): inward is None for an outward-only (district) postcode."""
    text = _NOT_ALNUM.sub("", ascii_upper(raw))
    if text == "GIR0AA":
        return "0AA", "GIR"
    m = _POSTCODE.match(text)
    if m:
        return m.group(2), m.group(1)
    if _OUTWARD_ONLY.match(text):
        return None, text
    raise InvalidValue("not a UK postcode")


# --- national ids ----------------------------------------------------------------------------------

# PNC ids: YYYY/NNNNNNNC (or the short YY/NNNNNNC), C = check letter over the two-digit year and the
# zero-padded serial: "ZABCDEFGHJKLMNPQRTUVWXY"[int(YY + NNNNNNN) % 23] (I, O and S are not used).
PNC_CHECK_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"
# With a slash the serial may be unpadded; without one it must be the full 7 digits (else ambiguous).
_PNC = re.compile(r"^(?:(\d{2}|\d{4})/(\d{1,7})|(\d{2}|\d{4})(\d{7}))([A-Z])$")


def pnc_check_letter(year2: str, serial7: str) -> str:
    return PNC_CHECK_LETTERS[int(year2 + serial7) % 23]


def standardise_pnc(raw: str) -> str:
    """Canonical 'YY/NNNNNNNC' (two-digit year, zero-padded serial) after checking the check letter."""
    text = _SPACE.sub("", raw.upper())
    m = _PNC.match(text)
    if not m:
        raise InvalidValue("PNC id is not YYYY/NNNNNNNC, YY/NNNNNNNC or YYYYNNNNNNNC")
    year, serial = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    year2, serial7, check = year[-2:], serial.zfill(7), m.group(5)
    if pnc_check_letter(year2, serial7) != check:
        raise InvalidValue("PNC id check character is wrong")
    return f"{year2}/{serial7}{check}"


def standardise_reference(raw: str) -> str | None:
    """Case references and record ids: upper-case ASCII letters and digits only."""
    return _NOT_ALNUM.sub("", ascii_upper(raw)) or None


# --- whole-column forms (Arrow) ------------------------------------------------------------------
# For identifiers unique to (nearly) every row, the engine standardises whole columns in Arrow instead
# of calling the functions above once per value. They are the same rules restricted to ASCII text
# (the caller sends any column holding other text down the per-value path), and property tests in
# tests/test_standardise.py check that they agree with the per-value functions.

ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() and regex \s match in ASCII
_PNC_PARTS = r"^(?:(?P<y1>\d{2}|\d{4})/(?P<s1>\d{1,7})|(?P<y2>\d{2}|\d{4})(?P<s2>\d{7}))(?P<check>[A-Z])$"
_PNC_NO_MATCH = "PNC id is not YYYY/NNNNNNNC, YY/NNNNNNNC or YYYYNNNNNNNC"
_PNC_BAD_CHECK = "PNC id check character is wrong"


def is_ascii(values: pa.Array) -> bool:
    """True if every (non-NULL) string is ASCII: the whole-column forms then apply."""
    return pc.all(pc.string_is_ascii(values)).as_py() is not False


def references_ascii(values: pa.Array) -> pa.Array:
    """``standardise_reference`` of every value of an ASCII string array ('' becomes NULL)."""
    standard = pc.replace_substring_regex(pc.ascii_upper(values), "[^A-Z0-9]", "")
    return pc.if_else(pc.equal(standard, ""), None, standard)


def pncs_ascii(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``standardise_pnc`` of every value of an ASCII string array: (standard forms, error reasons).

    Where a value is invalid its standard form is NULL and its reason is the message
    ``standardise_pnc`` raises; elsewhere the reason is NULL.
    """
    text = pc.replace_substring_regex(pc.ascii_upper(values), f"[{re.escape(ASCII_WHITESPACE)}]", "")
    parts = pc.extract_regex(text, _PNC_PARTS)
    matched = pc.is_valid(parts)
    slash = pc.not_equal(pc.struct_field(parts, "y1"), "")
    year2 = pc.utf8_slice_codeunits(
        pc.if_else(slash, pc.struct_field(parts, "y1"), pc.struct_field(parts, "y2")), -2
    )
    serial7 = pc.utf8_lpad(
        pc.if_else(slash, pc.struct_field(parts, "s1"), pc.struct_field(parts, "s2")), 7, "0"
    )
    number = pc.cast(pc.fill_null(pc.binary_join_element_wise(year2, serial7, ""), "0"), pa.int64())
    expected = pc.take(pa.array(list(PNC_CHECK_LETTERS)), pc.modulo(number, 23))
    check = pc.struct_field(parts, "check")
    good = pc.and_(matched, pc.equal(pc.fill_null(check, ""), expected))
    standard = pc.if_else(good, pc.binary_join_element_wise(year2, "/", serial7, check, ""), None)
    reason = pc.if_else(
        pc.is_null(values), None, pc.if_else(matched, pc.if_else(good, None, _PNC_BAD_CHECK), _PNC_NO_MATCH)
    )
    return standard, reason
