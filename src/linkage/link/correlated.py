"""Evidence that comes together: a measured correction for comparisons that agree together.

Splink adds each comparison's weight as if the agreements were independent. Different people who
share a home share a surname and an address, and twins share the date of birth too, so agreement on
all three is far less rare among different people than the product of the three separate chances:
on 10 M synthetic records a pair agreeing on surname, date of birth and postcode got 42.6 bits from
them, while the pairs of different people agreeing on all three were 9,000 times more common than
that implied (13 bits too many). Twins with different forenames then scored +16 and were linked.

For each group of comparisons (``training.correlated``), once the model is trained:

    S  pairs of records agreeing on every comparison's first level (counted exactly, by grouping)
    L  of those, pairs whose two records both hold a valid checked id (the labels);
    D  of those, pairs with different ids
    e  the id's own error rate: the trained m of its "different" level (one person, two valid ids)
    q  = (D/L - e) / (1 - e)      the share of different people among the agreeing pairs
    T  = q S                      pairs of different people agreeing on all of them
    E  = P * u1 * u2 * ...        what the separate u's predict (P: pairs of records holding every key)
    correction = log2(E / T) bits, when T > E (never a boost)

The model gains one comparison per group whose level "all of them agree" carries the correction
(fixed m and u, never trained), so a pair agreeing on all of them scores log2(m1 m2 .../(T/P)): the
weight of the joint agreement as measured. It is part of model.json, so `linkage run --model` and
`linkage recluster` score with it, and the report's weight charts show it.

Without a checked id (no labels), a group with an ``instrument`` (the forename: a comparison outside
the group that relatives and twins rarely agree on) is measured with it instead, among the agreeing
pairs whose records both hold it:

    Sf  pairs agreeing on the group and both holding the instrument's column
    A   of those, pairs agreeing on it too
    m1, u1  the instrument's trained m and u at its first level: how often matches, and different
        people, agree on it
    A = m1 (Sf - Tf) + u1 Tf   so   Tf = (m1 Sf - A) / (m1 - u1),   T = Tf S / Sf

It assumes the instrument's agreement among the agreeing matches is as among all matches (m1), and
among the agreeing different people as among random pairs (u1; a father and son of one name make it
err small), and that it is missing as often for either (the scaling by S / Sf). On pseudopeople's
census with SSA and W2, relatives living together: 19,512 pairs of different people estimated,
19,722 true (census with SSA: 7,426, 7,420 true); on FEBRL4 without its SSN, -28 ± 26 (2 true): no
correction.

No correction (a note says why) without a checked id or an instrument, with an id whose trained
error rate is above recalibrate's ``MAX_ID_ERROR``, with fewer than ``MIN_LABELLED`` labelled pairs,
or when the different ids are no more than the id's own error rate explains (``Z`` standard errors). The
assumption, as for the id calibration (recalibrate.py): pairs whose records carry the id are like
the others (twins are no rarer among people with a PNC id). When the extracts hold victim mentions
the derivation sets the group's ``subjects_only``: victim mentions carry no id, and are not like
subjects here (at 100 k synthetic persons, of the pairs agreeing on surname, date of birth and
postcode but not on forename, 0.2 % of victim-mention pairs were different people against 7-10 % of
subject pairs), so the measure and the correction cover pairs of two subject records only.
"""

from __future__ import annotations

import math
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from pydantic import BaseModel
from splink import Linker

from linkage.config.linkage import VICTIM_MENTION, ConflictRule, Correlated, LinkageConfig
from linkage.link.backend import Backend
from linkage.link.model import group_columns, instrument_column
from linkage.link.recalibrate import MAX_ID_ERROR, checked_rules, id_levels, ids_sql
from linkage.link.splink_adapter import ComparisonLevelCreator, add_comparison
from linkage.link.train import agreeing_pairs_sql, possible_pairs
from linkage.tokens.spec import SOURCE_DATASET

MIN_LABELLED = 1000  # labelled agreeing pairs needed to measure the share of different people
Z = 3.0  # different ids must exceed the id's own errors by this many standard errors


class CorrelatedCheck(BaseModel):
    """One group's measurement (metrics.json, report)."""

    name: str
    comparisons: list[str]
    note: str
    identifier: str | None = None  # the checked id measured against, or the instrument (a comparison)
    instrument: bool = False  # measured with an instrument comparison rather than a checked id
    agreeing_pairs: int = 0  # S
    labelled_pairs: int = 0  # L (an instrument: Sf, the agreeing pairs both holding it)
    different_ids: int = 0  # D (an instrument: A, those agreeing on it too)
    id_error_rate: float = 0.0  # e (an instrument: m1; its u1 below)
    instrument_u: float | None = None  # u1
    different_people: float | None = None  # T, estimated
    expected_by_chance: float | None = None  # E
    weight: float | None = None  # the correction in bits; None: not applied
    subjects_only: bool = False  # measured and corrected among the agencies' own subjects only


def _count(backend: Backend, sql: str) -> int:
    value = backend.training_sql(sql)[0][0]
    return int(value or 0)


def _first_level(model: dict[str, Any], name: str) -> tuple[float | None, float | None]:
    """The trained (m, u) of a comparison's first level (u: its weight before term-frequency
    adjustment); None when not trained (random sampling never met a pair agreeing there)."""
    trained = next(c for c in model["comparisons"] if c["output_column_name"] == name)
    first = next(lv for lv in trained["comparison_levels"] if not lv.get("is_null_level"))
    m, u = first.get("m_probability"), first.get("u_probability")
    return (float(m) if m else None), (float(u) if u else None)


def measure(
    backend: Backend, config: LinkageConfig, model: dict[str, Any], agencies: list[str]
) -> list[CorrelatedCheck]:
    """Measure every group of ``config.training.correlated`` on the agencies' input tables."""
    ids = [(r, id_levels(config, model, r.column)) for r in checked_rules(config)]
    usable = [(r, levels) for r, levels in ids if not isinstance(levels, str)]
    why = "; ".join(x for _, x in ids if isinstance(x, str)) or "no checked id of a known type"
    return [_measure(backend, config, model, agencies, group, usable[0] if usable else why)
            for group in config.training.correlated]  # fmt: skip


def _measure(
    backend: Backend,
    config: LinkageConfig,
    model: dict[str, Any],
    agencies: list[str],
    group: Correlated,
    checked: tuple[ConflictRule, list[dict[str, Any]]] | str,
) -> CorrelatedCheck:
    subjects = group.subjects_only
    check = CorrelatedCheck(name=group.name, comparisons=group.comparisons, note="", subjects_only=subjects)
    if isinstance(checked, str) and group.instrument is None:
        return check.model_copy(update={"note": f"{checked}: not measured"})
    us = {c: _first_level(model, c)[1] for c in group.comparisons}
    trained_u = [u for u in us.values() if u is not None]
    if len(trained_u) < len(us):
        unseen = ", ".join(c for c, u in us.items() if u is None)
        note = f"the first level of {unseen} never met among random pairs (no u): not measured"
        return check.model_copy(update={"note": note})
    keys = group_columns(group, config.comparisons)
    inputs = {agency: backend.input_table(agency) for agency in agencies}
    also = (*keys, VICTIM_MENTION) if subjects else tuple(keys)
    instrument = group.instrument if isinstance(checked, str) else None  # set: returned above otherwise
    if instrument is not None:  # no labels: the instrument's own column plays the id's part
        by_name = {c.name: c for c in config.comparisons}
        column, weak = instrument_column(by_name[instrument]), None
    else:
        assert not isinstance(checked, str)
        column, weak = checked[0].column, checked[0].weak_marker
    population = f"(SELECT * FROM ({ids_sql(inputs, str(column), weak, also)})" + (
        f" WHERE {VICTIM_MENTION} IS NULL)" if subjects else ")"
    )
    held = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    agreeing = f"(SELECT * FROM {population} WHERE {held})"
    labelled = f"(SELECT * FROM {agreeing} WHERE strong)"
    link_only = config.link_type == "link_only"
    s = _count(backend, agreeing_pairs_sql(agreeing, keys, link_only))
    n_l = _count(backend, agreeing_pairs_sql(labelled, keys, link_only))
    same = _count(backend, agreeing_pairs_sql(labelled, [*keys, "id"], link_only))
    # the u's are chances among pairs where each comparison is not missing: the pairs by chance are
    # counted among the records holding every key
    counts = backend.training_sql(f"SELECT {SOURCE_DATASET}, count(*) FROM {agreeing} GROUP BY 1")
    possible = possible_pairs({str(a): int(n) for a, n in counts}, config.link_type)
    chance = possible * math.prod(trained_u)  # what the separate u's predict
    if instrument is not None:
        return _by_instrument(check, model, instrument, s, n_l, same, chance)
    assert not isinstance(checked, str)
    rule, levels = checked
    d = n_l - same
    error = float(levels[-1]["m_probability"])
    check = check.model_copy(
        update={
            "identifier": rule.column,
            "agreeing_pairs": s,
            "labelled_pairs": n_l,
            "different_ids": d,
            "id_error_rate": round(error, 6),
            "expected_by_chance": chance,
        }
    )
    excess = d - error * n_l  # different ids beyond those of one person holding two valid ids
    if error > MAX_ID_ERROR:
        note = f"{rule.column} differs for {error:.1%} of true matches (trained m): no check"
        return check.model_copy(update={"note": note})
    if n_l < MIN_LABELLED:
        note = f"{n_l} agreeing pairs hold a checked {rule.column} on both records (< {MIN_LABELLED})"
        return check.model_copy(update={"note": note})
    if excess <= Z * math.sqrt(max(d, 1)):
        note = f"no more different {rule.column} ids than its own error rate explains: no correction"
        return check.model_copy(update={"note": note})
    return _concluded(check, excess / (1 - error) / n_l * s, chance, "")


def _by_instrument(
    check: CorrelatedCheck,
    model: dict[str, Any],
    instrument: str,
    s: int,
    held: int,
    same: int,
    chance: float,
) -> CorrelatedCheck:
    """The group measured with an instrument comparison (see the module docstring): ``held`` pairs
    agree on the group with the instrument held by both, ``same`` of them agree on it too."""
    m1, u1 = _first_level(model, instrument)
    check = check.model_copy(
        update={
            "identifier": instrument,
            "instrument": True,
            "agreeing_pairs": s,
            "labelled_pairs": held,
            "different_ids": same,
            "id_error_rate": round(float(m1 or 0.0), 6),
            "instrument_u": None if u1 is None else round(float(u1), 8),
            "expected_by_chance": chance,
        }
    )
    if m1 is None or u1 is None or m1 <= u1:
        note = f"the instrument {instrument} has no trained m above its u: not measured"
        return check.model_copy(update={"note": note})
    if held < MIN_LABELLED:
        note = f"{held} agreeing pairs hold {instrument} on both records (< {MIN_LABELLED}): not measured"
        return check.model_copy(update={"note": note})
    excess = m1 * held - same  # agreement on the instrument short of what matches alone would give
    if excess <= Z * math.sqrt(held * m1 * (1 - m1)):
        note = f"{instrument} agrees as often as matches alone explain: no correction"
        return check.model_copy(update={"note": note})
    return _concluded(check, excess / (m1 - u1) * s / held, chance, f" (measured with {instrument})")


def _concluded(check: CorrelatedCheck, different: float, chance: float, how: str) -> CorrelatedCheck:
    """The correction from T (``different``) and E (``chance``): log2(E / T), never a boost."""
    check = check.model_copy(update={"different_people": round(different, 1)})
    if different <= chance:
        note = "no more different people agree on all of them than chance predicts: no correction"
        return check.model_copy(update={"note": note})
    note = f"{different:,.0f} pairs of different people agree on all of them{how}, {chance:,.3g} by chance"
    return check.model_copy(update={"weight": round(math.log2(chance / different), 3), "note": note})


def corrected(linker: Linker, config: LinkageConfig, checks: list[CorrelatedCheck]) -> None:
    """Add one comparison per measured group to the trained model in place: its level 'all of them
    agree' carries the correction (m = 2^weight, u = 1, both fixed: training never sees it); every
    other pair scores 0."""
    by_name = {g.name: g for g in config.training.correlated}
    for check in checks:
        if check.weight is None:
            continue
        keys = group_columns(by_name[check.name], config.comparisons)
        names = ", ".join(check.comparisons)
        agree = " AND ".join(f"{k}_l = {k}_r" for k in keys)
        label = f"all of {names} agree"
        if check.subjects_only:  # a pair with a victim mention scores 0 here (``subjects_only``)
            agree += f" AND {VICTIM_MENTION}_l IS NULL AND {VICTIM_MENTION}_r IS NULL"
            label += ", two subjects"
        levels: list[ComparisonLevelCreator | dict[str, Any]] = [
            cll.CustomLevel(" OR ".join(f"{k}_l IS NULL OR {k}_r IS NULL" for k in keys), "not all held")
            .configure(is_null_level=True),
            cll.CustomLevel(agree, label)
            .configure(m_probability=2.0**check.weight, u_probability=1.0, fix_m_probability=True,
                       fix_u_probability=True),
            cll.ElseLevel().configure(m_probability=1.0, u_probability=1.0, label_for_charts="not all agree",
                                      fix_m_probability=True, fix_u_probability=True),
        ]  # fmt: skip
        how = (
            f"with the {check.identifier} comparison as instrument"
            if check.instrument
            else "against a checked id"
        )
        description = f"Correction for {names} agreeing together, measured {how}."
        add_comparison(
            linker,
            cl.CustomComparison(
                levels, output_column_name=f"correlated_{check.name}", comparison_description=description
            ),
        )
