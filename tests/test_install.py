"""Installs that fit each zone: the base package alone pseudonymises and verifies, with no compiler.

A wheel is built from a copy of this source tree with the C compiler made unusable (``CC`` points
nowhere), so it carries no C extension, and installed into a new virtual environment with pip's
ordinary configuration (the local cache makes it quick). In that environment an agency's whole job
runs: keys, pseudonymise, verify, the audit of an agency config; the commands of the other zones
exit 2 with the pip line to run. Each extra is installed into a venv of its own in the slow tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import CONFIGS, POLICE_HEADER, POLICE_ROWS, ROOT, write_csv

PASSPHRASE = "install test passphrase"
OTHER_ZONES = ("splink", "acro", "faker", "nicknames", "igraph", "pandas", "pyspark")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this tree built where no C compiler can run (the pure-Python HMAC path)."""
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(
        ROOT / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.egg-info"),
    )
    env = {**os.environ, "CC": str(work / "no-compiler" / "cc")}
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(tree)]
    built = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (whl,) = (work / "dist").glob("justice_linkage-*.whl")
    return whl


def _venv(path: Path, requirement: str) -> Path:
    venv.create(path, with_pip=True)
    python = path / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


class Env:
    def __init__(self, python: Path, tmp: Path) -> None:
        self.python, self.tmp = python, tmp
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LINKAGE_"))},
            "LINKAGE_KEY_PASSPHRASE": PASSPHRASE,
            "LINKAGE_LOG": str(tmp / "log.jsonl"),
        }

    def linkage(self, *args: object) -> subprocess.CompletedProcess:
        cmd = [str(self.python), "-m", "linkage", *map(str, args)]
        return subprocess.run(cmd, env=self.env, cwd=self.tmp, capture_output=True, text=True, timeout=600)

    def importable(self, module: str) -> bool:
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        return subprocess.run([str(self.python), "-c", code], env=self.env).returncode == 0


def test_base_install_pseudonymises_and_verifies_without_other_extras_or_a_compiler(wheel, tmp_path):
    env = Env(_venv(tmp_path / "venv", str(wheel)), tmp_path)
    assert not [m for m in OTHER_ZONES if env.importable(m)]
    assert not env.importable("linkage.tokens._hmac64")

    version = env.linkage("--version")
    assert version.returncode == 0 and "pure Python" in version.stdout and "not built" in version.stdout

    assert env.linkage("keys", "new", "--project", "p", "--out", "project.key").returncode == 0
    assert env.linkage("keys", "signing-new", "--agency", "police", "--out", "signing").returncode == 0
    write_csv(tmp_path / "police.csv", POLICE_HEADER, POLICE_ROWS)
    done = env.linkage(
        "pseudonymise", "--config", CONFIGS / "police.yaml", "--key", "project.key", "--input", "police.csv",
        "--out", "extracts", "--signing-key", "signing/police.signing.key", "--workers", "2", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == len(POLICE_ROWS)
    checked = env.linkage("verify", "extracts", "--trusted-keys", "signing", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stderr
    audit = env.linkage("audit", CONFIGS / "police.yaml", "--json")
    review = json.loads(audit.stdout)
    assert "error" not in review and review["files"], audit.stderr

    for command, extra in (("run", "link"), ("release", "release"), ("synth", "synth")):
        refused = env.linkage(command, "--help")
        assert refused.returncode == 2, (command, refused.stderr)
        assert f"pip install 'justice-linkage[{extra}]'" in refused.stderr
    assert env.linkage("audit", "log", "--json").returncode == 0  # every data command was logged


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, command, imports",
    [
        ("link", "run", ["splink", "igraph", "linkage.link.run"]),
        ("release", "release", ["acro", "pandas", "linkage.release.command"]),
        ("synth", "synth", ["faker", "nicknames", "linkage.synth.generate"]),
    ],
)
def test_each_extra_installs_its_zone(wheel, tmp_path, extra, command, imports):
    env = Env(_venv(tmp_path / "venv", f"{wheel}[{extra}]"), tmp_path)
    code = "import " + ", ".join(imports)
    imported = subprocess.run([str(env.python), "-c", code], env=env.env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-3000:]
    helped = env.linkage(command, "--help")
    assert helped.returncode == 0 and "Usage:" in helped.stdout, helped.stderr
    if extra == "synth":
        made = env.linkage("synth", "--persons", "30", "--out", "synthetic", "--json")
        assert made.returncode == 0 and json.loads(made.stdout)["persons"] == 30, made.stderr
