"""Aggregate tables from journeys.parquet, their protection, and the last check before publishing.

Each table is a cube: its measures counted for every combination of its dimensions' values and
for every margin ("All"), computed with one DuckDB GROUP BY CUBE per table, with each cell's
persons and cell key (release/perturb.py). Cells are registered by canonical key
(release/vocabulary.py), so a number that appears in two tables is one cell with one suppression
decision and one published value. SQL here is built from vocabulary names only; every value a
policy chooses is a bound parameter. Nothing here is written to disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path

import duckdb

from linkage.config.release import ReleasePolicy, TableSpec
from linkage.errors import LinkageError
from linkage.release import perturb, sdc
from linkage.release.victims import open_people
from linkage.release.vocabulary import (
    DIMENSIONS,
    IDENTIFYING,
    MEASURES,
    STATISTICS,
    Key,
    canonical,
    impossible,
)

ALL = "All"
# GSS symbols (Government Statistical Service guidance on symbols in tables)
SUPPRESSED = "[c]"  # confidential: withheld to protect confidentiality
NOT_APPLICABLE = "[z]"  # not applicable: the table definition says the value cannot exist
NOT_AVAILABLE = "[x]"  # not available: no source of this release records it
SYMBOLS = (SUPPRESSED, NOT_APPLICABLE, NOT_AVAILABLE)
QUANTILES = (("q1", 0.25), ("median", 0.5), ("q3", 0.75))
ANCHORS = [
    "police_record_key",
    "cps_record_key",
    "court_record_key",
    "prison_record_key",
    "probation_record_key",
]


class DisclosureRefused(LinkageError):
    """The release would publish something that must never leave the secure zone (exit 1)."""


def column(kind: str, name: str) -> str:
    """The view column of a vocabulary name; anything outside the vocabulary is refused here too, so
    no policy string can become SQL even if the policy model were bypassed."""
    vocabularies: dict[str, Mapping[str, object]] = {"dim": DIMENSIONS, "stat": STATISTICS}
    vocabulary = vocabularies[kind]
    if name not in vocabulary:
        raise DisclosureRefused(f"{name!r} is not in the release vocabulary")
    return f"{kind}_{name}"


class Params:
    """Named query parameters: every value a policy chooses reaches DuckDB bound, never as SQL text."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def bind(self, value: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def where(self, conditions: dict[str, str]) -> str:
        """`dim_d = $p AND ...` for a dict of dimension -> value ('true' for none)."""
        return " AND ".join(f"{column('dim', d)} = {self.bind(v)}" for d, v in conditions.items()) or "true"


@dataclass
class CountCell:
    n: int
    persons: int
    cell_key: int  # sum of the journeys' record keys mod 256 (release/perturb.py)


@dataclass
class StatCell:
    """A statistic's values in one cell: count, persons, quantiles, and for magnitudes sum and top values."""

    n: int = 0
    persons: int = 0
    quantiles: list[float] = field(default_factory=list)
    total: int = 0  # exact integer sum of the values (days)
    largest: list[int] = field(default_factory=list)
    cell_key: int = 0


@dataclass
class Row:
    """One row of a table: its dimension values (ALL for a margin) and, per measure, a cell key."""

    labels: dict[str, str]
    keys: dict[str, Key]


@dataclass
class TableData:
    spec: TableSpec
    rows: list[Row]
    lines: list[sdc.Line]


@dataclass
class Cube:
    """Every cell of every table of a release, by canonical key."""

    counts: dict[Key, CountCell] = field(default_factory=dict)
    stats: dict[tuple[Key, str], StatCell] = field(default_factory=dict)
    tables: list[TableData] = field(default_factory=list)
    release_key: int = 0  # sum of every journey's record key mod 256 (perturbation key_scope: release)

    def structural_zero(self, key: Key) -> bool:
        """A count the vocabulary defines as impossible, and that is indeed zero: published as [z]."""
        return self.counts[key].n == 0 and impossible(dict(key))

    def add_count(self, key: Key, cell: CountCell) -> None:
        old = self.counts.setdefault(key, cell)
        if old != cell:  # the same conditions must give the same number in every table
            raise LinkageError("internal inconsistency: one cell has two values across tables")


def open_journeys(journeys: Path, threads: int | None = None) -> tuple[duckdb.DuckDBPyConnection, date]:
    """A connection with the view `rv`: per journey, its person, its record key (0-255), and every
    release dimension and statistic as a column (statistics are whole days, BIGINT)."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.read_parquet(str(journeys)).create_view("journeys")
    data_end = con.execute("SELECT max(recorded_date) FROM journeys").fetchall()[0][0]
    if data_end is None:
        raise LinkageError(f"{journeys}: no police records; nothing to release")
    cols = [f"{d.sql} AS dim_{name}" for name, d in DIMENSIONS.items() if "journeys" in d.units]
    cols += [f"({s.sql})::BIGINT AS stat_{name}" for name, s in STATISTICS.items()]
    # data_end is a date read from the data, written as an ISO literal (a view cannot take parameters)
    select = ",\n       ".join(cols).replace("$data_end", f"DATE '{data_end.isoformat()}'")
    con.execute(
        f"CREATE TEMP VIEW rv AS SELECT person_id, {perturb.record_key_sql(ANCHORS)} AS rkey,\n"
        f"       {select}\nFROM journeys"
    )
    victims = journeys.parent / "victims.parquet"  # written beside journeys.parquet by `linkage journeys`
    if victims.is_file():
        people = {
            unit: ", ".join(f"{d.sql} AS dim_{name}" for name, d in DIMENSIONS.items() if unit in d.units)
            for unit in ("victims", "perpetrators")
        }
        open_people(con, victims, people)
    return con, data_end


def unit_of(spec: TableSpec) -> str:
    """What the table counts (every measure of a table has one unit; config/release.py checks)."""
    return MEASURES[spec.measures[0]].unit


def view_of(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> str:
    """The view a table is counted from: rv (journeys), rv_victims or rv_perpetrators."""
    unit = unit_of(spec)
    if unit == "journeys":
        return "rv"
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [f"rv_{unit}"]).fetchall()[
        0
    ][0]:
        raise LinkageError(
            f"table {spec.name!r} counts {unit}, but the run has no victims.parquet (run linkage journeys)"
        )
    return f"rv_{unit}"


def build_cube(con: duckdb.DuckDBPyConnection, policy: ReleasePolicy) -> Cube:
    """Compute every table of the policy into one Cube."""
    release_key = con.execute(f"SELECT coalesce(sum(rkey), 0) % {perturb.KEYS} FROM rv").fetchall()[0][0]
    cube = Cube(release_key=release_key)
    for spec in policy.tables:
        cube.tables.append(_build_table(con, spec, cube))
    return cube


def _build_table(con: duckdb.DuckDBPyConnection, spec: TableSpec, cube: Cube) -> TableData:
    params = Params()
    where = params.where(spec.where)
    view, unit = view_of(con, spec), unit_of(spec)
    domains = {}
    for d in spec.by:
        sql = f"SELECT DISTINCT {column('dim', d)} FROM {view} WHERE {where} ORDER BY 1"
        domains[d] = [r[0] for r in con.execute(sql, params.values).fetchall()]
    aggs, recorded = [], recorded_measures(spec)
    for m in recorded:
        cond = params.where(MEASURES[m].conditions)
        aggs += [
            f"count(*) FILTER (WHERE {cond})",
            f"count(DISTINCT person_id) FILTER (WHERE {cond})",
            f"coalesce(sum(rkey) FILTER (WHERE {cond}), 0) % {perturb.KEYS}",
        ]
    for s in spec.statistics:
        v = column("stat", s)
        cond = f"{params.where(MEASURES[spec.measures[0]].conditions)} AND {v} IS NOT NULL"
        aggs += [
            f"count(*) FILTER (WHERE {cond})",
            f"count(DISTINCT person_id) FILTER (WHERE {cond})",
            f"quantile_cont({v}, [{', '.join(str(q) for _, q in QUANTILES)}]) FILTER (WHERE {cond})",
            f"sum({v}) FILTER (WHERE {cond})",
            f"max({v}, 2) FILTER (WHERE {cond})",
            f"coalesce(sum(rkey) FILTER (WHERE {cond}), 0) % {perturb.KEYS}",
        ]
    dims = [column("dim", d) for d in spec.by]
    group = f"GROUP BY CUBE ({', '.join(dims)})" if dims else ""
    grouping = [f"grouping({c})" for c in dims]
    sql = f"SELECT {', '.join([*dims, *grouping, *aggs])} FROM {view} WHERE {where} {group}"
    found = {}
    for r in con.execute(sql, params.values).fetchall():
        labels = tuple(ALL if r[len(dims) + i] else r[i] for i in range(len(dims)))
        found[labels] = r[2 * len(dims) :]
    rows, n_m = [], len(recorded)
    for labels in itertools.product(*[[*domains[d], ALL] for d in spec.by]):
        agg = found.get(labels)
        keys = {}
        for i, m in enumerate(recorded):
            conds = {**spec.where, **MEASURES[m].conditions}
            conds.update({d: v for d, v in zip(spec.by, labels, strict=True) if v != ALL})
            key = canonical(conds, unit)
            cube.add_count(key, CountCell(*agg[3 * i : 3 * i + 3]) if agg else CountCell(0, 0, 0))
            keys[m] = key
            for j, s in enumerate(spec.statistics):
                base = 3 * n_m + 6 * j
                if agg and agg[base]:
                    n, persons, qs, total, largest, ckey = agg[base : base + 6]
                    cube.stats[(key, s)] = StatCell(n, persons, list(qs), int(total), list(largest), ckey)
                else:
                    cube.stats[(key, s)] = StatCell()
        rows.append(Row(dict(zip(spec.by, labels, strict=True)), keys))
    return TableData(spec, rows, _lines(spec, rows, domains))


def recorded_measures(spec: TableSpec) -> list[str]:
    """The table's measures some source records (the others are published as [x])."""
    return [m for m in spec.measures if not MEASURES[m].not_recorded]


def not_applicable(stat: str, labels: dict[str, str]) -> bool:
    """Whether the vocabulary defines ``stat`` as impossible in a row with these labels ([z])."""
    rule = STATISTICS[stat].not_applicable
    return any(labels.get(d) in values for d, values in rule.items())


def _lines(spec: TableSpec, rows: list[Row], domains: dict[str, list[str]]) -> list[sdc.Line]:
    """For each measure and dimension d: the cells over d's values, with d = All as their total."""
    by_labels = {tuple(r.labels[d] for d in spec.by): r for r in rows}
    lines = []
    for pos, d in enumerate(spec.by):
        others = [[*domains[o], ALL] for o in spec.by if o != d]
        for rest in itertools.product(*others):

            def at(value: str, rest: tuple = rest, pos: int = pos) -> Row:
                return by_labels[(*rest[:pos], value, *rest[pos:])]

            for m in recorded_measures(spec):
                details = tuple(at(v).keys[m] for v in domains[d])
                lines.append(sdc.Line(details, at(ALL).keys[m]))
    return lines


@dataclass
class Published:
    """A protected table ready to write: header, rows of strings, and its suppression counts."""

    spec: TableSpec
    header: list[str]
    rows: list[list[str | int]]
    cells: int
    primary: int
    secondary: int
    stats_withheld: int


def published_counts(cube: Cube, policy: ReleasePolicy) -> dict[Key, int]:
    """The value each count cell would be published as: perturbed by cell key, or rounded to the base."""
    base, rules = policy.sdc.rounding_base, policy.sdc.perturbation
    if rules.enabled:
        return {
            k: perturb.perturb_count(c.n, perturb.scoped(c.cell_key, cube.release_key, rules), base)
            for k, c in cube.counts.items()
        }
    return {k: sdc.round_to_base(c.n, base) for k, c in cube.counts.items()}


def _magnitude(value: Fraction | float, cell_key: int, cube: Cube, policy: ReleasePolicy) -> int:
    """A mean or quartile in days as published: keyed random rounding, or to the nearest day."""
    rules = policy.sdc.perturbation
    if rules.enabled:
        key = perturb.scoped(cell_key, cube.release_key, rules)
        return perturb.perturb_magnitude(value, key, rules.magnitude_base)
    return sdc.round_to_base(Fraction(value), 1)


def publish(
    cube: Cube,
    values: dict[Key, int],
    counts: sdc.Protection,
    magnitudes: sdc.Protection,
    policy: ReleasePolicy,
) -> list[Published]:
    """Apply the protection: published counts or [c]; quantiles where the count passes; means where safe."""
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
            cells: list[str | int] = [row.labels[d] for d in spec.by]
            for m in spec.measures:
                if MEASURES[m].not_recorded:
                    cells.append(NOT_AVAILABLE)
                    continue
                key = row.keys[m]
                keys_seen.add(key)
                if cube.structural_zero(key):
                    cells.append(NOT_APPLICABLE)
                else:
                    cells.append(SUPPRESSED if key in counts.suppressed else values[key])
            for s in spec.statistics:
                key = row.keys[spec.measures[0]]
                st = cube.stats[(key, s)]
                if not_applicable(s, row.labels):
                    cells += [NOT_APPLICABLE] * (len(QUANTILES) + STATISTICS[s].magnitude)
                    continue
                if sdc.count_reason(st.n, st.persons, rules) or st.n == 0:
                    cells += [SUPPRESSED] * len(QUANTILES)
                    withheld += 1
                else:
                    cells += [_magnitude(q, st.cell_key, cube, policy) for q in st.quantiles]
                if STATISTICS[s].magnitude:
                    safe = (key, s) not in magnitudes.suppressed and st.n > 0
                    mean = Fraction(st.total, st.n) if st.n else 0  # exact: no float average
                    cells.append(_magnitude(mean, st.cell_key, cube, policy) if safe else SUPPRESSED)
            rows.append(cells)
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


def protect_cube(
    cube: Cube, values: dict[Key, int], policy: ReleasePolicy
) -> tuple[sdc.Protection, sdc.Protection]:
    """Primary and secondary suppression over every count, then over every magnitude statistic.

    Primary count cells: the rules on the true counts (threshold on journeys and persons, zeros), and
    any count whose published (perturbed) value would fall below the threshold. Secondary suppression
    then chooses complements by their published values (release/perturb.py gives the order)."""
    rules = policy.sdc
    # a structural zero ([z]) is known to every reader: never a primary cell, never a complement
    structural = {k for k in cube.counts if cube.structural_zero(k)}
    primary = [
        k
        for k, c in cube.counts.items()
        if k not in structural
        and (sdc.count_reason(c.n, c.persons, rules) or (c.n and values[k] < rules.threshold))
    ]
    lines = [
        sdc.Line(tuple(d for d in ln.details if d not in structural), ln.total)
        for t in cube.tables
        for ln in t.lines
    ]
    counts = sdc.protect(values, primary, lines, rules)
    mag_keys = [k for k in cube.stats if STATISTICS[k[1]].magnitude]
    mag_values = {k: cube.stats[k].total for k in mag_keys}
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
                if v in SYMBOLS or (v == 0 and not rules.zeros_disclosive):
                    continue
                if not isinstance(v, int) or v < rules.threshold or v % rules.rounding_base:
                    raise DisclosureRefused(f"table {t.spec.name}: a count escaped disclosure control")
        published = [v for row in t.rows for v in row[n_dims:] if v not in SYMBOLS]
        if t.cells > 1 and published and all(v in (0, 1) for v in published):
            raise DisclosureRefused(f"table {t.spec.name}: record-level table (every cell 0 or 1)")
