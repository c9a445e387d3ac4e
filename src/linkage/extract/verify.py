"""`linkage verify`: prove a set of pseudonymised extracts is intact and consistent.

For each extract: the manifest parses, its signature is valid under a trusted public key of the
same agency, the Parquet file's SHA-256, row count and schema match the manifest. Across extracts:
one key fingerprint, one supported token spec version, one extract per agency.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from linkage.errors import ConfigError, VerificationError
from linkage.extract.manifest import Manifest, read_manifest, read_signature
from linkage.keys import TrustedKey
from linkage.runlog import LogEntry
from linkage.tokens.spec import MIGRATION_HINT, SUPPORTED_TOKEN_SPEC_VERSIONS
from linkage.util import sha256_file


@dataclass
class ExtractCheck:
    manifest_path: Path
    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def parquet_path(self) -> Path | None:
        return self.manifest_path.parent / self.manifest.output.file if self.manifest else None


@dataclass
class VerifyReport:
    extracts: list[ExtractCheck]
    problems: list[str]  # problems across extracts
    warnings: list[str] = field(default_factory=list)  # not failures, but a person should look

    @property
    def ok(self) -> bool:
        return not self.problems and all(e.ok for e in self.extracts)

    def reasons(self) -> list[str]:
        out = [f"{e.manifest_path}: {p}" for e in self.extracts for p in e.problems]
        return out + self.problems


def find_manifests(paths: list[Path]) -> list[Path]:
    """Manifest files named directly, or every ``*.manifest.json`` in the directories given."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.glob("*.manifest.json")))
        elif p.is_file():
            found.append(p)
        else:
            raise ConfigError(f"{p}: no such file or directory")
    if not found:
        raise ConfigError(f"no *.manifest.json found in {', '.join(map(str, paths))}")
    return found


def _check_signature(check: ExtractCheck, data: bytes, trusted: dict[str, TrustedKey]) -> None:
    manifest = check.manifest
    assert manifest is not None  # called only for a manifest that parsed
    sig = read_signature(check.manifest_path)
    if sig is None:
        check.problems.append("manifest is not signed (no .sig file)")
        return
    key = trusted.get(sig.key_id)
    if key is None:
        check.problems.append(f"signed by key {sig.key_id}, which is not among the trusted public keys")
        return
    if key.agency != manifest.agency:
        check.problems.append(f"signed with agency {key.agency!r}'s key but claims to be {manifest.agency!r}")
        return
    try:
        signature = base64.b64decode(sig.signature, validate=True)
    except (binascii.Error, ValueError):
        check.problems.append("signature is not valid base64")
        return
    if not key.verify(signature, data):
        check.problems.append("signature does not match the manifest (manifest altered or wrong key)")


def _check_parquet(check: ExtractCheck) -> None:
    manifest, path = check.manifest, check.parquet_path
    assert manifest is not None and path is not None  # called only for a manifest that parsed
    if not path.is_file():
        check.problems.append(f"data file {manifest.output.file} is missing")
        return
    if sha256_file(path) != manifest.output.sha256:
        check.problems.append(f"{manifest.output.file}: SHA-256 differs from the manifest (data altered)")
        return  # the content is untrusted: no point checking further
    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        check.problems.append(f"{manifest.output.file}: not a readable Parquet file")
        return
    expected = manifest.counts.records
    if meta.num_rows != manifest.output.rows or meta.num_rows != expected:
        check.problems.append(f"row count {meta.num_rows} differs from the manifest ({expected})")
    if manifest.duplicate_record_keys:  # written before pseudonymise refused them
        check.problems.append(
            f"{manifest.duplicate_record_keys:,} record(s) share a record key with another: the linkage "
            "could not tell them apart; re-pseudonymise with an id per row"
        )
    declared = [(c.name, c.type) for c in manifest.columns]
    actual = [(f.name, str(f.type)) for f in schema]
    if declared != actual:
        check.problems.append("Parquet schema differs from the columns listed in the manifest")


def verify_extracts(
    paths: list[Path],
    trusted: dict[str, TrustedKey],
    *,
    expected_fingerprint: str | None = None,
    run_log: Path | None = None,
) -> VerifyReport:
    """Check every extract found under ``paths``; never raises for a bad extract, reports it."""
    if not trusted:
        raise ConfigError(
            "no trusted public keys given: pass --trusted-keys with the agencies' *.signing.pub"
        )
    checks: list[ExtractCheck] = []
    for mpath in find_manifests(paths):
        check = ExtractCheck(mpath)
        checks.append(check)
        old = _unsupported_spec(mpath)
        if old is not None:  # an older manifest layout: say why, not which field fails to parse
            check.problems.append(f"token spec version {old} is not supported by this tool: {MIGRATION_HINT}")
            continue
        try:
            check.manifest, data = read_manifest(mpath)
        except VerificationError as exc:
            check.problems.append(str(exc).removeprefix(f"{mpath}: "))
            continue
        _check_signature(check, data, trusted)
        _check_parquet(check)
        if check.manifest.token_spec_version not in SUPPORTED_TOKEN_SPEC_VERSIONS:
            check.problems.append(
                f"token spec version {check.manifest.token_spec_version} is not supported by this tool "
                f"(supports {sorted(SUPPORTED_TOKEN_SPEC_VERSIONS)}): {MIGRATION_HINT}"
            )

    problems: list[str] = []
    manifests = [c.manifest for c in checks if c.manifest]
    fingerprints = sorted({m.key_fingerprint for m in manifests})
    if len(fingerprints) > 1:
        by_fp = {fp: sorted(m.agency for m in manifests if m.key_fingerprint == fp) for fp in fingerprints}
        problems.append(f"extracts were made with different project keys: {by_fp}")
    if expected_fingerprint and fingerprints and fingerprints != [expected_fingerprint.replace("-", "")]:
        problems.append("key fingerprint differs from the expected fingerprint")
    versions = sorted(
        {m.token_spec_version for m in manifests}
        | {v for c in checks if c.manifest is None and (v := _unsupported_spec(c.manifest_path))}
    )
    if len(versions) > 1:
        problems.append(
            f"extracts use different token spec versions {versions}, which cannot be linked: {MIGRATION_HINT}"
        )
    agencies = [m.agency for m in manifests]
    dupes = sorted({a for a in agencies if agencies.count(a) > 1})
    if dupes:
        problems.append(f"more than one extract for agency {dupes}")
    warnings = _older_than_linked(manifests, run_log) if run_log is not None else []
    return VerifyReport(checks, problems, warnings)


def _unsupported_spec(path: Path) -> str | None:
    """The token spec version of a manifest this tool cannot read, or None."""
    try:
        version = json.loads(Path(path).read_bytes()).get("token_spec_version")
    except (OSError, ValueError, AttributeError):
        return None
    return str(version) if version is not None and str(version) not in SUPPORTED_TOKEN_SPEC_VERSIONS else None


def _older_than_linked(manifests: list[Manifest], run_log: Path) -> list[str]:
    """Warn when an extract is older than one of the same agency and project that a `linkage run`
    already used. The run log is the record: each run lists its input manifests, and the copies it
    keeps in its run folder (inputs/manifests/), by path and SHA-256; those still on disk with that
    hash are read back for their agency, period and creation time."""
    if not Path(run_log).is_file():
        return []
    linked: dict[str, Manifest] = {}  # agency -> newest linked extract
    for line in Path(run_log).read_text(encoding="utf-8").splitlines():
        try:
            entry = LogEntry.model_validate_json(line)
        except ValueError:
            continue  # `linkage audit log` reports a broken log; here it only loses a warning
        if entry.command != "run" or entry.outcome != "ok":
            continue
        for item in [*entry.inputs, *entry.outputs]:  # outputs: the copies kept in the run folder
            path = Path(item.path)
            if (
                not path.name.endswith(".manifest.json")
                or not path.is_file()
                or sha256_file(path) != item.sha256
            ):
                continue
            try:
                m, _ = read_manifest(path)
            except VerificationError:
                continue
            if _newness(m) > _newness(linked.get(m.agency)):
                linked[m.agency] = m
    warnings = []
    for m in manifests:
        seen = linked.get(m.agency)
        if seen is not None and m.key_fingerprint == seen.key_fingerprint and _newness(m) < _newness(seen):
            warnings.append(
                f"{m.agency}: this extract ({_describe(m)}) is older than one this project already linked "
                f"({_describe(seen)})"
            )
    return warnings


def _newness(m: Manifest | None) -> tuple[str, str]:
    """Order extracts by the end of their period, then by creation time."""
    if m is None:
        return ("", "")
    return ((m.extraction_period or "").rpartition("/")[2], m.created_at.isoformat())


def _describe(m: Manifest) -> str:
    period = f"period {m.extraction_period}, " if m.extraction_period else ""
    return f"{period}created {m.created_at:%Y-%m-%d %H:%M}"
