"""Property tests for the standardisation rules of token spec v2 (hypothesis)."""

from __future__ import annotations

import unicodedata
from datetime import date

import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from linkage.tokens import standardise as s

letters = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
name_words = st.lists(letters, min_size=1, max_size=4)
ACCENTED = {"E": "É", "A": "Á", "O": "Ö", "U": "Ü", "I": "Î", "C": "Ç", "N": "Ñ"}


def std(raw: str) -> list[str]:
    return s.name_parts(raw)


@given(st.text(max_size=40))
def test_name_standardisation_is_idempotent(raw):
    parts = std(raw)
    assert std(" ".join(parts)) == parts
    assert all(p.isascii() and p.isalpha() and p.isupper() for p in parts)


@given(name_words)
def test_names_ignore_case(words):
    raw = " ".join(words)
    assert std(raw.lower()) == std(raw.upper()) == std(raw.swapcase())


@given(name_words)
def test_names_ignore_accents(words):
    raw = " ".join(words).upper()
    accented = "".join(ACCENTED.get(c, c) for c in raw)
    assert std(accented) == std(raw)
    assert std(unicodedata.normalize("NFD", accented)) == std(unicodedata.normalize("NFC", accented))


@given(name_words, st.lists(st.sampled_from([" ", "  ", "\t", " - ", ", "]), min_size=4, max_size=4))
def test_names_ignore_spacing_and_separators(words, seps):
    tight = " ".join(words)
    loose = "  " + "".join(w + seps[i % len(seps)] for i, w in enumerate(words)) + " "
    assert std(loose) == std(tight)


@given(name_words)
def test_names_ignore_apostrophes_and_dots(words):
    raw = " ".join(words)
    assert std(raw.replace("A", "'A").replace("E", "E.")) == std(raw.replace("'", ""))


def test_titles_and_suffixes():
    assert s.forename_parts(["Mr", "John"]) == ["JOHN"]
    assert s.forename_parts(["Dr. Mary-Jane"]) == ["MARY", "JANE"]
    assert s.surname_parts("Smith Jr") == ["SMITH"]
    assert s.forename_parts(["Mrs"]) == []  # a bare title is a missing name, not a name


def test_full_name_layouts():
    assert s.split_full_name("SMITH-JONES, Anna Maria", "SURNAME, Forenames") == (
        " Anna Maria",
        "SMITH-JONES",
    )
    assert s.split_full_name("Anna Maria Smith", "Forenames SURNAME") == ("Anna Maria", "Smith")
    assert s.split_full_name("Smith Anna Maria", "SURNAME Forenames") == ("Anna Maria", "Smith")
    assert s.split_full_name("Anna Maria VAN DER BERG", "upper-case SURNAME") == (
        "Anna Maria",
        "VAN DER BERG",
    )
    assert s.split_full_name("SMITH Anna", "upper-case SURNAME") == ("Anna", "SMITH")
    for raw, layout in [
        ("Anna Smith", "SURNAME, Forenames"),
        ("Smith", "Forenames SURNAME"),
        ("ANNA SMITH", "upper-case SURNAME"),  # every word upper-case: no way to tell
        ("Anna Smith", "upper-case SURNAME"),
        ("SMITH Anna JONES", "upper-case SURNAME"),  # two separate runs
    ]:
        with pytest.raises(s.InvalidValue):
            s.split_full_name(raw, layout)


def test_full_name_layouts_are_tried_in_order():
    layouts = ["SURNAME, Forenames", "upper-case SURNAME"]
    assert s.split_full_name_layouts("SMITH, John", layouts) == (" John", "SMITH", "SURNAME, Forenames")
    assert s.split_full_name_layouts("John SMITH", layouts) == ("John", "SMITH", "upper-case SURNAME")
    with pytest.raises(s.InvalidValue, match="none of the configured layouts"):
        s.split_full_name_layouts("john smith", layouts)


# --- non-Latin scripts, homoglyphs, invisible characters -------------------------------------------

# The same person written in Latin and in their own script (a table test: exact agreement is expected
# for alphabetic scripts; Arabic omits short vowels, so it does not agree).
SAME_PERSON = [  # (Latin, original script, exact agreement after transliteration)
    ("Ivan", "Иван", True),
    ("Petrov", "Петров", True),
    ("Olga", "Ольга", True),
    ("Dmitri", "Дмитрий", False),  # DMITRIY: transliteration convention, caught by the first-3 token
    ("Natalia", "Наталья", False),
    ("Nikos", "Νίκος", True),
    ("Papadopoulos", "Παπαδόπουλος", False),  # PAPADOPOYLOS
    ("Eleni", "Ελένη", True),
    ("Georgios", "Γεώργιος", True),
    ("Wang", "王", True),
    ("Li", "李", True),
    ("Mohammed", "محمد", False),  # MHMD: Arabic script omits short vowels
    ("Fatima", "فاطمة", False),
    ("David", "דוד", False),  # DVD: so does Hebrew
]


@pytest.mark.parametrize("latin, original, agrees", SAME_PERSON)
def test_same_person_in_latin_and_original_script(latin, original, agrees):
    parts = s.name_parts(original)
    assert parts and all(p.isascii() and p.isalpha() for p in parts)  # never NULL, never non-ASCII
    assert (parts == s.name_parts(latin)) is agrees
    assert "transliterated" in s.text_notes(original)


def test_homoglyph_in_a_latin_name_is_folded_not_transliterated():
    cyrillic_c = "\u0421arter"  # Cyrillic capital ES, drawn like C
    assert s.name_parts(cyrillic_c) == ["CARTER"]
    assert s.text_notes(cyrillic_c) == ("mixed scripts", "transliterated")
    assert s.name_parts("\u0405mith") == ["SMITH"]  # Cyrillic DZE drawn like S


@given(name_words, st.sampled_from(["\u200b", "\u200c", "\u200d", "\u00ad", "\ufeff", "\u2060"]))
def test_invisible_characters_never_split_or_change_a_name(words, invisible):
    raw = " ".join(words)
    spiked = "".join(c + invisible if i % 2 else c for i, c in enumerate(raw))
    assert s.name_parts(spiked) == s.name_parts(raw)
    assert spiked == raw or "invisible characters removed" in s.text_notes(spiked)


# --- national ids -----------------------------------------------------------------------------------


@given(st.integers(0, 99), st.integers(1, 9_999_999), st.booleans(), st.booleans())
def test_valid_pnc_accepted_in_every_form(year, serial, long_year, pad):
    yy = f"{year:02d}"
    letter = s.CHECK_LETTERS[int(yy + f"{serial:07d}") % 23]
    y = (f"19{yy}" if year > 30 else f"20{yy}") if long_year else yy
    raw = f"{y}/{serial:07d}{letter}" if pad else f"{y}/{serial}{letter}"
    expected = s.IdValue(f"{yy}/{serial:07d}{letter}", True)
    assert s.standardise_pnc(raw) == expected
    assert s.standardise_pnc(raw.lower()) == expected
    assert s.standardise_pnc(" ".join(raw)) == expected  # spaced out
    if pad:  # without the slash the serial must be zero-padded to 7 digits
        assert s.standardise_pnc(raw.replace("/", "")) == expected


@given(st.integers(0, 99), st.integers(1, 9_999_999), st.sampled_from(s.CHECK_LETTERS))
def test_wrong_pnc_check_letter_is_kept_unverified(year, serial, letter):
    yy = f"{year:02d}"
    assume(letter != s.CHECK_LETTERS[int(yy + f"{serial:07d}") % 23])
    assert s.standardise_pnc(f"{yy}/{serial:07d}{letter}") == s.IdValue(f"{yy}/{serial:07d}{letter}", False)


@pytest.mark.parametrize(
    "raw", ["", "2001/", "ABCD/1234567A", "2001/12345678A", "2001/1234567", "2001/1234567AB", "123456/89W"]
)
def test_malformed_pnc_rejected_without_echoing_the_value(raw):
    with pytest.raises(s.InvalidValue) as exc:
        s.standardise_pnc(raw)
    assert not raw or raw not in str(exc.value)


@given(st.integers(1, 999_999), st.integers(0, 99))
def test_cro_check_letter(serial, year):
    yy = f"{year:02d}"
    letter = s.CHECK_LETTERS[int(yy + f"{serial:06d}") % 23]
    assert s.standardise_cro(f"{serial}/{yy}{letter.lower()}") == s.IdValue(
        f"{serial:06d}/{yy}{letter}", True
    )
    wrong = s.CHECK_LETTERS[(s.CHECK_LETTERS.index(letter) + 1) % 23]
    assert not s.standardise_cro(f"{serial:06d}/{yy}{wrong}").verified


def test_cro_forms():
    assert s.standardise_cro("SF95/123456K") == s.IdValue("SF95/123456K", True)
    with pytest.raises(s.InvalidValue):
        s.standardise_cro("01/0012345H")  # a PNC id is not a CRO number


def test_ni_number():
    assert s.standardise_ni("ab 12 34 56 c") == s.IdValue("AB123456", True)
    assert s.standardise_ni("AB123456") == s.IdValue("AB123456", True)  # the suffix is optional
    assert s.standardise_ni("AB-12-34-56-C") == s.IdValue("AB123456", True)
    for unallocated in ("TN123456A", "DA123456A", "AO123456A", "AB123456E"):
        assert not s.standardise_ni(unallocated).verified
    for bad in ("A1234567", "AB12345", "123456789"):
        with pytest.raises(s.InvalidValue):
            s.standardise_ni(bad)


@given(st.integers(0, 999_999_999))
def test_nhs_number_modulus_11(first9):
    digits = f"{first9:09d}"
    check = 11 - sum(int(c) * w for c, w in zip(digits, range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    if check == 10:  # no valid check digit exists: any tenth digit is unverified
        assert not s.standardise_nhs(digits + "0").verified
        return
    spaced = f"{digits[:3]} {digits[3:6]} {digits[6:]}{check}"
    assert s.standardise_nhs(spaced) == s.IdValue(digits + str(check), True)
    assert not s.standardise_nhs(digits + str((check + 1) % 10)).verified


def test_generic_ids():
    ssn = s.compiled(r"^\d{9}$")
    assert s.standardise_generic_id("123-45-6789", ssn, "digits") == "123456789"
    assert s.standardise_generic_id(" 123 45 6789 ", ssn, "alnum") == "123456789"
    with pytest.raises(s.InvalidValue):
        s.standardise_generic_id("12-34", ssn, "digits")


# --- addresses and generic postal codes -------------------------------------------------------------


def test_addresses():
    assert s.split_address_line("12a High St") == ("12A", "HIGH STREET")
    assert s.split_address_line("Flat 2, 12A High Street") == ("12A", "HIGH STREET")
    assert s.split_address_line("Rose Cottage") == (None, "ROSE COTTAGE")
    assert s.standardise_house_number("007") == "7"
    assert s.standardise_town("St. Albans") == "ST ALBANS"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("90210", ("90210", "9021", "902")),
        ("2000", ("2000", None, "200")),
        ("k1a-0b1", ("K1A0B1", "K1A0", "K1A")),
    ],
)
def test_generic_postcodes(raw, expected):
    assert s.standardise_generic_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["12", "12345678901", "--"])
def test_generic_postcode_length(raw):
    with pytest.raises(s.InvalidValue):
        s.standardise_generic_postcode(raw)


# --- dates ----------------------------------------------------------------------------------------

FORMATS = ["%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%Y%m%d", "%d.%m.%Y"]


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)), st.sampled_from(FORMATS))
def test_dates_round_trip_through_every_format(d, fmt):
    raw = d.strftime(fmt)
    assert s.parse_date(raw, [fmt]) == d
    assert s.parse_date(f"  {raw} ", [fmt]) == d


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
def test_swapped_date_is_an_involution(d):
    swap = s.swapped_date(d)
    if swap is None:
        assert d.day > 12 or d.day == d.month
    else:
        assert (swap.day, swap.month) == (d.month, d.day)
        assert s.swapped_date(swap) == d


@pytest.mark.parametrize("raw", ["31/02/1990", "1990-03-05", "00/01/1990", "05/13/1990", "yesterday", ""])
def test_unparseable_dates_rejected_without_echoing_the_value(raw):
    with pytest.raises(s.InvalidValue) as exc:
        s.parse_date(raw, ["%d/%m/%Y"])
    assert raw not in str(exc.value) or raw == ""


@given(st.dates(min_value=date(1900, 1, 13), max_value=date(2025, 12, 31)))
def test_date_valid_only_swapped_is_read_swapped(d):
    assume(d.day > 12)  # written month-first, impossible as day-first
    raw = f"{d.month:02d}/{d.day:02d}/{d.year}"
    assert s.read_birth_date(raw, ["%d/%m/%Y"]) == (d, True)
    assert s.read_birth_date(d.strftime("%d/%m/%Y"), ["%d/%m/%Y"]) == (d, False)


def test_date_invalid_either_way_and_month_names_are_not_swapped():
    with pytest.raises(s.InvalidValue):
        s.read_birth_date("31/31/1990", ["%d/%m/%Y"])
    with pytest.raises(s.InvalidValue):
        s.read_birth_date("31-Feb-1990", ["%d-%b-%Y"])
    assert s.read_birth_date("20042803", ["%Y%m%d"]) == (date(2004, 3, 28), True)  # the SSA case


def test_placeholder_dates():
    placeholders = list(s.DEFAULT_PLACEHOLDER_DATES)
    assert s.is_placeholder(date(1985, 1, 1), placeholders)
    assert s.is_placeholder(date(1900, 1, 1), placeholders)
    assert not s.is_placeholder(date(1985, 1, 2), placeholders)
    assert s.is_placeholder(date(1970, 7, 1), ["1970-07-01"]) and not s.is_placeholder(
        date(1971, 7, 1), ["1970-07-01"]
    )


def test_birth_date_range():
    assert s.check_birth_date(date(1950, 1, 1)) == date(1950, 1, 1)
    for bad in (date(1899, 12, 31), date(2999, 1, 1)):
        with pytest.raises(s.InvalidValue):
            s.check_birth_date(bad)


# --- postcodes ------------------------------------------------------------------------------------

INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
outward = st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]?\Z")
inward = st.builds(
    lambda d, a, b: f"{d}{a}{b}",
    st.integers(0, 9),
    st.sampled_from(INWARD_LETTERS),
    st.sampled_from(INWARD_LETTERS),
)


@given(outward, inward, st.sampled_from(["", " ", "  ", "\t"]), st.booleans())
def test_postcodes_normalise_spacing_and_case(out, inw, sep, lower):
    raw = f" {out}{sep}{inw} "
    raw = raw.lower() if lower else raw
    assert s.standardise_postcode(raw) == (inw, out)


@pytest.mark.parametrize("raw", ["SW1A 1AC", "1AA SW1", "ZZZZ", "SW1A 1A", "12345"])
def test_invalid_postcodes_rejected(raw):
    with pytest.raises(s.InvalidValue):
        s.standardise_postcode(raw)


def test_outward_only_postcode_is_a_district():
    assert s.standardise_postcode("cr2") == (None, "CR2")


@given(st.text(max_size=20))
def test_reference_standardisation_idempotent(raw):
    ref = s.standardise_reference(raw)
    assert ref is None or s.standardise_reference(ref) == ref


# --- whole-column (Arrow) forms agree with the per-value rules ------------------------------------

ascii_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=16)
pnc_like = st.text(alphabet="0123456789/ ZABCDHKXYzabh\t\x1c\x1f-.", max_size=16)


def _per_value_pnc(raw: str) -> tuple[str | None, bool | None]:
    try:
        value = s.standardise_pnc(raw)
    except s.InvalidValue:
        return None, None
    return value.canonical, value.verified


@settings(deadline=None)  # the first call compiles Arrow's regex: slow on a busy machine
@given(st.lists(ascii_text, max_size=20))
def test_references_ascii_matches_standardise_reference(raws):
    expected = [s.standardise_reference(r) for r in raws]
    assert s.references_ascii(pa.array(raws, type=pa.string())).to_pylist() == expected


@given(
    st.lists(
        st.one_of(
            pnc_like,
            st.builds(
                lambda y, n, c, slash: f"{y:02d}{'/' if slash else ''}{n:07d}{c}",
                st.integers(0, 99),
                st.integers(0, 9_999_999),
                st.sampled_from(s.CHECK_LETTERS),
                st.booleans(),
            ),
        ),
        max_size=20,
    )
)
def test_pncs_ascii_matches_standardise_pnc(raws):
    standard, verified = s.pncs_ascii(pa.array(raws, type=pa.string()))
    assert list(zip(standard.to_pylist(), verified.to_pylist(), strict=True)) == [
        _per_value_pnc(r) for r in raws
    ]


def test_whole_column_forms_keep_nulls_and_detect_non_ascii():
    values = pa.array(["01/1234567Z", None], type=pa.string())
    assert s.pncs_ascii(values)[0].to_pylist()[1] is None
    assert s.references_ascii(values).to_pylist()[1] is None
    assert s.is_ascii(values) and not s.is_ascii(pa.array(["é"]))
