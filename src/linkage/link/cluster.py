"""Scored pairs -> people: the clustering step, kept apart so another method can replace it.

The contract: given the record index (every input record with a stable integer ``node_id``) and the
scored pairs, produce a table ``clusters`` with one row per input record: source_dataset,
record_key, source_row, person_id, where person_id is the smallest node_id of the person's records
(so ids depend only on which records are grouped, never on the order the engine found them in).

Two methods:
* ``connected_components`` (Splink's): records joined by any chain of pairs at or above the
  threshold are one person. One wrong pair merges two people, with all their records.
* ``constrained_components``: the same, but pairs are merged from the strongest down and a merge is
  refused when it would put two *conflicting* records in one person. A conflict rule names a strong
  identifier (``pnc``: two different PNC ids; ``dob`` unless day/month swapped or two of its three
  parts agree: two unrelated dates of birth; ``fn1`` unless a nickname, sound-alike, first three
  letters or middle name agrees: two unrelated forenames). A refused merge is not revisited, so a
  record lacking the identifier (no date of birth) joins whichever of two conflicting people it
  links to most strongly, instead of chaining them together.

Whatever the method, the clustering also returns diagnostics (counts only, never a token): clusters
still holding a conflict (possible with connected components or the override), bridge edges (pairs
whose removal would split a person), edge density and records per agency of the
largest clusters. See docs/analyst-guide.md, "Chaining".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_array
from scipy.sparse.csgraph import breadth_first_order, connected_components

from linkage.config.linkage import Clustering, ConflictRule
from linkage.link import nodes
from linkage.link.backend import Backend
from linkage.link.calibrate import ExpectedQuality, expected_quality
from linkage.link.splink_adapter import SplinkDataFrame
from linkage.link.threshold import ThresholdChoice, choose_threshold, raised
from linkage.tokens.spec import RECORD_KEY, ROLE, SOURCE_DATASET, SOURCE_ROW, VICTIM_INDEX

CLUSTERS = "clusters"
MAX_RAISES = 4  # precision first (floor_needs_f1_gain: false): raises tried, each a clustering
_PAIRWISE = 64  # distinct profiles of a group compared two by two with arrays (_Profiles.conflicted)


@dataclass
class Diagnostics:
    """Cluster diagnostics for metrics.json and the quality report (counts and weights only)."""

    conflicts: dict[str, int]  # rule column -> clusters holding two conflicting records
    bridge_edges: int  # linked pairs whose removal would split their cluster
    clusters_with_bridges: int
    largest: list[dict]  # per large cluster: size, by_dataset, edges, density, bridges, conflicts


@dataclass
class Clustered:
    table: str  # the clusters table
    method: str
    threshold: ThresholdChoice
    diagnostics: Diagnostics
    expected: ExpectedQuality  # the model's expected precision/recall of the people formed
    merges_refused: int = 0
    edges: int = 0  # linked pairs (at or above the threshold)


def _edges(backend: Backend, pairs: str, threshold: float) -> pa.Table:
    """Pairs (link/nodes.py) at or above the threshold, strongest first (ties in a fixed order)."""
    return backend.con.sql(f"""
        SELECT node_id_l, node_id_r, match_weight FROM {pairs}
        WHERE match_probability >= {threshold}
        ORDER BY match_weight DESC, node_id_l, node_id_r
    """).to_arrow_table()


def _write_clusters(backend: Backend, record_index: str, labels: pa.Table) -> str:
    """Join ``labels`` (node_id, person_id: the smallest node id of the person) to the record index."""
    held = backend.columns(record_index)
    # a victim mention shares its subject's source_row: role and victim_index tell them apart
    mentions = "".join(f", r.{c}" for c in (ROLE, VICTIM_INDEX) if c in held)
    backend.con.register("cluster_labels", labels)
    try:
        backend.con.execute(f"""
            CREATE OR REPLACE TABLE {CLUSTERS} AS
            SELECT r.{SOURCE_DATASET}, r.{RECORD_KEY}, r.{SOURCE_ROW}, l.person_id{mentions}
            FROM {record_index} AS r JOIN cluster_labels AS l USING (node_id)
            ORDER BY r.node_id
        """)
    finally:
        backend.con.unregister("cluster_labels")
    return CLUSTERS


@dataclass
class _Profiles:
    """One conflict rule's tokens as small integer codes: ``codes[node, 0]`` is the identifier,
    ``codes[node, 1:]`` the columns of its ``unless_any`` terms; -1 where missing."""

    rule: ConflictRule | None
    codes: np.ndarray
    terms: list[tuple[int, int]]  # (column index on one record, column index on the other)

    @property
    def name(self) -> str:
        """The rule's name in diagnostics: its identifier column."""
        return self.rule.column if self.rule else "one_to_one"

    def of(self, nodes: np.ndarray) -> list[tuple[int, ...]]:
        """The profile of each of ``nodes`` (all holding the identifier)."""
        return list(map(tuple, self.codes[nodes].tolist()))

    def conflict(self, p: tuple[int, ...], q: tuple[int, ...]) -> bool:
        if p[0] == q[0]:
            return False
        return not any((p[i] >= 0 and p[i] == q[j]) or (p[j] >= 0 and p[j] == q[i]) for i, j in self.terms)

    def blocks(
        self, a: dict[tuple, list[int]], b: dict[tuple, list[int]], linked: set[tuple[int, int]]
    ) -> bool:
        """Would joining people ``a`` and ``b`` (profile -> their records holding it) put two conflicting
        records in one person? With ``direct_link_overrides``, two conflicting records that the model
        links directly (``linked``: node pairs at or above the threshold, smaller node first) may join:
        the model weighed their difference; records joined only through others may not."""
        soft = self.rule is not None and self.rule.direct_link_overrides
        for p in a:
            for q in b:
                if not self.conflict(p, q):
                    continue
                if not soft:
                    return True
                if any((min(x, y), max(x, y)) not in linked for x in a[p] for y in b[q]):
                    return True
        return False

    def conflicted(self, labels: np.ndarray, *, exact: bool = True) -> np.ndarray:
        """The groups (``labels`` values) holding two conflicting records, found with array operations
        (a loop over records took seconds at 10 M): groups holding two different identifiers (their
        smallest and largest differ), then, for a rule with ``unless_any`` terms, every two distinct
        profiles of one such group compared as ``conflict`` does.

        Comparing every two profiles grows with the square of a group's distinct profiles, so groups
        holding more than ``_PAIRWISE`` of them (a chain of thousands of records before the rules break
        it) are not paired up: with ``exact=False`` (a filter, where a group too many is only more work)
        they count as conflicted, otherwise they are searched one by one, stopping at the first conflict.
        """
        has = np.flatnonzero(self.codes[:, 0] >= 0)
        low = np.full(len(labels), np.iinfo(np.int64).max)
        high = np.full(len(labels), -1)
        np.minimum.at(low, labels[has], self.codes[has, 0])
        np.maximum.at(high, labels[has], self.codes[has, 0])
        differ = np.flatnonzero(high > low)
        if not self.terms or not len(differ):
            return differ
        held = has[np.isin(labels[has], differ)]
        rows = np.unique(np.column_stack([labels[held], self.codes[held]]), axis=0)  # (group, profile)
        group, profile = rows[:, 0], rows[:, 1:]
        large = np.searchsorted(group, group, side="right") - np.searchsorted(group, group) > _PAIRWISE
        crowded = np.unique(group[large])
        if exact:
            kept = [g for g in crowded.tolist() if self._any_conflict(profile[group == g])]
            crowded = np.array(kept, dtype=np.int64)
        group, profile = group[~large], profile[~large]
        # every two distinct profiles of one group: row i with each later row j of its group
        later = np.searchsorted(group, group, side="right") - np.arange(len(group)) - 1
        i = np.repeat(np.arange(len(group)), later)
        j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(later) - later, later)
        p, q = profile[i], profile[j]
        clash = p[:, 0] != q[:, 0]
        for a, b in self.terms:
            clash &= ~(((p[:, a] >= 0) & (p[:, a] == q[:, b])) | ((p[:, b] >= 0) & (p[:, b] == q[:, a])))
        return np.unique(np.concatenate([crowded, group[i[clash]]]))

    def _any_conflict(self, profiles: np.ndarray) -> bool:
        """Do two of these distinct profiles conflict? (Stops at the first conflict.)"""
        rows = [tuple(r) for r in profiles.tolist()]
        return any(self.conflict(p, q) for k, p in enumerate(rows) for q in rows[k + 1 :])


@dataclass
class _OneSource(_Profiles):
    """One-to-one linkage: two records of one source (code = its position) never join one person.

    Profiles here are (source, node): two records conflict when their sources are equal."""

    def conflict(self, p: tuple[int, ...], q: tuple[int, ...]) -> bool:
        return p[0] == q[0] and p[1] != q[1]

    def of(self, nodes: np.ndarray) -> list[tuple[int, ...]]:
        return list(zip(self.codes[nodes, 0].tolist(), nodes.tolist(), strict=True))

    def conflicted(self, labels: np.ndarray, *, exact: bool = True) -> np.ndarray:
        has = np.flatnonzero(self.codes[:, 0] >= 0)
        base = int(self.codes[:, 0].max()) + 1 if has.size else 1
        keys, count = np.unique(labels[has] * base + self.codes[has, 0], return_counts=True)
        return np.unique(keys[count > 1] // base)


def _one_source(backend: Backend, record_index: str, n: int) -> _OneSource:
    codes = np.full((n, 1), -1, dtype=np.int64)
    table = backend.con.sql(
        f"SELECT node_id, dense_rank() OVER (ORDER BY {SOURCE_DATASET}) AS code FROM {record_index}"
    ).to_arrow_table()
    codes[table["node_id"].to_numpy(), 0] = table["code"].to_numpy()
    return _OneSource(None, codes, [])


def _profiles(backend: Backend, tokens: str, n: int, rule: ConflictRule) -> _Profiles:
    """Codes are numbers standing for the token values (``tokens``: link/nodes.py), given inside the
    database: no token reaches Python. The identifier and its typo terms share one numbering, so they
    compare.

    A record whose weak marker is true (a placeholder date, an id that failed its check) has no
    code for the identifier, so it never conflicts on it (weak evidence forbids nothing).
    """
    columns = [rule.column]
    terms = []
    for term in rule.unless_any:
        for c in (term.left, term.right):
            if c not in columns:
                columns.append(c)
        terms.append((columns.index(term.left), columns.index(term.right)))
    codes = np.full((n, len(columns)), -1, dtype=np.int64)  # node ids start at 1

    def value(i: int, c: str) -> str:
        return f"CASE WHEN {rule.weak_marker} THEN NULL ELSE {c} END" if i == 0 and rule.weak_marker else c

    union = " UNION ALL ".join(
        f"SELECT node_id, {i} AS col, {value(i, c)} AS v FROM {tokens}" for i, c in enumerate(columns)
    )
    table = backend.con.sql(f"""
        WITH held AS ({union}),
        dictionary AS (  -- one number per distinct value: codes are only ever compared for equality,
            -- so any numbering will do (no sort: a dense rank sorted 40 M values at 10 M records)
            SELECT v, row_number() OVER () AS code FROM (SELECT DISTINCT v FROM held WHERE v IS NOT NULL)
        )
        SELECT h.node_id, h.col, d.code FROM held AS h JOIN dictionary AS d USING (v)
    """).to_arrow_table()
    codes[table["node_id"].to_numpy(), table["col"].to_numpy()] = table["code"].to_numpy()
    return _Profiles(rule, codes, terms)


def _bridges(label: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The pairs inside a cluster whose removal would split it, each given by its lower end in a
    spanning tree (a node; its cluster is ``label`` of it). ``left``/``right``: the pairs inside a
    cluster, each once.

    Array operations over scipy's breadth-first spanning forest instead of igraph's bridge search:
    igraph reads the edges one by one (5 s at 10 M records before its 4 s search). A tree pair
    (parent, child) is a bridge when no other pair joins the child's subtree to the rest of its
    cluster: every non-tree pair (u, v) adds 1 at u and at v and -2 at their lowest common
    ancestor, and a subtree summing to 0 is crossed by none.
    """
    n = len(label)
    root = n  # a virtual root above every cluster's smallest node, so one search covers the forest
    tops = np.flatnonzero(label == np.arange(n))
    ends = (np.concatenate([left, right, np.full(len(tops), root)]), np.concatenate([right, left, tops]))
    graph = coo_array((np.ones(len(ends[0]), dtype=np.int8), ends), shape=(n + 1, n + 1)).tocsr()
    _, parent = breadth_first_order(graph, root, directed=True, return_predecessors=True)
    parent[root] = root
    # depth of every node, by pointer doubling (clusters are shallow: a few rounds)
    depth, up = (np.arange(n + 1) != root).astype(np.int64), parent.copy()
    while (up != root).any():
        depth += depth[up]  # (the root's depth is 0)
        up = up[up]
    ancestors = [parent]  # ancestors[k][x]: the 2**k-th ancestor of x
    while (1 << len(ancestors)) <= depth.max():
        ancestors.append(ancestors[-1][ancestors[-1]])
    tree = (parent[right] == left) | (parent[left] == right)
    u, v = left[~tree], right[~tree]
    deeper = depth[u] < depth[v]
    u, v = np.where(deeper, v, u), np.where(deeper, u, v)  # u the deeper end
    gap = depth[u] - depth[v]
    for k, up_k in enumerate(ancestors):
        u = np.where((gap >> k) & 1 == 1, up_k[u], u)
    for up_k in reversed(ancestors):
        differ = up_k[u] != up_k[v]
        u, v = np.where(differ, up_k[u], u), np.where(differ, up_k[v], v)
    lowest = np.where(u == v, u, parent[u])
    crossing = np.zeros(n + 1, dtype=np.int64)
    np.add.at(crossing, left[~tree], 1)
    np.add.at(crossing, right[~tree], 1)
    np.add.at(crossing, lowest, -2)
    by_depth = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[by_depth], np.arange(int(depth.max()) + 2))
    for d in range(int(depth.max()), 1, -1):  # children before parents: subtree sums
        nodes = by_depth[bounds[d] : bounds[d + 1]]
        np.add.at(crossing, parent[nodes], crossing[nodes])
    return np.flatnonzero((depth >= 2) & (crossing == 0))


def _components(edges: pa.Table, n: int) -> np.ndarray:
    """Connected components (the same grouping as Splink's), each labelled by its smallest node.

    scipy's, not igraph's: building an igraph graph of 12 M edges alone took 5 s (igraph reads the
    edges one by one), scipy's sparse matrix takes the arrays as they are."""
    left, right = edges["node_id_l"].to_numpy(), edges["node_id_r"].to_numpy()
    graph = coo_array((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n)).tocsr()
    _, membership = connected_components(graph, directed=True, connection="weak")
    smallest = np.full(membership.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, membership, np.arange(n))
    return smallest[membership]


def _may_conflict(labels: np.ndarray, profiles: list[_Profiles]) -> np.ndarray:
    """Per node: does its group hold two conflicting records under some rule? Only such groups can
    refuse a merge, so only they need the pairwise look."""
    flagged = np.zeros(len(labels), dtype=bool)
    for prof in profiles:
        flagged[prof.conflicted(labels, exact=False)] = True
    return flagged[labels]


def _constrained(
    edges: pa.Table, profiles: list[_Profiles], n: int, override: float
) -> tuple[np.ndarray, int]:
    """Union-find over pairs from the strongest down, refusing merges that join conflicting records.

    A pair at or above ``override`` merges anyway: a record whose PNC id was mistyped as another valid
    id still joins the person it agrees with on everything else. For a rule with
    ``direct_link_overrides`` (the date of birth), two records that differ may join when the model
    links them directly (at or above the threshold: it scored the pair with that difference); every
    conflicting pair a merge would create must be such a direct link, so a difference is accepted on
    direct evidence, never through a chain. Returns (label per node: the smallest node of its person,
    refusals). A connected component holding no two conflicting records cannot refuse
    a merge, so it is taken whole; the pairwise loop runs only over the
    (few) components that might conflict, in the same strongest-first order.
    """
    labels = _components(edges, n)
    suspect = _may_conflict(labels, profiles)
    edges = edges.filter(pa.array(suspect[edges["node_id_l"].to_numpy()]))
    parent = list(range(n))
    # per rule and root: the distinct profiles its records hold (absent when none has the identifier)
    held: list[dict[int, dict[tuple, list[int]]]] = []  # rule -> root -> profile -> records holding it
    for prof in profiles:
        nodes = np.flatnonzero((prof.codes[:, 0] >= 0) & suspect)
        held.append({x: {p: [x]} for x, p in zip(nodes.tolist(), prof.of(nodes), strict=True)})
    soft = any(p.rule is not None and p.rule.direct_link_overrides for p in profiles)
    # pairs linked directly (only a rule yielding to direct links needs them)
    ends = edges["node_id_l"].to_numpy(), edges["node_id_r"].to_numpy()
    linked = set(zip(np.minimum(*ends).tolist(), np.maximum(*ends).tolist(), strict=True)) if soft else set()

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    refused = 0
    pairs = zip(*(edges[c].to_pylist() for c in ("node_id_l", "node_id_r", "match_weight")), strict=True)
    for a, b, weight in pairs:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        if weight < override and any(
            ra in h and rb in h and p.blocks(h[ra], h[rb], linked)
            for p, h in zip(profiles, held, strict=True)
        ):
            refused += 1
            continue  # the two people would conflict and the pair is not overwhelming
        if rb < ra:
            ra, rb = rb, ra
        parent[rb] = ra  # the root is always the smallest node of the set
        for h in held:
            if rb in h:
                into = h.setdefault(ra, {})
                for profile, members in h.pop(rb).items():
                    into.setdefault(profile, []).extend(members)
    for node in np.flatnonzero(suspect).tolist():
        labels[node] = find(node)
    return labels, refused


def _diagnose(
    backend: Backend,
    record_index: str,
    edges: pa.Table,
    label: np.ndarray,
    profiles: list[_Profiles],
    largest: int,
) -> Diagnostics:
    """Conflicts, bridges and density per cluster; the ``largest`` clusters listed with their agencies."""
    left, right = edges["node_id_l"].to_numpy(), edges["node_id_r"].to_numpy()
    inside = label[left] == label[right]  # refused pairs end up between clusters
    left, right = left[inside], right[inside]
    bridges = _bridges(label, left, right)
    bridges_per_cluster = np.bincount(label[bridges], minlength=len(label))
    edges_per_cluster = np.bincount(label[left], minlength=len(label))

    conflicted = {prof.name: set(prof.conflicted(label).tolist()) for prof in profiles}

    sizes = np.bincount(label[1:], minlength=len(label))  # node 0 is not a record
    ranked = np.lexsort((np.arange(len(sizes)), -sizes))[:largest]  # largest first, ties by id
    top = [int(cid) for cid in ranked if sizes[cid] > 0]
    datasets: dict[int, dict[str, int]] = {}
    if top:
        nodes = pa.table({"node_id": np.arange(len(label)), "cluster_id": label})
        backend.con.register("diag_labels", nodes)
        try:
            for cid, ds, count in backend.sql(f"""
                SELECT l.cluster_id, r.{SOURCE_DATASET}, count(*) FROM diag_labels AS l
                JOIN {record_index} AS r USING (node_id) WHERE l.cluster_id IN ({", ".join(map(str, top))})
                GROUP BY ALL ORDER BY ALL
            """):
                datasets.setdefault(cid, {})[ds] = count
        finally:
            backend.con.unregister("diag_labels")
    listed = []
    for cid in top:
        size, e = int(sizes[cid]), int(edges_per_cluster[cid])
        listed.append(
            {
                "size": size,
                "by_dataset": datasets.get(cid, {}),
                "edges": e,
                "density": round(e / (size * (size - 1) / 2), 4) if size > 1 else 1.0,
                "bridges": int(bridges_per_cluster[cid]),
                "conflicts": sorted(col for col, bad in conflicted.items() if cid in bad),
            }
        )
    return Diagnostics(
        conflicts={col: len(bad) for col, bad in conflicted.items()},
        bridge_edges=len(bridges),
        clusters_with_bridges=int(np.count_nonzero(bridges_per_cluster)),
        largest=listed,
    )


def cluster(
    backend: Backend,
    predictions: SplinkDataFrame,
    record_index: str,
    inputs: dict[str, str],
    config: Clustering,
    *,
    largest: int = 10,
) -> Clustered:
    """Choose the threshold (unless fixed), cluster with the configured method, and diagnose."""
    threshold = choose_threshold(backend, predictions, config)
    n = backend.sql(f"SELECT max(node_id) FROM {record_index}")[0][0] + 1
    pairs = nodes.node_pairs(backend, predictions.physical_name, record_index)
    tokens = nodes.node_tokens(backend, record_index, inputs, config)
    profiles = [_profiles(backend, tokens, n, rule) for rule in config.conflict_rules()]
    if config.one_to_one:
        profiles.append(_one_source(backend, record_index, n))

    def people(at: ThresholdChoice) -> tuple[pa.Table, np.ndarray, int, ExpectedQuality]:
        edges = _edges(backend, pairs, at.threshold_match_probability)
        refused = 0
        if config.method == "connected_components":
            labels = _components(edges, n)
        else:
            labels, refused = _constrained(edges, profiles, n, config.override_match_weight)
        return edges, labels, refused, expected_quality(backend, pairs, tokens, labels, config)

    edges, labels, refused, expected = people(threshold)
    floor = config.auto_threshold.min_expected_precision
    auto = config.threshold_match_probability == "auto"
    higher = raised(threshold, expected.expected_precision, floor) if auto else None
    if higher is not None and config.auto_threshold.floor_needs_f1_gain:
        # the people fall below the floor: try the raised threshold, keep the better F1 (judged on the
        # figures checked against an id where the data has one: link/recalibrate.py). One step: each
        # is another clustering, and at 10 M synthetic records the checked F1 falls beyond the first
        first = (threshold, edges, labels, refused, expected)
        edges, labels, refused, expected = people(higher)
        threshold = higher
        if expected.checked_f1 < first[4].checked_f1:  # it costs more recall than it gains precision
            threshold, edges, labels, refused, expected = first
            threshold = threshold.model_copy(
                update={"rule": f"{threshold.rule}; kept: raising it to match weight {higher.match_weight:g} "
                        "lowered the people's expected F1"}
            )  # fmt: skip
    elif higher is not None:  # precision first: raise step by step until the people reach the floor
        start = threshold.match_weight
        for _ in range(MAX_RAISES):
            edges, labels, refused, expected = people(higher)
            threshold = higher.model_copy(update={"raised_from_match_weight": start})
            higher = raised(threshold, expected.expected_precision, floor)
            if higher is None:
                break
    nodes.drop(backend)
    node_ids = backend.con.sql(f"SELECT node_id FROM {record_index}").to_arrow_table()["node_id"]
    _write_clusters(
        backend, record_index, pa.table({"node_id": node_ids, "person_id": labels[node_ids.to_numpy()]})
    )
    threshold = threshold.model_copy(
        update={
            "people_expected_precision": expected.expected_precision,
            "people_expected_recall": expected.expected_recall,
            "people_checked_precision": expected.checked_precision,
            "people_checked_recall": expected.checked_recall,
        }
    )
    diagnostics = _diagnose(backend, record_index, edges, labels, profiles, largest)
    return Clustered(
        CLUSTERS,
        config.method,
        threshold,
        diagnostics,
        expected,
        merges_refused=refused,
        edges=edges.num_rows,
    )
