"""Every use of Splink's private API (``splink.internals``) in one place.

pyproject.toml bounds Splink to the minor version these names were checked against (``>=5.0,<5.1``);
when Splink moves them, this is the one module to change. Public API (``splink.Linker``,
``splink.DuckDBAPI``, the comparison libraries) is imported from ``splink`` directly elsewhere.
"""

from __future__ import annotations

from splink import Linker
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.html_utils import json_for_html, load_chart_libraries
from splink.internals.splink_dataframe import SplinkDataFrame

__all__ = [
    "ComparisonLevelCreator",
    "SplinkDataFrame",
    "add_comparison",
    "json_for_html",
    "load_chart_libraries",
]


def add_comparison(linker: Linker, creator: ComparisonCreator) -> None:
    """Append a comparison to a trained linker's model, keeping its training history (the report's
    chart of estimates across EM passes); Splink 5 has no public way to extend a trained model."""
    settings = linker._settings_obj
    comparison = creator.get_comparison(settings._sql_dialect_str)
    comparison.column_info_settings = settings.column_info_settings
    settings.comparisons = [*settings.comparisons, comparison]
