"""Publication bundle vs checker pack (issue 14, items 4 and 6): the bundle holds tables, metadata,
report and checksums only; a release killed after its rename, before its run-log entry, leaves no
bundle that any reader accepts."""

from __future__ import annotations

import duckdb
import pytest

from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage import runlog
from linkage.errors import InputError
from linkage.release.build import build_release
from linkage.release.bundle import MARKER, open_bundle
from test_release import write_policy


def test_killed_between_rename_and_log_entry_leaves_an_unreadable_bundle(linked_run, tmp_path, monkeypatch):  # noqa: F811
    real_append = runlog.append

    def killed(builder, outcome, *args, **kwargs):
        if outcome == "ok":  # the process dies where the entry would be written
            raise SystemExit(137)
        return real_append(builder, outcome, *args, **kwargs)

    monkeypatch.setattr(runlog, "append", killed)
    out = tmp_path / "out" / "r1"
    with pytest.raises(SystemExit):
        build_release(linked_run.run, write_policy(tmp_path), out)
    assert (out / "tables" / "funnel.csv").is_file() and not (out / MARKER).exists()
    with pytest.raises(InputError, match="incomplete release"):
        open_bundle(out)


def test_neither_folder_holds_a_record_key_and_only_the_pack_holds_acro(linked_run, tmp_path):  # noqa: F811
    result = build_release(linked_run.run, write_policy(tmp_path), tmp_path / "out" / "r1")
    assert result.checker_dir == tmp_path / "out" / "r1.checker"
    top = {p.name for p in result.out_dir.iterdir()}
    assert top == {"tables", "report.html", "release.json", "SHA256SUMS", MARKER}
    assert {p.name for p in result.checker_dir.iterdir()} == {
        "acro",
        "suppression.csv",
        "checker.json",
        "SHA256SUMS",
    }
    keys = duckdb.sql(
        f"""SELECT k::VARCHAR FROM (
              SELECT unnest([police_record_key, cps_record_key, court_record_key, prison_record_key]) AS k
              FROM read_parquet('{linked_run.run / "journeys.parquet"}')) WHERE k IS NOT NULL LIMIT 400"""
    ).fetchall()
    blobs = [
        p.read_bytes() for d in (result.out_dir, result.checker_dir) for p in d.rglob("*") if p.is_file()
    ]
    assert len(keys) == 400
    for (key,) in keys:
        assert not any(key.encode() in b for b in blobs)
