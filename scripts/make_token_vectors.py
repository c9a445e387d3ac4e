"""Regenerate tests/vectors/token_spec_v1.json: raw value -> standard form -> tokens under a fixed key.

Run only when the token spec changes on purpose (and bump TOKEN_SPEC_VERSION): the vectors are
the contract any reimplementation must reproduce, and tests/test_token_vectors.py pins them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from linkage.keys import ProjectKey
from linkage.tokens import standardise as st
from linkage.tokens.spec import TOKEN_SPEC_VERSION, Purpose
from linkage.tokens.tokenise import Tokeniser, canonical_forename

OUT = Path(__file__).resolve().parents[1] / "tests" / "vectors" / f"token_spec_v{TOKEN_SPEC_VERSION}.json"
KEY = bytes(range(32))  # a published test key: never use it for real data

FORENAMES = [
    "Robert James",
    "  bob ",
    "Zoë",
    "MR. Seán-Paul",
    "Mohamed",
    "KATE",
    "d'Arcy",
    "Ólafur Þór",
    "",
    "Dr",
]
SURNAMES = ["O'Brien", "Smith-Jones", "  van der  Berg ", "MÜLLER", "Featherstonehaugh Jr", "Ng"]
DATES = [
    ("05/03/1990", "%d/%m/%Y"),
    ("1990-03-05", "%Y-%m-%d"),
    ("05-Mar-1990", "%d-%b-%Y"),
    ("19901231", "%Y%m%d"),
    ("07/07/2001", "%d/%m/%Y"),
]
POSTCODES = ["sw1a1aa", "SW1A 1AA", " m1  1ae ", "EC1A 1BB", "B33 8TH", "GIR 0AA", "CR2"]
PNCS = ["2001/0012345H", "01/12345H", "1999/0456789Q"]
CASE_REFS = ["01YE0123456", "01-ye-0123456 "]


def build() -> dict:
    key = ProjectKey("vectors", datetime(2026, 1, 1, tzinfo=UTC), KEY)
    tok = Tokeniser(key.subkeys())
    vectors: list[dict] = []

    def add(kind: str, raw: str, standard: dict, tokens: dict) -> None:
        vectors.append({"type": kind, "raw": raw, "standard": standard, "tokens": tokens})

    for raw in FORENAMES:
        parts = st.forename_parts([raw])
        first = parts[0] if parts else None
        standard = {
            "parts": parts,
            "canonical": first and canonical_forename(first),
            "phonetic": first and st.phonetic(first),
        }
        add("forenames", raw, standard, tok.forename_tokens(parts))
    for raw in SURNAMES:
        parts = st.surname_parts(raw)
        add(
            "surname",
            raw,
            {"parts": parts, "phonetic": st.phonetic("".join(parts))},
            tok.surname_tokens(parts),
        )
    for raw, fmt in DATES:
        d = st.parse_date(raw, [fmt])
        swap = st.swapped_date(d)
        standard = {"format": fmt, "iso": d.isoformat(), "swapped": swap.isoformat() if swap else None}
        add("date_of_birth", raw, standard, tok.dob_tokens(d))
    for raw in POSTCODES:
        inward, outward = st.standardise_postcode(raw)
        add("postcode", raw, {"outward": outward, "inward": inward}, tok.postcode_tokens(inward, outward))
    for raw in PNCS:
        canonical = st.standardise_pnc(raw)
        add("pnc", raw, {"canonical": canonical}, {"pnc": tok.pnc_token(canonical)})
    for raw in CASE_REFS:
        ref = st.standardise_reference(raw)
        add("case_reference", raw, {"canonical": ref}, {"case_ref": tok.case_ref_token(ref)})
    for agency in ("police", "court"):
        add("record_id", "CR0001", {"agency": agency}, {"record_key": tok.record_key(agency, "CR0001")})
    return {
        "token_spec_version": TOKEN_SPEC_VERSION,
        "project_key_hex": KEY.hex(),
        "subkeys_hex": {p.value: key.subkey(p).hex() for p in Purpose},
        "fingerprint": key.fingerprint,
        "formula": "token = int.from_bytes(HMAC-SHA256(subkey, family || 0x1F || utf8(value))[:8], 'big', "
        "signed=True); families and values: docs/token-spec.md",
        "vectors": vectors,
    }


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
