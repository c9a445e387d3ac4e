"""Read a YAML config into a pydantic model; errors name the file, the field and the line.

PyYAML's composed node tree keeps the line of every key, so after pydantic rejects a field we
map its error location (a path of keys and list indices) back to the line it came from.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from linkage.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


def config_sha256(path: Path) -> str:
    """SHA-256 of the config file's bytes: what manifests and the run log record."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line number."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            out[key_path] = key_node.start_mark.line + 1
            line_index(value_node, key_path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            line_index(item, (*path, i), out)
    return out


def nearest_line(lines: dict[tuple, int], loc: tuple) -> int | None:
    """Line of the deepest prefix of ``loc`` that exists in the document."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _format_errors(path: Path, exc: ValidationError, lines: dict[tuple, int]) -> str:
    parts = [f"{path}: invalid {exc.title} configuration ({exc.error_count()} problem(s))"]
    for err in exc.errors(include_url=False, include_input=False):
        # pydantic adds tagged-union discriminators to the location; they are not YAML keys
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = nearest_line(lines, loc)
        where = f"line {line}, " if line else ""
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the schema; check the spelling)"
        parts.append(f"  {where}field '{field}': {msg}")
    return "\n".join(parts)


def parse_config(text: str, model: type[M], source: Path) -> M:
    """Validate YAML text against ``model``; ``source`` names the file in errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    lines = line_index(node) if node is not None else {}
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc, lines)) from None
    log.debug("%s: valid %s configuration", source, model.__name__)
    return config


def load_config(path: Path | str, model: type[M]) -> M:
    """Read and validate a YAML config file; any problem is a ConfigError naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__})") from None
    return parse_config(text, model, path)
