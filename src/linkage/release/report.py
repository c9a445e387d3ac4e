"""report.html: the release for a policy reader, one offline file (inline SVG and CSS, no script, no CDN).

Built only from the protected tables, so the report can never show more than the CSVs. Domestic
abuse comes first: the headline funnel with DA and other crimes side by side, the quarterly trend,
a ranked force comparison whose bars show how wide the suppression and rounding leave each value,
police outcomes, time through the system, orders, sentencing and prisoners; then every table
(labelled, long ones collapsed or left to their CSV) and what the statistics cannot show. Each
section is found by the shape of a table (its breakdowns, measures and statistics), so a policy
without that table simply has no such section. Every chart is an SVG with role="img", a <title>
and a <desc> that states its numbers in words, so a screen reader gets the same content.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from linkage.release.lookups import force_area_names, force_label
from linkage.release.tables import ALL, NOT_APPLICABLE, NOT_AVAILABLE, QUANTILES, SUPPRESSED, Published
from linkage.release.vocabulary import DA_INDEX_OR_HISTORY, MEASURES, OUTCOME_GROUPS, STATISTICS, label

FUNNEL = (
    "recorded",
    "police_charge_summons",
    "cps_referral",
    "cps_charged",
    "prosecuted",
    "convicted",
    "sentenced",
    "custody",
)
# A stage can never hold more journeys than the stage before it: the upper bound for a withheld count.
NESTED = {"cps_charged": ("cps_referral", "recorded"), "convicted": ("prosecuted", "recorded")}
MIN_SCALE = 0.7  # a chart shrinks to fit a narrow screen down to this, then scrolls inside its figure
RATE_WORDS = {
    "cps_charged": "charged by the CPS",
    "convicted": "ending in a conviction",
    "police_charge_summons": "charged or summonsed by the police",
}
OUTCOME_16 = next(g for g, codes in OUTCOME_GROUPS.items() if codes == (16,))
INLINE_ROWS = 15  # tables longer than this are collapsed in <details>
HTML_ROWS = 200  # tables longer than this are left to their CSV
QUANTILE_WORDS = {"q1": "lower quartile", "median": "median", "q3": "upper quartile", "mean": "mean"}
DA, OTHER = "#1f5a96", "#c96b16"  # blue / orange: distinguishable in the common colour-vision deficiencies
CSS = """
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:0 auto;max-width:62rem;
 color:#1b1b1b;padding:1rem 1.25rem 3rem}
h1{font-size:1.75rem;line-height:1.25;margin:.5rem 0}h2{font-size:1.35rem;margin-top:2.5rem;
 border-bottom:2px solid #1f5a96;padding-bottom:.2rem}h3{font-size:1.1rem;margin-top:1.6rem}
p,li{max-width:45rem}.note{color:#444;font-size:.9rem}
.key{background:#eef3f9;border-left:6px solid #1f5a96;padding:.6rem 1rem;margin:1rem 0}
nav ol{columns:2;column-gap:2rem;padding-left:1.2rem}nav li{break-inside:avoid}
figure{margin:1rem 0;overflow-x:auto}svg{display:block;max-width:100%;height:auto}
figcaption{font-size:.9rem;color:#444}.chart-title{font-weight:600;margin:.2rem 0 .4rem}
svg text{font-family:system-ui,Arial,sans-serif;font-size:13px;fill:#1b1b1b}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.85rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
td,th{border:1px solid #c8c8c8;padding:3px 7px;vertical-align:top}th{background:#f1f1f1;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr.all td{font-weight:600;background:#fafafa}
td.sym{color:#555;text-align:right}
details{margin:.5rem 0 1rem}summary{cursor:pointer;color:#1f5a96;font-weight:600}
dl.symbols dt{font-weight:700;float:left;width:2.5rem}dl.symbols dd{margin:0 0 .3rem 2.5rem}
@media (max-width:40rem){body{font-size:15px;padding:.75rem}nav ol{columns:1}h1{font-size:1.4rem}}
@media print{
 body{max-width:none;font-size:10.5pt;padding:0}nav{break-after:page}
 h2{break-after:avoid}figure,table,.key{break-inside:avoid}
 details>summary{list-style:none}details:not([open])>summary::after{content:" (see the CSV)";color:#444}
 a{color:inherit;text-decoration:none}.scroll{overflow:visible}
 table{font-size:7pt;width:100%;table-layout:fixed}td,th{padding:1px 3px;overflow-wrap:break-word}
}
@page{size:A4;margin:15mm}
"""


# --- table access ---------------------------------------------------------------------------------------


def _value(t: Published, row: list | None, column: str) -> Any:
    """A cell of a row; a row that does not exist (no such breakdown value) is withheld."""
    return SUPPRESSED if row is None else row[t.header.index(column)]


def _row(t: Published, **labels: Any) -> list | None:
    """The row whose breakdowns have these values (ALL for every breakdown not named)."""
    want = [labels.get(d, ALL) for d in t.spec.by]
    return next((r for r in t.rows if r[: len(t.spec.by)] == want), None)


def _find(tables: list[Published], test: Callable[[Published], bool]) -> Published | None:
    return next((t for t in tables if test(t)), None)


def _fmt(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _pct(num: Any, den: Any) -> float | None:
    return 100 * num / den if isinstance(num, int) and isinstance(den, int) and den else None


def _show(value: str, dim: str) -> str:
    return force_label(value) if dim == "force_area" else value


# --- SVG ------------------------------------------------------------------------------------------------


class _Ids:
    """Unique element ids for the charts' <title> and <desc> (aria-labelledby needs them)."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"chart{self.n}"


def _svg(
    ids: _Ids, width: int, height: int, title: str, desc: str, body: list[str], caption: str = ""
) -> str:
    uid = ids.next()
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><p class="chart-title" aria-hidden="true">{escape(title)}</p>'
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'style="min-width:{round(width * MIN_SCALE)}px" '
        f'aria-labelledby="{uid}-title {uid}-desc">'
        f'<title id="{uid}-title">{escape(title)}</title><desc id="{uid}-desc">{escape(desc)}</desc>'
        f"{''.join(body)}</svg>{cap}</figure>"
    )


def _text(x: float, y: float, s: object, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{extra}>{escape(str(s))}</text>'


def _label_width(labels) -> int:
    """Pixels for right-aligned labels at 13px (about 7.5px a character, with a margin)."""
    return max(90, round(7.6 * max((len(s) for s in labels), default=0)) + 16)


def _ticks(top: float, days: bool = False) -> list[float]:
    """Four or five round gridline values from 0 to at least ``top`` (weeks and years for days)."""
    steps = (7, 14, 28, 56, 91, 182, 365, 730, 1461) if days else (1, 2, 2.5, 5)
    if days:
        step = next((s for s in steps if s * 4 >= top), steps[-1])
    else:
        scale = 10 ** max(0, len(str(int(max(top, 1) / 4))) - 1)
        step = next((m * scale for m in (*steps, 10) if m * scale * 4 >= top), 10 * scale)
    n = max(1, -(-int(top) // step)) if top else 1
    return [step * k for k in range(int(n) + 1)]


def _funnel_chart(ids: _Ids, t: Published) -> str:
    """Each stage as a share of recorded crimes, DA and other crimes side by side."""
    stages = [m for m in FUNNEL if m in t.spec.measures]
    rows = {flag: _row(t, da_flag=flag) for flag in ("DA", "Not DA")}
    label_w, bar_w, group_h = _label_width(MEASURES[m].label for m in stages), 380, 44
    width, height = label_w + bar_w + 150, group_h * len(stages) + 40
    body = [
        f'<rect x="{label_w}" y="4" width="12" height="12" fill="{DA}"/>',
        _text(label_w + 18, 15, "Domestic abuse"),
        f'<rect x="{label_w + 150}" y="4" width="12" height="12" fill="{OTHER}"/>',
        _text(label_w + 168, 15, "Other crimes"),
    ]
    words = []
    for i, m in enumerate(stages):
        y = 30 + i * group_h
        body.append(_text(label_w - 8, y + 22, MEASURES[m].label, "end"))
        parts = []
        for j, (flag, colour) in enumerate((("DA", DA), ("Not DA", OTHER))):
            row = rows[flag]
            v = _value(t, row, m) if row else SUPPRESSED
            share = _pct(v, _value(t, row, "recorded")) if row else None
            yy = y + 2 + j * 18
            if share is None:
                body.append(_text(label_w + 4, yy + 13, f"{_fmt(v)} withheld", extra=' fill="#555"'))
                parts.append(f"{flag} withheld")
                continue
            w = max(1.0, bar_w * share / 100)
            body.append(f'<rect x="{label_w}" y="{yy}" width="{w:.1f}" height="15" fill="{colour}"/>')
            body.append(_text(label_w + w + 5, yy + 12, f"{share:.1f}% ({v:,})"))
            parts.append(f"{flag} {share:.1f}% ({v:,})")
        words.append(f"{MEASURES[m].label}: {', '.join(parts)}")
    desc = "Share of recorded crimes reaching each stage. " + "; ".join(words) + "."
    return _svg(ids, width, height, "Attrition: domestic abuse and other crimes, % of recorded", desc, body)


def _trend_chart(ids: _Ids, t: Published, period: str) -> str:
    """Recorded DA crimes and DA crimes charged by the CPS, per period; withheld points are gaps."""
    periods = sorted({r[t.spec.by.index(period)] for r in t.rows} - {ALL, "Not known"})
    series = [("recorded", DA, "DA crimes recorded")]
    if "cps_charged" in t.spec.measures:
        series.append(("cps_charged", OTHER, "DA crimes charged by the CPS"))
    points = {
        m: [
            _value(t, r, m) if (r := _row(t, **{period: p, "da_flag": "DA"})) else SUPPRESSED for p in periods
        ]
        for m, _, _ in series
    }
    ticks = _ticks(max([v for vs in points.values() for v in vs if isinstance(v, int)] or [1]))
    top = ticks[-1]
    left, width, height, plot_h = 56, 760, 320, 230
    step = (width - left - 20) / max(1, len(periods) - 1)
    body = [f'<line x1="{left}" x2="{width - 10}" y1="{plot_h + 20}" y2="{plot_h + 20}" stroke="#555"/>']
    for tick in ticks:
        y = plot_h + 20 - plot_h * tick / top
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.0f}" y2="{y:.0f}" stroke="#e2e2e2"/>')
        body.append(_text(left - 6, y + 4, f"{tick:,}", "end"))
    every = max(1, len(periods) // 8)
    for i, p in enumerate(periods):
        if i % every == 0:
            body.append(_text(left + i * step, plot_h + 38, p, "middle"))
    for m, colour, _name in series:
        segment: list[str] = []
        for i, v in enumerate([*points[m], None]):
            if isinstance(v, int):
                y = plot_h + 20 - plot_h * v / top
                segment.append(f"{left + i * step:.1f},{y:.1f}")
                continue
            if len(segment) > 1:
                line = " ".join(segment)
                body.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
            elif segment:
                px, py = segment[0].split(",")
                body.append(f'<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>')
            segment = []
            if v is not None:  # withheld: a hollow marker on the axis
                cx = f"{left + i * step:.1f}"
                body.append(f'<circle cx="{cx}" cy="{plot_h + 20}" r="3" fill="#fff" stroke="{colour}"/>')
    for k, (_, colour, name) in enumerate(series):
        body.append(
            f'<rect x="{left + 10 + 260 * k}" y="{height - 22}" width="12" height="12" fill="{colour}"/>'
        )
        body.append(_text(left + 28 + 260 * k, height - 12, name))
    words = "; ".join(
        f"{name}: " + ", ".join(f"{p} {_fmt(v)}" for p, v in zip(periods, points[m], strict=True))
        for m, _, name in series
    )
    title = f"Domestic abuse crimes per {label(period).lower().replace(' recorded', '')}"
    caption = "Hollow markers on the axis: value withheld ([c]). The latest period may be incomplete."
    return _svg(ids, width, height, title, f"Line chart. {words}.", body, caption)


# (force code, numerator, denominator, upper bound of the numerator when it is withheld): published values
Rate = tuple[Any, Any, Any, Any]  # (force code, numerator, denominator, bound of a withheld numerator)


def _rate_interval(n: Any, d: int, bound: Any, b: int) -> tuple[float, float, float | None]:
    """(low, high, point) of 100*n/d allowing for the published noise (each count within b-1 of the
    truth) and, when n is withheld, for anything from 0 to its published upper bound (else d)."""
    if isinstance(n, int):
        low = 100 * max(0, n - b + 1) / (d + b - 1)
        high = min(100.0, 100 * (n + b - 1) / max(1, d - b + 1))
        return low, high, 100 * n / d
    upper = bound if isinstance(bound, int) else d
    return 0.0, min(100.0, 100 * (upper + b - 1) / max(1, d - b + 1)), None


def _force_rates(t: Published, num: str) -> tuple[list[Rate], float | None]:
    """Per force: num per recorded DA crime (funnel_by_force), with the nearest published upper stage."""
    out = []
    for r in t.rows:
        if r[0] == ALL:
            continue
        bound = next((_value(t, r, m) for m in NESTED.get(num, ()) if isinstance(_value(t, r, m), int)), None)
        out.append((r[0], _value(t, r, num), _value(t, r, "recorded"), bound))
    total = _row(t)
    return out, _pct(_value(t, total, num), _value(t, total, "recorded")) if total else None


def _outcome_rates(t: Published, group: str) -> tuple[list[Rate], float | None]:
    """Per force: crimes with this outcome group per recorded crime (police_outcomes_by_force)."""
    out = []
    for code in sorted({r[0] for r in t.rows} - {ALL}):
        row, total = _row(t, force_area=code, police_outcome_group=group), _row(t, force_area=code)
        out.append(
            (code, _value(t, row, "recorded") if row else SUPPRESSED, _value(t, total, "recorded"), None)
        )
    row, total = _row(t, police_outcome_group=group), _row(t)
    return out, _pct(_value(t, row, "recorded"), _value(t, total, "recorded")) if row and total else None


def _force_chart(ids: _Ids, title: str, rates: list[Rate], national: float | None, b: int) -> str:
    """Forces ranked by a rate with an interval per force; a withheld numerator as an unranked range."""
    names = force_area_names()
    ranked: list[Any] = []
    ranges: list[Any] = []
    withheld: list[Any] = []
    for code, n, d, bound in rates:
        if not isinstance(d, int) or not d:
            withheld.append(code)
            continue
        low, high, point = _rate_interval(n, d, bound, b)
        (ranked if point is not None else ranges).append((point, low, high, code))
    ranked.sort(key=lambda x: (-x[0], x[3]))
    ranges.sort(key=lambda x: (-x[2], x[3]))
    rows = ranked + ranges
    label_w, bar_w, row_h = _label_width(names.get(c, c) for *_, c in rows), 420, 19
    width, height = label_w + bar_w + 110, row_h * len(rows) + 50
    ticks = _ticks(max([h for _, _, h, _ in rows] + [1.0]))
    top = min(100, ticks[-1])
    ticks = [v for v in ticks if v <= top]
    scale = bar_w / top

    def x(v: float) -> float:
        return label_w + v * scale

    body = []
    for v in ticks:
        body.append(f'<line x1="{x(v):.0f}" x2="{x(v):.0f}" y1="20" y2="{height - 26}" stroke="#e8e8e8"/>')
        body.append(_text(x(v), height - 10, f"{v:.0f}%", "middle"))
    if national is not None:
        body.append(
            f'<line x1="{x(national):.1f}" x2="{x(national):.1f}" y1="14" y2="{height - 26}" '
            'stroke="#222" stroke-dasharray="4 3"/>'
        )
        body.append(_text(x(national), 12, f"England and Wales {national:.1f}%", "middle"))
    words = []
    for i, (point, low, high, code) in enumerate(rows):
        y = 24 + i * row_h
        name = names.get(code, code)
        body.append(_text(label_w - 8, y + 13, name, "end"))
        if point is None:
            body.append(
                f'<rect x="{x(low):.1f}" y="{y + 4}" width="{max(1.0, x(high) - x(low)):.1f}" height="10" '
                'fill="#d9d9d9" stroke="#888" stroke-dasharray="2 2"/>'
            )
            body.append(_text(x(high) + 5, y + 13, f"[c] 0-{high:.0f}%", extra=' fill="#555"'))
            words.append(f"{name}: withheld, between 0 and {high:.0f}%")
            continue
        span = f'x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y + 9}" y2="{y + 9}"'
        body.append(f'<line {span} stroke="{DA}" stroke-width="2"/>')
        body.append(f'<circle cx="{x(point):.1f}" cy="{y + 9}" r="4.5" fill="{DA}"/>')
        body.append(_text(x(high) + 5, y + 13, f"{point:.1f}%"))
        words.append(f"{name}: {point:.1f}% (between {low:.1f}% and {high:.1f}%)")
    if withheld:
        words.append(f"{len(withheld)} force area(s) with every value withheld")
    caption = (
        "Dot: published rate; line: the range the rounding of both counts allows. Grey dashed bars: "
        "the count is withheld ([c]), so the rate can be anywhere in the range shown; these forces are "
        "not ranked. Dashed vertical line: England and Wales."
    )
    if withheld:
        caption += (
            " Not shown (every value withheld): " + ", ".join(names.get(c, c) for c in sorted(withheld)) + "."
        )
    return _svg(ids, width, height, title, "; ".join(words) + ".", body, caption)


def _hbars(ids: _Ids, title: str, items: list[tuple[Any, Any, Any]], unit: str = "") -> str:
    """Horizontal bars, one per (label, count, denominator); shares shown when a denominator is given."""
    label_w, bar_w, row_h = _label_width(s for s, _, _ in items), 360, 24
    width, height = label_w + bar_w + 130, row_h * len(items) + 10
    top = max([v for _, v, _ in items if isinstance(v, int)] or [1]) or 1
    body, words = [], []
    for i, (name, v, den) in enumerate(items):
        y = 4 + i * row_h
        body.append(_text(label_w - 8, y + 14, name, "end"))
        if not isinstance(v, int):
            body.append(
                _text(label_w + 4, y + 14, f"{v} withheld" if v == SUPPRESSED else v, extra=' fill="#555"')
            )
            words.append(f"{name}: {v}")
            continue
        share = _pct(v, den)
        text = f"{v:,}{unit}" + (f" ({share:.1f}%)" if share is not None else "")
        w = max(1.0, bar_w * v / top)
        body.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="17" fill="{DA}"/>')
        body.append(_text(label_w + w + 5, y + 14, text))
        words.append(f"{name}: {text}")
    return _svg(ids, width, height, title, "; ".join(words) + ".", body)


def _stage_times_chart(ids: _Ids, t: Published, row: list | None) -> str:
    """Median and quartiles of each interval of the table (one row), as boxes on one day axis."""
    stats = [s for s in t.spec.statistics if isinstance(_value(t, row, f"{s}_median"), int)]
    if not stats:
        return '<p class="note">Every value withheld.</p>'
    label_w, bar_w, row_h = _label_width(label(s) for s in stats), 400, 28
    width, height = label_w + bar_w + 170, row_h * len(stats) + 36
    ticks = _ticks(max(_value(t, row, f"{s}_q3") for s in stats), days=True)
    top = ticks[-1]
    body, words = [], []
    for v in ticks:
        xx = label_w + bar_w * v / top
        body.append(f'<line x1="{xx:.0f}" x2="{xx:.0f}" y1="0" y2="{height - 24}" stroke="#e8e8e8"/>')
        body.append(_text(xx, height - 8, f"{v:.0f} days", "middle"))
    for i, s in enumerate(stats):
        q1, med, q3 = (_value(t, row, f"{s}_{q}") for q in ("q1", "median", "q3"))
        y = 4 + i * row_h
        x1, xm, x3 = (label_w + bar_w * v / top for v in (q1, med, q3))
        body.append(_text(label_w - 8, y + 15, label(s), "end"))
        body.append(
            f'<rect x="{x1:.1f}" y="{y + 3}" width="{max(1.0, x3 - x1):.1f}" height="14" fill="#9cc3e6"/>'
        )
        body.append(
            f'<line x1="{xm:.1f}" x2="{xm:.1f}" y1="{y}" y2="{y + 20}" stroke="#0d2f55" stroke-width="3"/>'
        )
        body.append(_text(x3 + 6, y + 15, f"median {med}, IQR {q1}-{q3}"))
        words.append(f"{label(s)}: median {med} days, quartiles {q1} to {q3}")
    title = "Days between stages for domestic abuse cases (median and interquartile range)"
    caption = (
        "Bar: lower to upper quartile; thick line: median. Each interval counts the cases that passed "
        "both stages."
    )
    return _svg(ids, width, height, title, "; ".join(words) + ".", body, caption)


# --- HTML tables -----------------------------------------------------------------------------------------


def _headers(t: Published) -> list[str]:
    out = [label(d) for d in t.spec.by] + [label(m) for m in t.spec.measures]
    for s in t.spec.statistics:
        qs = [q for q, _ in QUANTILES] + (["mean"] if STATISTICS[s].magnitude else [])
        out += [f"{label(s)}: {QUANTILE_WORDS[q]}" for q in qs]
    return out


def _table_html(t: Published, rows: list[list] | None = None, caption: str = "") -> str:
    n_by = len(t.spec.by)
    head = "".join(
        f'<th scope="col"{" class=n" if i >= n_by else ""}>{escape(h)}</th>'
        for i, h in enumerate(_headers(t))
    )
    body = []
    for row in t.rows if rows is None else rows:
        cls = ' class="all"' if n_by and all(v == ALL for v in row[:n_by]) else ""
        cells = [
            f"<th scope=row>{escape(_show(str(v), d))}</th>"
            for v, d in zip(row[:n_by], t.spec.by, strict=True)
        ]
        for v in row[n_by:]:
            if isinstance(v, int):
                cells.append(f'<td class="n">{v:,}</td>')
            else:
                cells.append(f'<td class="sym">{escape(str(v))}</td>')
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    rows_html = "".join(body)
    table = f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _table_block(t: Published, open_: bool = False) -> str:
    """A table with its definitions: inline if short, collapsed if long, the CSV alone if very long."""
    csv = f"tables/{t.spec.name}.csv"
    note = (
        f'<p class="note">{escape(t.spec.description)} File <a href="{csv}">{csv}</a>. '
        f"{t.cells:,} distinct count cells, {t.primary + t.secondary:,} withheld ([c]).</p>"
    )
    if len(t.rows) > HTML_ROWS:
        return (
            f"<h3>{escape(t.spec.title)}</h3>{note}<p>{len(t.rows):,} rows: too long to read here; "
            f'open <a href="{csv}">{csv}</a> in a spreadsheet.</p>'
        )
    table = _table_html(t, caption=t.spec.title)
    if len(t.rows) > INLINE_ROWS and not open_:
        table = f"<details><summary>Show the table ({len(t.rows):,} rows)</summary>{table}</details>"
    return f"<h3>{escape(t.spec.title)}</h3>{note}{table}"


# --- sections --------------------------------------------------------------------------------------------


def _is_funnel(t: Published) -> bool:
    return "recorded" in t.spec.measures and len(set(t.spec.measures) & set(FUNNEL)) >= 3


def _key_points(t: Published) -> str:
    da, other = _row(t, da_flag="DA"), _row(t, da_flag="Not DA")
    if not da:
        return ""
    rec = _value(t, da, "recorded")
    points = [f"<li>{_fmt(rec)} domestic abuse crimes with a named suspect were recorded by the police.</li>"]
    for m, verb in (("cps_charged", "were charged by the CPS"), ("convicted", "ended in a conviction")):
        if m not in t.spec.measures:
            continue
        share = _pct(_value(t, da, m), rec)
        oshare = _pct(_value(t, other, m), _value(t, other, "recorded")) if other else None
        if share is not None:
            compare = f" (other crimes: {oshare:.1f}%)" if oshare is not None else ""
            points.append(f"<li>{share:.1f}% of them {verb}{compare}.</li>")
    return f'<div class="key"><strong>Key points</strong><ul>{"".join(points)}</ul></div>'


def _symbols(sdc: dict[str, Any]) -> str:
    return (
        '<dl class="symbols">'
        f"<dt>{SUPPRESSED}</dt><dd>confidential: withheld by disclosure control (fewer than "
        f"{sdc['threshold']} cases or people, a zero, or withheld so that it cannot be worked out from "
        "totals)</dd>"
        f"<dt>{NOT_APPLICABLE}</dt><dd>not applicable: the value cannot exist by definition (for example no "
        "custodial sentence length for a fine, no time to outcome for a crime still open)</dd>"
        f"<dt>{NOT_AVAILABLE}</dt><dd>not available: no source in this release records it</dd>"
        f"<dt>{ALL}</dt><dd>the total over that breakdown</dd></dl>"
    )


def _rounding_note(sdc: dict[str, Any]) -> str:
    base = sdc["rounding_base"]
    if sdc["perturbation"]["enabled"]:
        return (
            f"Counts are randomly rounded to a multiple of {base} (cell key perturbation, the ONS Census "
            f"2021 method), the same way for the same cases in every release, so each count is within "
            f"{base - 1} of the true count; averages and quartiles of days are randomly rounded to "
            f"{sdc['perturbation']['magnitude_base']} days."
        )
    return f"Counts are rounded to the nearest {base}."


NOT_IN_SOURCES = (
    (
        "Police-perpetrated abuse by force area or nation",
        "allegations against police employees are well under 1 % of DA crimes: most force and nation cells "
        "are withheld, so the figures are read for England and Wales together",
    ),
    ("DVPNs, DVPOs and DAPOs", "no extract here records them ([x] in the orders table)"),
    ("Victim satisfaction, DVDS (Clare's Law) disclosures, MARAC and specialist referrals", "no source here"),
    ("Police misconduct outcomes", "no source here"),
)


def _probation(ids: _Ids, tables: list[Published]) -> str:
    """Supervisions by DA index offence or history (chart, from the first table by type), then the tables."""
    html = ""
    main = _find(tables, lambda t: t.spec.by == ["probation_type", "da_probation"])
    total = _row(main, probation_type=ALL, da_probation=ALL) if main else None
    if main and total:
        den = _value(main, total, "probation_starts")
        items = [
            (
                g,
                _value(main, r, "probation_starts")
                if (r := _row(main, probation_type=ALL, da_probation=g))
                else SUPPRESSED,
                den,
            )
            for g in DA_INDEX_OR_HISTORY
        ]
        html += _hbars(
            ids, "Supervisions started, by DA index offence or DA history (count and % of all)", items
        )
    note = (
        "Probation records carry no DA flag: a supervision is for a DA index offence when the police or "
        "the CPS flagged its case, and has a DA history when the same person had an earlier DA police "
        "crime before it started. Both exist only through linkage."
    )
    return _with_tables(html, note, tables)


def _police_perpetrated(ids: _Ids, tables: list[Published]) -> str:
    """Criminal outcomes of DA allegations against police employees beside all other DA crimes."""
    html = ""
    main = _find(tables, lambda t: t.spec.by == ["police_employee"])
    if main:
        items = []
        for who, flag in (("Police employees", "Yes"), ("Everyone else", "No")):
            r = _row(main, police_employee=flag)
            den = _value(main, r, "recorded") if r else None
            for m in ("recorded", "cps_charged", "convicted"):
                v = _value(main, r, m) if r else SUPPRESSED
                items.append((f"{who}: {MEASURES[m].label}", v, den if m != "recorded" else None))
        html += _hbars(
            ids, "DA crimes with a police-employee suspect and everyone else: charged and convicted", items
        )
    note = (
        "The police record says whether the suspect is a police officer or member of police staff. These "
        "allegations are rare, so the first table is for England and Wales together; the nation and "
        "force-area tables withhold most cells."
    )
    return _with_tables(html, note, tables)


def _with_tables(html: str, note: str, tables: list[Published]) -> str:
    """A section's chart, a note for the reader, then its tables."""
    return f'{html}<p class="note">{escape(note)}</p>' + "".join(_table_block(t) for t in tables)


def render_report(tables: list[Published], meta: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    sdc, ids = meta["sdc"], _Ids()
    base = sdc["rounding_base"]
    sections: list[tuple[str, str, str]] = []  # (id, heading, html)

    funnel = _find(tables, lambda t: _is_funnel(t) and t.spec.by == ["da_flag"])
    if funnel:
        html = _funnel_chart(ids, funnel) + _table_html(
            funnel, [r for r in funnel.rows], caption=funnel.spec.title
        )
        sections.append(("funnel", "Domestic abuse from police record to sentence", html))
    trend = _find(
        tables,
        lambda t: "recorded" in t.spec.measures and set(t.spec.by) in ({"recorded_quarter", "da_flag"},),
    ) or _find(
        tables, lambda t: "recorded" in t.spec.measures and set(t.spec.by) == {"recorded_year", "da_flag"}
    )
    if trend:
        period = "recorded_quarter" if "recorded_quarter" in trend.spec.by else "recorded_year"
        sections.append(("trend", "Trend over time", _trend_chart(ids, trend, period) + _table_block(trend)))
    force = _find(
        tables,
        lambda t: (
            t.spec.by == ["force_area"]
            and t.spec.where.get("da_flag") == "DA"
            and "police_employee" not in t.spec.where
            and _is_funnel(t)
        ),
    )
    if force:
        num = next(m for m in RATE_WORDS if m in force.spec.measures)
        title = f"Police force areas ranked by DA crimes {RATE_WORDS[num]} per 100 recorded"
        html = _force_chart(ids, title, *_force_rates(force, num), base)
        by_outcome = _find(
            tables,
            lambda t: (
                t.spec.by == ["force_area", "police_outcome_group"] and t.spec.where.get("da_flag") == "DA"
            ),
        )
        if by_outcome:
            title = (
                "Police force areas ranked by outcome 16 (victim does not support action), per 100 DA crimes"
            )
            html += _force_chart(ids, title, *_outcome_rates(by_outcome, OUTCOME_16), base)
        sections.append(("forces", "Police force areas compared", html + _table_block(force)))
    outcomes = _find(
        tables, lambda t: "police_outcome_group" in t.spec.by and "force_area" in t.spec.by
    ) or _find(tables, lambda t: "police_outcome" in t.spec.by)
    if outcomes:
        dim = next(d for d in ("police_outcome_group", "police_outcome") if d in outcomes.spec.by)
        extra = {} if outcomes.spec.where.get("da_flag") == "DA" else {"da_flag": "DA"}
        total = _row(outcomes, **extra)
        den = _value(outcomes, total, "recorded") if total else None
        values = sorted({r[outcomes.spec.by.index(dim)] for r in outcomes.rows} - {ALL})
        items = [
            (
                v,
                _value(outcomes, r, "recorded") if (r := _row(outcomes, **{dim: v}, **extra)) else SUPPRESSED,
                den,
            )
            for v in values
        ]
        html = _hbars(ids, "Police outcomes of domestic abuse crimes (count and % of recorded)", items)
        html += "".join(
            _table_block(t)
            for t in tables
            if "police_outcome" in t.spec.by or "police_outcome_group" in t.spec.by
        )
        sections.append(("outcomes", "Police outcomes, including outcomes 15 and 16", html))
    times = _find(tables, lambda t: len(t.spec.statistics) >= 2)
    if times:
        html = _stage_times_chart(ids, times, _row(times)) + _table_block(times)
        sections.append(("times", "Time through the system", html))
    orders = [
        t for t in tables if any(m in t.spec.measures for m in ("orders_made", "dvpo_made", "dapo_made"))
    ]
    if orders:
        sections.append(
            ("orders", "Protective orders made and breached", "".join(_table_block(t) for t in orders))
        )
    sentencing = [t for t in tables if "sentence_type" in t.spec.by]
    if sentencing:
        sections.append(("sentencing", "Sentencing", "".join(_table_block(t) for t in sentencing)))
    prisoners = [t for t in tables if "prison_receptions" in t.spec.measures]
    if prisoners:
        sections.append(
            (
                "prisoners",
                "Prisoners with a DA index offence or a DA history",
                "".join(_table_block(t) for t in prisoners),
            )
        )
    probation = [t for t in tables if "probation_starts" in t.spec.measures]
    if probation:
        sections.append(
            ("probation", "Offenders managed in the community (probation)", _probation(ids, probation))
        )
    by_police = [t for t in tables if "police_employee" in (*t.spec.by, *t.spec.where)]
    if by_police:
        sections.append(
            (
                "policeperpetrated",
                "Domestic abuse allegations against police officers and staff",
                _police_perpetrated(ids, by_police),
            )
        )
    people = [t for t in tables if MEASURES[t.spec.measures[0]].unit != "journeys"]
    if people:
        intro = (
            "<p>These tables count distinct <strong>people</strong>, not case journeys: victims named on "
            "police DA crime records were linked like suspects, so a victim of several DA crimes is counted "
            "once, by their own sex, age band and ethnicity.</p>"
        )
        sections.append(
            (
                "victims",
                "Victims and perpetrators of domestic abuse",
                intro + "".join(map(_table_block, people)),
            )
        )
    shown = {t.spec.name for t in (funnel, trend, force, times) if t} | {
        t.spec.name for t in [*orders, *sentencing, *prisoners, *probation, *by_police, *people]
    }
    shown |= {
        t.spec.name for t in tables if "police_outcome" in t.spec.by or "police_outcome_group" in t.spec.by
    }
    rest = [t for t in tables if t.spec.name not in shown]
    if rest:
        sections.append(
            ("more", "Demographics, reoffending and other tables", "".join(_table_block(t) for t in rest))
        )
    gaps = "".join(f"<li><strong>{escape(a)}</strong>: {escape(b)}.</li>" for a, b in NOT_IN_SOURCES)
    sections.append(("gaps", "What these statistics cannot show yet", f"<ul>{gaps}</ul>"))
    about = (
        f"<p>Each count is of case journeys (the victims section: of distinct people): one crime with a "
        f"named suspect and what followed it, found by linking police, CPS, court, prison and probation "
        f"records of the same person without sharing names or dates of birth. Courts, prisons and probation "
        f"do not flag domestic abuse: a case is DA when the police or the CPS flagged it, so DA sentencing, "
        f"DA prisoners and DA offenders supervised in the community exist only through this linkage.</p>"
        f"<p>{_rounding_note(sdc)} Totals are rounded on their own and may differ from the sum of their "
        f"parts. Symbols:</p>{_symbols(sdc)}"
        f'<p class="note">Release {escape(meta["release_id"])} from run {escape(meta["run_id"])}, data to '
        f"{escape(meta['data_end'])}. Police force area names: ONS Police Force Areas (December 2023) names "
        "and codes in England and Wales (release/data/force_areas.csv). Every table and its definitions "
        "are in tables/ (CSV and JSON).</p>"
    )
    if meta["floors_overridden"]:
        about += (
            '<p class="note"><strong>Disclosure control floors overridden</strong> '
            f"(--allow-below-floors): {escape('; '.join(meta['floors_overridden']))}.</p>"
        )
    sections.append(("about", "About these statistics", about))

    title = escape(meta["title"])
    contents = "".join(f'<li><a href="#{sid}">{escape(h)}</a></li>' for sid, h, _ in sections)
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body><header><h1>{title}</h1>"
        f'<p class="note">{escape(meta.get("publisher") or "")} Data to {escape(meta["data_end"])}. '
        f"{SUPPRESSED} withheld, {NOT_APPLICABLE} not applicable, {NOT_AVAILABLE} not available "
        '(<a href="#about">about these statistics</a>).</p></header>',
        _key_points(funnel) if funnel else "",
        f'<nav aria-label="Contents"><h2>Contents</h2><ol>{contents}</ol></nav><main>',
    ]
    out += [f'<section id="{sid}"><h2>{escape(h)}</h2>{html}</section>' for sid, h, html in sections]
    out.append("</main></body></html>")
    return "\n".join(out)
