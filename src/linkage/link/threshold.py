"""A threshold chosen from the model itself, without ground truth.

Splink's match probability for a pair is the model's own estimate that the two records are one
person. Over the scored pairs (every pair blocking found, down to `report.pair_floor_match_weight`),
the model therefore also estimates, for any threshold t:
    expected true links      E[TP](t) = sum of p over pairs with p >= t
    expected precision       E[TP](t) / (pairs with p >= t)
    expected recall          E[TP](t) / (sum of p over all scored pairs)
(recall among the pairs blocking found: a pair no blocking rule found is invisible here).
The curve is in metrics.json and the quality report; the rule that picks the default is below.
"""

from __future__ import annotations

from pydantic import BaseModel
from splink.internals.splink_dataframe import SplinkDataFrame

from linkage.config.linkage import Clustering, match_weight
from linkage.link.backend import Backend

# match weights at which the curve is tabulated (and candidate thresholds for the rule)
GRID = [w / 2 for w in range(-10, 61)]  # -5 .. 30 in steps of 0.5


class CurvePoint(BaseModel):
    match_weight: float
    threshold_match_probability: float
    pairs: int
    expected_precision: float
    expected_recall: float
    expected_f1: float


class ThresholdChoice(BaseModel):
    rule: str  # "fixed" (from the config) or the automatic rule's name
    threshold_match_probability: float
    match_weight: float
    expected_precision: float
    expected_recall: float
    expected_f1: float
    curve: list[CurvePoint]


def probability(weight: float) -> float:
    return 2**weight / (1 + 2**weight)


def expected_curve(backend: Backend, predictions: SplinkDataFrame) -> list[CurvePoint]:
    """The model's own precision/recall estimates at each weight of ``GRID`` (one pass over pairs)."""
    cols = ", ".join(
        f"count(*) FILTER (match_weight >= {w}), sum(match_probability) FILTER (match_weight >= {w})"
        for w in GRID
    )
    row = backend.sql(f"SELECT sum(match_probability), {cols} FROM {predictions.physical_name}")[0]
    total = float(row[0] or 0)
    points = []
    for i, w in enumerate(GRID):
        n, tp = int(row[1 + 2 * i] or 0), float(row[2 + 2 * i] or 0)
        p = tp / n if n else 1.0
        r = tp / total if total else 1.0
        points.append(
            CurvePoint(
                match_weight=w,
                threshold_match_probability=probability(w),
                pairs=n,
                expected_precision=round(p, 6),
                expected_recall=round(r, 6),
                expected_f1=round(2 * p * r / (p + r) if p + r else 0.0, 6),
            )
        )
    return points


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
    target = config.auto_threshold.target_precision
    chosen = next((pt for pt in curve if pt.expected_precision >= target), curve[-1])
    return ThresholdChoice(
        rule=f"lowest threshold with expected precision >= {target}",
        threshold_match_probability=chosen.threshold_match_probability,
        match_weight=chosen.match_weight,
        expected_precision=chosen.expected_precision,
        expected_recall=chosen.expected_recall,
        expected_f1=chosen.expected_f1,
        curve=curve,
    )
