"""clkhash + anonlink side of scripts/bench_accuracy.py; runs in a venv of its own (clkhash pins
cryptography<41, which cannot share a venv with this project).

    python bench_accuracy_clk.py PLAIN.parquet TRUTH.parquet '[0.7, 0.8]'

Encodes the first two sources' records (bench_accuracy's normalised plaintext schema) as 1024-bit
CLKs (bigram Bloom filters, double hashing, the schema layout of clkhash's own example), finds
candidate pairs by Dice similarity and solves them greedily one-to-one; prints pairwise
precision/recall/F1 per Dice threshold as one JSON line.
"""

from __future__ import annotations

import json
import sys
from array import array

import anonlink
import pandas as pd
from clkhash import clk
from clkhash.schema import from_json_dict

FIELDS = ("first_name", "surname", "dob", "postcode", "address", "town", "ssn")
BITS_PER_TOKEN = {
    "first_name": 20,
    "surname": 20,
    "dob": 10,
    "postcode": 10,
    "address": 10,
    "town": 5,
    "ssn": 15,
}
SALT = "SCbL2zHNnmsckfzchsNkZY9XoHk96P/G5nUBrM7ybymlEFsMV6PAeDZCNp3rfNUPCtLDMOGQHG4pCQpfhiHCyA=="


def feature(name: str) -> dict:
    return {
        "identifier": name,
        "format": {"type": "string", "encoding": "utf-8"},
        "hashing": {
            "comparison": {"type": "ngram", "n": 2},
            "strategy": {"bitsPerToken": BITS_PER_TOKEN[name]},
            "hash": {"type": "doubleHash"},
            "missingValue": {"sentinel": ""},
        },
    }


def scores(plain_path: str, truth_path: str, thresholds: list[float]) -> dict:
    plain = pd.read_parquet(plain_path).fillna("")
    sources = sorted(plain["source_dataset"].unique())[:2]
    present = [f for f in FIELDS if (plain[f] != "").any()]
    kdf = {"type": "HKDF", "hash": "SHA256", "salt": SALT, "info": "c2NoZW1hX2V4YW1wbGU=", "keySize": 64}
    schema = from_json_dict(
        {"version": 3, "clkConfig": {"l": 1024, "kdf": kdf}, "features": [feature(f) for f in present]}
    )
    frames = [plain[plain["source_dataset"] == s].sort_values("source_row") for s in sources]
    clks = [clk.generate_clks(f[present].astype(str).values.tolist(), schema, "bench secret") for f in frames]
    truth = pd.read_parquet(truth_path)
    entity = [
        dict(
            zip(
                truth[truth.source_dataset == s].source_row,
                truth[truth.source_dataset == s].person_id,
                strict=True,
            )
        )
        for s in sources
    ]
    rows = [f["source_row"].astype(int).tolist() for f in frames]
    in_both = set(entity[1].values())
    true_pairs = sum(1 for e in entity[0].values() if e in in_both)
    sims, datasets, records = anonlink.candidate_generation.find_candidate_pairs(
        clks, anonlink.similarities.dice_coefficient_accelerated, min(thresholds)
    )
    out = {}
    for t in thresholds:
        keep = [i for i, s in enumerate(sims) if s >= t]
        subset = (
            array(sims.typecode, (sims[i] for i in keep)),
            tuple(array(a.typecode, (a[i] for i in keep)) for a in datasets),
            tuple(array(a.typecode, (a[i] for i in keep)) for a in records),
        )
        tp = predicted = 0
        for group in anonlink.solving.greedy_solve(subset):
            if len(group) == 2:
                (_, i), (_, j) = sorted(group)
                predicted += 1
                tp += entity[0][rows[0][i]] == entity[1][rows[1][j]]
        p = tp / predicted if predicted else 1.0
        r = tp / true_pairs if true_pairs else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[t] = {"precision": round(p, 5), "recall": round(r, 5), "f1": round(f1, 5)}
    return {"fields": present, "scores": out}


if __name__ == "__main__":
    print(json.dumps(scores(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))))
