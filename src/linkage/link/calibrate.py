"""The model's own estimate of the precision and recall of the people it formed (no ground truth).

The threshold curve (threshold.py) estimates precision and recall of *pairs* at a threshold. What
`linkage evaluate` measures, and what an analysis of people relies on, are the pairs of records put
in one person by the clustering, which differ from the pairs above the threshold in two ways:
  * a pair above the threshold may be refused by a conflict rule (FEBRL4: dates of birth replaced
    wholesale), so fewer true pairs are joined than the curve says;
  * records joined through others (a - b - c) make pairs the model never scored directly (a, c),
    right only when the chain is; on data where people have many records (the synthetic justice
    data) these cost precision the curve cannot see.
So over the clusters, with p the match probability of a scored pair:
    E[true pairs joined]   J = sum of p over scored pairs inside one person
                             + for each unscored pair inside one person, the product of p along the
                               strongest chain of scored pairs joining it inside that person (a chain
                               is right when every link on it is; links taken as independent)
    expected precision       J / (pairs of records inside one person)
    expected recall          J / (sum of p over every scored pair that may be one person
                                  + the chained part of J)
A pair left in two people whom the clustering's conflict rules keep apart (a record of one conflicts
with a record of the other: two valid ids, two unrelated dates of birth; one-to-one: one source)
counts for nothing: the rules are part of the model. Without this, relatives sharing a home and a
surname (p near 0.7 on pseudopeople's census), and a W2 record that links to every member of its
household (p near 0.9 to each, one of them right), count as matches the clustering missed.
Recall still counts only pairs that blocking found or chains reach: a true pair scored under the
pair floor or never blocked is invisible (the blocking-recall estimate is beside it).
The same figures are computed a second time from the probabilities checked against an id
(link/recalibrate.py): `checked_precision`, `checked_recall`, compared by the precision floor's guard.
"""

from __future__ import annotations

import igraph
import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from linkage.config.linkage import Clustering, ConflictRule
from linkage.link.backend import Backend
from linkage.link.model import NODE_ID
from linkage.link.recalibrate import COLUMN as CALIBRATED
from linkage.tokens.spec import SOURCE_DATASET

MIN_P = 0.01  # scored pairs below this probability are not checked for people kept apart


class ExpectedQuality(BaseModel):
    """The model's expected pairwise precision/recall of the clusters (see the module docstring)."""

    pairs_joined: int  # pairs of records inside one person
    pairs_joined_scored: int  # of which the model scored directly
    expected_true_joined: float  # J
    expected_precision: float
    expected_recall: float
    # the same from the probabilities checked against an id (link/recalibrate.py; the model's own where
    # the data has none): what the precision floor's F1 guard compares
    checked_precision: float | None = None
    checked_recall: float | None = None

    @property
    def f1(self) -> float:
        return _f1(self.expected_precision, self.expected_recall)

    @property
    def checked_f1(self) -> float:
        if self.checked_precision is None or self.checked_recall is None:
            return self.f1
        return _f1(self.checked_precision, self.checked_recall)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _chained(left: np.ndarray, right: np.ndarray, probs: list[np.ndarray], label: np.ndarray) -> list[float]:
    """Sum over unscored pairs inside one person of the product of p along their strongest chain, for
    each probability array in ``probs`` (the model's own, the checked ones).

    ``left``/``right``/``probs``: the scored pairs inside one person (node ids); ``label``: person per
    node (-1: no record). Only people with unscored pairs are walked: the strongest chain is the
    shortest path over -log p. People of up to ``_BATCHED`` records, nearly all of them, are walked
    together by size, as Floyd-Warshall over a stack of small matrices (numpy: a Python loop per person
    cost 8 s per estimate at 10 M records); larger ones one by one with igraph's shortest paths.
    """
    held = label >= 0
    sizes = np.bincount(label[held])
    scored_in = np.bincount(label[left], minlength=len(sizes))
    totals = [0.0] * len(probs)
    people = np.flatnonzero(sizes * (sizes - 1) // 2 > scored_in)
    if not len(people):
        return totals
    walked = np.zeros(len(sizes), dtype=bool)
    walked[people] = True
    # each record's position within its person (0, 1, ...: any order), for the people walked only
    nodes = np.flatnonzero(held)
    nodes = nodes[walked[label[nodes]]]
    by_person = nodes[np.argsort(label[nodes])]
    first = np.searchsorted(label[by_person], label[by_person])
    local = np.full(len(label), -1, dtype=np.int64)
    local[by_person] = np.arange(len(by_person)) - first
    costs = [-np.log(np.clip(p, 1e-300, 1.0)) for p in probs]
    within = np.flatnonzero(walked[label[left]])  # their scored pairs, grouped by person
    order = within[np.argsort(label[left[within]])]
    grouped = label[left][order]

    def pairs_of(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scored pairs of the people ``chunk`` (ascending), and each one's person (0..len-1)."""
        starts = np.searchsorted(grouped, chunk)
        lengths = np.searchsorted(grouped, chunk, side="right") - starts
        member = np.repeat(np.arange(len(chunk)), lengths)
        offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return order[np.repeat(starts, lengths) + offset], member

    for size in np.unique(sizes[people]).tolist():
        group = people[sizes[people] == size]
        # people of up to _BATCHED records together; each larger one alone
        step = max(1, _BATCH_CELLS // (size * size)) if size <= _BATCHED else 1
        for lo in range(0, len(group), step):
            chunk = group[lo : lo + step]
            pairs, member = pairs_of(chunk)
            which = (member, local[left[pairs]], local[right[pairs]])
            walk = _floyd if size <= _BATCHED else _walk
            walk(len(chunk), size, which, [c[pairs] for c in costs], totals)
    return totals


_BATCHED = 64  # people up to this many records are walked in batches (Floyd-Warshall, size**3 each)
_BATCH_CELLS = 1 << 22  # distance cells per batch (32 MiB of float64)


def _floyd(
    count: int, size: int, which: tuple[np.ndarray, np.ndarray, np.ndarray], costs: list[np.ndarray],
    totals: list[float],
) -> None:  # fmt: skip
    """Add the chained part of ``count`` people of ``size`` records each to ``totals``: ``which`` is
    (person in the batch, position of the left record, of the right record) per scored pair."""
    person, a, b = which
    upper = np.triu_indices(size, k=1)
    direct = np.zeros((count, size, size), dtype=bool)
    direct[person, a, b] = direct[person, b, a] = True
    unscored = ~direct[:, upper[0], upper[1]]
    for k, cost in enumerate(costs):
        dist = np.full((count, size, size), np.inf)
        dist[:, np.arange(size), np.arange(size)] = 0.0
        np.minimum.at(dist, (person, a, b), cost)  # the strongest of a pair scored twice
        np.minimum.at(dist, (person, b, a), cost)
        for via in range(size):
            np.minimum(dist, dist[:, :, via, None] + dist[:, None, via, :], out=dist)
        totals[k] += float(np.exp(-dist[:, upper[0], upper[1]])[unscored].sum())  # unreachable: inf -> 0


def _walk(
    count: int, size: int, which: tuple[np.ndarray, np.ndarray, np.ndarray], costs: list[np.ndarray],
    totals: list[float],
) -> None:  # fmt: skip
    """``_floyd`` for one large person (``count`` is 1), with igraph's shortest paths."""
    _, a, b = which
    graph = igraph.Graph(size)
    graph.add_edges(np.column_stack([a, b]))
    direct = np.zeros((size, size), dtype=bool)
    direct[a, b] = direct[b, a] = True
    upper = np.triu_indices(size, k=1)
    for k, cost in enumerate(costs):
        dist = np.asarray(graph.distances(weights=cost.tolist()), dtype=float)
        totals[k] += float(np.exp(-dist[upper])[~direct[upper]].sum())


def _conflict_sql(rule: ConflictRule) -> str:
    """SQL over the records ``l`` and ``r`` that holds when they conflict on ``rule`` (as cluster.py)."""
    c = rule.column
    sql = f"l.{c} IS NOT NULL AND r.{c} IS NOT NULL AND l.{c} <> r.{c}"
    if rule.weak_marker:  # weak evidence never conflicts
        sql += f" AND NOT coalesce(l.{rule.weak_marker}, false) AND NOT coalesce(r.{rule.weak_marker}, false)"
    if rule.unless_any:
        typo = " OR ".join(f"l.{t.left} = r.{t.right} OR l.{t.right} = r.{t.left}" for t in rule.unless_any)
        sql += f" AND NOT coalesce({typo}, false)"
    return f"({sql})"


def expected_quality(
    backend: Backend, pairs: str, tokens: str, label: np.ndarray, clustering: Clustering
) -> ExpectedQuality:
    """Expected precision/recall of the people ``label`` (the person of each node id: its smallest node
    id; node 0 is not a record) from the scored pairs (no truth). ``pairs`` and ``tokens`` are the
    node tables of link/nodes.py; ``clustering`` the settings that formed the people."""
    label = label.copy()
    label[0] = -1
    scored = backend.con.sql(
        f"SELECT {NODE_ID}_l, {NODE_ID}_r, {CALIBRATED}, match_probability FROM {pairs}"
    ).fetchnumpy()
    left, right = np.asarray(scored[f"{NODE_ID}_l"]), np.asarray(scored[f"{NODE_ID}_r"])
    own = np.asarray(scored["match_probability"], dtype=float)
    checked = np.asarray(scored[CALIBRATED], dtype=float)
    if np.isnan(own).any() or np.isnan(checked).any():  # would silently spread through every estimate
        raise ValueError(f"{pairs}: a scored pair has no match probability (NaN)")
    joined = label[left] == label[right]
    may_match = joined | ~_apart(backend, tokens, label, left, right, ~joined, checked, clustering)
    sizes = np.bincount(label[label >= 0])
    joined_pairs = int((sizes * (sizes - 1) // 2).sum())
    # the checked figures are the model's own where no id checked the model (one walk then)
    probs = [own] if np.array_equal(own, checked) else [own, checked]
    chains = _chained(left[joined], right[joined], [p[joined] for p in probs], label)

    def estimate(prob: np.ndarray, chained: float) -> tuple[float, float, float]:  # (J, precision, recall)
        expected = float(prob[joined].sum()) + chained
        everything = float(prob[may_match].sum()) + chained
        precision = expected / joined_pairs if joined_pairs else 1.0
        return expected, precision, expected / everything if everything else 1.0

    expected, precision, recall = estimate(own, chains[0])
    _, checked_precision, checked_recall = estimate(probs[-1], chains[-1])
    return ExpectedQuality(
        pairs_joined=joined_pairs,
        pairs_joined_scored=int(joined.sum()),
        expected_true_joined=round(expected, 3),
        expected_precision=round(precision, 6),
        expected_recall=round(recall, 6),
        checked_precision=round(checked_precision, 6),
        checked_recall=round(checked_recall, 6),
    )


def _apart(
    backend: Backend, tokens: str, label: np.ndarray, left: np.ndarray, right: np.ndarray,
    across: np.ndarray, prob: np.ndarray, clustering: Clustering,
) -> np.ndarray:  # fmt: skip
    """Per scored pair: are its two people kept apart by the conflict rules (a record of one conflicts
    with a record of the other)? ``across``: the pairs between two people. Two people are checked (in
    the database, where the tokens are) when a pair of probability ``MIN_P`` or more joins them:
    together the others weigh little."""
    rules = clustering.conflict_rules() if clustering.method == "constrained_components" else []
    conflicts = [_conflict_sql(r) for r in rules]
    if clustering.one_to_one:
        conflicts.append(f"l.{SOURCE_DATASET} = r.{SOURCE_DATASET}")
    apart = np.zeros(len(left), dtype=bool)
    if not conflicts or not across.any():
        return apart
    base = len(label)
    key = label[left] * base + label[right]  # the pair of people, as one integer
    people = np.unique(key[across & (prob >= MIN_P)])
    nodes = np.flatnonzero(label >= 0)
    backend.con.register("eq_people", pa.table({"l_person": people // base, "r_person": people % base}))
    backend.con.register("eq_labels", pa.table({NODE_ID: nodes, "person_id": label[nodes]}))
    try:
        kept_apart = backend.con.sql(f"""
            WITH person AS (  -- the records of the people concerned, with the tokens the rules read
                SELECT l.person_id, t.*
                FROM eq_labels AS l JOIN {tokens} AS t USING ({NODE_ID})
                WHERE l.person_id IN (SELECT l_person FROM eq_people UNION SELECT r_person FROM eq_people)
            )
            SELECT DISTINCT u.l_person * {base} + u.r_person AS people
            FROM eq_people AS u
            JOIN person AS l ON l.person_id = u.l_person
            JOIN person AS r ON r.person_id = u.r_person
            WHERE {" OR ".join(conflicts)}
        """).fetchnumpy()["people"]
    finally:
        backend.con.unregister("eq_people")
        backend.con.unregister("eq_labels")
    apart[across] = np.isin(key[across], np.asarray(kept_apart))
    return apart
