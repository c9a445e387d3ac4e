"""`linkage verify` accepts intact extracts and refuses every kind of tampering or inconsistency."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import (
    CONFIGS,
    CPS_HEADER,
    FAST_KDF,
    PASSPHRASE,
    POLICE_HEADER,
    POLICE_ROWS,
    agency_config,
    write_csv,
)
from linkage.errors import ConfigError
from linkage.extract.manifest import Manifest, read_manifest, write_manifest
from linkage.extract.pseudonymise import pseudonymise
from linkage.extract.verify import verify_extracts
from linkage.keys import load_trusted_keys, new_project_key

CPS_ROWS = [
    [
        "CPS1",
        "01YE0123456",
        "SMITH, John",
        "1971-03-05",
        "M",
        "SW1A 1AA",
        "",
        "London North",
        "2021-03-01",
        "Charge",
        "2021-03-02",
        "008/01",
        "1",
    ]
]


@pytest.fixture
def extracts(keys, tmp_path) -> Path:
    """A secure-zone folder with a signed police and a signed prosecution extract."""
    out = tmp_path / "extracts"
    raw = tmp_path / "raw"
    raw.mkdir()
    inputs = {
        "police": write_csv(raw / "police.csv", POLICE_HEADER, POLICE_ROWS),
        "prosecution": write_csv(raw / "cps.csv", CPS_HEADER, CPS_ROWS, delimiter="|"),
    }
    for agency, path in inputs.items():
        pseudonymise(
            agency_config(agency),
            CONFIGS / f"{agency}.yaml",
            keys.project,
            path,
            out,
            signing_key=keys.signing(agency),
            workers=1,
        )
    return out


@pytest.fixture
def trusted(keys):
    return load_trusted_keys([keys.signing_dir])


def problems(extracts: Path, trusted, **kw) -> list[str]:
    return verify_extracts([extracts], trusted, **kw).reasons()


def test_intact_extracts_verify(extracts, trusted, keys):
    report = verify_extracts([extracts], trusted, expected_fingerprint=keys.project.fingerprint)
    assert report.ok, report.reasons()
    assert sorted(e.manifest.agency for e in report.extracts) == ["police", "prosecution"]


def test_tampered_parquet(extracts, trusted):
    path = extracts / "police.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert any("SHA-256 differs" in p for p in problems(extracts, trusted))


def test_tampered_manifest(extracts, trusted):
    path = extracts / "police.manifest.json"
    doc = json.loads(path.read_text())
    doc["counts"]["rejected"] += 1
    doc["counts"]["read"] += 1
    path.write_text(json.dumps(doc, indent=2) + "\n")
    assert any("signature does not match" in p for p in problems(extracts, trusted))


def test_missing_signature_and_untrusted_key(extracts, trusted, keys, tmp_path):
    (extracts / "prosecution.manifest.json.sig").unlink()
    assert any("not signed" in p for p in problems(extracts, trusted))
    only_police = {k: v for k, v in trusted.items() if v.agency != "police"}
    assert any("not among the trusted" in p for p in problems(extracts, only_police))


def test_signed_with_another_agency_key(extracts, trusted, keys):
    path = extracts / "police.manifest.json"
    manifest = Manifest.model_validate_json(path.read_bytes())
    write_manifest(manifest, path, keys.signing("court"))
    assert any("claims to be 'police'" in p for p in problems(extracts, trusted))


def test_extracts_made_with_different_keys(extracts, trusted, keys, tmp_path):
    other = new_project_key("other", tmp_path / "other.key", PASSPHRASE, log2_n=FAST_KDF)
    raw = write_csv(tmp_path / "cps2.csv", CPS_HEADER, CPS_ROWS, delimiter="|")
    pseudonymise(
        agency_config("prosecution"),
        CONFIGS / "prosecution.yaml",
        other,
        raw,
        extracts,
        signing_key=keys.signing("prosecution"),
        workers=1,
    )
    found = problems(extracts, trusted)
    assert any("different project keys" in p for p in found)
    assert any(
        "expected fingerprint" in p
        for p in problems(extracts, trusted, expected_fingerprint=keys.project.fingerprint)
    )


def test_mixed_token_spec_versions(extracts, trusted, keys):
    path = extracts / "prosecution.manifest.json"
    manifest = Manifest.model_validate_json(path.read_bytes())
    write_manifest(manifest.model_copy(update={"token_spec_version": "3"}), path, keys.signing("prosecution"))
    found = problems(extracts, trusted)
    assert any("different token spec versions" in p and "re-pseudonymise" in p for p in found)
    assert any("not supported" in p for p in found)


def test_v1_manifest_is_refused_with_the_migration_hint(extracts, trusted):
    """A v1 manifest (older layout) next to v2 ones: refused by name, with what to do."""
    path = extracts / "prosecution.manifest.json"
    data = json.loads(path.read_bytes())
    data |= {"manifest_version": 1, "token_spec_version": "1", "values_blanked": {"postcode": 3}}
    path.write_text(json.dumps(data))
    found = problems(extracts, trusted)
    assert any("token spec version 1 is not supported" in p and "re-pseudonymise" in p for p in found)
    assert any("different token spec versions ['1', '2']" in p for p in found)


def test_warns_on_an_extract_older_than_one_already_linked(extracts, trusted, tmp_path):
    from datetime import timedelta

    from linkage.runlog import EntryBuilder, append

    path = extracts / "police.manifest.json"
    log = tmp_path / "log.jsonl"
    builder = EntryBuilder("run", [], [path], None)
    append(builder, "ok", path=log)
    assert verify_extracts([extracts], trusted, run_log=log).warnings == []
    newer, _ = read_manifest(path)
    archived = tmp_path / "archive" / "police.manifest.json"
    archived.parent.mkdir()
    archived.write_bytes(
        newer.model_copy(update={"created_at": newer.created_at + timedelta(days=30)}).to_bytes()
    )
    linked = EntryBuilder("run", [], [], None)
    linked.add_output(archived)  # the run folder's copy of the manifest it linked
    append(linked, "ok", path=log)
    (warning,) = verify_extracts([extracts], trusted, run_log=log).warnings
    assert (
        warning.startswith("police: this extract") and "older than one this project already linked" in warning
    )


def test_an_extract_with_repeated_record_keys_is_refused(extracts, trusted, keys):
    """Written by a version that only counted them (`duplicate_record_keys` in the manifest)."""
    path = extracts / "police.manifest.json"
    manifest = Manifest.model_validate_json(path.read_bytes())
    write_manifest(manifest.model_copy(update={"duplicate_record_keys": 3}), path, keys.signing("police"))
    found = problems(extracts, trusted)
    assert any("3 record(s) share a record key" in p and "re-pseudonymise" in p for p in found)


def test_missing_data_file_and_row_count(extracts, trusted, keys):
    (extracts / "police.parquet").unlink()
    assert any("is missing" in p for p in problems(extracts, trusted))


def test_two_extracts_for_one_agency(extracts, trusted, tmp_path):
    second = tmp_path / "again"
    second.mkdir()
    for name in ("police.parquet", "police.manifest.json", "police.manifest.json.sig"):
        shutil.copy(extracts / name, second / name)
    report = verify_extracts([extracts, second], trusted)
    assert any("more than one extract" in p for p in report.problems)


def test_no_trusted_keys_is_a_usage_error(extracts):
    with pytest.raises(ConfigError, match="no trusted public keys"):
        verify_extracts([extracts], {})


def test_cli_exit_codes(extracts, keys, run_cli):
    ok = run_cli("verify", extracts, "--trusted-keys", keys.signing_dir, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    (extracts / "police.parquet").write_bytes(b"not parquet")
    bad = run_cli("verify", extracts, "--trusted-keys", keys.signing_dir)
    assert bad.exit_code == 1 and "SHA-256 differs" in bad.stderr
    usage = run_cli("verify", extracts)
    assert usage.exit_code == 2 and "trusted" in usage.stderr
