"""A threshold chosen from the model itself, without ground truth.

Splink's match probability for a pair is the model's own estimate that the two records are one
person. Over the scored pairs (every pair blocking found, down to `report.pair_floor_match_weight`),
the model therefore also estimates, for any threshold t:
    expected true links      E[TP](t) = sum of p over pairs with p >= t
    expected precision       E[TP](t) / (pairs with p >= t)
    expected recall          E[TP](t) / (sum of p over all scored pairs)
(recall among the pairs blocking found: a pair no blocking rule found is invisible here).
The curve is in metrics.json and the quality report; the rule that picks the default is below.

Pair by pair the model is optimistic where non-matches share correlated evidence (twins, a
household's surname and postcode, namesakes at national scale): its pairs are scored as if each
agreement were independent. Clustering then adds pairs of its own (chains through a third record).
So after clustering the run also measures the model's expectations over the pairs each person
actually holds (`link.calibrate.expected_quality`): that sees the chains and the weak pairs inside
a person. When the people's expected precision is below `auto_threshold.min_expected_precision`,
a raised threshold (`raised`) is clustered too, and kept when the people's expected F1 is at least
as high there, by the probabilities checked against an id where the data has one (the proposal
itself comes from the model's own figures; link/recalibrate.py). Where a person has many records
(justice data), dropping weak links costs little recall, as the other links keep the person
together; where each person has one record per source, it costs recall one for one and the first
threshold stays.
"""

from __future__ import annotations

from pydantic import BaseModel

from linkage.config.linkage import Clustering, match_weight
from linkage.link.backend import Backend
from linkage.link.recalibrate import COLUMN as CALIBRATED
from linkage.link.splink_adapter import SplinkDataFrame

# match weights at which the curve is tabulated (and candidate thresholds for the rule)
STEP = 0.5
GRID = [k * STEP for k in range(-10, 61)]  # -5 .. 30


class CurvePoint(BaseModel):
    match_weight: float
    threshold_match_probability: float
    pairs: int
    expected_precision: float
    expected_recall: float
    expected_f1: float
    # from the probabilities checked against an id (link/recalibrate.py; the model's own where none)
    checked_precision: float | None = None
    checked_recall: float | None = None


class ThresholdChoice(BaseModel):
    rule: str  # "fixed" (from the config) or the automatic rule's name
    threshold_match_probability: float
    match_weight: float
    expected_precision: float
    expected_recall: float
    expected_f1: float
    curve: list[CurvePoint]
    # after clustering: the model's expected precision and recall over the pairs each person holds
    people_expected_precision: float | None = None
    people_expected_recall: float | None = None
    people_checked_precision: float | None = None  # the same from probabilities checked against an id
    people_checked_recall: float | None = None
    raised_from_match_weight: float | None = None  # the first choice, when the floor raised it


def probability(weight: float) -> float:
    return 2**weight / (1 + 2**weight)


def expected_curve(backend: Backend, predictions: SplinkDataFrame) -> list[CurvePoint]:
    """The model's own precision/recall estimates at each weight of ``GRID`` (one pass over pairs), and
    the same from the probabilities checked against an id (link/recalibrate.py), shown beside them."""
    # pairs and expected true links per grid step; the sums from the top down then give the counts at
    # or above each weight. Weights are bucketed as floor(w / step) (dividing by 0.5 is exact, so a pair
    # exactly on a grid weight counts at it); pairs below the grid count only in the totals.
    first = round(GRID[0] / STEP)
    rows = backend.sql(f"""
        SELECT least(floor(match_weight / {STEP}) - {first}, {len(GRID) - 1})::INTEGER AS i,
               count(*), sum(match_probability), sum({CALIBRATED})
        FROM {predictions.physical_name} GROUP BY i
    """)
    pairs, tps, cal_tps = [0] * len(GRID), [0.0] * len(GRID), [0.0] * len(GRID)
    total = cal_total = 0.0
    for i, n, tp, cal_tp in rows:
        total, cal_total = total + float(tp or 0), cal_total + float(cal_tp or 0)
        if i >= 0:
            pairs[i], tps[i], cal_tps[i] = int(n), float(tp or 0), float(cal_tp or 0)
    points, n, tp, cal_tp = [], 0, 0.0, 0.0
    for i in reversed(range(len(GRID))):
        n, tp, cal_tp = n + pairs[i], tp + tps[i], cal_tp + cal_tps[i]
        p = tp / n if n else 1.0
        r = tp / total if total else 1.0
        points.append(
            CurvePoint(
                match_weight=GRID[i],
                threshold_match_probability=probability(GRID[i]),
                pairs=n,
                expected_precision=round(p, 6),
                expected_recall=round(r, 6),
                expected_f1=round(2 * p * r / (p + r) if p + r else 0.0, 6),
                checked_precision=round(cal_tp / n if n else 1.0, 6),
                checked_recall=round(cal_tp / cal_total if cal_total else 1.0, 6),
            )
        )
    return points[::-1]


def choose_threshold(backend: Backend, predictions: SplinkDataFrame, config: Clustering) -> ThresholdChoice:
    """The configured threshold, or (``auto``) the model-based rule's choice; with the curve."""
    curve = expected_curve(backend, predictions)
    if config.threshold_match_probability != "auto":
        t = config.threshold_match_probability
        w = match_weight(t)
        at = max(
            (pt for pt in curve if pt.match_weight <= w), key=lambda pt: pt.match_weight, default=curve[0]
        )
        return ThresholdChoice(
            rule="fixed",
            threshold_match_probability=t,
            match_weight=round(w, 3),
            expected_precision=at.expected_precision,
            expected_recall=at.expected_recall,
            expected_f1=at.expected_f1,
            curve=curve,
        )
    if config.auto_threshold.rule == "max_expected_f1":
        # highest expected F1 (within the tolerance, the highest threshold: fewer links on the same evidence)
        best = max(pt.expected_f1 for pt in curve)
        tolerance = config.auto_threshold.f1_tolerance
        near = [pt for pt in curve if pt.expected_f1 >= best - tolerance - 1e-12]
        chosen = max(near, key=lambda pt: pt.match_weight)
        rule = "highest expected F1" + (f" (within {tolerance:g})" if tolerance else "")
    else:
        target = config.auto_threshold.target_precision
        chosen = next((pt for pt in curve if pt.expected_precision >= target), curve[-1])
        rule = f"lowest threshold with expected precision >= {target}"
    return _choice(rule, chosen, curve)


def _choice(rule: str, point: CurvePoint, curve: list[CurvePoint]) -> ThresholdChoice:
    return ThresholdChoice(
        rule=rule,
        threshold_match_probability=point.threshold_match_probability,
        match_weight=point.match_weight,
        expected_precision=point.expected_precision,
        expected_recall=point.expected_recall,
        expected_f1=point.expected_f1,
        curve=curve,
    )


def raised(choice: ThresholdChoice, people_precision: float, floor: float) -> ThresholdChoice | None:
    """The threshold to try when the people formed fall below the floor (None if none is higher).

    The people's expected share of wrong pairs shrinks more slowly than the linked pairs' (a chain
    through weak pairs stays until its links go): it is taken to shrink as the cube root of theirs
    (on the synthetic data at a million records, about the 0.35th power), so the new threshold is
    the lowest on the curve whose share is at most the current one times
    ((1 - floor) / (1 - people_precision)) ** 3. The rule says which step it was; the report shows the
    people's expected precision at the threshold kept (link/cluster.py decides how many steps).
    """
    if people_precision >= floor:
        return None
    target = (1 - choice.expected_precision) * ((1 - floor) / (1 - people_precision)) ** 3
    higher = [pt for pt in choice.curve if pt.match_weight > choice.match_weight]
    point = next((pt for pt in higher if 1 - pt.expected_precision <= target), higher[-1] if higher else None)
    if point is None:
        return None
    why = (
        f"{choice.rule}; raised: the people formed at match weight {choice.match_weight:g} had expected "
        f"precision {people_precision:.4f} < {floor:g}"
    )
    new = _choice(why, point, choice.curve)
    return new.model_copy(update={"raised_from_match_weight": choice.match_weight})
