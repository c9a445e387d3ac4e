"""The one-person differencing experiment (issue 14, item 5): what two releases give away.

synth -> keys -> pseudonymise x4 -> verify -> run -> journeys -> release (release A); then remove one
person's records from every agency CSV, run the same chain with the same keys (release B), and diff
every published cell. An attacker who knows the method knows that a cell whose units did not change
gets the same value in both releases, so every cell whose published value changed contains the
removed person. For each of the person's attributes, the attacker reads it off "with certainty" when
the changed cells of that attribute's breakdown all name one value. Done three times: with cell key
perturbation (the default policy, key_scope "cell"), with key_scope "release", and without perturbation.

    .venv/bin/python scripts/differencing.py [--persons 3000] [--seed 11] [--work /tmp/differencing]

Prints, and writes to scripts/results/differencing.json, the attributes read off per variant.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

from linkage.config import load_config
from linkage.config.agency import AgencyConfig
from linkage.config.release import ReleasePolicy
from linkage.release.bundle import open_bundle
from linkage.release.tables import ALL, SUPPRESSED
from linkage.release.vocabulary import DIMENSIONS, STATISTICS

ROOT = Path(__file__).resolve().parents[1]
AGENCIES = ("police", "prosecution", "court", "prison", "probation")
POLICY = ROOT / "configs" / "release.yaml"
# attribute -> the release dimension that carries it
DIMENSION_OF = {
    "sex": "suspect_sex",
    "ethnicity": "ethnicity",
    "age_band": "age_band",
    "force": "force_area",
    "year": "recorded_year",
    "da_flag": "da_flag",
    "outcome": "police_outcome",
    "victim_sex": "victim_sex",
}
PASSPHRASE = "differencing experiment - synthetic data only"


def linkage(*args, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "linkage", *map(str, args), "-q"], env=env, check=True)


def chain(
    raw: Path, keys: Path, work: Path, policies: dict[str, Path], env: dict[str, str]
) -> dict[str, Path]:
    """pseudonymise -> verify -> run -> journeys -> one release per policy; the bundles by variant."""
    extracts, trusted = work / "extracts", keys / "trusted"
    for agency in AGENCIES:
        linkage("pseudonymise", "--config", ROOT / "configs" / "agencies" / f"{agency}.yaml",
                "--key", keys / "project.key", "--input", raw / f"{agency}.csv", "--out", extracts,
                "--signing-key", keys / f"{agency}.signing.key", env=env)  # fmt: skip
    linkage("verify", extracts, "--trusted-keys", trusted, env=env)
    run = work / "run"
    linkage("run", "--config", ROOT / "configs" / "linkage.yaml", "--extracts", extracts,
            "--trusted-keys", trusted, "--out", run, env=env)  # fmt: skip
    linkage("journeys", "--run", run, env=env)
    bundles = {}
    for variant, policy in policies.items():
        bundles[variant] = work / "releases" / variant
        linkage("release", "--run", run, "--policy", policy, "--out", bundles[variant], env=env)
    return bundles


def pick_person(truth: Path) -> int:
    """A person with exactly one record in each agency (a full journey to prison), lowest id."""
    return duckdb.sql(f"""
        SELECT person_id FROM read_parquet('{truth / "records.parquet"}')
        GROUP BY person_id
        HAVING count(*) = 4 AND count(DISTINCT source_dataset) = 4
        ORDER BY person_id LIMIT 1""").fetchall()[0][0]


def remove_person(raw: Path, reduced: Path, person: int) -> dict[str, int]:
    """Copy the raw CSVs without the person's rows (source_row = 1-based data row); rows removed."""
    reduced.mkdir(parents=True)
    removed = {}
    records = duckdb.sql(f"""
        SELECT source_dataset, source_row FROM read_parquet('{raw / "truth" / "records.parquet"}')
        WHERE person_id = {int(person)}""").fetchall()
    for agency in AGENCIES:
        rows = {r for a, r in records if a == agency}
        source = load_config(ROOT / "configs" / "agencies" / f"{agency}.yaml", AgencyConfig).input
        with open(raw / f"{agency}.csv", encoding=source.encoding, newline="") as fh:
            lines = list(csv.reader(fh, delimiter=source.delimiter, quotechar=source.quotechar))
        with open(reduced / f"{agency}.csv", "w", encoding=source.encoding, newline="") as fh:
            w = csv.writer(fh, delimiter=source.delimiter, quotechar=source.quotechar, lineterminator="\r\n")
            w.writerow(lines[0])
            w.writerows(line for i, line in enumerate(lines[1:], start=1) if i not in rows)
        removed[agency] = len(rows)
    return removed


def person_truth(run: Path, raw: Path, person: int) -> dict[str, object]:
    """The person's attributes as the release defines them, from run A's journeys of its police record."""
    journeys = run / "journeys.parquet"
    con = duckdb.connect()
    data_end = con.execute(f"SELECT max(recorded_date) FROM read_parquet('{journeys}')").fetchall()[0][0]
    keys = con.execute(f"""
        SELECT c.record_key FROM read_parquet('{run / "clusters.parquet"}') c
        JOIN read_parquet('{raw / "truth" / "records.parquet"}') t USING (source_dataset, source_row)
        WHERE t.person_id = {int(person)} AND c.source_dataset = 'police'""").fetchall()
    cols = {a: DIMENSIONS[d].sql for a, d in DIMENSION_OF.items()}
    cols |= {
        "convicted": DIMENSIONS["convicted"].sql,
        "custody": "CASE WHEN sentence_type = 'Immediate custody' THEN 'Yes' ELSE 'No' END",
        "sentence_length": STATISTICS["custody_days"].sql,
    }
    select = ", ".join(f"{sql} AS {a}" for a, sql in cols.items()).replace("$data_end", f"DATE '{data_end}'")
    row = con.execute(
        f"SELECT {select} FROM read_parquet('{journeys}') WHERE police_record_key = ?", [keys[0][0]]
    ).fetchall()[0]
    return dict(zip(cols, row, strict=True))


def changed_cells(a: Path, b: Path, policy: ReleasePolicy) -> list[tuple[str, dict, str, int, int]]:
    """Every published cell whose value differs between the two bundles: (table, labels, column, a, b)."""
    ta, tb = open_bundle(a), open_bundle(b)
    out = []
    for spec in policy.tables:
        rows_b = {tuple(r[d] for d in spec.by): r for r in tb[spec.name]}
        for ra in ta[spec.name]:
            rb = rows_b.get(tuple(ra[d] for d in spec.by))
            if rb is None:
                continue
            for column in ra:
                if column in spec.by:
                    continue
                va, vb = ra[column], rb[column]
                if va != vb and SUPPRESSED not in (va, vb):
                    out.append((spec.name, {d: ra[d] for d in spec.by}, column, int(va), int(vb)))
    return out


def attack(a: Path, b: Path, policy: ReleasePolicy, truth: dict[str, object]) -> dict[str, object]:
    """What the attacker reads off with certainty, and guesses, from the cells that changed.

    Which changed cells certainly hold the removed person: when unchanged journeys give unchanged
    values (no perturbation, or key_scope "cell"), every changed cell. With key_scope "release" every
    cell is re-drawn, so only a count that fell by more than the noise can explain (2 (b - 1)): a
    published value lies within b - 1 of the true count.
    """
    rules = policy.sdc
    stable = not rules.perturbation.enabled or rules.perturbation.key_scope == "cell"
    counts = {spec.name: set(spec.measures) for spec in policy.tables}
    changed = changed_cells(a, b, policy)
    if stable:
        certain = changed
    else:
        slack = 2 * (rules.rounding_base - 1)
        certain = [c for c in changed if c[2] in counts[c[0]] and c[3] - c[4] > slack]
    read: dict[str, object] = {}
    guessed: dict[str, object] = {}
    for attribute, dimension in DIMENSION_OF.items():
        values = {labels[dimension] for _, labels, _, _, _ in certain if labels.get(dimension, ALL) != ALL}
        if len(values) == 1:
            read[attribute] = values.pop()
        score: dict[str, int] = {}  # the attacker's best guess: the value whose counts fell most
        for table, labels, column, va, vb in changed:
            if column in counts[table] and labels.get(dimension, ALL) != ALL:
                score[labels[dimension]] = score.get(labels[dimension], 0) + va - vb
        if score:
            guessed[attribute] = max(sorted(score), key=score.__getitem__)
    if any(c == "convicted" for _, _, c, _, _ in certain):
        read["convicted"] = "Yes"
    if any(
        c == "custody" or labels.get("sentence_type") == "Immediate custody" for _, labels, c, _, _ in certain
    ):
        read["custody"] = "Yes"
    correct = sorted(k for k, v in read.items() if str(truth[k]) == v)
    estimate = _sentence_length(a, b, truth)
    error = (
        None if estimate is None or truth["sentence_length"] is None else estimate - truth["sentence_length"]
    )
    if error is not None and abs(error) <= 7:
        correct.append("sentence_length")
    return {
        "changed_cells": len(changed),
        "cells_certainly_holding_the_person": len(certain),
        "read_with_certainty": read,
        "read_correctly": correct,
        "attributes_read_correctly": len(correct),
        "sentence_length_estimate_error_days": error,
        "best_guess_correct": sorted(k for k, v in guessed.items() if str(truth[k]) == v),
        "best_guess_wrong": sorted(k for k, v in guessed.items() if str(truth[k]) != v),
    }


def _sentence_length(a: Path, b: Path, truth: dict[str, object]) -> float | None:
    """n_A * mean_A - n_B * mean_B from the sentencing table's custody row for the person's DA flag."""
    rows = []
    for bundle in (a, b):
        table = open_bundle(bundle)["sentencing"]
        row = next(
            r for r in table if r["sentence_type"] == "Immediate custody" and r["da_flag"] == truth["da_flag"]
        )
        if SUPPRESSED in (row["journeys"], row["custody_days_mean"]):
            return None
        rows.append((int(row["journeys"]), float(row["custody_days_mean"])))
    (na, ma), (nb, mb) = rows
    return None if (na, ma) == (nb, mb) else na * ma - nb * mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work", type=Path, default=Path("/tmp/differencing"))
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "differencing.json")
    args = parser.parse_args()
    started = time.perf_counter()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    keys = work / "keys"
    env = {**os.environ, "LINKAGE_KEY_PASSPHRASE": PASSPHRASE, "LINKAGE_LOG": str(work / "log.jsonl")}
    linkage("synth", "--persons", args.persons, "--seed", args.seed, "--out", work / "raw", env=env)
    linkage("keys", "new", "--project", "differencing", "--out", keys / "project.key", env=env)
    (keys / "trusted").mkdir(parents=True)
    for agency in AGENCIES:
        linkage("keys", "signing-new", "--agency", agency, "--out", keys, env=env)
        shutil.copy2(keys / f"{agency}.signing.pub", keys / "trusted")
    policies = {"perturbed_cell_scope": POLICY}
    for variant, perturbation in (
        ("perturbed_release_scope", {"key_scope": "release"}),
        ("unperturbed", {"enabled": False}),
    ):
        data = yaml.safe_load(POLICY.read_text())
        data["sdc"]["perturbation"] = perturbation
        policies[variant] = work / f"{variant}.yaml"
        policies[variant].write_text(yaml.safe_dump(data, sort_keys=False))

    person = pick_person(work / "raw" / "truth")
    bundles_a = chain(work / "raw", keys, work / "a", policies, env)
    removed = remove_person(work / "raw", work / "raw-b", person)
    bundles_b = chain(work / "raw-b", keys, work / "b", policies, env)
    truth = person_truth(work / "a" / "run", work / "raw", person)
    results = {
        variant: attack(bundles_a[variant], bundles_b[variant], load_config(policy, ReleasePolicy), truth)
        for variant, policy in policies.items()
    }
    report = {
        "persons": args.persons,
        "seed": args.seed,
        "records_removed": removed,
        "attributes": [*DIMENSION_OF, "convicted", "custody", "sentence_length"],
        "truth": {k: (str(v) if v is not None else None) for k, v in truth.items()},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
