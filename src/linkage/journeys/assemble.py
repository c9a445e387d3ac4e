"""Assemble case journeys from a run's clusters and its extracts (DuckDB SQL; the rules: docs/journeys.md).

A journey is one case of one linked person: a police crime and, where they exist, the CPS receipt
and charging decision, the court case (first hearing, verdict, sentence, restraining order), the
prison reception that followed it, and its supervision in the community by probation (a community
order, a suspended sentence order, or a licence after release). Stages are attached in four one-to-one
matching steps, always within one predicted person:

  1. CPS record  -> police record   shared case reference first, else dates and offence
  2. court record -> journey        shared case reference (police or CPS copy) first, else dates
  3. prison record -> journey       dates, custodial sentence, sentence length and offence (no reference)
  4. probation record -> journey    shared case reference first, else the sentence it follows (order
                                    start after the sentence date; licence start on the release date)

A record that attaches to nothing starts a journey of its own (an "orphan"), so every record of
the run lands in exactly one journey. Derived facts need the whole person: the DA flag (police or
CPS flagged it; courts and prisons carry none), breaches of restraining orders (a later police
breach offence), DA history at prison reception and at the start of probation supervision, and the
next DA crime (reoffending). Probation is optional: a run without a probation extract gets journeys
with empty probation columns.

Tokens are used only for the case-reference equality inside this module; journeys.parquet carries
record keys (to trace each stage to its source record) and the predicted person id, never a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.errors import InputError, VerificationError
from linkage.util import atomic_path

AGENCIES = ("police", "prosecution", "court", "prison", "probation")
OPTIONAL = ("probation",)  # a run may link without these; their journey columns are then empty

# Home Office offence code of a breach of a restraining order (Protection from Harassment Act 1997).
BREACH_OFFENCE_CODES = ("195/12",)
# How far apart two stages of one case may be when no case reference ties them (days).
CPS_AFTER_RECORDING_DAYS = 730
HEARING_AFTER_DECISION_DAYS = 730
HEARING_AFTER_RECORDING_DAYS = 1095
RECEPTION_AFTER_SENTENCE_DAYS = 90
SUPERVISION_AFTER_SENTENCE_DAYS = 90  # a community or suspended sentence order starts within this
LICENCE_AFTER_RELEASE_DAYS = 7  # a licence starts on the day of release (slack for data entry)
# Probation order type -> the sentence it follows.
PROBATION_SENTENCE = {
    "Community order": "Community order",
    "Suspended sentence order": "Suspended sentence",
    "Licence": "Immediate custody",
}
EARLY_DAYS = 1  # a stage dated a day before the previous one is still accepted (data-entry slack)

_BREACH_SQL = ", ".join(f"'{c}'" for c in BREACH_OFFENCE_CODES)
STAGE_KEYS = (
    "police_record_key",
    "cps_record_key",
    "court_record_key",
    "prison_record_key",
    "probation_record_key",
)
_PROBATION_ATTRIBUTES = """probation_type, probation_start_date, probation_expected_end_date,
    probation_requirement, probation_breach_date, probation_end_date, probation_termination,
    offence_code, sentence_length_days, ethnicity, age_band"""
# The empty probation table of a run without a probation extract (same columns as a loaded one).
_NO_PROBATION = """
    CREATE TEMP TABLE probation (
        person_id BIGINT, record_key BIGINT, case_ref BIGINT, sex VARCHAR, role VARCHAR,
        probation_type VARCHAR, probation_start_date DATE, probation_expected_end_date DATE,
        probation_requirement VARCHAR, probation_breach_date DATE, probation_end_date DATE,
        probation_termination VARCHAR, offence_code VARCHAR, sentence_length_days BIGINT,
        ethnicity VARCHAR, age_band VARCHAR)"""


@dataclass(frozen=True)
class JourneySummary:
    """Counts that describe how the journeys were assembled (no identifiers)."""

    journeys: int
    persons: int
    records: dict[str, int]
    attached_by_reference: dict[str, int]
    attached_by_dates: dict[str, int]
    orphans: dict[str, int]
    case_reference_across_persons: int
    da_flag_disagreements: int
    data_end: str | None


def _load(con: duckdb.DuckDBPyConnection, clusters: Path, extracts: dict[str, Path]) -> None:
    """One table per agency with the predicted person of every record.

    Clusters and extracts must hold exactly the same records: a clustered record missing from its
    extract (or an extract record the run never clustered) means the pair does not belong together,
    and is refused rather than dropped from the journeys.
    """
    con.execute(f"CREATE TEMP TABLE clusters AS SELECT * FROM read_parquet('{clusters}')")
    unknown = sorted(
        r[0]
        for r in con.execute("SELECT DISTINCT source_dataset FROM clusters").fetchall()
        if r[0] not in extracts
    )
    if unknown:
        raise VerificationError(f"{clusters}: records of dataset(s) {unknown} the run has no extract for")
    selects = {
        "police": """recorded_date, offence_date, force_area, offence_code, da_flag, police_outcome,
                     police_outcome_date, ethnicity, victim_sex, victim_relationship, age_band,
                     police_employee""",
        "prosecution": """cps_area, receipt_date, charging_decision, decision_date, offence_code, da_flag,
                          age_band""",
        "court": """court_code, offence_code, first_hearing_date, verdict, verdict_date, sentence_type,
                    sentence_length_days, sentence_date, restraining_order, age_band""",
        "prison": """establishment, reception_date, release_date, offence_code, sentence_length_days,
                     ethnicity, age_band""",
        "probation": _PROBATION_ATTRIBUTES,
    }
    for agency, cols in selects.items():
        if agency in OPTIONAL and agency not in extracts:
            con.execute(_NO_PROBATION)
            continue
        con.execute(f"""
            CREATE TEMP TABLE {agency} AS
            SELECT c.person_id, e.record_key, e.case_ref, e.sex, e.role, {cols}
            FROM read_parquet('{extracts[agency]}') e
            JOIN clusters c
              ON c.source_dataset = '{agency}' AND c.record_key = e.record_key
             AND c.source_row = e.source_row""")
        total = con.execute(f"SELECT count(*) FROM read_parquet('{extracts[agency]}')").fetchall()[0][0]
        clustered = con.execute(
            "SELECT count(*) FROM clusters WHERE source_dataset = ?", [agency]
        ).fetchall()[0][0]
        kept = con.execute(f"SELECT count(*) FROM {agency}").fetchall()[0][0]
        if kept != clustered or kept != total:
            raise VerificationError(
                f"{clusters}: {clustered - kept:,} clustered {agency} record(s) are not in "
                f"{extracts[agency]} and {total - kept:,} of its records are not clustered: the extract is "
                "not the one the run linked (refused; no record is dropped)"
            )
        # A victim mention (token spec v2) is a person linked in the same run, not a crime, charge or
        # sentence of its own: the journeys are built from the agency's subject records only.
        con.execute(f"DELETE FROM {agency} WHERE role = 'victim'")


def _match(con: duckdb.DuckDBPyConnection, candidates: str, out: str, left: str, right: str) -> None:
    """Greedy one-to-one matching of ``candidates`` (left, right, by_ref, rank) into table ``out``.

    Each round keeps the pairs that are the best remaining candidate of both their records
    ("locally dominant"); with one strict order over pairs this gives the same matching as taking
    pairs best-first, but runs as a handful of set-based rounds instead of a row-by-row loop.
    """
    con.execute(f"CREATE TEMP TABLE {out} AS SELECT {left}, {right}, by_ref FROM {candidates} LIMIT 0")
    while True:
        added = con.execute(f"""
            INSERT INTO {out}
            SELECT {left}, {right}, by_ref FROM (
                SELECT *,
                       row_number() OVER (PARTITION BY {left} ORDER BY rank) AS best_for_left,
                       row_number() OVER (PARTITION BY {right} ORDER BY rank) AS best_for_right
                FROM {candidates}
                WHERE {left} NOT IN (SELECT {left} FROM {out})
                  AND {right} NOT IN (SELECT {right} FROM {out})
            ) WHERE best_for_left = 1 AND best_for_right = 1""").fetchall()[0][0]
        if not added:
            return


def _attach_cps(con: duckdb.DuckDBPyConnection) -> None:
    """Step 1: each CPS receipt to the police crime it came from (same person)."""
    con.execute(f"""
        CREATE TEMP TABLE cps_candidates AS
        SELECT c.record_key AS cps_key, p.record_key AS police_key,
               coalesce(c.case_ref = p.case_ref, false) AS by_ref,
               -- one strict order over pairs: shared reference, same offence, the police outcome
               -- dated on the CPS decision (outcomes of referred crimes follow the decision),
               -- then the shortest recording-to-receipt gap; record keys break ties
               [NOT coalesce(c.case_ref = p.case_ref, false),
                NOT coalesce(c.offence_code = p.offence_code, false),
                NOT coalesce(p.police_outcome_date = c.decision_date, false),
                abs(c.receipt_date - p.recorded_date), c.record_key, p.record_key] AS rank
        FROM prosecution c JOIN police p USING (person_id)
        WHERE c.case_ref = p.case_ref
           OR c.receipt_date BETWEEN p.recorded_date - {EARLY_DAYS}
                                 AND p.recorded_date + {CPS_AFTER_RECORDING_DAYS}""")
    _match(con, "cps_candidates", "cps_match", "cps_key", "police_key")
    # Partial journeys: every police crime (with its CPS record if any), plus unattached CPS records.
    con.execute("""
        CREATE TEMP TABLE partial AS
        SELECT row_number() OVER (ORDER BY person_id, police_key, cps_key) AS jid, * FROM (
            SELECT p.person_id, p.record_key AS police_key, m.cps_key, m.by_ref AS cps_by_ref
            FROM police p LEFT JOIN cps_match m ON m.police_key = p.record_key
            UNION ALL
            SELECT c.person_id, NULL, c.record_key, NULL
            FROM prosecution c WHERE c.record_key NOT IN (SELECT cps_key FROM cps_match)
        )""")


def _attach_court(con: duckdb.DuckDBPyConnection) -> None:
    """Step 2: each court case to the journey (police and/or CPS) it prosecutes."""
    con.execute(f"""
        CREATE TEMP TABLE court_candidates AS
        WITH j AS (
            SELECT j.jid, j.person_id, p.case_ref AS police_ref, c.case_ref AS cps_ref,
                   coalesce(c.offence_code, p.offence_code) AS offence_code,
                   c.charging_decision, c.decision_date, p.recorded_date
            FROM partial j
            LEFT JOIN police p ON p.record_key = j.police_key
            LEFT JOIN prosecution c ON c.record_key = j.cps_key
        )
        SELECT k.record_key AS court_key, j.jid,
               coalesce(k.case_ref = j.police_ref OR k.case_ref = j.cps_ref, false) AS by_ref,
               -- shared reference, a CPS charge, same offence, then the shortest gap from the
               -- charging decision (or from recording when the CPS record is missing)
               [NOT coalesce(k.case_ref = j.police_ref OR k.case_ref = j.cps_ref, false),
                NOT coalesce(j.charging_decision = 'Charge', false),
                NOT coalesce(k.offence_code = j.offence_code, false),
                abs(k.first_hearing_date - coalesce(j.decision_date, j.recorded_date)),
                k.record_key, j.jid] AS rank
        FROM court k JOIN j USING (person_id)
        WHERE k.case_ref = j.police_ref OR k.case_ref = j.cps_ref
           OR k.first_hearing_date BETWEEN j.decision_date - {EARLY_DAYS}
                                       AND j.decision_date + {HEARING_AFTER_DECISION_DAYS}
           OR (j.decision_date IS NULL
               AND k.first_hearing_date BETWEEN j.recorded_date - {EARLY_DAYS}
                                            AND j.recorded_date + {HEARING_AFTER_RECORDING_DAYS})""")
    _match(con, "court_candidates", "court_match", "court_key", "jid")


def _attach_prison(con: duckdb.DuckDBPyConnection) -> None:
    """Step 3: each prison reception to the court sentence that sent the person there."""
    con.execute(f"""
        CREATE TEMP TABLE prison_candidates AS
        SELECT r.record_key AS prison_key, m.jid, false AS by_ref,
               -- a custodial sentence, the same length, the same offence, then the nearest date
               [NOT coalesce(k.sentence_type = 'Immediate custody', false),
                NOT coalesce(r.sentence_length_days = k.sentence_length_days, false),
                NOT coalesce(r.offence_code = k.offence_code, false),
                abs(r.reception_date - k.sentence_date), r.record_key, m.jid] AS rank
        FROM prison r
        JOIN court k USING (person_id)
        JOIN court_match m ON m.court_key = k.record_key
        WHERE r.reception_date BETWEEN k.sentence_date - {EARLY_DAYS}
                                   AND k.sentence_date + {RECEPTION_AFTER_SENTENCE_DAYS}""")
    _match(con, "prison_candidates", "prison_match", "prison_key", "jid")


def _attach_probation(con: duckdb.DuckDBPyConnection) -> None:
    """Step 4: each probation supervision to the sentence (and, for a licence, the release) it follows."""
    sentence_of = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in PROBATION_SENTENCE.items())
    con.execute(f"""
        CREATE TEMP TABLE probation_candidates AS
        WITH j AS (      -- journeys with a court case: its sentence, release and every case reference
            SELECT m.jid, k.person_id, k.sentence_type, k.sentence_date, k.sentence_length_days,
                   k.offence_code, r.release_date, [k.case_ref, p.case_ref, c.case_ref] AS refs
            FROM court_match m
            JOIN court k ON k.record_key = m.court_key
            JOIN partial pj ON pj.jid = m.jid
            LEFT JOIN police p ON p.record_key = pj.police_key
            LEFT JOIN prosecution c ON c.record_key = pj.cps_key
            LEFT JOIN prison_match pm ON pm.jid = m.jid
            LEFT JOIN prison r ON r.record_key = pm.prison_key
        ),
        s AS (           -- each supervision with the sentence it follows and the date it starts from
            SELECT *, CASE probation_type {sentence_of} END AS follows
            FROM probation
        ),
        pairs AS (
            SELECT s.record_key AS probation_key, j.jid, s.probation_type, s.probation_start_date,
                   coalesce(list_contains(j.refs, s.case_ref), false) AS by_ref,
                   coalesce(j.sentence_type = s.follows, false) AS same_sentence,
                   coalesce(j.sentence_length_days = s.sentence_length_days, false) AS same_length,
                   coalesce(j.offence_code = s.offence_code, false) AS same_offence,
                   -- a licence starts on release; an order a few days after the sentence
                   CASE WHEN s.probation_type = 'Licence' THEN j.release_date ELSE j.sentence_date END
                       AS anchor,
                   s.record_key
            FROM s JOIN j USING (person_id)
        )
        SELECT probation_key, jid, by_ref,
               -- shared reference, the sentence the order follows, its length and offence, nearest date
               [NOT by_ref, NOT same_sentence, NOT same_length, NOT same_offence,
                abs(probation_start_date - anchor), probation_key, jid] AS rank
        FROM pairs
        WHERE by_ref
           OR (probation_type = 'Licence'
               AND probation_start_date BETWEEN anchor - {EARLY_DAYS}
                                            AND anchor + {LICENCE_AFTER_RELEASE_DAYS})
           OR (probation_type <> 'Licence'
               AND probation_start_date BETWEEN anchor - {EARLY_DAYS}
                                            AND anchor + {SUPERVISION_AFTER_SENTENCE_DAYS})""")
    _match(con, "probation_candidates", "probation_match", "probation_key", "jid")


JOURNEYS_SQL = f"""
-- Every record in exactly one journey: partial journeys with their court, prison and probation
-- records, then court cases, prison receptions and supervisions that attached to nothing, as
-- journeys of their own.
WITH spine AS (
    SELECT j.person_id, j.police_key, j.cps_key, k.court_key, r.prison_key,
           j.cps_by_ref, k.by_ref AS court_by_ref, r.prison_key IS NOT NULL AS prison_by_dates,
           b.probation_key, b.by_ref AS probation_by_ref
    FROM partial j
    LEFT JOIN court_match k USING (jid)
    LEFT JOIN prison_match r USING (jid)
    LEFT JOIN probation_match b USING (jid)
    UNION ALL
    SELECT person_id, NULL, NULL, record_key, NULL, NULL, NULL, NULL, NULL, NULL
    FROM court WHERE record_key NOT IN (SELECT court_key FROM court_match)
    UNION ALL
    SELECT person_id, NULL, NULL, NULL, record_key, NULL, NULL, NULL, NULL, NULL
    FROM prison WHERE record_key NOT IN (SELECT prison_key FROM prison_match)
    UNION ALL
    SELECT person_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, record_key, NULL
    FROM probation WHERE record_key NOT IN (SELECT probation_key FROM probation_match)
),
stages AS (
    SELECT s.person_id,
           s.police_key AS police_record_key, s.cps_key AS cps_record_key,
           s.court_key AS court_record_key, s.prison_key AS prison_record_key,
           CASE WHEN s.cps_key IS NULL THEN NULL WHEN s.police_key IS NULL THEN 'orphan'
                WHEN s.cps_by_ref THEN 'case_ref' ELSE 'dates' END AS cps_link,
           CASE WHEN s.court_key IS NULL THEN NULL
                WHEN s.police_key IS NULL AND s.cps_key IS NULL THEN 'orphan'
                WHEN s.court_by_ref THEN 'case_ref' ELSE 'dates' END AS court_link,
           CASE WHEN s.prison_key IS NULL THEN NULL WHEN s.prison_by_dates THEN 'dates'
                ELSE 'orphan' END AS prison_link,
           s.probation_key AS probation_record_key,
           CASE WHEN s.probation_key IS NULL THEN NULL WHEN s.probation_by_ref IS NULL THEN 'orphan'
                WHEN s.probation_by_ref THEN 'case_ref' ELSE 'dates' END AS probation_link,
           coalesce(p.sex, c.sex, k.sex, r.sex, b.sex) AS suspect_sex,
           coalesce(p.age_band, c.age_band, k.age_band, r.age_band, b.age_band) AS age_band,
           coalesce(p.ethnicity, r.ethnicity, b.ethnicity) AS ethnicity,
           p.force_area, p.recorded_date, p.offence_date, p.offence_code AS police_offence_code,
           p.da_flag AS police_da_flag, p.police_outcome, p.police_outcome_date,
           p.victim_sex, p.victim_relationship,
           c.cps_area, c.receipt_date AS cps_receipt_date, c.charging_decision, c.decision_date,
           c.offence_code AS cps_offence_code, c.da_flag AS cps_da_flag,
           k.court_code, k.offence_code AS court_offence_code, k.first_hearing_date, k.verdict,
           k.verdict_date, k.sentence_type, k.sentence_length_days, k.sentence_date, k.restraining_order,
           r.establishment AS prison_establishment, r.reception_date AS prison_reception_date,
           r.release_date AS prison_release_date, r.offence_code AS prison_offence_code,
           r.sentence_length_days AS prison_sentence_length_days,
           p.police_employee AS suspect_police_employee,
           b.probation_type, b.probation_start_date, b.probation_expected_end_date,
           b.probation_requirement, b.probation_breach_date, b.probation_end_date, b.probation_termination,
           -- DA if the police or the CPS flagged it; unknown when neither record is in the journey
           CASE WHEN p.record_key IS NULL AND c.record_key IS NULL THEN NULL
                ELSE coalesce(p.da_flag, false) OR coalesce(c.da_flag, false) END AS da_flag,
           CASE WHEN k.restraining_order THEN coalesce(k.sentence_date, k.verdict_date) END AS order_date,
           coalesce(p.recorded_date, c.receipt_date, k.first_hearing_date, r.reception_date,
                    b.probation_start_date) AS start_date
    FROM spine s
    LEFT JOIN police p ON p.record_key = s.police_key
    LEFT JOIN prosecution c ON c.record_key = s.cps_key
    LEFT JOIN court k ON k.record_key = s.court_key
    LEFT JOIN prison r ON r.record_key = s.prison_key
    LEFT JOIN probation b ON b.record_key = s.probation_key
),
numbered AS (
    SELECT row_number() OVER (ORDER BY person_id, start_date, police_record_key, cps_record_key,
                                       court_record_key, prison_record_key, probation_record_key)
               AS journey_id, *,
           -- reoffending is counted from release (custody) or from sentence (other disposals)
           CASE WHEN sentence_type = 'Immediate custody' THEN prison_release_date
                ELSE sentence_date END AS reoffence_index_date
    FROM stages
),
da_crimes AS (   -- every DA police crime, the events reoffending and DA history are made of
    SELECT person_id, record_key, recorded_date FROM police WHERE da_flag
),
breaches AS (    -- each breach crime belongs to the person's latest order made before it
    SELECT b.record_key, b.recorded_date, arg_max(o.journey_id, o.order_date) AS order_journey
    FROM police b JOIN numbered o USING (person_id)
    WHERE b.offence_code IN ({_BREACH_SQL}) AND o.order_date < b.recorded_date
    GROUP BY ALL
)
SELECT n.*,
       (SELECT min(b.recorded_date) FROM breaches b WHERE b.order_journey = n.journey_id)
           AS order_breach_date,
       (SELECT count(*) FROM da_crimes d
         WHERE d.person_id = n.person_id AND d.recorded_date < n.start_date) AS prior_da_crimes,
       -- history of DA at prison reception: an earlier DA police crime other than this case's own
       CASE WHEN n.prison_reception_date IS NOT NULL THEN
           EXISTS (SELECT 1 FROM da_crimes d WHERE d.person_id = n.person_id
                   AND d.recorded_date < n.prison_reception_date
                   AND d.record_key IS DISTINCT FROM n.police_record_key) END AS da_history,
       -- history of DA at the start of probation supervision, defined as at prison reception
       CASE WHEN n.probation_start_date IS NOT NULL THEN
           EXISTS (SELECT 1 FROM da_crimes d WHERE d.person_id = n.person_id
                   AND d.recorded_date < n.probation_start_date
                   AND d.record_key IS DISTINCT FROM n.police_record_key) END AS probation_da_history,
       (SELECT min(d.recorded_date) FROM da_crimes d
         WHERE d.person_id = n.person_id AND d.recorded_date > n.recorded_date) AS next_da_crime_date,
       (SELECT min(d.recorded_date) FROM da_crimes d
         WHERE d.person_id = n.person_id AND d.recorded_date > n.reoffence_index_date) AS reoffence_date
FROM numbered n
ORDER BY journey_id
"""


def assemble_journeys(clusters: Path, extracts: dict[str, Path], out: Path) -> JourneySummary:
    """Write ``out`` (journeys.parquet) from a run's clusters and its extracts (four, or five with
    probation); return the counts."""
    con = duckdb.connect()
    names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{clusters}')").fetchall()}
    needed = {"source_dataset", "record_key", "source_row", "person_id"}
    if not needed <= names:
        raise InputError(f"{clusters}: missing column(s) {', '.join(sorted(needed - names))}")
    _load(con, clusters, extracts)
    _attach_cps(con)
    _attach_court(con)
    _attach_prison(con)
    _attach_probation(con)
    con.execute(f"CREATE TEMP TABLE journeys AS {JOURNEYS_SQL}")
    with atomic_path(out) as tmp:
        con.execute(f"COPY journeys TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
    return _summarise(con)


def _summarise(con: duckdb.DuckDBPyConnection) -> JourneySummary:
    def one(sql: str):
        return con.execute(sql).fetchall()[0][0]

    links = {
        agency: dict(
            con.execute(f"SELECT {col}, count(*) FROM journeys WHERE {col} IS NOT NULL GROUP BY 1").fetchall()
        )
        for agency, col in (
            ("prosecution", "cps_link"),
            ("court", "court_link"),
            ("prison", "prison_link"),
            ("probation", "probation_link"),
        )
    }
    return JourneySummary(
        journeys=one("SELECT count(*) FROM journeys"),
        persons=one("SELECT count(DISTINCT person_id) FROM journeys"),
        records={a: one(f"SELECT count(*) FROM {a}") for a in AGENCIES},
        attached_by_reference={a: v.get("case_ref", 0) for a, v in links.items()},
        attached_by_dates={a: v.get("dates", 0) for a, v in links.items()},
        orphans={a: v.get("orphan", 0) for a, v in links.items()},
        # a case reference shared by records of two predicted persons hints at a missed link
        case_reference_across_persons=one("""
            SELECT count(*) FROM (
                SELECT case_ref FROM (SELECT person_id, case_ref FROM police
                                      UNION ALL SELECT person_id, case_ref FROM prosecution
                                      UNION ALL SELECT person_id, case_ref FROM court)
                WHERE case_ref IS NOT NULL GROUP BY case_ref HAVING count(DISTINCT person_id) > 1)"""),
        da_flag_disagreements=one(
            "SELECT count(*) FROM journeys WHERE police_da_flag IS DISTINCT FROM cps_da_flag"
            " AND police_da_flag IS NOT NULL AND cps_da_flag IS NOT NULL"
        ),
        data_end=str(one("SELECT max(recorded_date) FROM police") or "") or None,
    )
