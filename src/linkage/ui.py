"""Terminal output: rich tables and progress bars for people, JSON for scripts, silence with --quiet.

Progress and messages go to stderr; results go to stdout, so `--json` output can be piped.
"""

from __future__ import annotations

import functools
import json
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
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

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


class Output:
    def __init__(self, *, quiet: bool = False, json_mode: bool = False) -> None:
        self.quiet, self.json_mode = quiet, json_mode
        self.err = Console(stderr=True, highlight=False)
        self.out = Console(highlight=False, soft_wrap=True)

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
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif render is not None and not self.quiet:
            render(self.out)

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
