"""Linkage config -> Splink settings: comparisons, blocking rules and training rules. No SQL runs here.

Conditions in the config are symmetric (`fn1=fn2` holds whichever record has the middle name), but
Splink puts the record with the lower id on the left. Comparison levels therefore OR a crossed
condition with its mirror image; blocking rules instead become two rules (the rule and its mirror),
because an OR in a join condition would stop DuckDB from using a hash join.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator

from linkage.config.linkage import (
    VICTIM_MENTION,
    BlockingRule,
    Comparison,
    Condition,
    Correlated,
    LinkageConfig,
    Term,
)
from linkage.errors import ConfigError
from linkage.tokens.spec import SOURCE_DATASET

if TYPE_CHECKING:
    from linkage.link.splink_adapter import ComparisonLevelCreator

UNIQUE_ID = "record_key"  # unique within an agency; Splink pairs it with source_dataset
NODE_ID = "node_id"  # one integer per record of the run (backend.load_record_index)


def _equal_sql(term: Term, pattern: str) -> str:
    """``pattern`` is '{c}_l' for comparison levels or 'l.{c}' for blocking rules."""
    left = pattern.format(c=term.left, side="l")
    right = pattern.format(c=term.right, side="r")
    return f"{left} = {right}"


def _conjunction(terms: list[Term], pattern: str) -> str:
    return " AND ".join(_equal_sql(t, pattern) for t in terms)


def _symmetric(terms: list[Term], pattern: str) -> str:
    """The terms all hold, with either record on the left (one form when the mirror is the same set)."""
    mirrored = [t.mirrored() for t in terms]
    direct = _conjunction(terms, pattern)
    if set(mirrored) == set(terms):
        return direct
    return f"(({direct}) OR ({_conjunction(mirrored, pattern)}))"


LEVEL_COLUMN = "{c}_{side}"
RULE_COLUMN = "{side}.{c}"
MIRRORED = " (mirrored)"  # the name of a crossed rule's mirror image: "<rule> (mirrored)"


def condition_sql(cond: Condition) -> str:
    """SQL over `col_l`/`col_r` for a comparison level."""
    if cond.equal:
        return _symmetric(cond.equal, LEVEL_COLUMN)
    return "(" + " OR ".join(_symmetric([t], LEVEL_COLUMN) for t in cond.equal_any) + ")"


def comparison(spec: Comparison) -> cl.CustomComparison:
    """A Splink comparison: missing level, the configured levels, then 'all other cases'."""
    missing = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in spec.missing_when)
    if spec.unless_any:  # a term that holds makes the pair comparable after all
        holds = condition_sql(Condition(equal_any=spec.unless_any))
        missing = f"({missing}) AND NOT coalesce({holds}, false)"
    # Splink takes a list of creators or dicts (a list, so the element type must be the union)
    levels: list[ComparisonLevelCreator | dict[str, Any]] = [
        cll.CustomLevel(missing, "missing").configure(is_null_level=True)
    ]
    for level in spec.levels:
        created: ComparisonLevelCreator = cll.CustomLevel(condition_sql(level), level.label)
        if level.term_frequency:
            created = created.configure(tf_adjustment_column=level.term_frequency)
        levels.append(created)
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name=spec.name, comparison_description=spec.description)


@dataclass(frozen=True)
class SqlRule:
    """One Splink blocking rule: its SQL over `l.`/`r.` and the config rule it came from.

    ``applicable``: SQL that holds when the rule could find the pair at all, whatever the values:
    both records hold every column it compares (and its restrictions and cap flags hold). The
    blocking-recall estimate (link/metrics.py) measures each rule's misses among such pairs.
    """

    name: str
    sql: str
    applicable: str


def cap_column(rule: BlockingRule) -> str | None:
    """The input column flagging records whose values of a capped rule are not over-common."""
    return f"cap_{rule.name}" if rule.max_block_size is not None else None


def capped(rules: list[BlockingRule]) -> list[BlockingRule]:
    return [r for r in rules if r.max_block_size is not None]


def blocking_sql(rule: BlockingRule) -> list[SqlRule]:
    """The rule, plus its mirror image when it crosses columns (each a plain equi-join).

    A capped rule also requires both records' cap flag (backend.Backend.load_extract sets it): a
    filter on each side, which the engine applies before the join, so an over-common value
    never forms its block at all.
    """
    restrict = "".join(f" AND (l.{c} IS NULL OR r.{c} IS NULL)" for c in rule.either_missing)
    flag = cap_column(rule)
    if flag:
        restrict += f" AND l.{flag} AND r.{flag}"
    mirrored = [t.mirrored() for t in rule.equal]
    direct = SqlRule(
        rule.name, _conjunction(rule.equal, RULE_COLUMN) + restrict, _held(rule.equal) + restrict
    )
    mirror = SqlRule(
        f"{rule.name}{MIRRORED}", _conjunction(mirrored, RULE_COLUMN) + restrict, _held(mirrored) + restrict
    )
    return [direct] if set(mirrored) == set(rule.equal) else [direct, mirror]  # its own mirror: one rule


def _held(terms: list[Term]) -> str:
    """Both records hold the values the terms compare (what a rule needs to find a pair at all)."""
    return " AND ".join(f"l.{t.left} IS NOT NULL AND r.{t.right} IS NOT NULL" for t in terms)


def blocking_rules_sql(rules: list[BlockingRule]) -> list[SqlRule]:
    return [sql for rule in rules for sql in blocking_sql(rule)]


def comparison_columns(spec: Comparison) -> set[str]:
    """Every column a comparison reads."""
    cols = set(spec.missing_when) | {c for t in spec.unless_any for c in (t.left, t.right)}
    for level in spec.levels:
        cols.update(c for t in (*level.equal, *level.equal_any) for c in (t.left, t.right))
        if level.term_frequency:  # its term-frequency table is built from that column
            cols.add(level.term_frequency)
    return cols


def first_level_columns(spec: Comparison) -> list[str] | None:
    """The columns whose equality is the comparison's first level; None unless that level is plain
    equality (each column with itself, all of them), the only kind the run can count by grouping."""
    first = spec.levels[0]
    if first.equal_any or any(t.crossed for t in first.equal):
        return None
    return [t.left for t in first.equal]


def instrument_column(spec: Comparison) -> str | None:
    """The one column whose equality is the comparison's first level (a correlated group's instrument),
    or None when that level is anything else."""
    columns = first_level_columns(spec)
    return columns[0] if columns and len(columns) == 1 else None


def uncountable(group: Correlated, comparisons: list[Comparison]) -> str | None:
    """Why the pairs agreeing on a group cannot be counted by grouping, or None when they can."""
    by_name = {c.name: c for c in comparisons}
    name = next((n for n in group.comparisons if first_level_columns(by_name[n]) is None), None)
    if name is None:
        return None
    return (
        f"the first level of comparison '{name}' is not plain equality of columns, so the pairs agreeing "
        "on it cannot be counted"
    )


def group_columns(group: Correlated, comparisons: list[Comparison]) -> list[str]:
    """The columns whose equality is the group's agreement (every comparison's first level)."""
    if why := uncountable(group, comparisons):
        raise ConfigError(f"training.correlated '{group.name}': {why}")
    by_name = {c.name: c for c in comparisons}
    columns: list[str] = []
    for name in group.comparisons:
        columns += [c for c in first_level_columns(by_name[name]) or [] if c not in columns]
    return columns


def rule_columns(rule: BlockingRule) -> set[str]:
    """Every column a blocking rule reads."""
    return {c for t in rule.equal for c in (t.left, t.right)} | set(rule.either_missing)


def input_columns(config: LinkageConfig) -> list[str]:
    """Token and code columns the model reads (everything else stays out of the database)."""
    used: set[str] = set()
    for comp in config.comparisons:
        used |= comparison_columns(comp)
    for rule in [*config.blocking_rules, *config.training.deterministic_rules, *config.training.em_rules]:
        used |= rule_columns(rule)
    markers = {r.weak_marker for r in config.clustering.conflict_rules() if r.weak_marker}
    if any(g.subjects_only for g in config.training.correlated):  # link/correlated.py tells roles apart
        used.add(VICTIM_MENTION)
    return sorted(used | config.clustering.conflict_columns() | markers)


def settings(config: LinkageConfig) -> SettingsCreator:
    """Splink settings over the agencies' extracts (`link_type` from the config).

    Predictions keep only ids and weights (no tokens, no per-comparison columns): that is what
    keeps scoring fast and memory small at a million records.
    """
    return SettingsCreator(
        link_type=config.link_type,
        unique_id_column_name=UNIQUE_ID,
        comparisons=[comparison(c) for c in config.comparisons],
        # Splink's annotation omits str, but it accepts SQL strings (to_blocking_rule_creator wraps them)
        blocking_rules_to_generate_predictions=[r.sql for r in blocking_rules_sql(config.blocking_rules)],  # type: ignore[misc]
        em_convergence=config.training.em_convergence,
        max_iterations=config.training.em_max_iterations,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )


def one_table(model: dict[str, Any]) -> dict[str, Any] | None:
    """A trained `link_and_dedupe` model (Splink's JSON) as the same model over one table of every
    agency's records keyed by ``NODE_ID`` (backend.one_table), for scoring; None for other link types.

    Splink keys each candidate pair of a `link_and_dedupe` run by a string it builds per record
    (source_dataset || '-__-' || record_key), then stores and joins on it; as `dedupe_only` over one
    table with an integer key it finds and scores the same pairs with the same weights, faster (10 M
    synthetic records: blocking 59 s instead of 109 s, scoring 76 s instead of 113 s). The agency and
    record key ride along as retained columns, so the scored pairs keep their usual columns. Only
    scoring uses this form: training stays on the agencies' tables, where Splink's sampling draws
    the records it always has.
    """
    if model.get("link_type") != "link_and_dedupe":
        return None
    dropped = ("source_dataset_column_name", "linker_uid")  # a fresh uid: its own cached tables
    return {k: v for k, v in model.items() if k not in dropped} | {
        "link_type": "dedupe_only",
        "unique_id_column_name": NODE_ID,
        "additional_columns_to_retain": [SOURCE_DATASET, UNIQUE_ID],
    }
