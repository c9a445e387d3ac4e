"""The scored pairs and the conflict rules' tokens keyed by node id, built once for clustering.

Clustering forms people at one threshold, estimates their quality, and may do both again at a raised
threshold (link/cluster.py). Every step reads the scored pairs by node id (record_index.node_id) and
the conflict rules read a few token columns per record. Joining the pairs to the record index by
(source_dataset, record_key) strings on every step cost more than the steps themselves at national
scale, so both are laid out once here, as integer-keyed tables inside the run database (tokens never
leave it).
"""

from __future__ import annotations

from linkage.config.linkage import Clustering
from linkage.link.backend import Backend
from linkage.link.model import NODE_ID
from linkage.link.recalibrate import COLUMN as CALIBRATED
from linkage.tokens.spec import RECORD_KEY, SOURCE_DATASET

PAIRS = "cluster_pairs"  # node_id_l, node_id_r, match_weight, match_probability, calibrated_probability
TOKENS = "cluster_tokens"  # node_id and every column a conflict rule reads


def rule_columns(clustering: Clustering) -> list[str]:
    """The token and marker columns the conflict rules read (identifier, weak marker, typo terms)."""
    return sorted(
        {
            c
            for r in clustering.conflict_rules()
            for c in (r.column, r.weak_marker, *(x for t in r.unless_any for x in (t.left, t.right)))
            if c
        }
    )


def node_pairs(backend: Backend, predictions: str, record_index: str) -> str:
    """The scored pairs by node id. Pairs scored over one table (model.one_table) carry the node ids
    already; pairs scored per agency, or read back from pairs.parquet, are joined to the record index."""
    held = backend.columns(predictions)
    scores = f"p.match_weight, p.match_probability, p.{CALIBRATED}"
    if {f"{NODE_ID}_l", f"{NODE_ID}_r"} <= held:
        select = f"SELECT p.{NODE_ID}_l, p.{NODE_ID}_r, {scores} FROM {predictions} AS p"
    else:
        select = f"""
            SELECT a.{NODE_ID} AS {NODE_ID}_l, b.{NODE_ID} AS {NODE_ID}_r, {scores}
            FROM {predictions} AS p
            JOIN {record_index} AS a
              ON a.{SOURCE_DATASET} = p.{SOURCE_DATASET}_l AND a.{RECORD_KEY} = p.{RECORD_KEY}_l
            JOIN {record_index} AS b
              ON b.{SOURCE_DATASET} = p.{SOURCE_DATASET}_r AND b.{RECORD_KEY} = p.{RECORD_KEY}_r"""
    backend.con.execute(f"CREATE OR REPLACE TABLE {PAIRS} AS {select}")
    return PAIRS


def node_tokens(backend: Backend, record_index: str, inputs: dict[str, str], clustering: Clustering) -> str:
    """Per node: the columns the conflict rules read (``rule_columns``) from the loaded extracts, and
    its agency where records of one agency never join (``one_to_one``)."""
    select = "".join(f", t.{c}" for c in rule_columns(clustering))
    if clustering.one_to_one:
        select += f", i.{SOURCE_DATASET}"
    if not select:  # no rule reads a token: the node ids alone
        backend.con.execute(f"CREATE OR REPLACE TABLE {TOKENS} AS SELECT {NODE_ID} FROM {record_index}")
        return TOKENS
    union = " UNION ALL ".join(
        f"SELECT i.{NODE_ID}{select} "
        f"FROM {table} AS t JOIN {record_index} AS i "
        f"ON i.{SOURCE_DATASET} = '{agency}' AND i.{RECORD_KEY} = t.{RECORD_KEY}"
        for agency, table in inputs.items()
    )
    backend.con.execute(f"CREATE OR REPLACE TABLE {TOKENS} AS {union}")
    return TOKENS


def drop(backend: Backend) -> None:
    """Free the node tables once the people are formed."""
    for table in (PAIRS, TOKENS):
        backend.con.execute(f"DROP TABLE IF EXISTS {table}")
