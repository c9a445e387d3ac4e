"""Keyed tokens: HMAC-SHA256 under a purpose subkey, truncated to a signed 64-bit integer.

token = int.from_bytes(HMAC-SHA256(subkey(purpose), family || 0x1F || utf8(value))[:8], "big", signed=True)

64-bit integers (not hex strings) because Splink joins and compares them ~40 % faster
(../shared/STACK-NOTES.md). Collision bound: see docs/token-spec.md.

Hashing is done a column at a time: the ``*_plaintexts`` functions give each token column's
standardised message, and ``Tokeniser.tokens`` hashes a whole array of them in one call
(``linkage.tokens.hmac64``: the C extension over OpenSSL, or its pure-Python twin).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from importlib import resources

import pyarrow as pa

from linkage.tokens.hmac64 import hmac_key
from linkage.tokens.spec import TOKEN_COLUMNS, Purpose
from linkage.tokens.standardise import phonetic, swapped_date

_SEP = b"\x1f"
_COLUMN_FAMILY: dict[str, tuple[Purpose, str]] = {c.name: (c.purpose, c.family) for c in TOKEN_COLUMNS}

Plaintexts = dict[str, str | None]  # token column -> standardised value to hash (None: NULL token)


class Tokeniser:
    """Turns standardised strings into tokens; one pre-keyed HMAC per purpose."""

    def __init__(self, subkeys: Mapping[Purpose, bytes]) -> None:
        self._keys = {purpose: hmac_key(key) for purpose, key in subkeys.items()}

    def tokens(self, purpose: Purpose, family: str, values: pa.Array | Sequence[str | None]) -> pa.Array:
        """int64 tokens of string ``values`` in ``family`` under the ``purpose`` subkey; NULL stays NULL."""
        if not isinstance(values, pa.Array):
            values = pa.array(values, type=pa.string())
        elif values.type != pa.string():
            values = values.cast(pa.string())
        n = len(values)
        _, offsets, data = values.buffers()
        # the C loop reads n + 1 offsets from the start of the buffer it gets (a slice starts later)
        offsets = b"\0\0\0\0" if offsets is None else offsets.slice(values.offset * 4, (n + 1) * 4)
        hashed = self._keys[purpose].tokens(family.encode("ascii") + _SEP, offsets, data or b"")
        validity = values.is_valid().buffers()[1] if values.null_count else None
        return pa.Array.from_buffers(
            pa.int64(), n, [validity, pa.py_buffer(hashed)], null_count=values.null_count
        )

    def token(self, purpose: Purpose, family: str, value: str) -> int:
        """The token of one ``value`` in ``family`` under the ``purpose`` subkey (the spec's definition)."""
        return self.tokens(purpose, family, [value])[0].as_py()

    def column_tokens(self, column: str, values: pa.Array | Sequence[str | None]) -> pa.Array:
        """Tokens of a token column's standardised values (purpose and family from the spec)."""
        return self.tokens(*_COLUMN_FAMILY[column], values)

    def record_keys(self, agency: str, record_ids: pa.Array | Sequence[str | None]) -> pa.Array:
        """Keyed per agency, so two agencies' record id '123' give different keys."""
        return self.tokens(Purpose.record_keys, f"record/{agency}", record_ids)

    def record_key(self, agency: str, record_id: str) -> int:
        return self.record_keys(agency, [record_id])[0].as_py()

    def hash_plaintexts(self, plaintexts: Plaintexts) -> dict[str, int | None]:
        """Tokens of one identifier's plaintexts (the ``*_tokens`` helpers; batches use column_tokens)."""
        return {column: None if v is None else self.column_tokens(column, [v])[0].as_py()
                for column, v in plaintexts.items()}  # fmt: skip

    # --- one identifier's tokens (spec examples, test vectors) --------------------------------------

    def forename_tokens(self, parts: list[str]) -> dict[str, int | None]:
        return self.hash_plaintexts(forename_plaintexts(parts))

    def surname_tokens(self, parts: list[str]) -> dict[str, int | None]:
        return self.hash_plaintexts(surname_plaintexts(parts))

    def dob_tokens(self, d: date) -> dict[str, int | None]:
        return self.hash_plaintexts(dob_plaintexts(d))

    def postcode_tokens(self, inward: str | None, outward: str) -> dict[str, int | None]:
        return self.hash_plaintexts(postcode_plaintexts(inward, outward))

    def pnc_token(self, canonical_pnc: str) -> int:
        return self.token(*_COLUMN_FAMILY["pnc"], canonical_pnc)

    def case_ref_token(self, reference: str) -> int:
        return self.token(*_COLUMN_FAMILY["case_ref"], reference)


# --- the message each token column hashes, per identifier type ----------------------------------------


def forename_plaintexts(parts: list[str]) -> Plaintexts:
    if not parts:
        return dict.fromkeys(("fn1", "fn2", "fn1_canon", "fn1_phon", "fn1_pre3"))
    first = parts[0]
    return {
        "fn1": first,
        "fn2": parts[1] if len(parts) > 1 else None,
        "fn1_canon": canonical_forename(first),
        "fn1_phon": phonetic(first),
        "fn1_pre3": first[:3],
    }


def surname_plaintexts(parts: list[str]) -> Plaintexts:
    if not parts:
        return dict.fromkeys(("sn", "sn_phon", "sn_pre3", "sn_p1", "sn_p2"))
    joined = "".join(parts)
    multi = len(parts) > 1
    return {
        "sn": joined,
        "sn_phon": phonetic(joined),
        "sn_pre3": joined[:3],
        "sn_p1": parts[0] if multi else None,
        "sn_p2": parts[-1] if multi else None,
    }


def dob_plaintexts(d: date) -> Plaintexts:
    swap = swapped_date(d)
    return {
        "dob": d.isoformat(),
        "dob_swap": swap.isoformat() if swap else None,
        "dob_ym": f"{d.year:04d}-{d.month:02d}",
        "dob_yd": f"{d.year:04d}-{d.day:02d}",
        "dob_md": f"{d.month:02d}-{d.day:02d}",
    }


def postcode_plaintexts(inward: str | None, outward: str) -> Plaintexts:
    return {
        "pc": f"{outward} {inward}" if inward else None,
        "pc_sector": f"{outward} {inward[0]}" if inward else None,
        "pc_district": outward,
    }


@cache
def _forename_table() -> dict[str, str]:
    text = resources.files("linkage.tokens").joinpath("data/forename_groups_v1.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    table: dict[str, str] = {}
    for row in rows:
        canonical = row["canonical"]
        for name in [canonical, *row["variants"].split()]:
            table[name] = canonical
    return table


def canonical_forename(name: str) -> str:
    """The group head for a standardised forename (Bob -> ROBERT), or the name itself."""
    return _forename_table().get(name, name)
