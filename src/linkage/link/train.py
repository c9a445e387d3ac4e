"""Train the Splink model: lambda from deterministic rules, u by random sampling, m by EM.

Each EM pass blocks on some tokens and so cannot learn the comparisons that use them; the passes
together must leave no comparison untrained, which `check_em_coverage` proves before any SQL runs.
Data can still surprise a valid config: a deterministic rule that finds no pair, or an EM pass with
nothing to learn from. Neither is a crash: the step is skipped and a note says so in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from splink import Linker

from linkage.config.linkage import LinkageConfig, Training
from linkage.errors import ConfigError
from linkage.link.backend import Backend
from linkage.link.derive import count_rule
from linkage.link.model import blocking_rules_sql, comparison_columns, first_level_columns, rule_columns
from linkage.tokens.spec import SOURCE_DATASET


def check_em_coverage(config: LinkageConfig) -> None:
    """Refuse a config whose EM passes leave a comparison without an m estimate.

    Splink does not estimate a comparison inside a pass whose blocking rule uses any of its
    columns; a comparison blocked on in every pass would keep its starting guess.
    """
    untrained = [
        comp.name
        for comp in config.comparisons
        if all(comparison_columns(comp) & rule_columns(rule) for rule in config.training.em_rules)
    ]
    if untrained:
        raise ConfigError(
            f"training.em_rules: every pass blocks on a column of {', '.join(untrained)}, so its m "
            "values would never be estimated; add a pass that does not use them"
        )


def possible_pairs(records: dict[str, int], link_type: str) -> float:
    """Pairs of records that may be compared at all (of different sources only, for link_only)."""
    n = sum(records.values())
    if link_type == "link_only":
        return (n * n - sum(r * r for r in records.values())) / 2
    return n * (n - 1) / 2


def agreeing_pairs_sql(records: str, keys: list[str], link_only: bool) -> str:
    """SQL counting the pairs of ``records`` equal on ``keys`` (of different sources only, for
    link_only), by grouping: no pair is formed."""
    by = ", ".join(keys)
    if not link_only:
        return f"SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM {records} GROUP BY {by})"
    return (
        f"SELECT sum((t * t - s) / 2) FROM (SELECT sum(n) AS t, sum(n * n) AS s FROM "
        f"(SELECT {by}, count(*) AS n FROM {records} GROUP BY {by}, {SOURCE_DATASET}) GROUP BY {by})"
    )


def fallback_lambda(records: dict[str, int], link_type: str) -> float:
    """One match per record among all pairs that may be compared: the prior when no rule counts."""
    n, possible = sum(records.values()), possible_pairs(records, link_type)
    return min(0.5, n / possible) if possible else 0.5


def train(
    linker: Linker,
    training: Training,
    step: Callable[[str], None],
    *,
    notes: list[str],
    records: dict[str, int],
    link_type: str,
) -> dict[str, float]:
    """Estimate lambda, u and m in place on ``linker``; return seconds per step.

    ``step`` names each step as it starts (progress for the analyst); ``notes`` receives a line for
    every step skipped because the data gave it nothing to learn from.
    """
    seconds: dict[str, float] = {}

    step("estimating the share of matching pairs (lambda)")
    t = time.perf_counter()
    # Splink takes the log of the pairs these rules find: count them first (exactly; they are narrow)
    found = [r for r in training.deterministic_rules if count_rule(linker, r, 1.0) > 0]
    for rule in training.deterministic_rules:
        if rule not in found:
            notes.append(f"deterministic rule '{rule.name}' found no pair: not used for lambda")
    if found:
        linker.training.estimate_probability_two_random_records_match(
            [r.sql for r in blocking_rules_sql(found)], recall=training.deterministic_recall
        )
    else:
        prior = fallback_lambda(records, link_type)
        linker._settings_obj._probability_two_random_records_match = prior  # no public setter in Splink 5
        notes.append(f"no deterministic rule found a pair: lambda set to one match per record ({prior:.3g})")
    seconds["lambda"] = time.perf_counter() - t

    step("estimating u by random sampling")
    t = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=training.u_max_pairs, seed=training.seed)
    seconds["u"] = time.perf_counter() - t

    t = time.perf_counter()
    for em_rule in blocking_rules_sql(training.em_rules):
        step(f"estimating m by expectation maximisation, pass '{em_rule.name}'")
        # Splink narrows the live model (comparisons, lambda) for the pass before it looks for pairs
        # and raises EMTrainingException when there are none: the model is restored from this copy
        saved = linker._settings_obj.core_model_settings.copy()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                em_rule.sql, max_pairs=training.em_max_pairs
            )
        except Exception as exc:
            # matched by name so that Splink's private modules need not be imported; anything else fails
            if type(exc).__name__ != "EMTrainingException":
                raise
            linker._settings_obj.core_model_settings = saved
            notes.append(f"EM pass '{em_rule.name}' found no pair to learn from: skipped")
    seconds["m"] = time.perf_counter() - t
    return seconds


def fill_unobserved_u(
    linker: Linker, backend: Backend, config: LinkageConfig, records: dict[str, int], notes: list[str]
) -> None:
    """Give a real u to every level that u sampling never saw (a rare agreement: the PNC's at 10 M
    records, about 3 agreeing pairs expected among the 5 M sampled).

    Splink scores such a level with a stand-in inside the live model but saves no u for it, so the
    saved model.json (what scoring, recluster and `--model` load) fell back to Splink's default: a
    weight of 10 bits for a 'same id' level. Measured at 10 M records: the PNC's agreement lost half its
    weight, the id-checked calibration and the twins' correction were switched off, and precision
    fell 0.996 -> 0.977. For a first level of plain equality the u is counted exactly instead: the
    pairs agreeing on its columns over the pairs that may be compared, which is what sampling
    estimates, with every pair sampled. Any other unobserved level gets u = 1 / (2 x pairs sampled).
    A level whose m went unseen too (no EM pair in it either) keeps Splink's defaults, with a note.
    """
    specs = {c.name: c for c in config.comparisons}
    possible = possible_pairs(records, config.link_type)
    for comparison in linker._settings_obj.comparisons:  # no public API for a level's u in Splink 5
        spec = specs.get(comparison.output_column_name)
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        for i, level in enumerate(levels):
            if level._u_is_trained or not level._m_is_trained:  # m unseen too: Splink's default stands
                continue
            columns = first_level_columns(spec) if spec and i == 0 and i < len(levels) - 1 else None
            if columns and possible:
                agreeing = _pairs_agreeing(backend, columns, list(records), config.link_type)
                level.u_probability = max(agreeing, 0.5) / possible  # never 0: a bayes factor of infinity
                how = f"counted exactly: {agreeing:,} of {possible:,.0f} pairs agree"
            else:
                level.u_probability = 0.5 / config.training.u_max_pairs
                how = f"set to 1 / (2 x {config.training.u_max_pairs:,.0f} pairs sampled)"
            notes.append(
                f"u of level '{level.label_for_charts}' of comparison '{comparison.output_column_name}' "
                f"not seen among the random pairs: {how}"
            )


def _pairs_agreeing(backend: Backend, columns: list[str], agencies: list[str], link_type: str) -> int:
    """Pairs of records that hold the same values of ``columns`` (of two sources, for link_only)."""
    held = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    records = " UNION ALL ".join(
        f"SELECT '{a}' AS {SOURCE_DATASET}, {', '.join(columns)} FROM {backend.input_table(a)} WHERE {held}"
        for a in agencies
    )
    sql = agreeing_pairs_sql(f"({records})", columns, link_type == "link_only")
    return int(backend.training_sql(sql)[0][0] or 0)
