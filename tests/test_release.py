"""`linkage release` end to end on perfect-linkage synthetic journeys: the bundle, its SDC, refusals."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage.errors import ConfigError, InputError
from linkage.release.build import build_release
from linkage.release.tables import SUPPRESSED, SYMBOLS

POLICY = """
policy_version: 1
title: test release
sdc: {threshold: 10, rounding_base: 5}
tables:
  - name: funnel
    title: funnel
    where: {police_record: "Yes"}
    measures: [recorded, cps_referral, convicted, custody]
    by: [da_flag]
  - name: funnel_by_sex
    title: funnel by sex
    where: {police_record: "Yes"}
    measures: [recorded, cps_referral, convicted, custody]
    by: [suspect_sex, da_flag]
  - name: police_outcomes
    title: outcomes
    where: {police_record: "Yes"}
    measures: [recorded]
    by: [police_outcome, da_flag]
    statistics: [days_to_outcome]
  - name: sentencing
    title: sentencing
    where: {sentenced: "Yes"}
    measures: [journeys]
    by: [sentence_type]
    statistics: [custody_days]
"""


def write_policy(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def bundle(linked_run, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("release")
    with pytest.MonkeyPatch.context() as mp:  # a module fixture runs before the per-test run log is set
        mp.setenv("LINKAGE_LOG", str(d / "log.jsonl"))
        result = build_release(linked_run.run, write_policy(d), d / "out" / "r1")
    return result.out_dir


def read_table(bundle: Path, name: str) -> list[dict[str, str]]:
    with open(bundle / "tables" / f"{name}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


COUNT_COLUMNS = {
    "funnel": ["recorded", "cps_referral", "convicted", "custody"],
    "funnel_by_sex": ["recorded", "cps_referral", "convicted", "custody"],
    "police_outcomes": ["recorded"],
    "sentencing": ["journeys"],
}


def test_no_published_count_below_threshold_or_off_the_rounding_base(bundle):
    published = 0
    for name, cols in COUNT_COLUMNS.items():
        for row in read_table(bundle, name):
            for c in cols:
                if row[c] != SUPPRESSED:
                    published += 1
                    assert int(row[c]) >= 10 and int(row[c]) % 5 == 0, (name, row)
    assert published > 20


def test_shared_totals_are_the_same_in_every_table(bundle):
    funnel = {r["da_flag"]: r for r in read_table(bundle, "funnel")}
    by_sex = {r["da_flag"]: r for r in read_table(bundle, "funnel_by_sex") if r["suspect_sex"] == "All"}
    outcomes = {
        r["da_flag"]: r for r in read_table(bundle, "police_outcomes") if r["police_outcome"] == "All"
    }
    for flag in ("DA", "Not DA", "All"):
        for c in COUNT_COLUMNS["funnel"]:
            assert funnel[flag][c] == by_sex[flag][c]
        assert funnel[flag]["recorded"] == outcomes[flag]["recorded"]


def test_no_line_has_exactly_one_suppressed_cell(bundle):
    rows = read_table(bundle, "funnel_by_sex")
    for c in COUNT_COLUMNS["funnel_by_sex"]:
        for dim, other in (("suspect_sex", "da_flag"), ("da_flag", "suspect_sex")):
            for value in {r[other] for r in rows}:
                line = [r[c] for r in rows if r[other] == value]
                assert line.count(SUPPRESSED) != 1, (c, dim, value)


def test_bundle_has_checksums_and_no_record_keys_and_acro_is_in_the_checker_pack(bundle, linked_run):  # noqa: F811
    checker = bundle.with_name(bundle.name + ".checker")
    assert not (bundle / "acro").exists() and not list(bundle.rglob("results.json"))
    assert "reason" not in (bundle / "release.json").read_text()
    results = json.loads((checker / "acro" / "results.json").read_text())["results"]
    assert {"funnel__recorded", "police_outcomes__days_to_outcome", "sentencing__custody_days"} <= set(
        results
    )
    assert all(r["status"] in ("pass", "review") for r in results.values() if r["type"] == "table")
    listed = set()
    for line in (bundle / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed.add(name)
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert files == listed | {"SHA256SUMS", "RELEASE-COMPLETE"}
    assert {n.split("/")[0] for n in listed} == {"tables", "report.html", "release.json"}
    meta = json.loads((bundle / "tables" / "funnel.json").read_text())
    assert meta["provenance"]["run_id"] == linked_run.run.name
    assert set(meta["provenance"]["manifests"]) == {"police", "prosecution", "court", "prison", "probation"}
    journeys = linked_run.run / "journeys.parquet"
    keys = duckdb.sql(
        f"SELECT police_record_key::VARCHAR FROM read_parquet('{journeys}') LIMIT 200"
    ).fetchall()
    blobs = [p.read_bytes() for p in bundle.rglob("*") if p.is_file()]
    for (key,) in keys:
        assert not any(key.encode() in b for b in blobs)
    report = (bundle / "report.html").read_text()
    assert (
        "<svg" in report and "<script" not in report and "http://" not in report and "https://" not in report
    )


@pytest.mark.parametrize(
    ("by", "what"),
    [
        ("case_ref", "identifies"),
        ("record_key", "identifies"),
        ("source_row", "identifies"),
        ("person_id", "identifies"),
        ("recorded_date", "not a dimension of the release vocabulary"),
        ("colour", "not a dimension of the release vocabulary"),
    ],
)
def test_identifier_or_record_level_column_is_refused_and_nothing_written(linked_run, tmp_path, by, what):  # noqa: F811
    policy = write_policy(tmp_path, POLICY.replace("by: [da_flag]", f"by: [{by}]", 1))
    out = tmp_path / "out" / "r"
    with pytest.raises(ConfigError, match=what) as exc:
        build_release(linked_run.run, policy, out)
    assert "line 10" in str(exc.value) and "tables.0.by" in str(exc.value)
    assert not out.exists()
    assert not list(tmp_path.glob("out/*"))  # not even the staging folder is left behind


def test_a_killed_release_without_its_completion_marker_is_refused_by_readers(bundle, tmp_path):
    import shutil

    from linkage.release.bundle import MARKER, open_bundle

    assert open_bundle(bundle)["funnel"]
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / MARKER).unlink()  # as if killed after the rename, before the log entry
    with pytest.raises(InputError, match="incomplete release"):
        open_bundle(copy)
    shutil.copytree(bundle, tmp_path / "edited")
    (tmp_path / "edited" / "tables" / "funnel.csv").write_text("da_flag,recorded\nAll,5\n")
    with pytest.raises(InputError, match="modified"):
        open_bundle(tmp_path / "edited")


def test_an_existing_release_is_never_overwritten(bundle, linked_run, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="already exists"):
        build_release(linked_run.run, write_policy(tmp_path), bundle)


def test_magnitudes_are_rounded_to_the_magnitude_base(bundle):
    stats = [
        r[c]
        for r in read_table(bundle, "sentencing")
        for c in ("custody_days_q1", "custody_days_median", "custody_days_q3", "custody_days_mean")
        if r[c] not in SYMBOLS
    ]
    assert stats and all(int(v) % 7 == 0 for v in stats)


def test_the_checker_pack_is_never_inside_the_bundle(linked_run, tmp_path):  # noqa: F811
    out = tmp_path / "out" / "r"
    with pytest.raises(ConfigError, match="may not be inside the published bundle"):
        build_release(linked_run.run, write_policy(tmp_path), out, checker_dir=out / "checker")
    assert not (tmp_path / "out").exists()


def test_suppression_reasons_go_to_the_checker_pack_only(bundle):
    checker = bundle.with_name(bundle.name + ".checker")
    with open(checker / "suppression.csv", newline="", encoding="utf-8") as fh:
        reasons = list(csv.DictReader(fh))
    assert {r["reason"] for r in reasons} >= {"zero", "threshold", "secondary"}
    published = b"".join(p.read_bytes() for p in bundle.rglob("*") if p.is_file()).lower()
    assert b"secondary" not in published and b"results.json" not in published


def test_published_counts_are_near_true_counts_that_pass_the_threshold(bundle, linked_run):  # noqa: F811
    from linkage.release.tables import open_journeys

    con, _ = open_journeys(linked_run.run / "journeys.parquet")
    truth = {
        (sex, flag): (n, persons)
        for sex, flag, n, persons in con.execute(
            """SELECT coalesce(dim_suspect_sex, 'All'), coalesce(dim_da_flag, 'All'), count(*),
                      count(DISTINCT person_id)
               FROM rv WHERE dim_police_record = 'Yes' GROUP BY CUBE (dim_suspect_sex, dim_da_flag)"""
        ).fetchall()
    }
    checked = 0
    for row in read_table(bundle, "funnel_by_sex"):
        n, persons = truth.get((row["suspect_sex"], row["da_flag"]), (0, 0))
        if row["recorded"] == SUPPRESSED:
            continue
        published = int(row["recorded"])
        assert n >= 10 and persons >= 10 and abs(published - n) < 5 and published >= 10
        checked += 1
    assert checked >= 5


def test_a_threshold_off_the_rounding_base_still_publishes_nothing_below_it(linked_run, tmp_path):  # noqa: F811
    policy = write_policy(tmp_path, POLICY.replace("threshold: 10", "threshold: 12", 1))
    result = build_release(linked_run.run, policy, tmp_path / "r")
    for t in result.tables:
        for row in t.rows:
            for v in row[len(t.spec.by) : len(t.spec.by) + len(t.spec.measures)]:
                assert v == SUPPRESSED or v >= 12
