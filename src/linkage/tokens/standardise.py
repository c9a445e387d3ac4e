"""Standardisation rules of token spec v2 (docs/token-spec.md is the normative text).

Every agency must turn the same person's identifiers into the same strings before hashing, so each
rule here is deliberately simple enough to reimplement in another language. Functions return the
standard form, ``None`` for a missing value, or raise ``InvalidValue`` (whose message never
contains the value itself, so it is safe to log). An identifier that parses but fails only its check
character comes back with ``verified=False``: it is still tokenised, as weak evidence.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

import jellyfish
import pyarrow as pa
import pyarrow.compute as pc
from anyascii import anyascii

from linkage.tokens.spec import GENERIC_POSTCODE_DISTRICT, GENERIC_POSTCODE_SECTOR


class InvalidValue(ValueError):
    """A present value that fails validation. The message names the rule, never the value."""


@dataclass(frozen=True)
class IdValue:
    """A parsed identifier: its canonical form, and whether its check character/modulus held."""

    canonical: str
    verified: bool


# --- text: invisible characters, homoglyphs, transliteration -------------------------------------

# Cyrillic and Greek letters drawn like Latin ones. Applied only to a value that mixes Latin with
# another script (a Latin name with one look-alike typed in, e.g. Cyrillic 'С' in 'Сarter'), before
# transliteration; a name wholly in Cyrillic or Greek is transliterated instead. Written out because
# the mapping is part of the spec and must not change with a dependency.
_HOMOGLYPHS = str.maketrans(
    {
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
        "Т": "T", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "а": "a", "е": "e", "о": "o", "р": "p",
        "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "Α": "A", "Β": "B", "Ε": "E",
        "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
        "Υ": "Y", "Χ": "X", "ο": "o",
    }
)  # fmt: skip


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name's first word (LATIN, CYRILLIC, CJK, ...)."""
    return unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]


def text_notes(raw: str) -> tuple[str, ...]:
    """What standardisation had to do to a non-ASCII value (counted in the manifest, never logged)."""
    if raw.isascii():
        return ()
    notes = []
    if any(unicodedata.category(c) == "Cf" for c in raw):
        notes.append("invisible characters removed")
    scripts = {_script(c) for c in raw if c.isalpha()}
    if len(scripts) > 1:
        notes.append("mixed scripts")
    if scripts - {"LATIN"}:
        notes.append("transliterated")
    return tuple(notes)


def ascii_upper(raw: str) -> str:
    """Invisible (format) characters removed, homoglyphs folded, transliterated (anyascii), upper-cased."""
    if raw.isascii():  # the common case: nothing to do but upper-case
        return raw.upper()
    text = "".join(c for c in unicodedata.normalize("NFC", raw) if unicodedata.category(c) != "Cf")
    scripts = {_script(c) for c in text if c.isalpha()}
    if "LATIN" in scripts and len(scripts) > 1:
        text = text.translate(_HOMOGLYPHS)
    return anyascii(text).upper()


def anyascii_table_sha256() -> str:
    """SHA-256 of anyascii's whole table (spec.ANYASCII_TABLE_SHA256 pins it)."""
    h = hashlib.sha256()
    for c in range(0x110000):
        h.update(("" if 0xD800 <= c <= 0xDFFF else anyascii(chr(c))).encode() + b"\x1f")
    return h.hexdigest()


# --- names -----------------------------------------------------------------------------------------

_APOSTROPHES = re.compile(r"['`.]")  # removed: O'Brien -> OBRIEN, St. John -> ST JOHN
_NON_LETTERS = re.compile(r"[^A-Z]+")  # everything else (spaces, hyphens, digits) separates parts
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_SPACE = re.compile(r"\s")

TITLES = frozenset({"MR", "MRS", "MS", "MISS", "MX", "DR", "SIR", "DAME", "LORD", "LADY", "REV", "PROF"})
SUFFIXES = frozenset({"JR", "JNR", "JUNIOR", "SR", "SNR", "SENIOR", "II", "III", "IV"})


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


# Layouts of a single name column, tried in the order the config lists them.
NAME_LAYOUTS = ("SURNAME, Forenames", "Forenames SURNAME", "SURNAME Forenames", "upper-case SURNAME")


def _upper_word(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def split_full_name(raw: str, layout: str) -> tuple[str, str]:
    """Split one name column into (forenames, surname) by one layout; InvalidValue if it does not fit."""
    if layout == "SURNAME, Forenames":
        surname, sep, forenames = raw.partition(",")
        if not sep or not surname.strip() or not forenames.strip():
            raise InvalidValue("name has no comma between surname and forenames")
        return forenames, surname
    words = raw.replace(",", " ").split()
    if len(words) < 2:
        raise InvalidValue("name has fewer than two words")
    if layout == "Forenames SURNAME":
        return " ".join(words[:-1]), words[-1]
    if layout == "SURNAME Forenames":
        return " ".join(words[1:]), words[0]
    # "upper-case SURNAME": the one run of upper-case words is the surname, the other words forenames
    upper = [i for i, w in enumerate(words) if _upper_word(w)]
    if not upper or len(upper) == len(words) or upper != list(range(upper[0], upper[-1] + 1)):
        raise InvalidValue("name has no single run of upper-case words")
    rest = [w for i, w in enumerate(words) if i not in set(upper)]
    return " ".join(rest), " ".join(words[i] for i in upper)


def split_full_name_layouts(raw: str, layouts: list[str]) -> tuple[str, str, str]:
    """The first layout that fits: (forenames, surname, layout)."""
    for layout in layouts:
        try:
            return (*split_full_name(raw, layout), layout)
        except InvalidValue:
            continue
    raise InvalidValue("name fits none of the configured layouts")


def phonetic(name: str) -> str:
    """NYSIIS code of a standardised name (jellyfish's implementation, pinned by the test vectors)."""
    return jellyfish.nysiis(name)


# --- dates -----------------------------------------------------------------------------------------

EARLIEST_BIRTH = date(1900, 1, 1)
DEFAULT_PLACEHOLDER_DATES = ("*-01-01", "1900-01-01")


def parse_date(raw: str, formats: list[str]) -> date:
    """Parse with the first matching strptime format; raise InvalidValue if none match."""
    text = raw.strip()
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidValue("date matches none of the formats")


def check_birth_date(d: date, today: date | None = None) -> date:
    """A date of birth must lie between 1900-01-01 and today."""
    if d < EARLIEST_BIRTH or d > (today or date.today()):
        raise InvalidValue("date of birth outside 1900-01-01 .. today")
    return d


def _swap_format(fmt: str) -> str | None:
    """The format with its day and month directives exchanged (None without a numeric month)."""
    if "%d" not in fmt or "%m" not in fmt:
        return None
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def read_birth_date(raw: str, formats: list[str], today: date | None = None) -> tuple[date, bool]:
    """(date, swapped): as written if valid, else read with day and month exchanged if that is valid.

    A date valid only swapped (20042803 as %Y%m%d) is kept as weak evidence: the caller puts it in
    ``dob_swap`` only, never in ``dob``.
    """
    try:
        return check_birth_date(parse_date(raw, formats), today), False
    except InvalidValue as first:
        swapped = [f for f in map(_swap_format, formats) if f]
        if not swapped:
            raise
        try:
            return check_birth_date(parse_date(raw, swapped), today), True
        except InvalidValue:
            raise first from None


def is_placeholder(d: date, placeholders: list[str]) -> bool:
    """True if ``d`` matches a placeholder: 'YYYY-MM-DD', or '*-MM-DD' for any year."""
    iso = d.isoformat()
    return any(iso == p or (p.startswith("*-") and iso[4:] == p[1:]) for p in placeholders)


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


def standardise_generic_postcode(raw: str) -> tuple[str, str | None, str | None]:
    """A postal code of any country: (alphanumerics, sector prefix, district prefix).

    Prefixes exist only when shorter than the code: a US ZIP 90210 gives ('90210', '9021', '902').
    """
    text = _NOT_ALNUM.sub("", ascii_upper(raw))
    if not 3 <= len(text) <= 10:
        raise InvalidValue("postal code is not 3-10 letters and digits")
    sector = text[:GENERIC_POSTCODE_SECTOR] if len(text) > GENERIC_POSTCODE_SECTOR else None
    district = text[:GENERIC_POSTCODE_DISTRICT] if len(text) > GENERIC_POSTCODE_DISTRICT else None
    return text, sector, district


# --- national ids ----------------------------------------------------------------------------------

# PNC ids: YYYY/NNNNNNNC (or the short YY/NNNNNNC), C = check letter over the two-digit year and the
# zero-padded serial: "ZABCDEFGHJKLMNPQRTUVWXY"[int(YY + NNNNNNN) % 23] (I, O and S are not used).
# CRO numbers use the same letters over YY + the serial (zero-padded to 6 in the NNNNNN/YYC form).
CHECK_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"
# With a slash the serial may be unpadded; without one it must be the full 7 digits (else ambiguous).
_PNC = re.compile(r"^(?:(\d{2}|\d{4})/(\d{1,7})|(\d{2}|\d{4})(\d{7}))([A-Z])$")
_CRO = re.compile(r"^(\d{1,6})/(\d{2})([A-Z])$")
_CRO_SF = re.compile(r"^SF(\d{2})/(\d{1,6})([A-Z])$")
_NI = re.compile(r"^([A-Z]{2})(\d{6})([A-Z]?)$")
_NI_PREFIX = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]$")
_NI_NOT_ALLOCATED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_NHS = re.compile(r"^\d{10}$")
_ID_SEPARATORS = re.compile(r"[\s-]")


def pnc_check_letter(year2: str, serial7: str) -> str:
    return CHECK_LETTERS[int(year2 + serial7) % 23]


def standardise_pnc(raw: str) -> IdValue:
    """Canonical 'YY/NNNNNNNC' (two-digit year, zero-padded serial); verified if the check letter holds."""
    text = _SPACE.sub("", raw.upper())
    m = _PNC.match(text)
    if not m:
        raise InvalidValue("not a PNC id (YYYY/NNNNNNNC, YY/NNNNNNNC or YYYYNNNNNNNC)")
    year, serial = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    year2, serial7, check = year[-2:], serial.zfill(7), m.group(5)
    return IdValue(f"{year2}/{serial7}{check}", pnc_check_letter(year2, serial7) == check)


def standardise_cro(raw: str) -> IdValue:
    """Canonical 'NNNNNN/YYC' (serial zero-padded) or 'SFYY/NNNNNNC'; verified if the check letter holds."""
    text = _SPACE.sub("", raw.upper())
    if m := _CRO.match(text):
        serial6, year2, check = m.group(1).zfill(6), m.group(2), m.group(3)
        return IdValue(f"{serial6}/{year2}{check}", CHECK_LETTERS[int(year2 + serial6) % 23] == check)
    if m := _CRO_SF.match(text):
        year2, serial, check = m.groups()
        return IdValue(f"SF{year2}/{serial}{check}", CHECK_LETTERS[int(year2 + serial) % 23] == check)
    raise InvalidValue("not a CRO number (NNNNNN/YYC or SFYY/NNNNNNC)")


def standardise_ni(raw: str) -> IdValue:
    """Canonical 'AA999999' (the A-D suffix dropped: it is not part of the identity, often missing).

    Verified when the prefix is one HMRC allocates and the suffix, if any, is A-D.
    """
    m = _NI.match(_ID_SEPARATORS.sub("", raw.upper()))
    if not m:
        raise InvalidValue("not a National Insurance number (AA999999A)")
    prefix, digits, suffix = m.groups()
    ok = (
        bool(_NI_PREFIX.match(prefix))
        and prefix not in _NI_NOT_ALLOCATED
        and suffix in ("", "A", "B", "C", "D")
    )
    return IdValue(prefix + digits, ok)


def standardise_nhs(raw: str) -> IdValue:
    """Ten digits; verified by the modulus 11 check digit (weights 10..2)."""
    text = _ID_SEPARATORS.sub("", raw)
    if not _NHS.match(text) or not text.isascii():
        raise InvalidValue("not an NHS number (ten digits)")
    check = 11 - sum(int(c) * w for c, w in zip(text[:9], range(10, 1, -1), strict=True)) % 11
    return IdValue(text, (0 if check == 11 else check) == int(text[9]))


NATIONAL_ID_PARSERS = {
    "pnc": standardise_pnc,
    "cro": standardise_cro,
    "ni_number": standardise_ni,
    "nhs_number": standardise_nhs,
}


def standardise_generic_id(raw: str, pattern: re.Pattern[str], normalise: str) -> str:
    """A generic id: upper-case letters and digits ('alnum') or digits only ('digits'), then ``pattern``."""
    text = _NOT_ALNUM.sub("", ascii_upper(raw))
    if normalise == "digits":
        text = re.sub(r"[^0-9]", "", text)
    if not text or not pattern.fullmatch(text):
        raise InvalidValue("id does not match the configured pattern")
    return text


def standardise_reference(raw: str) -> str | None:
    """Case references and record ids: upper-case ASCII letters and digits only."""
    return _NOT_ALNUM.sub("", ascii_upper(raw)) or None


# --- addresses -------------------------------------------------------------------------------------

# Street-type abbreviations written out, so '12 High St' and '12 High Street' agree.
STREET_ABBREVIATIONS = {
    "ST": "STREET", "RD": "ROAD", "AVE": "AVENUE", "AV": "AVENUE", "LN": "LANE", "DR": "DRIVE",
    "CL": "CLOSE", "CRES": "CRESCENT", "CT": "COURT", "PL": "PLACE", "SQ": "SQUARE", "GDNS": "GARDENS",
    "TER": "TERRACE", "TERR": "TERRACE", "GRN": "GREEN", "PK": "PARK", "HWY": "HIGHWAY",
    "BLVD": "BOULEVARD", "BVD": "BOULEVARD", "WY": "WAY", "GR": "GROVE", "MT": "MOUNT",
}  # fmt: skip
_HOUSE_NUMBER = re.compile(r"^\d{1,5}[A-Z]?$")


def _words(raw: str) -> list[str]:
    return [w for w in _NON_LETTERS.split(_APOSTROPHES.sub("", ascii_upper(raw).replace("&", " AND "))) if w]


def standardise_street(raw: str) -> str | None:
    """Street words, upper-case A-Z, street-type abbreviations written out (the last word only)."""
    words = _words(raw)
    if words and words[-1] in STREET_ABBREVIATIONS:
        words[-1] = STREET_ABBREVIATIONS[words[-1]]
    return " ".join(words) or None


def standardise_town(raw: str) -> str | None:
    return " ".join(_words(raw)) or None


def split_address_line(raw: str) -> tuple[str | None, str | None]:
    """(house number, street) from a line such as 'Flat 2, 12a High St': the comma-part starting with a
    number gives both; without one the whole line is the street."""
    parts = [p.strip() for p in ascii_upper(raw).split(",") if p.strip()]
    for part in parts:
        tokens = part.split()
        if len(tokens) > 1 and _HOUSE_NUMBER.match(tokens[0]):
            return tokens[0], standardise_street(" ".join(tokens[1:]))
    return None, standardise_street(parts[0]) if parts else None


def standardise_house_number(raw: str) -> str | None:
    text = _NOT_ALNUM.sub("", ascii_upper(raw))
    if not text:
        return None
    if not _HOUSE_NUMBER.match(text):
        raise InvalidValue("house number is not digits with an optional letter")
    return text.lstrip("0") or "0"


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# --- whole-column forms (Arrow) ------------------------------------------------------------------
# For identifiers unique to (nearly) every row, the engine standardises whole columns in Arrow instead
# of calling the functions above once per value. They are the same rules restricted to ASCII text
# (the caller sends any column holding other text down the per-value path), and property tests in
# tests/test_standardise.py check that they agree with the per-value functions.

ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() and regex \s match in ASCII
_PNC_PARTS = r"^(?:(?P<y1>\d{2}|\d{4})/(?P<s1>\d{1,7})|(?P<y2>\d{2}|\d{4})(?P<s2>\d{7}))(?P<check>[A-Z])$"
PNC_NO_MATCH = "not a PNC id (YYYY/NNNNNNNC, YY/NNNNNNNC or YYYYNNNNNNNC)"


def is_ascii(values: pa.Array) -> bool:
    """True if every (non-NULL) string is ASCII: the whole-column forms then apply."""
    return pc.all(pc.string_is_ascii(values)).as_py() is not False


def references_ascii(values: pa.Array) -> pa.Array:
    """``standardise_reference`` of every value of an ASCII string array ('' becomes NULL)."""
    standard = pc.replace_substring_regex(pc.ascii_upper(values), "[^A-Z0-9]", "")
    return pc.if_else(pc.equal(standard, ""), None, standard)


def pncs_ascii(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``standardise_pnc`` of every value of an ASCII string array: (canonical forms, verified).

    Where a value does not parse both are NULL; where it parses but its check letter is wrong the
    canonical form is kept and ``verified`` is False.
    """
    text = pc.replace_substring_regex(pc.ascii_upper(values), f"[{re.escape(ASCII_WHITESPACE)}]", "")
    parts = pc.extract_regex(text, _PNC_PARTS)
    slash = pc.not_equal(pc.struct_field(parts, "y1"), "")
    year2 = pc.utf8_slice_codeunits(
        pc.if_else(slash, pc.struct_field(parts, "y1"), pc.struct_field(parts, "y2")), -2
    )
    serial7 = pc.utf8_lpad(
        pc.if_else(slash, pc.struct_field(parts, "s1"), pc.struct_field(parts, "s2")), 7, "0"
    )
    number = pc.cast(pc.fill_null(pc.binary_join_element_wise(year2, serial7, ""), "0"), pa.int64())
    expected = pc.take(pa.array(list(CHECK_LETTERS)), pc.modulo(number, 23))
    check = pc.struct_field(parts, "check")
    standard = pc.binary_join_element_wise(year2, "/", serial7, check, "")
    return standard, pc.equal(check, expected)
