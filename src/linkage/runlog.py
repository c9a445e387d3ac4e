"""The tamper-evident run log: one JSON line per command that reads or writes project data.

Each entry records who ran what, with the SHA-256 of every config, input and output, the key
fingerprint and the outcome, and carries the hash of the previous entry, so an edited, deleted,
reordered or inserted entry breaks the chain (`linkage audit log` finds the first broken link).
Never a key, a passphrase or an identifier: only file paths, hashes, counts and safe messages.

What the chain cannot show by itself: that the newest entries were not cut off the end. Keep the
last entry hash somewhere else (a run's metrics, a ticket) to anchor it; docs/governance-guide.md.

One entry per command: the CLI opens it (``logged``) around every data command, and a stage function
that calls ``logged`` itself joins the open entry instead of writing a second one. Entries are split
on "\n" only: a file name may hold U+2028 or other characters ``str.splitlines`` treats as line ends.
The log is locked with ``filelock`` (a ``<log>.lock`` file beside it), which works on Windows too.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, ValidationError

from linkage import __version__
from linkage.errors import ConfigError, LinkageError
from linkage.util import sha256_file

LOG_ENV = "LINKAGE_LOG"
DEFAULT_LOG = "linkage-log.jsonl"
GENESIS = "0" * 64
log = logging.getLogger(__name__)


class FileHash(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str


class LogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    timestamp: datetime
    command: str
    user: str
    host: str
    tool_version: str
    configs: list[FileHash] = []
    inputs: list[FileHash] = []
    outputs: list[FileHash] = []
    key_fingerprint: str | None = None
    outcome: Literal["ok", "refused", "usage-error", "failed"]
    detail: str = ""
    prev_hash: str
    entry_hash: str = ""

    def compute_hash(self) -> str:
        body = self.model_dump(mode="json", exclude={"entry_hash"})
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def log_path() -> Path:
    return Path(os.environ.get(LOG_ENV) or DEFAULT_LOG)


def _entry_lines(text: str) -> list[str]:
    """The log's lines, split on "\n" alone (JSON escapes it inside strings; not U+2028 or \x1c)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_lines(path: Path) -> list[str]:
    """The run log's entry lines, as stored (no newline translation, split on "\n" only)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return _entry_lines(fh.read())


def _hashes(path: Path, known: str | None = None) -> list[FileHash]:
    """A file's hash, or the hash of every file under a directory (sorted, so entries are stable)."""
    path = Path(path)
    if path.is_dir():
        return [FileHash(path=str(p), sha256=sha256_file(p)) for p in sorted(path.rglob("*")) if p.is_file()]
    if path.is_file():
        return [FileHash(path=str(path), sha256=known or sha256_file(path))]
    return []


class EntryBuilder:
    """Collects what a command touched while it runs; ``logged`` writes it at the end."""

    def __init__(self, command: str, configs, inputs, key_fingerprint: str | None) -> None:
        self.command, self.key_fingerprint = command, key_fingerprint
        self.configs = [h for p in configs for h in _hashes(p)]
        self.inputs = [h for p in inputs for h in _hashes(p)]
        self.outputs: list[FileHash] = []

    def add_input(self, path: Path, sha256: str | None = None) -> None:
        self.inputs += _hashes(path, sha256)

    def add_output(self, path: Path, sha256: str | None = None) -> None:
        self.outputs += _hashes(path, sha256)


def append(builder: EntryBuilder, outcome: str, detail: str = "", path: Path | None = None) -> LogEntry:
    """Append one entry, chained to the last, under an exclusive lock (concurrent commands are safe)."""
    path = path or log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # newline="": no translation of line ends on any platform, so what is hashed is what is stored
    with FileLock(f"{path}.lock"), open(path, "a+", encoding="utf-8", newline="") as fh:
        fh.seek(0)
        lines = [line for line in _entry_lines(fh.read()) if line.strip()]
        prev_hash, seq = GENESIS, 1
        if lines:
            try:
                last = LogEntry.model_validate_json(lines[-1])
                prev_hash, seq = last.entry_hash, last.seq + 1
            except ValidationError:
                raise LinkageError(
                    f"{path}: the run log's last entry is malformed; run `linkage audit log`"
                ) from None
        entry = LogEntry(
            seq=seq,
            timestamp=datetime.now(UTC),
            command=builder.command,
            user=getpass.getuser(),
            host=socket.gethostname(),
            tool_version=__version__,
            configs=builder.configs,
            inputs=builder.inputs,
            outputs=builder.outputs,
            key_fingerprint=builder.key_fingerprint,
            outcome=outcome,
            detail=detail,
            prev_hash=prev_hash,
        )
        entry.entry_hash = entry.compute_hash()
        fh.seek(0, os.SEEK_END)
        fh.write(entry.model_dump_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.debug("run log %s: entry %d (%s, %s) appended", path, entry.seq, entry.command, outcome)
    return entry


_open_entry: ContextVar[EntryBuilder | None] = ContextVar("linkage_run_log_entry", default=None)


@contextmanager
def logged(
    command: str, *, configs=(), inputs=(), key_fingerprint: str | None = None
) -> Iterator[EntryBuilder]:
    """Run a command's body and log its outcome: ok, refused (exit 1), usage-error (exit 2) or failed.

    Inside an entry that is already open (the CLI opens one around every data command), this adds
    ``configs`` and ``inputs`` to it and yields it: one command, one entry. A failed command logs
    only the exception type: an unexpected error's message may quote data.
    """
    if (open_entry := _open_entry.get()) is not None:
        open_entry.configs += [h for p in configs for h in _hashes(p)]
        open_entry.inputs += [h for p in inputs for h in _hashes(p)]
        open_entry.key_fingerprint = open_entry.key_fingerprint or key_fingerprint
        yield open_entry
        return
    builder = EntryBuilder(command, configs, inputs, key_fingerprint)
    token = _open_entry.set(builder)
    try:
        yield builder
    except ConfigError as exc:
        append(builder, "usage-error", str(exc))
        raise
    except LinkageError as exc:
        append(builder, "refused", str(exc))
        raise
    except BaseException as exc:
        append(builder, "failed", type(exc).__name__)
        raise
    finally:
        _open_entry.reset(token)
    append(builder, "ok")


def current_entry() -> EntryBuilder | None:
    """The run-log entry of the command running now (None outside a logged command)."""
    return _open_entry.get()


class ChainCheck(BaseModel):
    ok: bool
    entries: int
    first_broken: int | None = None  # 1-based line number of the first entry that breaks the chain
    reason: str = ""
    last_hash: str | None = None


def verify_log(path: Path) -> ChainCheck:
    """Walk the chain; report the first line whose entry was edited, deleted, reordered or inserted."""
    try:
        lines = read_lines(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: run log not found") from None
    prev, expected_seq = GENESIS, 1
    for n, line in enumerate(lines, start=1):
        try:
            entry = LogEntry.model_validate_json(line)
        except ValidationError:
            return ChainCheck(ok=False, entries=n - 1, first_broken=n, reason="not a valid log entry")
        if entry.compute_hash() != entry.entry_hash:
            return ChainCheck(
                ok=False, entries=n - 1, first_broken=n, reason="entry content altered (hash mismatch)"
            )
        if entry.prev_hash != prev:
            reason = "previous entry missing, reordered or inserted (chain link mismatch)"
            return ChainCheck(ok=False, entries=n - 1, first_broken=n, reason=reason)
        if entry.seq != expected_seq:
            return ChainCheck(
                ok=False,
                entries=n - 1,
                first_broken=n,
                reason=f"sequence {entry.seq}, expected {expected_seq}",
            )
        prev, expected_seq = entry.entry_hash, expected_seq + 1
    return ChainCheck(ok=True, entries=len(lines), last_hash=prev if lines else None)
