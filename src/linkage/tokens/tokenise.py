"""Keyed tokens: HMAC-SHA256 under a purpose subkey, truncated to a signed 64-bit integer.

token = int.from_bytes(HMAC-SHA256(subkey(purpose), family || 0x1F || utf8(value))[:8], "big", signed=True)

64-bit integers (not hex strings) because Splink joins and compares them ~40 % faster
(../shared/STACK-NOTES.md). Collision bound: see docs/token-spec.md.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from functools import cache
from importlib import resources

from linkage.tokens.spec import Purpose
from linkage.tokens.standardise import phonetic, swapped_date

_SEP = b"\x1f"


class _PreKeyedHmac:
    """HMAC-SHA256 with the key schedule done once.

    Written by hand rather than calling ``hmac.digest`` per value: copying pre-keyed ``hashlib``
    states is exactly RFC 2104 but 2.4x faster per value (0.55 M/s -> 1.34 M/s per core, measured in
    STACK-NOTES). The test vectors check it against ``hmac.new``.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class Tokeniser:
    """Turns standardised strings into tokens; one pre-keyed HMAC per purpose."""

    def __init__(self, subkeys: dict[Purpose, bytes]) -> None:
        self._macs = {purpose: _PreKeyedHmac(key) for purpose, key in subkeys.items()}

    def token(self, purpose: Purpose, family: str, value: str) -> int:
        mac = self._macs[purpose].digest(family.encode("ascii") + _SEP + value.encode("utf-8"))
        return int.from_bytes(mac[:8], "big", signed=True)

    # --- families of derived tokens, one method per identifier type --------------------------------

    def forename_tokens(self, parts: list[str]) -> dict[str, int | None]:
        if not parts:
            return dict.fromkeys(("fn1", "fn2", "fn1_canon", "fn1_phon", "fn1_pre3"))
        first = parts[0]
        name = Purpose.names
        return {
            "fn1": self.token(name, "name", first),
            "fn2": self.token(name, "name", parts[1]) if len(parts) > 1 else None,
            "fn1_canon": self.token(name, "name", canonical_forename(first)),
            "fn1_phon": self.token(name, "phon", phonetic(first)),
            "fn1_pre3": self.token(name, "pre3", first[:3]),
        }

    def surname_tokens(self, parts: list[str]) -> dict[str, int | None]:
        if not parts:
            return dict.fromkeys(("sn", "sn_phon", "sn_pre3", "sn_p1", "sn_p2"))
        joined = "".join(parts)
        name = Purpose.names
        multi = len(parts) > 1
        return {
            "sn": self.token(name, "name", joined),
            "sn_phon": self.token(name, "phon", phonetic(joined)),
            "sn_pre3": self.token(name, "pre3", joined[:3]),
            "sn_p1": self.token(name, "name", parts[0]) if multi else None,
            "sn_p2": self.token(name, "name", parts[-1]) if multi else None,
        }

    def dob_tokens(self, d: date) -> dict[str, int | None]:
        swap = swapped_date(d)
        dates = Purpose.dates
        return {
            "dob": self.token(dates, "date", d.isoformat()),
            "dob_swap": self.token(dates, "date", swap.isoformat()) if swap else None,
            "dob_ym": self.token(dates, "ym", f"{d.year:04d}-{d.month:02d}"),
            "dob_yd": self.token(dates, "yd", f"{d.year:04d}-{d.day:02d}"),
            "dob_md": self.token(dates, "md", f"{d.month:02d}-{d.day:02d}"),
        }

    def postcode_tokens(self, inward: str | None, outward: str) -> dict[str, int | None]:
        pcs = Purpose.postcodes
        return {
            "pc": self.token(pcs, "unit", f"{outward} {inward}") if inward else None,
            "pc_sector": self.token(pcs, "sector", f"{outward} {inward[0]}") if inward else None,
            "pc_district": self.token(pcs, "district", outward),
        }

    def pnc_token(self, canonical_pnc: str) -> int:
        return self.token(Purpose.national_ids, "pnc", canonical_pnc)

    def case_ref_token(self, reference: str) -> int:
        return self.token(Purpose.case_refs, "case", reference)

    def record_key(self, agency: str, record_id: str) -> int:
        """Keyed per agency, so two agencies' record id '123' give different keys."""
        return self.token(Purpose.record_keys, f"record/{agency}", record_id)


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
