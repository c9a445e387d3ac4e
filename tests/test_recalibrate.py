"""The model's probabilities checked against a checked id (link/recalibrate.py).

Hand-made scored pairs on an in-memory DuckDB: pairs of police records, each pair given a weight w'
from the evidence other than the PNC id and, where both records hold one, the PNC comparison's own
weight on top (as Splink would add it). Token values are small integers standing for tokens.
"""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
import pytest
from splink import DuckDBAPI

from linkage.config.linkage import LinkageConfig
from linkage.link.backend import Backend
from linkage.link.recalibrate import COLUMN, MIN_LABELLED, fit
from linkage.link.threshold import probability

M_SAME, U_SAME, M_ELSE, U_ELSE = 0.99, 1e-6, 0.01, 1 - 1e-6
SAME_BITS, ELSE_BITS = math.log2(M_SAME / U_SAME), math.log2(M_ELSE / U_ELSE)
MODEL = {
    "comparisons": [
        {
            "output_column_name": "pnc",
            "comparison_levels": [
                {"is_null_level": True},
                {"m_probability": M_SAME, "u_probability": U_SAME},
                {"m_probability": M_ELSE, "u_probability": U_ELSE},
            ],
        }
    ]
}
INPUTS = {"police": "input_police"}


def _config(rules: list | None = None, **auto) -> LinkageConfig:
    return LinkageConfig.model_validate(
        {
            "comparisons": [
                {"name": "pnc", "missing_when": ["pnc"], "levels": [{"label": "same PNC", "equal": ["pnc"]}]}
            ],
            "clustering": {
                "threshold_match_probability": "auto",
                "never_link_different": rules or [{"column": "pnc", "weak_marker": "pnc_weak"}],
                "auto_threshold": auto,
            },
        }
    )


def _backend(pairs: list[tuple[float, str]]) -> Backend:
    """One pair of fresh records per entry: (w', kind) with kind 'same' (one PNC), 'differ' (two valid
    PNCs), 'weak' (two PNCs, one failed its check) or 'one' (the second record has none)."""
    keys, pncs, weak = [], [], []
    columns = ("source_dataset_l", "record_key_l", "source_dataset_r", "record_key_r", "match_weight")
    rows: dict[str, list] = {c: [] for c in (*columns, "match_probability")}
    for i, (w_, kind) in enumerate(pairs):
        a, b = 2 * i + 1, 2 * i + 2
        keys += [a, b]
        pncs += [a, a if kind == "same" else (None if kind == "one" else b)]
        weak += [False, kind == "weak"]
        w = w_ + {"same": SAME_BITS, "one": 0.0}.get(kind, ELSE_BITS)
        for column, value in zip(rows, ("police", a, "police", b, w, probability(w)), strict=True):
            rows[column].append(value)
    con = duckdb.connect()
    con.register(
        "records", pa.table({"record_key": keys, "pnc": pa.array(pncs, pa.int64()), "pnc_weak": weak})
    )
    con.register("scored", pa.table(rows))
    con.execute("CREATE TABLE input_police AS SELECT * FROM records")
    con.execute("CREATE TABLE preds AS SELECT * FROM scored WHERE match_weight >= -5")  # the pair floor
    return Backend(DuckDBAPI(con), con)


def _calibrated(backend: Backend, key: int) -> float:
    return backend.sql(f"SELECT {COLUMN} FROM preds WHERE record_key_l = {key}")[0][0]


def _pairs(n: int, w_: float, same_share: float) -> list[tuple[float, str]]:
    same = round(n * same_share)
    return [(w_, "same")] * same + [(w_, "differ")] * (n - same)


CERTAIN = [(35.0, "same")] * 200  # the other evidence is overwhelming: these say the id is right


def test_the_measured_share_of_same_id_pairs_replaces_the_models_probability():
    # w' 10: the model says 0.999; the id says 80 % of such pairs are one person
    backend = _backend([*_pairs(1500, 10.3, 0.8), *CERTAIN, (10.3, "one"), (10.3, "same")])
    calibration = fit(backend, "preds", INPUTS, _config(), MODEL)
    assert calibration.identifier == "pnc"
    assert calibration.labelled_pairs == 1500 + 200 + 1
    band = next(b for b in calibration.bands if b.match_weight_from == 10)
    assert band.labelled_pairs == 1501 and band.same_id == 1201
    assert band.model_probability == pytest.approx(probability(10.3), abs=1e-6)
    # shrunk towards the model by 50 pseudo-pairs: (1201 + 50 * 0.9992) / 1551
    assert band.measured_probability == pytest.approx((1201 + 50 * probability(10.3)) / 1551, abs=1e-4)
    # a pair where one record has no PNC: the band's measured probability, not the model's 0.9992
    one = 2 * 1700 + 1
    assert _calibrated(backend, one) == pytest.approx(band.measured_probability, abs=1e-3)
    # a pair with the same PNC keeps the PNC's own weight on top: near certain
    assert _calibrated(backend, one + 2) > 0.9999
    # Splink's own scores are untouched
    assert (
        backend.sql("SELECT count(*) FROM preds WHERE match_probability < 0.99 AND record_key_l = 3401")[0][0]
        == 0
    )


def test_the_ids_own_error_rate_is_taken_from_pairs_the_other_evidence_makes_certain():
    certain = [(35.0, "same")] * 198 + [(35.0, "differ")] * 2  # 1 % of certain pairs: two PNCs, one person
    backend = _backend([*_pairs(1500, 10.3, 0.8), *certain])
    calibration = fit(backend, "preds", INPUTS, _config(), MODEL)
    assert calibration.id_error_rate == pytest.approx(0.01)
    band = next(b for b in calibration.bands if b.match_weight_from == 10)
    assert band.measured_probability == pytest.approx((1200 / 0.99 + 50 * probability(10.3)) / 1550, abs=1e-4)


def test_the_measured_probability_never_falls_as_the_evidence_grows():
    backend = _backend([*_pairs(800, 8.5, 0.9), *_pairs(800, 12.5, 0.7), *CERTAIN])
    bands = {
        b.match_weight_from: b.measured_probability
        for b in fit(backend, "preds", INPUTS, _config(), MODEL).bands
    }
    assert bands[8] == pytest.approx(bands[12], abs=1e-9)  # pooled: about 0.8 both
    assert 0.78 < bands[8] < 0.82
    assert bands[35 if 35 in bands else 30] > bands[12]


def test_a_pair_of_different_ids_invisible_under_the_floor_is_not_counted():
    # w' 1 with two different ids scores 1 - 6.6 < -5: such pairs were dropped, so the band is left out
    backend = _backend([*_pairs(1500, 1.5, 0.5), *_pairs(1500, 10.3, 0.8), *CERTAIN])
    calibration = fit(backend, "preds", INPUTS, _config(), MODEL)
    assert calibration.lowest_visible_weight == math.ceil(-5 - ELSE_BITS) == 2
    assert min(b.match_weight_from for b in calibration.bands) == 10


@pytest.mark.parametrize(
    ("pairs", "auto", "why"),
    [
        (_pairs(MIN_LABELLED - 300, 10.3, 0.8), {}, "fewer than"),
        ([*_pairs(1500, 10.3, 0.8), *CERTAIN], {"calibrate_with_ids": False}, "switched off"),
        ([*_pairs(1500, 10.3, 0.8), *[(35.0, "differ")] * 200], {}, "no check"),
        ([(10.3, "weak")] * 1500, {}, "no pair with a checked pnc"),
    ],
)
def test_without_enough_good_labels_the_models_own_probabilities_are_used(pairs, auto, why):
    backend = _backend(pairs)
    calibration = fit(backend, "preds", INPUTS, _config(**auto), MODEL)
    assert calibration.identifier is None and why in calibration.note
    assert (
        backend.sql(f"SELECT count(*) FROM preds WHERE {COLUMN} IS DISTINCT FROM match_probability")[0][0]
        == 0
    )


def test_a_model_trained_without_the_id_comparison_is_a_note_not_a_crash():
    backend = _backend([*_pairs(1500, 10.3, 0.8), *CERTAIN])
    calibration = fit(backend, "preds", INPUTS, _config(), {"comparisons": []})  # `--model` of another config
    assert calibration.identifier is None and "no pnc comparison" in calibration.note
    assert (
        backend.sql(f"SELECT count(*) FROM preds WHERE {COLUMN} IS DISTINCT FROM match_probability")[0][0]
        == 0
    )


def test_a_date_of_birth_rule_is_no_checked_id():
    config = _config([{"column": "dob", "unless_any": ["dob_ym"]}])
    backend = _backend([*_pairs(1500, 10.3, 0.8), *CERTAIN])
    calibration = fit(backend, "preds", INPUTS, config, MODEL)
    assert calibration.identifier is None and "no checked id" in calibration.note
