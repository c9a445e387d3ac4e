"""Disclosure control cell by cell, on hand-computed tables (release/sdc.py)."""

from __future__ import annotations

import itertools

import pytest

from linkage.config.release import SDCRules
from linkage.release.sdc import (
    Line,
    count_reason,
    magnitude_reason,
    protect,
    recoverable,
    round_to_base,
)

RULES = SDCRules()  # threshold 10, base 5, zeros disclosive, (2, 0.9), p 0.10


def grid(cells: dict[tuple[str, str], int]) -> tuple[dict, list[Line]]:
    """A two-way table with row, column and grand totals: values by key, and its additive lines."""
    rows = sorted({r for r, _ in cells})
    cols = sorted({c for _, c in cells})
    values = dict(cells)
    for r in rows:
        values[(r, "All")] = sum(cells[(r, c)] for c in cols)
    for c in [*cols, "All"]:
        values[("All", c)] = sum(values[(r, c)] for r in rows)
    lines = [Line(tuple((r, c) for c in cols), (r, "All")) for r in [*rows, "All"]]
    lines += [Line(tuple((r, c) for r in rows), ("All", c)) for c in [*cols, "All"]]
    return values, lines


def primary(values: dict) -> list:
    return [k for k, v in values.items() if count_reason(v, v, RULES)]


def test_small_cells_suppressed_and_the_rest_rounded_exactly():
    #          x    y    z | All
    #   A      3   25   40 |  68
    #   B     12   31   50 |  93
    #   All   15   56   90 | 161
    values, lines = grid(
        {("A", "x"): 3, ("A", "y"): 25, ("A", "z"): 40, ("B", "x"): 12, ("B", "y"): 31, ("B", "z"): 50}
    )
    p = protect(values, primary(values), lines, RULES)
    assert p.primary == {("A", "x")}
    # row A needs a partner for A.x: the smallest, A.y (25); column x then B.x (12); column y then
    # B.y (31); row B now has two. The 2x2 rectangle is the classic minimal safe pattern.
    assert p.secondary == {("A", "y"), ("B", "x"), ("B", "y")}
    published = {k: round_to_base(v, 5) for k, v in values.items() if k not in p.suppressed}
    assert published == {
        ("A", "z"): 40,
        ("B", "z"): 50,
        ("A", "All"): 70,  # 68: totals are rounded independently of their parts
        ("B", "All"): 95,  # 93
        ("All", "x"): 15,
        ("All", "y"): 55,  # 56
        ("All", "z"): 90,
        ("All", "All"): 160,  # 161
    }
    assert recoverable(p.suppressed, lines, 1000)[0] == set()


def test_a_single_suppressed_cell_and_its_total_get_a_secondary_suppression():
    values = {"a": 3, "b": 20, "c": 30, "total": 53}
    line = Line(("a", "b", "c"), "total")
    p = protect(values, primary(values), [line], RULES)
    assert p.primary == {"a"}
    assert p.secondary == {"b"}  # 53 - 20 - 30 would give a away; b is the smallest partner


def test_only_detail_and_total_means_the_total_goes_too():
    values = {"only": 4, "total": 4}
    p = protect(values, primary(values), [Line(("only",), "total")], RULES)
    assert p.suppressed == {"only", "total"}


def test_a_total_over_no_category_stays_suppressed_without_a_complement():
    """A table whose filter nobody meets (no prison reception in a small release) has totals over no
    category: zero, primary, and no cell to pair with (release crashed with ValueError)."""
    values = {"empty total": 0, "a": 12, "b": 30, "total": 42}
    lines = [Line((), "empty total"), Line(("a", "b"), "total")]
    p = protect(values, primary(values), lines, RULES)
    assert p.suppressed == {"empty total"} and p.secondary == set()


def test_zeros_follow_the_policy():
    assert count_reason(0, 0, RULES) == "zero"
    assert count_reason(0, 0, SDCRules(zeros_disclosive=False)) is None
    assert count_reason(9, 9, RULES) == "threshold"
    assert count_reason(10, 10, RULES) is None
    # one person's many crimes cannot make a cell safe
    assert count_reason(40, 3, RULES) == "persons"


def test_complement_prefers_non_zero_cells():
    values = {"a": 4, "z": 0, "b": 30, "total": 34}
    rules = SDCRules(zeros_disclosive=False)
    p = protect(values, ["a"], [Line(("a", "z", "b"), "total")], rules)
    assert p.secondary == {"b"}  # suppressing the zero would leave a = 34 - 30 - 0


@pytest.mark.parametrize(
    ("n", "rounded"), [(0, 0), (10, 10), (12, 10), (12.5, 15), (13, 15), (17, 15), (18, 20), (161, 160)]
)
def test_rounding_base_5_half_up(n, rounded):
    assert round_to_base(n, 5) == rounded


def test_dominance_and_p_percent():
    ten = [5.0] * 10
    assert magnitude_reason(10, 10, sum(ten), ten, RULES) is None
    assert magnitude_reason(9, 9, 45, [5, 5], RULES) == "threshold"
    dominated = [1000.0, 900.0] + [10.0] * 10  # two largest: 1900 of 2000 = 95 % > 90 %
    assert magnitude_reason(12, 12, sum(dominated), dominated[:2], RULES) == "dominance"
    spread = [1000.0, 1000.0] + [30.0] * 10  # 2000 of 2300 = 87 %; rest 300 >= 10 % of 1000
    assert magnitude_reason(12, 12, sum(spread), spread[:2], RULES) is None
    # With (2, 0.9) and p = 0.10, p% never fires alone; with k = 0.99 it does: top two 1700 of 1790
    # = 95 % passes, but the rest (90) is under 10 % of the largest, so contributor 2 learns it.
    p_fail = [1000.0, 700.0] + [9.0] * 10
    loose = SDCRules(dominance={"n": 2, "k": 0.99})
    assert magnitude_reason(12, 12, sum(p_fail), p_fail[:2], loose) == "p-percent"


def test_audit_finds_a_bridge_cell_that_the_line_rule_misses_and_protect_fixes_it():
    # Two suppressed rectangles (r1,r2 x c1,c2) and (r3,r4 x c3,c4) joined by one cell (r2,c3):
    # every row and column has >= 2 suppressed cells, yet summing rows r1,r2 minus columns c1,c2
    # leaves exactly the bridge cell.
    cells = {(f"r{i}", f"c{j}"): 50 for i, j in itertools.product(range(1, 5), range(1, 5))}
    values, lines = grid(cells)
    pattern = {("r1", "c1"), ("r1", "c2"), ("r2", "c1"), ("r2", "c2")}
    pattern |= {("r3", "c3"), ("r3", "c4"), ("r4", "c3"), ("r4", "c4"), ("r2", "c3")}
    for line in lines:  # the line rule is satisfied
        assert sum(c in pattern for c in line.cells) != 1
    assert recoverable(pattern, lines, 1000)[0] == {("r2", "c3")}
    p = protect(values, pattern, lines, RULES)
    assert pattern < p.suppressed
    assert recoverable(p.suppressed, lines, 1000)[0] == set()
