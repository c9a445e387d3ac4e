"""Parameters of the synthetic generator: noise rates, completeness, hard cases, attrition.

Every probability is a plain field with its default and source, so a test can assert the output
against it and a user can see what "medium" means. ``SynthParams.preset`` builds the three
``--error-rate`` levels.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Prob = Annotated[float, Field(ge=0.0, le=1.0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorRate(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


# How the presets scale the medium noise rates (completeness is not scaled).
ERROR_RATE_FACTORS: dict[ErrorRate, float] = {ErrorRate.low: 0.4, ErrorRate.medium: 1.0, ErrorRate.high: 2.0}


class NoiseRates(_Frozen):
    """Per-record probabilities of each identifier error (medium preset).

    A rate applies to the records where the error is possible ("eligible"): a day/month swap only
    to dates with day <= 12 and day != month, a nickname only to forenames that have one, etc.
    """

    forename_typo: Prob = 0.03
    surname_typo: Prob = 0.03
    ocr: Prob = 0.005  # rn<->m, cl<->d, li<->h ... scanning/re-keying errors
    nickname: Prob = 0.06  # Robert -> Bob (from the `nicknames` package)
    spelling_variant: Prob = 0.10  # Stephen -> Steven (of names that have a variant)
    name_swap: Prob = 0.01  # forename and surname exchanged
    middle_as_first: Prob = 0.02  # known by the middle name (of people who have one)
    middle_dropped: Prob = 0.30  # middle name not recorded (of people who have one)
    double_barrel_part: Prob = 0.30  # only one part of a double-barrelled surname
    alias: Prob = 0.02  # a record under the person's alias (of people who have one)
    agency_variant: Prob = 0.04  # an agency persistently holds a variant spelling for a person
    dob_day_month_swap: Prob = 0.02
    dob_year_off: Prob = 0.01  # +-1 year
    dob_day_off: Prob = 0.005  # +-1 day
    dob_placeholder: Prob = 0.002  # 01/01/1900 typed when unknown
    sex_missing: Prob = 0.01
    sex_wrong: Prob = 0.003
    postcode_typo: Prob = 0.02  # one character changed, still a valid-format postcode
    postcode_stale: Prob = 0.05  # previous address still on file (of people who have moved)
    postcode_nfa: Prob = 0.01  # "NO FIXED ABODE" / "NFA"
    pnc_wrong: Prob = 0.003  # another (valid) PNC id typed, e.g. a co-defendant's

    def scaled(self, factor: float) -> NoiseRates:
        """These rates multiplied by ``factor`` (capped at 0.9)."""
        return NoiseRates(**{k: min(0.9, v * factor) for k, v in self.model_dump().items()})


class Completeness(_Frozen):
    """Probability that a value is present in an agency's record (not scaled by the presets)."""

    pnc: Prob  # of people who have a PNC id
    dob: Prob
    postcode: Prob
    case_reference: Prob  # of cases that have a URN (police: referred cases only)


COMPLETENESS: dict[str, Completeness] = {
    # Missing PNC ids are commonest in CPS and court systems, rarest in prisons (fingerprinted).
    "police": Completeness(pnc=0.85, dob=0.98, postcode=0.93, case_reference=0.95),
    "prosecution": Completeness(pnc=0.65, dob=0.97, postcode=0.90, case_reference=0.97),
    "court": Completeness(pnc=0.55, dob=0.99, postcode=0.92, case_reference=0.90),
    "prison": Completeness(pnc=0.95, dob=1.0, postcode=0.80, case_reference=0.0),
    # probation holds a PNC id for about half its cases and the sentencing court's case reference for most
    "probation": Completeness(pnc=0.50, dob=0.98, postcode=0.85, case_reference=0.70),
}


class HardCaseRates(_Frozen):
    """Share of persons involved in each kind of hard case (issue 8). Each involves 2+ persons."""

    twin: Prob = 0.010  # same surname, DOB and address
    jr_sr: Prob = 0.004  # father and son with the same full name at the same address
    sibling: Prob = 0.020  # same surname and address, DOB 1-8 years apart
    household: Prob = 0.020  # same surname and address, one agency lacks DOB
    cohort: Prob = 0.010  # same common full name and birth year, unrelated
    hostel: Prob = 0.020  # lived at a shared institutional address (hostel, approved premises)


class AttritionParams(_Frozen):
    """Probabilities along the case journey, shaped by published England & Wales figures.

    Sources (see docs/synthetic-data.md): DA Commissioner evidence to the Home Affairs Committee
    citing ONS (year ending March 2022: 910,980 DA crimes recorded), CPS data summary Q1 2022-23
    (year ending June 2022: 67,790 DA receipts, 44,892 charges, 52,125 prosecutions, 40,042
    convictions) and HMICFRS (Outcome 16 rose from 35.4 % to 54 % of DA outcomes 2016-2020).
    """

    # 67,790 / 910,980 = 7.4 % of DA crimes reach the CPS; the police extract holds only crimes
    # with a named suspect (~88 % of DA crimes), so the referral rate among them is ~8.5 %.
    cps_referral_da: Prob = 0.085
    cps_referral_other: Prob = 0.12  # assumption: other violent/acquisitive crime with a suspect
    # DA allegations against police officers and staff: 3.9 % led to a conviction against 6.2 % for the
    # general population (Bureau of Investigative Journalism FOI study, 2019; the Centre for Women's
    # Justice super-complaint, 2020, reports the same gap); 0.085 x 3.9 / 6.2 ~ 0.054
    cps_referral_police_employee_da: Prob = 0.054
    charge_rate: Prob = 0.662  # 44,892 / 67,790 charging decisions that are a charge
    conviction_rate: Prob = 0.768  # 40,042 / 52,125 prosecutions that end in conviction
    guilty_plea_share: Prob = 0.86  # of convictions (assumption, close to MoJ CJS statistics)
    outcome16_da: Prob = 0.58  # of DA crimes not referred; overall Outcome 16 ~ 54 % of DA outcomes
    restraining_order_convicted_da: Prob = 0.45
    restraining_order_acquitted_da: Prob = 0.10  # orders on acquittal (s.5A PHA 1997)
    restraining_order_other: Prob = 0.03
    breach_rate: Prob = 0.25  # restraining orders later breached and recorded by the police


class SynthParams(_Frozen):
    """Everything `generate` needs; a plain value, so a run is reproducible from it and the seed."""

    persons: Annotated[int, Field(gt=0)]
    seed: int = 0
    da_share: Prob = 0.3
    error_rate: ErrorRate = ErrorRate.medium
    bad_rows: Annotated[int, Field(ge=0)] = 0
    hard_cases: bool = True
    noise: NoiseRates = NoiseRates()
    hard_case_rates: HardCaseRates = HardCaseRates()
    attrition: AttritionParams = AttritionParams()
    mean_crimes_per_person: Annotated[float, Field(ge=1.0)] = 2.2  # repeat offending (>= 1 each)
    window_start: dt.date = dt.date(2016, 4, 1)
    extract_date: dt.date = dt.date(2024, 3, 31)  # stages after this date have not happened yet
    chunk_persons: Annotated[int, Field(gt=0)] = 50_000

    @classmethod
    def preset(
        cls, persons: int, error_rate: ErrorRate | str = ErrorRate.medium, **kw: object
    ) -> SynthParams:
        """Parameters with the noise rates of an ``--error-rate`` preset."""
        level = ErrorRate(error_rate)
        noise = NoiseRates().scaled(ERROR_RATE_FACTORS[level])
        return cls(persons=persons, error_rate=level, noise=noise, **kw)
