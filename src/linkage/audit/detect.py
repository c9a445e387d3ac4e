"""Which config a YAML file is, told by its top-level keys, and the files behind the audit's PATHs.

Each config type is recognised by the top-level keys that only its model has (computed from the
pydantic models, so a new field never needs a second list here). A file is read once: its text,
parsed data, line index (for findings that name a line) and, when it matches its schema, the model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkage.config.agency import AgencyConfig
from linkage.config.linkage import LinkageConfig
from linkage.config.loader import config_sha256, line_index, nearest_line, parse_config
from linkage.errors import ConfigError


class ConfigKind(StrEnum):
    agency = "agency"
    linkage = "linkage"
    release = "release"


def config_models() -> dict[ConfigKind, type[BaseModel]]:
    """The pydantic model of each config type that exists in this version of the tool."""
    models: dict[ConfigKind, type[BaseModel]] = {
        ConfigKind.agency: AgencyConfig,
        ConfigKind.linkage: LinkageConfig,
    }
    try:
        release = importlib.import_module("linkage.config.release")
    except ModuleNotFoundError as exc:
        if exc.name != "linkage.config.release":
            raise
        return models  # the release policy model is not written yet: ReleaseView stands in
    models[ConfigKind.release] = release.ReleaseConfig
    return models


# --- the release policy, until linkage.config.release exists ---------------------------------------
# The audit reads these fields of a release policy (extra keys are ignored here, but checked against
# the real model's schema once it exists). Defaults are DESIGN.md's: threshold 10, rounding base 5,
# zeros disclosive (as ACRO's default).
#
#   sdc: {threshold: 10, rounding: 5, zeros_disclosive: true, ...}       # policy-wide
#   tables:
#     - {name: attrition, by: [force_area, year], measure: count, sdc: {...per-table overrides}}


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SdcView(_View):
    threshold: int | None = Field(None, description="Smallest cell count published; None = inherited.")
    rounding: int | None = Field(None, description="Rounding base; 0 = rounding off; None = inherited.")
    zeros_disclosive: bool | None = None


class ReleaseTableView(_View):
    name: str
    description: str = ""
    by: list[str] = Field(default_factory=list, description="Grouping columns (the table's dimensions).")
    measure: str = Field("count", description="count, sum, mean...; none/rows/records = record level.")
    sdc: SdcView = Field(default_factory=SdcView)


class ReleaseView(_View):
    version: int = 1
    description: str = ""
    sdc: SdcView = Field(default_factory=lambda: SdcView(threshold=10, rounding=5, zeros_disclosive=True))
    tables: list[ReleaseTableView] = Field(default_factory=list)

    def effective(self, table: ReleaseTableView) -> SdcView:
        """A table's SDC settings: its own overrides, else the policy's, else DESIGN.md's defaults."""

        def pick(name: str, default: Any) -> Any:
            for value in (getattr(table.sdc, name), getattr(self.sdc, name)):
                if value is not None:
                    return value
            return default

        return SdcView(
            threshold=pick("threshold", 10),
            rounding=pick("rounding", 5),
            zeros_disclosive=pick("zeros_disclosive", True),
        )


# --- reading files ---------------------------------------------------------------------------------


def _distinctive_keys() -> dict[ConfigKind, set[str]]:
    """Top-level keys that only one config type has."""
    keys = {kind: set(model.model_fields) for kind, model in config_models().items()}
    keys.setdefault(ConfigKind.release, set(ReleaseView.model_fields))
    return {
        kind: own - set().union(*(k for other, k in keys.items() if other != kind))
        for kind, own in keys.items()
    }


def detect_kind(data: dict[str, Any]) -> ConfigKind | None:
    """The config type whose distinctive top-level keys the mapping has most of (None: unrecognised)."""
    scores = {kind: len(keys & set(data)) for kind, keys in _distinctive_keys().items()}
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
    config: BaseModel | None = None  # the validated model (None if invalid or no model yet)
    release: ReleaseView | None = None  # release policies: the fields the audit reads
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
    file.data, file.lines, file.kind = data, line_index(node), detect_kind(data)
    if file.kind is None:
        return file
    model = config_models().get(file.kind)
    try:
        if model is not None:
            file.config = parse_config(text, model, path)
        if file.kind is ConfigKind.release:
            file.release = ReleaseView.model_validate(data)
    except ConfigError as exc:
        file.problem = str(exc)
    except ValidationError as exc:
        file.problem = f"{path}: not the release policy structure the audit reads: {exc}"
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
