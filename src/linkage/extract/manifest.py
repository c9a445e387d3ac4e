"""The manifest that travels beside each pseudonymised extract, and its Ed25519 signature.

The manifest is the file contract between an agency and the secure environment: who made the
extract, under which key (fingerprint only) and token spec, from which config, how many rows were
read, written and rejected, and the SHA-256 of the Parquet file. The signature covers the manifest's
exact bytes, so the Parquet hash inside it binds the data too.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from linkage.config.agency import AgencyKind
from linkage.errors import VerificationError
from linkage.keys import SigningKey
from linkage.util import atomic_write_bytes


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RowCounts(_Model):
    read: int = Field(ge=0, description="data records in the input (blank lines excluded)")
    written: int = Field(ge=0, description="subject rows written (read = written + rejected)")
    rejected: int = Field(ge=0)
    victim_mentions: int = Field(0, ge=0, description="victim-mention rows written besides the subject rows")

    @model_validator(mode="after")
    def _reconcile(self) -> RowCounts:
        if self.read != self.written + self.rejected:
            raise ValueError("row counts do not reconcile: read != written + rejected")
        return self

    @property
    def records(self) -> int:
        """Rows of the extract, each a record the linkage links: subject rows and victim mentions."""
        return self.written + self.victim_mentions


class SourceInfo(_Model):
    file_name: str
    format: Literal["csv", "parquet"]
    bytes: int
    sha256: str


class OutputInfo(_Model):
    file: str
    bytes: int
    rows: int
    sha256: str


class ColumnInfo(_Model):
    name: str
    type: str
    role: Literal["key", "row", "token", "marker", "role", "attribute"]


class SignerInfo(_Model):
    agency: str
    key_id: str


class Manifest(_Model):
    manifest_version: Literal[2] = 2
    tool_version: str
    agency: str
    kind: AgencyKind
    created_at: datetime
    token_spec_version: str
    key_fingerprint: str
    config_sha256: str
    source: SourceInfo
    extraction_period: str | None = Field(None, description="'YYYY-MM-DD/YYYY-MM-DD' the extract covers")
    record_id_source: Literal["column", "row_number"] = Field(
        description="record_key from the agency's record id column, or from the row number (not stable "
        "across re-extracts)"
    )
    postcode_country: Literal["uk", "generic"] | None = None
    generic_ids: dict[str, str] = Field({}, description="generic id column -> family")
    counts: RowCounts
    rejects_by_reason: dict[str, int] = Field(
        description="reasons without values; the rows stay in the agency"
    )
    values_present: dict[str, int] = Field({}, description="non-missing source values per field")
    values_blanked: dict[str, dict[str, int]] = Field(
        description="field -> reason -> values that could not be used and were blanked"
    )
    values_unverified: dict[str, dict[str, int]] = Field(
        {}, description="field -> reason -> ids kept as unverified tokens (failed only their check)"
    )
    value_notes: dict[str, dict[str, int]] = Field(
        {}, description="field -> note -> values (name layout matched, transliterated, swapped date, ...)"
    )
    token_coverage: dict[str, int] = Field(description="non-missing values per token column")
    duplicate_record_keys: int
    output: OutputInfo
    columns: list[ColumnInfo]
    dropped_columns: list[str]
    signer: SignerInfo | None = None

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()


class SignatureFile(_Model):
    algorithm: Literal["Ed25519"] = "Ed25519"
    key_id: str
    signature: str  # base64


def manifest_path(out_dir: Path, agency: str) -> Path:
    return Path(out_dir) / f"{agency}.manifest.json"


def signature_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".sig")


def write_manifest(manifest: Manifest, path: Path, signing_key: SigningKey | None) -> None:
    """Write the manifest (and its detached signature) atomically."""
    data = manifest.to_bytes()
    sig_path = signature_path(path)
    if signing_key is None:
        sig_path.unlink(missing_ok=True)  # a stale signature must not sit beside a new manifest
    atomic_write_bytes(path, data)
    if signing_key is not None:
        sig = SignatureFile(
            key_id=signing_key.key_id, signature=base64.b64encode(signing_key.sign(data)).decode()
        )
        atomic_write_bytes(sig_path, sig.model_dump_json(indent=2).encode())


def read_manifest(path: Path) -> tuple[Manifest, bytes]:
    """Parse a manifest; return it with its exact bytes (what the signature covers)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise VerificationError(f"{path}: manifest cannot be read") from None
    try:
        return Manifest.model_validate_json(data), data
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise VerificationError(f"{path}: not a valid manifest ({where}: {first['msg']})") from None


def read_signature(manifest: Path) -> SignatureFile | None:
    path = signature_path(manifest)
    if not path.exists():
        return None
    try:
        return SignatureFile.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        raise VerificationError(f"{path}: signature file is malformed") from None
