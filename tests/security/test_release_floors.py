"""The release enforces its own floors (issue 14, item 2): threshold >= 10, rounding base >= 5,
dominance n >= 2 with k <= 0.9, p% >= 0.10, zeros disclosive; below them only with
--allow-below-floors, which the run log, the bundle's metadata and its report all show."""

from __future__ import annotations

import json

import pytest

from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from test_release import POLICY, write_policy

LOOSE = {
    "threshold": ("threshold: 10", "threshold: 9", "sdc.threshold 9 < 10"),
    "rounding": ("rounding_base: 5", "rounding_base: 4", "sdc.rounding_base 4 < 5"),
    "dominance-n": (
        "rounding_base: 5",
        "rounding_base: 5, dominance: {n: 1, k: 0.9}",
        "sdc.dominance.n 1 < 2",
    ),
    "dominance-k": (
        "rounding_base: 5",
        "rounding_base: 5, dominance: {n: 2, k: 0.95}",
        "sdc.dominance.k 0.95 > 0.9",
    ),
    "p-percent": ("rounding_base: 5", "rounding_base: 5, p_percent: 0.05", "sdc.p_percent 0.05 < 0.1"),
    "zeros": (
        "rounding_base: 5",
        "rounding_base: 5, zeros_disclosive: false",
        "sdc.zeros_disclosive is false",
    ),
}


@pytest.mark.parametrize("setting", LOOSE, ids=list(LOOSE))
def test_below_a_floor_is_refused_without_the_override(setting, linked_run, tmp_path, run_cli, run_log):  # noqa: F811
    old, new, words = LOOSE[setting]
    assert old in POLICY
    policy = write_policy(tmp_path, POLICY.replace(old, new, 1))
    out = tmp_path / "out" / "r1"
    refused = run_cli("release", "--run", linked_run.run, "--policy", policy, "--out", out)
    assert refused.exit_code == 1 and words in refused.stderr and "--allow-below-floors" in refused.stderr
    assert not (tmp_path / "out").exists()
    assert json.loads(run_log.read_text().splitlines()[-1])["outcome"] == "refused"


def test_the_override_is_logged_and_printed_in_the_bundle(linked_run, tmp_path, run_cli, run_log):  # noqa: F811
    policy = write_policy(tmp_path, POLICY.replace("threshold: 10", "threshold: 9", 1))
    out = tmp_path / "out" / "r1"
    result = run_cli(
        "release", "--run", linked_run.run, "--policy", policy, "--out", out, "--allow-below-floors", "-q"
    )
    assert result.exit_code == 0, result.stderr
    entry = json.loads(run_log.read_text().splitlines()[-1])
    assert entry["command"] == "release --allow-below-floors" and entry["outcome"] == "ok"
    meta = json.loads((out / "release.json").read_text())
    assert meta["floors_overridden"] == ["sdc.threshold 9 < 10"]
    assert (
        json.loads((out / "tables" / "funnel.json").read_text())["floors_overridden"]
        == meta["floors_overridden"]
    )
    assert "floors overridden" in (out / "report.html").read_text()
