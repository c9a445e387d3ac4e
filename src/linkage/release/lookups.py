"""Maintained lookups the release ships as package data (release/data/*.csv, each citing its source).

`force_areas.csv` gives the name beside every police force area code a release publishes;
`offence_groups.csv` maps Home Office offence codes to ONS offence groups (the `offence_group`
dimension). Both files are code, not policy, but they are still checked on load (codes against a
strict pattern, names printable and free of quotes), because the offence map becomes SQL text.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from importlib import resources

from linkage.errors import ConfigError

# ONS offence groups (Crime in England and Wales), plus the two values the release adds.
OFFENCE_GROUPS = (
    "Violence with injury",
    "Violence without injury",
    "Stalking and harassment",
    "Sexual offences",
    "Criminal damage and arson",
    "Public order offences",
    "Theft offences",
    "Drug offences",
    "Miscellaneous crimes against society",
)
OTHER_OFFENCES = "Other offences"
FORCE_CODE = r"[EW]\d{8}"
OFFENCE_CODE = r"\d{3}/\d{2}"
_NAME = re.compile(r"[A-Za-z][A-Za-z ,&.()-]{0,60}")


def _rows(name: str, header: list[str]) -> list[list[str]]:
    """The data rows of a package CSV (lines starting with '#' are its citation), header checked."""
    text = resources.files("linkage.release").joinpath("data", name).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    rows = list(csv.reader(lines))
    if not rows or rows[0] != header:
        raise ConfigError(f"release/data/{name}: header must be {','.join(header)}")
    return rows[1:]


@cache
def force_area_names() -> dict[str, str]:
    """ONS police force area code -> name."""
    out = {}
    for i, row in enumerate(_rows("force_areas.csv", ["code", "name"]), start=2):
        if len(row) != 2 or not re.fullmatch(FORCE_CODE, row[0]) or not _NAME.fullmatch(row[1]):
            raise ConfigError(f"release/data/force_areas.csv: data row {i} is not `code,name`")
        out[row[0]] = row[1]
    return out


@cache
def offence_groups() -> dict[str, str]:
    """Home Office offence code -> ONS offence group."""
    out = {}
    for i, row in enumerate(_rows("offence_groups.csv", ["code", "group"]), start=2):
        if len(row) != 2 or not re.fullmatch(OFFENCE_CODE, row[0]) or row[1] not in OFFENCE_GROUPS:
            raise ConfigError(f"release/data/offence_groups.csv: data row {i} is not `code,<ONS group>`")
        out[row[0]] = row[1]
    return out


def offence_group_sql(code: str) -> str:
    """SQL mapping an offence code column to its group (codes and groups checked above: no quotes)."""
    whens = " ".join(f"WHEN '{c}' THEN '{g}'" for c, g in sorted(offence_groups().items()))
    return (
        f"CASE WHEN {code} IS NULL THEN 'Not known' ELSE CASE {code} {whens} ELSE '{OTHER_OFFENCES}' END END"
    )


def force_label(code: str) -> str:
    """'Name (code)' for a force area code; other values (All, Not known) unchanged."""
    name = force_area_names().get(code)
    return f"{name} ({code})" if name else code


def with_force_names(header: list[str], rows: list[list]) -> tuple[list[str], list[list]]:
    """Header and rows with a `force_area_name` column after `force_area` (unchanged without one)."""
    if "force_area" not in header:
        return header, rows
    i = header.index("force_area") + 1
    names = force_area_names()
    return (
        [*header[:i], "force_area_name", *header[i:]],
        [[*r[:i], names.get(r[i - 1], ""), *r[i:]] for r in rows],
    )
