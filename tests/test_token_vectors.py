"""Token spec v1 test vectors: any reimplementation must reproduce tests/vectors/token_spec_v1.json.

The vectors are checked two ways: against this package's tokeniser, and against a minimal
independent implementation of the formula written here from docs/token-spec.md (HKDF-SHA256
subkeys, HMAC-SHA256 over family || 0x1F || value, first 8 bytes as a signed big-endian integer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.keys import ProjectKey
from linkage.tokens import standardise as st
from linkage.tokens.hmac64 import available, hmac_key
from linkage.tokens.spec import TOKEN_COLUMNS, TOKEN_SPEC_VERSION, Purpose
from linkage.tokens.tokenise import Tokeniser, canonical_forename

VECTORS = json.loads((Path(__file__).parent / "vectors" / "token_spec_v1.json").read_text(encoding="utf-8"))
KEY = bytes.fromhex(VECTORS["project_key_hex"])
FAMILY = {c.name: (c.purpose, c.family) for c in TOKEN_COLUMNS}


@pytest.fixture(autouse=True, params=["c", "python"])
def hmac_path(request, monkeypatch) -> str:
    """Every check runs on both HMAC paths: the C extension (when built) and the pure-Python one."""
    if request.param not in available():
        pytest.skip("the C HMAC extension is not built in this install (tests/test_hmac.py checks CI has it)")
    monkeypatch.setenv("LINKAGE_HMAC", request.param)
    return request.param


def independent_subkey(purpose: str) -> bytes:
    info = f"justice-linkage/token-spec-v1/{purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(KEY)


def independent_token(purpose: str, family: str, value: str) -> int:
    mac = hmac.new(independent_subkey(purpose), family.encode() + b"\x1f" + value.encode(), hashlib.sha256)
    return int.from_bytes(mac.digest()[:8], "big", signed=True)


def expected_plaintexts(vector: dict) -> dict[str, tuple[str, str, str]]:
    """Token column -> (purpose, family, standardised value) from the vector's standard form."""
    s, kind = vector["standard"], vector["type"]
    out: dict[str, tuple[str, str, str]] = {}

    def put(col: str, value: str | None, family: str | None = None) -> None:
        if value is not None:
            purpose, fam = FAMILY[col]
            out[col] = (purpose.value, family or fam, value)

    if kind == "forenames" and s["parts"]:
        p = s["parts"]
        put("fn1", p[0])
        put("fn2", p[1] if len(p) > 1 else None)
        put("fn1_canon", s["canonical"])
        put("fn1_phon", s["phonetic"])
        put("fn1_pre3", p[0][:3])
    elif kind == "surname":
        joined = "".join(s["parts"])
        put("sn", joined)
        put("sn_phon", s["phonetic"])
        put("sn_pre3", joined[:3])
        if len(s["parts"]) > 1:
            put("sn_p1", s["parts"][0])
            put("sn_p2", s["parts"][-1])
    elif kind == "date_of_birth":
        y, m, d = s["iso"].split("-")
        put("dob", s["iso"])
        put("dob_swap", s["swapped"])
        put("dob_ym", f"{y}-{m}")
        put("dob_yd", f"{y}-{d}")
        put("dob_md", f"{m}-{d}")
    elif kind == "postcode":
        o, i = s["outward"], s["inward"]
        put("pc", f"{o} {i}" if i else None)
        put("pc_sector", f"{o} {i[0]}" if i else None)
        put("pc_district", o)
    elif kind == "pnc":
        put("pnc", s["canonical"])
    elif kind == "case_reference":
        put("case_ref", s["canonical"])
    elif kind == "record_id":
        out["record_key"] = ("record_keys", f"record/{s['agency']}", vector["raw"])
    return out


def test_vector_file_is_for_this_spec_version():
    assert VECTORS["token_spec_version"] == TOKEN_SPEC_VERSION


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
    tok = Tokeniser(ProjectKey("v", datetime(2026, 1, 1, tzinfo=UTC), KEY).subkeys())
    raw, s, kind = vector["raw"], vector["standard"], vector["type"]
    if kind == "forenames":
        parts = st.forename_parts([raw])
        assert parts == s["parts"]
        if parts:
            assert canonical_forename(parts[0]) == s["canonical"]
        assert tok.forename_tokens(parts) == vector["tokens"]
    elif kind == "surname":
        parts = st.surname_parts(raw)
        assert parts == s["parts"]
        assert tok.surname_tokens(parts) == vector["tokens"]
    elif kind == "date_of_birth":
        d = st.parse_date(raw, [s["format"]])
        assert d.isoformat() == s["iso"]
        assert tok.dob_tokens(d) == vector["tokens"]
    elif kind == "postcode":
        inward, outward = st.standardise_postcode(raw)
        assert (outward, inward) == (s["outward"], s["inward"])
        assert tok.postcode_tokens(inward, outward) == vector["tokens"]
    elif kind == "pnc":
        assert st.standardise_pnc(raw) == s["canonical"]
        assert {"pnc": tok.pnc_token(s["canonical"])} == vector["tokens"]
    elif kind == "case_reference":
        assert st.standardise_reference(raw) == s["canonical"]
        assert {"case_ref": tok.case_ref_token(s["canonical"])} == vector["tokens"]
    elif kind == "record_id":
        assert {"record_key": tok.record_key(s["agency"], raw)} == vector["tokens"]


def test_missing_is_null_not_the_token_of_empty():
    tok = Tokeniser(ProjectKey("v", datetime(2026, 1, 1, tzinfo=UTC), KEY).subkeys())
    assert set(tok.forename_tokens([]).values()) == {None}
    assert set(tok.surname_tokens([]).values()) == {None}
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
