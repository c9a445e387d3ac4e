"""Issue 14, item 8 (file hygiene): owner-only microdata and work files, work databases that do not
outlive their run, and key files refused when others can read them (as ssh refuses private keys)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PASSPHRASE, ROOT
from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage.config import load_config
from linkage.config.linkage import LinkageConfig
from linkage.errors import KeyFileError
from linkage.journeys.build import build_journeys
from linkage.keys import load_project_key, load_signing_key
from linkage.link.backend import open_backend
from linkage.runfolder import WORK_LOCK, remove_stale_work, work_area

CONFIG = ROOT / "configs" / "linkage.yaml"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes (Windows: docs/threat-model.md)")


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}


def test_every_file_of_a_run_and_its_journeys_is_owner_only(linked_run, keys, tmp_path):  # noqa: F811
    """clusters.parquet, model.json, journeys.parquet... are 0600, their folders 0700, whatever the umask."""
    from linkage.link.run import run_linkage

    old = os.umask(0o022)  # the usual default, which made every output 0644 before
    try:
        run = tmp_path / "runs" / "r1"
        run_linkage(load_config(CONFIG, LinkageConfig), CONFIG, run,
                    extracts_dir=linked_run.extracts, trusted_keys_dir=keys.signing_dir)  # fmt: skip
        build_journeys(run, linked_run.extracts)
    finally:
        os.umask(old)
    modes = _modes(run)
    for name in ("clusters.parquet", "model.json", "journeys.parquet", "run.json", "run.complete.json"):
        assert modes[name] == 0o600, name
    assert {m for p, m in modes.items() if (run / p).is_file()} == {0o600}
    assert {m for p, m in modes.items() if (run / p).is_dir()} == {0o700}
    assert not (run / "work").exists()  # the work database (every token) is gone


def test_the_work_database_is_owner_only_and_removed_when_the_run_fails(tmp_path):
    config = load_config(CONFIG, LinkageConfig).backend
    work = tmp_path / "work"
    with pytest.raises(RuntimeError), open_backend(config, work) as backend:
        backend.con.execute("CREATE TABLE t AS SELECT 42 AS token")
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        raise RuntimeError("a step failed")
    assert not work.exists()


def test_stale_work_folders_of_dead_runs_are_removed_live_ones_and_strangers_kept(tmp_path):
    dead = tmp_path / "dead"
    code = (
        "import os, signal, sys\n"
        "from linkage.runfolder import work_area\n"
        "with work_area(sys.argv[1]) as w:\n"
        "    (w / 'linkage.duckdb').write_bytes(b'tokens')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(dead)])
    assert proc.returncode == -9 and (dead / "linkage.duckdb").exists()  # left behind by the kill
    stranger = tmp_path / "not-ours"
    stranger.mkdir()
    (stranger / "data.bin").write_bytes(b"x")
    with work_area(tmp_path / "live") as live:
        removed = remove_stale_work(tmp_path.glob("*"))
        assert removed == [dead] and live.exists() and stranger.exists()
    assert not (tmp_path / "live").exists()


def test_a_kept_work_database_is_not_mistaken_for_a_stale_one(tmp_path):
    with work_area(tmp_path / "kept", keep=True):
        pass
    assert not (tmp_path / "kept" / WORK_LOCK).exists()
    assert remove_stale_work([tmp_path / "kept"]) == [] and (tmp_path / "kept").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_key_files_readable_or_writable_by_others_are_refused_with_the_fix(keys, tmp_path, mode):
    for source, load in (
        (keys.project_path, load_project_key),
        (keys.signing_dir / "police.signing.key", load_signing_key),
    ):
        key = tmp_path / source.name
        key.write_bytes(source.read_bytes())
        key.chmod(mode)
        with pytest.raises(KeyFileError, match=rf"permissions 0{mode:o} are too open.*chmod 600 '{key}'"):
            load(key, PASSPHRASE)
        key.chmod(0o600)
        assert load(key, PASSPHRASE)


def test_pseudonymise_refuses_a_world_readable_key(keys, police_csv, tmp_path, run_cli, passphrase_env):
    key = tmp_path / "project.key"
    key.write_bytes(keys.project_path.read_bytes())
    key.chmod(0o644)
    args = keys.pseudonymise_args(police_csv, tmp_path / "out")
    args[args.index(keys.project_path)] = key
    result = run_cli(*args)
    assert result.exit_code == 1 and "chmod 600" in result.stderr
    assert not (tmp_path / "out" / "police.parquet").exists()
