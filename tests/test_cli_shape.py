"""One shape for every command: lazy assembly, one --json document, a clear refusal without an extra."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from linkage import cli as cli_module

HEAVY = ("pyarrow", "duckdb", "pydantic", "splink", "faker", "acro", "linkage.extract", "linkage.audit")


def test_help_imports_no_command_and_no_engine():
    code = (
        "import sys\nfrom linkage.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pseudonymise" in done.stdout and done.stdout.strip().endswith("[]")


def test_every_table_entry_resolves_to_a_click_command():
    import click

    group = cli_module.cli
    for name, entry in cli_module.COMMANDS.items():
        command = group.get_command(click.Context(group), name)
        assert isinstance(command, click.Command) and command.name == name, entry.target


def test_version_names_the_hmac_path(run_cli, monkeypatch):
    res = run_cli("--version")
    assert res.exit_code == 0 and res.stdout.startswith("linkage ") and "HMAC: " in res.stdout
    monkeypatch.setenv("LINKAGE_HMAC", "python")
    assert "pure Python" in run_cli("--version").stdout


@pytest.mark.parametrize(
    "args",
    [
        ["pseudonymise", "--json"],  # missing required options
        ["no-such-command", "--json"],
        ["keys", "new", "--json", "--project"],  # option without its value
        ["synth", "--persons", "zero", "--out", "x", "--json"],
    ],
    ids=["missing-option", "unknown-command", "option-value", "bad-type"],
)
def test_usage_errors_are_one_json_document(run_cli, args):
    res = run_cli(*args)
    assert res.exit_code == 2
    doc = json.loads(res.stdout)  # exactly one document: json.loads refuses trailing text
    assert doc["exit_code"] == 2 and doc["error"]


def test_a_failure_after_a_result_is_still_one_document(run_cli, keys, police_csv, tmp_path, passphrase_env):
    out = tmp_path / "o"
    assert run_cli(*keys.pseudonymise_args(police_csv, out)).exit_code == 0
    (out / "police.parquet").write_bytes(b"tampered")
    res = run_cli("verify", out, "--trusted-keys", keys.signing_dir, "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 1 and "verification failed" in doc["error"]
    assert doc["ok"] is False and doc["extracts"][0]["problems"]  # the report, with the error added


def test_a_command_without_its_extra_exits_2_with_the_pip_line(run_cli, monkeypatch):
    """Simulates an install without the `link` extra (tests/test_install.py does it for real)."""
    real_version = metadata.version

    def version(dist: str) -> str:
        if dist.lower() == "splink":
            raise metadata.PackageNotFoundError(dist)
        return real_version(dist)

    monkeypatch.setattr(cli_module.metadata, "version", version)
    for args in (["run", "--config", "x.yaml", "--out", "r"], ["run", "--help"], ["run", "--json"]):
        res = run_cli(*args)
        assert res.exit_code == 2, args
        assert "pip install 'justice-linkage[link]'" in res.stderr + res.stdout
        assert "missing: splink" in res.stderr + res.stdout
    listing = " ".join(run_cli("--help").stdout.split())
    assert "[needs the 'link' extra]" in listing and "[needs the 'synth' extra]" not in listing


def test_splink_internals_only_in_the_adapter_and_splink_bounded_to_the_tested_minor():
    import re
    import tomllib

    from conftest import ROOT

    users = [
        p.relative_to(ROOT / "src").as_posix()
        for p in (ROOT / "src").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+splink\.internals", p.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert users == ["linkage/link/splink_adapter.py"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert "splink>=5.0,<5.1" in extras["link"]


def test_audit_text_in_a_pipe_keeps_each_sha256_on_one_line(run_cli):
    from conftest import CONFIGS
    from linkage.config import config_sha256

    res = run_cli("audit", CONFIGS / "police.yaml")
    assert res.exit_code in (0, 1), res.stderr
    assert config_sha256(CONFIGS / "police.yaml") in res.stdout  # not split over two lines
    assert max(len(line) for line in res.stdout.splitlines()) > 80  # nothing wrapped at 80 columns


def test_status_shows_a_spinner_at_a_terminal_and_nothing_in_a_pipe():
    import io

    from rich.console import Console

    from linkage.ui import Output

    ui = Output()
    ui.err = Console(file=io.StringIO(), force_terminal=True, width=100)
    with ui.status("assembling case journeys"):
        pass
    assert "assembling case journeys" in ui.err.file.getvalue()
    piped = Output()
    piped.err = Console(file=io.StringIO(), force_terminal=False)
    with piped.status("assembling case journeys"):
        pass
    assert piped.err.file.getvalue() == ""
