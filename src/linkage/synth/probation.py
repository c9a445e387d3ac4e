"""Probation: supervision in the community after a court order or a release from custody (synthetic).

Three kinds of supervision, each one probation record of the case that led to it:

  * community order            every "Community order" sentence; starts within a fortnight of sentence
  * suspended sentence order   every "Suspended sentence" (supervised: all carry a requirement here),
                               with a supervision period of 6 to 24 months
  * licence                    every release from custody; runs to the end of the sentence, and for
                               sentences under two years at least 12 months (licence plus post-sentence
                               supervision, Offender Rehabilitation Act 2014)

Each has a requirement (DA cases are often sent to the Building Better Relationships programme), a
breach (about a third of community orders and a fifth of licences, in line with MoJ Offender
Management Statistics: order terminations for failure to comply, licence recalls), and a termination
(completed, revoked after a breach, recalled to custody, or ended early for good progress), all censored
at the extract date like every other stage. The random stream is the caller's own, so adding probation
leaves every other agency's values as they were.
"""

from __future__ import annotations

import numpy as np

from linkage.synth.identifiers import MISSING_DAY, day_number
from linkage.synth.journeys import Cases
from linkage.synth.params import SynthParams

COMMUNITY_ORDER = "Community order"
SUSPENDED = "Suspended sentence order"
LICENCE = "Licence"
PROBATION_TYPES = (COMMUNITY_ORDER, SUSPENDED, LICENCE)
BBR = "Building Better Relationships"  # the accredited programme for DA perpetrators (3 words: the
# audit reads a longer category value as free text)
REQUIREMENTS = ("Unpaid work", "Rehabilitation activity", BBR, "Curfew", "Alcohol treatment")
REQUIREMENT_P_DA = (0.20, 0.25, 0.40, 0.10, 0.05)
REQUIREMENT_P_OTHER = (0.40, 0.35, 0.0, 0.15, 0.10)
LICENCE_CONDITIONS = "Licence conditions"
COMPLETED = "Completed"
REVOKED = "Revoked - breach"
RECALLED = "Recalled to custody"
EARLY = "Terminated early - good progress"
TERMINATIONS = (COMPLETED, REVOKED, RECALLED, EARLY)
# Share of supervisions with a breach (failure to comply, or recall for a licence) by type, and the
# share of breaches that end the supervision (order revoked, or licence recall).
BREACH_P = {COMMUNITY_ORDER: 0.33, SUSPENDED: 0.28, LICENCE: 0.22}
ENDS_ON_BREACH_P = {COMMUNITY_ORDER: 0.5, SUSPENDED: 0.5, LICENCE: 0.8}
EARLY_P = 0.05  # orders terminated early for good progress (of those not breached)
START_LAG_DAYS = 14  # a court order's supervision starts within this many days of sentence
SSO_SUPERVISION_DAYS = (180, 365, 540, 730)
POST_SENTENCE_SUPERVISION_DAYS = 365


def supervise(cases: Cases, rng: np.random.Generator, params: SynthParams) -> None:
    """Fill the probation fields of ``cases`` (in place) from their sentences and prison releases."""
    n, end = len(cases), day_number(params.extract_date)
    stype = cases.sentence_type.astype(str)
    co, sso = stype == "Community order", stype == "Suspended sentence"
    lic = cases.release != MISSING_DAY
    ptype = np.select([co, sso, lic], list(PROBATION_TYPES), "").astype(object)
    start = np.where(lic, cases.release, cases.sentence_day + rng.integers(0, START_LAG_DAYS + 1, n))
    # length: the order's length; the supervision period of a suspended sentence; the rest of the sentence
    sentence_end = cases.reception + np.maximum(cases.sentence_days, 0)
    licence_end = np.where(
        cases.sentence_days < 730,
        np.maximum(sentence_end, start + POST_SENTENCE_SUPERVISION_DAYS),
        sentence_end,
    )
    length = np.select(
        [co, sso],
        [cases.sentence_days, rng.choice(SSO_SUPERVISION_DAYS, n)],
        np.maximum(licence_end - start, 1),
    )
    expected_end = start + length
    da = cases.da
    requirement = np.where(
        da,
        np.array(REQUIREMENTS, dtype=object)[rng.choice(len(REQUIREMENTS), n, p=REQUIREMENT_P_DA)],
        np.array(REQUIREMENTS, dtype=object)[rng.choice(len(REQUIREMENTS), n, p=REQUIREMENT_P_OTHER)],
    )
    requirement = np.where(lic, LICENCE_CONDITIONS, requirement).astype(object)
    u = rng.random((3, n))
    breach_p = np.select([co, sso, lic], [BREACH_P[t] for t in PROBATION_TYPES], 0.0)
    ends_p = np.select([co, sso, lic], [ENDS_ON_BREACH_P[t] for t in PROBATION_TYPES], 0.0)
    breached = u[0] < breach_p
    breach_day = start + 14 + (u[1] * np.maximum(length - 14, 1)).astype(np.int64)
    breached &= breach_day < expected_end
    ends = breached & (u[2] < ends_p)
    early = ~breached & ~lic & (u[2] < EARLY_P)
    stop = np.select(
        [ends & lic, ends, early],
        [breach_day + 1, breach_day + rng.integers(14, 61, n), start + length * 6 // 10],
        expected_end,
    )
    reason = np.select([ends & lic, ends, early], [RECALLED, REVOKED, EARLY], COMPLETED).astype(object)

    # censored at the extract date: a supervision exists once it has started, events once they happened
    has = (ptype != "") & (start <= end)
    has_breach = has & breached & (breach_day <= end)
    has_end = has & (stop <= end)
    miss = MISSING_DAY
    cases.probation_type = np.where(has, ptype, "").astype(object)
    cases.probation_start = np.where(has, start, miss)
    cases.probation_expected_end = np.where(has, expected_end, miss)
    cases.probation_requirement = np.where(has, requirement, "").astype(object)
    cases.probation_breach = np.where(has_breach, breach_day, miss)
    cases.probation_end = np.where(has_end, stop, miss)
    cases.probation_termination = np.where(has_end, reason, "").astype(object)
