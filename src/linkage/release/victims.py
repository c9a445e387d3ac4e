"""Victims and perpetrators as people: the release views over victims.parquet (journeys stage).

Journey tables count case journeys; these count distinct linked persons. Each view has one row per
person with the person's id (for the person counts), a record key (0-255, for cell key perturbation:
the mention record key of the victim's first DA crime, or the police record key of the perpetrator's
first DA crime) and the columns the `victims` / `perpetrators` dimensions of release/vocabulary.py read.
Only DA crimes count: a victim of a DA crime "reported a DA crime" in the Commissioner's sense.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from linkage.release import perturb

# One row per distinct DA victim. Sex, age band and ethnicity come from the first DA crime that records
# them (a person's record may lack one; ties on a date are broken by record key, so the choice is
# deterministic); children: any DA crime with one or more children in the
# household (NULL when no crime records the count); repeat: two DA crimes within 365 days.
VICTIM_PEOPLE_SQL = """
CREATE TEMP TABLE victim_people AS
WITH da AS (
    SELECT *, (recorded_date, victim_record_key) AS seq,   -- order of a victim's DA crimes
           recorded_date - lag(recorded_date) OVER (
               PARTITION BY victim_person_id ORDER BY recorded_date, victim_record_key) AS gap_days
    FROM victims WHERE da_flag
)
SELECT victim_person_id AS person_id,
       arg_min(victim_record_key, seq) AS record_key,
       arg_min(force_area, seq) AS force_area,
       min(recorded_date) AS recorded_date,
       arg_min(victim_sex, seq) FILTER (WHERE victim_sex IS NOT NULL) AS victim_sex,
       arg_min(victim_age_band, seq) FILTER (WHERE victim_age_band IS NOT NULL) AS victim_age_band,
       arg_min(victim_ethnicity, seq) FILTER (WHERE victim_ethnicity IS NOT NULL) AS victim_ethnicity,
       bool_or(children_in_household >= 1) AS children,
       coalesce(min(gap_days) <= 365, false) AS repeat_12m
FROM da GROUP BY victim_person_id
"""

# One row per distinct suspect of a DA crime naming a victim, with the number of distinct victims.
PERPETRATOR_PEOPLE_SQL = """
CREATE TEMP TABLE perpetrator_people AS
WITH da AS (
    SELECT v.*, j.police_record_key, j.suspect_sex, (v.recorded_date, j.police_record_key) AS seq
    FROM victims v JOIN journeys j USING (journey_id)
    WHERE v.da_flag
)
SELECT suspect_person_id AS person_id,
       arg_min(police_record_key, seq) AS record_key,
       arg_min(force_area, seq) AS force_area,
       min(recorded_date) AS recorded_date,
       arg_min(suspect_sex, seq) FILTER (WHERE suspect_sex IS NOT NULL) AS suspect_sex,
       count(DISTINCT victim_person_id) AS victims
FROM da GROUP BY suspect_person_id
"""

UNIT_TABLES = {"victims": "victim_people", "perpetrators": "perpetrator_people"}


def open_people(con: duckdb.DuckDBPyConnection, victims: Path, select: dict[str, str]) -> None:
    """Create the views `rv_victims` and `rv_perpetrators` (person_id, rkey, the unit's dimensions as
    `dim_<name>` columns; ``select`` maps each unit to that column list, built from the vocabulary)."""
    con.read_parquet(str(victims)).create_view("victims")
    con.execute(VICTIM_PEOPLE_SQL)
    con.execute(PERPETRATOR_PEOPLE_SQL)
    rkey = perturb.record_key_sql(["record_key"])
    for unit, table in UNIT_TABLES.items():
        dims = f", {select[unit]}" if select[unit] else ""
        con.execute(f"CREATE TEMP VIEW rv_{unit} AS SELECT person_id, {rkey} AS rkey{dims} FROM {table}")
