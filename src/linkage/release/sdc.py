"""Statistical disclosure control: primary suppression, secondary suppression, rounding.

Primary (per cell): a count is disclosive below the threshold, of journeys or of distinct persons
(one person's many crimes must not make a cell look safe), and at zero when the policy says zeros
are disclosive. A magnitude cell (e.g. total custody days) is disclosive below the threshold, when
its n largest contributions exceed k of its total (dominance), or when the total minus its two
largest contributions is less than p % of the largest (p% rule: the second contributor could
estimate the largest too closely). Defaults follow ACRO 1.0.2 (threshold 10, (2, 0.9), p = 0.10).

Secondary (across cells): a published table has additive lines (the cells of one dimension plus
their total). A line with exactly one suppressed cell gives it away by subtraction, so the
smallest other non-zero cell of that line is suppressed too, repeated to a fixed point across all
lines of all tables of a release (tables share cells by canonical key, so a margin suppressed in
one table is suppressed everywhere). Two suppressions per line are necessary but not sufficient:
a cell can still be pinned down by combining several lines (e.g. a "bridge" between two suppressed
rectangles), so an exact audit then solves the linear system of all lines for the suppressed cells
and suppresses more until no suppressed cell is uniquely determined.

Why our own code: ACRO (the SACRO checker) does primary checks only, and the established
cell-suppression tools (sdcTable/tau-Argus) are R or Java programs with no maintained Python
package; the line rule plus an exact linear audit is small, deterministic and testable.
Keys must have a deterministic repr (tuples of strings, as release/vocabulary.canonical makes):
every tie is broken by it, and sets are walked sorted by it, so the same data gives the same
suppression pattern whatever PYTHONHASHSEED is.
What is not guaranteed: the width of the interval an attacker can derive for a suppressed cell
(no minimum protection interval is enforced), and protection against data from outside the release.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from linkage.config.release import SDCRules

Key = Hashable


@dataclass(frozen=True)
class Line:
    """An additive relation published in a table: sum(details) == total."""

    details: tuple[Key, ...]
    total: Key

    @property
    def cells(self) -> tuple[Key, ...]:
        return (*self.details, self.total)


def count_reason(n: int, persons: int, rules: SDCRules) -> str | None:
    """Why a count cell must be suppressed (primary), or None if it may be published."""
    if n == 0:
        return "zero" if rules.zeros_disclosive else None
    if n < rules.threshold:
        return "threshold"
    if persons < rules.threshold:
        return "persons"
    return None


def magnitude_reason(
    n: int, persons: int, total: float, largest: Sequence[float], rules: SDCRules
) -> str | None:
    """Why a magnitude cell (a sum of non-negative contributions) must be suppressed, or None.

    ``largest`` holds the largest contributions, in decreasing order (at least dominance.n of them
    when the cell has that many).
    """
    if n < rules.threshold or persons < rules.threshold:
        return "threshold"
    if total <= 0:
        return None
    top = sorted(largest, reverse=True)
    if sum(top[: rules.dominance.n]) > rules.dominance.k * total:
        return "dominance"
    if len(top) >= 2 and total - top[0] - top[1] < rules.p_percent * top[0]:
        return "p-percent"
    return None


def round_to_base(n: float | Fraction, base: int) -> int:
    """Round half up to a multiple of ``base`` (ONS convention for published counts)."""
    return math.floor(n / base + 0.5) * base


def _complete_lines(values: Mapping[Any, float], suppressed: set[Key], lines: Sequence[Line]) -> list[Key]:
    """Suppress complementary cells until no line has exactly one suppressed cell; return the added."""
    added: list[Key] = []
    changed = True
    while changed:
        changed = False
        for line in lines:
            cells = line.cells
            hidden = [c for c in cells if c in suppressed]
            open_cells = [c for c in cells if c not in suppressed]
            if len(hidden) != 1 or not open_cells:
                # a line of one cell is a total over no category (none was observed): it is zero, and
                # no complement can hide that; the cell stays suppressed
                continue
            pick = _smallest(open_cells, values, line.total)
            suppressed.add(pick)
            added.append(pick)
            changed = True
    return added


def _smallest(candidates: list[Key], values: Mapping[Any, float], total: Key) -> Key:
    """The complement that loses least: non-zero first (a zero partner protects nothing), then the
    smallest value, details before the total, then a stable order."""
    return min(candidates, key=lambda c: (values[c] == 0, values[c], c == total, repr(c)))


def recoverable(suppressed: set[Key], lines: Sequence[Line], max_cells: int) -> tuple[set[Key], list[int]]:
    """Suppressed cells that the published lines determine exactly, and the sizes of groups too
    large to audit (more than ``max_cells`` suppressed cells).

    Published cells are constants, so each line is a linear equation in its suppressed cells. A cell
    x_i is determined iff the unit vector e_i lies in the row space of that system, i.e. iff row i of
    a null-space basis is zero. Groups of cells that share no line are solved separately.
    """
    active = [ln for ln in lines if any(c in suppressed for c in ln.cells)]
    parent: dict[Key, Key] = {}

    def find(c: Key) -> Key:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for ln in active:
        hidden = [c for c in ln.cells if c in suppressed]
        for c in hidden[1:]:
            parent[find(c)] = find(hidden[0])
    groups: dict[Key, list[Key]] = {}
    for c in sorted(suppressed, key=repr):
        groups.setdefault(find(c), []).append(c)
    determined: set[Key] = set()
    skipped: list[int] = []
    for cells in groups.values():
        if len(cells) > max_cells:
            skipped.append(len(cells))
            continue
        index = {c: i for i, c in enumerate(cells)}
        rows = []
        for ln in active:
            if ln.total in index or any(c in index for c in ln.details):
                row = np.zeros(len(cells))
                for c in ln.details:
                    if c in index:
                        row[index[c]] += 1.0
                if ln.total in index:
                    row[index[ln.total]] -= 1.0
                rows.append(row)
        if not rows:
            continue
        a = np.array(rows)
        _, s, vt = np.linalg.svd(a)
        rank = int((s > 1e-9 * max(a.shape)).sum())
        null = vt[rank:].T  # columns span the null space
        for c, i in index.items():
            if null.shape[1] == 0 or np.abs(null[i]).max() < 1e-9:
                determined.add(c)
    return determined, skipped


@dataclass
class Protection:
    """The outcome of protecting one set of cells."""

    suppressed: set[Key]
    primary: set[Key]
    secondary: set[Key]
    audit_skipped_groups: list[int]


def protect(
    values: Mapping[Any, float], primary: Iterable[Key], lines: Sequence[Line], rules: SDCRules
) -> Protection:
    """Primary + secondary suppression to a fixed point, then the exact audit until it finds nothing.

    Each audit finding is fixed by suppressing the smallest published non-zero cell on a line of the
    determined cell; every round adds at least one cell, so the loop ends (at worst with the line
    fully suppressed).
    """
    primary = set(primary)
    suppressed = set(primary)
    lines = sorted(set(lines), key=repr)  # deterministic order: the same release twice is identical
    _complete_lines(values, suppressed, lines)
    while True:
        determined, skipped = recoverable(suppressed, lines, rules.linear_audit_max_cells)
        if not determined:
            break
        progressed = False
        for cell in sorted(determined, key=repr):
            for line in lines:
                if cell in line.cells:
                    open_cells = [c for c in line.cells if c not in suppressed]
                    if open_cells:
                        suppressed.add(_smallest(open_cells, values, line.total))
                        progressed = True
                        break
            if progressed:
                break
        if not progressed:  # every line of every determined cell is already fully suppressed
            break
        _complete_lines(values, suppressed, lines)
    return Protection(suppressed, primary, suppressed - primary, skipped)
