"""The blocking-recall estimate (link/metrics.py): near misses weighted by their rule's miss rate."""

from __future__ import annotations

import pyarrow as pa
import pytest

from linkage.config.linkage import Backend as BackendConfig
from linkage.config.linkage import BlockingRule
from linkage.link.backend import open_backend
from linkage.link.metrics import estimate_blocking_recall
from linkage.link.model import blocking_rules_sql


def _pairs(kind: str, count: int, a: tuple, b: tuple, c: tuple, p: float) -> list[dict]:
    """``count`` pairs of records '<kind><i>/l' and '<kind><i>/r' with values (left, right) of a, b, c."""
    return [{"key": f"{kind}{i}", "a": a, "b": b, "c": c, "p": p} for i in range(count)]


@pytest.fixture
def likely_matches():
    """Likely matches (p 0.9) found by rule a, b or c, and unlikely ones (p 0.1) that must not count."""
    return [
        *_pairs("both", 60, (1, 1), (2, 2), (None, None), 0.9),
        *_pairs("a_only", 30, (1, 1), (2, 3), (None, None), 0.9),  # b held, and disagrees: b misses
        *_pairs("b_only", 10, (1, 4), (2, 2), (None, None), 0.9),  # a misses
        *_pairs("c_only", 5, (None, None), (None, None), (5, 5), 0.9),  # no other rule could find them
        *_pairs("unlikely", 50, (1, 1), (2, 3), (None, None), 0.1),
    ]


def test_each_near_miss_counts_the_odds_that_its_rule_fails(likely_matches, tmp_path):
    # token columns standing for any three rules of one column each
    columns = {"a": "dob", "b": "pc", "c": "sn"}
    rules = blocking_rules_sql([BlockingRule(name=n, equal=[c]) for n, c in columns.items()])
    records = {"key": [], "a": [], "b": [], "c": []}
    pairs = {"source_dataset_l": [], "record_key_l": [], "source_dataset_r": [], "record_key_r": [],
             "match_probability": []}  # fmt: skip
    for pair in likely_matches:
        for side, i in (("l", 0), ("r", 1)):
            records["key"].append(f"{pair['key']}/{side}")
            for column in "abc":
                records[column].append(pair[column][i])
        pairs["source_dataset_l"].append("x")
        pairs["record_key_l"].append(f"{pair['key']}/l")
        pairs["source_dataset_r"].append("x")
        pairs["record_key_r"].append(f"{pair['key']}/r")
        pairs["match_probability"].append(pair["p"])
    with open_backend(BackendConfig(), tmp_path / "work") as backend:
        backend.con.register(
            "x_input",
            pa.table(
                {
                    "record_key": records["key"],
                    **{columns[c]: pa.array(records[c], pa.int64()) for c in "abc"},
                }
            ),
        )
        backend.con.register("scored", pa.table(pairs))
        result = estimate_blocking_recall(backend, "scored", {"x": "x_input"}, rules, list(columns.values()))
    by_name = {r.name: (r.could_find, r.missed, r.found_alone) for r in result.rules}
    # a could find the 70 pairs b found, and misses 10; b could find the 90 a found, and misses 30;
    # no other rule found a pair c could find, so c's miss rate is unmeasured (Good-Turing's 1/2)
    assert by_name == {"a": (70, 10, 30), "b": (90, 30, 10), "c": (0, 0, 5)}
    assert (result.likely_matches, result.found_by_one_rule) == (105, 45)
    # lost: 30 near misses of a at odds (1/7) / (6/7), 10 of b at (1/3) / (2/3), 5 of c at 1
    lost = 30 / 6 + 10 / 2 + 5
    assert result.estimate == pytest.approx(105 / (105 + lost), abs=1e-6)
    assert result.estimate > 1 - 45 / 105  # Good-Turing's reading of the same pairs
