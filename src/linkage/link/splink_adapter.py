"""Every use of Splink's private API (``splink.internals``) in one place.

pyproject.toml bounds Splink to the minor version these names were checked against (``>=5.0,<5.1``);
when Splink moves them, this is the one module to change. Public API (``splink.Linker``,
``splink.DuckDBAPI``, the comparison libraries) is imported from ``splink`` directly elsewhere.
"""

from __future__ import annotations

from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.html_utils import json_for_html, load_chart_libraries
from splink.internals.splink_dataframe import SplinkDataFrame

__all__ = ["ComparisonLevelCreator", "SplinkDataFrame", "json_for_html", "load_chart_libraries"]
