"""Diagnostic logging with the standard ``logging`` module: `linkage -v`, `--log-level`, `--log-file`.

This is not the run log (linkage.runlog, the tamper-evident record of what ran); it is for people
finding out why something is slow or refused. Every module logs through ``logging.getLogger(__name__)``
under the ``linkage`` logger. A log line names files, counts, settings and timings, never a data value,
key or passphrase (tests/test_logs.py scans a DEBUG log of a whole pseudonymise for the raw values).

Levels: WARNING by default, INFO with -v, DEBUG with -vv; --log-level wins. Third-party libraries
(Splink, ACRO, py4j) stay at WARNING unless the level is DEBUG.
"""

from __future__ import annotations

import logging
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_THIRD_PARTY = ("splink", "acro", "py4j", "matplotlib", "numexpr")


def configure(verbose: int = 0, level: str | None = None, log_file: Path | None = None) -> int:
    """Set up the ``linkage`` logger's handlers (stderr, and ``log_file`` when given); returns the level."""
    by_count = max(logging.DEBUG, logging.WARNING - 10 * verbose)
    resolved = logging.getLevelName(level.upper()) if level else by_count
    root = logging.getLogger("linkage")
    for handler in list(root.handlers):  # configure() may run more than once in one process (tests)
        root.removeHandler(handler)
        handler.close()
    root.setLevel(resolved)
    root.propagate = False
    stderr = logging.StreamHandler()
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(stderr)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(to_file)
    for name in _THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.DEBUG if resolved <= logging.DEBUG else logging.WARNING)
    return resolved
