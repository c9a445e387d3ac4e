"""Cell key perturbation: the ONS Census 2021 method, so the same people always give the same noise.

Record keys. Each counted unit (a case journey) gets a record key 0-255: the low 8 bits of the keyed
`record_key` token of its anchor record (the first stage it has: police, else CPS, court, prison,
probation). The token is already an HMAC under the project key, so its bits are uniform and unpredictable
without the key, and stable: the same record gives the same key in every release. (Keys drawn from
row numbers instead would re-draw every later key when one row is removed; the release warns when
a manifest says `record_id_source: row_number`.)

Cell keys. A cell's key is the sum of its units' record keys mod 256 (computed in SQL, exactly, with
integers). Two cells with the same units have the same key, so the same noise, across tables and
releases: averaging many releases of the same cell learns nothing.

The perturbation table, (count n, cell key k) -> published value, is ours (the ONS package ships
only a deterministic "threshold 10, round to 5" table and the Census table is not public):

    u(k)      = floor(k * b / 256)                    a key-driven offset in 0..b-1 (b = rounding base)
    pub(n, k) = b * floor((n + u(k)) / b)             keyed random rounding to base b
    n = 0     -> 0 (a zero is never made non-zero; zeros are withheld by the zeros rule anyway)
    pub < T   -> withheld (never a published count below the threshold T)

It is unbiased up to the 1/256 granularity of k (mean noise within 0.02 of 0 for base 5), each
published value is one of the two multiples of b around n, and the noise variance is r(b - r)
for r = n mod b (at most b^2/4 = 6.25 for base 5; 0 when n is a multiple of b). Removing one unit
re-draws the cell's key, so a difference of 1 is seen as 0 or as b, never as 1.

Magnitudes are protected separately (an unrounded mean leaked a sentence length): means and
quartiles of days are randomly rounded the same way to `magnitude_base` days (default 7), keyed on
the cell key of the journeys that carry the value, after the threshold, dominance and p% rules.
Means come from the exact integer sum (no float average), so they are identical on any machine.

Order (release/build.py): primary rules on the true counts (threshold on journeys and on persons,
zeros); perturbation of every count (a perturbed count below the threshold joins the primary
cells); secondary suppression and the exact linear audit on that pattern; publish the perturbed
values. With perturbation off, counts are rounded half-up to the base instead (deterministic).

Why not the `cell-key-perturbation` package (ONS, PyPI, 3.1.0): it tabulates pandas microdata one
table at a time and thresholds the result itself, whereas every cell of a release here is one
cell of a shared cube (canonical keys shared across tables, secondary suppression across all of
them) computed in DuckDB; the mechanics it would contribute (sum mod 256 and a table lookup) are
the two lines below, and it brings no noise table we could use.
"""

from __future__ import annotations

import math
from fractions import Fraction

from linkage.config.release import Perturbation

KEYS = 256  # record and cell keys are 0..255, as in the ONS method


def record_key_sql(columns: list[str]) -> str:
    """SQL for a journey's record key: the low 8 bits of its anchor record's keyed token."""
    return f"(coalesce({', '.join(columns)}) & {KEYS - 1})"


def scoped(cell_key: int, release_key: int, rules: Perturbation) -> int:
    """The key the perturbation table is read with: the cell key, or with key_scope "release" the
    cell key shifted by the release key (the sum of every journey's record key mod 256)."""
    return (cell_key + release_key) % KEYS if rules.key_scope == "release" else cell_key


def offset(cell_key: int, base: int) -> int:
    """The cell key's rounding offset, 0..base-1."""
    return cell_key * base // KEYS


def perturb_count(n: int, cell_key: int, base: int) -> int:
    """The published value of a count: keyed random rounding to ``base`` (0 stays 0)."""
    if n == 0:
        return 0
    return base * ((n + offset(cell_key, base)) // base)


def perturb_magnitude(value: Fraction | float, cell_key: int, base: int) -> int:
    """A mean or quartile (days) randomly rounded to ``base`` days, keyed on the cell key."""
    shift = Fraction(2 * cell_key + 1, 2 * KEYS)  # the key's position in (0, 1)
    return base * math.floor(Fraction(value) / base + shift)
