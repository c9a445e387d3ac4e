"""Aggregate tables from journeys.parquet, the policy checks, and the published (protected) tables.

Each table is a cube: its measures counted for every combination of its dimensions' values and
for every margin ("All"), computed with one DuckDB GROUP BY CUBE per table. Cells are registered by
canonical key (release/vocabulary.py), so a number that appears in two tables is one cell with
one suppression decision and one rounded value. Nothing here is written to disk.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from linkage.config.release import ReleasePolicy, TableSpec
from linkage.errors import ConfigError, LinkageError
from linkage.release import sdc
from linkage.release.vocabulary import DIMENSIONS, MEASURES, STATISTICS, canonical
from linkage.tokens.spec import RECORD_KEY, SOURCE_ROW, TOKEN_COLUMN_NAMES

ALL = "All"
SUPPRESSED = "[c]"  # GSS symbol for a value withheld to protect confidentiality
QUANTILES = (("q1", 0.25), ("median", 0.5), ("q3", 0.75))
# Columns that identify people or records: a policy naming one is refused, not just rejected.
IDENTIFYING = frozenset(
    {*TOKEN_COLUMN_NAMES, RECORD_KEY, SOURCE_ROW, "person_id", "journey_id", "case_id"}
    | {f"{s}_record_key" for s in ("police", "cps", "court", "prison")}
)


class DisclosureRefused(LinkageError):
    """The policy asks for something that must never leave the secure zone (exit 1)."""


def check_policy(policy: ReleasePolicy, journey_columns: set[str]) -> None:
    """Refuse identifiers and record-level breakdowns (exit 1); reject unknown names (exit 2)."""
    for t in policy.tables:
        names = [*t.by, *t.where, *t.measures, *t.statistics]
        bad = [n for n in names if n in IDENTIFYING or n.endswith("record_key")]
        if bad:
            raise DisclosureRefused(
                f"table {t.name}: {', '.join(bad)} identifies records or people; a release never carries it"
            )
        raw = [n for n in [*t.by, *t.where] if n not in DIMENSIONS and n in journey_columns]
        if raw:
            raise DisclosureRefused(
                f"table {t.name}: {', '.join(raw)} is a record-level journey column, not a release "
                f"dimension (see docs/release-guide.md)"
            )
        for kind, names_, vocab in (
            ("dimension", [*t.by, *t.where], DIMENSIONS),
            ("measure", t.measures, MEASURES),
            ("statistic", t.statistics, STATISTICS),
        ):
            unknown = [n for n in names_ if n not in vocab]
            if unknown:
                raise ConfigError(f"table {t.name}: unknown {kind}(s) {', '.join(unknown)}")
        for d in t.by:
            req = DIMENSIONS[d].requires
            if req and t.where.get(req[0]) != req[1]:
                raise ConfigError(f"table {t.name}: breakdown by {d} needs `where: {{{req[0]}: {req[1]}}}`")
        for m in t.measures:
            clash = [d for d, v in MEASURES[m].conditions.items() if d in t.by or t.where.get(d, v) != v]
            if clash:
                raise ConfigError(f"table {t.name}: measure {m} fixes {', '.join(clash)}, also a breakdown")


@dataclass
class CountCell:
    n: int
    persons: int


@dataclass
class StatCell:
    """A statistic's values in one cell: count, persons, quantiles, and for magnitudes sum and top values."""

    n: int = 0
    persons: int = 0
    quantiles: list[float] = field(default_factory=list)
    total: float = 0.0
    largest: list[float] = field(default_factory=list)


@dataclass
class Row:
    """One row of a table: its dimension values (ALL for a margin) and, per measure, a cell key."""

    labels: dict[str, str]
    keys: dict[str, frozenset]


@dataclass
class TableData:
    spec: TableSpec
    rows: list[Row]
    lines: list[sdc.Line]


@dataclass
class Cube:
    """Every cell of every table of a release, by canonical key."""

    counts: dict[frozenset, CountCell] = field(default_factory=dict)
    stats: dict[tuple[frozenset, str], StatCell] = field(default_factory=dict)
    tables: list[TableData] = field(default_factory=list)

    def add_count(self, key: frozenset, cell: CountCell) -> None:
        old = self.counts.setdefault(key, cell)
        if old != cell:  # the same conditions must give the same number in every table
            raise LinkageError("internal inconsistency: one cell has two values across tables")


def open_journeys(journeys: Path) -> tuple[duckdb.DuckDBPyConnection, date]:
    """A connection with the view `rv`: journeys plus every release dimension and statistic as a column."""
    con = duckdb.connect()
    data_end = con.execute(f"SELECT max(recorded_date) FROM read_parquet('{journeys}')").fetchall()[0][0]
    if data_end is None:
        raise LinkageError(f"{journeys}: no police records; nothing to release")
    cols = [f"{d.sql} AS dim_{name}" for name, d in DIMENSIONS.items()]
    cols += [f"({s.sql})::DOUBLE AS stat_{name}" for name, s in STATISTICS.items()]
    select = ",\n       ".join(cols).replace("$data_end", f"DATE '{data_end}'")
    con.execute(f"CREATE TEMP VIEW rv AS SELECT person_id,\n       {select}\nFROM read_parquet('{journeys}')")
    return con, data_end


def where_sql(conditions: dict[str, str]) -> str:
    return " AND ".join(f"dim_{d} = '{v}'" for d, v in conditions.items()) or "true"


def build_cube(con: duckdb.DuckDBPyConnection, policy: ReleasePolicy) -> Cube:
    """Compute every table of the policy into one Cube."""
    cube = Cube()
    for spec in policy.tables:
        cube.tables.append(_build_table(con, spec, cube))
    return cube


def _build_table(con: duckdb.DuckDBPyConnection, spec: TableSpec, cube: Cube) -> TableData:
    where = where_sql(spec.where)
    domains = {
        d: [r[0] for r in con.execute(f"SELECT DISTINCT dim_{d} FROM rv WHERE {where} ORDER BY 1").fetchall()]
        for d in spec.by
    }
    aggs = []
    for m in spec.measures:
        cond = where_sql(MEASURES[m].conditions)
        aggs += [f"count(*) FILTER (WHERE {cond})", f"count(DISTINCT person_id) FILTER (WHERE {cond})"]
    for s in spec.statistics:
        v, cond = f"stat_{s}", f"{where_sql(MEASURES[spec.measures[0]].conditions)} AND stat_{s} IS NOT NULL"
        aggs += [
            f"count(*) FILTER (WHERE {cond})",
            f"count(DISTINCT person_id) FILTER (WHERE {cond})",
            f"quantile_cont({v}, [{', '.join(str(q) for _, q in QUANTILES)}]) FILTER (WHERE {cond})",
            f"sum({v}) FILTER (WHERE {cond})",
            f"max({v}, 2) FILTER (WHERE {cond})",
        ]
    dims = [f"dim_{d}" for d in spec.by]
    group = f"GROUP BY CUBE ({', '.join(dims)})" if dims else ""
    grouping = [f"grouping(dim_{d})" for d in spec.by]
    sql = f"SELECT {', '.join([*dims, *grouping, *aggs])} FROM rv WHERE {where} {group}"
    found = {}
    for r in con.execute(sql).fetchall():
        labels = tuple(ALL if r[len(dims) + i] else r[i] for i in range(len(dims)))
        found[labels] = r[2 * len(dims) :]
    rows, n_m = [], len(spec.measures)
    for labels in itertools.product(*[[*domains[d], ALL] for d in spec.by]):
        agg = found.get(labels)
        keys = {}
        for i, m in enumerate(spec.measures):
            conds = {**spec.where, **MEASURES[m].conditions}
            conds.update({d: v for d, v in zip(spec.by, labels, strict=True) if v != ALL})
            key = canonical(conds)
            cube.add_count(key, CountCell(agg[2 * i], agg[2 * i + 1]) if agg else CountCell(0, 0))
            keys[m] = key
            for j, s in enumerate(spec.statistics):
                base = 2 * n_m + 5 * j
                if agg and agg[base]:
                    n, persons, qs, total, largest = agg[base : base + 5]
                    cube.stats[(key, s)] = StatCell(n, persons, list(qs), float(total), list(largest))
                else:
                    cube.stats[(key, s)] = StatCell()
        rows.append(Row(dict(zip(spec.by, labels, strict=True)), keys))
    return TableData(spec, rows, _lines(spec, rows, domains))


def _lines(spec: TableSpec, rows: list[Row], domains: dict[str, list[str]]) -> list[sdc.Line]:
    """For each measure and dimension d: the cells over d's values, with d = All as their total."""
    by_labels = {tuple(r.labels[d] for d in spec.by): r for r in rows}
    lines = []
    for pos, d in enumerate(spec.by):
        others = [[*domains[o], ALL] for o in spec.by if o != d]
        for rest in itertools.product(*others):

            def at(value: str, rest: tuple = rest, pos: int = pos) -> Row:
                return by_labels[(*rest[:pos], value, *rest[pos:])]

            for m in spec.measures:
                details = tuple(at(v).keys[m] for v in domains[d])
                lines.append(sdc.Line(details, at(ALL).keys[m]))
    return lines


@dataclass
class Published:
    """A protected table ready to write: header, rows of strings, and its suppression counts."""

    spec: TableSpec
    header: list[str]
    rows: list[list[str | int | float]]
    cells: int
    primary: int
    secondary: int
    stats_withheld: int


def publish(
    cube: Cube, counts: sdc.Protection, magnitudes: sdc.Protection, policy: ReleasePolicy
) -> list[Published]:
    """Apply the protection: rounded counts or [c]; quantiles where the count passes; means where safe."""
    rules, out = policy.sdc, []
    for table in cube.tables:
        spec = table.spec
        header = [*spec.by, *spec.measures]
        for s in spec.statistics:
            header += [f"{s}_{q}" for q, _ in QUANTILES]
            if STATISTICS[s].magnitude:
                header.append(f"{s}_mean")
        rows, keys_seen, withheld = [], set(), 0
        for row in table.rows:
            values: list[str | int | float] = [row.labels[d] for d in spec.by]
            for m in spec.measures:
                key = row.keys[m]
                keys_seen.add(key)
                hidden = key in counts.suppressed
                values.append(
                    SUPPRESSED if hidden else sdc.round_to_base(cube.counts[key].n, rules.rounding_base)
                )
            for s in spec.statistics:
                key = row.keys[spec.measures[0]]
                st = cube.stats[(key, s)]
                if sdc.count_reason(st.n, st.persons, rules) or st.n == 0:
                    values += [SUPPRESSED] * len(QUANTILES)
                    withheld += 1
                else:
                    values += [round(q) for q in st.quantiles]
                if STATISTICS[s].magnitude:
                    safe = (key, s) not in magnitudes.suppressed and st.n > 0
                    values.append(round(st.total / st.n) if safe else SUPPRESSED)
            rows.append(values)
        out.append(
            Published(
                spec,
                header,
                rows,
                cells=len(keys_seen),
                primary=len(keys_seen & counts.primary),
                secondary=len(keys_seen & counts.secondary),
                stats_withheld=withheld,
            )
        )
    return out


def protect_cube(cube: Cube, policy: ReleasePolicy) -> tuple[sdc.Protection, sdc.Protection]:
    """Primary and secondary suppression over every count, then over every magnitude statistic."""
    rules = policy.sdc
    values: dict[sdc.Key, float] = {k: c.n for k, c in cube.counts.items()}
    primary = [k for k, c in cube.counts.items() if sdc.count_reason(c.n, c.persons, rules)]
    lines = [ln for t in cube.tables for ln in t.lines]
    counts = sdc.protect(values, primary, lines, rules)
    mag_keys = {k for k in cube.stats if STATISTICS[k[1]].magnitude}
    mag_values: dict[sdc.Key, float] = {k: cube.stats[k].total for k in mag_keys}
    mag_primary = [
        k
        for k in mag_keys
        if sdc.magnitude_reason(
            cube.stats[k].n, cube.stats[k].persons, cube.stats[k].total, cube.stats[k].largest, rules
        )
    ]
    mag_lines = [
        sdc.Line(tuple((c, s) for c in ln.details), (ln.total, s))
        for t in cube.tables
        for s in t.spec.statistics
        if STATISTICS[s].magnitude
        for ln in t.lines
    ]
    return counts, sdc.protect(mag_values, mag_primary, mag_lines, rules)


def check_published(tables: list[Published], policy: ReleasePolicy) -> None:
    """Last line of defence before anything is written: no identifying column, no small or unrounded
    count, no record-level table. Raises DisclosureRefused."""
    rules = policy.sdc
    for t in tables:
        bad = [h for h in t.header if h in IDENTIFYING or h.endswith("record_key")]
        if bad:
            raise DisclosureRefused(f"table {t.spec.name}: column(s) {', '.join(bad)} may not be released")
        n_dims = len(t.spec.by)
        for row in t.rows:
            for v in row[n_dims : n_dims + len(t.spec.measures)]:
                if v == SUPPRESSED or (v == 0 and not rules.zeros_disclosive):
                    continue
                if not isinstance(v, int) or v < rules.threshold or v % rules.rounding_base:
                    raise DisclosureRefused(f"table {t.spec.name}: a count escaped disclosure control")
        published = [v for row in t.rows for v in row[n_dims:] if v != SUPPRESSED]
        if t.cells > 1 and published and all(v in (0, 1) for v in published):
            raise DisclosureRefused(f"table {t.spec.name}: record-level table (every cell 0 or 1)")
