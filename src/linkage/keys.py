"""Project keys and agency signing keys: creation, encrypted storage, subkeys and fingerprints.

* The project key is a 256-bit secret made once by a key custodian and given to agencies only.
  Per-purpose subkeys come from HKDF-SHA256 (domain separation); a fingerprint (HMAC of a fixed
  label) travels in manifests so the analyst can check all extracts used one key without holding it.
* Agency signing keys are Ed25519 pairs; manifests are signed with the private key, verified with
  the public key file the secure environment trusts.
* At rest, secrets are encrypted with AES-256-GCM under a key derived from a passphrase by scrypt.
  The file's header (kind, owner, fingerprint, KDF parameters) is the GCM associated data, so editing
  it makes decryption fail.

Nothing in this module puts a secret or passphrase into a message, a repr or a file other than the
key file itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkage.errors import KeyFileError
from linkage.tokens.spec import TOKEN_SPEC_VERSION, Purpose
from linkage.util import atomic_write_bytes

KEY_BYTES = 32
FINGERPRINT_LABEL = b"justice-linkage key fingerprint v1"
# scrypt work factor: 2**17 x 8 x 128 B = 128 MiB and ~0.4 s here, OWASP's recommended minimum.
DEFAULT_SCRYPT_LOG2_N = 17
MIN_PASSPHRASE_CHARS = 12


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class KdfParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["scrypt"] = "scrypt"
    log2_n: int = Field(DEFAULT_SCRYPT_LOG2_N, ge=10, le=22)
    r: int = 8
    p: int = 1
    salt: str


class EncryptedKeyFile(BaseModel):
    """On-disk form of an encrypted secret (project key or signing private key)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["justice-linkage-key"] = "justice-linkage-key"
    version: Literal[1] = 1
    kind: Literal["project", "signing-private"]
    owner: str  # project name, or agency name for a signing key
    created_at: datetime
    key_id: str  # project: fingerprint; signing: public key id
    kdf: KdfParams
    cipher: Literal["AES-256-GCM"] = "AES-256-GCM"
    nonce: str
    ciphertext: str

    def header_bytes(self) -> bytes:
        """Associated data: every field but the ciphertext, canonical JSON."""
        header = self.model_dump(mode="json", exclude={"ciphertext"})
        return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


class PublicKeyFile(BaseModel):
    """An agency's Ed25519 public key, given to the secure environment to verify manifests."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["justice-linkage-public-key"] = "justice-linkage-public-key"
    version: Literal[1] = 1
    agency: str
    created_at: datetime
    key_id: str
    public_key: str  # raw 32 bytes, base64


def _derive_wrapping_key(passphrase: str, kdf: KdfParams) -> bytes:
    return Scrypt(salt=_unb64(kdf.salt), length=32, n=2**kdf.log2_n, r=kdf.r, p=kdf.p).derive(
        passphrase.encode("utf-8")
    )


def _encrypt(
    secret: bytes, *, kind, owner: str, key_id: str, passphrase: str, log2_n: int
) -> EncryptedKeyFile:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise KeyFileError(f"passphrase too short: use at least {MIN_PASSPHRASE_CHARS} characters")
    kdf = KdfParams(log2_n=log2_n, salt=_b64(os.urandom(16)))
    nonce = os.urandom(12)
    envelope = EncryptedKeyFile(
        kind=kind,
        owner=owner,
        created_at=datetime.now(UTC).replace(microsecond=0),
        key_id=key_id,
        kdf=kdf,
        nonce=_b64(nonce),
        ciphertext="",
    )
    sealed = AESGCM(_derive_wrapping_key(passphrase, kdf)).encrypt(nonce, secret, envelope.header_bytes())
    return envelope.model_copy(update={"ciphertext": _b64(sealed)})


def check_key_file_mode(path: Path) -> None:
    """Refuse a key file that anyone but its owner can read or write, as ssh does for private keys.

    POSIX only: on Windows, modes do not express file access (ACLs do), and this check is skipped.
    """
    if os.name != "posix":
        return
    try:
        mode = Path(path).stat().st_mode & 0o777
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: permissions {mode:04o} are too open: a key file must be accessible by its owner "
            f"only. Run: chmod 600 '{path}'"
        )


def _read_envelope(path: Path, kind: str) -> EncryptedKeyFile:
    check_key_file_mode(path)
    try:
        envelope = EncryptedKeyFile.model_validate_json(Path(path).read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    except (OSError, ValidationError, ValueError):
        raise KeyFileError(f"{path}: not a justice-linkage key file (unreadable or malformed)") from None
    if envelope.kind != kind:
        raise KeyFileError(f"{path}: this is a {envelope.kind} key file, expected a {kind} key file")
    return envelope


def _decrypt(path: Path, envelope: EncryptedKeyFile, passphrase: str) -> bytes:
    try:
        key = _derive_wrapping_key(passphrase, envelope.kdf)
        return AESGCM(key).decrypt(
            _unb64(envelope.nonce), _unb64(envelope.ciphertext), envelope.header_bytes()
        )
    except (InvalidTag, ValueError):
        raise KeyFileError(f"{path}: wrong passphrase, or the key file has been altered") from None


def _write_new(path: Path, data: bytes, *, force: bool) -> None:
    if path.exists() and not force:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key (use --force)")
    atomic_write_bytes(path, data, mode=0o600)


# --- project key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectKey:
    """The decrypted project secret. Its repr never shows the secret."""

    project: str
    created_at: datetime
    secret: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """HMAC of a fixed label: identifies the key without revealing it (32 hex digits)."""
        return hmac.new(self.secret, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:32]

    def subkey(self, purpose: Purpose) -> bytes:
        """HKDF-SHA256 subkey for one purpose (names, dates, postcodes, ...)."""
        info = f"justice-linkage/token-spec-v{TOKEN_SPEC_VERSION}/{purpose.value}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(self.secret)

    def subkeys(self) -> dict[Purpose, bytes]:
        return {p: self.subkey(p) for p in Purpose}


def format_fingerprint(fp: str) -> str:
    """Group a fingerprint for reading aloud: 8 groups of 4 hex digits."""
    return "-".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def new_project_key(
    project: str, out: Path, passphrase: str, *, log2_n: int = DEFAULT_SCRYPT_LOG2_N, force: bool = False
) -> ProjectKey:
    """Make a fresh 256-bit project key and write it encrypted to ``out``."""
    key = ProjectKey(project=project, created_at=datetime.now(UTC), secret=secrets.token_bytes(KEY_BYTES))
    envelope = _encrypt(
        key.secret,
        kind="project",
        owner=project,
        key_id=key.fingerprint,
        passphrase=passphrase,
        log2_n=log2_n,
    )
    _write_new(Path(out), envelope.model_dump_json(indent=2).encode(), force=force)
    return ProjectKey(project=project, created_at=envelope.created_at, secret=key.secret)


def load_project_key(path: Path, passphrase: str) -> ProjectKey:
    """Decrypt a project key file; a wrong passphrase or an edited file is a KeyFileError."""
    envelope = _read_envelope(Path(path), "project")
    secret = _decrypt(Path(path), envelope, passphrase)
    key = ProjectKey(project=envelope.owner, created_at=envelope.created_at, secret=secret)
    if not hmac.compare_digest(key.fingerprint, envelope.key_id):
        raise KeyFileError(f"{path}: key does not match the fingerprint recorded in the file")
    return key


# --- signing keys --------------------------------------------------------------------------------


def public_key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    agency: str
    key_id: str
    private: Ed25519PrivateKey = field(repr=False)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@dataclass(frozen=True)
class TrustedKey:
    agency: str
    key_id: str
    public: Ed25519PublicKey = field(repr=False)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def new_signing_key(
    agency: str, out_dir: Path, passphrase: str, *, log2_n: int = DEFAULT_SCRYPT_LOG2_N, force: bool = False
) -> tuple[Path, Path, str]:
    """Make an Ed25519 pair: ``<agency>.signing.key`` (encrypted) and ``<agency>.signing.pub``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    key_id = public_key_id(private.public_key())
    envelope = _encrypt(
        private.private_bytes_raw(),
        kind="signing-private",
        owner=agency,
        key_id=key_id,
        passphrase=passphrase,
        log2_n=log2_n,
    )
    pub = PublicKeyFile(
        agency=agency,
        created_at=envelope.created_at,
        key_id=key_id,
        public_key=_b64(private.public_key().public_bytes_raw()),
    )
    key_path, pub_path = out_dir / f"{agency}.signing.key", out_dir / f"{agency}.signing.pub"
    if pub_path.exists() and not force:
        raise KeyFileError(f"{pub_path}: already exists; refusing to overwrite a key (use --force)")
    _write_new(key_path, envelope.model_dump_json(indent=2).encode(), force=force)
    atomic_write_bytes(pub_path, pub.model_dump_json(indent=2).encode(), mode=0o644)
    return key_path, pub_path, key_id


def load_signing_key(path: Path, passphrase: str) -> SigningKey:
    envelope = _read_envelope(Path(path), "signing-private")
    private = Ed25519PrivateKey.from_private_bytes(_decrypt(Path(path), envelope, passphrase))
    if public_key_id(private.public_key()) != envelope.key_id:
        raise KeyFileError(f"{path}: key does not match the key id recorded in the file")
    return SigningKey(agency=envelope.owner, key_id=envelope.key_id, private=private)


def load_trusted_keys(paths: list[Path]) -> dict[str, TrustedKey]:
    """Read public key files (or every ``*.signing.pub`` in a directory), indexed by key id."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.signing.pub")) if p.is_dir() else [p])
    trusted: dict[str, TrustedKey] = {}
    for f in files:
        try:
            pub = PublicKeyFile.model_validate_json(f.read_bytes())
            public = Ed25519PublicKey.from_public_bytes(_unb64(pub.public_key))
        except (OSError, ValidationError, ValueError):
            raise KeyFileError(f"{f}: not a justice-linkage public key file") from None
        if public_key_id(public) != pub.key_id:
            raise KeyFileError(f"{f}: public key does not match its key id")
        trusted[pub.key_id] = TrustedKey(agency=pub.agency, key_id=pub.key_id, public=public)
    return trusted
