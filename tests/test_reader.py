"""The CSV reader's fast-path guard: which chunks may go to Arrow's (lenient) CSV parser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from linkage.extract.reader import CsvLayout


def replace_chain(data: bytes, q: bytes = b'"', d: bytes = b",") -> bool:
    """The guard as first written, seven bytes.replace passes: the reference for the regex form."""
    rest = (b"\n" + data + b"\n").replace(q + q, b"").replace(b"\r\n", b"\n")
    for opening_or_closing in (b"\n" + q, d + q, q + b"\n", q + d):
        rest = rest.replace(opening_or_closing, opening_or_closing.replace(q, b""))
    return q not in rest


def layout(delimiter: str) -> CsvLayout:
    return CsvLayout("utf-8", delimiter, '"', ("a", "b"), ("a",), (0,))


def chunks(alphabet: bytes) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(alphabet), max_size=60).map(bytes)


@given(chunks(b'"\n\r,;ab'))
def test_quote_guard_matches_the_replace_chain(data):
    assert layout(",").quotes_look_well_formed(data) == replace_chain(data)


@given(chunks(b'"\n\r|,ab'))
def test_quote_guard_with_a_regex_special_delimiter(data):
    assert layout("|").quotes_look_well_formed(data) == replace_chain(data, d=b"|")


def test_quote_guard_examples():
    ok = [b'a,"b,c"\n', b'"a""b",c\r\n', b'"",""\n', b'a,","\n', b'"x"']
    bad = [b'a,"b"c\n', b'a"b,c\n', b'"a"\r,b\n', b'a,"b"\r\rc\n']
    assert all(layout(",").quotes_look_well_formed(d) for d in ok)
    assert not any(layout(",").quotes_look_well_formed(d) for d in bad)
