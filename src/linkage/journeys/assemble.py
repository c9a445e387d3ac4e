"""Assemble case journeys from a run's clusters and its extracts (DuckDB SQL; the rules: docs/journeys.md).

A journey is one case of one linked person: a police crime and, where they exist, the CPS receipt
and charging decision, the court case (first hearing, verdict, sentence, restraining order) and the
prison reception that followed it. Stages are attached in three one-to-one matching steps, always
within one predicted person:

  1. CPS record  -> police record   shared case reference first, else dates and offence
  2. court record -> journey        shared case reference (police or CPS copy) first, else dates
  3. prison record -> journey       dates, custodial sentence, sentence length and offence (no reference)

A record that attaches to nothing starts a journey of its own (an "orphan"), so every record of
the run lands in exactly one journey. Derived facts need the whole person: the DA flag (police or
CPS flagged it; courts and prisons carry none), breaches of restraining orders (a later police
breach offence), DA history at prison reception, and the next DA crime (reoffending).

Tokens are used only for the case-reference equality inside this module; journeys.parquet carries
record keys (to trace each stage to its source record) and the predicted person id, never a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.errors import InputError, VerificationError
from linkage.util import atomic_path

AGENCIES = ("police", "prosecution", "court", "prison")

# Home Office offence code of a breach of a restraining order (Protection from Harassment Act 1997).
BREACH_OFFENCE_CODES = ("195/12",)
# How far apart two stages of one case may be when no case reference ties them (days).
CPS_AFTER_RECORDING_DAYS = 730
HEARING_AFTER_DECISION_DAYS = 730
HEARING_AFTER_RECORDING_DAYS = 1095
RECEPTION_AFTER_SENTENCE_DAYS = 90
EARLY_DAYS = 1  # a stage dated a day before the previous one is still accepted (data-entry slack)

_BREACH_SQL = ", ".join(f"'{c}'" for c in BREACH_OFFENCE_CODES)
STAGE_KEYS = ("police_record_key", "cps_record_key", "court_record_key", "prison_record_key")


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
                     police_outcome_date, ethnicity, victim_sex, victim_relationship, age_band""",
        "prosecution": """cps_area, receipt_date, charging_decision, decision_date, offence_code, da_flag,
                          age_band""",
        "court": """court_code, offence_code, first_hearing_date, verdict, verdict_date, sentence_type,
                    sentence_length_days, sentence_date, restraining_order, age_band""",
        "prison": """establishment, reception_date, release_date, offence_code, sentence_length_days,
                     ethnicity, age_band""",
    }
    for agency, cols in selects.items():
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


JOURNEYS_SQL = f"""
-- Every record in exactly one journey: partial journeys with their court and prison records,
-- then court cases and prison receptions that attached to nothing, as journeys of their own.
WITH spine AS (
    SELECT j.person_id, j.police_key, j.cps_key, k.court_key, r.prison_key,
           j.cps_by_ref, k.by_ref AS court_by_ref, r.prison_key IS NOT NULL AS prison_by_dates
    FROM partial j
    LEFT JOIN court_match k USING (jid)
    LEFT JOIN prison_match r USING (jid)
    UNION ALL
    SELECT person_id, NULL, NULL, record_key, NULL, NULL, NULL, NULL
    FROM court WHERE record_key NOT IN (SELECT court_key FROM court_match)
    UNION ALL
    SELECT person_id, NULL, NULL, NULL, record_key, NULL, NULL, NULL
    FROM prison WHERE record_key NOT IN (SELECT prison_key FROM prison_match)
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
           coalesce(p.sex, c.sex, k.sex, r.sex) AS suspect_sex,
           coalesce(p.age_band, c.age_band, k.age_band, r.age_band) AS age_band,
           coalesce(p.ethnicity, r.ethnicity) AS ethnicity,
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
           -- DA if the police or the CPS flagged it; unknown when neither record is in the journey
           CASE WHEN p.record_key IS NULL AND c.record_key IS NULL THEN NULL
                ELSE coalesce(p.da_flag, false) OR coalesce(c.da_flag, false) END AS da_flag,
           CASE WHEN k.restraining_order THEN coalesce(k.sentence_date, k.verdict_date) END AS order_date,
           coalesce(p.recorded_date, c.receipt_date, k.first_hearing_date, r.reception_date) AS start_date
    FROM spine s
    LEFT JOIN police p ON p.record_key = s.police_key
    LEFT JOIN prosecution c ON c.record_key = s.cps_key
    LEFT JOIN court k ON k.record_key = s.court_key
    LEFT JOIN prison r ON r.record_key = s.prison_key
),
numbered AS (
    SELECT row_number() OVER (ORDER BY person_id, start_date, police_record_key, cps_record_key,
                                       court_record_key, prison_record_key) AS journey_id, *,
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
       (SELECT min(d.recorded_date) FROM da_crimes d
         WHERE d.person_id = n.person_id AND d.recorded_date > n.recorded_date) AS next_da_crime_date,
       (SELECT min(d.recorded_date) FROM da_crimes d
         WHERE d.person_id = n.person_id AND d.recorded_date > n.reoffence_index_date) AS reoffence_date
FROM numbered n
ORDER BY journey_id
"""


def assemble_journeys(clusters: Path, extracts: dict[str, Path], out: Path) -> JourneySummary:
    """Write ``out`` (journeys.parquet) from a run's clusters and its four extracts; return the counts."""
    con = duckdb.connect()
    names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{clusters}')").fetchall()}
    needed = {"source_dataset", "record_key", "source_row", "person_id"}
    if not needed <= names:
        raise InputError(f"{clusters}: missing column(s) {', '.join(sorted(needed - names))}")
    _load(con, clusters, extracts)
    _attach_cps(con)
    _attach_court(con)
    _attach_prison(con)
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
        for agency, col in (("prosecution", "cps_link"), ("court", "court_link"), ("prison", "prison_link"))
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
