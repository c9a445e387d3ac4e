"""Which true pairs a run misses, and why: evidence for the accuracy work of issue 13.

For every true pair of a benchmark set (records of one person in the truth) that the run did not put
in one cluster, the stage that lost it:
  not_blocked      no blocking rule of the run (model.yaml) finds it: never scored
  below_floor      blocked, scored under the pair floor (report.pair_floor_match_weight): not kept
  below_threshold  kept in pairs.parquet, under the run's threshold
  clustered_apart  at or above the threshold, but the clustering refused the merge (a conflict rule,
                   one-to-one) or merged the records into different people
and, per missed pair, how each token family compares (the level it would land in: exact, nickname,
sound-alike, first three letters, different, missing). With the benchmark's plaintext beside the
tokens (plain.parquet, public data), a family whose tokens all disagree is checked for a typo: the
Damerau-Levenshtein distance of the two values, and whether a *deletion-neighbourhood* token family
(every value with one character deleted, keyed like the others) would have found agreement - the
fuzzy evidence exact HMAC tokens cannot give (token spec v2 has no such family).

Also the wrong links (pairs in one cluster that are different people): linked directly (a pair at or
above the threshold) or only through other records (chaining).

Reads the layout scripts/bench_accuracy.py leaves in --work: <set>/extracts, <set>/raw/truth,
<set>/plain.parquet and <set>-ours/default (a run folder). Prints one JSON document.

    python scripts/analyse_missed.py --work /tmp/justice-linkage-bench/accuracy --sets febrl4_ssn
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import duckdb
import jellyfish
import pyarrow.parquet as pq
import yaml
from splink import DuckDBAPI

from linkage.config.linkage import LinkageConfig
from linkage.link.backend import Backend, _cap_sql
from linkage.link.model import blocking_rules_sql, capped

# token family -> levels as (label, SQL over l./r. that holds), strongest first (mirrors derive.py's
# comparisons); a family is 'missing' when its key column is NULL on either side
FAMILIES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "forename": (
        "fn1",
        [
            ("exact", "l.fn1 = r.fn1"),
            ("canonical", "l.fn1_canon = r.fn1_canon"),
            ("swapped_with_surname", "l.fn1 = r.sn AND l.sn = r.fn1"),
            ("one_name_crossed", "l.fn1 = r.sn OR l.sn = r.fn1"),
            ("phonetic", "l.fn1_phon = r.fn1_phon"),
            ("first_three", "l.fn1_pre3 = r.fn1_pre3"),
        ],
    ),
    "surname": (
        "sn",
        [
            ("exact", "l.sn = r.sn"),
            ("double_barrel_part", "l.sn_p1 = r.sn OR l.sn = r.sn_p1 OR l.sn_p2 = r.sn OR l.sn = r.sn_p2"),
            ("swapped_with_forename", "l.fn1 = r.sn AND l.sn = r.fn1"),
            ("phonetic", "l.sn_phon = r.sn_phon"),
            ("first_three", "l.sn_pre3 = r.sn_pre3"),
        ],
    ),
    "dob": (
        "dob",
        [
            ("exact", "l.dob = r.dob"),
            ("day_month_swapped", "l.dob = r.dob_swap OR l.dob_swap = r.dob"),
            ("two_of_three_parts", "l.dob_ym = r.dob_ym OR l.dob_md = r.dob_md OR l.dob_yd = r.dob_yd"),
        ],
    ),
    "postcode": ("pc", [("exact", "l.pc = r.pc"), ("district", "l.pc_district = r.pc_district")]),
    "address": (
        "addr_street",
        [("house_and_street", "l.addr_house = r.addr_house"), ("street", "l.addr_street = r.addr_street")],
    ),
    "town": ("addr_town", [("exact", "l.addr_town = r.addr_town")]),
}
ID_COLUMNS = ("pnc", "cro", "ni", "nhs")
# token family -> the plaintext column of plain.parquet it was made from
PLAINTEXT = {
    "forename": "first_name",
    "surname": "surname",
    "dob": "dob",
    "postcode": "postcode",
    "address": "address",
    "town": "town",
}


def _deletions(value: str) -> set[str]:
    """The value and every value with one character deleted (a deletion-neighbourhood token set)."""
    return {value} | {value[:i] + value[i + 1 :] for i in range(len(value))}


def _typo(a: str | None, b: str | None) -> dict | None:
    if a is None or b is None:
        return None
    a, b = a.strip().upper(), b.strip().upper()
    return {
        "distance": jellyfish.damerau_levenshtein_distance(a, b),
        "deletion_neighbourhood_agrees": bool(_deletions(a) & _deletions(b)),
    }


def _level_sql(family: str, columns: set[str]) -> str | None:
    key, levels = FAMILIES[family]
    if key not in columns:
        return None
    usable = [(label, sql) for label, sql in levels if all(c in columns for c in _columns_of(sql))]
    cases = " ".join(f"WHEN coalesce({sql}, false) THEN '{label}'" for label, sql in usable)
    return f"CASE WHEN l.{key} IS NULL OR r.{key} IS NULL THEN 'missing' {cases} ELSE 'different' END"


def _columns_of(sql: str) -> set[str]:
    return {w[2:] for w in sql.replace("(", " ").replace(")", " ").split() if w[:2] in ("l.", "r.")}


def analyse(work: Path, name: str, run: str = "default", examples: int = 0) -> dict:
    data, run_dir = work / name, work / f"{name}-ours" / run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    resolved = LinkageConfig.model_validate(yaml.safe_load((run_dir / "model.yaml").read_text()))
    threshold = metrics["threshold"]["threshold_match_probability"]
    con = duckdb.connect()
    con.execute("SET threads = 2")
    extracts = sorted((data / "extracts").glob("*.parquet"))
    # the capped rules' flags (model.cap_column), computed as the run computes them
    caps = capped(resolved.blocking_rules)
    Backend(DuckDBAPI(con), con).load_common_values({p.stem: p for p in extracts}, caps)
    con.execute(
        "CREATE TABLE tokens AS "
        + " UNION ALL BY NAME ".join(
            f"SELECT '{p.stem}' AS source_dataset, t.*{''.join(f', {f}' for f in flags)} "
            f"FROM read_parquet('{p}') AS t {joins}"
            for p in extracts
            for flags, joins in [_cap_sql(caps, set(pq.read_schema(p).names))]
        )
    )
    columns = {r[0] for r in con.execute("DESCRIBE tokens").fetchall()}
    con.execute(f"CREATE TABLE truth AS SELECT * FROM read_parquet('{data / 'raw/truth/records.parquet'}')")
    con.execute(f"CREATE TABLE clusters AS SELECT * FROM read_parquet('{run_dir / 'clusters.parquet'}')")
    con.execute(f"CREATE TABLE pairs AS SELECT * FROM read_parquet('{run_dir / 'pairs.parquet'}')")
    plain = data / "plain.parquet"
    # every record with its true person, predicted person and tokens; a node number orders each pair
    con.execute("""
        CREATE TABLE rec AS
        SELECT row_number() OVER (ORDER BY t.source_dataset, t.source_row) AS node, t.person_id AS truth,
               c.person_id AS predicted, k.*
        FROM truth AS t
        JOIN clusters AS c USING (source_dataset, source_row)
        JOIN tokens AS k USING (source_dataset, source_row)
    """)
    pair_filter = "l.source_dataset <> r.source_dataset" if resolved.link_type == "link_only" else "true"
    con.execute(f"""
        CREATE TABLE true_pairs AS
        SELECT l.node AS node_l, r.node AS node_r, l.predicted = r.predicted AS found
        FROM rec AS l JOIN rec AS r ON l.truth = r.truth AND l.node < r.node AND {pair_filter}
    """)
    # the pair's match weight, whichever record Splink put on the left
    con.execute("""
        CREATE TABLE missed AS
        WITH m AS (SELECT * FROM true_pairs WHERE NOT found)
        SELECT m.node_l, m.node_r, p.match_weight, p.match_probability
        FROM m
        JOIN rec AS l ON l.node = m.node_l
        JOIN rec AS r ON r.node = m.node_r
        LEFT JOIN pairs AS p ON
            (p.source_dataset_l = l.source_dataset AND p.record_key_l = l.record_key
             AND p.source_dataset_r = r.source_dataset AND p.record_key_r = r.record_key)
         OR (p.source_dataset_l = r.source_dataset AND p.record_key_l = r.record_key
             AND p.source_dataset_r = l.source_dataset AND p.record_key_r = l.record_key)
    """)
    rules = blocking_rules_sql(resolved.blocking_rules)
    blocked = " OR ".join(f"coalesce({r.sql}, false)" for r in rules) or "false"
    levels = {f: sql for f in FAMILIES if (sql := _level_sql(f, columns))}
    ids = [c for c in columns if c in ID_COLUMNS or c.startswith("id_")]
    id_levels = {
        c: f"CASE WHEN l.{c} IS NULL OR r.{c} IS NULL THEN 'missing' "
        f"WHEN l.{c} = r.{c} THEN 'exact' ELSE 'different' END"
        for c in ids
        if con.execute(f"SELECT count({c}) FROM tokens").fetchall()[0][0]
    }
    selects = ", ".join(f"{sql} AS {f}" for f, sql in {**levels, **id_levels}.items())
    rows = con.execute(f"""
        SELECT l.source_dataset AS sd_l, l.source_row AS sr_l, r.source_dataset AS sd_r, r.source_row AS sr_r,
               m.match_weight, m.match_probability, ({blocked}) AS blocked, {selects}
        FROM missed AS m JOIN rec AS l ON l.node = m.node_l JOIN rec AS r ON r.node = m.node_r
    """).fetchall()
    names = [d[0] for d in con.description]
    plaintext = {}
    if plain.is_file():
        for rec in con.execute(f"SELECT * FROM read_parquet('{plain}')").fetchall():
            plaintext[(rec[0], int(rec[1]))] = rec
        plain_cols = [d[0] for d in con.description]
    stages: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    per_family: dict[str, Counter[str]] = {f: Counter() for f in [*levels, *id_levels]}
    typos: dict[str, Counter[str]] = {f: Counter() for f in PLAINTEXT}
    fuzzy_would_help = 0
    shown = []
    for row in rows:
        r = dict(zip(names, row, strict=True))
        if not r["blocked"]:
            stage = "not_blocked"
        elif r["match_weight"] is None:
            stage = "below_floor"
        elif r["match_probability"] < threshold:
            stage = "below_threshold"
        else:
            stage = "clustered_apart"
        stages[stage] += 1
        profile = {f: r[f] for f in [*levels, *id_levels]}
        for f, level in profile.items():
            per_family[f][level] += 1
        patterns[" ".join(f"{f}={v}" for f, v in profile.items())] += 1
        helped = False
        if plaintext:
            a, b = plaintext.get((r["sd_l"], r["sr_l"])), plaintext.get((r["sd_r"], r["sr_r"]))
            for f, column in PLAINTEXT.items():
                if profile.get(f) != "different" or a is None or b is None:
                    continue
                i = plain_cols.index(column)
                t = _typo(a[i], b[i])
                if t is None:
                    continue
                bucket = f"distance_{t['distance']}" if t["distance"] <= 2 else "distance_3_plus"
                typos[f][bucket] += 1
                if t["deletion_neighbourhood_agrees"]:
                    typos[f]["deletion_neighbourhood_agrees"] += 1
                    helped = True
        fuzzy_would_help += helped
        if len(shown) < examples:
            shown.append({"stage": stage, "match_weight": r["match_weight"], **profile})
    totals = con.execute("SELECT count(*), count(*) FILTER (found) FROM true_pairs").fetchall()[0]
    # wrong links: pairs of records put in one person that are different people, and how their token
    # families compare (directly linked ones: the evidence the model took for a match)
    con.execute(f"""
        CREATE TABLE wrong AS
        SELECT l.node AS node_l, r.node AS node_r, EXISTS (
                   SELECT 1 FROM pairs AS p WHERE p.match_probability >= {threshold} AND (
                       (p.source_dataset_l = l.source_dataset AND p.record_key_l = l.record_key
                        AND p.source_dataset_r = r.source_dataset AND p.record_key_r = r.record_key)
                    OR (p.source_dataset_l = r.source_dataset AND p.record_key_l = r.record_key
                        AND p.source_dataset_r = l.source_dataset AND p.record_key_r = l.record_key))
               ) AS direct
        FROM rec AS l JOIN rec AS r
          ON l.predicted = r.predicted AND l.node < r.node AND l.truth <> r.truth AND {pair_filter}
    """)
    wrong = con.execute("SELECT count(*), count(*) FILTER (direct) FROM wrong").fetchall()[0]
    wrong_patterns = con.execute(f"""
        SELECT concat_ws(' ', {", ".join(f"'{f}=' || {f}" for f in [*levels, *id_levels])}) AS pattern,
               count(*) AS n
        FROM (SELECT {selects} FROM wrong AS w
              JOIN rec AS l ON l.node = w.node_l JOIN rec AS r ON r.node = w.node_r WHERE w.direct)
        GROUP BY ALL ORDER BY n DESC, pattern LIMIT 15
    """).fetchall()
    return {
        "set": name,
        "run": str(run_dir),
        "threshold_match_probability": threshold,
        "true_pairs": totals[0],
        "found": totals[1],
        "missed": totals[0] - totals[1],
        "missed_by_stage": dict(stages.most_common()),
        "missed_by_family_level": {f: dict(c.most_common()) for f, c in per_family.items()},
        "missed_patterns_top": [{"pattern": p, "pairs": n} for p, n in patterns.most_common(15)],
        "typos_in_disagreeing_families": {f: dict(c) for f, c in typos.items() if c},
        "missed_with_a_family_a_deletion_neighbourhood_token_would_match": fuzzy_would_help,
        "wrong_links": {
            "pairs": wrong[0],
            "linked_directly": wrong[1],
            "through_chaining": wrong[0] - wrong[1],
            "linked_directly_patterns_top": [{"pattern": p, "pairs": n} for p, n in wrong_patterns],
        },
        "examples": shown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/justice-linkage-bench/accuracy"))
    parser.add_argument("--sets", default="febrl4_ssn,febrl4_nossn")
    parser.add_argument("--run", default="default", help="Run folder under <set>-ours/ (default, declared).")
    parser.add_argument("--examples", type=int, default=0, help="Missed pairs to list (token levels only).")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args()
    result = {name: analyse(args.work, name, args.run, args.examples) for name in args.sets.split(",")}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
