"""Scored pairs -> people: the clustering step, kept apart so another method can replace it.

The contract: given the record index (every input record with a stable integer ``node_id``) and the
scored pairs, produce a table ``clusters`` with one row per input record: source_dataset,
record_key, source_row, person_id, where person_id is the smallest node_id of the person's records
(so ids depend only on which records are grouped, never on the order the engine found them in).

Two methods:
* ``connected_components`` (Splink's): records joined by any chain of pairs at or above the
  threshold are one person. One wrong pair merges two people, with all their records.
* ``constrained_components``: the same, but pairs are merged from the strongest down and a merge is
  refused when it would give one person two different values of a ``never_link_different`` column
  (e.g. two PNC ids). This stops twins, fathers and sons sharing a name and address, and similar
  near-identical relatives from being chained into one person when either has a PNC id.
Issue 8 plans further anti-chaining methods with the same contract.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from splink.clustering import cluster_pairwise_predictions_at_threshold
from splink.internals.splink_dataframe import SplinkDataFrame

from linkage.config.linkage import Clustering
from linkage.link.backend import Backend
from linkage.tokens.spec import RECORD_KEY, SOURCE_DATASET, SOURCE_ROW

CLUSTERS = "clusters"


def _edges_sql(predictions: SplinkDataFrame, record_index: str, threshold: float) -> str:
    """Pairs at or above the threshold, re-keyed from (agency, record_key) to the integer node id."""
    return f"""
        SELECT a.node_id AS node_id_l, b.node_id AS node_id_r, p.match_weight, p.match_probability
        FROM {predictions.physical_name} AS p
        JOIN {record_index} AS a
          ON a.{SOURCE_DATASET} = p.{SOURCE_DATASET}_l AND a.{RECORD_KEY} = p.{RECORD_KEY}_l
        JOIN {record_index} AS b
          ON b.{SOURCE_DATASET} = p.{SOURCE_DATASET}_r AND b.{RECORD_KEY} = p.{RECORD_KEY}_r
        WHERE p.match_probability >= {threshold}
    """


def _write_clusters(backend: Backend, record_index: str, labels: str) -> str:
    """Join ``labels`` (node_id, cluster_id) to the record index; person_id = smallest node id."""
    backend.con.execute(f"""
        CREATE OR REPLACE TABLE {CLUSTERS} AS
        WITH labelled AS (
            SELECT node_id, min(node_id) OVER (PARTITION BY cluster_id) AS person_id FROM {labels}
        )
        SELECT r.{SOURCE_DATASET}, r.{RECORD_KEY}, r.{SOURCE_ROW}, labelled.person_id
        FROM {record_index} AS r JOIN labelled USING (node_id)
        ORDER BY r.node_id
    """)
    return CLUSTERS


def _connected_components(
    backend: Backend, predictions: SplinkDataFrame, record_index: str, threshold: float
) -> str:
    backend.con.execute(
        f"CREATE OR REPLACE TABLE cluster_edges AS {_edges_sql(predictions, record_index, threshold)}"
    )
    components = cluster_pairwise_predictions_at_threshold(
        record_index,
        "cluster_edges",
        backend.db_api,
        node_id_column_name="node_id",
        edge_id_column_name_left="node_id_l",
        edge_id_column_name_right="node_id_r",
        threshold_match_probability=threshold,
    )
    result = _write_clusters(backend, record_index, components.physical_name)
    components.drop_table_from_database_and_remove_from_cache()
    backend.con.execute("DROP TABLE cluster_edges")
    return result


def _conflict_codes(backend: Backend, record_index: str, inputs: dict[str, str], column: str) -> np.ndarray:
    """Per node (indexed by node_id), a small integer standing for its ``column`` token; -1 if missing.

    Codes are ranks of the token values computed inside the database, so no token value reaches
    Python.
    """
    union = " UNION ALL ".join(
        f"SELECT '{agency}' AS {SOURCE_DATASET}, {RECORD_KEY}, {column} AS v FROM {table}"
        for agency, table in inputs.items()
    )
    n = backend.sql(f"SELECT max(node_id) FROM {record_index}")[0][0]
    codes = np.full(n + 1, -1, dtype=np.int64)  # node ids start at 1; index 0 is unused
    table = backend.con.sql(f"""
        SELECT r.node_id, dense_rank() OVER (ORDER BY i.v) AS code
        FROM {record_index} AS r JOIN ({union}) AS i USING ({SOURCE_DATASET}, {RECORD_KEY})
        WHERE i.v IS NOT NULL
    """).to_arrow_table()
    codes[table["node_id"].to_numpy()] = table["code"].to_numpy()
    return codes


def _constrained_components(
    backend: Backend,
    predictions: SplinkDataFrame,
    record_index: str,
    threshold: float,
    inputs: dict[str, str],
    never_link_different: list[str],
    override_match_weight: float,
) -> str:
    """Union-find over pairs from the strongest down, refusing merges that join two different values.

    A pair at or above ``override_match_weight`` merges anyway: a record whose PNC id was mistyped
    as another valid id still joins the person it agrees with on everything else.
    """
    edges = backend.con.sql(f"""
        {_edges_sql(predictions, record_index, threshold)}
        -- strongest first; ties in a fixed order so the result never depends on scheduling
        ORDER BY p.match_weight DESC, node_id_l, node_id_r
    """).to_arrow_table()
    codes = [_conflict_codes(backend, record_index, inputs, c) for c in never_link_different]
    n = len(codes[0])
    parent = list(range(n))
    # per root and column: the values its records hold (an empty set when none has one)
    held = [[{int(c)} if c >= 0 else set() for c in column] for column in codes]

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    pairs = zip(*(edges[c].to_pylist() for c in ("node_id_l", "node_id_r", "match_weight")), strict=True)
    for a, b, weight in pairs:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        if weight < override_match_weight and any(h[ra] and h[rb] and not h[ra] & h[rb] for h in held):
            continue  # the two would hold different values and the pair is not overwhelming
        if rb < ra:
            ra, rb = rb, ra
        parent[rb] = ra
        for h in held:
            h[ra] |= h[rb]
    node_ids = backend.con.sql(f"SELECT node_id FROM {record_index}").to_arrow_table()["node_id"]
    labels = pa.table({"node_id": node_ids, "cluster_id": [find(x) for x in node_ids.to_pylist()]})
    backend.con.register("cluster_labels", labels)
    try:
        return _write_clusters(backend, record_index, "cluster_labels")
    finally:
        backend.con.unregister("cluster_labels")


def cluster(
    backend: Backend,
    predictions: SplinkDataFrame,
    record_index: str,
    inputs: dict[str, str],
    config: Clustering,
) -> str:
    """Cluster with the configured method; returns the name of the ``clusters`` table."""
    threshold = config.threshold_match_probability
    if config.method == "connected_components":
        return _connected_components(backend, predictions, record_index, threshold)
    return _constrained_components(
        backend,
        predictions,
        record_index,
        threshold,
        inputs,
        config.never_link_different,
        config.override_match_weight,
    )
