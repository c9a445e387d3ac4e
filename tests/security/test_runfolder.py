"""Issue 14, item 6: run folders are no longer trusted blindly.

Each attack of the adversarial pass is reproduced on a real run folder (perfect linkage of synthetic
data, or a real `linkage run` killed mid-way) and shown refused by `linkage journeys`, `linkage
release` and `linkage evaluate` (exit 1, with the reason), never silently used.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, agency_config
from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage.errors import VerificationError
from linkage.extract.manifest import Manifest, SignatureFile, signature_path
from linkage.extract.pseudonymise import pseudonymise
from linkage.journeys.assemble import assemble_journeys
from linkage.runfolder import (
    RECORD,
    CompletionMarker,
    OutputHash,
    RunRecord,
    RunWriter,
    marker_name,
    open_run,
)
from linkage.runlog import EntryBuilder
from linkage.util import sha256_file

CONFIGS = ROOT / "configs"


@pytest.fixture
def run(linked_run, tmp_path):  # noqa: F811
    """A private copy of the session's complete run folder (run + journeys stages)."""
    copy = tmp_path / "run"
    shutil.copytree(linked_run.run, copy)
    return copy


def _reseal(run_dir: Path) -> None:
    """What a thorough attacker does after editing: recompute every marker (record hash, outputs, chain)."""
    record_sha = sha256_file(run_dir / RECORD)
    for stage in ("run", "journeys"):
        path = run_dir / marker_name(stage)
        if not path.is_file():
            continue
        marker = CompletionMarker.model_validate_json(path.read_bytes())
        outputs = {
            name: OutputHash(sha256=sha256_file(run_dir / name), bytes=(run_dir / name).stat().st_size)
            for name in marker.outputs
        }
        builds_on = sha256_file(run_dir / marker_name("run")) if stage != "run" else None
        update = {"record_sha256": record_sha, "outputs": outputs, "builds_on": builds_on}
        path.write_text(marker.model_copy(update=update).model_dump_json(indent=2))


def _merge_50_persons(run_dir: Path) -> None:
    clusters = run_dir / "clusters.parquet"
    table = pq.read_table(clusters)
    persons = sorted(set(table.column("person_id").to_pylist()))[:50]
    merged = [persons[0] if p in persons else p for p in table.column("person_id").to_pylist()]
    pq.write_table(table.set_column(3, "person_id", pa.array(merged, table.schema.field(3).type)), clusters)


def test_a_complete_run_opens_and_only_listed_files_can_be_read(run):
    opened = open_run(run, require=("journeys",))
    assert set(opened.extracts) == {"police", "prosecution", "court", "prison", "probation"}
    assert opened.path("journeys.parquet").is_file()
    (run / "extra.parquet").write_bytes(b"not listed")
    with pytest.raises(VerificationError, match="not an output of any completed stage"):
        opened.path("extra.parquet")


def test_clusters_edited_to_merge_50_persons_is_refused_everywhere(run, linked_run, run_cli):  # noqa: F811
    _merge_50_persons(run)
    for args in (
        ["journeys", "--run", run],
        ["release", "--run", run, "--policy", CONFIGS / "release.yaml", "--out", run.parent / "rel"],
        ["evaluate", "--run", run, "--truth", linked_run.raw / "truth"],
    ):
        result = run_cli(*args)
        assert result.exit_code == 1, (args[0], result.stderr)
        assert "modified: clusters.parquet" in result.stderr, args[0]
    assert not (run.parent / "rel").exists()


def test_a_thorough_attacker_who_reseals_the_markers_is_caught_by_the_run_log(linked_run, tmp_path):  # noqa: F811
    """A run completed under a log: editing outputs and recomputing its marker no longer matches the log."""
    from linkage.journeys.build import build_journeys

    run = tmp_path / "run"
    shutil.copytree(linked_run.run, run)
    build_journeys(run)  # re-done under this test's run log: the journeys marker is now logged here
    open_run(run, require=("journeys",))
    before = (run / "journeys.parquet").read_bytes()
    pq.write_table(pq.read_table(run / "journeys.parquet").slice(0, 100), run / "journeys.parquet")
    _reseal(run)
    with pytest.raises(VerificationError, match="never logged as finished"):
        open_run(run, require=("journeys",))
    assert before != (run / "journeys.parquet").read_bytes()


def test_marker_written_but_command_killed_before_its_log_entry_is_refused(run, run_log):
    opened = open_run(run)
    stage = opened.add_stage("journeys")
    stage.register("journeys.parquet")
    stage.register("journeys.json")
    stage.complete(EntryBuilder("journeys", [], [], None))  # the entry is never appended: killed here
    with pytest.raises(VerificationError, match="never logged as finished"):
        open_run(run, require=("journeys",))


def test_a_stage_being_rewritten_is_never_read(run):
    open_run(run).add_stage("journeys")  # e.g. `linkage journeys` killed while rewriting
    with pytest.raises(VerificationError, match="run `linkage journeys` first"):
        open_run(run, require=("journeys",))
    assert not open_run(run).has("journeys.parquet")  # evaluate leaves unvouched journeys alone


def test_run_killed_before_metrics_quality_and_log_is_refused_and_its_work_removed(
    linked_run,  # noqa: F811
    keys,
    tmp_path,
    run_cli,
):
    """A real `linkage run`, SIGKILLed once clustering is written: no finally block runs."""
    runs, log = tmp_path / "runs", tmp_path / "log.jsonl"
    env = {**os.environ, "LINKAGE_LOG": str(log)}
    base = [sys.executable, "-m", "linkage", "run", "--config", CONFIGS / "linkage.yaml"]
    base += ["--extracts", linked_run.extracts, "--trusted-keys", keys.signing_dir, "--threads", "1"]
    proc = subprocess.Popen([*map(str, base), "--out", str(runs / "r1")], env=env, stderr=subprocess.PIPE)
    for line in proc.stderr:
        if b"measuring clusters" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=300)
    killed = runs / "r1"
    assert proc.returncode == -signal.SIGKILL
    assert (killed / "clusters.parquet").is_file() and not (killed / "metrics.json").exists()
    assert (killed / "work" / "linkage.duckdb").is_file()  # every token, left by the kill ...
    assert (killed / "work").stat().st_mode & 0o777 == 0o700  # ... owner-only
    assert (killed / "work" / "linkage.duckdb").stat().st_mode & 0o777 == 0o600
    with pytest.raises(VerificationError, match=r"incomplete: no run\.complete\.json"):
        open_run(killed)
    refused = run_cli("journeys", "--run", killed)
    assert refused.exit_code == 1 and "`linkage run` did not finish" in refused.stderr
    assert not log.exists()  # nothing was logged: the kill came before the log entry

    # the next run finds the dead run's work folder (its lock is free) and removes it
    done = subprocess.run([*map(str, base), "--out", str(runs / "r2")], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"removed 1 work folder" in done.stderr
    assert not (killed / "work").exists()
    open_run(runs / "r2")  # complete, logged
    assert (runs / "r2" / "run.complete.json").stat().st_mode & 0o777 == 0o600


def _older_police_extract(linked_run, keys, out: Path) -> Path:  # noqa: F811
    """A genuinely signed, older police extract: the first 70 % of the raw rows."""
    raw = out / "raw"
    raw.mkdir(parents=True)
    lines = (linked_run.raw / "police.csv").read_text(encoding="utf-8").split("\n")
    (raw / "police.csv").write_text("\n".join(lines[: int(len(lines) * 0.7)]) + "\n", encoding="utf-8")
    extracts = out / "extracts"
    config = agency_config("police")
    pseudonymise(config, CONFIGS / "agencies" / "police.yaml", keys.project, raw / "police.csv", extracts,
                 signing_key=keys.signing("police"), workers=1)  # fmt: skip
    return extracts


def test_older_extract_swapped_in_with_only_the_manifest_copy_edited_is_refused(
    linked_run,  # noqa: F811
    keys,
    tmp_path,
    run_cli,
):
    run, extracts = tmp_path / "run", tmp_path / "extracts"
    shutil.copytree(linked_run.run, run)
    shutil.copytree(linked_run.extracts, extracts)
    older = _older_police_extract(linked_run, keys, tmp_path / "old")
    for name in ("police.parquet", "police.manifest.json", "police.manifest.json.sig"):
        shutil.copy(older / name, extracts / name)
    shutil.copy(older / "police.manifest.json", run / "inputs" / "manifests" / "police.manifest.json")
    result = run_cli("journeys", "--run", run, "--extracts", extracts)
    assert result.exit_code == 1
    assert "modified: inputs/manifests/police.manifest.json" in result.stderr

    # the attacker also rewrites run.json to the older extract and reseals: the records no longer
    # match the clusters, and the journeys refuse instead of dropping a third of them
    record = RunRecord.model_validate_json((run / RECORD).read_bytes())
    police = record.extracts["police"].model_copy(
        update={
            "sha256": sha256_file(extracts / "police.parquet"),
            "manifest_sha256": sha256_file(extracts / "police.manifest.json"),
        }
    )
    record.extracts["police"] = police
    (run / RECORD).write_text(record.model_dump_json(indent=2))
    _reseal(run)
    journeys_before = (run / "journeys.parquet").read_bytes()
    result = run_cli("journeys", "--run", run, "--extracts", extracts)
    assert result.exit_code == 1
    assert "clustered police record(s) are not in" in result.stderr
    assert "no record is dropped" in result.stderr
    assert not (run / "journeys.complete.json").exists()  # the old journeys are no longer vouched for
    assert (run / "journeys.parquet").read_bytes() == journeys_before


def test_extract_re_signed_with_a_key_the_run_did_not_record_is_refused(linked_run, keys, tmp_path):  # noqa: F811
    """The signature is checked against the public key recorded in run.json, not the trusted-keys folder."""
    run, extracts = tmp_path / "run", tmp_path / "extracts"
    shutil.copytree(linked_run.run, run)
    shutil.copytree(linked_run.extracts, extracts)
    table = pq.read_table(extracts / "police.parquet")
    pq.write_table(table.slice(1), extracts / "police.parquet")  # one person's record removed
    manifest = Manifest.model_validate_json((extracts / "police.manifest.json").read_bytes())
    output = manifest.output.model_copy(update={"sha256": sha256_file(extracts / "police.parquet")})
    data = manifest.model_copy(update={"output": output}).to_bytes()
    (extracts / "police.manifest.json").write_bytes(data)
    forger = keys.signing("other")  # a key someone slipped into the trusted-keys folder
    sig = SignatureFile(key_id=forger.key_id, signature=base64.b64encode(forger.sign(data)).decode())
    signature_path(extracts / "police.manifest.json").write_text(sig.model_dump_json())
    record = RunRecord.model_validate_json((run / RECORD).read_bytes())
    record.extracts["police"] = record.extracts["police"].model_copy(
        update={"sha256": output.sha256, "manifest_sha256": sha256_file(extracts / "police.manifest.json")}
    )
    (run / RECORD).write_text(record.model_dump_json(indent=2))
    _reseal(run)
    with pytest.raises(VerificationError, match="not by the key the run recorded"):
        open_run(run, ignore=("journeys",), extracts_dir=extracts)  # as `linkage journeys` opens it


def test_clustered_records_missing_from_an_extract_refuse_never_drop(linked_run, tmp_path):  # noqa: F811
    opened = open_run(linked_run.run)
    clusters = tmp_path / "clusters.parquet"
    duckdb.sql(f"""
        COPY (SELECT * FROM read_parquet('{opened.path("clusters.parquet")}')
              UNION ALL SELECT 'court', 999999999, 999999, 1, 'subject', NULL::TINYINT)
        TO '{clusters}' (FORMAT parquet)""")
    with pytest.raises(VerificationError, match="1 clustered court record"):
        assemble_journeys(clusters, opened.extracts, tmp_path / "journeys.parquet")
    assert not (tmp_path / "journeys.parquet").exists()


def test_recluster_api_writes_a_child_run_naming_its_parent(run):
    parent = open_run(run)
    child_dir = run.parent / "child"
    child = RunWriter.create(child_dir, parent.child_record("child"))
    with child.writing("clusters.parquet") as tmp:
        shutil.copyfile(parent.path("clusters.parquet"), tmp)
    child.complete()
    opened = open_run(child_dir)
    assert opened.record.parent_run.run_id == parent.run_id and opened.run_id == "child"
    assert opened.record.parent_run.marker_sha256 == parent.marker_sha256()
    assert opened.extracts.keys() == parent.extracts.keys()


def test_overwriting_a_run_removes_its_markers_first(run):
    record = RunRecord.model_validate_json((run / RECORD).read_bytes())
    with pytest.raises(Exception, match="not empty"):
        RunWriter.create(run, record)
    RunWriter.create(run, record, overwrite=True)  # an overwrite interrupted right after it started
    assert not list(run.glob("*.complete.json")) and not (run / "clusters.parquet").exists()
    with pytest.raises(VerificationError, match="incomplete"):
        open_run(run)


def test_record_names_extracts_keys_and_configs(linked_run):  # noqa: F811
    record = json.loads((linked_run.run / RECORD).read_text())
    assert record["format_version"] == 1 and set(record["extracts"]) == {
        "police",
        "prosecution",
        "court",
        "prison",
        "probation",
    }
    police = record["extracts"]["police"]
    key = record["trusted_keys"][police["signature_key_id"]]
    assert key["agency"] == "police" and len(key["public_key_sha256"]) == 64
    assert police["manifest_sha256"] == sha256_file(linked_run.extracts / "police.manifest.json")
