"""Terminal output: rich tables and progress bars for people, JSON for scripts, silence with --quiet.

Progress and messages go to stderr; results go to stdout, so `--json` output can be piped. Output to a
pipe or a file is never wrapped (a SHA-256 stays on one line, so it can be copied and grepped).

`--json` has one owner: ``json_document``. Under `linkage` (``cli.main``) a command's result waits
there and main writes exactly one JSON document: the result, or on any failure (usage errors
included) the result so far with ``"error"`` and ``"exit_code"`` added. A command invoked on
its own (click's test runner) writes its result at once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

PASSPHRASE_ENV = "LINKAGE_KEY_PASSPHRASE"
SIGNING_PASSPHRASE_ENV = "LINKAGE_SIGNING_PASSPHRASE"
# Width of a console that is not a terminal: wide enough that nothing is wrapped, while tables are
# still only as wide as their content.
UNWRAPPED = 100_000

# Path types shared by every command's options.
ExistingFile = click.Path(exists=True, dir_okay=False, path_type=Path)
ExistingDir = click.Path(exists=True, file_okay=False, path_type=Path)
AnyPath = click.Path(path_type=Path)


def output_options(fn):
    """Add --quiet/--json to a click command and pass it a ``ui: Output``."""

    @click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
    @click.option("--json", "json_mode", is_flag=True, help="Print the result as JSON on stdout.")
    @functools.wraps(fn)
    def wrapper(*args, quiet: bool, json_mode: bool, **kwargs):
        return fn(*args, ui=Output(quiet=quiet, json_mode=json_mode), **kwargs)

    return wrapper


def read_passphrase(env: str, *, confirm: bool, what: str, fallback_env: str | None = None) -> str:
    """Passphrase from the environment, else a hidden prompt (never a command-line option)."""
    from linkage.errors import ConfigError

    for name in (env, fallback_env):
        if name and os.environ.get(name):
            return os.environ[name]
    if not sys.stdin.isatty():
        raise ConfigError(f"no passphrase for the {what}: set {env} or run interactively")
    return click.prompt(f"Passphrase for the {what}", hide_input=True, confirmation_prompt=confirm)


def console(*, stderr: bool = False) -> Console:
    """A console that wraps at the terminal's width, and not at all in a pipe or a file."""
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else UNWRAPPED
    return Console(stderr=stderr, highlight=False, soft_wrap=not stderr, width=wide)


class JsonDocument:
    """The one place `--json` output is written (see the module docstring)."""

    def __init__(self) -> None:
        self.collecting = False
        self.result: dict[str, Any] | None = None

    def add_result(self, data: dict[str, Any]) -> None:
        if self.collecting:
            self.result = data
        else:
            write_json(data)

    @contextmanager
    def collect(self) -> Iterator[None]:
        self.collecting, self.result = True, None
        try:
            yield
        finally:
            self.collecting = False

    def finish(self, error: str | None = None, exit_code: int = 0) -> None:
        """Write the one document: the result, or on failure the result so far with "error" and "exit_code"
        added (so a reader of the result, an audit's findings say, reads a failed one the same way)."""
        if error is None:
            if self.result is not None:
                write_json(self.result)
            return
        write_json({**(self.result or {}), "error": error, "exit_code": exit_code})


def write_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


json_document = JsonDocument()


class Output:
    def __init__(self, *, quiet: bool = False, json_mode: bool = False) -> None:
        self.quiet, self.json_mode = quiet, json_mode
        self.err = console(stderr=True)
        self.out = console()

    @property
    def chatty(self) -> bool:
        return not (self.quiet or self.json_mode)

    def info(self, message: str) -> None:
        if self.chatty:
            self.err.print(message)

    def warn(self, message: str) -> None:
        if not self.json_mode:
            self.err.print(f"[yellow]warning:[/] {message}")

    def result(self, data: dict[str, Any], render: Callable[[Console], None] | None = None) -> None:
        """Print the command's result: JSON with --json, else ``render`` (skipped with --quiet)."""
        if self.json_mode:
            json_document.add_result(data)
        elif render is not None and not self.quiet:
            render(self.out)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner with elapsed time on stderr while a step runs (a terminal only; silent otherwise)."""
        if not self.chatty or not self.err.is_terminal:
            yield
            return
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            bar.add_task(message, total=None)
            yield

    @contextmanager
    def progress(self, total_bytes: int, description: str) -> Iterator[Callable[[int, int], None]]:
        """A byte-based progress bar that also shows rows and rows/s; a no-op when not chatty."""
        if not self.chatty or not self.err.is_terminal:
            yield lambda _bytes, _rows: None
            return
        rows = [0]
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.err, transient=False) as bar:
            task = bar.add_task(description, total=total_bytes, rows=0, rate=0.0)

            def advance(nbytes: int, nrows: int) -> None:
                rows[0] += nrows
                elapsed = bar.tasks[task].elapsed or 0.0
                bar.update(task, advance=nbytes, rows=rows[0], rate=rows[0] / elapsed if elapsed else 0.0)

            yield advance
            bar.update(task, completed=total_bytes)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t
