"""What a release may publish: the dimensions, measures and statistics a policy can name.

Every published count is a count of journeys meeting a conjunction of `dimension = value`
conditions, so two cells with the same conditions are the same number wherever they appear: that
canonical key is how secondary suppression keeps tables of one release consistent (release/sdc.py).
Anything not listed here cannot be published; identifiers and record-level columns are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from linkage.release.lookups import OFFENCE_GROUPS, OTHER_OFFENCES, offence_group_sql
from linkage.tokens.spec import RECORD_KEY, SOURCE_ROW, TOKEN_COLUMN_NAMES

# Columns that identify people or records: a policy naming one is refused, and no published table
# may carry one (release/tables.py checks the headers again before anything is written).
IDENTIFYING = frozenset(
    {*TOKEN_COLUMN_NAMES, RECORD_KEY, SOURCE_ROW, "person_id", "journey_id", "case_id"}
    | {f"{s}_record_key" for s in ("police", "cps", "court", "prison", "probation", "victim")}
    | {"victim_person_id", "suspect_person_id"}
)
NOT_KNOWN = "Not known"
YES_NO = ("Yes", "No")


def _fy(col: str) -> str:
    """Financial year (April-March, as police and CPS statistics) of a date column, e.g. '2019/20'."""
    y = f"(year({col}) - CASE WHEN month({col}) < 4 THEN 1 ELSE 0 END)"
    return (
        f"CASE WHEN {col} IS NULL THEN 'Not known' ELSE "
        f"{y}::VARCHAR || '/' || lpad((({y} + 1) % 100)::VARCHAR, 2, '0') END"
    )


def _fq(col: str) -> str:
    """Quarter of the financial year of a date column, e.g. '2019/20 Q1' (April-June 2019)."""
    q = f"((month({col}) + 8) % 12) // 3 + 1"
    return f"CASE WHEN {col} IS NULL THEN 'Not known' ELSE {_fy(col)} || ' Q' || ({q})::VARCHAR END"


def _yes_no(cond: str) -> str:
    return f"CASE WHEN {cond} THEN 'Yes' ELSE 'No' END"


DA_INDEX_OR_HISTORY = ("DA index offence", "DA history only", "Neither", NOT_KNOWN)


def _da_index_or_history(history: str) -> str:
    """A DA index offence, else a DA history (the boolean column ``history``), else neither; not known
    when the journey has no police or CPS record (the DA flag is theirs)."""
    return (
        f"CASE WHEN da_flag THEN 'DA index offence' WHEN {history} THEN 'DA history only' "
        "WHEN da_flag IS NULL THEN 'Not known' ELSE 'Neither' END"
    )


def _sex(column: str) -> str:
    """A recorded sex code (M / F / X) as the published label."""
    labels = "WHEN 'M' THEN 'Male' WHEN 'F' THEN 'Female' WHEN 'X' THEN 'Other'"
    return f"CASE {column} {labels} ELSE 'Not known' END"


# Home Office outcome types (crime outcomes framework); 15 and 16 are the evidential-difficulty codes.
OUTCOME_LABELS = {
    1: "Charged/summonsed",
    2: "Caution - youth",
    3: "Caution - adult",
    4: "Taken into consideration",
    5: "Offender died",
    6: "Penalty notice for disorder",
    7: "Cannabis/khat warning",
    8: "Community resolution",
    9: "Prosecution not in the public interest (CPS)",
    10: "Formal action not in the public interest (police)",
    11: "Prosecution prevented - suspect under age",
    12: "Prosecution prevented - suspect too ill",
    13: "Prosecution prevented - victim or witness unavailable",
    14: "Evidential difficulties - suspect not identified",
    15: "Evidential difficulties - victim supports action",
    16: "Evidential difficulties - victim does not support action",
    17: "Prosecution time limit expired",
    18: "Investigation complete - no suspect identified",
    20: "Action undertaken by another body",
    21: "Further investigation not in the public interest",
    22: "Diversionary, educational or intervention activity",
}
_OUTCOME_SQL = (
    "CASE WHEN police_outcome IS NULL THEN 'Open (no outcome yet)' "
    + " ".join(f"WHEN police_outcome = {k} THEN '{k:02d} {v}'" for k, v in OUTCOME_LABELS.items())
    + " ELSE lpad(police_outcome::VARCHAR, 2, '0') || ' Other' END"
)

# Outcome types grouped as the Home Office outcomes bulletin reports them; 15 and 16 stay apart.
OUTCOME_GROUPS = {
    "Charged/summonsed": (1,),
    "Out-of-court resolution or diversion": (2, 3, 4, 6, 7, 8, 22),
    "Evidential difficulties - victim supports action (15)": (15,),
    "Evidential difficulties - victim does not support action (16)": (16,),
    "Evidential difficulties - suspect not identified, or no suspect": (14, 18),
    "Prosecution prevented or not in the public interest": (5, 9, 10, 11, 12, 13, 17, 20, 21),
}
OPEN = "Open (no outcome yet)"
_OUTCOME_GROUP_SQL = (
    f"CASE WHEN police_outcome IS NULL THEN '{OPEN}' "
    + " ".join(
        f"WHEN police_outcome IN ({', '.join(map(str, v))}) THEN '{k}'" for k, v in OUTCOME_GROUPS.items()
    )
    + " ELSE 'Other' END"
)

SENTENCE_TYPES = ("Immediate custody", "Suspended sentence", "Community order", "Fine", "Discharge", "Other")
PROBATION_TYPES = ("Community order", "Suspended sentence order", "Licence")
ONGOING = "Ongoing at the data end"
PROBATION_TERMINATIONS = (
    "Completed",
    "Revoked - breach",
    "Recalled to custody",
    "Terminated early - good progress",
    ONGOING,
)


@dataclass(frozen=True)
class Dimension:
    """A categorical breakdown: its SQL over journeys.parquet, the closed set of values a policy may
    name in `where` (a list, and for data-derived codes such as years a strict pattern), and the
    stage it needs (if any)."""

    sql: str
    description: str
    values: tuple[str, ...] = YES_NO
    pattern: str | None = None  # values also allowed: a full match of this (anchored, no quotes)
    requires: tuple[str, str] | None = None  # (stage dimension, 'Yes'): only journeys at that stage
    label: str = ""  # what a reader sees (report headings); the name when empty
    # What a row is where this dimension exists: a case journey, a DA victim or a DA perpetrator
    # (release/victims.py); a table's measures fix its unit, and its dimensions must exist there.
    units: tuple[str, ...] = ("journeys",)

    def allows(self, value: str) -> bool:
        return value in self.values or bool(self.pattern and re.fullmatch(self.pattern, value))


@dataclass(frozen=True)
class Measure:
    """A count of journeys meeting ``conditions`` (dimension -> value)."""

    label: str
    description: str
    conditions: dict[str, str] = field(default_factory=dict)
    # Why no source here records it: the measure is published as [x] (not available) in every cell.
    not_recorded: str = ""
    unit: str = "journeys"  # what is counted: journeys, or distinct victims / perpetrators (people)


@dataclass(frozen=True)
class Statistic:
    """A per-journey value summarised per cell; magnitudes also get a mean under dominance and p% rules."""

    sql: str
    description: str
    magnitude: bool = False
    label: str = ""
    # The table definitions, not the data, decide [z] (not applicable): in a row whose breakdown has
    # one of these values the statistic cannot exist (e.g. no custody length for a fine).
    not_applicable: dict[str, tuple[str, ...]] = field(default_factory=dict)


AGE_BAND = r"under \d{1,3}|\d{1,3}-\d{1,3}|\d{1,3}\+"  # the labels of the agency configs' age_band
YEAR = r"(19|20)\d{2}/\d{2}"  # a financial year as _fy writes it, e.g. 2019/20
QUARTER = YEAR + r" Q[1-4]"  # a quarter of a financial year as _fq writes it, e.g. 2019/20 Q1
OFFENCE = "coalesce(court_offence_code, cps_offence_code, police_offence_code)"
NO_CHARGE = ("NFA evidential", "NFA public interest", "Caution", "Other", "No decision yet")
NO_VERDICT = ("No verdict yet",)
NOT_CONVICTED = ("Acquitted", "Dismissed", "Withdrawn", "Discontinued", "No verdict yet")

DIMENSIONS: dict[str, Dimension] = {
    # stages reached (Yes/No), the building blocks of the funnel
    "police_record": Dimension(
        _yes_no("police_record_key IS NOT NULL"), "a police crime record is linked", label="Police record"
    ),
    "cps_record": Dimension(
        _yes_no("cps_record_key IS NOT NULL"), "a CPS receipt is linked", label="Referred to CPS"
    ),
    "court_case": Dimension(
        _yes_no("first_hearing_date IS NOT NULL"), "a court first hearing is linked", label="Court case"
    ),
    "convicted": Dimension(
        _yes_no("verdict IN ('Guilty plea', 'Convicted')"),
        "verdict: guilty plea or convicted after trial",
        label="Convicted",
    ),
    "sentenced": Dimension(_yes_no("sentence_date IS NOT NULL"), "a sentence is recorded", label="Sentenced"),
    "prison_reception": Dimension(
        _yes_no("prison_reception_date IS NOT NULL"), "a prison reception is linked", label="Prison reception"
    ),
    "order_made": Dimension(
        _yes_no("restraining_order"), "the court made a restraining order", label="Restraining order made"
    ),
    "reoffence_cohort": Dimension(
        _yes_no("reoffence_index_date IS NOT NULL AND reoffence_index_date <= $data_end - INTERVAL 365 DAY"),
        "sentenced (non-custodial) or released from custody at least 12 months before the data end",
        label="In the reoffending cohort",
    ),
    # who, where and when
    "force_area": Dimension(
        "coalesce(force_area, 'Not known')",
        "police force area (ONS code; the name is published beside it)",
        (NOT_KNOWN,),
        r"[EWSN]\d{8}",
        label="Police force area",
        units=("journeys", "victims", "perpetrators"),  # people: the force of their first DA crime
    ),
    "recorded_year": Dimension(
        _fy("recorded_date"),
        "financial year the police recorded the crime (people: their first DA crime)",
        (NOT_KNOWN,),
        YEAR,
        label="Financial year recorded",
        units=("journeys", "victims", "perpetrators"),
    ),
    "recorded_quarter": Dimension(
        _fq("recorded_date"),
        "quarter of the financial year the police recorded the crime (Q1 = April to June)",
        (NOT_KNOWN,),
        QUARTER,
        label="Quarter recorded",
    ),
    "da_flag": Dimension(
        "CASE da_flag WHEN true THEN 'DA' WHEN false THEN 'Not DA' ELSE 'Not known' END",
        "domestic abuse: flagged by the police or the CPS (courts and prisons carry no flag)",
        ("DA", "Not DA", NOT_KNOWN),
        label="Domestic abuse",
    ),
    "suspect_sex": Dimension(
        _sex("suspect_sex"),
        "sex of the suspect/defendant",
        ("Male", "Female", "Other", NOT_KNOWN),
        label="Suspect sex",
    ),
    "age_band": Dimension(
        "coalesce(age_band, 'Not known')",
        "age band of the suspect at the first stage",
        (NOT_KNOWN,),
        AGE_BAND,
        label="Suspect age band",
    ),
    "ethnicity": Dimension(
        "coalesce(ethnicity, 'Not known')",
        "self-defined ethnicity, five ONS groups",
        ("Asian", "Black", "Mixed", "White", "Other", NOT_KNOWN),
        label="Suspect ethnicity",
    ),
    "victim_sex": Dimension(
        "CASE victim_sex WHEN 'M' THEN 'Male' WHEN 'F' THEN 'Female' ELSE 'Not known' END",
        "sex of the victim (police record)",
        ("Male", "Female", NOT_KNOWN),
        label="Victim sex",
    ),
    "victim_relationship": Dimension(
        "coalesce(victim_relationship, 'Not known')",
        "victim's relationship to the suspect (police record)",
        ("Partner", "Ex-partner", "Family member", "Other", NOT_KNOWN),
        label="Victim's relationship to the suspect",
    ),
    "offence_group": Dimension(
        offence_group_sql(OFFENCE),
        "ONS offence group of the offence prosecuted (court, else CPS, else police offence code; "
        "release/data/offence_groups.csv)",
        (*OFFENCE_GROUPS, OTHER_OFFENCES, NOT_KNOWN),
        label="Offence group",
    ),
    # what happened at each stage
    "police_outcome": Dimension(
        _OUTCOME_SQL,
        "Home Office outcome type of the police crime (Outcome 15/16: evidential difficulties)",
        (OPEN, *(f"{k:02d} {v}" for k, v in OUTCOME_LABELS.items())),
        r"\d{2} Other",
        requires=("police_record", "Yes"),
        label="Police outcome",
    ),
    "police_outcome_group": Dimension(
        _OUTCOME_GROUP_SQL,
        "Home Office outcome types in the groups of the outcomes bulletin (15 and 16 kept apart)",
        (*OUTCOME_GROUPS, OPEN, "Other"),
        requires=("police_record", "Yes"),
        label="Police outcome",
    ),
    "charging_decision": Dimension(
        "coalesce(charging_decision, 'No decision yet')",
        "CPS charging decision",
        ("Charge", *NO_CHARGE),
        requires=("cps_record", "Yes"),
        label="CPS charging decision",
    ),
    "verdict": Dimension(
        "coalesce(verdict, 'No verdict yet')",
        "court verdict",
        ("Guilty plea", "Convicted", *NOT_CONVICTED),
        requires=("court_case", "Yes"),
        label="Verdict",
    ),
    "sentence_type": Dimension(
        "coalesce(sentence_type, 'Not known')",
        "sentence (main disposal)",
        (*SENTENCE_TYPES, NOT_KNOWN),
        requires=("sentenced", "Yes"),
        label="Sentence",
    ),
    "order_breached": Dimension(
        _yes_no("order_breach_date IS NOT NULL"),
        "a later police crime for breach of a restraining order by the same person",
        requires=("order_made", "Yes"),
        label="Order breached",
    ),
    "order_year": Dimension(
        _fy("order_date"),
        "financial year the restraining order was made",
        (NOT_KNOWN,),
        YEAR,
        requires=("order_made", "Yes"),
        label="Financial year order made",
    ),
    "reception_year": Dimension(
        _fy("prison_reception_date"),
        "financial year of the prison reception",
        (NOT_KNOWN,),
        YEAR,
        requires=("prison_reception", "Yes"),
        label="Financial year received into prison",
    ),
    "da_history": Dimension(
        _yes_no("da_history"),
        "an earlier DA police crime by the same person before the prison reception (not the index crime)",
        requires=("prison_reception", "Yes"),
        label="History of DA",
    ),
    "da_prisoner": Dimension(
        _da_index_or_history("da_history"),
        "prisoners received for a DA index offence, else with a DA history (an earlier DA police crime), "
        "else neither; not known when the index offence has no police or CPS record",
        DA_INDEX_OR_HISTORY,
        requires=("prison_reception", "Yes"),
        label="DA index offence or DA history",
    ),
    # offenders managed in the community: probation supervision (community order, suspended sentence
    # order, licence after release) of the journey's sentence
    "probation_case": Dimension(
        _yes_no("probation_record_key IS NOT NULL"),
        "a probation supervision is linked: a community order, a suspended sentence order or a licence",
        label="Supervised by probation",
    ),
    "probation_type": Dimension(
        "coalesce(probation_type, 'Not known')",
        "type of supervision (probation record)",
        (*PROBATION_TYPES, NOT_KNOWN),
        requires=("probation_case", "Yes"),
        label="Type of supervision",
    ),
    "probation_year": Dimension(
        _fy("probation_start_date"),
        "financial year the supervision started",
        (NOT_KNOWN,),
        YEAR,
        requires=("probation_case", "Yes"),
        label="Financial year supervision started",
    ),
    "probation_breached": Dimension(
        _yes_no("probation_breach_date IS NOT NULL"),
        "probation recorded a breach: failure to comply with the order, or a licence recall",
        requires=("probation_case", "Yes"),
        label="Supervision breached",
    ),
    "probation_termination": Dimension(
        f"coalesce(probation_termination, '{ONGOING}')",
        "how the supervision ended (probation record); ongoing when it had not ended by the data end",
        PROBATION_TERMINATIONS,
        requires=("probation_case", "Yes"),
        label="How the supervision ended",
    ),
    "da_probation": Dimension(
        _da_index_or_history("probation_da_history"),
        "supervised for a DA index offence, else with a DA history (an earlier DA police crime before the "
        "supervision started), else neither; not known when the index offence has no police or CPS record",
        DA_INDEX_OR_HISTORY,
        requires=("probation_case", "Yes"),
        label="DA index offence or DA history",
    ),
    # police-perpetrated abuse: the police record says the suspect is a police officer or staff member
    "police_employee": Dimension(
        "CASE suspect_police_employee WHEN true THEN 'Yes' WHEN false THEN 'No' ELSE 'Not known' END",
        "the police recorded the suspect as a police officer or member of police staff",
        (*YES_NO, NOT_KNOWN),
        requires=("police_record", "Yes"),
        label="Suspect is a police employee",
    ),
    "nation": Dimension(
        "CASE WHEN force_area LIKE 'E23%' THEN 'England' WHEN force_area LIKE 'W15%' THEN 'Wales' "
        "ELSE 'Not known' END",
        "nation of the police force area (from its ONS code: E23 England, W15 Wales)",
        ("England", "Wales", NOT_KNOWN),
        label="Nation",
    ),
    "disposal": Dimension(
        "CASE WHEN sentence_type = 'Immediate custody' THEN 'Custody' ELSE 'Non-custodial' END",
        "custody or another sentence",
        ("Custody", "Non-custodial"),
        requires=("reoffence_cohort", "Yes"),
        label="Disposal",
    ),
    "reoffended_12m": Dimension(
        _yes_no("reoffence_date <= reoffence_index_date + INTERVAL 365 DAY"),
        "a new DA police crime recorded within 12 months of release or sentence",
        requires=("reoffence_cohort", "Yes"),
        label="Reoffended within 12 months",
    ),
    # victims and perpetrators as linked people (unit 'victims' / 'perpetrators', release/victims.py):
    # one row per distinct person named as a victim of (or suspected of) a DA crime
    "victim_person_sex": Dimension(
        _sex("victim_sex"),
        "the victim's recorded sex (first DA crime that records it)",
        ("Male", "Female", "Other", NOT_KNOWN),
        label="Victim sex",
        units=("victims",),
    ),
    "victim_age_band": Dimension(
        "coalesce(victim_age_band, 'Not known')",
        "the victim's age band at their first DA crime (from the victim's own date of birth)",
        (NOT_KNOWN,),
        AGE_BAND,
        label="Victim age band",
        units=("victims",),
    ),
    "victim_ethnicity": Dimension(
        "coalesce(victim_ethnicity, 'Not known')",
        "the victim's self-defined ethnicity, five ONS groups (first DA crime that records it)",
        ("Asian", "Black", "Mixed", "White", "Other", NOT_KNOWN),
        label="Victim ethnicity",
        units=("victims",),
    ),
    "victim_children": Dimension(
        "CASE WHEN children THEN 'Yes' WHEN NOT children THEN 'No' ELSE 'Not known' END",
        "children in the victim's household at one or more of their DA crimes",
        ("Yes", "No", NOT_KNOWN),
        label="Children in the household",
        units=("victims",),
    ),
    "repeat_victim_12m": Dimension(
        _yes_no("repeat_12m"),
        "named as the victim of two or more DA crimes recorded within 12 months of each other",
        label="Repeat victim (2+ DA crimes within 12 months)",
        units=("victims",),
    ),
    "perpetrator_victims": Dimension(
        _yes_no("victims >= 2"),
        "suspected of DA crimes against two or more distinct (linked) victims",
        label="DA crimes against 2+ victims",
        units=("perpetrators",),
    ),
    "perpetrator_sex": Dimension(
        _sex("suspect_sex"),
        "sex of the perpetrator (suspect)",
        ("Male", "Female", "Other", NOT_KNOWN),
        label="Perpetrator sex",
        units=("perpetrators",),
    ),
}

_NOT_RECORDED_ORDERS = (
    "no extract here records it: DVPNs and DVPOs are police notices and magistrates' civil orders, DAPOs "
    "(Domestic Abuse Act 2021, piloted from November 2024) are civil or criminal court orders; the court "
    "extract carries restraining orders only"
)

MEASURES: dict[str, Measure] = {
    "journeys": Measure("Journeys", "case journeys in the table's population"),
    "recorded": Measure("Recorded by police", "crimes recorded by the police", {"police_record": "Yes"}),
    "police_charge_summons": Measure(
        "Police outcome: charged/summonsed",
        "police outcome type 1",
        {"police_record": "Yes", "police_outcome": f"01 {OUTCOME_LABELS[1]}"},
    ),
    "cps_referral": Measure("Referred to CPS", "a CPS receipt follows", {"cps_record": "Yes"}),
    "cps_charged": Measure(
        "CPS decision: charge",
        "CPS charging decision 'Charge'",
        {"cps_record": "Yes", "charging_decision": "Charge"},
    ),
    "prosecuted": Measure("Prosecuted", "a first hearing in court", {"court_case": "Yes"}),
    "convicted": Measure("Convicted", "guilty plea or conviction", {"court_case": "Yes", "convicted": "Yes"}),
    "sentenced": Measure("Sentenced", "a sentence recorded", {"sentenced": "Yes"}),
    "custody": Measure(
        "Immediate custody",
        "sentenced to immediate custody",
        {"sentenced": "Yes", "sentence_type": "Immediate custody"},
    ),
    "prison_receptions": Measure("Prison receptions", "received into prison", {"prison_reception": "Yes"}),
    "probation_starts": Measure(
        "Supervisions started",
        "offenders starting supervision by probation: community order, suspended sentence order or licence",
        {"probation_case": "Yes"},
    ),
    "probation_breaches": Measure(
        "Supervisions breached",
        "supervisions with a breach (failure to comply, or licence recall) by the data end",
        {"probation_case": "Yes", "probation_breached": "Yes"},
    ),
    "orders_made": Measure("Restraining orders made", "order made by the court", {"order_made": "Yes"}),
    "orders_breached": Measure(
        "Restraining orders breached",
        "order followed by a police breach crime",
        {"order_made": "Yes", "order_breached": "Yes"},
    ),
    "dvpn_issued": Measure(
        "DVPNs issued", "domestic violence protection notices", not_recorded=_NOT_RECORDED_ORDERS
    ),
    "dvpo_made": Measure(
        "DVPOs made", "domestic violence protection orders", not_recorded=_NOT_RECORDED_ORDERS
    ),
    "dvpo_breached": Measure("DVPOs breached", "breaches of DVPOs", not_recorded=_NOT_RECORDED_ORDERS),
    "dapo_made": Measure("DAPOs made", "domestic abuse protection orders", not_recorded=_NOT_RECORDED_ORDERS),
    "dapo_breached": Measure("DAPOs breached", "breaches of DAPOs", not_recorded=_NOT_RECORDED_ORDERS),
    "reoffence_cohort": Measure(
        "Reoffending cohort", "at risk for 12 months before the data end", {"reoffence_cohort": "Yes"}
    ),
    "reoffended_12m": Measure(
        "Reoffended within 12 months (DA)",
        "new DA police crime within 12 months",
        {"reoffence_cohort": "Yes", "reoffended_12m": "Yes"},
    ),
    # people, not journeys (release/victims.py): each counts distinct linked persons
    "victims": Measure("DA victims", "distinct people named as the victim of a DA crime", unit="victims"),
    "victims_with_children": Measure(
        "DA victims with children in the household",
        "distinct DA victims with one or more children in the household at one or more of their DA crimes",
        {"victim_children": "Yes"},
        unit="victims",
    ),
    "repeat_victims_12m": Measure(
        "Repeat victims (2+ DA crimes within 12 months)",
        "distinct DA victims named in two or more DA crimes recorded within 12 months of each other",
        {"repeat_victim_12m": "Yes"},
        unit="victims",
    ),
    "perpetrators": Measure(
        "DA perpetrators with a named victim",
        "distinct suspects of DA crimes that name a victim",
        unit="perpetrators",
    ),
    "perpetrators_2plus_victims": Measure(
        "Perpetrators: DA crimes against 2+ victims",
        "distinct suspects of DA crimes against two or more distinct (linked) victims",
        {"perpetrator_victims": "Yes"},
        unit="perpetrators",
    ),
}

STATISTICS: dict[str, Statistic] = {
    "days_to_outcome": Statistic(
        "police_outcome_date - recorded_date",
        "days from police recording to the police outcome",
        label="Police record to outcome (days)",
        not_applicable={"police_outcome": (OPEN,), "police_outcome_group": (OPEN,)},
    ),
    "days_to_charge": Statistic(
        "CASE WHEN charging_decision = 'Charge' THEN decision_date - recorded_date END",
        "days from police recording to the CPS decision to charge (charged cases)",
        label="Police record to charge (days)",
        not_applicable={"charging_decision": NO_CHARGE},
    ),
    "days_to_verdict": Statistic(
        "verdict_date - recorded_date",
        "days from police recording to the verdict",
        label="Police record to verdict (days)",
        not_applicable={"verdict": NO_VERDICT},
    ),
    "days_offence_to_report": Statistic(
        "recorded_date - offence_date",
        "days from the offence to its recording by the police",
        label="Offence to police record (days)",
    ),
    "days_charge_to_hearing": Statistic(
        "CASE WHEN charging_decision = 'Charge' THEN first_hearing_date - decision_date END",
        "days from the CPS decision to charge to the first court hearing",
        label="Charge to first hearing (days)",
        not_applicable={"charging_decision": NO_CHARGE},
    ),
    "days_hearing_to_verdict": Statistic(
        "verdict_date - first_hearing_date",
        "days from the first court hearing to the verdict",
        label="First hearing to verdict (days)",
        not_applicable={"verdict": NO_VERDICT},
    ),
    "days_verdict_to_sentence": Statistic(
        "CASE WHEN verdict IN ('Guilty plea', 'Convicted') THEN sentence_date - verdict_date END",
        "days from conviction to sentence",
        label="Verdict to sentence (days)",
        not_applicable={"verdict": NOT_CONVICTED},
    ),
    "days_offence_to_verdict": Statistic(
        "verdict_date - offence_date",
        "days from the offence to the verdict (end to end)",
        label="Offence to verdict (days)",
        not_applicable={"verdict": NO_VERDICT},
    ),
    "custody_days": Statistic(
        "CASE WHEN sentence_type = 'Immediate custody' THEN sentence_length_days END",
        "length of an immediate custodial sentence in days",
        magnitude=True,
        label="Custodial sentence length (days)",
        not_applicable={
            "sentence_type": tuple(s for s in (*SENTENCE_TYPES, NOT_KNOWN) if s != "Immediate custody")
        },
    ),
}


# Breakdown values that cannot occur together by definition (a recall ends a licence, never a court
# order; a licence is not revoked for a breach, nor ended early). A count whose conditions hold one of
# these combinations is published as [z] (not applicable) rather than withheld as [c], when it is zero.
IMPOSSIBLE: tuple[dict[str, tuple[str, ...]], ...] = (
    {
        "probation_type": ("Community order", "Suspended sentence order"),
        "probation_termination": ("Recalled to custody",),
    },
    {
        "probation_type": ("Licence",),
        "probation_termination": ("Revoked - breach", "Terminated early - good progress"),
    },
)


def impossible(conditions: dict[str, str]) -> bool:
    """Whether the vocabulary says no journey can meet these conditions (a structural zero, [z])."""
    return any(all(conditions.get(d) in values for d, values in rule.items()) for rule in IMPOSSIBLE)


def label(name: str) -> str:
    """What a reader sees for a vocabulary name (dimension, measure or statistic)."""
    entry = DIMENSIONS.get(name) or MEASURES.get(name) or STATISTICS.get(name)
    return (entry and entry.label) or name.replace("_", " ").capitalize()


Key = tuple[tuple[str, str], ...]


def canonical(conditions: dict[str, str], unit: str = "journeys") -> Key:
    """The canonical key of a count: its conditions plus the stage each stage-detail dimension needs,
    sorted, so the key (and every order derived from it) is the same whatever PYTHONHASHSEED is.
    A count of people (unit victims / perpetrators) also carries its unit: the same conditions
    count different things there."""
    full = dict(conditions)
    for name in conditions:
        req = DIMENSIONS[name].requires
        if req:
            full[req[0]] = req[1]
    if unit != "journeys":
        full["unit"] = unit
    return tuple(sorted(full.items()))
