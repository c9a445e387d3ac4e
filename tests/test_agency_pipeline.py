"""The agency side end to end on synthetic data: synth -> pseudonymise x4 -> verify.

Every generated CSV is accepted by its demo config with zero rejects, deliberately bad rows all land
in the rejects files, and no raw identifier from the inputs appears in any output byte.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import CONFIGS, agency_config
from linkage.extract.pseudonymise import pseudonymise
from linkage.extract.verify import verify_extracts
from linkage.keys import load_trusted_keys
from linkage.synth import generate

AGENCIES = ("police", "prosecution", "court", "prison", "probation")


def pseudonymise_all(keys, raw: Path, out: Path, **kw) -> dict:
    return {
        a: pseudonymise(
            agency_config(a),
            CONFIGS / f"{a}.yaml",
            keys.project,
            raw / f"{a}.csv",
            out,
            signing_key=keys.signing(a),
            workers=2,
            **kw,
        )
        for a in AGENCIES
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory, keys):
    raw = tmp_path_factory.mktemp("raw")
    generate(1500, 11, raw)
    out = raw.parent / (raw.name + "-extracts")
    return raw, out, pseudonymise_all(keys, raw, out)


def test_generated_extracts_have_zero_rejects(clean):
    raw, _, results = clean
    truth = pq.read_table(raw / "truth" / "records.parquet")
    for agency, result in results.items():
        m = result.manifest_data
        assert m.counts.rejected == 0, (agency, m.rejects_by_reason)
        roles = Counter(
            r
            for d, r in zip(*truth.select(["source_dataset", "role"]).to_pydict().values(), strict=True)
            if d == agency
        )
        assert m.counts.written == roles["subject"]
        # every victim the synthetic police rows name keeps a usable identifier: a mention each
        assert m.counts.victim_mentions == roles["victim"]
        assert m.duplicate_record_keys == 0


def test_extracts_verify(clean, keys):
    _, out, _ = clean
    report = verify_extracts(
        [out], load_trusted_keys([keys.signing_dir]), expected_fingerprint=keys.project.fingerprint
    )
    assert report.ok, report.reasons()


def test_source_rows_join_to_truth(clean):
    raw, _, results = clean
    truth = pq.read_table(raw / "truth" / "records.parquet").to_pylist()
    for agency, result in results.items():
        rows = set(pq.read_table(result.parquet).column("source_row").to_pylist())
        assert rows == {r["source_row"] for r in truth if r["source_dataset"] == agency}


def test_no_raw_identifier_in_outputs(clean):
    raw, out, _ = clean
    needles: set[str] = set()
    with open(raw / "police.csv", newline="", encoding="utf-8") as fh:
        for i, rec in enumerate(csv.DictReader(fh)):
            if i >= 300:
                break
            for col in ("surname", "dob", "postcode", "pnc_id", "urn", "crime_ref"):
                value = rec[col].strip()
                if len(value) >= 5:
                    needles.add(value)
            if len(rec["surname"]) >= 5:
                needles.add(rec["surname"].upper())
    # a surname may legitimately equal a category value (White, Black): those are not leaks
    categories = {
        v
        for a in AGENCIES
        for attr in agency_config(a).attributes
        if attr.type == "category"
        for v in [*(attr.values or []), *(v for v in (attr.map or {}).values() if v)]
    }
    needles -= {c for c in categories} | {c.upper() for c in categories}
    blobs = [p.read_bytes() for p in out.iterdir()]
    values = set()
    for p in out.glob("*.parquet"):
        for col in pq.read_table(p).columns:
            values.update(str(v) for v in col.to_pylist())
    for needle in needles:
        assert needle not in values
        assert not any(needle.encode() in blob for blob in blobs), needle


def test_bad_rows_all_land_in_rejects(tmp_path, keys):
    raw = tmp_path / "raw"
    generate(800, 5, raw, bad_rows=4)
    results = pseudonymise_all(keys, raw, tmp_path / "extracts", max_reject_rate=0.05)
    bad = pq.read_table(raw / "truth" / "bad_rows.parquet").to_pylist()
    for agency, result in results.items():
        injected = {b["source_row"] for b in bad if b["source_dataset"] == agency}
        with open(result.rejects, newline="", encoding="utf-8") as fh:
            rejected = {int(r["source_row"]) for r in csv.DictReader(fh) if r["action"] == "row rejected"}
        assert rejected == injected, agency
        m = result.manifest_data
        assert m.counts.read == m.counts.written + m.counts.rejected
        assert result.rejects.parent == raw  # beside the input, inside the agency zone


def test_no_probation_identifier_in_outputs(clean):
    """Probation's own identifiers (the person's CRN, the whole name, DOB, PNC, URN, order id) never leave
    in the clear: not in the extract's values, not in any byte of any output file."""
    raw, out, _ = clean
    needles: set[str] = set()
    with open(raw / "probation.csv", newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            for col in ("offender_name", "offender_dob", "crn", "pnc_ref", "court_urn", "event_id"):
                if len(value := rec[col].strip()) >= 5 and value != "Not recorded":
                    needles.add(value)
            surname = " ".join(w for w in rec["offender_name"].split() if w.isupper())
            if len(surname) >= 5:
                needles.add(surname)
    assert any(len(n) == 7 and n[0].isalpha() and n[1:].isdigit() for n in needles)  # CRNs are checked
    blobs = [p.read_bytes() for p in out.iterdir()]
    values = {
        str(v) for p in out.glob("*.parquet") for col in pq.read_table(p).columns for v in col.to_pylist()
    }
    for needle in needles:
        assert needle not in values, needle
        assert not any(needle.encode() in blob for blob in blobs), needle
