"""Accuracy of a linkage run against synthetic ground truth (`linkage evaluate`).

Input contract: a run folder `linkage.runfolder.open_run` accepts (complete, unmodified, its extracts
unchanged), whose clusters.parquet has source_dataset, record_key, source_row and
person_id (the predicted cluster, int or str); TRUTH_DIR/records.parquet from `linkage synth`.
Records are joined on (source_dataset, source_row, victim_index): a victim mention (token spec v2) shares
its subject's source_row and is told apart by its position on the row (0 stands for the subject
itself; truth and clusters written before victim mentions have no victim_index). Pair counts come from
the contingency table of (predicted cluster, true person) cells, so no pair is ever enumerated:
    TP = sum over cells of C(n, 2); predicted pairs = sum over predicted clusters of C(size, 2);
    true pairs = sum over true persons of C(size, 2).
A measure whose denominator is zero (no predicted pairs, or no true pairs) is 1.0.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from pydantic import BaseModel

from linkage.errors import InputError
from linkage.runfolder import OpenRun, open_run

CLUSTER_COLUMNS = ("source_dataset", "record_key", "source_row", "person_id")


class PairwiseMetrics(BaseModel):
    """Precision, recall and F1 over record pairs, with the pair counts they come from."""

    precision: float
    recall: float
    f1: float
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int

    @classmethod
    def from_counts(cls, tp: int, predicted: int, true: int) -> PairwiseMetrics:
        p = tp / predicted if predicted else 1.0
        r = tp / true if true else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return cls(
            precision=p, recall=r, f1=f1, true_positive_pairs=tp, predicted_pairs=predicted, true_pairs=true
        )


class BCubed(BaseModel):
    """B-cubed precision/recall/F1: per-record overlap of its predicted and true clusters, averaged."""

    precision: float
    recall: float
    f1: float


class ClusterStats(BaseModel):
    true_clusters: int
    predicted_clusters: int
    exact_clusters: int  # true persons whose records form exactly one predicted cluster
    exact_cluster_rate: float  # exact_clusters / true_clusters
    largest_true: int
    largest_predicted: int
    true_singletons: int
    predicted_singletons: int


class JourneyAccuracy(BaseModel):
    """Journeys (RUN_DIR/journeys.parquet) against the true cases of truth/records + truth/journeys.

    A true case is reconstructed exactly when one predicted journey holds all of its records and no
    other. Per stage: share of true cases whose journey (the one holding the case's police record)
    has the right record at that stage, absence included; the DA flag and the order breach likewise.
    """

    true_journeys: int
    predicted_journeys: int
    exact: int
    exact_rate: float
    by_stage: dict[str, float]
    da_flag_rate: float
    orders: int  # true cases with a restraining order made
    order_breach_rate: float  # of those, share whose breach (or its absence) is right


class EvaluationReport(BaseModel):
    run_dir: str
    truth_dir: str
    records_evaluated: int
    records_missing_from_run: int  # in truth, not in clusters.parquet (e.g. rejected rows)
    records_not_in_truth: int  # in clusters.parquet, not in truth (should be 0)
    pairwise: PairwiseMetrics
    bcubed: BCubed
    clusters: ClusterStats
    # Pairs in which at least one record belongs to a person with this hard-case tag.
    by_hard_case: dict[str, PairwiseMetrics]
    # Pairs by the datasets of their two records, e.g. "police~court".
    by_dataset_pair: dict[str, PairwiseMetrics]
    # 'victim': pairs in which at least one record is a victim mention; 'subject': pairs of two
    # subject records (suspects, defendants, prisoners). The two partition all pairs.
    by_role: dict[str, PairwiseMetrics] = {}
    journeys: JourneyAccuracy | None = None


def write_true_clusters(extracts: dict[str, Path], truth_dir: Path, out: Path) -> None:
    """clusters.parquet as perfect linkage would write it: every extract record with its TRUE person
    (synthetic data only), joined on (source_dataset, source_row, victim_index)."""
    selects = " UNION ALL ".join(
        f"SELECT '{a}' AS source_dataset, record_key, source_row, role, victim_index FROM read_parquet('{p}')"
        for a, p in extracts.items()
    )
    duckdb.sql(f"""
        COPY (SELECT e.source_dataset, e.record_key, e.source_row, t.person_id, e.role, e.victim_index
              FROM ({selects}) e JOIN read_parquet('{truth_dir / "records.parquet"}') t
                ON e.source_dataset = t.source_dataset AND e.source_row = t.source_row
               AND coalesce(e.victim_index, 0) = coalesce(t.victim_index, 0))
        TO '{out}' (FORMAT parquet)""")


def _check_inputs(
    run_dir: Path, truth_dir: Path, extracts_dir: Path | None = None
) -> tuple[OpenRun, Path, Path]:
    """The run (refused unless `open_run` accepts it: its extracts, found in ``extracts_dir`` if given,
    unchanged), its clusters and the truth records."""
    run = open_run(run_dir, extracts_dir=extracts_dir)
    clusters, records = run.path("clusters.parquet"), truth_dir / "records.parquet"
    if not records.is_file():
        raise InputError(f"{records}: not found")
    _check_columns(clusters)
    return run, clusters, records


def _check_columns(clusters: Path) -> None:
    names = set(pq.read_schema(clusters).names)
    missing = [c for c in CLUSTER_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{clusters}: missing column(s) {', '.join(missing)}")


def _pairs(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0] or 0)


def evaluate(run_dir: Path | str, truth_dir: Path | str) -> EvaluationReport:
    """Compare the predicted clusters of a run with the true persons of a synthetic dataset."""
    run_dir, truth_dir = Path(run_dir), Path(truth_dir)
    run, clusters, records = _check_inputs(run_dir, truth_dir)
    # journeys are evaluated only when a completed journeys stage vouches for them
    journeys = run.path("journeys.parquet") if run.has("journeys.parquet") else None
    return _scored(run_dir, clusters, truth_dir, records, journeys)


def evaluate_clusters(clusters: Path | str, truth_dir: Path | str) -> EvaluationReport:
    """`evaluate` for a clusters.parquet outside any run folder: a benchmark's re-clustering of a run's
    scored pairs under other settings (scripts/bench_link.py), which no completion marker vouches for."""
    clusters, truth_dir = Path(clusters), Path(truth_dir)
    records = truth_dir / "records.parquet"
    for path in (clusters, records):
        if not path.is_file():
            raise InputError(f"{path}: not found")
    _check_columns(clusters)
    return _scored(clusters.parent, clusters, truth_dir, records, None)


def _scored(
    run_dir: Path, clusters: Path, truth_dir: Path, records: Path, journeys: Path | None
) -> EvaluationReport:
    """The evaluation of ``clusters`` against the truth ``records`` (and ``journeys``, if any)."""
    con = duckdb.connect()
    c_vi, t_vi = (_victim_index(p) for p in (clusters, records))
    con.execute(f"""
        CREATE TEMP TABLE c AS SELECT source_dataset::VARCHAR AS ds, source_row::BIGINT AS row,
               {c_vi} AS vi, person_id::VARCHAR AS pred FROM read_parquet('{clusters}');
        CREATE TEMP TABLE t AS SELECT source_dataset AS ds, source_row AS row, {t_vi} AS vi,
               person_id AS truth, hard_case FROM read_parquet('{records}');
    """)
    dupes = _pairs(con, "SELECT count(*) FROM (SELECT ds, row, vi FROM c GROUP BY ALL HAVING count(*) > 1)")
    if dupes:
        raise InputError(
            f"{clusters}: {dupes} (source_dataset, source_row, victim_index) key(s) appear more than once"
        )
    con.execute("""
        CREATE TEMP TABLE j AS SELECT c.ds, c.pred, t.truth, t.hard_case, c.vi > 0 AS victim
            FROM c JOIN t USING (ds, row, vi);
        CREATE TEMP TABLE cell AS SELECT pred, truth, any_value(hard_case) AS tag, count(*) AS n
            FROM j GROUP BY pred, truth;
        CREATE TEMP TABLE ps AS SELECT pred, sum(n) AS size FROM cell GROUP BY pred;
        CREATE TEMP TABLE ts AS SELECT truth, any_value(tag) AS tag, sum(n) AS size FROM cell GROUP BY truth;
    """)
    n = _pairs(con, "SELECT count(*) FROM j")
    n_c, n_t = _pairs(con, "SELECT count(*) FROM c"), _pairs(con, "SELECT count(*) FROM t")
    tp = _pairs(con, "SELECT sum(n * (n - 1) // 2) FROM cell")
    pp = _pairs(con, "SELECT sum(size * (size - 1) // 2) FROM ps")
    tt = _pairs(con, "SELECT sum(size * (size - 1) // 2) FROM ts")
    bp, br = con.execute("""
        SELECT sum(cell.n * cell.n / ps.size), sum(cell.n * cell.n / ts.size)
        FROM cell JOIN ps USING (pred) JOIN ts USING (truth)""").fetchall()[0]
    bp = float(bp or 0) / n if n else 1.0
    br = float(br or 0) / n if n else 1.0
    stats = con.execute("""
        SELECT (SELECT count(*) FROM ts), (SELECT count(*) FROM ps),
               (SELECT count(*) FROM cell JOIN ps USING (pred) JOIN ts USING (truth)
                 WHERE cell.n = ps.size AND cell.n = ts.size),
               (SELECT coalesce(max(size), 0) FROM ts), (SELECT coalesce(max(size), 0) FROM ps),
               (SELECT count(*) FROM ts WHERE size = 1), (SELECT count(*) FROM ps WHERE size = 1)
    """).fetchall()[0]
    return EvaluationReport(
        run_dir=str(run_dir),
        truth_dir=str(truth_dir),
        records_evaluated=n,
        records_missing_from_run=n_t - n,
        records_not_in_truth=n_c - n,
        pairwise=PairwiseMetrics.from_counts(tp, pp, tt),
        bcubed=BCubed(precision=bp, recall=br, f1=2 * bp * br / (bp + br) if bp + br else 0.0),
        clusters=ClusterStats(
            true_clusters=stats[0],
            predicted_clusters=stats[1],
            exact_clusters=stats[2],
            exact_cluster_rate=stats[2] / stats[0] if stats[0] else 1.0,
            largest_true=stats[3],
            largest_predicted=stats[4],
            true_singletons=stats[5],
            predicted_singletons=stats[6],
        ),
        by_hard_case=_by_hard_case(con),
        by_dataset_pair=_by_dataset_pair(con),
        by_role=_by_role(con),
        journeys=_journeys(con, journeys, truth_dir) if journeys else None,
    )


def _victim_index(parquet: Path) -> str:
    """SQL for a record's position on its row: victim_index, or 0 for a subject (or a file without it)."""
    return "coalesce(victim_index, 0)::INTEGER" if "victim_index" in pq.read_schema(parquet).names else "0"


def _by_role(con: duckdb.DuckDBPyConnection) -> dict[str, PairwiseMetrics]:
    """P/R/F1 over pairs involving a victim mention, and over pairs of two subject records.

    A group (a cell, a predicted cluster or a true person) of s records, v of them victim mentions,
    holds C(s - v, 2) subject pairs and C(s, 2) - C(s - v, 2) pairs involving a victim mention.
    """
    row = con.execute("""
        WITH cells AS (SELECT pred, truth, count(*) AS s, count(*) FILTER (WHERE victim) AS v
                       FROM j GROUP BY pred, truth),
        preds AS (SELECT sum(s) AS s, sum(v) AS v FROM cells GROUP BY pred),
        truths AS (SELECT sum(s) AS s, sum(v) AS v FROM cells GROUP BY truth)
        SELECT (SELECT sum((s - v) * (s - v - 1) // 2) FROM cells),
               (SELECT sum((s - v) * (s - v - 1) // 2) FROM preds),
               (SELECT sum((s - v) * (s - v - 1) // 2) FROM truths),
               (SELECT sum(s * (s - 1) // 2 - (s - v) * (s - v - 1) // 2) FROM cells),
               (SELECT sum(s * (s - 1) // 2 - (s - v) * (s - v - 1) // 2) FROM preds),
               (SELECT sum(s * (s - 1) // 2 - (s - v) * (s - v - 1) // 2) FROM truths)
    """).fetchall()[0]
    sub_tp, sub_pp, sub_tt, vic_tp, vic_pp, vic_tt = (int(x or 0) for x in row)
    return {
        "subject": PairwiseMetrics.from_counts(sub_tp, sub_pp, sub_tt),
        "victim": PairwiseMetrics.from_counts(vic_tp, vic_pp, vic_tt),
    }


def _by_hard_case(con: duckdb.DuckDBPyConnection) -> dict[str, PairwiseMetrics]:
    """P/R/F1 over pairs where either record's true person carries the tag.

    A true cluster is one person, so its pairs are all tagged or all untagged; a predicted cluster
    of size s holding s_t tagged records has C(s,2) - C(s - s_t, 2) pairs involving the tag.
    """
    rows = con.execute("""
        WITH tags AS (SELECT DISTINCT tag FROM ts WHERE tag IS NOT NULL),
        tp AS (SELECT tag, sum(n * (n - 1) // 2) AS v FROM cell WHERE tag IS NOT NULL GROUP BY tag),
        tt AS (SELECT tag, sum(size * (size - 1) // 2) AS v FROM ts WHERE tag IS NOT NULL GROUP BY tag),
        pt AS (SELECT pred, tag, sum(n) AS k FROM cell WHERE tag IS NOT NULL GROUP BY pred, tag),
        pp AS (SELECT pt.tag,
                      sum(ps.size * (ps.size - 1) // 2 - (ps.size - pt.k) * (ps.size - pt.k - 1) // 2) AS v
               FROM pt JOIN ps USING (pred) GROUP BY pt.tag)
        SELECT tags.tag, coalesce(tp.v, 0), coalesce(pp.v, 0), coalesce(tt.v, 0)
        FROM tags LEFT JOIN tp USING (tag) LEFT JOIN pp USING (tag) LEFT JOIN tt USING (tag) ORDER BY tags.tag
    """).fetchall()
    return {tag: PairwiseMetrics.from_counts(int(a), int(b), int(c)) for tag, a, b, c in rows}


def _by_dataset_pair(con: duckdb.DuckDBPyConnection) -> dict[str, PairwiseMetrics]:
    """P/R/F1 over pairs whose two records come from datasets (a, b), a <= b."""
    con.execute("CREATE TEMP TABLE x AS SELECT pred, truth, ds, count(*) AS n FROM j GROUP BY ALL")
    pair = "CASE WHEN a.ds = b.ds THEN a.n * (a.n - 1) // 2 ELSE a.n * b.n END"

    def counts(key: str) -> dict[tuple[str, str], int]:
        rows = con.execute(f"""
            WITH y AS (SELECT {key}, ds, sum(n) AS n FROM x GROUP BY ALL)
            SELECT a.ds, b.ds, sum({pair}) FROM y a JOIN y b USING ({key})
            WHERE a.ds <= b.ds GROUP BY ALL""").fetchall()
        return {(a, b): int(v) for a, b, v in rows}

    tp, pp, tt = counts("pred, truth"), counts("pred"), counts("truth")
    keys = sorted(set(pp) | set(tt))
    return {
        f"{a}~{b}": PairwiseMetrics.from_counts(tp.get((a, b), 0), pp.get((a, b), 0), tt.get((a, b), 0))
        for a, b in keys
    }


JOURNEY_STAGES = {  # source_dataset -> the journeys.parquet column holding its record key
    "police": "police_record_key",
    "prosecution": "cps_record_key",
    "court": "court_record_key",
    "prison": "prison_record_key",
    "probation": "probation_record_key",
}


def _journeys(con: duckdb.DuckDBPyConnection, journeys: Path, truth_dir: Path) -> JourneyAccuracy:
    """Journey accuracy; record keys are mapped to source rows through the run's clusters."""
    unpivot = " UNION ALL ".join(
        f"SELECT journey_id, '{ds}' AS ds, {col} AS record_key FROM read_parquet('{journeys}')"
        f" WHERE {col} IS NOT NULL"
        for ds, col in JOURNEY_STAGES.items()
    )
    records = truth_dir / "records.parquet"
    subjects = "role = 'subject'" if "role" in pq.read_schema(records).names else "true"
    con.execute(f"""
        CREATE TEMP TABLE pj AS   -- predicted journey of each (dataset, row)
        SELECT u.journey_id, u.ds, k.source_row AS row FROM ({unpivot}) u
        JOIN (SELECT DISTINCT source_dataset::VARCHAR AS ds, record_key, source_row
              FROM read_parquet('{journeys.parent / "clusters.parquet"}')) k USING (ds, record_key);
        CREATE TEMP TABLE tc AS   -- true case of each (dataset, row); victim mentions are not stages
        SELECT source_dataset AS ds, source_row AS row, case_id
        FROM read_parquet('{records}') WHERE {subjects};
        CREATE TEMP TABLE anchor AS   -- the predicted journey holding each case's police record
        SELECT tc.case_id, pj.journey_id FROM tc JOIN pj USING (ds, row) WHERE tc.ds = 'police'
    """)
    # exact: all of the case's records sit in one journey that holds nothing else
    exact = _pairs(
        con,
        """
        WITH hit AS (SELECT tc.case_id, any_value(pj.journey_id) AS journey_id, count(*) AS n,
                            count(pj.journey_id) AS found, count(DISTINCT pj.journey_id) AS journeys
                     FROM tc LEFT JOIN pj USING (ds, row) GROUP BY tc.case_id),
             psize AS (SELECT journey_id, count(*) AS n FROM pj GROUP BY 1)
        SELECT count(*) FROM hit JOIN psize USING (journey_id)
        WHERE hit.journeys = 1 AND hit.found = hit.n AND psize.n = hit.n""",
    )
    cases = _pairs(con, "SELECT count(DISTINCT case_id) FROM tc")
    by_stage = {}
    for ds in JOURNEY_STAGES:
        right = _pairs(
            con,
            f"""
            WITH t AS (SELECT case_id, row FROM tc WHERE ds = '{ds}'),
                 p AS (SELECT a.case_id, pj.row FROM anchor a JOIN pj USING (journey_id) WHERE pj.ds = '{ds}')
            SELECT count(*) FROM (SELECT DISTINCT case_id FROM tc) c
            LEFT JOIN t USING (case_id) LEFT JOIN p USING (case_id)
            WHERE t.row IS NOT DISTINCT FROM p.row""",
        )
        by_stage[ds] = right / cases if cases else 1.0
    da_right, orders, breach_right = con.execute(f"""
        SELECT count(*) FILTER (WHERE t.da_flag IS NOT DISTINCT FROM j.da_flag),
               count(*) FILTER (WHERE t.restraining_order),
               count(*) FILTER (WHERE t.restraining_order
                                AND t.order_breached = (j.order_breach_date IS NOT NULL))
        FROM read_parquet('{truth_dir}/journeys.parquet') t
        LEFT JOIN anchor a USING (case_id)
        LEFT JOIN read_parquet('{journeys}') j USING (journey_id)""").fetchall()[0]
    return JourneyAccuracy(
        true_journeys=cases,
        predicted_journeys=_pairs(con, f"SELECT count(*) FROM read_parquet('{journeys}')"),
        exact=exact,
        exact_rate=exact / cases if cases else 1.0,
        by_stage=by_stage,
        da_flag_rate=da_right / cases if cases else 1.0,
        orders=orders,
        order_breach_rate=breach_right / orders if orders else 1.0,
    )


class BlockingTruth(BaseModel):
    """What blocking let through, against synthetic truth: the true pairs of the run's link type that
    at least one of its blocking rules compares (the figure `metrics.json` → blocking_recall estimates)."""

    true_pairs: int
    compared: int
    recall: float


def blocking_recall(run_dir: Path | str, extracts_dir: Path | str, truth_dir: Path | str) -> BlockingTruth:
    """Check every true pair against the run's blocking rules (its model.yaml), on the tokens of its
    extracts (found in ``extracts_dir``, checked against the run's record), with the inputs built as the
    run built them (cap flags included), in a local DuckDB."""
    from linkage.config import load_config
    from linkage.config.linkage import BackendEngine, LinkageConfig
    from linkage.link.backend import open_backend
    from linkage.link.model import blocking_rules_sql
    from linkage.link.run import load_inputs

    run, _, records = _check_inputs(Path(run_dir), Path(truth_dir), Path(extracts_dir))
    config = load_config(run.path("model.yaml"), LinkageConfig)
    extracts = run.extracts  # verified: the files the run linked, in its agency order
    found = " OR ".join(f"coalesce({r.sql}, false)" for r in blocking_rules_sql(config.blocking_rules))
    # the pairs the link type compares at all: link_only never pairs two records of one source
    compared_at_all = "l.source_dataset <> r.source_dataset" if config.link_type == "link_only" else "true"
    local = config.backend.model_copy(update={"engine": BackendEngine.duckdb})  # a check, whatever ran it
    with tempfile.TemporaryDirectory() as tmp, open_backend(local, Path(tmp) / "work") as backend:
        index = backend.load_record_index(extracts)
        tables = load_inputs(backend, extracts, config)
        inputs = " UNION ALL ".join(f"SELECT * FROM {t.physical_name}" for t in tables)
        true_pairs, compared = backend.sql(f"""
            WITH truth AS (
                SELECT source_dataset, source_row, {_victim_index(records)} AS vi, person_id
                FROM read_parquet('{records}')
            ),
            person AS (  -- every record's true person (subjects and victim mentions), numbered
                SELECT i.source_dataset, i.record_key, t.person_id, row_number() OVER () AS n
                FROM {index} AS i JOIN truth AS t
                  ON t.source_dataset = i.source_dataset AND t.source_row = i.source_row
                 AND t.vi = coalesce(i.victim_index, 0)
            ),
            inputs AS ({inputs})
            SELECT count(*), count(*) FILTER ({found})  -- every true pair once, against the rules
            FROM person AS a JOIN person AS b ON a.person_id = b.person_id AND a.n < b.n
            JOIN inputs AS l ON l.source_dataset = a.source_dataset AND l.record_key = a.record_key
            JOIN inputs AS r ON r.source_dataset = b.source_dataset AND r.record_key = b.record_key
            WHERE {compared_at_all}
        """)[0]
    recall = compared / true_pairs if true_pairs else 1.0
    return BlockingTruth(true_pairs=true_pairs, compared=compared, recall=round(recall, 6))
