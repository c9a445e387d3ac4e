"""Identical inputs give byte-identical tables and table metadata whatever PYTHONHASHSEED or the
DuckDB thread count (issue 14, item 3): each release runs in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from test_release import write_policy

# A policy with many small cells, so secondary suppression has ties to break.
POLICY = """
policy_version: 1
title: determinism
tables:
  - name: by_force_year
    title: funnel by force, year, age band
    where: {police_record: "Yes"}
    measures: [recorded, cps_referral, convicted]
    by: [force_area, recorded_year, age_band]
  - name: by_sex_ethnicity
    title: funnel by sex and ethnicity
    where: {police_record: "Yes"}
    measures: [recorded, cps_referral, convicted]
    by: [suspect_sex, ethnicity, da_flag]
  - name: sentencing
    title: sentencing
    where: {sentenced: "Yes"}
    measures: [journeys]
    by: [sentence_type, da_flag]
    statistics: [custody_days]
"""


def release(run: Path, policy: Path, out: Path, seed: int, threads: int) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "LINKAGE_LOG": str(out.parent / "log.jsonl")}
    args = ["release", "--run", run, "--policy", policy, "--out", out, "--threads", str(threads), "-q"]
    subprocess.run([sys.executable, "-m", "linkage", *map(str, args)], env=env, check=True)
    return {p.name: p.read_bytes() for p in sorted((out / "tables").iterdir())}


@pytest.mark.slow
def test_tables_identical_across_hash_seeds_and_threads(linked_run, tmp_path):  # noqa: F811
    policy = write_policy(tmp_path, POLICY)
    runs = [(0, 1), (1, 2), (2, 2)]
    outputs = [release(linked_run.run, policy, tmp_path / f"r{s}-{t}", s, t) for s, t in runs]
    assert len(outputs[0]) == 6
    for other in outputs[1:]:
        assert other == outputs[0]
