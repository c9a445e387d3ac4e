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
from pydantic import BaseModel

from linkage.config.linkage import Clustering, ConflictRule
from linkage.link.backend import Backend
from linkage.link.recalibrate import COLUMN as CALIBRATED
from linkage.tokens.spec import RECORD_KEY, SOURCE_DATASET

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
    each probability array in ``probs`` (the model's own, the checked ones): one walk of the people.

    ``left``/``right``/``probs``: the scored pairs inside one person (node ids); ``label``: person per
    node. Only people with unscored pairs are walked (shortest paths over -log p, igraph).
    """
    sizes = np.bincount(label[label >= 0])
    scored_in = np.bincount(label[left], minlength=len(sizes))
    possible = sizes * (sizes - 1) // 2
    totals = [0.0] * len(probs)
    people = np.flatnonzero(possible > scored_in)
    if not len(people):
        return totals
    order = np.argsort(label[left], kind="stable")  # scored pairs grouped by person
    starts = np.searchsorted(label[left][order], people)
    ends = np.searchsorted(label[left][order], people, side="right")
    by_person = np.argsort(label, kind="stable")  # nodes grouped by person, ascending within one
    first = np.searchsorted(label[by_person], people)
    last = np.searchsorted(label[by_person], people, side="right")
    for lo, hi, start, end in zip(first.tolist(), last.tolist(), starts.tolist(), ends.tolist(), strict=True):
        nodes = by_person[lo:hi]
        edges = order[start:end]
        ia, ib = np.searchsorted(nodes, left[edges]), np.searchsorted(nodes, right[edges])
        graph = igraph.Graph(len(nodes))
        graph.add_edges(np.column_stack([ia, ib]))
        direct = np.zeros((len(nodes), len(nodes)), dtype=bool)
        direct[ia, ib] = direct[ib, ia] = True
        upper = np.triu_indices(len(nodes), k=1)
        unscored = ~direct[upper]
        for k, prob in enumerate(probs):
            cost = -np.log(np.clip(prob[edges], 1e-300, 1.0))
            dist = np.asarray(graph.distances(weights=cost.tolist()), dtype=float)
            totals[k] += float(np.exp(-dist[upper])[unscored].sum())  # unreachable: inf -> 0
    return totals


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
    backend: Backend,
    predictions: str,
    clusters: str,
    record_index: str,
    inputs: dict[str, str],
    clustering: Clustering,
) -> ExpectedQuality:
    """Expected precision/recall of the clusters in ``clusters`` from the scored pairs (no truth);
    ``inputs`` are the loaded extracts by agency, ``clustering`` the settings that formed the people."""
    rules = clustering.conflict_rules() if clustering.method == "constrained_components" else []
    conflicts = [_conflict_sql(r) for r in rules]
    if clustering.one_to_one:
        conflicts.append(f"l.{SOURCE_DATASET} = r.{SOURCE_DATASET}")
    columns = sorted(
        {
            c
            for r in rules
            for c in (r.column, r.weak_marker, *(x for t in r.unless_any for x in (t.left, t.right)))
            if c
        }
    )
    select = "".join(f", {c}" for c in columns)
    union = " UNION ALL ".join(
        f"SELECT '{agency}' AS {SOURCE_DATASET}, {RECORD_KEY}{select} FROM {table}"
        for agency, table in inputs.items()
    )
    pairs = backend.con.sql(f"""
        WITH person AS (  -- the person of each record, by node id, with the tokens the rules read
            SELECT r.node_id, c.person_id, k.*
            FROM {record_index} AS r
            JOIN {clusters} AS c USING ({SOURCE_DATASET}, {RECORD_KEY})
            JOIN ({union}) AS k USING ({SOURCE_DATASET}, {RECORD_KEY})
        ),
        scored AS (  -- every scored pair: its nodes, its two people, its probability
            SELECT pa.node_id AS l_node, pb.node_id AS r_node, pa.person_id AS l_person,
                   pb.person_id AS r_person, p.{CALIBRATED} AS p,
                   p.match_probability AS model_p
            FROM {predictions} AS p
            JOIN person AS pa
              ON pa.{SOURCE_DATASET} = p.{SOURCE_DATASET}_l AND pa.{RECORD_KEY} = p.{RECORD_KEY}_l
            JOIN person AS pb
              ON pb.{SOURCE_DATASET} = p.{SOURCE_DATASET}_r AND pb.{RECORD_KEY} = p.{RECORD_KEY}_r
        ),
        apart AS (  -- two people the rules keep apart: a record of one conflicts with one of the other
            -- (pairs under probability {MIN_P} are left out of this check: together they weigh little)
            SELECT DISTINCT u.l_person, u.r_person
            FROM (SELECT DISTINCT l_person, r_person FROM scored
                  WHERE l_person <> r_person AND p >= {MIN_P}) AS u
            JOIN person AS l ON l.person_id = u.l_person
            JOIN person AS r ON r.person_id = u.r_person
            WHERE {" OR ".join(conflicts) or "false"}
        )
        SELECT s.l_node, s.r_node, s.l_person = s.r_person AS joined, a.l_person IS NOT NULL AS apart, s.p,
               s.model_p
        FROM scored AS s LEFT JOIN apart AS a USING (l_person, r_person)
    """).fetchnumpy()
    labels = backend.con.sql(f"""
        SELECT r.node_id, dense_rank() OVER (ORDER BY c.person_id) - 1 AS person
        FROM {record_index} AS r JOIN {clusters} AS c USING ({SOURCE_DATASET}, {RECORD_KEY})
    """).fetchnumpy()
    label = np.full(int(labels["node_id"].max()) + 1 if len(labels["node_id"]) else 1, -1, dtype=np.int64)
    label[labels["node_id"]] = labels["person"]
    sizes = np.bincount(label[label >= 0])
    joined_pairs = int((sizes * (sizes - 1) // 2).sum())
    joined = np.asarray(pairs["joined"], dtype=bool)
    may_match = joined | ~np.asarray(pairs["apart"], dtype=bool)
    left, right = np.asarray(pairs["l_node"]), np.asarray(pairs["r_node"])

    own = np.asarray(pairs["model_p"], dtype=float)
    checked = np.asarray(pairs["p"], dtype=float)
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
