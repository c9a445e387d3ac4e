#!/usr/bin/env bash
# The whole chain on synthetic data, as the three zones would run it (see README).
# Called by `make demo`; DEMO (output folder), PERSONS and BIN (venv bin) come from the Makefile.
set -euo pipefail
DEMO=${DEMO:-demo}
PERSONS=${PERSONS:-2000}
BIN=${BIN:-.venv/bin}
linkage() { "$BIN/linkage" "$@"; }

# Demo-only passphrases. Real deployments type them at a prompt or inject them from a secret store.
export LINKAGE_KEY_PASSPHRASE="demo passphrase - not for real data"
export LINKAGE_LOG="$DEMO/linkage-log.jsonl"
rm -rf "$DEMO"
mkdir -p "$DEMO"/{raw,custodian,agency-keys,secure/extracts,secure/trusted-keys}

echo "== 1. synthetic raw extracts with ground truth ($PERSONS persons)"
linkage synth --persons "$PERSONS" --seed 42 --out "$DEMO/raw"

echo "== 2. key custodian: project key; each agency: a signing key pair"
linkage keys new --project demo --out "$DEMO/custodian/project.key"
for agency in police prosecution court prison probation; do
  linkage keys signing-new --agency "$agency" --out "$DEMO/agency-keys" --quiet
  cp "$DEMO/agency-keys/$agency.signing.pub" "$DEMO/secure/trusted-keys/"
done

echo "== 3. agency zone: pseudonymise each extract (rejects stay beside the raw file)"
for agency in police prosecution court prison probation; do
  linkage pseudonymise --config "configs/agencies/$agency.yaml" --key "$DEMO/custodian/project.key" \
    --input "$DEMO/raw/$agency.csv" --out "$DEMO/secure/extracts" \
    --signing-key "$DEMO/agency-keys/$agency.signing.key"
done

echo "== 4. secure zone: verify the extracts (no key here: only the agencies' public keys)"
linkage verify "$DEMO/secure/extracts" --trusted-keys "$DEMO/secure/trusted-keys"

echo "== 5. secure zone: probabilistic linkage (Splink over DuckDB)"
linkage run --config configs/linkage.yaml --extracts "$DEMO/secure/extracts" \
  --trusted-keys "$DEMO/secure/trusted-keys" --out "$DEMO/secure/runs/demo"

echo "== 6. secure zone: case journeys (microdata: never leaves the secure environment)"
linkage journeys --run "$DEMO/secure/runs/demo"
echo "   accuracy against the synthetic truth (only possible on synthetic data):"
linkage evaluate --run "$DEMO/secure/runs/demo" --truth "$DEMO/raw/truth"

echo "== 7. the only door out: aggregate tables under disclosure control"
linkage release --run "$DEMO/secure/runs/demo" --policy configs/release.yaml --out "$DEMO/release/demo-1"

echo "== 8. governance: audit every config and check the run log"
linkage audit configs/ --out "$DEMO/audit.html"
linkage audit log "$LINKAGE_LOG"
echo
echo "demo outputs in $DEMO/:"
echo "  published release report:  $DEMO/release/demo-1/report.html"
echo "  linkage quality report:    $DEMO/secure/runs/demo/quality.html"
echo "  governance audit:          $DEMO/audit.html"
