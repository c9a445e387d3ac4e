"""The model's match probabilities checked, and recalibrated, against a checked identifier.

Splink scores each pair as if every agreement were independent evidence. Different people who share
correlated evidence (twins: surname, date of birth and address; a household; namesakes with one birth
date at national scale) therefore get probabilities that are far too high: on 10 M synthetic records
pairs the model put at 0.998 were right 0.95 of the time. Without ground truth the run cannot see
this, and the threshold rule and the people's expected precision (threshold.py, calibrate.py) inherit
the optimism.

Where some records carry a valid id of a known type (a PNC id that passed its check, under a
`never_link_different` rule), the pairs where both records hold one are labelled by the id itself:
same id, one person; different ids, two. For those pairs the model's weight *without* the id's own
comparison (w') is what it would have said from the other evidence alone, so the share of same-id
pairs in each band of w' measures how right that evidence is. That measured share, corrected for
the id's own error rate and made monotone (isotonic regression, scipy), replaces the model's
probability for every pair with that much other evidence, labelled or not:

    calibrated weight = L(w') + (w - w')       L: w' -> log2-odds of the measured share
    w' = w minus the id comparison's weight    (= w for a pair where either record lacks the id)

Where the checked probabilities are used (the model's own everywhere else):
  * the people's expected precision and recall (link/calibrate.py), reported in metrics.json and the
    quality report, and compared by the precision floor's F1 guard: a raised threshold is kept when
    the people's *checked* expected F1 is at least as high there (at 10 M synthetic records the
    model's own figures refused a raise that measured F1 0.9869 -> 0.9935; the checked ones follow
    the measured F1 from threshold to threshold);
  * the threshold curve's "checked" precision and recall, drawn beside the model's own.
The first threshold and the raise to try are still proposed from the model's own figures, the
clustering compares Splink's own match weight with the threshold, and `pairs.parquet` keeps
Splink's scores. Pairs inside one person are the ones the conflict rules let through, so the checked
figures there are cautious (measured: the people's precision 0.006-0.009 above them on synthetic
data of 100 k to 10 M records, their recall within 0.001).

The assumption, stated in the report: pairs whose records carry the id are like the others for the
evidence the model weighs (twins and namesakes are no rarer among people with a PNC id). Details:
  * negatives are visible only where w' plus the id's "different" weight is above the pair floor;
    below the lowest such band L keeps the model's slope (w' plus the lowest band's correction);
  * the id's error rate (two valid ids for one person) is the share of different ids among pairs
    whose other evidence is overwhelming (w' >= ``CERTAIN``); shares are divided by (1 - it);
  * each band's share is shrunk towards the model's own probability by ``PRIOR_PAIRS`` pseudo-pairs,
    so a small study stays close to the model;
  * fewer than ``MIN_LABELLED`` labelled pairs, an id comparison other than "same id / else", or an
    error rate above ``MAX_ID_ERROR``: no recalibration, with a note saying why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel
from scipy.optimize import isotonic_regression

from linkage.config.linkage import ConflictRule, LinkageConfig
from linkage.link.backend import Backend
from linkage.tokens.spec import RECORD_KEY, SOURCE_DATASET

COLUMN = "calibrated_probability"  # added to the scored pairs; what threshold.py and calibrate.py read
CERTAIN = 30.0  # other evidence of a billion to one: a different id there is the id's own error
TOP_BAND = 30.0  # bands of one bit of w' up to here; one band above
PRIOR_PAIRS = 50.0  # pseudo-pairs at the model's own probability in every band
MIN_LABELLED = 1000  # labelled pairs (in bands where both outcomes are visible) needed to recalibrate
MIN_CERTAIN = 100  # pairs needed to estimate the id's error rate (else taken as 0)
MAX_ID_ERROR = 0.05  # an id that disagrees more often than this where the evidence is certain is no check
CLIP = 1e-6


class Band(BaseModel):
    """One band of w' (the model's weight without the id): the labelled pairs and what they say."""

    match_weight_from: float
    labelled_pairs: int
    same_id: int
    model_probability: float  # the model's mean probability from the other evidence alone
    measured_probability: float  # same-id share, corrected for id errors, shrunk, monotone


class IdCalibration(BaseModel):
    """How the model's probabilities were checked against a checked id (metrics.json, report)."""

    identifier: str | None = None  # the id column used; None: no recalibration (see note)
    note: str
    labelled_pairs: int = 0
    id_error_rate: float = 0.0
    lowest_visible_weight: float | None = None
    weights: tuple[float, float] | None = None  # the id comparison's (same, different) weights in bits
    bands: list[Band] = []


def checked_rules(config: LinkageConfig) -> list[ConflictRule]:
    """Conflict rules on a checked id: no typo tolerance, and no direct link may override them."""
    rules = config.clustering.conflict_rules() if config.clustering.method == "constrained_components" else []
    return [r for r in rules if not r.unless_any and not r.direct_link_overrides]


def id_levels(config: LinkageConfig, model: dict[str, Any], column: str) -> list[dict[str, Any]] | str:
    """The trained levels (same id, anything else) of the id's comparison, or why it cannot be used."""
    comparison = next(
        (
            c
            for c in config.comparisons
            if len(c.levels) == 1 and c.levels[0].equal == [column] and not c.levels[0].equal_any
        ),
        None,
    )
    if comparison is None:
        return f"no comparison of the form 'same {column} / anything else' in the model"
    if comparison.levels[0].term_frequency:
        return f"the {comparison.name} comparison is term-frequency adjusted"
    trained = next((c for c in model["comparisons"] if c["output_column_name"] == comparison.name), None)
    if trained is None:  # a model trained on another config (linkage run --model)
        return f"the trained model has no {comparison.name} comparison"
    levels = [lv for lv in trained["comparison_levels"] if not lv.get("is_null_level")]
    if not all(lv.get("m_probability") and lv.get("u_probability") for lv in levels):
        return f"the {comparison.name} comparison has a level without trained m and u"
    return levels


def _id_weights(config: LinkageConfig, model: dict[str, Any], column: str) -> tuple[float, float] | str:
    """The id comparison's weights (same id, different ids) in bits, or why it cannot be used."""
    levels = id_levels(config, model, column)
    if isinstance(levels, str):
        return levels
    same, other = (math.log2(lv["m_probability"] / lv["u_probability"]) for lv in (levels[0], levels[-1]))
    return same, other


def fit(
    backend: Backend,
    predictions: str,
    inputs: dict[str, str],
    config: LinkageConfig,
    model: dict[str, Any],
) -> IdCalibration:
    """Check the model against the first usable checked id and add ``COLUMN`` to the scored pairs:
    the calibrated probability, or Splink's own where there is nothing to check against."""
    calibration = IdCalibration(note="switched off (clustering.auto_threshold.calibrate_with_ids: false)")
    expression = "match_probability"
    if config.clustering.auto_threshold.calibrate_with_ids:
        checked = checked_rules(config)
        reasons = [] if checked else ["no checked id of a known type"]
        for rule in checked:
            weights = _id_weights(config, model, rule.column)
            if isinstance(weights, str):
                reasons.append(weights)
                continue
            fitted, sql = _fit_one(
                backend, predictions, inputs, config, rule.column, rule.weak_marker, weights
            )
            if fitted.identifier:
                calibration, expression = fitted, sql
                break
            reasons.append(fitted.note)
        else:
            calibration = IdCalibration(note="; ".join(reasons) + ": the model's own probabilities are used")
    backend.con.execute(f"ALTER TABLE {predictions} DROP COLUMN IF EXISTS {COLUMN}")
    with_column = _with_column(predictions, inputs, calibration, expression)
    backend.con.execute(f"CREATE OR REPLACE TABLE {predictions} AS {with_column}")
    return calibration


def ids_sql(inputs: dict[str, str], column: str, weak: str | None, also: tuple[str, ...] = ()) -> str:
    """Every record's id and whether it may label a pair (present, not marked weak), with the
    columns ``also``."""
    strong = f"{column} IS NOT NULL" + (f" AND NOT coalesce({weak}, false)" if weak else "")
    more = "".join(f", {c}" for c in also)
    return " UNION ALL ".join(
        f"SELECT '{agency}' AS {SOURCE_DATASET}, {RECORD_KEY}, {column} AS id, {strong} AS strong{more} "
        f"FROM {table}"
        for agency, table in inputs.items()
    )


def _joined_sql(predictions: str, ids: str, how: str) -> str:
    """The scored pairs ``p`` with each record's id row (``l``, ``r``)."""
    return (
        f"{predictions} AS p {how} JOIN {ids} AS l "
        f"ON l.{SOURCE_DATASET} = p.{SOURCE_DATASET}_l AND l.{RECORD_KEY} = p.{RECORD_KEY}_l "
        f"{how} JOIN {ids} AS r "
        f"ON r.{SOURCE_DATASET} = p.{SOURCE_DATASET}_r AND r.{RECORD_KEY} = p.{RECORD_KEY}_r"
    )


def _without_id_sql(weights: tuple[float, float]) -> str:
    """w': the pair's match weight less the id comparison's (which is 0 when either id is missing)."""
    same_bits, else_bits = weights
    return (
        "p.match_weight - CASE WHEN l.id IS NULL OR r.id IS NULL THEN 0 "
        f"WHEN l.id = r.id THEN {same_bits!r} ELSE {else_bits!r} END"
    )


def _fit_one(
    backend: Backend,
    predictions: str,
    inputs: dict[str, str],
    config: LinkageConfig,
    column: str,
    weak: str | None,
    weights: tuple[float, float],
) -> tuple[IdCalibration, str]:
    raw = "match_probability"
    # a pair of different ids scores w' + its weight: it is among the scored pairs only above the floor
    visible = math.ceil(config.report.pair_floor_match_weight - weights[1])
    rows = backend.sql(f"""
        WITH ids AS ({ids_sql(inputs, column, weak)}),
        labelled AS (  -- pairs both of whose records hold a checked id: the id says whether they match
            SELECT {_without_id_sql(weights)} AS w_, l.id = r.id AS same
            FROM {_joined_sql(predictions, "ids", "")}
            WHERE l.strong AND r.strong
        )
        SELECT least(floor(w_), {TOP_BAND}) AS band, count(*), count(*) FILTER (same), avg(w_),
               avg(1 / (1 + pow(2, -w_)))
        FROM labelled WHERE w_ >= {visible} GROUP BY band ORDER BY band
    """)
    if not rows:
        return IdCalibration(note=f"no pair with a checked {column} on both records"), raw
    band, n, k, mean_w, model_p = (np.array(x, dtype=float) for x in zip(*rows, strict=True))
    labelled = int(n.sum())
    if labelled < MIN_LABELLED:
        why = f"{labelled} pairs with a checked {column} on both records (fewer than {MIN_LABELLED})"
        return IdCalibration(note=why, labelled_pairs=labelled), raw
    certain = band >= CERTAIN
    error = float(1 - k[certain].sum() / n[certain].sum()) if n[certain].sum() >= MIN_CERTAIN else 0.0
    if error > MAX_ID_ERROR:
        why = f"{column} differs on {error:.1%} of the pairs the other evidence makes certain: no check"
        return IdCalibration(note=why, labelled_pairs=labelled, id_error_rate=round(error, 6)), raw
    matched = np.minimum(k / (1 - error), n)  # same-id pairs, with the id's own errors put back
    share = (matched + PRIOR_PAIRS * model_p) / (n + PRIOR_PAIRS)
    measured = np.clip(isotonic_regression(share, weights=n + PRIOR_PAIRS).x, CLIP, 1 - CLIP)
    calibration = IdCalibration(
        identifier=column,
        note=(
            f"checked against {column} on {labelled:,} pairs of records that both hold a valid one "
            f"(its error rate, from the pairs the other evidence makes certain: {error:.2%})"
        ),
        labelled_pairs=labelled,
        id_error_rate=round(error, 6),
        lowest_visible_weight=float(visible),
        weights=weights,
        bands=[
            Band(
                match_weight_from=float(b),
                labelled_pairs=int(c),
                same_id=int(s),
                model_probability=round(float(mp), 6),
                measured_probability=round(float(m), 6),
            )
            for b, c, s, mp, m in zip(band, n, k, model_p, measured, strict=True)
        ],
    )
    return calibration, _calibrated_sql(mean_w, np.log2(measured / (1 - measured)))


def _calibrated_sql(knots: np.ndarray, odds: np.ndarray) -> str:
    """The calibrated probability: L(w') piecewise linear through the bands' (mean w', log2-odds),
    slope 1 beyond the first and last band, plus the id's own weight (match_weight - w')."""
    pieces = [f"WHEN w_ < {float(knots[0])!r} THEN w_ + {float(odds[0] - knots[0])!r}"]
    for i in range(1, len(knots)):
        x0, y0, x1, y1 = (float(v) for v in (knots[i - 1], odds[i - 1], knots[i], odds[i]))
        pieces.append(f"WHEN w_ < {x1!r} THEN {y0!r} + (w_ - {x0!r}) * {(y1 - y0) / (x1 - x0)!r}")
    pieces.append(f"ELSE w_ + {float(odds[-1] - knots[-1])!r}")
    return f"1 / (1 + pow(2, -((CASE {' '.join(pieces)} END) + (match_weight - w_))))"


def _with_column(
    predictions: str, inputs: dict[str, str], calibration: IdCalibration, expression: str
) -> str:
    """The scored pairs with ``COLUMN``."""
    if calibration.identifier is None or calibration.weights is None:
        return f"SELECT *, {expression} AS {COLUMN} FROM {predictions}"
    ids = ids_sql(inputs, calibration.identifier, None)
    return f"""
        WITH ids AS ({ids}),
        scored AS (SELECT p.*, {_without_id_sql(calibration.weights)} AS w_
                   FROM {_joined_sql(predictions, "ids", "LEFT")})
        SELECT * EXCLUDE (w_), {expression} AS {COLUMN} FROM scored
    """
