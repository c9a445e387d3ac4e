"""The `linkage` command line: a thin layer over the stage commands, assembled lazily.

Exit codes: 0 success, 1 refused or failed work, 2 bad usage or configuration (a missing extra too).
Every command takes --quiet and --json; `linkage -v/--log-level/--log-file` set up diagnostic logging.
Secrets come from environment variables or a hidden prompt, never from options.

To add a command, add one line to ``COMMANDS``: its name, the click command ("module:attribute"), a
one-line help, the extra it needs and whether it writes a run-log entry. Nothing is imported until
the command runs, so `linkage --help` stays fast; this module imports only click and the standard
library at load time. The CLI layer is the one place that opens the run-log entry (``logged``) and
the one place that writes `--json` documents (``ui.json_document``), for success and failure alike.
"""

from __future__ import annotations

import copy
import functools
import importlib
import logging
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import click

log = logging.getLogger(__name__)
DIST = "justice-linkage"
_DIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a requirement's distribution name (PEP 508)


@dataclass(frozen=True)
class CommandEntry:
    target: str  # "module:attribute" of the click command or group
    help: str  # one line for `linkage --help` (listing commands imports none of them)
    extra: str | None = None  # the pip extra whose packages the command needs
    logged: bool = False  # the CLI opens a run-log entry around the command


COMMANDS: dict[str, CommandEntry] = {
    # agency zone
    "keys": CommandEntry("linkage.keys_command:keys", "Create and inspect the project and signing keys."),
    "pseudonymise": CommandEntry(
        "linkage.extract.command:pseudonymise_cmd",
        "Raw extract -> tokens-only Parquet + manifest.",
        logged=True,
    ),
    # secure zone
    "verify": CommandEntry(
        "linkage.extract.command:verify_cmd", "Check extracts: signatures, hashes, counts, key.", logged=True
    ),
    "run": CommandEntry(
        "linkage.link.command:run_cmd",
        "Link verified extracts with Splink: people, model.",
        "link",
        logged=True,
    ),
    "model": CommandEntry(
        "linkage.link.command:model_cmd", "Print the model derived from the extracts (YAML).", "link"
    ),
    "recluster": CommandEntry(
        "linkage.link.command:recluster_cmd",
        "Cluster a run's scored pairs again at another threshold.",
        "link",
        logged=True,
    ),
    "journeys": CommandEntry(
        "linkage.journeys.command:journeys_cmd", "Assemble each person's case journeys.", logged=True
    ),
    "evaluate": CommandEntry(
        "linkage.evaluate_command:evaluate_cmd", "Measure a run against synthetic truth."
    ),
    # publication
    "release": CommandEntry(
        "linkage.release.command:release_cmd",
        "Aggregate tables under disclosure control.",
        "release",
        logged=True,
    ),
    # governance; anyone
    "audit": CommandEntry("linkage.audit.command:audit", "Review configs, flag risks, check the run log."),
    "synth": CommandEntry(
        "linkage.synth.command:synth_cmd", "Synthetic extracts with ground truth.", "synth"
    ),
}


def missing_for_extra(extra: str) -> list[str]:
    """The distributions of ``extra`` (from this package's metadata) that are not installed."""
    try:
        requirements = metadata.requires(DIST) or []
    except metadata.PackageNotFoundError:  # a source tree that was never installed: nothing to check
        return []
    missing = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        dist = _DIST_NAME.match(spec.strip())
        if dist is None or f'extra == "{extra}"' not in marker.replace("'", '"'):
            continue
        if dist.group(0).lower() == DIST:  # an extra that includes another ("justice-linkage[link]")
            continue
        try:
            metadata.version(dist.group(0))
        except metadata.PackageNotFoundError:
            missing.append(dist.group(0))
    return missing


def _needs_extra(name: str, extra: str, missing: list[str]) -> click.Command:
    """A stand-in for a command whose extra is not installed: any use exits 2 with the pip line."""

    def refuse() -> None:
        from linkage.errors import ConfigError

        raise ConfigError(
            f"`linkage {name}` needs the '{extra}' extra, which is not installed here (missing: "
            f"{', '.join(missing)}). Install it with: pip install 'justice-linkage[{extra}]' "
            f"(from a source checkout: pip install -e '.[{extra}]')"
        )

    return click.Command(
        name,
        callback=refuse,
        help=f"{COMMANDS[name].help} [needs: pip install 'justice-linkage[{extra}]']",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


def _with_run_log(name: str, command: click.Command) -> click.Command:
    """A copy of ``command`` whose body runs inside one run-log entry (stage code joins it)."""
    command = copy.copy(command)
    body = command.callback
    assert body is not None

    @functools.wraps(body)
    def run(*args: Any, **kwargs: Any) -> Any:
        from linkage.runlog import logged

        with logged(name):
            return body(*args, **kwargs)

    command.callback = run
    return command


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``COMMANDS`` only when one is run or asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:  # added directly (tests, plugins)
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if entry.extra and (missing := missing_for_extra(entry.extra)):
            return _needs_extra(cmd_name, entry.extra, missing)
        module_name, _, attribute = entry.target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        return _with_run_log(cmd_name, command) if entry.logged else command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table's one-line helps: `linkage --help` imports no command."""
        rows = [
            (
                name,
                e.help
                + (f" [needs the '{e.extra}' extra]" if e.extra and missing_for_extra(e.extra) else ""),
            )
            for name, e in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from linkage import __version__
    from linkage.tokens.hmac64 import describe

    click.echo(f"linkage {__version__} (Python {sys.version.split()[0]}; {describe()})")
    ctx.exit()


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version and which HMAC path (C extension or pure Python) is in use.",
)
@click.option("-v", "--verbose", count=True, help="More diagnostic logging on stderr (-v info, -vv debug).")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Diagnostic log level (wins over -v) [default: WARNING].",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also append diagnostic logging to this file (never data values; not the run log).",
)
def cli(verbose: int, log_level: str | None, log_file: Path | None) -> None:
    """justice-linkage: privacy-preserving linkage of police, CPS, court, prison and probation records.

    \b
    Agency zone:   keys, pseudonymise
    Secure zone:   verify, run, journeys, evaluate
    Publication:   release
    Governance:    audit (config review, JSON Schemas, run-log check)
    Anyone:        synth (synthetic extracts with ground truth)
    """
    from linkage.logs import configure

    configure(verbose, log_level, log_file)


def main() -> None:
    """Entry point: run the CLI, map errors to exit codes without tracebacks, own the --json document."""
    from linkage.errors import LinkageError
    from linkage.ui import json_document

    json_mode = "--json" in sys.argv
    code, error = 0, None
    with json_document.collect():
        try:
            cli.main(standalone_mode=False)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.Abort:
            code, error = 1, "aborted"
        except click.ClickException as exc:  # usage errors: exit 2
            code, error = exc.exit_code, exc.format_message()
            if not json_mode:
                exc.show()
                error = None
        except LinkageError as exc:
            code, error = exc.exit_code, str(exc)
        except Exception as exc:
            code, error = 1, _internal_error(exc)
    if json_mode:
        json_document.finish(error, code)
    if error is not None:
        click.echo(f"error: {error}" if not error.startswith("internal error") else error, err=True)
    sys.exit(code)


def _internal_error(exc: Exception) -> str:
    """An unexpected error's message may quote a data value (many library errors do), so only its type
    and location are shown; LINKAGE_DEBUG=1 re-raises it with the traceback, in a safe setting."""
    import os
    import traceback

    if os.environ.get("LINKAGE_DEBUG") == "1":
        raise exc
    tb = traceback.extract_tb(exc.__traceback__)[-1]
    where = f"{Path(tb.filename).name}:{tb.lineno}"
    log.error("internal error: %s at %s", type(exc).__name__, where)
    return (
        f"internal error: {type(exc).__name__} at {where} (message withheld: it may contain data; rerun "
        "with LINKAGE_DEBUG=1 inside the agency zone for details)"
    )
