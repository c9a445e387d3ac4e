"""The run log: every data command appends a chained entry; any tampering is found; no secrets in it."""

from __future__ import annotations

import base64
import json

import pytest

from conftest import PASSPHRASE, POLICE_ROWS
from linkage.errors import LinkageError
from linkage.runlog import EntryBuilder, append, logged, verify_log


def make_log(path, n: int = 5) -> list[str]:
    for i in range(n):
        append(EntryBuilder(f"command-{i}", [], [], None), "ok", path=path)
    return path.read_text().splitlines()


def test_chain_verifies(tmp_path):
    lines = make_log(tmp_path / "log.jsonl")
    check = verify_log(tmp_path / "log.jsonl")
    assert check.ok and check.entries == 5
    assert check.last_hash == json.loads(lines[-1])["entry_hash"]
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]


def tamper(path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def test_edited_entry(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = make_log(path)
    doc = json.loads(lines[2])
    doc["outcome"] = "refused"
    lines[2] = json.dumps(doc)
    tamper(path, lines)
    check = verify_log(path)
    assert not check.ok and check.first_broken == 3 and "altered" in check.reason


def test_edited_entry_with_recomputed_hash(tmp_path):
    from linkage.runlog import LogEntry

    path = tmp_path / "log.jsonl"
    lines = make_log(path)
    entry = LogEntry.model_validate_json(lines[1])
    entry.command = "something-else"
    entry.entry_hash = entry.compute_hash()
    lines[1] = entry.model_dump_json()
    tamper(path, lines)
    check = verify_log(path)
    assert not check.ok and check.first_broken == 3 and "chain link" in check.reason


@pytest.mark.parametrize(
    "change, broken",
    [
        (lambda ls: ls[:2] + ls[3:], 3),  # deleted
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2),  # reordered
        (lambda ls: [*ls[:2], ls[0], *ls[2:]], 3),  # inserted (a copy of an earlier entry)
        (lambda ls: ls[1:], 1),  # first entry deleted
        (lambda ls: [*ls[:4], "{not json", ls[4]], 5),  # garbage
    ],
    ids=["deleted", "reordered", "inserted", "head-deleted", "garbage"],
)
def test_structural_tampering(tmp_path, change, broken):
    path = tmp_path / "log.jsonl"
    tamper(path, change(make_log(path)))
    check = verify_log(path)
    assert not check.ok and check.first_broken == broken


def test_outcomes_are_logged(run_log):
    path = run_log
    with logged("a"):
        pass
    with pytest.raises(LinkageError), logged("b"):
        raise LinkageError("verification failed: police: signature does not match")
    with pytest.raises(ValueError), logged("c"):
        raise ValueError("Featherstonehaugh")  # may quote data: only the type is logged
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["outcome"] for e in entries] == ["ok", "refused", "failed"]
    assert entries[1]["detail"].startswith("verification failed")
    assert entries[2]["detail"] == "ValueError" and "Featherstonehaugh" not in path.read_text()


def test_cli_commands_log_hashes_and_never_secrets(
    run_cli, keys, police_csv, tmp_path, passphrase_env, run_log
):
    out = tmp_path / "extracts"
    res = run_cli(*keys.pseudonymise_args(police_csv, out))
    assert res.exit_code == 0, res.stderr
    assert run_cli("verify", out, "--trusted-keys", keys.signing_dir).exit_code == 0
    assert run_cli("verify", out).exit_code == 2  # no trusted keys: still logged
    entries = [json.loads(line) for line in run_log.read_text().splitlines()]
    assert [(e["command"], e["outcome"]) for e in entries] == [
        ("pseudonymise", "ok"),
        ("verify", "ok"),
        ("verify", "usage-error"),
    ]
    first = entries[0]
    assert first["key_fingerprint"] == keys.project.fingerprint
    assert first["configs"][0]["path"].endswith("police.yaml")
    assert {o["path"].rsplit("/", 1)[-1] for o in first["outputs"]} >= {
        "police.parquet",
        "police.manifest.json",
    }
    assert verify_log(run_log).ok
    text = run_log.read_bytes()
    secret = keys.project.secret
    for form in (secret, secret.hex().encode(), base64.b64encode(secret), PASSPHRASE.encode()):
        assert form not in text
    for value in ("Featherstonehaugh", "Bartholomew", "05/03/1971", "SW1A 1AA", POLICE_ROWS[0][8]):
        assert value.encode() not in text


def test_line_separators_in_a_file_name_do_not_break_the_log(tmp_path, run_log, run_cli):
    """Entries are split on "\\n" only: U+2028, U+0085 and \\x1c in a path stay inside their entry."""
    config = tmp_path / "police\u2028copy\u0085\x1c.yaml"
    config.write_text("agency: {}\n")
    with logged("pseudonymise", configs=[config]):
        pass
    with logged("verify"):
        pass
    check = verify_log(run_log)
    assert check.ok and check.entries == 2
    assert append(EntryBuilder("run", [], [], None), "ok").seq == 3
    listed = run_cli("audit", "log", "--json")
    assert listed.exit_code == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert [e["command"] for e in doc["verified_entries"]] == ["pseudonymise", "verify", "run"]
    assert doc["verified_entries"][0]["configs"][0]["path"] == str(config)


def test_a_stage_inside_a_command_joins_its_entry(tmp_path, run_log):
    """The CLI opens the entry; a stage function's own `logged` adds to it: one command, one entry."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("x: 1\n")
    with logged("journeys") as outer, logged("journeys-stage", configs=[cfg]) as inner:
        assert inner is outer
        inner.add_output(cfg)
    (entry,) = [json.loads(line) for line in run_log.read_text().splitlines()]
    assert entry["command"] == "journeys" and entry["configs"] == entry["outputs"]
    with pytest.raises(LinkageError), logged("run"), logged("run-stage"):
        raise LinkageError("refused")
    assert [json.loads(x)["outcome"] for x in run_log.read_text().splitlines()] == ["ok", "refused"]


def test_concurrent_appends_keep_one_chain(tmp_path):
    """Two writers at once (the lock is filelock's, as on Windows): every entry lands, chained."""
    import threading

    path = tmp_path / "log.jsonl"

    def write(name: str) -> None:
        for _ in range(15):
            append(EntryBuilder(name, [], [], None), "ok", path=path)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = verify_log(path)
    assert check.ok and check.entries == 30
