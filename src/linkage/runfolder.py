"""The run folder contract: the one module that writes a run folder and opens one for reading.

A run folder (``runs/<run_id>/``) is written by `linkage run` and extended by later stages
(`linkage journeys`). Every stage that writes into it follows the same steps:

  1. ``RunWriter.create`` (a new run) or ``OpenRun.add_stage`` (a later stage) removes the stage's
     completion marker first, so a folder being (re)written never looks complete;
  2. every output is written owner-only and registered (SHA-256 and size), ``run.json`` (the run
     record: what was linked, with which keys and configs) first;
  3. ``complete`` writes ``<stage>.complete.json`` LAST and atomically: it lists every output with its
     hash, the hash of the run record and, for a later stage, of the run's own marker; the outputs and
     the marker are then logged in the run log by the command that wrapped the stage.

``open_run`` is how every later stage reads a run: it refuses (VerificationError, exit 1) a run
that is incomplete (no marker: killed before the end, or marker never logged), modified (any
listed file's hash differs), or whose extracts no longer match the signed manifests the run linked
(manifest bytes, Parquet SHA-256 and the Ed25519 signature, checked against the public keys recorded
in run.json, not the manifest copies in inputs/). Only files listed by a marker can be read through it.

File modes: folders 0700, files 0600 (POSIX). On Windows ``os.chmod`` cannot express owner-only
access; the folder's ACL (inherited from its parent) is what protects it there (docs/threat-model.md).

Why hand-written: no library we found owns "a folder of outputs with a hash manifest and a
completion marker"; the pieces (hashlib, pydantic, atomic rename, flock) are standard.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from linkage import __version__
from linkage.errors import ConfigError, VerificationError
from linkage.extract.manifest import read_manifest, read_signature, signature_path
from linkage.util import PRIVATE_FILE, atomic_path, atomic_write_bytes, make_private_dir, sha256_file

if TYPE_CHECKING:
    from linkage.extract.verify import VerifyReport
    from linkage.keys import TrustedKey
    from linkage.runlog import EntryBuilder

RECORD = "run.json"
RUN_FORMAT_VERSION: Literal[1] = 1
Stage = Literal["run", "journeys"]
WORK_LOCK = ".linkage-work.lock"


def marker_name(stage: str) -> str:
    return f"{stage}.complete.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrustedKeyRecord(_Model):
    """The agency public key a manifest's signature was checked with at link time (public, not secret)."""

    agency: str
    key_id: str
    public_key: str  # raw Ed25519 public key, base64
    public_key_sha256: str  # fingerprint of the raw key bytes


class ExtractRecord(_Model):
    agency: str
    parquet: str  # absolute path at link time
    manifest: str  # absolute path of the signed manifest beside it (not the copy in inputs/)
    sha256: str  # of the Parquet file (= the manifest's output.sha256)
    rows: int
    manifest_sha256: str  # of the manifest's exact bytes (what the signature covers)
    signature_key_id: str


class ParentRun(_Model):
    """The run a derived run (e.g. `linkage recluster`) was made from."""

    run_id: str
    path: str
    marker_sha256: str


class RunRecord(_Model):
    """run.json: what a run linked, with which keys, configs and tool; written first, hashed by the marker."""

    format_version: Literal[1] = RUN_FORMAT_VERSION
    run_id: str
    created_at: datetime
    tool_version: str
    versions: dict[str, str] = {}  # other engines used (e.g. splink)
    parent_run: ParentRun | None = None
    configs: dict[str, str] = {}  # copy in the run folder (relative path) -> SHA-256
    extracts_dir: str | None = None
    extracts: dict[str, ExtractRecord]  # by agency name
    key_fingerprint: str | None = None
    trusted_keys_dir: str | None = None
    trusted_keys: dict[str, TrustedKeyRecord] = {}  # by key id: only the keys that signed an extract


class OutputHash(_Model):
    sha256: str
    bytes: int


class CompletionMarker(_Model):
    format_version: Literal[1] = RUN_FORMAT_VERSION
    run_id: str
    stage: Stage
    completed_at: datetime
    tool_version: str
    record_sha256: str
    builds_on: str | None = None  # SHA-256 of the run's marker (stages after "run")
    outputs: dict[str, OutputHash]  # relative path -> hash
    logged_to: str | None = None  # run log the command appends this stage's entry to


def _hash(path: Path) -> OutputHash:
    return OutputHash(sha256=sha256_file(path), bytes=path.stat().st_size)


def _refuse(run_dir: Path, reason: str) -> VerificationError:
    return VerificationError(f"{run_dir}: refusing this run folder: {reason}")


def _public_key_sha256(key: TrustedKey) -> str:
    return hashlib.sha256(key.public.public_bytes_raw()).hexdigest()


def record_from_verified(
    run_id: str,
    report: VerifyReport,
    *,
    extracts_dir: Path,
    trusted_keys_dir: Path,
    configs: dict[str, Path] | None = None,
    versions: dict[str, str] | None = None,
) -> RunRecord:
    """The record of a run over extracts that ``verify_extracts`` accepted with the keys in
    ``trusted_keys_dir``; ``configs`` maps each config's name in the run folder to the file copied there."""
    from linkage.keys import load_trusted_keys

    trusted = load_trusted_keys([trusted_keys_dir])
    extracts, keys = {}, {}
    for check in report.extracts:
        manifest, sig = check.manifest, read_signature(check.manifest_path)
        if manifest is None or sig is None or check.parquet_path is None:  # verify_extracts accepted it
            raise VerificationError(f"{check.manifest_path}: not a verified, signed extract")
        key = trusted[sig.key_id]
        keys[key.key_id] = TrustedKeyRecord(
            agency=key.agency,
            key_id=key.key_id,
            public_key=base64.b64encode(key.public.public_bytes_raw()).decode(),
            public_key_sha256=_public_key_sha256(key),
        )
        extracts[manifest.agency] = ExtractRecord(
            agency=manifest.agency,
            parquet=str(check.parquet_path.resolve()),
            manifest=str(check.manifest_path.resolve()),
            sha256=manifest.output.sha256,
            rows=manifest.output.rows,
            manifest_sha256=sha256_file(check.manifest_path),
            signature_key_id=sig.key_id,
        )
    return RunRecord(
        run_id=run_id,
        created_at=datetime.now(UTC).replace(microsecond=0),
        tool_version=__version__,
        versions=versions or {},
        configs={name: sha256_file(path) for name, path in (configs or {}).items()},
        extracts_dir=str(Path(extracts_dir).resolve()),
        extracts=dict(sorted(extracts.items())),
        key_fingerprint=next((c.manifest.key_fingerprint for c in report.extracts if c.manifest), None),
        trusted_keys_dir=str(Path(trusted_keys_dir).resolve()),
        trusted_keys=dict(sorted(keys.items())),
    )


# --- writing -------------------------------------------------------------------------------------------


class RunWriter:
    """One stage writing into a run folder: register every output, then ``complete`` (marker last)."""

    def __init__(self, run_dir: Path, stage: Stage, run_id: str, builds_on: str | None = None) -> None:
        self.run_dir, self.stage, self.run_id, self.builds_on = Path(run_dir), stage, run_id, builds_on
        self.outputs: dict[str, OutputHash] = {}

    @classmethod
    def create(cls, run_dir: Path, record: RunRecord, *, overwrite: bool = False) -> RunWriter:
        """Start a new run folder (0700) and write its record; an existing folder needs ``overwrite``.

        Overwriting removes every completion marker first, then the outputs the markers listed, so an
        interrupted overwrite leaves a folder that every later stage refuses.
        """
        run_dir = Path(run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            if not overwrite:
                raise ConfigError(f"{run_dir}: run folder exists and is not empty (choose a new run id)")
            _clear(run_dir)
        make_private_dir(run_dir)
        writer = cls(run_dir, "run", record.run_id)
        writer.write_bytes(RECORD, (record.model_dump_json(indent=2) + "\n").encode())
        return writer

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def register(self, name: str) -> Path:
        """Make an output written in place owner-only and hash it (call once it is final)."""
        path = self.run_dir / name
        if not path.is_file():
            raise FileNotFoundError(path)
        path.chmod(PRIVATE_FILE)
        self.outputs[Path(name).as_posix()] = _hash(path)
        return path

    @contextmanager
    def writing(self, name: str) -> Iterator[Path]:
        """A temporary path (owner-only) renamed to ``name`` and registered when the block succeeds."""
        make_private_dir(self.path(name).parent)
        with atomic_path(self.path(name), mode=PRIVATE_FILE) as tmp:
            yield tmp
        self.register(name)

    def write_bytes(self, name: str, data: bytes) -> Path:
        make_private_dir(self.path(name).parent)
        atomic_write_bytes(self.path(name), data, mode=PRIVATE_FILE)
        return self.register(name)

    def copy_in(self, source: Path, name: str) -> Path:
        """Copy a file into the folder (e.g. a config or manifest into inputs/) and register it."""
        with self.writing(name) as tmp:
            shutil.copyfile(source, tmp)
        return self.path(name)

    def complete(self, log: EntryBuilder | None = None) -> Path:
        """Write the stage's completion marker last; add every output and the marker to ``log``.

        ``log`` is the run-log entry of the command running this stage: with it, a marker is only
        trusted once that entry is in the log (`open_run` checks), so a stage killed after its marker
        but before its log entry is still refused.
        """
        from linkage.runlog import log_path

        if RECORD not in self.outputs and self.stage == "run":
            raise ValueError("a run is completed only after its record is written")
        record = self.run_dir / RECORD
        marker = CompletionMarker(
            run_id=self.run_id,
            stage=self.stage,
            completed_at=datetime.now(UTC).replace(microsecond=0),
            tool_version=__version__,
            record_sha256=sha256_file(record),
            builds_on=self.builds_on,
            outputs=dict(sorted(self.outputs.items())),
            logged_to=str(log_path().resolve()) if log is not None else None,
        )
        path = self.run_dir / marker_name(self.stage)
        atomic_write_bytes(path, (marker.model_dump_json(indent=2) + "\n").encode(), mode=PRIVATE_FILE)
        if log is not None:
            for name, h in marker.outputs.items():
                log.add_output(self.run_dir / name, h.sha256)
            log.add_output(path)
        return path


def _clear(run_dir: Path) -> None:
    """Remove a run's markers (first), then the outputs they list, the record, temporary files and the
    work folder."""
    markers = sorted(run_dir.glob("*.complete.json"))
    listed: set[str] = {RECORD}
    for path in markers:
        # a damaged marker lists nothing we can trust; it is removed all the same
        with suppress(OSError, ValidationError):
            listed |= set(CompletionMarker.model_validate_json(path.read_bytes()).outputs)
        path.unlink()
    for name in listed:
        (run_dir / name).unlink(missing_ok=True)
    for tmp in run_dir.glob(".*.tmp"):  # half-written outputs of a killed writer (util.atomic_path)
        tmp.unlink()
    for sub in ("inputs", "work"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)


# --- reading -------------------------------------------------------------------------------------------


@dataclass
class OpenRun:
    """A run folder whose markers, outputs and extracts were verified by ``open_run``."""

    run_dir: Path
    record: RunRecord
    markers: dict[str, CompletionMarker]
    extracts: dict[str, Path]  # agency -> verified Parquet file (empty when not checked)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def has(self, name: str) -> bool:
        return any(name in m.outputs for m in self.markers.values())

    def path(self, name: str) -> Path:
        """A verified output; refuses a file that no completed stage lists."""
        if not self.has(name):
            raise _refuse(self.run_dir, f"{name} is not an output of any completed stage")
        return self.run_dir / name

    def marker_sha256(self, stage: Stage = "run") -> str:
        return sha256_file(self.run_dir / marker_name(stage))

    def add_stage(self, stage: Stage) -> RunWriter:
        """Start a later stage: its old marker is removed first, so a rewrite in progress is never read."""
        (self.run_dir / marker_name(stage)).unlink(missing_ok=True)
        self.markers.pop(stage, None)
        return RunWriter(self.run_dir, stage, self.run_id, builds_on=self.marker_sha256("run"))

    def child_record(self, run_id: str) -> RunRecord:
        """The record of a run derived from this one (same extracts and keys), naming this run as parent."""
        parent = ParentRun(
            run_id=self.run_id, path=str(self.run_dir.resolve()), marker_sha256=self.marker_sha256()
        )
        return self.record.model_copy(
            update={
                "run_id": run_id,
                "created_at": datetime.now(UTC).replace(microsecond=0),
                "tool_version": __version__,
                "parent_run": parent,
                "configs": {},
            }
        )


def open_run(
    run_dir: Path,
    *,
    require: Iterable[Stage] = (),
    ignore: Iterable[Stage] = (),
    check_extracts: bool = True,
    extracts_dir: Path | None = None,
) -> OpenRun:
    """Open a run folder for reading, or refuse it (VerificationError) with the reason.

    Every stage marker present is checked, except those of the stages in ``ignore`` (the stage about
    to be rewritten); the run's own marker and those of the stages in ``require`` must be present.
    A file no checked marker lists is never read through the result. ``extracts_dir`` looks for the
    extracts (by file name) in another folder than the one the run recorded.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    record_path = run_dir / RECORD
    markers: dict[str, CompletionMarker] = {}
    for stage in ("run", "journeys"):
        path = run_dir / marker_name(stage)
        if stage in ignore and stage != "run":
            continue
        if path.is_file():
            markers[stage] = _read_marker(run_dir, path)
    for stage in dict.fromkeys(("run", *require)):  # a run is always required
        if stage not in markers:
            hint = "`linkage run` did not finish" if stage == "run" else f"run `linkage {stage}` first"
            raise _refuse(run_dir, f"incomplete: no {marker_name(stage)} ({hint})")
    try:
        record = RunRecord.model_validate_json(record_path.read_bytes())
    except (OSError, ValidationError):
        raise _refuse(run_dir, f"{RECORD} is missing or not a valid run record") from None
    run_marker_sha = sha256_file(run_dir / marker_name("run"))
    for stage, marker in markers.items():
        _check_marker(run_dir, stage, marker, record, run_marker_sha)
        _check_logged(run_dir, stage, marker)
    extracts = _check_extracts(run_dir, record, extracts_dir) if check_extracts else {}
    return OpenRun(run_dir, record, markers, extracts)


def _read_marker(run_dir: Path, path: Path) -> CompletionMarker:
    try:
        return CompletionMarker.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        raise _refuse(run_dir, f"{path.name} is not a valid completion marker") from None


def _check_marker(
    run_dir: Path, stage: str, marker: CompletionMarker, record: RunRecord, run_marker_sha: str
) -> None:
    if marker.stage != stage or marker.run_id != record.run_id:
        raise _refuse(run_dir, f"{marker_name(stage)} belongs to another stage or run")
    if marker.record_sha256 != sha256_file(run_dir / RECORD):
        raise _refuse(run_dir, f"modified: {RECORD} differs from the one the {stage} stage completed with")
    if stage != "run" and marker.builds_on != run_marker_sha:
        raise _refuse(run_dir, f"the {stage} stage was built on an earlier version of this run; re-run it")
    for name, expected in marker.outputs.items():
        path = run_dir / name
        if not path.is_file():
            raise _refuse(run_dir, f"incomplete: {name} is missing")
        if path.stat().st_size != expected.bytes or sha256_file(path) != expected.sha256:
            raise _refuse(run_dir, f"modified: {name} differs from the file the {stage} stage wrote")


def _check_logged(run_dir: Path, stage: str, marker: CompletionMarker) -> None:
    """A marker completed under a command must be among the outputs of an `ok` entry of the run log.

    The log is looked for where the command wrote it, then at this command's log (LINKAGE_LOG: a run
    folder moved with its log); a stage killed between its marker and its log entry is refused.
    """
    from linkage.runlog import log_path

    if marker.logged_to is None:
        return
    digest = sha256_file(run_dir / marker_name(stage))
    logs = list(dict.fromkeys([Path(marker.logged_to), log_path().resolve()]))
    for log in logs:
        try:
            lines = log.read_text(encoding="utf-8").split("\n")  # never splitlines: U+2028 is data
        except OSError:
            continue
        for line in lines:
            if digest in line and _logged_ok(line, digest):
                return
    where = " or ".join(str(log) for log in logs)
    raise _refuse(run_dir, f"incomplete: the {stage} stage was never logged as finished in {where}")


def _logged_ok(line: str, digest: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return entry.get("outcome") == "ok" and any(o.get("sha256") == digest for o in entry.get("outputs", []))


def _check_extracts(run_dir: Path, record: RunRecord, extracts_dir: Path | None) -> dict[str, Path]:
    """Each extract must be the signed extract the run linked: manifest bytes, signature, Parquet hash."""
    found: dict[str, Path] = {}
    for agency, extract in record.extracts.items():
        parquet, manifest = Path(extract.parquet), Path(extract.manifest)
        if extracts_dir is not None:
            parquet, manifest = Path(extracts_dir) / parquet.name, Path(extracts_dir) / manifest.name
        if not manifest.is_file() or not parquet.is_file():
            raise _refuse(run_dir, f"extract for {agency} not found ({parquet.parent}); pass --extracts DIR")
        if sha256_file(manifest) != extract.manifest_sha256:
            raise _refuse(
                run_dir, f"{manifest}: not the manifest the run linked (an older or altered extract)"
            )
        parsed, data = read_manifest(manifest)
        _check_signature(run_dir, record, extract, manifest, data)
        if sha256_file(parquet) != extract.sha256 or parsed.output.sha256 != extract.sha256:
            raise _refuse(
                run_dir, f"{parquet}: SHA-256 differs from the signed manifest the run linked (data altered)"
            )
        if parsed.agency != agency:
            raise _refuse(run_dir, f"the extract recorded for {agency} is {parsed.agency}'s")
        found[agency] = parquet
    return found


def _check_signature(
    run_dir: Path, record: RunRecord, extract: ExtractRecord, manifest: Path, data: bytes
) -> None:
    sig = read_signature(manifest)
    key = record.trusted_keys.get(extract.signature_key_id)
    if sig is None or key is None or sig.key_id != key.key_id:
        raise _refuse(run_dir, f"{signature_path(manifest)}: missing, or not by the key the run recorded")
    raw = base64.b64decode(key.public_key)
    if hashlib.sha256(raw).hexdigest() != key.public_key_sha256:
        raise _refuse(run_dir, f"{RECORD}: public key {key.key_id} does not match its fingerprint")
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig.signature), data)
    except (InvalidSignature, ValueError):
        reason = f"{manifest}: signature does not verify under the key the run recorded"
        raise _refuse(run_dir, reason) from None


# --- the work area -------------------------------------------------------------------------------------


@contextmanager
def work_area(work_dir: Path, *, keep: bool = False) -> Iterator[Path]:
    """An owner-only scratch folder (the work DuckDB, spill files: every token) removed on exit, failure
    included. A lock file held open while it is in use tells ``remove_stale_work`` it is alive."""
    work_dir = Path(work_dir)
    make_private_dir(work_dir)
    fd = os.open(work_dir / WORK_LOCK, os.O_CREAT | os.O_RDWR, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield work_dir
    finally:
        os.close(fd)
        if keep:  # kept on purpose (backend.keep_database): no longer a candidate for removal
            (work_dir / WORK_LOCK).unlink(missing_ok=True)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


def remove_stale_work(candidates: Iterable[Path]) -> list[Path]:
    """Remove work folders left by killed runs: ours (lock file present) and not locked by a live process.

    Only folders holding our lock file are ever removed; a lock is released by the kernel when the
    process holding it dies, however it died.
    """
    removed = []
    for folder in candidates:
        lock = Path(folder) / WORK_LOCK
        if not lock.is_file():
            continue
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # in use by a running process
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(Path(folder))
    return removed
