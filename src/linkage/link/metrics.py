"""metrics.json: what a run did, in numbers a governance board can read (no tokens, no identifiers)."""

from __future__ import annotations

from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel

from linkage.config.linkage import BlockingRule, LinkageConfig, match_weight
from linkage.extract.manifest import Manifest
from linkage.link.backend import Backend
from linkage.link.calibrate import ExpectedQuality
from linkage.link.cluster import Clustered
from linkage.link.correlated import CorrelatedCheck
from linkage.link.model import SqlRule, blocking_rules_sql, blocking_sql
from linkage.link.recalibrate import IdCalibration
from linkage.link.splink_adapter import SplinkDataFrame
from linkage.link.threshold import ThresholdChoice
from linkage.tokens.spec import SOURCE_DATASET
from linkage.util import atomic_write_bytes

# Thresholds at which the report counts linked pairs: the curve shows how sensitive the result is.
THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999)


class BlockingRuleCount(BaseModel):
    name: str
    sql: str
    comparisons: int  # pairs this rule adds that no earlier rule found
    cumulative: int
    # of those, pairs at or above the threshold: what the rule's comparisons bought (None: scored pairs
    # of a run from before pairs.parquet kept the rule)
    linked: int | None = None


class PairsAtThreshold(BaseModel):
    threshold_match_probability: float
    match_weight: float
    pairs: int  # scored pairs at or above the threshold


class LargeCluster(BaseModel):
    size: int
    by_dataset: dict[str, int]
    edges: int = 0  # linked pairs inside the cluster
    density: float = 1.0  # edges / possible pairs: low density with bridges suggests a chain
    bridges: int = 0  # linked pairs whose removal would split the cluster
    conflicts: list[str] = []  # conflict rules (columns) two of its records break


class ClusterDiagnostics(BaseModel):
    """Signs of chaining, in counts only (docs/analyst-guide.md, "Chaining")."""

    method: str
    merges_refused: int  # linked pairs not merged because the two people would conflict
    clusters_with_conflicts: dict[str, int]  # per conflict rule: clusters holding two conflicting records
    bridge_edges: int
    clusters_with_bridges: int


class ClusterSummary(BaseModel):
    clusters: int
    singletons: int
    mean_size: float
    size_distribution: dict[str, int]  # cluster size -> number of clusters ("21+" groups the tail)
    largest: list[LargeCluster]
    linked_across_agencies: int  # clusters holding records of more than one agency
    diagnostics: ClusterDiagnostics | None = None


class RuleMisses(BaseModel):
    """One blocking rule among the likely matches (see BlockingRecall)."""

    name: str
    could_find: int  # likely matches it could find (both records hold its columns) that another rule found
    missed: int  # of those, the ones it does not find: its miss rate is missed / could_find
    found_alone: int  # likely matches no other rule finds


class BlockingRecall(BaseModel):
    """How many likely matches blocking may have missed, estimated from the rules' overlap.

    Among scored pairs the model believes are matches (probability >= 0.5), each pair is checked
    against every blocking rule. A pair found by exactly one rule is a near miss: had that rule failed
    too, blocking would have lost it. Good-Turing counts each near miss as one lost match, as if every
    rule failed half the time; real rules fail far less (on pseudopeople a postcode rule misses 6 % of
    the matches it could find), and Good-Turing read 0.949 where 0.995 of true pairs were compared. So
    each near miss counts the odds that its one rule fails, q / (1 - q), with q that rule's miss rate
    among the likely matches it could find (both records hold its columns) that other rules found,
    smoothed, and at most 1/2. It errs both ways: rules that share columns fail together (low), and a
    true pair no rule could find, or whose every rule fails, leaves no near miss behind (high).
    Measured against truth (docs/benchmarks.md, "Blocking recall: estimated against measured").
    """

    likely_matches: int
    found_by_one_rule: int
    estimate: float
    rules: list[RuleMisses] = []


class RunMetrics(BaseModel):
    run_id: str
    created_at: datetime | None = None
    tool_version: str = ""
    splink_version: str = ""
    duckdb_version: str = duckdb.__version__
    key_fingerprint: str
    token_spec_version: str
    records: dict[str, int]
    records_total: int
    backend: dict[str, Any]
    probability_two_random_records_match: float
    blocking: list[BlockingRuleCount]
    comparisons_total: int
    total_possible_comparisons: int
    pairs_above_floor: int
    threshold_match_probability: float
    threshold: ThresholdChoice  # how it was chosen, with the model's expected precision/recall curve
    pairs_linked: int
    pairs_by_threshold: list[PairsAtThreshold]
    clusters: ClusterSummary
    blocking_recall: BlockingRecall | None = None
    # the model's expected precision/recall of the people formed (pairs inside one person, chains
    # included; link/calibrate.py): what `linkage evaluate` measures, unlike the threshold's pair curve
    expected_clusters: ExpectedQuality | None = None
    # the model's probabilities checked against a checked id (link/recalibrate.py); None in old runs
    id_calibration: IdCalibration | None = None
    link_type: str = "link_and_dedupe"
    model_notes: list[str] = []  # what the derivation left out, and why (docs/analyst-guide.md)
    # evidence that comes together, measured against a checked id (link/correlated.py); [] in old runs
    # and runs scored with a given model (its model.json holds any correction)
    correlated: list[CorrelatedCheck] = []
    blocking_budget: float = 0.0  # pairs the chosen rules may generate (0: rules fixed by the config)
    blocking_candidates: list[dict[str, Any]] = []  # every candidate rule: pairs counted, chosen or not
    timings_seconds: dict[str, float] = {}
    peak_rss_bytes: int = 0

    def write(self, path: Path) -> None:
        atomic_write_bytes(path, (self.model_dump_json(indent=2) + "\n").encode())


def _cluster_summary(backend: Backend, clustered: Clustered, largest: int) -> ClusterSummary:
    clusters = clustered.table
    backend.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cluster_sizes AS
        SELECT person_id, count(*) AS size, count(DISTINCT {SOURCE_DATASET}) AS agencies
        FROM {clusters} GROUP BY person_id
    """)
    n, singletons, mean, across = backend.sql("""
        SELECT count(*), count(*) FILTER (size = 1), avg(size), count(*) FILTER (agencies > 1)
        FROM cluster_sizes
    """)[0]
    distribution = backend.sql("""
        SELECT CASE WHEN size > 20 THEN '21+' ELSE size::VARCHAR END AS bucket, count(*)
        FROM cluster_sizes GROUP BY bucket ORDER BY min(size)
    """)
    d = clustered.diagnostics
    large = [LargeCluster(**c) for c in d.largest[:largest]]
    backend.con.execute("DROP TABLE cluster_sizes")
    return ClusterSummary(
        clusters=n,
        singletons=singletons,
        mean_size=round(float(mean or 0), 4),
        size_distribution={bucket: count for bucket, count in distribution},
        largest=large,
        linked_across_agencies=across,
        diagnostics=ClusterDiagnostics(
            method=clustered.method,
            merges_refused=clustered.merges_refused,
            clusters_with_conflicts=d.conflicts,
            bridge_edges=d.bridge_edges,
            clusters_with_bridges=d.clusters_with_bridges,
        ),
    )


def _possible_pairs(records: dict[str, int], link_type: str) -> int:
    """link_and_dedupe: every record may pair with every other; link_only: only across sources."""
    n = sum(records.values())
    if link_type == "link_only":
        return (n * n - sum(r * r for r in records.values())) // 2
    return n * (n - 1) // 2


def scored_rules(config: LinkageConfig, model: dict[str, Any]) -> tuple[list[SqlRule], bool]:
    """The blocking rules that found the scored pairs: the model's, in its order, each named after the
    config rule whose SQL it is; and whether they are exactly the config's rules. A given model
    (`linkage run --model`) brings its own rules, which may not be."""
    used = [r["blocking_rule"] for r in model["blocking_rules_to_generate_predictions"]]
    ours = blocking_rules_sql(config.blocking_rules)
    if used == [r.sql for r in ours]:
        return ours, True
    named = {r.sql: r for r in ours}
    return [
        named.get(sql) or SqlRule(f"rule {i} of the given model", sql, "") for i, sql in enumerate(used, 1)
    ], False


def collect_metrics(
    config: LinkageConfig,
    backend: Backend,
    predictions: SplinkDataFrame,
    pairs_per_rule: dict[int, int],
    clusters: str,
    *,
    run_id: str,
    model: dict[str, Any],
    clustered: Clustered,
    manifests: dict[str, Manifest],
) -> RunMetrics:
    """Counts for metrics.json; ``pairs_per_rule`` are the exact pairs each blocking rule added."""
    rules, _ = scored_rules(config, model)
    added = [pairs_per_rule.get(i, 0) for i in range(len(rules))]
    cumulative = list(accumulate(added))
    by_threshold = backend.sql(
        "SELECT "
        + ", ".join(f"count(*) FILTER (match_probability >= {t})" for t in THRESHOLDS)
        + f", count(*) FROM {predictions.physical_name}"
    )[0]
    threshold = clustered.threshold.threshold_match_probability
    # the linked pairs by the blocking rule that found them (scored pairs of older runs carry no rule)
    key = "CAST(match_key AS INTEGER)" if "match_key" in backend.columns(predictions.physical_name) else "-1"
    by_rule = dict(
        backend.sql(f"""
            SELECT {key}, count(*) FROM {predictions.physical_name}
            WHERE match_probability >= {threshold} GROUP BY 1
        """)
    )
    linked = sum(by_rule.values())
    linked_per_rule = None if key == "-1" else by_rule
    # every record the run linked: the agency's own (subject) rows and its victim mentions
    records = {agency: m.counts.records for agency, m in manifests.items()}
    n = sum(records.values())
    first = next(iter(manifests.values()))
    return RunMetrics(
        run_id=run_id,
        key_fingerprint=first.key_fingerprint,
        token_spec_version=first.token_spec_version,
        records=records,
        records_total=n,
        backend=config.backend.model_dump(mode="json", exclude={"database_dir", "keep_database"}),
        probability_two_random_records_match=model["probability_two_random_records_match"],
        blocking=[
            BlockingRuleCount(
                name=r.name,
                sql=r.sql,
                comparisons=n,
                cumulative=c,
                linked=None if linked_per_rule is None else linked_per_rule.get(i, 0),
            )
            for i, (r, n, c) in enumerate(zip(rules, added, cumulative, strict=True))
        ],
        comparisons_total=cumulative[-1] if cumulative else 0,
        link_type=config.link_type,
        total_possible_comparisons=_possible_pairs(records, config.link_type),
        pairs_above_floor=by_threshold[-1],
        threshold_match_probability=threshold,
        threshold=clustered.threshold,
        pairs_linked=linked,
        pairs_by_threshold=[
            PairsAtThreshold(threshold_match_probability=t, match_weight=round(match_weight(t), 3), pairs=n)
            for t, n in zip(THRESHOLDS, by_threshold, strict=False)
        ],
        clusters=_cluster_summary(backend, clustered, config.report.largest_clusters),
    )


MIN_COULD_FIND = 20  # fewer likely matches than this measure no miss rate: q = 1/2 is used


def estimate_blocking_recall(
    backend: Backend, predictions: str, inputs: dict[str, str], rules: list[BlockingRule], columns: list[str]
) -> BlockingRecall:
    """Blocking recall over the likely matches from the rules' overlap, each near miss weighted by the
    odds that its one rule fails (see BlockingRecall). A crossed rule and its mirror image are one rule
    here: a day/month transposition or a name swap meets both, and is a near miss when nothing else
    finds it."""
    union = " UNION ALL ".join(
        f"SELECT '{agency}' AS {SOURCE_DATASET}, record_key, {', '.join(columns)} FROM {table}"
        for agency, table in inputs.items()
    )

    def either(sqls: list[str]) -> str:
        return "(" + " OR ".join(f"({sql})" for sql in sqls) + ")"

    directions = [blocking_sql(r) for r in rules]  # a crossed rule: it and its mirror image
    flags = ", ".join(
        f"coalesce({either([s.sql for s in sqls])}, false)::INTEGER AS found_{i}, "
        f"coalesce({either([s.applicable for s in sqls])}, false)::INTEGER AS could_{i}"
        for i, sqls in enumerate(directions)
    )
    found = " + ".join(f"found_{i}" for i in range(len(rules)))
    # per rule: the likely matches it could find that another rule found; those it missed; those it
    # alone found
    per_rule = ", ".join(
        f"count(*) FILTER (could_{i} = 1 AND rules_finding > found_{i}), "
        f"count(*) FILTER (could_{i} = 1 AND rules_finding > found_{i} AND found_{i} = 0), "
        f"count(*) FILTER (rules_finding = 1 AND found_{i} = 1)"
        for i in range(len(rules))
    )
    row = backend.sql(f"""
        WITH records AS ({union}),
        likely AS (  -- the pairs the model takes for matches: which rules find them, which could
            SELECT {flags}
            FROM {predictions} AS p
            JOIN records AS l ON l.{SOURCE_DATASET} = p.{SOURCE_DATASET}_l AND l.record_key = p.record_key_l
            JOIN records AS r ON r.{SOURCE_DATASET} = p.{SOURCE_DATASET}_r AND r.record_key = p.record_key_r
            WHERE p.match_probability >= 0.5
        ),
        counted AS (SELECT *, {found} AS rules_finding FROM likely)
        SELECT count(*), count(*) FILTER (rules_finding = 1), {per_rule} FROM counted
    """)[0]
    likely, single = row[0], row[1]
    misses = [
        RuleMisses(name=r.name, could_find=row[2 + 3 * i], missed=row[3 + 3 * i], found_alone=row[4 + 3 * i])
        for i, r in enumerate(rules)
    ]
    lost = sum(m.found_alone * _odds_of_failing(m) for m in misses)
    estimate = likely / (likely + lost) if likely else 1.0
    return BlockingRecall(
        likely_matches=likely, found_by_one_rule=single, estimate=round(estimate, 6), rules=misses
    )


def miss_rate(rule: RuleMisses) -> float | None:
    """The rule's miss rate q as the estimate uses it (smoothed: a rule never seen to miss still may),
    or None when too few likely matches measure it (q = 1/2 is used)."""
    if rule.could_find < MIN_COULD_FIND:
        return None
    return (rule.missed + 1) / (rule.could_find + 2)


def _odds_of_failing(rule: RuleMisses) -> float:
    """q / (1 - q), with q at most 1/2: rules that share columns fail together, so a near miss never
    weighs more than one lost match."""
    q = miss_rate(rule)
    q = 0.5 if q is None else min(q, 0.5)
    return q / (1 - q)
