"""Record and check every released table with ACRO (the SACRO project's output checker, PyPI `acro`).

For each table and measure, ACRO cross-tabulates the journey microdata itself (inside the secure
zone) and runs its own primary checks (threshold, zeros, and for means the (n, k) and p% rules)
with the release policy's parameters. Every cell ACRO flags must be withheld in our protected
table, or the release is refused; the protected table (secondary suppression and rounding
applied) then replaces ACRO's raw table as the output file, so no unprotected number is written.
`finalise` writes results.json, the outputs, a session summary and SHA-256 checksums for the
human output checker (the SACRO viewer reads this folder).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb

from linkage.config.release import ReleasePolicy
from linkage.errors import LinkageError
from linkage.release.tables import ALL, SUPPRESSED, SYMBOLS, Params, Published, recorded_measures, view_of
from linkage.release.tables import column as view_column
from linkage.release.vocabulary import MEASURES, STATISTICS

TOTAL = "Total"  # the single column (or row) of a table with fewer than two breakdowns


def _acro_session(policy: ReleasePolicy):
    """An ACRO session (no mitigation: we protect, ACRO checks) with the policy's parameters."""
    import acro  # imported late: it configures logging and loads pandas, matplotlib and statsmodels

    for name in list(logging.root.manager.loggerDict):  # ACRO logs every step at INFO ("acro:records"...)
        if name.startswith("acro"):
            logging.getLogger(name).setLevel(logging.WARNING)
    session = acro.ACRO(suppress=False)
    rules = policy.sdc
    session.config.update(  # the checks read this dict (SDCChecks.risk_appetite is the same object)
        safe_threshold=rules.threshold,
        zeros_are_disclosive=rules.zeros_disclosive,
        safe_nk_n=rules.dominance.n,
        safe_nk_k=rules.dominance.k,
        safe_pratio_p=rules.p_percent,
        safe_round_base=rules.rounding_base,
    )
    return session


def _axes(df, by: list[str]):
    """ACRO needs rows and a column: the last breakdown is the column; a constant fills in."""
    import pandas as pd

    const = pd.Series([TOTAL] * len(df), name=TOTAL, index=df.index)
    cols = [df[d].rename(d) for d in by]
    if len(cols) >= 2:
        return cols[:-1], cols[-1]
    return (cols or [const.rename("all")]), const


def _flagged(outcome, n_by: int) -> list[tuple]:
    """Detail cells ACRO marks as disclosive, as label tuples in the table's breakdown order."""
    flagged = []
    for idx, row in outcome.iterrows():
        labels = idx if isinstance(idx, tuple) else (idx,)
        for col, verdict in row.items():
            if str(verdict).strip() != "ok":
                flagged.append((*labels, col) if n_by >= 2 else labels[:n_by])
    return flagged


def check_and_record(
    con: duckdb.DuckDBPyConnection, tables: list[Published], policy: ReleasePolicy, out_dir: Path
) -> dict[str, Any]:
    """Run ACRO on every table/measure, verify our protection covers its findings, finalise to out_dir."""
    import pandas as pd

    session = _acro_session(policy)
    statuses: dict[str, str] = {}
    for t in tables:
        spec, n_by = t.spec, len(t.spec.by)
        frame = pd.DataFrame(t.rows, columns=t.header)
        ours = {tuple(r[:n_by]): r for r in t.rows}
        # [x] measures have no data to check
        checks: list[tuple[str, str | None]] = [(m, None) for m in recorded_measures(spec)]
        checks += [(spec.measures[0], s) for s in spec.statistics]
        for measure, stat in checks:
            params = Params()
            cond = f"{params.where(spec.where)} AND {params.where(MEASURES[measure].conditions)}"
            cols = ", ".join([*(f"{view_column('dim', d)} AS {d}" for d in spec.by), "person_id"])
            if stat:
                cols += f", {view_column('stat', stat)} AS value"
                cond += f" AND {view_column('stat', stat)} IS NOT NULL"
            df = con.execute(f"SELECT {cols} FROM {view_of(con, spec)} WHERE {cond}", params.values).df()
            name = f"{spec.name}__{stat or measure}"
            if df.empty:  # ACRO cannot tabulate nothing; our table withholds every cell of it
                statuses[name] = "empty"
                continue
            index, columns = _axes(df, spec.by)
            magnitude = stat is not None and STATISTICS[stat].magnitude
            if stat is None:
                session.crosstab(index=index, columns=columns)
                column = measure
            else:
                session.crosstab(
                    index=index,
                    columns=columns,
                    values=df["value"],
                    aggfunc="mean" if magnitude else "median",
                )
                column = f"{stat}_mean" if magnitude else f"{stat}_median"
            uid = f"output_{session.results.output_id - 1}"
            record = session.results.get(uid)
            position = t.header.index(column)
            for labels in _flagged(record.outcome, n_by):
                row = ours[labels] if n_by else ours[()]
                if row[position] not in SYMBOLS:
                    raise LinkageError(
                        f"table {spec.name}: ACRO flags a {column} cell the release would publish"
                    )
            record.output = [frame[[*spec.by, column]]]
            record.comments.append(
                f"Published by `linkage release`: counts rounded to base {policy.sdc.rounding_base}, "
                f"{SUPPRESSED} = withheld (primary or secondary suppression; margins labelled {ALL}). "
                "ACRO's outcome lists the cells of the unprotected table that failed its checks; each "
                "is withheld in this output (verified)."
            )
            if record.status == "fail":
                record.status = "review"  # as ACRO itself does once a mitigation has been applied
                session.add_exception(uid, "Disclosive cells suppressed; see the comments")
            session.rename_output(uid, name)
            statuses[name] = record.status
    session.finalise(str(out_dir), "json")
    return statuses
