"""Benchmark `linkage run` (pseudonymised tokens) against plain Splink on the same records in plaintext.

For each --persons N: synthetic data (`linkage synth`, default noise and hard cases) is generated,
pseudonymised and cached under --cache (reused by later runs). Then, each in its own process so
peak RSS is measured separately:
  (a) engine:    `run_linkage` with configs/linkage.yaml on the pseudonymised extracts;
  (b) plaintext: a sensible standard Splink model (NameComparison, DateOfBirthComparison,
                 PostcodeComparison, exact PNC / case reference / sex; connected components) on the
                 raw CSVs normalised into one schema, with the same engine settings (DuckDB on disk,
                 2 threads, 6 GB memory limit, threshold 0.99).
Both are scored with `linkage evaluate` (pairwise precision / recall / F1 against truth). The
engine's blocking recall (share of true pairs found by at least one blocking rule) is measured too.
Writes scripts/results/bench_link.json and prints a Markdown table for docs/benchmarks.md.
Usage: python scripts/bench_link.py --persons 40000 --persons 400000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "linkage.yaml"
AGENCIES = ("police", "prosecution", "court", "prison", "probation")
PASSPHRASE = "benchmark passphrase, not secret"
THRESHOLD = 0.99


# --- data ------------------------------------------------------------------------------------------


def ensure_data(persons: int, seed: int, cache: Path) -> Path:
    """Synthetic raw CSVs + truth, keys, and signed pseudonymised extracts, built once per (N, seed)."""
    from linkage.config import load_config
    from linkage.config.agency import AgencyConfig
    from linkage.extract.pseudonymise import pseudonymise
    from linkage.keys import load_signing_key, new_project_key, new_signing_key
    from linkage.synth import generate

    data = cache / f"persons{persons}-seed{seed}"
    stamp = data_stamp()
    if (data / "complete").is_file():
        if stamp in (data / "complete").read_text():
            return data
        # built by another generator, agency config or token spec: stale, never silently reused
        print(f"{data}: built by another version of the synthesis or token spec; rebuilding", file=sys.stderr)
        shutil.rmtree(data)
    t = time.perf_counter()
    generate(persons, seed, data / "raw", overwrite=True)
    key = new_project_key("bench", data / "project.key", PASSPHRASE, log2_n=12, force=True)
    for agency in AGENCIES:
        new_signing_key(agency, data / "agency-keys", PASSPHRASE, log2_n=12, force=True)
        (data / "trusted").mkdir(exist_ok=True)
        pub = data / "agency-keys" / f"{agency}.signing.pub"
        (data / "trusted" / pub.name).write_bytes(pub.read_bytes())
        config_path = ROOT / "configs" / "agencies" / f"{agency}.yaml"
        pseudonymise(
            load_config(config_path, AgencyConfig),
            config_path,
            key,
            data / "raw" / f"{agency}.csv",
            data / "extracts",
            rejects_dir=data / "rejects",
            signing_key=load_signing_key(data / "agency-keys" / f"{agency}.signing.key", PASSPHRASE),
        )
    (data / "complete").write_text(f"built in {time.perf_counter() - t:.1f} s\n{stamp}\n")
    return data


def data_stamp() -> str:
    """What a cached data set was built by: the token spec version and a digest of the synthesis code
    and the agency configs (a change to either changes the data)."""
    from linkage.tokens.spec import TOKEN_SPEC_VERSION

    digest = hashlib.sha256()
    sources = sorted((ROOT / "src" / "linkage" / "synth").glob("*.py"))
    for path in [*sources, *sorted((ROOT / "configs" / "agencies").glob("*.yaml"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"token spec {TOKEN_SPEC_VERSION}, synthesis and configs {digest.hexdigest()[:16]}"


def blocking_recall(data: Path, run: Path) -> dict:
    """Share of true pairs (same synthetic person) that at least one blocking rule of the run finds
    (the rules the run derived and chose under its budget), beside the run's own estimate of it."""
    from linkage.evaluate import blocking_recall as measured

    truth = measured(run, data / "extracts", data / "raw" / "truth")
    estimate = (json.loads((run / "metrics.json").read_text())["blocking_recall"] or {}).get("estimate")
    return {
        "true_pairs": truth.true_pairs, "found_by_blocking": truth.compared, "recall": truth.recall,
        "estimate": estimate,
    }  # fmt: skip


# --- (a) the engine ----------------------------------------------------------------------------------


def run_engine(data: Path, out: Path) -> dict:
    """`linkage run` at the default settings, then the same scored pairs re-clustered for comparison."""
    from linkage.config import load_config
    from linkage.config.linkage import LinkageConfig
    from linkage.link.run import run_linkage

    config = load_config(CONFIG, LinkageConfig)
    # keep the working database so the scored pairs can be re-clustered below (deleted at the end)
    config = config.model_copy(update={"backend": config.backend.model_copy(update={"keep_database": True})})
    result = run_linkage(
        config, CONFIG, out, extracts_dir=data / "extracts", trusted_keys_dir=data / "trusted", overwrite=True
    )
    m = result.metrics
    t = m.timings_seconds
    return {
        "records": m.records_total,
        "comparisons": m.comparisons_total,
        "stages": {
            "load": t["verify"] + t["load"],
            "train": t["train_lambda"] + t["train_u"] + t["train_m"],
            "predict": t["predict"],
            "cluster": t["cluster"],
            "outputs": t["write"] + t["metrics"] + t["report"],
        },
        "total_seconds": t["total"],
        "largest_cluster": m.clusters.largest[0].size if m.clusters.largest else 0,
        "threshold": m.threshold.model_dump(exclude={"curve"}),
        "diagnostics": m.clusters.diagnostics.model_dump() if m.clusters.diagnostics else None,
    }


# Thresholds (as match weights) swept to find the best F1 over all thresholds, for each method.
SWEEP_WEIGHTS = (-2, -1, 0, 1, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, 12)


def _scores(report) -> dict:
    pw, c = report.pairwise, report.clusters
    return {
        "precision": pw.precision,
        "recall": pw.recall,
        "f1": pw.f1,
        "largest_predicted": c.largest_predicted,
        "largest_true": c.largest_true,
        "by_hard_case": {
            k: {"precision": v.precision, "recall": v.recall} for k, v in report.by_hard_case.items()
        },
    }


def sweep(data: Path, out: Path) -> dict:
    """Re-cluster the kept scored pairs: connected components at 0.5 and over SWEEP_WEIGHTS, and the
    configured method over SWEEP_WEIGHTS; each scored against truth. Deletes the working database."""
    import shutil

    from splink import DuckDBAPI

    from linkage.config import load_config
    from linkage.config.linkage import LinkageConfig
    from linkage.evaluate import evaluate_clusters
    from linkage.link.backend import Backend
    from linkage.link.cluster import cluster
    from linkage.link.threshold import probability

    config = load_config(out / "model.yaml", LinkageConfig)  # the model the run derived
    work = out / "work"
    con = duckdb.connect(str(work / "linkage.duckdb"))
    con.execute("SET threads = 2; SET memory_limit = '6GB'")
    predictions = con.execute("""
        SELECT table_name FROM duckdb_columns() WHERE column_name = 'record_key_l'
          AND table_name LIKE '%predict%' GROUP BY ALL ORDER BY table_name LIMIT 1""").fetchall()[0][0]

    class Scored:
        physical_name = predictions

    backend = Backend(DuckDBAPI(con), con)
    inputs = {a: backend.input_table(a) for a in AGENCIES}
    scratch = out / "sweep"
    scratch.mkdir(exist_ok=True)

    def measure(method: str, threshold: float) -> dict:
        settings = config.clustering.model_dump()
        settings.update(method=method, threshold_match_probability=threshold)
        if method == "connected_components":
            settings.update(never_link_different=[], override_match_weight=float("inf"))
        clustered = cluster(backend, Scored(), "record_index", inputs, type(config.clustering)(**settings))
        con.execute(f"COPY {clustered.table} TO '{scratch / 'clusters.parquet'}' (FORMAT parquet)")
        return {
            "threshold": threshold,
            **_scores(evaluate_clusters(scratch / "clusters.parquet", data / "raw" / "truth")),
        }

    result = {"connected_components_0.5": measure("connected_components", 0.5)}
    for method in ("connected_components", config.clustering.method):
        runs = [measure(method, probability(w)) for w in SWEEP_WEIGHTS]
        result[f"{method}_sweep"] = runs
        result[f"{method}_best"] = max(runs, key=lambda r: r["f1"])
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


# --- (b) plain Splink on plaintext ---------------------------------------------------------------------

MISSING = ("", "N/K", "NK", "UNKNOWN", "NOT KNOWN", "NFA", "NO FIXED ABODE", "NULL")

# Per agency: how to read the CSV and SQL giving one common schema from its columns.
LAYOUTS = {
    "police": (
        {"delimiter": ",", "encoding": "utf-8"},
        "forename",
        "middle_names",
        "surname",
        "strptime(dob, '%d/%m/%Y')",
        "CASE gender WHEN 'Male' THEN 'M' WHEN 'Female' THEN 'F' END",
        "postcode",
        "pnc_id",
        "urn",
    ),
    "prosecution": (
        {"delimiter": "|", "encoding": "utf-8"},
        "trim(split_part(defendant_name, ',', 2))",
        "NULL",
        "split_part(defendant_name, ',', 1)",
        "strptime(date_of_birth, '%Y-%m-%d')",
        "sex",
        "postcode",
        "pnc",
        "urn",
    ),
    "court": (
        {"delimiter": ";", "encoding": "cp1252"},
        "defendant_forenames",
        "NULL",
        "defendant_surname",
        "strptime(defendant_dob, '%d-%b-%Y')",
        "defendant_sex",
        "defendant_postcode",
        "pnc_id",
        "case_urn",
    ),
    "prison": (
        {"delimiter": ",", "encoding": "utf-8"},
        "first_name",
        "middle_name",
        "last_name",
        "strptime(birth_date, '%Y%m%d')",
        "gender",
        "home_postcode",
        "pnc_number",
        "NULL",
    ),
    # one "Forenames SURNAME" column: the forenames before the run of upper-case words
    "probation": (
        {"delimiter": "\t", "encoding": "utf-8"},
        "regexp_extract(offender_name, '^(.*?) ([A-Z''-]+( [A-Z''-]+)*)$', 1)",
        "NULL",
        "regexp_extract(offender_name, '^(.*?) ([A-Z''-]+( [A-Z''-]+)*)$', 2)",
        "strptime(offender_dob, '%d.%m.%Y')",
        "left(gender, 1)",
        "address_postcode",
        "pnc_ref",
        "court_urn",
    ),
}


def _read_csv(path: Path, delimiter: str, encoding: str) -> pa.Table:
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True, null_values=list(MISSING)),
    )
    table = table.cast(pa.schema([pa.field(f.name, pa.string()) for f in table.schema]))
    return table.append_column("source_row", pa.array(range(1, table.num_rows + 1), pa.int64()))


def _normalised_sql(agency: str, table: str) -> str:
    _, forenames, middle, surname, dob, sex, postcode, pnc, case_ref = LAYOUTS[agency]
    # Standard cleaning: upper case, accents stripped, first forename, PNC to YY/NNNNNNNC.
    name = "upper(strip_accents(trim({})))"
    return f"""
        WITH raw AS (
            SELECT source_row, {forenames} AS forenames, {middle} AS middle, {surname} AS surname,
                   try_cast({dob.replace("strptime(", "try_strptime(")} AS DATE) AS dob, {sex} AS sex,
                   {postcode} AS postcode, {pnc} AS pnc, {case_ref} AS case_ref
            FROM {table}
        ),
        pnc_parts AS (
            SELECT *, regexp_extract(
                          pnc, '^(\\d{{2}}|\\d{{4}})/(\\d{{1,7}})([A-Z])$', ['year', 'serial', 'check']
                      ) AS p
            FROM raw
        )
        SELECT '{agency}' AS source_dataset, source_row AS unique_id, source_row,
               {name.format("split_part(forenames, ' ', 1)")} AS first_name,
               nullif({name.format("coalesce(middle, split_part(forenames, ' ', 2))")}, '') AS middle_name,
               {name.format("surname")} AS surname,
               strftime(dob, '%Y-%m-%d') AS dob,
               CASE WHEN sex IN ('M', 'F') THEN sex END AS sex,
               replace(upper(postcode), ' ', '') AS postcode,
               CASE WHEN p.year <> ''
                    THEN right(p.year, 2) || '/' || lpad(p.serial, 7, '0') || p."check" END AS pnc,
               regexp_replace(upper(case_ref), '[^A-Z0-9]', '', 'g') AS case_ref
        FROM pnc_parts
    """


def run_plaintext(data: Path, out: Path) -> dict:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    out.mkdir(parents=True, exist_ok=True)
    (out / "plain.duckdb").unlink(missing_ok=True)
    con = duckdb.connect(str(out / "plain.duckdb"))
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'; SET threads = 2; SET memory_limit = '6GB'")
    con.execute(f"SET temp_directory = '{out / 'spill'}'; SET preserve_insertion_order = false")
    stages: dict[str, float] = {}
    t = time.perf_counter()
    db_api, tables = DuckDBAPI(con), []
    for agency, (csv, *_rest) in LAYOUTS.items():
        con.register(f"raw_{agency}", _read_csv(data / "raw" / f"{agency}.csv", **csv))
        con.execute(f"CREATE TABLE plain_{agency} AS {_normalised_sql(agency, f'raw_{agency}')}")
        con.unregister(f"raw_{agency}")
        tables.append(db_api.register(f"plain_{agency}", dataset_display_name=agency, table_name=agency))
    stages["load"] = time.perf_counter() - t

    settings = SettingsCreator(
        link_type="link_and_dedupe",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("pnc"),
            cl.ExactMatch("case_ref"),
            cl.ExactMatch("sex"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("pnc"),
            block_on("case_ref"),
            block_on("surname", "substr(dob, 1, 7)"),
            block_on("substr(surname, 1, 3)", "substr(dob, 1, 4)", "substr(dob, 9, 2)"),
            block_on("first_name", "substr(dob, 6, 5)"),
            block_on("postcode", "substr(first_name, 1, 3)"),
            block_on("postcode", "substr(surname, 1, 3)"),
            block_on("dob", "substr(postcode, 1, 3)"),
            "l.first_name = r.surname AND l.surname = r.first_name",
            "l.first_name = r.first_name AND l.surname = r.surname AND (l.dob IS NULL OR r.dob IS NULL)",
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(tables, settings, log_level=None)
    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("pnc"), block_on("first_name", "surname", "dob", "postcode")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=42)
    for rule in (block_on("dob"), block_on("first_name", "surname"), block_on("pnc")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=1e6)
    stages["train"] = time.perf_counter() - t

    t = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD, warning_mode="never")
    stages["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, THRESHOLD)
    stages["cluster"] = time.perf_counter() - t

    t = time.perf_counter()
    con.execute(f"""
        COPY (SELECT source_dataset, unique_id AS record_key, source_row, cluster_id AS person_id
              FROM {clusters.physical_name})
        TO '{out / "clusters.parquet"}' (FORMAT parquet)
    """)
    stages["outputs"] = time.perf_counter() - t
    records = sum(con.execute(f"SELECT count(*) FROM plain_{a}").fetchall()[0][0] for a in AGENCIES)
    con.close()
    (out / "plain.duckdb").unlink()
    return {"records": records, "stages": stages, "total_seconds": sum(stages.values())}


# --- driver --------------------------------------------------------------------------------------------


def child(kind: str, data: Path, out: Path, script: str = __file__) -> dict:
    """Run ``script --child kind data out`` in a fresh process (its own peak RSS, no warm caches from
    another run) and return the JSON object it prints last."""
    proc = subprocess.run(
        [sys.executable, script, "--child", kind, str(data), str(out)], capture_output=True, text=True
    )
    if proc.returncode:
        sys.exit(f"{kind} run on {data.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_main(kind: str, data: Path, out: Path) -> None:
    from linkage.evaluate import evaluate, evaluate_clusters

    started = time.perf_counter()
    result = run_engine(data, out) if kind == "engine" else run_plaintext(data, out)
    result["wall_seconds"] = time.perf_counter() - started
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    truth = data / "raw" / "truth"
    # the plaintext side writes clusters.parquet alone, no run folder
    report = evaluate(out, truth) if kind == "engine" else evaluate_clusters(out / "clusters.parquet", truth)
    scores = _scores(report)
    result.update(scores if kind == "engine" else {k: scores[k] for k in ("precision", "recall", "f1")})
    if kind == "engine":
        result["compare"] = sweep(data, out)
    print(json.dumps(result))


def _best_f1(compare: dict) -> float:
    return max(v["f1"] for k, v in compare.items() if k.endswith("_best"))


def _markdown(results: list[dict]) -> str:
    lines = [
        "| records | side | precision | recall | F1 | load | train | predict | cluster | outputs | total s "
        "| peak RSS GiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for side in ("engine", "plaintext"):
            s = r[side]
            st = s["stages"]
            lines.append(
                f"| {s['records']:,} | {side} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} "
                f"| {st['load']:.1f} | {st['train']:.1f} | {st['predict']:.1f} | {st['cluster']:.1f} "
                f"| {st['outputs']:.1f} | {s['wall_seconds']:.1f} | {s['peak_rss_bytes'] / 2**30:.2f} |"
            )
    lines += [
        "",
        "| records | clustering | threshold | precision | recall | F1 | largest predicted / true "
        "| twin P | jr_sr P |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        e = r["engine"]
        c = e["compare"]
        method = next(k[: -len("_best")] for k in c if k.endswith("_best") and not k.startswith("connected"))
        rows = [
            ("connected components", c["connected_components_0.5"]),
            ("connected components (best threshold)", c["connected_components_best"]),
            (f"{method} (best threshold)", c[f"{method}_best"]),
            (
                f"{method} (default: {e['threshold']['rule']})",
                {**e, "threshold": e["threshold"]["threshold_match_probability"]},
            ),
        ]
        for name, x in rows:
            hc = {k: v["precision"] for k, v in x["by_hard_case"].items()}
            lines.append(
                f"| {e['records']:,} | {name} | {x['threshold']:.4g} | {x['precision']:.4f} "
                f"| {x['recall']:.4f} | {x['f1']:.4f} | {x['largest_predicted']} / {x['largest_true']} "
                f"| {hc.get('twin', 1):.3f} | {hc.get('jr_sr', 1):.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, action="append", help="Synthetic persons (repeatable).")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/justice-linkage-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "bench_link.json")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, data, out = args.child
        _child_main(kind, Path(data), Path(out))
        return
    results = []
    for persons in args.persons or [40000, 400000]:
        data = ensure_data(persons, args.seed, args.cache)
        entry = {"persons": persons, "seed": args.seed}
        for side in ("engine", "plaintext"):
            entry[side] = child(side, data, args.cache / f"run-{side}-{persons}")
            print(f"{persons} persons, {side}: {json.dumps(entry[side])}", file=sys.stderr)
        entry["f1_difference"] = entry["engine"]["f1"] - entry["plaintext"]["f1"]
        entry["blocking_recall"] = blocking_recall(data, args.cache / f"run-engine-{persons}")
        results.append(entry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"plaintext_threshold": THRESHOLD, "results": results}, indent=2) + "\n")
    print(_markdown(results))
    for r in results:
        b = r["blocking_recall"]
        print(
            f"{r['engine']['records']:,} records: blocking recall {b['recall']:.4f} "
            f"({b['found_by_blocking']:,} of {b['true_pairs']:,} true pairs); "
            f"F1 engine - plaintext = {r['f1_difference']:+.4f}; default F1 - best F1 over thresholds = "
            f"{r['engine']['f1'] - _best_f1(r['engine']['compare']):+.4f}"
        )


if __name__ == "__main__":
    main()
