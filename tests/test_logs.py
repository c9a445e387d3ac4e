"""Diagnostic logging: -v, --log-level, --log-file; never a data value, key or passphrase in a line."""

from __future__ import annotations

import base64
import logging

from conftest import PASSPHRASE, POLICE_ROWS
from linkage.logs import configure

IDENTIFYING = [v for row in POLICE_ROWS for v in row[:8] if len(v) >= 4]  # refs, names, dates, postcodes


def test_levels_from_verbose_and_log_level():
    assert configure() == logging.WARNING
    assert configure(verbose=1) == logging.INFO
    assert configure(verbose=3) == logging.DEBUG
    assert configure(verbose=2, level="error") == logging.ERROR
    assert logging.getLogger("splink").level == logging.WARNING
    configure()


def test_debug_log_of_a_whole_agency_run_holds_no_data(run_cli, keys, police_csv, tmp_path, passphrase_env):
    log_file = tmp_path / "diag" / "linkage.log"
    out = tmp_path / "extracts"
    args = ["--log-level", "DEBUG", "--log-file", log_file]
    res = run_cli(*args, *keys.pseudonymise_args(police_csv, out))
    assert res.exit_code == 0, res.stderr
    checked = run_cli(*args, "verify", out, "--trusted-keys", keys.signing_dir)
    assert checked.exit_code == 0, checked.stderr
    shown = run_cli(*args, "keys", "show", keys.project_path)
    assert shown.exit_code == 0, shown.stderr
    text = log_file.read_text(encoding="utf-8")
    # the log is there and says something useful: the scan below is not of an empty file
    assert "pseudonymising" in text and "read 3, written 3" in text and "police.manifest.json: ok" in text
    assert "run log" in text and "valid AgencyConfig configuration" in text
    everything = (text + res.stderr + checked.stderr + shown.stderr).encode()
    for value in IDENTIFYING:
        assert value.encode() not in everything, value
    secret = keys.project.secret
    for form in (secret, secret.hex().encode(), base64.b64encode(secret), PASSPHRASE.encode()):
        assert form not in everything
    configure()


def test_verbose_logs_to_stderr_only_when_asked(run_cli, keys, police_csv, tmp_path, passphrase_env):
    quiet = run_cli(*keys.pseudonymise_args(police_csv, tmp_path / "a"), "--quiet")
    assert quiet.exit_code == 0 and "INFO" not in quiet.stderr
    loud = run_cli("-v", *keys.pseudonymise_args(police_csv, tmp_path / "b"), "--quiet")
    assert loud.exit_code == 0 and "INFO linkage.extract.command: pseudonymising" in loud.stderr
    configure()
