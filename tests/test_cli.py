"""The command line: help everywhere, exit codes 0/1/2, JSON output, no secrets on the terminal."""

from __future__ import annotations

import json

import click
import pytest

from conftest import CONFIGS, PASSPHRASE
from linkage.cli import cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=" ".join)
def test_help_on_every_command(run_cli, path):
    res = run_cli(*path, "--help")
    assert res.exit_code == 0 and "Usage:" in res.stdout
    cmd = cli
    for name in path:
        cmd = cmd.get_command(click.Context(cmd), name)
    if not isinstance(cmd, click.Group):
        assert "--json" in res.stdout and "--quiet" in res.stdout


def test_keys_new_and_show(run_cli, tmp_path, passphrase_env):
    res = run_cli("keys", "new", "--project", "demo", "--out", tmp_path / "p.key", "--json")
    assert res.exit_code == 0, res.stderr
    made = json.loads(res.stdout)
    shown = run_cli("keys", "show", tmp_path / "p.key", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["fingerprint"] == made["fingerprint"]
    assert PASSPHRASE not in res.stdout + res.stderr + shown.stdout + shown.stderr
    again = run_cli("keys", "new", "--project", "demo", "--out", tmp_path / "p.key")
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_wrong_or_missing_passphrase(run_cli, keys, monkeypatch):
    monkeypatch.setenv("LINKAGE_KEY_PASSPHRASE", "definitely the wrong one")
    res = run_cli("keys", "show", keys.project_path)
    assert res.exit_code == 1 and "wrong passphrase" in res.stderr
    assert "definitely the wrong one" not in res.stderr
    monkeypatch.delenv("LINKAGE_KEY_PASSPHRASE")
    res = run_cli("keys", "show", keys.project_path)
    assert res.exit_code == 2 and "LINKAGE_KEY_PASSPHRASE" in res.stderr


def test_signing_new(run_cli, tmp_path, passphrase_env):
    res = run_cli("keys", "signing-new", "--agency", "police", "--out", tmp_path, "--json")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "police.signing.key").exists() and (tmp_path / "police.signing.pub").exists()


def test_usage_and_config_errors_exit_2(run_cli, keys, police_csv, tmp_path, passphrase_env):
    assert run_cli("pseudonymise").exit_code == 2
    assert run_cli("no-such-command").exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "police.yaml").read_text().replace("identifiers:", "identifers:"))
    res = run_cli(*keys.pseudonymise_args(police_csv, tmp_path / "o", config=bad, signed=False))
    assert (
        res.exit_code == 2
        and "bad.yaml" in res.stderr
        and "identifers" in res.stderr
        and "line" in res.stderr
    )


def test_pseudonymise_json_and_refusal(run_cli, keys, police_csv, tmp_path, passphrase_env):
    res = run_cli(*keys.pseudonymise_args(police_csv, tmp_path / "o"), "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["read"] == data["written"] + data["rejected"] == 3 and data["signed"] is True
    broken = tmp_path / "broken.csv"
    broken.write_text("crime_ref,urn\nCR1,U1\n")
    res = run_cli(*keys.pseudonymise_args(broken, tmp_path / "o"), "--json")
    assert res.exit_code == 1 and "missing from the input" in json.loads(res.stdout)["error"]
    assert "Traceback" not in res.stderr


def test_quiet_prints_nothing_on_success(run_cli, keys, police_csv, tmp_path, passphrase_env):
    res = run_cli(*keys.pseudonymise_args(police_csv, tmp_path / "o"), "--quiet")
    assert res.exit_code == 0 and res.stdout == ""


def test_unexpected_error_message_is_withheld(
    run_cli, monkeypatch, keys, police_csv, tmp_path, passphrase_env
):
    from linkage.extract import pseudonymise as mod

    def boom(*a, **k):
        raise ValueError("time data 'Featherstonehaugh' does not match")  # a library error quoting data

    monkeypatch.setattr(mod, "pseudonymise", boom)
    res = run_cli(*keys.pseudonymise_args(police_csv, tmp_path / "o", signed=False))
    assert res.exit_code == 1 and "internal error: ValueError" in res.stderr
    assert "Featherstonehaugh" not in res.stderr + res.stdout
