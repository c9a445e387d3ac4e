"""Train the Splink model: lambda from deterministic rules, u by random sampling, m by EM.

Each EM pass blocks on some tokens and so cannot learn the comparisons that use them; the passes
together must leave no comparison untrained, which `check_em_coverage` proves before any SQL runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from splink import Linker

from linkage.config.linkage import LinkageConfig, Training
from linkage.errors import ConfigError
from linkage.link.model import blocking_rules_sql, comparison_columns, rule_columns


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


def train(linker: Linker, training: Training, step: Callable[[str], None]) -> dict[str, float]:
    """Estimate lambda, u and m in place on ``linker``; return seconds per step.

    ``step`` names each step as it starts (progress for the analyst).
    """
    seconds: dict[str, float] = {}

    step("estimating the share of matching pairs (lambda)")
    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [r.sql for r in blocking_rules_sql(training.deterministic_rules)],
        recall=training.deterministic_recall,
    )
    seconds["lambda"] = time.perf_counter() - t

    step("estimating u by random sampling")
    t = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=training.u_max_pairs, seed=training.seed)
    seconds["u"] = time.perf_counter() - t

    t = time.perf_counter()
    for rule in blocking_rules_sql(training.em_rules):
        step(f"estimating m by expectation maximisation, pass '{rule.name}'")
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule.sql, max_pairs=training.em_max_pairs
        )
    seconds["m"] = time.perf_counter() - t
    return seconds
