"""Victims of each case journey, as linked people (victims.parquet beside journeys.parquet).

A police crime row may name victims (token spec v2 victim mentions: role 'victim', mention_of = the
crime row's record_key). Each mention was clustered in the same run as suspects, defendants and
prisoners, so its person_id is the victim's predicted person: one row here per (journey, victim
person), so the release can count distinct victims, repeat victimisation and perpetrators with
several victims. Two mentions on one crime row clustered as one person give one row (their first
position and record key are kept). Like journeys.parquet, this holds record keys and person ids,
never a token.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from linkage.errors import InputError

# Columns of victims.parquet: the release vocabulary (release/vocabulary.py, unit 'victims') reads them.
VICTIMS_SQL = """
WITH mentions AS (   -- every victim mention of the police extract with its predicted person
    SELECT c.person_id AS victim_person_id, e.record_key, e.mention_of, e.victim_index,
           e.sex, e.age_band, e.ethnicity, {children} AS children_in_household
    FROM read_parquet('{police}') e
    JOIN read_parquet('{clusters}') c
      ON c.source_dataset = 'police' AND c.record_key = e.record_key AND c.source_row = e.source_row
    WHERE e.role = 'victim'
)
SELECT j.journey_id, m.victim_person_id, j.person_id AS suspect_person_id,
       j.force_area, j.recorded_date, j.da_flag,
       -- the victim's own recorded sex, age band (at the recorded date) and ethnicity
       arg_min(m.sex, m.victim_index) AS victim_sex,
       arg_min(m.age_band, m.victim_index) AS victim_age_band,
       arg_min(m.ethnicity, m.victim_index) AS victim_ethnicity,
       any_value(m.children_in_household) AS children_in_household,   -- the crime's, same on every mention
       min(m.victim_index) AS victim_index,
       arg_min(m.record_key, m.victim_index) AS victim_record_key
FROM mentions m
JOIN read_parquet('{journeys}') j ON j.police_record_key = m.mention_of
GROUP BY j.journey_id, m.victim_person_id, j.person_id, j.force_area, j.recorded_date, j.da_flag
ORDER BY j.journey_id, victim_index
"""


def assemble_victims(clusters: Path, police: Path, journeys: Path, out: Path) -> int:
    """Write ``out`` (victims.parquet) from the run's clusters, its police extract and its journeys;
    return the number of rows. An extract without victim mentions gives an empty file."""
    con = duckdb.connect()
    try:
        names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{police}')").fetchall()}
        if not {"role", "mention_of", "victim_index"} <= names:
            raise InputError(f"{police}: not a token spec v2 extract (no role / mention_of / victim_index)")
        children = "e.children_in_household" if "children_in_household" in names else "NULL::BIGINT"
        optional = {"age_band": "NULL::VARCHAR", "ethnicity": "NULL::VARCHAR"}
        sql = VICTIMS_SQL.format(police=police, clusters=clusters, journeys=journeys, children=children)
        for column, null in optional.items():
            if column not in names:
                sql = sql.replace(f"e.{column}", f"{null} AS {column}")
        con.execute(f"CREATE TEMP TABLE victims AS {sql}")
        con.execute(f"COPY victims TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        return int(con.execute("SELECT count(*) FROM victims").fetchall()[0][0])
    finally:
        con.close()
