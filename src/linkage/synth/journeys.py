"""Case journeys: crimes per person, attrition through CPS and court, sentences, prison, breaches.

Rates come from `params.AttritionParams`, which cites the published England & Wales figures:
910,980 DA crimes recorded by the police (ONS, year ending March 2022); 67,790 CPS DA receipts,
44,892 charges, 52,125 prosecutions and 40,042 convictions (CPS, year ending June 2022); Outcome 16
("victim does not support action") at 54 % of DA outcomes by 2020 (HMICFRS); offence to completion
in the Crown Court 378 days (CJS statistics, 2022). Stages dated after the extract date have not
happened yet, so recent cases are open, as in a real extract.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from linkage.synth import reference as ref
from linkage.synth.identifiers import MISSING_DAY, day_number
from linkage.synth.params import SynthParams
from linkage.synth.people import FEMALE, Persons

ALL_OFFENCES = (*ref.OFFENCES, ref.BREACH_OFFENCE)
BREACH = len(ALL_OFFENCES) - 1
CPS_AREAS_LONDON = ("London North", "London South")
DECISIONS = ("Charge", "NFA evidential", "NFA public interest", "Caution", "Other")
UNSUCCESSFUL = ("Discontinued", "Withdrawn", "Acquitted", "Dismissed")
UNSUCCESSFUL_P = (0.45, 0.15, 0.30, 0.10)
SENTENCES = ("Immediate custody", "Suspended sentence", "Community order", "Fine", "Discharge", "Other")
# Sentence mix by offence severity (0/1/2); indicative of MoJ sentencing statistics for violence.
SENTENCE_P = (
    (0.10, 0.15, 0.35, 0.20, 0.12, 0.08),
    (0.25, 0.28, 0.30, 0.07, 0.05, 0.05),
    (0.70, 0.15, 0.10, 0.01, 0.01, 0.03),
)
CUSTODY_MEDIAN_DAYS = (90, 240, 1200)
CROWN_BY_SEVERITY = (0.03, 0.15, 0.70)
# Police outcomes (Home Office outcome types) of crimes not referred to the CPS.
# The DA mix without Outcome 16, whose share is `AttritionParams.outcome16_da`.
OUTCOMES_DA = {
    15: 0.17,
    21: 0.06,
    10: 0.02,
    8: 0.04,
    3: 0.03,
    20: 0.03,
    13: 0.02,
    17: 0.02,
    22: 0.03,
}
OUTCOMES_OTHER = {
    15: 0.28,
    16: 0.22,
    21: 0.10,
    10: 0.05,
    8: 0.10,
    3: 0.07,
    6: 0.05,
    20: 0.04,
    13: 0.02,
    17: 0.02,
    22: 0.05,
}
# Share of persons who are police officers or staff (per mille): ~200,000 police workforce in England
# and Wales (Home Office police workforce statistics) among an adult population of ~48 million is
# ~0.4 %; suspects skew to working ages, so 0.6 % of suspects.
POLICE_EMPLOYEE_PER_MILLE = 6
# Police outcome recorded after a CPS decision.
OUTCOME_OF_DECISION = {"Charge": 1, "NFA public interest": 9, "Caution": 3, "Other": 20}


def court_codes() -> tuple[list[str], list[str]]:
    """Per force: a magistrates' court code and a Crown Court code (pattern ^[A-Z]\\d{2}[A-Z0-9]{2,6}$)."""
    mags = [f"B{i + 1:02d}{f.short[:2]}00" for i, f in enumerate(ref.FORCE_AREAS)]
    crown = [f"T{i + 1:02d}CC" for i, _ in enumerate(ref.FORCE_AREAS)]
    return mags, crown


@dataclass
class Cases:
    """One row per case (a crime with a named suspect and everything that followed it)."""

    case_id: np.ndarray
    pidx: np.ndarray  # index of the person in the chunk's Persons
    force: np.ndarray
    da: np.ndarray
    offence_day: np.ndarray
    recorded: np.ndarray
    offence: np.ndarray  # index into ALL_OFFENCES
    victim_sex: np.ndarray
    victim_relationship: np.ndarray
    outcome: np.ndarray  # 0 = open / none
    outcome_day: np.ndarray
    receipt: np.ndarray
    decision: np.ndarray
    decision_day: np.ndarray
    cps_area: np.ndarray
    cps_offence: np.ndarray
    court_code: np.ndarray
    hearing: np.ndarray
    verdict: np.ndarray
    verdict_day: np.ndarray
    sentence_type: np.ndarray
    sentence_day: np.ndarray
    sentence_days: np.ndarray  # -1 = none
    restraining_order: np.ndarray  # 1 yes, 0 no, -1 no verdict yet
    reception: np.ndarray
    release: np.ndarray
    establishment: np.ndarray
    breach_of: np.ndarray  # case_id of the order this crime breached, -1 otherwise
    breached: np.ndarray  # this case's order was later breached (as known by the extract date)
    police_employee: np.ndarray  # the suspect is a police officer or staff member (police record)
    # supervision in the community (probation), filled by `synth.probation.supervise`
    probation_type: np.ndarray  # "" = none
    probation_start: np.ndarray
    probation_expected_end: np.ndarray
    probation_requirement: np.ndarray
    probation_breach: np.ndarray
    probation_end: np.ndarray
    probation_termination: np.ndarray  # "" while the supervision is ongoing at the extract date

    def __len__(self) -> int:
        return len(self.case_id)

    def take(self, idx: np.ndarray) -> Cases:
        return Cases(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Cases]) -> Cases:
        return Cases(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Cases)})


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.maximum(0, np.round(median * np.exp(sigma * rng.standard_normal(n)))).astype(np.int64)


def _pick(rng: np.random.Generator, probs: dict[int, float], n: int) -> np.ndarray:
    keys = np.array(list(probs), dtype=np.int64)
    p = np.array(list(probs.values()))
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def police_employees(pid: np.ndarray, seed: int) -> np.ndarray:
    """Persons the police record as police officers or staff (~0.6 %): a stable choice per person and
    seed, from a hash rather than the random stream so that every other value stays as before."""
    # the seed's part reduced modulo 2**64 in Python: a numpy scalar product would warn on the overflow
    offset = np.uint64((seed % 2**32) * (1 << 40) % 2**64)
    with np.errstate(over="ignore"):  # the multiplicative hash wraps around by design
        z = (pid.astype(np.uint64) + offset) * np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(29)
    return (z % np.uint64(1000)) < POLICE_EMPLOYEE_PER_MILLE


def _objects(values: tuple[str, ...], rng: np.random.Generator, p: tuple[float, ...], n: int) -> np.ndarray:
    return np.array(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def make_cases(rng: np.random.Generator, persons: Persons, params: SynthParams) -> Cases:
    """All cases of a chunk of persons: first crimes and repeat offending, then breaches of orders."""
    n_p = len(persons)
    extra = params.mean_crimes_per_person - 1.0
    # Overdispersed repeat offending: most people once or twice, a few many times.
    k = rng.negative_binomial(0.8, 0.8 / (0.8 + extra), n_p) if extra > 0 else np.zeros(n_p, dtype=np.int64)
    counts = 1 + np.minimum(k, 60)
    pidx = np.repeat(np.arange(n_p), counts)
    seq = np.arange(len(pidx)) - np.repeat(np.cumsum(counts) - counts, counts)
    case_id = persons.pid[pidx] * 1000 + seq
    start, end = day_number(params.window_start), day_number(params.extract_date)
    recorded = rng.integers(start, end + 1, len(pidx))
    da = rng.random(len(pidx)) < persons.da_propensity[pidx]
    cases = _journeys(rng, persons, params, pidx, case_id, recorded, da, offence=None)
    # Breaches of restraining orders: a later police record for the same person (DA-flagged).
    order_day = np.where(cases.sentence_day != MISSING_DAY, cases.sentence_day, cases.verdict_day)
    breach = (cases.restraining_order == 1) & (rng.random(len(cases)) < params.attrition.breach_rate)
    b_day = order_day[breach] + 7 + _lognormal(rng, 120, 0.9, int(breach.sum()))
    keep = b_day <= end
    src = np.flatnonzero(breach)[keep]
    b = _journeys(
        rng,
        persons,
        params,
        cases.pidx[src],
        cases.case_id[src] + 500,
        b_day[keep],
        np.ones(len(src), dtype=bool),
        offence=BREACH,
    )
    b.breach_of = cases.case_id[src]
    cases.breached[src] = True
    return Cases.concat([cases, b])


def _journeys(
    rng: np.random.Generator,
    persons: Persons,
    params: SynthParams,
    pidx: np.ndarray,
    case_id: np.ndarray,
    recorded: np.ndarray,
    da: np.ndarray,
    offence: int | None,
) -> Cases:
    """Stage dates and outcomes for crimes recorded on ``recorded`` days; censored at the extract date."""
    a = params.attrition
    n = len(pidx)
    end = day_number(params.extract_date)
    nfd = len(ref.FORCE_AREAS)
    away = rng.random(n) < 0.1  # 10 % of crimes are in another force area than the home one
    fw = np.array([f.volume for f in ref.FORCE_AREAS], dtype=float)
    force = np.where(away, rng.choice(nfd, size=n, p=fw / fw.sum()), persons.force[pidx]).astype(np.int16)
    # Offence date: usually within days of recording; some DA crimes are reported long after.
    delay = rng.geometric(0.4, n) - 1
    late = da & (rng.random(n) < 0.05)
    delay[late] = rng.integers(30, 700, int(late.sum()))
    offence_day = recorded - delay
    if offence is None:
        w_da = np.array([o.weight_da for o in ref.OFFENCES])
        w_ot = np.array([o.weight_other for o in ref.OFFENCES])
        off = np.where(
            da,
            rng.choice(len(w_da), size=n, p=w_da / w_da.sum()),
            rng.choice(len(w_ot), size=n, p=w_ot / w_ot.sum()),
        )
    else:
        off = np.full(n, offence)
    severity = np.array([o.severity for o in ALL_OFFENCES])[off]
    # Victims: DA victims are mostly of the other sex and partners or ex-partners.
    suspect_f = persons.sex[pidx] == FEMALE
    other_sex = np.where(suspect_f, "Male", "Female").astype(object)
    same_sex = np.where(suspect_f, "Female", "Male").astype(object)
    u = rng.random(n)
    victim_sex = np.where(u < 0.03, "Unknown", np.where(u < 0.90, other_sex, same_sex)).astype(object)
    ot = rng.random(n)
    victim_sex[~da] = np.where(ot[~da] < 0.55, "Male", np.where(ot[~da] < 0.92, "Female", "Unknown"))
    rel = _objects(("Partner", "Ex-partner", "Family member"), rng, (0.45, 0.35, 0.20), n)
    victim_relationship = np.where(da, rel, "Other").astype(object)

    # CPS referral and charging decision; DA allegations against police employees are referred less
    # often (the rate is per case, so the random stream is the same as without the attribute).
    employee = police_employees(persons.pid[pidx], params.seed)
    referral = np.where(da, a.cps_referral_da, a.cps_referral_other)
    referral = np.where(da & employee, a.cps_referral_police_employee_da, referral)
    referred = rng.random(n) < referral
    receipt = recorded + 1 + _lognormal(rng, 21, 1.0, n)
    decision_day = receipt + _lognormal(rng, 10, 1.0, n)
    rest = (1 - a.charge_rate) * np.array([0.72, 0.10, 0.08, 0.10])
    decision = _objects(DECISIONS, rng, (a.charge_rate, *rest), n)
    # Police outcome: from the CPS decision if referred, otherwise the outcome mix.
    rest_da = sum(OUTCOMES_DA.values())
    da_mix = {16: a.outcome16_da, **{k: v * (1 - a.outcome16_da) / rest_da for k, v in OUTCOMES_DA.items()}}
    outcome = np.where(da, _pick(rng, da_mix, n), _pick(rng, OUTCOMES_OTHER, n))
    outcome_day = recorded + _lognormal(rng, 45, 1.0, n)
    cps_out = np.array([OUTCOME_OF_DECISION.get(d, 0) for d in decision], dtype=np.int64)
    nfa_ev = decision == "NFA evidential"
    cps_out[nfa_ev] = np.where(rng.random(int(nfa_ev.sum())) < 0.5, 15, 16)
    outcome = np.where(referred, cps_out, outcome)
    outcome_day = np.where(referred, decision_day, outcome_day)
    charged = referred & (decision == "Charge")
    cps_offence = off.copy()
    recharged = charged & (rng.random(n) < 0.10) & (off != BREACH)  # charged as a different offence
    cps_offence[recharged] = rng.integers(0, len(ref.OFFENCES), int(recharged.sum()))
    lond = np.array([ref.FORCE_AREAS[f].cps_area for f in force], dtype=object)
    is_london = lond == "London"
    lond[is_london] = _objects(CPS_AREAS_LONDON, rng, (0.5, 0.5), int(is_london.sum()))

    # Court: first hearing, verdict (conviction rate from CPS prosecutions), sentence.
    crown = rng.random(n) < np.array(CROWN_BY_SEVERITY)[severity]
    mags, crowns = court_codes()
    court_code = np.where(crown, np.array(crowns, dtype=object)[force], np.array(mags, dtype=object)[force])
    hearing = decision_day + 1 + _lognormal(rng, 21, 0.8, n)
    convicted = rng.random(n) < a.conviction_rate
    plea = convicted & (rng.random(n) < a.guilty_plea_share)
    verdict = np.where(
        convicted, np.where(plea, "Guilty plea", "Convicted"), _objects(UNSUCCESSFUL, rng, UNSUCCESSFUL_P, n)
    ).astype(object)
    # Crown Court trials take ~300 days from first hearing (offence to completion ~378 days).
    trial_wait = np.where(crown, _lognormal(rng, 300, 0.5, n), _lognormal(rng, 110, 0.6, n))
    plea_wait = np.where(rng.random(n) < 0.6, 0, _lognormal(rng, 30, 0.8, n))
    verdict_day = hearing + np.where(plea, plea_wait, trial_wait)
    sentence_day = verdict_day + np.where(rng.random(n) < 0.5, 0, _lognormal(rng, 28, 0.4, n))
    stype = np.empty(n, dtype=object)
    for s in range(3):
        m = severity == s
        stype[m] = _objects(SENTENCES, rng, SENTENCE_P[s], int(m.sum()))
    cust_med = np.array(CUSTODY_MEDIAN_DAYS)[severity]
    length = np.full(n, -1, dtype=np.int64)
    cust = stype == "Immediate custody"
    length[cust] = np.maximum(
        7, np.round(cust_med[cust] * np.exp(0.9 * rng.standard_normal(int(cust.sum()))))
    )
    susp = stype == "Suspended sentence"
    length[susp] = rng.integers(14, 731, int(susp.sum()))
    comm = stype == "Community order"
    length[comm] = rng.choice([180, 365, 540, 730, 1095], size=int(comm.sum()))
    length = np.minimum(length, 36500)
    ro_p = np.where(
        da,
        np.where(convicted, a.restraining_order_convicted_da, a.restraining_order_acquitted_da),
        a.restraining_order_other,
    )
    if offence == BREACH:  # a breach does not start another order-and-breach cycle here
        ro_p[:] = 0.0
    restraining = (rng.random(n) < ro_p).astype(np.int8)
    # Prison: reception on the sentence day; release at the halfway point (standard determinate).
    reception = sentence_day.copy()
    release = reception + (length + 1) // 2
    est_lists = [ref.PRISONS[ref.FORCE_AREAS[f].cps_area] for f in range(nfd)]
    pick = rng.integers(0, 8, n)
    female = persons.sex[pidx] == FEMALE
    establishment = np.array(
        [
            lst[-1] if fem else lst[p % (len(lst) - 1)]
            for lst, fem, p in zip([est_lists[f] for f in force], female, pick, strict=True)
        ],
        dtype=object,
    )

    # Attrition and censoring: a stage exists only if the previous one did and it is dated by the extract.
    has_receipt = referred & (receipt <= end)
    has_decision = has_receipt & (decision_day <= end)
    has_outcome = outcome_day <= end
    has_hearing = charged & (hearing <= end)
    has_verdict = has_hearing & (verdict_day <= end)
    has_sentence = has_verdict & convicted & (sentence_day <= end)
    has_prison = has_sentence & cust & (reception <= end)
    has_release = has_prison & (release <= end)
    miss = MISSING_DAY
    return Cases(
        case_id=case_id,
        pidx=pidx,
        force=force,
        da=da,
        offence_day=offence_day,
        recorded=recorded,
        offence=off,
        victim_sex=victim_sex,
        victim_relationship=victim_relationship,
        outcome=np.where(has_outcome, outcome, 0),
        outcome_day=np.where(has_outcome, outcome_day, miss),
        receipt=np.where(has_receipt, receipt, miss),
        decision=np.where(has_decision, decision, "").astype(object),
        decision_day=np.where(has_decision, decision_day, miss),
        cps_area=lond,
        cps_offence=cps_offence,
        court_code=court_code,
        hearing=np.where(has_hearing, hearing, miss),
        verdict=np.where(has_verdict, verdict, "").astype(object),
        verdict_day=np.where(has_verdict, verdict_day, miss),
        sentence_type=np.where(has_sentence, stype, "").astype(object),
        sentence_day=np.where(has_sentence, sentence_day, miss),
        sentence_days=np.where(has_sentence, length, -1),
        restraining_order=np.where(has_verdict, restraining, -1).astype(np.int8),
        reception=np.where(has_prison, reception, miss),
        release=np.where(has_release, release, miss),
        establishment=establishment,
        breach_of=np.full(n, -1, dtype=np.int64),
        breached=np.zeros(n, dtype=bool),
        police_employee=employee,
        **no_supervision(n),
    )


def no_supervision(n: int) -> dict[str, np.ndarray]:
    """The probation fields of ``n`` cases before `synth.probation.supervise` fills them."""
    blank, missing = np.full(n, "", dtype=object), np.full(n, MISSING_DAY, dtype=np.int64)
    return {
        "probation_type": blank,
        "probation_start": missing,
        "probation_expected_end": missing.copy(),
        "probation_requirement": blank.copy(),
        "probation_breach": missing.copy(),
        "probation_end": missing.copy(),
        "probation_termination": blank.copy(),
    }
