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
from linkage.tokens.spec import Purpose, token_family
from linkage.tokens.standardise import phonetic, swapped_date

_SEP = b"\x1f"

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

    def column_tokens(
        self, column: str, values: pa.Array | Sequence[str | None], *, postcode_country: str = "uk"
    ) -> pa.Array:
        """Tokens of a token column's standardised values (purpose and family from the spec)."""
        return self.tokens(*token_family(column, postcode_country=postcode_country), values)

    def record_keys(self, agency: str, record_ids: pa.Array | Sequence[str | None]) -> pa.Array:
        """Keyed per agency, so two agencies' record id '123' give different keys."""
        return self.tokens(Purpose.record_keys, f"record/{agency}", record_ids)

    def record_key(self, agency: str, record_id: str) -> int:
        return self.record_keys(agency, [record_id])[0].as_py()

    def hash_plaintexts(
        self, plaintexts: Plaintexts, *, postcode_country: str = "uk"
    ) -> dict[str, int | None]:
        """Tokens of one identifier's plaintexts (vectors and examples; batches use column_tokens)."""
        return {
            column: None
            if v is None
            else self.column_tokens(column, [v], postcode_country=postcode_country)[0].as_py()
            for column, v in plaintexts.items()
        }


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


def dob_plaintexts(d: date, *, swapped_only: bool = False) -> Plaintexts:
    """A date valid only with day and month swapped fills ``dob_swap`` alone (weak evidence)."""
    if swapped_only:
        return dict.fromkeys(("dob", "dob_ym", "dob_yd", "dob_md")) | {"dob_swap": d.isoformat()}
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


def generic_postcode_plaintexts(code: str, sector: str | None, district: str | None) -> Plaintexts:
    return {"pc": code, "pc_sector": sector, "pc_district": district}


def address_plaintexts(house: str | None, street: str | None, town: str | None) -> Plaintexts:
    """addr_house needs both a house number and a street: a number alone identifies nothing."""
    return {
        "addr_house": f"{house} {street}" if house and street else None,
        "addr_street": street,
        "addr_town": town,
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
