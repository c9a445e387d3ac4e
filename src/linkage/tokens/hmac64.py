"""The HMAC primitive of the token spec, over a whole Arrow string array at a time, on one of two paths.

    token = int.from_bytes(HMAC-SHA256(key, prefix || value)[:8], "big", signed=True)

* ``c``: the optional C extension ``linkage.tokens._hmac64`` over OpenSSL (~3 M values/s a core). It is
  built when the install finds a C compiler and OpenSSL's headers, and prebuilt wheels carry it.
* ``python``: the same RFC 2104 construction on the standard library's ``hashlib`` (OpenSSL too), with
  the inner and outer SHA-256 states keyed once and copied per value: identical tokens, no compiler,
  ~1 M values/s a core. Written here rather than calling ``hmac.digest`` per value because re-keying
  each call costs twice as much (../shared/STACK-NOTES.md), and no maintained library batches HMAC.

``LINKAGE_HMAC=python`` forces the pure path (tests run the token vectors on both); ``LINKAGE_HMAC=c``
refuses to run without the extension; unset or ``auto`` uses the extension when it is there.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
from array import array
from typing import TYPE_CHECKING, Literal, Protocol

from linkage.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Buffer

try:
    from linkage.tokens import _hmac64
except ImportError:  # built without a compiler or OpenSSL headers: the pure path is used
    _hmac64 = None  # type: ignore[assignment]

ENV = "LINKAGE_HMAC"
Backend = Literal["c", "python"]
_BLOCK = 64  # SHA-256 block size


class HmacKey(Protocol):
    def tokens(self, prefix: Buffer, offsets: Buffer, data: Buffer) -> bytes:
        """n native int64 tokens of the values laid out as an Arrow string array (``offsets``: n + 1
        native int32 offsets into ``data``)."""
        ...


class PyHmacKey:
    """HMAC-SHA256 keyed once on ``hashlib``; the pure-Python twin of ``_hmac64.HmacKey``."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:  # RFC 2104: long keys are hashed first
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def tokens(self, prefix: Buffer, offsets: Buffer, data: Buffer) -> bytes:
        raw = memoryview(offsets).cast("B")
        view = memoryview(data).cast("B")
        if len(raw) < 4 or len(raw) % 4:
            raise ValueError("offsets must hold n + 1 int32 values")
        bounds = raw.cast("i").tolist()
        if any(a < 0 or a > b for a, b in itertools.pairwise(bounds)) or bounds[-1] > len(view):
            raise ValueError("offsets are not a valid string array layout")
        inner = self._inner.copy()
        inner.update(prefix)  # every value shares the prefix: absorb it once
        outer_copy, inner_copy = self._outer.copy, inner.copy
        out = bytearray()
        for start, end in itertools.pairwise(bounds):
            h = inner_copy()
            h.update(view[start:end])
            o = outer_copy()
            o.update(h.digest())
            out += o.digest()[:8]
        tokens = array("q", out)  # big-endian on the wire; the C path returns native order
        if sys.byteorder == "little":
            tokens.byteswap()
        return tokens.tobytes()


def available() -> list[Backend]:
    """The HMAC paths this install has (the pure one always)."""
    return ["c", "python"] if _hmac64 is not None else ["python"]


def backend() -> Backend:
    """The path new keys use: the C extension when built, unless ``LINKAGE_HMAC`` says otherwise."""
    wanted = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "c", "python"):
        raise ConfigError(f"{ENV}={wanted!r}: expected auto, c or python")
    if wanted == "c" and _hmac64 is None:
        raise ConfigError(f"{ENV}=c but this install has no C HMAC extension (see docs/install.md)")
    if wanted == "python" or _hmac64 is None:
        return "python"
    return "c"


def hmac_key(key: bytes, path: Backend | None = None) -> HmacKey:
    """An HMAC-SHA256 key for batch tokens on ``path`` (default: ``backend()``)."""
    if (path or backend()) == "c":
        if _hmac64 is None:
            raise ConfigError("the C HMAC extension is not built in this install")
        return _hmac64.HmacKey(key)
    return PyHmacKey(key)


def describe() -> str:
    """One line for `linkage --version`: which HMAC path is in use."""
    if backend() == "c":
        return "HMAC: C extension over OpenSSL"
    why = f"forced by {ENV}=python" if _hmac64 is not None else "C extension not built"
    return f"HMAC: pure Python on hashlib ({why}; identical tokens, slower)"
