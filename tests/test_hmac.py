"""The two HMAC paths (C extension, pure Python) give identical tokens; the C key cannot be re-keyed.

The token vectors themselves run on both paths in tests/test_token_vectors.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import subprocess
import sys

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import ConfigError
from linkage.tokens import hmac64
from linkage.tokens.hmac64 import ENV, PyHmacKey, available, backend, describe, hmac_key

needs_c = pytest.mark.skipif("c" not in available(), reason="the C HMAC extension is not built here")


def _formula(key: bytes, prefix: bytes, values: list[str]) -> list[int]:
    macs = (hmac.new(key, prefix + v.encode(), hashlib.sha256).digest() for v in values)
    return [int.from_bytes(m[:8], "big", signed=True) for m in macs]


def _tokens(key, prefix: bytes, values: list[str]) -> list[int]:
    array = pa.array(values, type=pa.string())
    _, offsets, data = array.buffers()
    out = key.tokens(prefix, offsets, data if data is not None else b"")
    return list(struct.unpack(f"={len(values)}q", out))


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(max_size=130),
    prefix=st.binary(max_size=20),
    values=st.lists(st.text(max_size=40), max_size=30),
)
def test_pure_path_is_hmac_sha256_for_any_key_prefix_and_values(key, prefix, values):
    assert _tokens(PyHmacKey(key), prefix, values) == _formula(key, prefix, values)


@needs_c
@settings(max_examples=60, deadline=None)
@given(key=st.binary(max_size=130), values=st.lists(st.text(max_size=40), max_size=30))
def test_both_paths_give_identical_tokens(key, values):
    assert _tokens(hmac_key(key, "c"), b"f\x1f", values) == _tokens(hmac_key(key, "python"), b"f\x1f", values)


def test_env_var_chooses_the_path(monkeypatch):
    monkeypatch.setenv(ENV, "python")
    assert backend() == "python" and isinstance(hmac_key(b"k"), PyHmacKey)
    assert "pure Python" in describe()
    monkeypatch.setenv(ENV, "sha1")
    with pytest.raises(ConfigError, match="expected auto, c or python"):
        backend()


def test_without_the_extension_the_pure_path_is_used_and_c_is_refused(monkeypatch):
    monkeypatch.setattr(hmac64, "_hmac64", None)
    monkeypatch.delenv(ENV, raising=False)
    assert available() == ["python"] and backend() == "python"
    assert "C extension not built" in describe()
    monkeypatch.setenv(ENV, "c")
    with pytest.raises(ConfigError, match="no C HMAC extension"):
        backend()


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI promises a compiler and OpenSSL headers")
def test_ci_builds_the_c_extension():
    """`make test` installs OpenSSL's headers, so CI checks both paths; a silent fallback would hide it."""
    assert "c" in available()


# Re-keying an HmacKey while another thread hashes with the GIL released used to free the OpenSSL
# contexts under that thread (a SIGSEGV or an OpenSSL error). The key is now built once, in __new__.
REINIT = """
import threading, pyarrow as pa
from linkage.tokens._hmac64 import HmacKey
key = HmacKey(b"k" * 32)
_, offsets, data = pa.array(["x" * 50] * 200_000).buffers()
expected = key.tokens(b"f", offsets, data)
stop = False
refused = []

def rekey():
    while not stop:
        try:
            key.__init__(b"another key")
        except TypeError:
            refused.append(1)

t = threading.Thread(target=rekey)
t.start()
try:
    for _ in range(20):
        assert key.tokens(b"f", offsets, data) == expected
finally:
    stop = True
    t.join()
assert refused
print("ok")
"""


@needs_c
def test_c_key_survives_reinit_while_another_thread_hashes():
    proc = subprocess.run([sys.executable, "-c", REINIT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-2000:])


@needs_c
def test_c_key_refuses_a_second_init():
    from linkage.tokens._hmac64 import HmacKey

    key = HmacKey(b"k")
    with pytest.raises(TypeError, match="keyed once"):
        key.__init__(b"other")
    assert _tokens(key, b"", ["a"]) == _formula(b"k", b"", ["a"])
