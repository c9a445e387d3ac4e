"""Clustering without chaining: conflict rules, override, diagnostics and the truth-free threshold.

Tiny hand-made graphs on an in-memory DuckDB; token values are small integers standing for tokens.
"""

from __future__ import annotations

import itertools
import random

import duckdb
import igraph
import numpy as np
import pytest
from splink import DuckDBAPI

from linkage.config.linkage import Clustering, ConflictRule, match_weight
from linkage.link import calibrate
from linkage.link import cluster as cluster_module
from linkage.link.backend import Backend
from linkage.link.cluster import _bridges, _Profiles, cluster
from linkage.link.threshold import choose_threshold, expected_curve, probability

DOB = {"column": "dob", "unless_any": ["dob=dob_swap", "dob_ym", "dob_md", "dob_yd"]}


class _Predictions:
    physical_name = "preds"


SOURCES = ("police", "court")
INPUTS = {name: f"input_{name}" for name in SOURCES}


def _backend(records: list[dict], pairs: list[tuple[int, int, float]]) -> Backend:
    """Records of 'police' unless a record says {"source": "court"}; record_key = node_id = position
    + 1 (unique across sources); pairs as (key, key, match weight)."""
    con = duckdb.connect()
    cols = ("pnc", "dob", "dob_swap", "dob_ym", "dob_md", "dob_yd")
    markers = ("pnc_weak", "dob_weak")
    schema = ", ".join([*(f"{c} BIGINT" for c in cols), *(f"{m} BOOLEAN" for m in markers)])
    source = {key: rec.get("source", "police") for key, rec in enumerate(records, start=1)}
    for name in SOURCES:
        con.execute(f"CREATE TABLE input_{name} (record_key BIGINT, {schema})")
    for key, rec in enumerate(records, start=1):
        con.execute(
            f"INSERT INTO input_{source[key]} VALUES (?, {', '.join('?' for _ in (*cols, *markers))})",
            [key, *(rec.get(c) for c in (*cols, *markers))],
        )
    con.execute("CREATE TABLE record_index (source_dataset VARCHAR, record_key BIGINT, source_row BIGINT, "
                "node_id BIGINT)")  # fmt: skip
    for key in source:
        con.execute("INSERT INTO record_index VALUES (?, ?, ?, ?)", [source[key], key, key, key])
    con.execute("""
        CREATE TABLE preds (source_dataset_l VARCHAR, record_key_l BIGINT, source_dataset_r VARCHAR,
                            record_key_r BIGINT, match_weight DOUBLE, match_probability DOUBLE,
                            calibrated_probability DOUBLE)  -- as scored pairs with no checked id to use
    """)
    for a, b, w in pairs:
        con.execute(
            "INSERT INTO preds VALUES (?, ?, ?, ?, ?, ?, ?)",
            [source[a], a, source[b], b, w, probability(w), probability(w)],
        )
    return Backend(DuckDBAPI(con), con)


def _people(backend: Backend, config: Clustering):
    inputs = {name: f"input_{name}" for name in SOURCES}
    result = cluster(backend, _Predictions(), "record_index", inputs, config)
    rows = backend.sql(f"SELECT record_key, person_id FROM {result.table} ORDER BY record_key")
    groups: dict[int, set[int]] = {}
    for key, person in rows:
        groups.setdefault(person, set()).add(key)
    return sorted(groups.values(), key=min), result


def _config(*rules, method="constrained_components", **kw) -> Clustering:
    return Clustering(
        method=method,
        threshold_match_probability=kw.pop("threshold", 0.5),
        never_link_different=list(rules),
        **kw,
    )


# father (1, dob 100) - record without a date of birth (2) - son (3, dob 200): a chain through record 2
JR_SR = [{"dob": 100, "dob_ym": 10, "dob_md": 11, "dob_yd": 12}, {}, {"dob": 200, "dob_ym": 20, "dob_md": 21}]
JR_SR_PAIRS = [(1, 2, 12.0), (2, 3, 9.0)]


def test_connected_components_chain_and_diagnostics_show_it():
    backend = _backend(JR_SR, JR_SR_PAIRS)
    people, result = _people(backend, _config(method="connected_components"))
    assert people == [{1, 2, 3}]
    d = result.diagnostics
    assert d.bridge_edges == 2 and d.clusters_with_bridges == 1
    assert d.largest[0]["size"] == 3 and d.largest[0]["edges"] == 2
    assert d.largest[0]["density"] == pytest.approx(2 / 3, abs=1e-3)
    assert d.largest[0]["by_dataset"] == {"police": 3}


def test_conflicting_dates_of_birth_stop_the_chain_strongest_link_wins():
    backend = _backend(JR_SR, JR_SR_PAIRS)
    people, result = _people(backend, _config("pnc", DOB))
    assert people == [{1, 2}, {3}]  # record 2 stays with the record it links to most strongly
    assert result.merges_refused == 1
    assert result.diagnostics.conflicts == {"pnc": 0, "dob": 0}


def test_partial_date_agreement_is_a_typo_not_another_person():
    swapped = [{"dob": 100, "dob_swap": 101}, {"dob": 101, "dob_swap": 100}]  # day and month transposed
    same_year_month = [{"dob": 100, "dob_ym": 7}, {"dob": 102, "dob_ym": 7}]
    for records in (swapped, same_year_month):
        people, _ = _people(_backend(records, [(1, 2, 6.0)]), _config(DOB))
        assert people == [{1, 2}]


DOB_SOFT = {**DOB, "direct_link_overrides": True}


def test_a_direct_link_overrules_a_date_of_birth_difference_a_chain_does_not():
    # FEBRL4-like: the date of birth was replaced wholesale; the model links the pair on everything else
    unrelated = [{"dob": 100, "dob_ym": 10, "dob_md": 11, "dob_yd": 12}, {"dob": 200, "dob_ym": 20}]
    people, _ = _people(_backend(unrelated, [(1, 2, 6.0)]), _config(DOB))
    assert people == [{1}, {2}]  # the hard rule refuses even the direct link
    people, result = _people(_backend(unrelated, [(1, 2, 6.0)]), _config(DOB_SOFT))
    assert people == [{1, 2}] and result.merges_refused == 0
    # the father - no-date record - son chain is still cut: 1 and 3 are never linked directly
    people, result = _people(_backend(JR_SR, JR_SR_PAIRS), _config(DOB_SOFT))
    assert people == [{1, 2}, {3}] and result.merges_refused == 1


def test_every_pair_with_unrelated_dates_in_one_person_must_be_linked_directly():
    # 1 and 2 (dob 100) are one person; 3 (dob 200) links directly to 2 but not to 1; 4 (dob 300) to 3
    records = [{"dob": 100}, {"dob": 100}, {"dob": 200}, {"dob": 300}]
    pairs = [(1, 2, 15.0), (2, 3, 8.0), (3, 4, 7.0)]
    people, result = _people(_backend(records, pairs), _config(DOB_SOFT))
    assert people == [{1, 2}, {3, 4}] and result.merges_refused == 1  # 1-3 would be joined by a chain
    # when 3 links to both records dated 100, it joins them (one mistyped date among three records)
    people, _ = _people(_backend(records, [*pairs, (1, 3, 6.0)]), _config(DOB_SOFT))
    assert people == [{1, 2, 3}, {4}]


def test_valid_typed_ids_stay_hard_whatever_the_dob_rule():
    records = [{"pnc": 1, "dob": 100}, {"pnc": 2, "dob": 200}]
    people, _ = _people(_backend(records, [(1, 2, 15.0)]), _config("pnc", DOB_SOFT))
    assert people == [{1}, {2}]


def test_different_pnc_refused_unless_overwhelming():
    records = [{"pnc": 1}, {"pnc": 2}]
    people, _ = _people(_backend(records, [(1, 2, 15.0)]), _config("pnc", override_match_weight=20))
    assert people == [{1}, {2}]
    people, result = _people(_backend(records, [(1, 2, 25.0)]), _config("pnc", override_match_weight=20))
    assert people == [{1, 2}]
    assert result.diagnostics.conflicts == {"pnc": 1}  # the override leaves a visible conflict


def test_person_id_is_the_smallest_record_number_whatever_the_pair_order():
    records = [{}, {}, {}, {}]
    a, _ = _people(_backend(records, [(3, 4, 9.0), (1, 4, 8.0), (2, 3, 7.0)]), _config("pnc"))
    b, _ = _people(_backend(records, [(2, 3, 7.0), (1, 4, 8.0), (3, 4, 9.0)]), _config("pnc"))
    assert a == b == [{1, 2, 3, 4}]


def test_auto_threshold_is_the_lowest_with_the_target_expected_precision():
    # 100 pairs at weight 20 (p ~ 1), 10 at weight 1 (p = 2/3), 10 at weight -2 (p = 0.2)
    pairs = [(1, 2, 20.0)] * 100 + [(1, 2, 1.0)] * 10 + [(1, 2, -2.0)] * 10
    backend = _backend([{}, {}], pairs)
    config = _config(
        "pnc", threshold="auto", auto_threshold={"rule": "target_precision", "target_precision": 0.98}
    )
    choice = choose_threshold(backend, _Predictions(), config)
    # at weight 1: (100 + 6.67) / 110 = 0.970 < 0.98; just above it only the weight-20 pairs remain
    assert choice.match_weight == 1.5
    assert choice.expected_precision == pytest.approx(1.0, abs=1e-5)
    assert choice.expected_recall == pytest.approx(100 / (100 + 10 * 2 / 3 + 10 * 0.2), abs=1e-4)
    fixed = choose_threshold(backend, _Predictions(), _config("pnc", threshold=0.5))
    assert fixed.rule == "fixed" and fixed.threshold_match_probability == 0.5
    assert fixed.expected_precision == pytest.approx((100 + 10 * 2 / 3) / 110, abs=1e-4)


def test_curve_counts_pairs_at_or_above_each_weight_exactly():
    # on grid points, between them, below the grid (-7: in the totals only) and above it (35)
    weights = [-7.0, -5.0, -4.75, 0.0, 0.5, 0.49, 3.0, 29.99, 30.0, 35.0]
    backend = _backend([{}, {}], [(1, 2, w) for w in weights])
    curve = {pt.match_weight: pt for pt in expected_curve(backend, _Predictions())}
    total = sum(probability(w) for w in weights)
    for w, pt in curve.items():
        above = [x for x in weights if x >= w]
        assert pt.pairs == len(above), w
        assert pt.expected_recall == pytest.approx(sum(map(probability, above)) / total, abs=1e-6)


def _reference_people(records, pairs, override):
    """The plain algorithm: every pair from the strongest down, refusing merges of different PNCs."""
    person = {k: {k} for k in range(1, len(records) + 1)}
    for a, b, w in sorted(pairs, key=lambda p: (-p[2], p[0], p[1])):
        pa_, pb = person[a], person[b]
        if pa_ is pb:
            continue
        pncs = {records[k - 1]["pnc"] for k in pa_ if "pnc" in records[k - 1]}
        other = {records[k - 1]["pnc"] for k in pb if "pnc" in records[k - 1]}
        if w < override and pncs and other and len(pncs | other) > 1:
            continue
        merged = pa_ | pb
        for k in merged:
            person[k] = merged
    return sorted({min(p): p for p in person.values()}.values(), key=min)


@pytest.mark.parametrize("seed", range(20))
def test_constrained_equals_the_pairwise_algorithm_on_random_graphs(seed):
    """Components that cannot conflict are taken whole; the result must not differ from merging
    every pair one by one."""
    rng = random.Random(seed)
    n = rng.randint(5, 40)
    records = [{"pnc": rng.randint(1, 3)} if rng.random() < 0.4 else {} for _ in range(n)]
    pairs = [
        (a, b, rng.choice([5.0, 8.0, 12.0, 25.0]) + rng.random())
        for a, b in {tuple(sorted(rng.sample(range(1, n + 1), 2))) for _ in range(rng.randint(1, 3 * n))}
    ]
    people, _ = _people(_backend(records, pairs), _config("pnc", override_match_weight=20))
    assert people == _reference_people(records, pairs, 20)


def test_no_linked_pairs_gives_one_person_per_record():
    people, result = _people(_backend([{"pnc": 1}, {"pnc": 2}, {}], []), _config("pnc", DOB))
    assert people == [{1}, {2}, {3}]
    assert result.diagnostics.bridge_edges == 0 and result.diagnostics.conflicts == {"pnc": 0, "dob": 0}


def test_auto_threshold_by_default_maximises_the_expected_f1():
    # 100 pairs at weight 20 (p ~ 1), 10 at weight 1 (p = 2/3), 10 at weight -2 (p = 0.2)
    pairs = [(1, 2, 20.0)] * 100 + [(1, 2, 1.0)] * 10 + [(1, 2, -2.0)] * 10
    choice = choose_threshold(_backend([{}, {}], pairs), _Predictions(), _config("pnc", threshold="auto"))
    total = 100 + 10 * 2 / 3 + 10 * 0.2

    def f1(tp, n):
        p, r = tp / n, tp / total
        return 2 * p * r / (p + r)

    # linking the weight-1 pairs gains more recall than it costs precision; the weight -2 ones do not
    assert f1(100 + 20 / 3, 110) > max(f1(100, 100), f1(total, 120))
    assert choice.rule == "highest expected F1"
    assert choice.match_weight == 1.0
    assert choice.expected_f1 == pytest.approx(f1(100 + 20 / 3, 110), abs=1e-5)
    # with a tolerance, the highest threshold whose expected F1 is that close to the best
    gap = f1(100 + 20 / 3, 110) - f1(100, 100)
    loose = _config("pnc", threshold="auto", auto_threshold={"f1_tolerance": gap + 1e-4})
    wide = choose_threshold(_backend([{}, {}], pairs), _Predictions(), loose)
    assert wide.match_weight == 20.0 and wide.rule.startswith("highest expected F1 (within")


WEAK_DOB = {**DOB, "weak_marker": "dob_weak"}


def test_a_placeholder_date_of_birth_never_forbids_a_merge():
    # the same person: one agency records the real date, the other a placeholder (01/01/YYYY)
    records = [{"dob": 100, "dob_ym": 10}, {"dob": 555, "dob_ym": 55, "dob_weak": True}]
    people, result = _people(_backend(records, [(1, 2, 8.0)]), _config(WEAK_DOB))
    assert people == [{1, 2}] and result.merges_refused == 0
    assert result.diagnostics.conflicts == {"dob": 0}  # a weak date is no conflict either
    # the same dates without the marker are two people
    plain = [{k: v for k, v in r.items() if k != "dob_weak"} for r in records]
    people, result = _people(_backend(plain, [(1, 2, 8.0)]), _config(WEAK_DOB))
    assert people == [{1}, {2}] and result.merges_refused == 1


def test_an_unverified_id_never_forbids_a_merge_but_valid_ids_still_conflict():
    pnc = {"column": "pnc", "weak_marker": "pnc_weak"}
    unverified = [{"pnc": 1, "pnc_weak": False}, {"pnc": 2, "pnc_weak": True}]
    people, _ = _people(_backend(unverified, [(1, 2, 8.0)]), _config(pnc))
    assert people == [{1, 2}]
    valid = [{"pnc": 1, "pnc_weak": False}, {"pnc": 2, "pnc_weak": False}]
    people, _ = _people(_backend(valid, [(1, 2, 8.0)]), _config(pnc))
    assert people == [{1}, {2}]


def test_one_to_one_keeps_at_most_one_record_of_each_source_per_person():
    # police 1 and police 2 both link to court 3; 1-3 is the stronger pair
    records = [{}, {}, {"source": "court"}]
    pairs = [(1, 3, 12.0), (2, 3, 9.0)]
    people, result = _people(_backend(records, pairs), _config(one_to_one=True))
    assert people == [{1, 3}, {2}] and result.merges_refused == 1
    people, _ = _people(_backend(records, pairs), _config())
    assert people == [{1, 2, 3}]


def test_expected_quality_of_the_clusters_counts_a_chain_as_right_when_every_link_is():
    # 1 -0.9- 2 -0.8- 3 joined (1-3 never scored); 3 -0.2- 4 scored but under the threshold
    pairs = [(1, 2, match_weight(0.9)), (2, 3, match_weight(0.8)), (3, 4, match_weight(0.2))]
    backend = _backend([{}, {}, {}, {}], pairs)
    result = cluster(backend, _Predictions(), "record_index", INPUTS, _config())
    q = result.expected
    joined = 0.9 + 0.8 + 0.9 * 0.8  # the chain 1-2-3 is right when both its links are
    assert q.pairs_joined == 3 and q.pairs_joined_scored == 2
    assert q.expected_true_joined == pytest.approx(joined, abs=1e-3)
    assert q.expected_precision == pytest.approx(joined / 3, abs=1e-5)
    assert q.expected_recall == pytest.approx(joined / (joined + 0.2), abs=1e-5)


def test_expected_quality_takes_the_strongest_chain():
    # 1 and 4 are joined through 2 (0.99 * 0.99) and through 3 (0.6 * 0.6): the stronger chain counts
    p = {(1, 2): 0.99, (2, 4): 0.99, (1, 3): 0.6, (3, 4): 0.6}
    backend = _backend([{}, {}, {}, {}], [(a, b, match_weight(v)) for (a, b), v in p.items()])
    result = cluster(backend, _Predictions(), "record_index", INPUTS, _config())
    q = result.expected
    chains = 0.99 * 0.99 + 0.99 * 0.6  # 1-4 through 2; 2-3 through 1 (0.99 * 0.6) or 4 (the same)
    assert q.expected_true_joined == pytest.approx(sum(p.values()) + chains, abs=1e-3)


def test_expected_recall_leaves_out_pairs_the_conflict_rules_keep_apart():
    # 1-2: same person (p 0.9); 3-4: two unrelated dates of birth (relatives at one address, p 0.7),
    # refused by the hard rule: believed apart, so not a match the clustering missed
    records = [{"dob": 100}, {"dob": 100}, {"dob": 300}, {"dob": 400}]
    pairs = [(1, 2, match_weight(0.9)), (3, 4, match_weight(0.7))]
    backend = _backend(records, pairs)
    result = cluster(backend, _Predictions(), "record_index", INPUTS, _config(DOB))
    q = result.expected
    assert q.expected_recall == pytest.approx(1.0, abs=1e-6) and q.expected_precision == pytest.approx(0.9)
    # without the rule the pair is joined and counts in both
    plain = _config()
    result = cluster(backend, _Predictions(), "record_index", INPUTS, plain)
    q = result.expected
    assert q.expected_precision == pytest.approx((0.9 + 0.7) / 2) and q.expected_recall == pytest.approx(1.0)


def test_expected_recall_leaves_out_the_other_candidates_of_a_record_joined_elsewhere():
    # record 3 has no date of birth and links to 1 (p 0.9) and to 2 (p 0.85), who differ in date of birth:
    # it joins 1, and 3-2 is an alternative the rules exclude, not a match the clustering missed
    records = [{"dob": 100}, {"dob": 200}, {}]
    pairs = [(1, 3, match_weight(0.9)), (2, 3, match_weight(0.85))]
    backend = _backend(records, pairs)
    result = cluster(backend, _Predictions(), "record_index", INPUTS, _config(DOB))
    q = result.expected
    assert q.expected_recall == pytest.approx(1.0) and q.expected_precision == pytest.approx(0.9)


def test_people_below_the_floor_raise_the_threshold_when_their_expected_f1_gains():
    """A person of ten records linked to one another, and an eleventh record linked to one of them at
    weight 3 and scored weak (-2) against the nine others: the pair curve takes weight 3 (it cannot see
    that the eleventh record's other nine pairs join the person too). The people formed at 3 hold those
    nine weak pairs: expected precision (45 + p(3) + 9 p(-2)) / 55 = 0.87 < 0.9. Raised, the eleventh
    record stays apart: the people's precision is 1 and their expected recall barely moves (0.94)."""
    records = [{} for _ in range(11)]
    pairs = [(a, b, 12.0) for a in range(1, 11) for b in range(a + 1, 11)]
    pairs += [(10, 11, 3.0)] + [(a, 11, -2.0) for a in range(1, 10)]
    auto = _config("pnc", threshold="auto", auto_threshold={"min_expected_precision": 0.9})
    people, result = _people(_backend(records, pairs), auto)
    choice = result.threshold
    assert choice.raised_from_match_weight == 3.0 and choice.match_weight > 3.0
    assert people == [set(range(1, 11)), {11}]
    total = 45 * probability(12) + probability(3) + 9 * probability(-2)
    assert choice.people_expected_precision == pytest.approx(1.0, abs=1e-3)
    assert choice.people_expected_recall == pytest.approx(45 * probability(12) / total, abs=1e-4)
    # a threshold fixed in the config is the analyst's: never raised, its people still measured
    fixed = _config("pnc", threshold=probability(3.0), auto_threshold={"min_expected_precision": 0.9})
    kept, result = _people(_backend(records, pairs), fixed)
    assert kept == [set(range(1, 12))] and result.threshold.raised_from_match_weight is None
    assert result.threshold.people_expected_precision == pytest.approx(total / 55, abs=1e-4)


def test_a_raise_that_costs_the_people_more_recall_than_it_gains_is_not_kept():
    """One record per person and source (two registers): dropping a link loses its pair outright, so
    the raise lowers the people's expected F1 and the first threshold stays."""
    records = [{} for _ in range(5)]
    pairs = [(1, 2, 12.0), (2, 3, 3.0), (1, 3, -2.0), (4, 5, 12.0)]
    auto = _config("pnc", threshold="auto", auto_threshold={"min_expected_precision": 0.9})
    people, result = _people(_backend(records, pairs), auto)
    choice = result.threshold
    assert people == [{1, 2, 3}, {4, 5}] and choice.match_weight == 3.0
    assert choice.raised_from_match_weight is None and "lowered the people's expected F1" in choice.rule
    assert choice.people_expected_recall == pytest.approx(1.0)
    off = _config("pnc", threshold="auto", auto_threshold={"min_expected_precision": 0})
    assert _people(_backend(records, pairs), off)[1].threshold.rule == "highest expected F1"
    # precision first: the floor holds whatever the recall cost
    strict = {"min_expected_precision": 0.9, "floor_needs_f1_gain": False}
    first = _config("pnc", threshold="auto", auto_threshold=strict)
    people, result = _people(_backend(records, pairs), first)
    assert people == [{1, 2}, {3}, {4, 5}] and result.threshold.raised_from_match_weight == 3.0


@pytest.mark.parametrize("seed", range(10))
def test_conflicted_groups_are_those_holding_two_conflicting_profiles(seed, monkeypatch):
    """The array search for groups with a conflict (date of birth with typo terms) gives the groups a
    comparison of every two records' profiles gives."""
    rng = np.random.default_rng(seed)
    n, rule = 400, ConflictRule.model_validate(DOB)
    codes = rng.integers(-1, 4, size=(n, 5))  # small code ranges: many ties, so terms often agree
    codes[0] = -1  # node 0 is not a record
    prof = _Profiles(rule, codes, [(0, 1), (2, 2), (3, 3), (4, 4)])
    labels = np.minimum(np.arange(n), rng.integers(0, n, size=n))  # groups of various sizes
    labels = labels[labels]
    found = set(prof.conflicted(labels).tolist())
    # groups with more distinct profiles than are paired up with arrays: searched one by one (exact),
    # or taken as conflicted (the filter before the constrained clustering)
    monkeypatch.setattr(cluster_module, "_PAIRWISE", 2)
    assert set(prof.conflicted(labels).tolist()) == found
    assert set(prof.conflicted(labels, exact=False).tolist()) > found
    members: dict[int, list[int]] = {}
    for node in range(n):
        if codes[node, 0] >= 0:
            members.setdefault(int(labels[node]), []).append(node)
    profile = lambda node: tuple(int(v) for v in codes[node])  # noqa: E731
    expected = {
        g
        for g, nodes in members.items()
        if any(prof.conflict(profile(a), profile(b)) for a in nodes for b in nodes)
    }
    assert found == expected and expected  # the draw holds conflicts


@pytest.mark.parametrize("seed", range(5))
def test_chains_walked_in_batches_equal_shortest_paths_one_person_at_a_time(seed, monkeypatch):
    """People walked together by Floyd-Warshall give the strongest chains igraph finds person by person."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, size=60)
    starts = np.cumsum(sizes) - sizes
    label = np.repeat(starts, sizes)  # each person labelled by its first node
    pairs: set[tuple[int, int]] = set()
    for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):
        pairs |= {(a, a + 1) for a in range(start, start + size - 1)}  # a path keeps the person connected
        for _ in range(size // 2):  # and a few shortcuts
            a, b = sorted(rng.integers(start, start + size, size=2).tolist())
            if a != b:
                pairs.add((a, b))
    left, right = (np.array(side) for side in zip(*sorted(pairs), strict=True))
    # a few pairs scored twice, with different probabilities: the stronger one counts, as in igraph
    left, right = np.concatenate([left, left[:3]]), np.concatenate([right, right[:3]])
    probs = [rng.uniform(0.05, 1.0, size=len(left)), rng.uniform(0.05, 1.0, size=len(left))]
    batched = calibrate._chained(left, right, probs, label)
    monkeypatch.setattr(calibrate, "_BATCHED", 0)  # every person alone, through igraph
    assert batched == pytest.approx(calibrate._chained(left, right, probs, label), rel=1e-12)
    assert batched[0] > 0 and batched[0] != batched[1]


@pytest.mark.parametrize("seed", range(10))
def test_bridges_are_those_igraph_finds(seed):
    """The array search over a spanning forest finds the bridges igraph's search does, cluster by cluster."""
    rng = np.random.default_rng(seed)
    n, groups = 300, rng.integers(0, 80, size=300)
    smallest = np.full(80, n)
    np.minimum.at(smallest, groups, np.arange(n))
    label = smallest[groups]  # clusters of various sizes, each labelled by its smallest node
    pairs: set[tuple[int, int]] = set()
    for top in np.unique(label).tolist():
        nodes = np.flatnonzero(label == top).tolist()
        pairs |= {(min(a, b), max(a, b)) for a, b in itertools.pairwise(nodes)}  # connected
        for _ in range(len(nodes) // 3):  # a few cycles
            a, b = rng.choice(nodes, 2).tolist()
            if a != b:
                pairs.add((min(a, b), max(a, b)))
    left, right = (np.array(side) for side in zip(*sorted(pairs), strict=True))
    graph = igraph.Graph(n)
    graph.add_edges(np.column_stack([left, right]))
    expected = np.bincount(label[left[graph.bridges()]], minlength=n)
    found = _bridges(label, left, right)
    assert np.array_equal(np.bincount(label[found], minlength=n), expected) and expected.sum() > 0


def test_precision_first_raises_step_by_step_until_the_people_reach_the_floor():
    """Eight people of six records, each with a seventh record linked at weight 1, 2, ... 8 (and weak
    to the other six). At a floor of 0.905 the first raise (1 -> 5.5) leaves the people at 0.903:
    precision first takes a second step; with the F1 guard (the default) one step is all."""
    pairs, node = [], 0
    for w in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        person = list(range(node + 1, node + 7))
        extra = node + 7
        node = extra
        pairs += [(a, b, 12.0) for i, a in enumerate(person) for b in person[i + 1 :]]
        pairs += [(person[-1], extra, w)] + [(a, extra, -3.0) for a in person[:-1]]
    records = [{} for _ in range(node)]
    strict = {"min_expected_precision": 0.905, "floor_needs_f1_gain": False}
    _, result = _people(_backend(records, pairs), _config("pnc", threshold="auto", auto_threshold=strict))
    choice = result.threshold
    assert choice.rule.count("raised") == 2
    assert "match weight 5.5 had expected precision 0.9030" in choice.rule
    assert choice.match_weight == 6.5 and choice.raised_from_match_weight == 1.0
    assert choice.people_expected_precision >= 0.905
    guarded = _config("pnc", threshold="auto", auto_threshold={"min_expected_precision": 0.905})
    assert _people(_backend(records, pairs), guarded)[1].threshold.rule.count("raised") <= 1
