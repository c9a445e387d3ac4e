"""Identifier formats: PNC ids with their check character, UK postcodes, and fast date formatting."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

PNC_CHECK = "ZABCDEFGHJKLMNPQRTUVWXY"
POSTCODE_RE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][ABD-HJLNP-UW-Z]{2}$")
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # inward-code letters never include C, I, K, M, O, V
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

EPOCH = dt.date(1970, 1, 1)
TABLE_START = dt.date(1899, 1, 1)
TABLE_END = dt.date(2040, 12, 31)


def pnc_check(year2: int, serial: int) -> str:
    """Check character of a PNC id: letter of (YY followed by the 7-digit serial) mod 23."""
    return PNC_CHECK[int(f"{year2:02d}{serial:07d}") % 23]


def pnc_long(year4: int, serial: int) -> str:
    """Long form YYYY/NNNNNNNC (e.g. 2001/0012345A)."""
    return f"{year4:04d}/{serial:07d}{pnc_check(year4 % 100, serial)}"


def pnc_short(year4: int, serial: int) -> str:
    """Short form YY/NC with the serial unpadded (e.g. 01/12345A)."""
    return f"{year4 % 100:02d}/{serial}{pnc_check(year4 % 100, serial)}"


def pnc_with_bad_check(year4: int, serial: int) -> str:
    """A long-form PNC id whose check character is wrong (for deliberately bad rows)."""
    good = PNC_CHECK.index(pnc_check(year4 % 100, serial))
    return f"{year4:04d}/{serial:07d}{PNC_CHECK[(good + 7) % 23]}"


def is_valid_postcode(pc: str) -> bool:
    return bool(POSTCODE_RE.match(pc))


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 (the integer form dates take inside the generator)."""
    return (d - EPOCH).days


class DateFormatter:
    """Formats day numbers through a precomputed table: one lookup per value, no strftime per row.

    Month names are the English abbreviations whatever the process locale is.
    """

    def __init__(self, fmt: str) -> None:
        start, end = day_number(TABLE_START), day_number(TABLE_END)
        self.offset = start
        out: list[str] = []
        d = TABLE_START
        one = dt.timedelta(days=1)
        for _ in range(start, end + 1):
            out.append(
                fmt.replace("%d", f"{d.day:02d}")
                .replace("%m", f"{d.month:02d}")
                .replace("%Y", f"{d.year:04d}")
                .replace("%b", MONTHS[d.month - 1])
            )
            d += one
        self.table = np.array(out, dtype=object)

    def __call__(self, days: np.ndarray, missing: str = "") -> np.ndarray:
        """Format an int array of day numbers; negative sentinel ``MISSING_DAY`` gives ``missing``."""
        days = np.asarray(days, dtype=np.int64)
        ok = days != MISSING_DAY
        out = np.full(days.shape, missing, dtype=object)
        out[ok] = self.table[days[ok] - self.offset]
        return out


MISSING_DAY = np.iinfo(np.int64).min


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day arrays of day numbers."""
    d = np.asarray(days, dtype="datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return y, m, day


def from_ymd(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Day numbers of (year, month, day); the caller guarantees the dates exist."""
    months = (np.asarray(y, dtype=np.int64) - 1970) * 12 + np.asarray(m, dtype=np.int64) - 1
    base = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return base + np.asarray(d, dtype=np.int64) - 1
