"""Which config a YAML file is, told by its top-level keys, and the files behind the audit's PATHs.

Each config type is recognised by the top-level keys that only its model has (computed from the
pydantic models, so a new field never needs a second list here). A file is read once: its text,
parsed data, line index (for findings that name a line) and, when it matches its schema, the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
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
