"""The blocking-recall estimate (link/metrics.py): near misses weighted by their rule's miss rate."""

from __future__ import annotations

import pyarrow as pa
import pytest

from linkage.config.linkage import Backend as BackendConfig
from linkage.config.linkage import BlockingRule
from linkage.link.backend import open_backend
from linkage.link.metrics import BlockingRecall, estimate_blocking_recall

# token columns standing for four rules: a, b, c of one column each, d a crossed rule (a name swap)
RULES = [
    BlockingRule(name="a", equal=["dob"]),
    BlockingRule(name="b", equal=["pc"]),
    BlockingRule(name="c", equal=["id_x"]),
    BlockingRule(name="d", equal=["fn1=sn"]),
]
COLUMNS = ["dob", "pc", "id_x", "fn1", "sn"]


def _kind(name: str, count: int, p: float, **values: tuple[int | None, int | None]) -> list[dict]:
    """``count`` pairs with these (left, right) values (every other column missing on both)."""
    return [{"key": f"{name}{i}", "p": p, **values} for i in range(count)]


def _estimate(tmp_path, pairs: list[dict], rules: list[BlockingRule]) -> BlockingRecall:
    """The estimate over ``pairs`` (one source 'x'), as the run computes it after scoring."""
    records: dict[str, list] = {"record_key": [], **{c: [] for c in COLUMNS}}
    scored: dict[str, list] = {k: [] for k in ("source_dataset_l", "record_key_l", "source_dataset_r",
                                                "record_key_r", "match_probability")}  # fmt: skip
    for pair in pairs:
        for side, i in (("l", 0), ("r", 1)):
            records["record_key"].append(f"{pair['key']}/{side}")
            for column in COLUMNS:
                records[column].append(pair.get(column, (None, None))[i])
            scored[f"source_dataset_{side}"].append("x")
            scored[f"record_key_{side}"].append(f"{pair['key']}/{side}")
        scored["match_probability"].append(pair["p"])
    values = {c: pa.array(records[c], pa.int64()) for c in COLUMNS}
    with open_backend(BackendConfig(), tmp_path / "work") as backend:
        backend.con.register("x_input", pa.table({"record_key": records["record_key"], **values}))
        backend.con.register("scored", pa.table(scored))
        return estimate_blocking_recall(backend, "scored", {"x": "x_input"}, rules, COLUMNS)


def test_each_near_miss_counts_the_odds_that_its_rule_fails(tmp_path):
    result = _estimate(
        tmp_path,
        [
            *_kind("both", 60, 0.9, dob=(1, 1), pc=(2, 2)),
            *_kind("a_only", 30, 0.9, dob=(1, 1), pc=(2, 3)),  # b could find them, and misses
            *_kind("b_only", 10, 0.9, dob=(1, 4), pc=(2, 2)),  # a misses
            *_kind("c_only", 5, 0.9, id_x=(5, 5)),  # no other rule could find them: c's rate unmeasured
            *_kind("swap", 4, 0.9, fn1=(6, 7), sn=(7, 6)),  # a name swap: d and its mirror hold, one rule
            *_kind("unlikely", 50, 0.1, dob=(1, 1), pc=(2, 3)),  # p < 0.5: not a likely match
        ],
        RULES,
    )
    by_name = {r.name: (r.could_find, r.missed, r.found_alone) for r in result.rules}
    # a could find the 70 pairs b found, and misses 10; b could find the 90 a found, and misses 30;
    # no other rule found a pair c or d could find
    assert by_name == {"a": (70, 10, 30), "b": (90, 30, 10), "c": (0, 0, 5), "d": (0, 0, 4)}
    assert (result.likely_matches, result.found_by_one_rule) == (109, 49)
    # near misses: 30 of a at its odds (q = 11/72, smoothed: 11/61), 10 of b (q = 31/92: 31/61), and
    # those of c and d, whose rates are unmeasured, at q = 1/2: one lost match each
    lost = 30 * 11 / 61 + 10 * 31 / 61 + 5 + 4
    assert result.estimate == pytest.approx(109 / (109 + lost), abs=1e-6)


def test_a_rule_that_often_fails_weighs_a_near_miss_as_one_lost_match_at_most(tmp_path):
    """q is capped at 1/2: a rule failing 9 matches in 10 (a transposition rule, on ordinary matches)
    does not make each of its near misses nine lost matches."""
    result = _estimate(
        tmp_path,
        [
            *_kind("both", 20, 0.9, dob=(1, 1), pc=(2, 2)),
            *_kind("b_only", 180, 0.9, dob=(1, 4), pc=(2, 2)),  # a misses 180 of the 200 it could find
            *_kind("a_only", 10, 0.9, dob=(1, 1)),  # b could not find these (no postcode)
        ],
        RULES[:2],
    )
    assert {r.name: (r.could_find, r.missed) for r in result.rules} == {"a": (200, 180), "b": (20, 0)}
    # a's 10 near misses at the cap (one each); b's 180 at q = 1/22 (never seen to miss, smoothed)
    assert result.estimate == pytest.approx(210 / (210 + 10 + 180 / 21), abs=1e-6)
