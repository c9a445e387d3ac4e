"""What the audit detects: which config a YAML file is, and what an identifier looks like.

Configs: each type is recognised by the top-level keys that only its model has (computed from the
pydantic models, so a new field never needs a second list here). A file is read once: its text,
parsed data, line index (for findings that name a line) and, when it matches its schema, the model.

Identifiers, however a column is declared: by the words of its name (``name_hits``) and by the
values that would leave the agency (``value_kinds``: PNC ids, postcodes, e-mail addresses, phone
numbers, dates, integer dates such as 19710305, free text, and personal names from a dictionary of
common forenames and surnames); a date attribute whose dates lie a generation before the sample's other
dates holds dates of birth (``looks_like_births``). Counts and kinds only: a value is never quoted.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from linkage.config.agency import AgencyConfig
from linkage.config.linkage import LinkageConfig
from linkage.config.loader import config_sha256, line_index, nearest_line, parse_config
from linkage.config.release import ReleasePolicy
from linkage.errors import ConfigError


class ConfigKind(StrEnum):
    agency = "agency"
    linkage = "linkage"
    release = "release"


# The pydantic model of each config type: what the audit validates with and exports as a JSON Schema.
CONFIG_MODELS: dict[ConfigKind, type[BaseModel]] = {
    ConfigKind.agency: AgencyConfig,
    ConfigKind.linkage: LinkageConfig,
    ConfigKind.release: ReleasePolicy,
}


def _distinctive_keys() -> dict[ConfigKind, set[str]]:
    """Top-level keys that only one config type has."""
    keys = {kind: set(model.model_fields) for kind, model in CONFIG_MODELS.items()}
    return {
        kind: own - set().union(*(k for other, k in keys.items() if other != kind))
        for kind, own in keys.items()
    }


DISTINCTIVE_KEYS = _distinctive_keys()


def detect_kind(data: dict[str, Any]) -> ConfigKind | None:
    """The config type whose distinctive top-level keys the mapping has most of (None: unrecognised)."""
    scores = {kind: len(keys & set(data)) for kind, keys in DISTINCTIVE_KEYS.items()}
    best = max(scores.values(), default=0)
    winners = [kind for kind, score in scores.items() if score == best]
    return winners[0] if best and len(winners) == 1 else None


@dataclass
class ConfigFile:
    """One YAML file as the audit sees it; ``problem`` says why it could not be validated."""

    path: Path
    sha256: str
    data: dict[str, Any] | None = None
    lines: dict[tuple, int] | None = None
    kind: ConfigKind | None = None
    config: BaseModel | None = None  # the validated model (None if unrecognised or invalid)
    problem: str | None = None

    def line(self, loc: tuple) -> int | None:
        """Line of the YAML key at ``loc`` (or of its nearest enclosing key)."""
        return nearest_line(self.lines, loc) if self.lines else None


def read_config_file(path: Path) -> ConfigFile:
    """Read, classify and validate one file; never raises for bad content (that is a finding)."""
    file = ConfigFile(path=path, sha256=config_sha256(path))
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        file.problem = f"{path}: not a readable YAML file ({exc.__class__.__name__})"
        return file
    if not isinstance(data, dict):
        file.problem = f"{path}: expected a mapping of settings at the top level"
        return file
    file.data, file.lines, file.kind = data, line_index(node) if node else {}, detect_kind(data)
    if file.kind is None:
        return file
    try:
        file.config = parse_config(text, CONFIG_MODELS[file.kind], path)
    except ConfigError as exc:
        file.problem = str(exc)
    return file


def collect_files(paths: list[Path]) -> list[Path]:
    """The YAML files named, or found (recursively, sorted) in the folders named."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    return list(dict.fromkeys(out))


# --- what identifiers look like --------------------------------------------------------------------

# Words (and joined neighbouring words: first_name -> firstname) in a column name.
PERSON_WORDS = {
    "name", "names", "forename", "forenames", "firstname", "givenname", "surname", "lastname", "familyname",
    "middlename", "fullname", "alias", "dob", "birth", "birthdate", "dateofbirth", "born", "birthday",
    "yob", "yearofbirth", "postcode", "postalcode", "zip", "address", "addr", "street", "phone",
    "telephone", "tel", "mobile", "email", "pnc", "cro", "nhs", "nino", "ninumber", "nationalinsurance",
    "passport", "prisonnumber", "prisonernumber", "nomis",
}  # fmt: skip
FREE_TEXT_WORDS = {
    "notes", "note", "comment", "comments", "narrative", "text", "freetext", "remarks", "details",
}  # fmt: skip
REFERENCE_WORDS = {"id", "ref", "reference", "urn"}


def name_words(column: str) -> set[str]:
    """Lower-case words of a column name (snake, kebab, camel case), plus joined neighbours."""
    parts = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", column)]
    joined = {"".join(parts[i : i + n]) for n in (2, 3) for i in range(len(parts) - n + 1)}
    return set(parts) | joined


# What values are searched for (after upper-casing).
VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "PNC ids": re.compile(r"\b\d{2,4}/\d{1,7}[A-Z]\b"),
    "postcodes": re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}\b"),
    "email addresses": re.compile(r"[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}"),
    "phone numbers": re.compile(r"(?:\+44 ?|\b0)\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}\b|\b\d{10,11}\b"),
    "dates": re.compile(
        r"\b\d{1,2}[/.-](?:\d{1,2}|[A-Z]{3})[/.-](?:19|20)?\d{2}\b|\b(?:19|20)\d{2}-\d{2}-\d{2}\b"
        # dates written as integers: yyyymmdd and ddmmyyyy (a date of birth passed as an integer)
        r"|^(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$"
        r"|^(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])(?:19|20)\d{2}$"
    ),
    "free text": re.compile(r"\b[A-Z]{2,}(?: +[A-Z']+){3,}"),
}
NAMES = "personal names"
# A column "carries names" when at least this many distinct values, and this share of them, are
# made only of common forenames and surnames (a few category labels are also surnames: White, Green).
MIN_DISTINCT_NAMES = 5
MIN_NAME_SHARE = 0.5


@functools.cache
def common_names() -> frozenset[str]:
    """Upper-case common forenames and surnames: faker's en_GB, en_IE and en_US person lists (shipped as
    audit/data/common_names.txt by scripts/make_common_names.py, so the base install needs no faker) and
    the token spec's forename table."""
    data = resources.files("linkage.audit").joinpath("data/common_names.txt")
    lines = data.read_text(encoding="utf-8").splitlines()
    names = {line.strip() for line in lines if line and not line.startswith("#")}
    table = resources.files("linkage.tokens").joinpath("data/forename_groups_v1.csv")
    with table.open(encoding="utf-8") as fh:
        for row in csv.reader(line for line in fh if not line.startswith("#")):
            names |= {w for cell in row for w in cell.upper().split()}
    return frozenset(names)


def _is_name(value: str) -> bool:
    words = re.findall(r"[A-Z]+", value)
    return 1 <= len(words) <= 4 and all(w in common_names() for w in words)


def value_kinds(values: Iterable[str]) -> dict[str, int]:
    """How many values look like each kind of identifier (kinds with none are left out)."""
    upper = [v.strip().upper() for v in values]
    found = {kind: sum(1 for v in upper if p.search(v)) for kind, p in VALUE_PATTERNS.items()}
    distinct = set(upper)
    names = {v for v in distinct if _is_name(v)}
    if len(names) >= MIN_DISTINCT_NAMES and len(names) >= MIN_NAME_SHARE * len(distinct):
        found[NAMES] = sum(1 for v in upper if v in names)
    return {kind: n for kind, n in found.items() if n}


BIRTHS = "dates of birth"
# Events in criminal justice data happen to people aged 10 or more (the age of criminal
# responsibility in England and Wales), so a column of dates whose median lies this many years before
# the median of the sample's event dates is dates of birth, not events.
BIRTH_GAP_YEARS = 10
MIN_DATES = 3


def looks_like_births(dates: list[str], events: list[str]) -> bool:
    """Whether ISO ``dates`` (one attribute) lie a generation before ``events`` (the other dates)."""
    if len(dates) < MIN_DATES or len(events) < MIN_DATES:
        return False
    median = date.fromisoformat(sorted(dates)[len(dates) // 2])
    event = date.fromisoformat(sorted(events)[len(events) // 2])
    return (event - median).days >= BIRTH_GAP_YEARS * 365.25
