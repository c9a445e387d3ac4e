"""A trained model handed to `linkage run --model`: its schema and its SQL, checked before anything runs.

Splink's JSON model carries SQL that the engine runs as written: every comparison level's condition and
every blocking rule. A model.json is a file, so it is treated as untrusted input (DEVELOPERS.md): its
fields must be those Splink writes for this project's models (pydantic, extra fields refused), its
identifiers fixed or plain names, and its SQL is parsed with the engine's own dialect (the dialect the
file claims is ignored: a string that parses as harmless in one dialect may read a file in another)
and may hold only the boolean forms our models are made of: column equality, IS NULL, AND / OR / NOT,
parentheses, coalesce and true / false. Anything else (a literal, a function call, a subquery, a table)
is refused by name, as is a column the linkage does not load.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Literal

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlglot import exp

from linkage.config.linkage import WEAK_MARKERS, column_family
from linkage.errors import ConfigError

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
# the only expression nodes the SQL of this project's models holds (measured over 265 model.json files)
_ALLOWED = (exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.Is, exp.Null, exp.Boolean, exp.Coalesce,
            exp.Column, exp.Identifier)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GivenLevel(_Strict):
    sql_condition: str
    label_for_charts: str = ""
    is_null_level: bool = False
    m_probability: float | None = Field(None, ge=0, le=1)
    u_probability: float | None = Field(None, ge=0, le=1)
    fix_m_probability: bool = False
    fix_u_probability: bool = False
    tf_adjustment_column: str | None = Field(None, pattern=_NAME)
    tf_adjustment_weight: float | None = None

    @model_validator(mode="after")
    def _u_with_m(self) -> GivenLevel:
        # Splink saves no u for a level random sampling never met, and scores a saved model's level
        # without one at its default weight (10 bits for a 'same id' level); runs since count that u
        # exactly (train.fill_unobserved_u). A level without m either is Splink's own: left as it is.
        if not self.is_null_level and self.m_probability is not None and self.u_probability is None:
            raise ValueError(
                f"level {self.label_for_charts[:60]!r} has an m but no u (saved by a version that left a "
                "level random sampling never met without one): train the model again without --model"
            )
        return self


class GivenComparison(_Strict):
    output_column_name: str = Field(pattern=_NAME)
    comparison_description: str = ""
    comparison_levels: list[GivenLevel] = Field(min_length=1)


class GivenRule(_Strict):
    blocking_rule: str
    sql_dialect: str | None = None  # ignored: the engine's dialect is used


class GivenModel(_Strict):
    """The fields of a model.json this project writes (Splink 5's `save_model_to_json`)."""

    link_type: Literal["link_and_dedupe", "link_only"]
    probability_two_random_records_match: float = Field(gt=0, lt=1)
    retain_matching_columns: bool = False
    retain_intermediate_calculation_columns: bool = False
    additional_columns_to_retain: list[str] = Field(default_factory=list, max_length=0)
    sql_dialect: str | None = None  # ignored: the engine's dialect is used
    linker_uid: str | None = Field(None, pattern=r"^[a-z0-9]{1,32}$")
    em_convergence: float = Field(0.0001, gt=0)
    max_iterations: int = Field(25, ge=1)
    match_weight_column_prefix: Literal["mw_"] = "mw_"
    term_frequency_adjustment_column_prefix: Literal["tf_"] = "tf_"
    comparison_vector_value_column_prefix: Literal["gamma_"] = "gamma_"
    unique_id_column_name: Literal["record_key"] = "record_key"
    source_dataset_column_name: Literal["source_dataset"] | None = "source_dataset"
    blocking_rules_to_generate_predictions: list[GivenRule] = Field(min_length=1)
    comparisons: list[GivenComparison] = Field(min_length=1)


def load_given(path: Path) -> dict[str, Any]:
    """A trained model.json (`--model`), refused with the file and field named unless it has the shape
    of this project's models; returned as read (Splink's JSON), once it has passed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable model.json ({type(exc).__name__})") from None
    try:
        GivenModel.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ConfigError(f"{path}: not a model this project trained ({where}: {first['msg']})") from None
    return data


def given_model(model: dict[str, Any], caps: set[str], engine: str) -> tuple[dict[str, Any], set[str]]:
    """A given model (load_given) as the engine will run it, and the input columns it reads.

    Every condition is parsed in ``engine``'s dialect and written back from the parsed tree in that
    dialect, with the model's dialect fields set to it: what runs is what was checked. Comparison
    levels name columns as <column>_l / <column>_r, blocking rules as l.<column> / r.<column>; a cap
    flag is loadable only when the derived model computes it (``caps``).
    """
    checked = copy.deepcopy(model) | {"sql_dialect": engine}  # as written, but for the SQL below
    used: set[str] = set()
    for c in checked["comparisons"]:
        for level in c["comparison_levels"]:
            if level["sql_condition"].strip().upper() != "ELSE":
                where = f"comparison '{c['output_column_name']}'"
                level["sql_condition"] = _checked(level["sql_condition"], where, "level", engine, used)
            if level.get("tf_adjustment_column"):
                used.add(level["tf_adjustment_column"])
    for rule in checked["blocking_rules_to_generate_predictions"]:
        rule["blocking_rule"] = _checked(rule["blocking_rule"], "a blocking rule", "rule", engine, used)
        rule["sql_dialect"] = engine
    loadable = {c for c in used if column_family(c) or c in WEAK_MARKERS} | (used & caps)
    if unknown := sorted(used - loadable):
        raise ConfigError(
            f"the given model reads column(s) the linkage does not load: {', '.join(unknown)} "
            "(a cap_ flag belongs to a capped blocking rule these extracts' model does not have)"
        )
    return checked, used


def _checked(sql: str, where: str, kind: str, engine: str, used: set[str]) -> str:
    """One condition, refused unless it holds only the allowed boolean forms over the pair's columns
    (adds those to ``used``), written back in ``engine``'s dialect."""
    try:
        tree = sqlglot.parse_one(sql, read=engine)
    except sqlglot.errors.SqlglotError:
        raise ConfigError(f"the given model: {where} has SQL that cannot be parsed") from None
    other = next((node for node in tree.walk() if not isinstance(node, _ALLOWED)), None)
    if other is not None:
        raise ConfigError(
            f"the given model: {where} holds {type(other).__name__}: only column equality, IS NULL, "
            "AND / OR / NOT, coalesce and true / false are allowed"
        )
    for column in tree.find_all(exp.Column):
        if kind == "level":  # <column>_l / <column>_r, unqualified
            side = re.fullmatch(r"(.+)_[lr]", column.name)
            if column.table or not side:
                raise ConfigError(f"the given model: {where} reads {column.sql()}, not <column>_l / _r")
            used.add(side.group(1))
        else:  # l.<column> / r.<column>
            if column.table not in ("l", "r"):
                raise ConfigError(
                    f"the given model: {where} reads {column.sql()}, not l.<column> / r.<column>"
                )
            used.add(column.name)
    return tree.sql(dialect=engine)
