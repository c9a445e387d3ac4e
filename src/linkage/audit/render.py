"""The audit report as terminal text (rich), Markdown and HTML: one renderer per format over the same
`AuditReport`, so the three always say the same thing. The HTML is one self-contained file (inline
style, no script, nothing fetched), for the secure environment's offline browsers.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from linkage.audit.findings import Finding, Severity
from linkage.audit.review import AuditReport, Section

_COLOURS = {Severity.high: "red", Severity.medium: "yellow", Severity.low: "cyan"}


def _where(f: Finding) -> str:
    line = f":{f.line}" if f.line else ""
    field = f" ({f.field})" if f.field else ""
    return f"{f.file}{line}{field}"


def summary(report: AuditReport) -> str:
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in Severity)
    verdict = "FAIL: high-severity findings" if report.exit_code else "pass: no high-severity finding"
    return f"{len(report.files)} config file(s); findings: {counts}. {verdict}"


def _header(report: AuditReport) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"linkage {report.tool_version}, token spec v{report.token_spec_version}, {when}"


def _file_rows(report: AuditReport) -> list[list[str]]:
    return [[f.path, f.kind.value if f.kind else "unrecognised", f.sha256] for f in report.files]


def _finding_rows(report: AuditReport) -> list[list[str]]:
    return [[f.severity.value, f.code, _where(f), f"{f.title}. {f.reason}"] for f in report.findings]


_FILE_COLUMNS = ["file", "type", "SHA-256 (compare with the run log)"]
_FINDING_COLUMNS = ["severity", "code", "where", "finding"]


# --- terminal ----------------------------------------------------------------------------------------


def _rich_table(columns: list[str], rows: list[list[str]], title: str = "") -> Table:
    table = Table(title=title or None, title_justify="left", show_header=any(columns), expand=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: config values are not rich markup
    return table


def _heading(console: Console, text: str) -> None:
    """A rule across the terminal, or 100 columns in a pipe or file (where the console never wraps)."""
    console.print(Rule(Text(text, style="bold")), width=min(console.width, 100))


def render_text(report: AuditReport, console: Console) -> None:
    console.print(Text(f"Configuration audit ({_header(report)})", style="bold"))
    console.print(_rich_table(_FILE_COLUMNS, _file_rows(report), "Files"))
    for review in report.files:
        _heading(console, f"{review.title}  {review.path}")
        if review.note:
            console.print(Text(review.note))
        for section in review.sections:
            if section.intro:
                console.print(Text(section.intro, style="dim"))
            console.print(_rich_table(section.columns, section.rows, section.title))
    _heading(console, "Findings")
    if report.findings:
        table = _rich_table(_FINDING_COLUMNS, [])
        for f, row in zip(report.findings, _finding_rows(report), strict=True):
            table.add_row(Text(row[0], style=_COLOURS[f.severity]), *(Text(c) for c in row[1:]))
        console.print(table)
    console.print(Text(summary(report), style="bold red" if report.exit_code else "bold green"))


# --- Markdown ----------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    for ch in "\\|*`<[":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", "<br>") or " "


def _md_table(columns: list[str], rows: list[list[str]]) -> Iterator[str]:
    yield "| " + " | ".join(_md_cell(c) for c in columns) + " |"
    yield "|" + "---|" * len(columns)
    for row in rows:
        yield "| " + " | ".join(_md_cell(c) for c in row) + " |"
    yield ""


def _md_section(section: Section) -> Iterator[str]:
    yield f"### {section.title}\n"
    if section.intro:
        yield f"{_md_cell(section.intro)}\n"
    yield from _md_table(section.columns, section.rows)


def render_markdown(report: AuditReport) -> str:
    lines = [f"# Configuration audit\n\n{_header(report)}\n\n**{summary(report)}**\n", "## Files\n"]
    lines += _md_table(_FILE_COLUMNS, _file_rows(report))
    lines += ["## Findings\n"]
    lines += _md_table(_FINDING_COLUMNS, _finding_rows(report)) if report.findings else ["None.\n"]
    for review in report.files:
        lines.append(f"## {_md_cell(review.title)}\n\n`{review.path}`\n")
        if review.note:
            lines.append(f"{_md_cell(review.note)}\n")
        for section in review.sections:
            lines += _md_section(section)
    return "\n".join(lines)


# --- HTML ----------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.high { color: #fff; background: #b00020; } .medium { background: #ffd54f; } .low { background: #b3e5fc; }
.summary { font-weight: bold; } .fail { color: #b00020; } .pass { color: #1b5e20; }
code { font-size: 0.95em; }
"""


def _html_cell(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _html_table(columns: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns) if any(columns) else ""
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes else ""
        cells = [f"<td{cls if j == 0 else ''}>{_html_cell(c)}</td>" for j, c in enumerate(row)]
        body.append(f"<tr>{''.join(cells)}</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


def render_html(report: AuditReport) -> str:
    verdict = "fail" if report.exit_code else "pass"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Configuration audit</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Configuration audit</h1><p>{html.escape(_header(report))}</p>",
        f'<p class="summary {verdict}">{html.escape(summary(report))}</p>',
        "<h2>Files</h2>",
        _html_table(_FILE_COLUMNS, _file_rows(report)),
        "<h2>Findings</h2>",
        _html_table(_FINDING_COLUMNS, _finding_rows(report), [f.severity.value for f in report.findings])
        if report.findings
        else "<p>None.</p>",
    ]
    for review in report.files:
        parts.append(f"<h2>{html.escape(review.title)}</h2><p><code>{html.escape(review.path)}</code></p>")
        if review.note:
            parts.append(f"<p>{html.escape(review.note)}</p>")
        for section in review.sections:
            parts.append(f"<h3>{html.escape(section.title)}</h3>")
            if section.intro:
                parts.append(f"<p>{html.escape(section.intro)}</p>")
            parts.append(_html_table(section.columns, section.rows))
    parts.append("</body></html>\n")
    return "\n".join(parts)
