"""Keyed tokens: HMAC-SHA256 under a purpose subkey, truncated to a signed 64-bit integer.

token = int.from_bytes(HMAC-SHA256(subkey(purpose), family || 0x1F || utf8(value))[:8], "big", signed=True)

64-bit integers (not hex strings) because Splink joins and compares them ~40 % faster
(../shared/STACK-NOTES.md). Collision bound: see docs/token-spec.md.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
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

    def bind(self, family: str) -> Callable[[str], int]:
        """A function value -> token for one family (the per-value hot path)."""
        inner0, outer0, prefix = self._inner, self._outer, family.encode("ascii") + _SEP

        def token(value: str) -> int:
            inner = inner0.copy()
            inner.update(prefix + value.encode("utf-8"))
            outer = outer0.copy()
            outer.update(inner.digest())
            return int.from_bytes(outer.digest()[:8], "big", signed=True)

        return token


class Tokeniser:
    """Turns standardised strings into tokens; one pre-keyed HMAC per purpose."""

    def __init__(self, subkeys: dict[Purpose, bytes]) -> None:
        self._macs = {purpose: _PreKeyedHmac(key) for purpose, key in subkeys.items()}
        names, dates, pcs = (
            self._macs[Purpose.names],
            self._macs[Purpose.dates],
            self._macs[Purpose.postcodes],
        )
        self._name, self._phon, self._pre3 = names.bind("name"), names.bind("phon"), names.bind("pre3")
        self._date, self._ym, self._yd, self._md = (dates.bind(f) for f in ("date", "ym", "yd", "md"))
        self._unit, self._sector, self._district = (pcs.bind(f) for f in ("unit", "sector", "district"))
        self._pnc = self._macs[Purpose.national_ids].bind("pnc")
        self._case = self._macs[Purpose.case_refs].bind("case")

    def token(self, purpose: Purpose, family: str, value: str) -> int:
        """The token of ``value`` in ``family`` under the ``purpose`` subkey (the spec's definition)."""
        return self.hasher(purpose, family)(value)

    def hasher(self, purpose: Purpose, family: str) -> Callable[[str], int]:
        """``token`` with purpose and family bound once: the fast form for hashing many values."""
        return self._macs[purpose].bind(family)

    # --- families of derived tokens, one method per identifier type --------------------------------

    def forename_tokens(self, parts: list[str]) -> dict[str, int | None]:
        if not parts:
            return dict.fromkeys(("fn1", "fn2", "fn1_canon", "fn1_phon", "fn1_pre3"))
        first = parts[0]
        return {
            "fn1": self._name(first),
            "fn2": self._name(parts[1]) if len(parts) > 1 else None,
            "fn1_canon": self._name(canonical_forename(first)),
            "fn1_phon": self._phon(phonetic(first)),
            "fn1_pre3": self._pre3(first[:3]),
        }

    def surname_tokens(self, parts: list[str]) -> dict[str, int | None]:
        if not parts:
            return dict.fromkeys(("sn", "sn_phon", "sn_pre3", "sn_p1", "sn_p2"))
        joined = "".join(parts)
        multi = len(parts) > 1
        return {
            "sn": self._name(joined),
            "sn_phon": self._phon(phonetic(joined)),
            "sn_pre3": self._pre3(joined[:3]),
            "sn_p1": self._name(parts[0]) if multi else None,
            "sn_p2": self._name(parts[-1]) if multi else None,
        }

    def dob_tokens(self, d: date) -> dict[str, int | None]:
        swap = swapped_date(d)
        return {
            "dob": self._date(d.isoformat()),
            "dob_swap": self._date(swap.isoformat()) if swap else None,
            "dob_ym": self._ym(f"{d.year:04d}-{d.month:02d}"),
            "dob_yd": self._yd(f"{d.year:04d}-{d.day:02d}"),
            "dob_md": self._md(f"{d.month:02d}-{d.day:02d}"),
        }

    def postcode_tokens(self, inward: str | None, outward: str) -> dict[str, int | None]:
        return {
            "pc": self._unit(f"{outward} {inward}") if inward else None,
            "pc_sector": self._sector(f"{outward} {inward[0]}") if inward else None,
            "pc_district": self._district(outward),
        }

    def pnc_token(self, canonical_pnc: str) -> int:
        return self._pnc(canonical_pnc)

    def case_ref_token(self, reference: str) -> int:
        return self._case(reference)

    def record_key(self, agency: str, record_id: str) -> int:
        """Keyed per agency, so two agencies' record id '123' give different keys."""
        return self.record_key_hasher(agency)(record_id)

    def record_key_hasher(self, agency: str) -> Callable[[str], int]:
        return self.hasher(Purpose.record_keys, f"record/{agency}")


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
