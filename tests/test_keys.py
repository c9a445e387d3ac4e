"""Project and signing keys: encryption at rest, wrong passphrase, tampering, no secret leaks."""

from __future__ import annotations

import base64
import json

import pytest

from conftest import FAST_KDF, PASSPHRASE
from linkage.errors import KeyFileError
from linkage.keys import (
    load_project_key,
    load_signing_key,
    load_trusted_keys,
    new_project_key,
    new_signing_key,
)
from linkage.tokens.spec import Purpose


def test_round_trip_and_fingerprint(tmp_path):
    made = new_project_key("proj", tmp_path / "p.key", PASSPHRASE, log2_n=FAST_KDF)
    loaded = load_project_key(tmp_path / "p.key", PASSPHRASE)
    assert loaded.secret == made.secret and len(made.secret) == 32
    assert loaded.fingerprint == made.fingerprint and len(made.fingerprint) == 32
    assert loaded.project == "proj"
    assert (tmp_path / "p.key").stat().st_mode & 0o777 == 0o600


def test_secret_never_in_file_or_repr(tmp_path):
    key = new_project_key("proj", tmp_path / "p.key", PASSPHRASE, log2_n=FAST_KDF)
    text = (tmp_path / "p.key").read_bytes()
    for form in (key.secret, key.secret.hex().encode(), base64.b64encode(key.secret)):
        assert form not in text
    assert PASSPHRASE.encode() not in text
    assert key.secret.hex() not in repr(key) and str(key.secret) not in repr(key)
    for purpose in Purpose:
        assert key.subkey(purpose).hex() not in text.decode()


def test_wrong_passphrase_is_a_clear_error(tmp_path):
    new_project_key("proj", tmp_path / "p.key", PASSPHRASE, log2_n=FAST_KDF)
    with pytest.raises(KeyFileError, match="wrong passphrase") as exc:
        load_project_key(tmp_path / "p.key", "not the passphrase at all")
    assert "not the passphrase" not in str(exc.value)


@pytest.mark.parametrize(
    "field, value", [("owner", "other-project"), ("key_id", "0" * 32), ("created_at", "2020-01-01T00:00:00Z")]
)
def test_tampered_header_fails(tmp_path, field, value):
    path = tmp_path / "p.key"
    new_project_key("proj", path, PASSPHRASE, log2_n=FAST_KDF)
    doc = json.loads(path.read_text())
    doc[field] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError):
        load_project_key(path, PASSPHRASE)


def test_refuses_to_overwrite_and_short_passphrase(tmp_path):
    new_project_key("proj", tmp_path / "p.key", PASSPHRASE, log2_n=FAST_KDF)
    with pytest.raises(KeyFileError, match="already exists"):
        new_project_key("proj", tmp_path / "p.key", PASSPHRASE, log2_n=FAST_KDF)
    with pytest.raises(KeyFileError, match="too short"):
        new_project_key("proj", tmp_path / "q.key", "short", log2_n=FAST_KDF)


def test_not_a_key_file(tmp_path):
    (tmp_path / "x.key").write_text("hello")
    (tmp_path / "x.key").chmod(0o600)
    with pytest.raises(KeyFileError, match="not a justice-linkage key file"):
        load_project_key(tmp_path / "x.key", PASSPHRASE)


def test_two_keys_give_different_subkeys_and_fingerprints(tmp_path):
    a = new_project_key("a", tmp_path / "a.key", PASSPHRASE, log2_n=FAST_KDF)
    b = new_project_key("b", tmp_path / "b.key", PASSPHRASE, log2_n=FAST_KDF)
    assert a.fingerprint != b.fingerprint
    assert a.subkey(Purpose.names) != b.subkey(Purpose.names)


def test_signing_keys(tmp_path):
    key_path, _pub_path, key_id = new_signing_key("police", tmp_path, PASSPHRASE, log2_n=FAST_KDF)
    signer = load_signing_key(key_path, PASSPHRASE)
    trusted = load_trusted_keys([tmp_path])
    assert signer.key_id == key_id and trusted[key_id].agency == "police"
    sig = signer.sign(b"manifest bytes")
    assert trusted[key_id].verify(sig, b"manifest bytes")
    assert not trusted[key_id].verify(sig, b"manifest bytes, edited")
    with pytest.raises(KeyFileError, match="signing-private key file, expected a project"):
        load_project_key(key_path, PASSPHRASE)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_signing_key(key_path, "wrong passphrase entirely")
