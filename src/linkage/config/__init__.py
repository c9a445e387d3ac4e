"""Pydantic models for every configuration file, and the YAML loader that reports file and line."""

from linkage.config.loader import config_sha256, load_config

__all__ = ["config_sha256", "load_config"]
