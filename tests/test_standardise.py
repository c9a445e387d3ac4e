"""Property tests for the standardisation rules of token spec v1 (hypothesis)."""

from __future__ import annotations

import unicodedata
from datetime import date

import pyarrow as pa
import pytest
from hypothesis import assume, given
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
    with pytest.raises(s.InvalidValue):
        s.split_full_name("Anna Smith", "SURNAME, Forenames")


# --- PNC ------------------------------------------------------------------------------------------


@given(st.integers(0, 99), st.integers(1, 9_999_999), st.booleans(), st.booleans())
def test_valid_pnc_accepted_in_every_form(year, serial, long_year, pad):
    yy = f"{year:02d}"
    letter = s.PNC_CHECK_LETTERS[int(yy + f"{serial:07d}") % 23]
    y = (f"19{yy}" if year > 30 else f"20{yy}") if long_year else yy
    raw = f"{y}/{serial:07d}{letter}" if pad else f"{y}/{serial}{letter}"
    assert s.standardise_pnc(raw) == f"{yy}/{serial:07d}{letter}"
    assert s.standardise_pnc(raw.lower()) == f"{yy}/{serial:07d}{letter}"
    if pad:  # without the slash the serial must be zero-padded to 7 digits
        assert s.standardise_pnc(raw.replace("/", "")) == f"{yy}/{serial:07d}{letter}"


@given(st.integers(0, 99), st.integers(1, 9_999_999), st.sampled_from(s.PNC_CHECK_LETTERS))
def test_wrong_pnc_check_letter_rejected(year, serial, letter):
    yy = f"{year:02d}"
    assume(letter != s.PNC_CHECK_LETTERS[int(yy + f"{serial:07d}") % 23])
    with pytest.raises(s.InvalidValue, match="check character"):
        s.standardise_pnc(f"{yy}/{serial:07d}{letter}")


@pytest.mark.parametrize(
    "raw", ["", "2001/", "ABCD/1234567A", "2001/12345678A", "2001/1234567", "2001/1234567AB"]
)
def test_malformed_pnc_rejected(raw):
    with pytest.raises(s.InvalidValue):
        s.standardise_pnc(raw)


def test_pnc_error_message_does_not_contain_the_value():
    with pytest.raises(s.InvalidValue) as exc:
        s.standardise_pnc("2001/0012345A")
    assert "0012345" not in str(exc.value)


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


def _per_value_pnc(raw: str) -> tuple[str | None, str | None]:
    try:
        return s.standardise_pnc(raw), None
    except s.InvalidValue as exc:
        return None, str(exc)


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
                st.sampled_from(s.PNC_CHECK_LETTERS),
                st.booleans(),
            ),
        ),
        max_size=20,
    )
)
def test_pncs_ascii_matches_standardise_pnc(raws):
    standard, reasons = s.pncs_ascii(pa.array(raws, type=pa.string()))
    assert list(zip(standard.to_pylist(), reasons.to_pylist(), strict=True)) == [
        _per_value_pnc(r) for r in raws
    ]


def test_whole_column_forms_keep_nulls_and_detect_non_ascii():
    values = pa.array(["01/1234567Z", None], type=pa.string())
    assert s.pncs_ascii(values)[1].to_pylist()[1] is None
    assert s.references_ascii(values).to_pylist()[1] is None
    assert s.is_ascii(values) and not s.is_ascii(pa.array(["é"]))
