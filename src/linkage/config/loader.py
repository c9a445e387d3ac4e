"""Read a YAML config into a pydantic model; errors name the file, the field and the line.

PyYAML's composed node tree keeps the line of every key, so after pydantic rejects a field we
map its error location (a path of keys and list indices) back to the line it came from: the
offending key's own line (location parts that are not YAML keys, such as the tag of a discriminated
union, are skipped rather than ending the walk at the parent). An unknown key gets the nearest valid
key of its mapping as a suggestion (difflib, over the model's own field names).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import types
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

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
    """Line of the deepest key on ``loc``'s path, skipping parts that are not in the document."""
    path: tuple = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return lines.get(path)


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Annotated and Optional/Union unwrapped."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model that holds the mapping at ``loc`` (empty when unknown)."""
    current: list[Any] = [model]
    for part in loc:
        step: list[Any] = []
        for t in current:
            if _is_model(t) and isinstance(part, str) and part in t.model_fields:
                step += _members(t.model_fields[part].annotation)
            elif get_origin(t) in (list, tuple) and isinstance(part, int):
                step += _members(get_args(t)[0])
            elif get_origin(t) is dict and isinstance(part, str):
                step += _members(get_args(t)[1])
        # a part that names no field may be a discriminated union's tag: keep the member it selects
        tagged = [
            t
            for t in current
            if _is_model(t) and any(part in get_args(f.annotation) for f in t.model_fields.values())
        ]
        current = step or tagged
    return sorted({name for t in current if _is_model(t) for name in t.model_fields})


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _document_loc(lines: dict[tuple, int], loc: tuple) -> tuple:
    """``loc`` without the parts that are not keys of the document (discriminated-union tags); the
    last part stays even when absent (a missing key)."""
    path: tuple = ()
    for i, part in enumerate(loc):
        if (*path, part) in lines or i == len(loc) - 1:
            path = (*path, part)
    return path


def _value_at(data: Any, loc: tuple) -> Any:
    for part in loc:
        data = data[part] if isinstance(data, dict | list) else None
    return data


def _format_errors(
    path: Path, exc: ValidationError, lines: dict[tuple, int], model: type[BaseModel], data: Any
) -> str:
    parts = [f"{path}: invalid {exc.title} configuration ({exc.error_count()} problem(s))"]
    for err in exc.errors(include_url=False, include_input=False):
        # pydantic adds validator names and union tags to the location; they are not YAML keys
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in _document_loc(lines, loc)) or "(top level)"
        line = nearest_line(lines, loc)
        where = f"line {line}, " if line else ""
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the schema; check the spelling)" + _suggest(
                str(loc[-1]), valid_keys(model, loc[:-1])
            )
        elif err["type"] == "union_tag_not_found":
            tag = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
            item = _value_at(data, _document_loc(lines, loc))
            keys = [str(k) for k in item] if isinstance(item, dict) else []
            close = difflib.get_close_matches(tag, keys, n=1, cutoff=0.6)
            msg = f"missing key '{tag}'" + (f"; found '{close[0]}': did you mean '{tag}'?" if close else "")
            line = lines.get((*loc, close[0])) if close else line
            where = f"line {line}, " if line else ""
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
        raise ConfigError(_format_errors(source, exc, lines, model, data)) from None
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
