"""`linkage audit`: the governance reviewer's command.

`linkage audit PATH...` is short for `linkage audit configs PATH...` (a click group whose default
command is `configs`), so `linkage audit log [FILE]` can sit beside it without a PATH named "log"
being ambiguous: such a folder is audited with `linkage audit configs log`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
from rich.console import Console

from linkage.audit.detect import CONFIG_MODELS
from linkage.audit.findings import Severity
from linkage.audit.render import render_html, render_markdown, render_text, summary
from linkage.audit.review import run_audit
from linkage.errors import LinkageError
from linkage.runlog import LogEntry, log_path, read_lines, verify_log
from linkage.ui import UNWRAPPED, output_options, table

_FORMAT_OF_SUFFIX = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}


class _DefaultConfigsGroup(click.Group):
    """Arguments that do not start with a subcommand's name go to `configs`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["configs", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultConfigsGroup, subcommand_metavar="PATH... | log [FILE]")
def audit() -> None:
    """Review configs in plain words, flag risky settings, check the run log.

    \b
      linkage audit PATH... [--format text|md|html] [--out FILE] [--sample AGENCY=FILE]
      linkage audit --schema DIR
      linkage audit log [FILE]

    PATH is a config file or a folder of them (agency configs, the linkage config, the release
    policy). Exit 1 on any high-severity finding or a broken run-log chain; see
    docs/governance-guide.md. `linkage audit configs --help` and `linkage audit log --help` list
    the options.
    """


def _parse_samples(values: tuple[str, ...]) -> dict[str, Path]:
    samples = {}
    for value in values:
        agency, sep, path = value.partition("=")
        if not sep or not agency or not Path(path).is_file():
            raise click.BadParameter(
                f"{value!r}: expected AGENCY=FILE with an existing file", param_hint="--sample"
            )
        samples[agency] = Path(path)
    return samples


def write_schemas(directory: Path) -> list[Path]:
    """Write `<type>.schema.json` for every config type (agency, linkage, release), for editors."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, model in CONFIG_MODELS.items():
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
        path = directory / f"{kind.value}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


@audit.command("configs")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "html"]),
    help="Review format [default: from --out's suffix, else text].",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the review to this file.")
@click.option(
    "--sample",
    "samples",
    multiple=True,
    metavar="AGENCY=FILE",
    help="A raw extract of that agency (agency zone only): lists its dropped columns and scans the first "
    "1,000 rows of pass-through columns for identifier-looking values. Repeatable.",
)
@click.option(
    "--schema",
    "schema_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the JSON Schema of every config type into this folder.",
)
@output_options
def audit_configs(paths, fmt, out, samples, schema_dir, ui) -> None:
    """Review agency, linkage and release configs and flag risky settings (exit 1 on a high one).

    The review says, per agency, what happens to each source column (tokenised into which tokens,
    passed through as what, dropped); what the linkage compares and when two records are one
    person; which tables may be published under which disclosure control. Sampled values are
    never printed, only counted.
    """
    if schema_dir:
        written = write_schemas(schema_dir)
        ui.info("JSON Schemas written: " + ", ".join(str(p) for p in written))
        if not paths:
            ui.result({"schemas": [str(p) for p in written]})
            return
    if not paths:
        raise click.UsageError("give at least one config file or folder (or --schema DIR)")
    report = run_audit(list(paths), _parse_samples(samples))
    if fmt is None:
        fmt = _FORMAT_OF_SUFFIX.get(out.suffix.lower(), "text") if out else "text"
    if out:
        if fmt == "text":
            buffer = io.StringIO()
            render_text(report, Console(file=buffer, width=UNWRAPPED, color_system=None))
            document = buffer.getvalue()
        else:
            document = render_markdown(report) if fmt == "md" else render_html(report)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document, encoding="utf-8")

    def render(console: Console) -> None:
        if out:
            console.print(f"{summary(report)}\nreview written to {out}", markup=False)
        elif fmt == "text":
            render_text(report, console)
        else:
            click.echo(render_markdown(report) if fmt == "md" else render_html(report), nl=False)

    ui.result(report.model_dump(mode="json"), render)
    if report.exit_code:
        raise LinkageError(f"{report.count(Severity.high)} high-severity finding(s): see the findings")


@audit.command("log")
@click.argument("log_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@output_options
def audit_log(log_file: Path | None, ui) -> None:
    """Verify the run log's hash chain and list its entries (exit 1 if the chain is broken).

    FILE defaults to $LINKAGE_LOG, else ./linkage-log.jsonl. An edited, deleted, reordered or
    inserted entry breaks the chain; the first broken line is reported and the entries before it
    are listed. Entries cut off the end are not detectable from the log alone: compare the last
    entry hash with a copy kept elsewhere.
    """
    path = log_file or log_path()
    check = verify_log(path)
    lines = read_lines(path)[: check.entries]
    entries = [LogEntry.model_validate_json(line) for line in lines]
    data = {
        "log": str(path),
        **check.model_dump(),
        "verified_entries": [e.model_dump(mode="json") for e in entries],
    }

    def render(console: Console) -> None:
        rows = [
            [
                e.seq,
                f"{e.timestamp:%Y-%m-%d %H:%M:%S}",
                e.command,
                f"{e.user}@{e.host}",
                e.outcome,
                (e.key_fingerprint or "-")[:16],
                "\n".join(f"{Path(c.path).name} {c.sha256[:16]}" for c in e.configs) or "-",
            ]
            for e in entries
        ]
        columns = ["#", "time (UTC)", "command", "user", "outcome", "key fingerprint", "configs (SHA-256)"]
        console.print(table(f"Run log {path}", columns, rows))
        if check.ok:
            console.print(
                f"[green]chain intact[/]: {check.entries} entries; last entry hash {check.last_hash}"
            )
            console.print(
                "Keep the last entry hash outside this environment: it proves nothing was cut off the end."
            )
        else:
            console.print(
                f"[red]chain broken at line {check.first_broken}[/]: {check.reason}. The entries listed "
                "above verify; nothing from that line on can be trusted."
            )

    ui.result(data, render)
    if not check.ok:
        raise LinkageError(f"{path}: run log chain broken at line {check.first_broken}: {check.reason}")
