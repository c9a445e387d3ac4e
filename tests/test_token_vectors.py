"""Token spec v2 test vectors: any reimplementation must reproduce tests/vectors/token_spec_v2.json.

The vectors are checked two ways: against this package's tokeniser, and against a minimal
independent implementation of the formula written here from docs/token-spec.md (HKDF-SHA256
subkeys, HMAC-SHA256 over family || 0x1F || value, first 8 bytes as a signed big-endian integer).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import struct
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.keys import ProjectKey
from linkage.tokens import standardise as st
from linkage.tokens.hmac64 import available, hmac_key
from linkage.tokens.spec import TOKEN_COLUMN_NAMES, TOKEN_SPEC_VERSION, WEAK_MARKERS, Purpose
from linkage.tokens.tokenise import Tokeniser, forename_plaintexts, surname_plaintexts

_spec = importlib.util.spec_from_file_location(
    "make_token_vectors", Path(__file__).parents[1] / "scripts" / "make_token_vectors.py"
)
GENERATOR = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(GENERATOR)
VECTORS = json.loads((Path(__file__).parent / "vectors" / "token_spec_v2.json").read_text(encoding="utf-8"))
KEY = bytes.fromhex(VECTORS["project_key_hex"])
TODAY = date.fromisoformat(VECTORS["today"])
# Families written out from docs/token-spec.md (section 4), not imported: the test is independent.
FAMILIES = {
    **dict.fromkeys(["fn1", "fn2", "fn1_canon", "sn", "sn_p1", "sn_p2"], ("names", "name")),
    "fn1_phon": ("names", "phon"), "sn_phon": ("names", "phon"),
    "fn1_pre3": ("names", "pre3"), "sn_pre3": ("names", "pre3"),
    "dob": ("dates", "date"), "dob_swap": ("dates", "date"), "dob_ym": ("dates", "ym"),
    "dob_yd": ("dates", "yd"), "dob_md": ("dates", "md"),
    "pc": ("postcodes", "unit"), "pc_sector": ("postcodes", "sector"),
    "pc_district": ("postcodes", "district"),
    "pnc": ("national_ids", "pnc"), "cro": ("national_ids", "cro"), "ni": ("national_ids", "ni"),
    "nhs": ("national_ids", "nhs"), "case_ref": ("case_refs", "case"),
    "addr_house": ("addresses", "house"), "addr_street": ("addresses", "street"),
    "addr_town": ("addresses", "town"),
}  # fmt: skip
GENERIC_POSTCODE = {"pc": "unit/generic", "pc_sector": "sector/generic", "pc_district": "district/generic"}


@pytest.fixture(autouse=True, params=["c", "python"])
def hmac_path(request, monkeypatch) -> str:
    """Every check runs on both HMAC paths: the C extension (when built) and the pure-Python one."""
    if request.param not in available():
        pytest.skip("the C HMAC extension is not built in this install (tests/test_hmac.py checks CI has it)")
    monkeypatch.setenv("LINKAGE_HMAC", request.param)
    return request.param


def independent_subkey(purpose: str) -> bytes:
    info = f"justice-linkage/token-spec-v{VECTORS['token_spec_version']}/{purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(KEY)


def independent_token(purpose: str, family: str, value: str) -> int:
    mac = hmac.new(independent_subkey(purpose), family.encode() + b"\x1f" + value.encode(), hashlib.sha256)
    return int.from_bytes(mac.digest()[:8], "big", signed=True)


def expected_plaintexts(vector: dict) -> dict[str, tuple[str, str, str]]:
    """Token column -> (purpose, family, standardised value) from the vector's standard form."""
    s, kind = vector["standard"], vector["type"]
    out: dict[str, tuple[str, str, str]] = {}

    def put(col: str, value: str | None, family: tuple[str, str] | None = None) -> None:
        if value is not None:
            out[col] = (*(family or FAMILIES[col]), value)

    def names(fore: list[str], sur: list[str], canonical: str | None, fphon: str | None, sphon: str | None):
        if fore:
            put("fn1", fore[0])
            put("fn2", fore[1] if len(fore) > 1 else None)
            put("fn1_canon", canonical)
            put("fn1_phon", fphon)
            put("fn1_pre3", fore[0][:3])
        if sur:
            joined = "".join(sur)
            put("sn", joined)
            put("sn_phon", sphon)
            put("sn_pre3", joined[:3])
            if len(sur) > 1:
                put("sn_p1", sur[0])
                put("sn_p2", sur[-1])

    if kind == "forenames":
        names(s["parts"], [], s["canonical"], s["phonetic"], None)
    elif kind == "full_name":
        names(
            s["forename_parts"],
            s["surname_parts"],
            s["canonical"],
            s["forename_phonetic"],
            s["surname_phonetic"],
        )
    elif kind == "surname":
        names([], s["parts"], None, None, s["phonetic"])
    elif kind == "date_of_birth":
        y, m, d = s["iso"].split("-")
        if s["swapped_only"]:
            put("dob_swap", s["iso"])
        else:
            put("dob", s["iso"])
            put("dob_swap", s["swapped"])
            put("dob_ym", f"{y}-{m}")
            put("dob_yd", f"{y}-{d}")
            put("dob_md", f"{m}-{d}")
    elif kind == "postcode" and vector.get("country") == "generic":
        for col, key in (("pc", "code"), ("pc_sector", "sector"), ("pc_district", "district")):
            put(col, s[key], ("postcodes", GENERIC_POSTCODE[col]))
    elif kind == "postcode":
        o, i = s["outward"], s["inward"]
        put("pc", f"{o} {i}" if i else None)
        put("pc_sector", f"{o} {i[0]}" if i else None)
        put("pc_district", o)
    elif kind in ("pnc", "cro", "ni_number", "nhs_number"):
        put({"pnc": "pnc", "cro": "cro", "ni_number": "ni", "nhs_number": "nhs"}[kind], s["canonical"])
    elif kind == "generic":
        family = vector["family"]
        put(f"id_{family}", s["canonical"], ("national_ids", f"id/{family}"))
    elif kind == "case_reference":
        put("case_ref", s["canonical"])
    elif kind == "address":
        put("addr_house", f"{s['house']} {s['street']}" if s["house"] and s["street"] else None)
        put("addr_street", s["street"])
        put("addr_town", s["town"])
    elif kind == "record_id":
        out["record_key"] = ("record_keys", f"record/{s['agency']}", vector["raw"])
    return out


def test_vector_file_is_for_this_spec_version():
    assert VECTORS["token_spec_version"] == TOKEN_SPEC_VERSION


def test_vectors_cover_every_token_column_and_marker():
    tokens = {c for v in VECTORS["vectors"] for c, t in v["tokens"].items() if t is not None}
    markers = {c for v in VECTORS["vectors"] for c in v.get("markers", {})}
    assert set(TOKEN_COLUMN_NAMES) <= tokens
    assert set(WEAK_MARKERS) <= markers
    assert {True, False} == {m for v in VECTORS["vectors"] for m in v.get("markers", {}).values()}


def test_subkeys_and_fingerprint():
    key = ProjectKey("vectors", datetime(2026, 1, 1, tzinfo=UTC), KEY)
    for purpose in Purpose:
        assert (
            key.subkey(purpose).hex()
            == VECTORS["subkeys_hex"][purpose.value]
            == independent_subkey(purpose.value).hex()
        )
    assert key.fingerprint == VECTORS["fingerprint"]
    assert len({key.subkey(p) for p in Purpose}) == len(Purpose)  # domain separation


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: f"{v['type']}:{v['raw']!r}")
def test_vector_tokens_match_the_formula(vector):
    plain = expected_plaintexts(vector)
    for column, token in vector["tokens"].items():
        if token is None:
            assert column not in plain, f"{column} should be NULL"
        else:
            assert token == independent_token(*plain[column]), column


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: f"{v['type']}:{v['raw']!r}")
def test_vector_reproduced_by_the_engine(vector):
    """The engine (through the generator's engine_form) gives the stored standard forms and tokens."""
    tok = Tokeniser(ProjectKey("v", datetime(2026, 1, 1, tzinfo=UTC), KEY).subkeys())
    if vector["type"] == "record_id":
        agency = vector["standard"]["agency"]
        assert {"record_key": tok.record_key(agency, vector["raw"])} == vector["tokens"]
        return
    options = {k: v for k, v in vector.items() if k not in ("type", "raw", "standard", "tokens", "markers")}
    standard, plaintexts = GENERATOR.engine_form(vector["type"], vector["raw"], options)
    assert standard == vector["standard"]
    assert GENERATOR.hashed(tok, plaintexts, options.get("country", "uk")) == (
        vector["tokens"],
        vector["markers"],
    )


def test_transliteration_table_is_the_one_the_spec_names():
    """anyascii's whole table is part of the spec: an upgrade that changes a mapping must fail here."""
    from importlib.metadata import version

    from linkage.tokens.spec import ANYASCII_TABLE_SHA256, ANYASCII_VERSION

    assert version("anyascii") == ANYASCII_VERSION
    assert st.anyascii_table_sha256() == ANYASCII_TABLE_SHA256
    doc = (Path(__file__).parents[1] / "docs" / "token-spec.md").read_text(encoding="utf-8")
    assert ANYASCII_TABLE_SHA256 in doc


def test_missing_is_null_not_the_token_of_empty():
    tok = Tokeniser(ProjectKey("v", datetime(2026, 1, 1, tzinfo=UTC), KEY).subkeys())
    assert set(tok.hash_plaintexts(forename_plaintexts([])).values()) == {None}
    assert set(tok.hash_plaintexts(surname_plaintexts([])).values()) == {None}
    assert tok.token(Purpose.names, "name", "") != 0  # the empty string does have a token: never emitted


def test_forename_table_has_one_group_per_name():
    from linkage.tokens.tokenise import _forename_table

    table = _forename_table()
    assert table["BOB"] == table["ROBERT"] == "ROBERT"
    assert table["MOHAMED"] == "MOHAMMED"
    assert all(v == table[v] for v in table.values())  # canonical names map to themselves


def test_forename_table_is_the_one_the_spec_names():
    from importlib import resources

    from linkage.tokens.spec import FORENAME_TABLE_SHA256

    data = resources.files("linkage.tokens").joinpath("data/forename_groups_v1.csv").read_bytes()
    assert hashlib.sha256(data).hexdigest() == FORENAME_TABLE_SHA256
    doc = (Path(__file__).parents[1] / "docs" / "token-spec.md").read_text(encoding="utf-8")
    assert FORENAME_TABLE_SHA256 in doc


def test_batch_tokens_match_the_formula_with_nulls_and_slices():
    tok = Tokeniser(ProjectKey("v", datetime(2026, 1, 1, tzinfo=UTC), KEY).subkeys())
    values = pa.array(["SMITH", None, "", "ÉLODIE", "x" * 300, None, "O'BRIEN"], type=pa.string())
    for array in (values, values.slice(1, 4), values.slice(3), values.slice(0, 0)):
        expected = [None if v is None else independent_token("names", "name", v) for v in array.to_pylist()]
        assert tok.tokens(Purpose.names, "name", array).to_pylist() == expected
    assert tok.tokens(Purpose.names, "name", ["SMITH", None]).to_pylist() == [
        independent_token("names", "name", "SMITH"),
        None,
    ]


@pytest.mark.parametrize("key", [b"", b"k" * 32, b"k" * 64, b"k" * 65, b"k" * 200])
def test_hmac_is_rfc2104_for_any_key_length(key):
    values = pa.array(["", "a", "b" * 100])
    _, offsets, data = values.buffers()
    out = hmac_key(key).tokens(b"fam\x1f", offsets, data)
    macs = [hmac.new(key, b"fam\x1f" + v.encode(), hashlib.sha256).digest() for v in values.to_pylist()]
    expected = [int.from_bytes(mac[:8], "big", signed=True) for mac in macs]
    assert list(struct.unpack(f"={len(values)}q", out)) == expected


@pytest.mark.parametrize(
    "offsets, data",
    [(struct.pack("=2i", 0, 5), b"abc"), (struct.pack("=2i", 2, 1), b"abc"), (b"\0\0", b""), (b"", b"")],
)
def test_hmac_rejects_malformed_layouts(offsets, data):
    with pytest.raises(ValueError):
        hmac_key(b"k").tokens(b"", offsets, data)
