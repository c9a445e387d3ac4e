"""The agency path runs where agencies run it: no POSIX-only import, no fork server, no orphans.

CI has no Windows machine, so Windows is approximated here (docs/install.md says what is and is not
tested): every agency-path module is imported, and a real pseudonymise + verify runs, in a Python
where ``fcntl`` and ``resource`` cannot be imported and the ``fork``/``forkserver`` start methods do
not exist. A killed pseudonymise must leave no worker processes, and its temporary files are
removed by the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PASSPHRASE, POLICE_HEADER, POLICE_ROWS, write_csv

# Everything an agency installs and runs; the secure-zone and publication packages are left out.
AGENCY_PACKAGES = ("linkage.tokens", "linkage.extract", "linkage.config", "linkage.audit")
AGENCY_MODULES = (
    "linkage",
    "linkage.cli",
    "linkage.keys",
    "linkage.keys_command",
    "linkage.runlog",
    "linkage.ui",
    "linkage.logs",
    "linkage.errors",
    "linkage.util",
)

WINDOWS_LIKE = """
import importlib, multiprocessing, pkgutil, sys

for name in ("fcntl", "resource"):
    sys.modules[name] = None  # `import fcntl` now raises ImportError, as on Windows

_get_context = multiprocessing.get_context

def windows_get_context(method=None):
    if method in ("fork", "forkserver"):
        raise ValueError(f"cannot find context for {method!r}")
    return _get_context(method)

multiprocessing.get_context = windows_get_context
multiprocessing.get_all_start_methods = lambda: ["spawn"]

modules = list(MODULES)
for package in PACKAGES:
    pkg = importlib.import_module(package)
    modules += [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
for name in modules:
    importlib.import_module(name)
print(len(modules))

from linkage.cli import main
sys.argv = ["linkage", *sys.argv[1:]]
main()
"""


def _windows_like(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    code = WINDOWS_LIKE.replace("MODULES", repr(AGENCY_MODULES)).replace("PACKAGES", repr(AGENCY_PACKAGES))
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_agency_path_without_fcntl_or_forkserver(keys, police_csv, tmp_path):
    env = {**os.environ, "LINKAGE_KEY_PASSPHRASE": PASSPHRASE, "LINKAGE_LOG": str(tmp_path / "log.jsonl")}
    out = tmp_path / "out"
    args = [str(a) for a in keys.pseudonymise_args(police_csv, out)]
    done = _windows_like([*args, "--workers", "2", "--json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    imported, document = done.stdout.split("\n", 1)
    assert int(imported) > 20
    assert json.loads(document)["written"] == len(POLICE_ROWS)
    checked = _windows_like(["verify", str(out), "--trusted-keys", str(keys.signing_dir), "--json"], env)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert json.loads(checked.stdout.split("\n", 1)[1])["ok"] is True


def _children(pid: int) -> set[int]:
    psutil = pytest.importorskip("psutil")
    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _alive(pids: set[int]) -> set[int]:
    import psutil

    return {p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX; on Windows the same sentinel is used")
def test_killed_run_leaves_no_workers_and_the_next_run_removes_its_temporaries(keys, tmp_path):
    for d in ("raw", "raw2"):
        (tmp_path / d).mkdir()
    big = write_csv(tmp_path / "raw" / "police.csv", POLICE_HEADER, POLICE_ROWS * 100_000)
    out = tmp_path / "out"
    env = {**os.environ, "LINKAGE_KEY_PASSPHRASE": PASSPHRASE, "LINKAGE_LOG": str(tmp_path / "log.jsonl")}
    args = [str(a) for a in keys.pseudonymise_args(big, out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "linkage", *args, "--workers", "2", "--chunk-mib", "1", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline and not (len(workers) >= 2 and list(out.glob(".police.parquet.*"))):
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed: make the input bigger"
        assert len(workers) >= 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 30
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(workers), "worker processes outlived the killed run"
    finally:
        if proc.poll() is None:
            proc.kill()
    stale = list(out.glob(".police.parquet.*.tmp"))
    assert stale, "the killed run left no temporary file (nothing to test)"
    small = write_csv(tmp_path / "raw2" / "police.csv", POLICE_HEADER, POLICE_ROWS)
    again = subprocess.run(
        [sys.executable, "-m", "linkage", *[str(a) for a in keys.pseudonymise_args(small, out)], "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not list(Path(small.parent).glob(".*.tmp"))
