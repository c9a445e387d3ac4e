"""report.html: the release for a policy reader, offline (inline SVG and CSS, no script, no CDN).

Built only from the protected tables, so the report can never show more than the CSVs: the
attrition funnel, the funnel by police force area as a heat table (share of recorded crimes
reaching each stage), time-to-outcome quartiles, then every table with its SDC counts.
"""

from __future__ import annotations

from html import escape
from typing import Any

from linkage.release.tables import ALL, SUPPRESSED, Published
from linkage.release.vocabulary import MEASURES, STATISTICS

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
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6rem 0;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}.note{color:#555;font-size:13px}
tr.all td{font-weight:600}
"""


def _is_all(row: list, upto: int, skip: int | None = None) -> bool:
    return all(v == ALL for i, v in enumerate(row[:upto]) if i != skip)


def _label_width(labels) -> int:
    """Pixels for right-aligned labels at the page's 15px font (about 9px a character)."""
    return max(120, 9 * max((len(label) for label in labels), default=0) + 16)


def _funnel_svg(t: Published, row: list) -> str:
    """Horizontal bars for each stage of the funnel row, labelled with the count and share of recorded."""
    n_by = len(t.spec.by)
    stages = [m for m in t.spec.measures if m in FUNNEL]
    values = {m: row[n_by + t.spec.measures.index(m)] for m in stages}
    top = max((v for v in values.values() if isinstance(v, int)), default=0) or 1
    base = values.get("recorded")
    bar_h, width = 26, 560
    label_w = _label_width(MEASURES[m].label for m in stages)
    parts = [f'<svg width="{label_w + width + 150}" height="{bar_h * len(stages) + 10}" role="img">']
    for i, m in enumerate(stages):
        v, y = values[m], i * bar_h + 4
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(MEASURES[m].label)}</text>'
        )
        if isinstance(v, int):
            w = max(1, round(width * v / top))
            share = f" ({100 * v / base:.1f}%)" if isinstance(base, int) and base else ""
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h - 6}" fill="#3b6ea5"/>')
            parts.append(f'<text x="{label_w + w + 6}" y="{y + 17}">{v:,}{share}</text>')
        else:
            parts.append(f'<text x="{label_w + 6}" y="{y + 17}" fill="#888">{SUPPRESSED} withheld</text>')
    return "".join(parts) + "</svg>"


def _force_heat(t: Published) -> str:
    """One row per force (other breakdowns at All): each stage as % of recorded, shaded."""
    n_by, pos = len(t.spec.by), t.spec.by.index("force_area")
    stages = [m for m in t.spec.measures if m in FUNNEL and m != "recorded"]
    head = "".join(f"<th>{escape(MEASURES[m].label)}</th>" for m in stages)
    body = []
    for row in t.rows:
        if not _is_all(row, n_by, skip=pos):
            continue
        rec = row[n_by + t.spec.measures.index("recorded")]
        cells = []
        for m in stages:
            v = row[n_by + t.spec.measures.index(m)]
            if isinstance(v, int) and isinstance(rec, int) and rec:
                pct = 100 * v / rec
                shade = 255 - min(200, round(pct * 4))
                cells.append(f'<td class="n" style="background:rgb({shade},{shade},255)">{pct:.1f}%</td>')
            else:
                cells.append(f'<td class="n">{SUPPRESSED}</td>')
        cls = ' class="all"' if row[pos] == ALL else ""
        shown = rec if rec == SUPPRESSED else f"{rec:,}"
        label = escape(str(row[pos]))
        body.append(f'<tr{cls}><td>{label}</td><td class="n">{shown}</td>{"".join(cells)}</tr>')
    return f"<table><tr><th>force area</th><th>recorded</th>{head}</tr>{''.join(body)}</table>"


def _quartiles_svg(t: Published, stat: str) -> str:
    """Box (lower quartile to upper quartile) and median per category of the first breakdown."""
    n_by = len(t.spec.by)
    q1, med, q3 = (t.header.index(f"{stat}_{q}") for q in ("q1", "median", "q3"))
    rows = [r for r in t.rows if n_by and _is_all(r, n_by, skip=0) and isinstance(r[med], int)]
    if not rows:
        return '<p class="note">Every cell withheld.</p>'
    top = max(float(r[q3]) for r in rows) or 1
    bar_h, width = 24, 480
    label_w = _label_width(str(r[0]) for r in rows)
    parts = [f'<svg width="{label_w + width + 200}" height="{bar_h * len(rows) + 30}" role="img">']
    for i, r in enumerate(rows):
        y = i * bar_h + 4
        x1, xm, x3 = (label_w + round(width * float(r[j]) / top) for j in (q1, med, q3))
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(str(r[0]))}</text>')
        parts.append(
            f'<rect x="{x1}" y="{y + 2}" width="{max(1, x3 - x1)}" height="{bar_h - 8}" fill="#9cc3e6"/>'
        )
        parts.append(
            f'<line x1="{xm}" x2="{xm}" y1="{y}" y2="{y + bar_h - 4}" stroke="#1d3f66" stroke-width="3"/>'
        )
        parts.append(f'<text x="{x3 + 6}" y="{y + 15}">{r[med]} days (IQR {r[q1]}-{r[q3]})</text>')
    return "".join(parts) + "</svg>"


def _table_html(t: Published) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cls = ' class="all"' if t.spec.by and _is_all(row, len(t.spec.by)) else ""
        cells = "".join(
            f'<td class="n">{v:,}</td>' if isinstance(v, int) else f"<td>{escape(str(v))}</td>" for v in row
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _rounding_note(sdc: dict[str, Any]) -> str:
    base = sdc["rounding_base"]
    if sdc["perturbation"]["enabled"]:
        return (
            f"Counts are perturbed by cell key: randomly rounded to a multiple of {base}, the same way for "
            f"the same journeys in every release; means and quartiles of days are randomly rounded to "
            f"{sdc['perturbation']['magnitude_base']} days."
        )
    return f"Counts are rounded to the nearest {base}."


def render_report(tables: list[Published], meta: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    sdc = meta["sdc"]
    out = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(meta['title'])}</title>"
        f"<style>{CSS}</style></head><body><h1>{escape(meta['title'])}</h1>",
        f'<p class="note">Release {escape(meta["release_id"])} from run {escape(meta["run_id"])}, '
        f"data to {escape(meta['data_end'])}. {_rounding_note(sdc)} "
        f"{SUPPRESSED} marks a value withheld for confidentiality (fewer than {sdc['threshold']} journeys "
        "or persons, a zero, or a complementary suppression so it cannot be derived from totals). "
        "Totals are rounded independently and may not equal the sum of their rounded parts.</p>",
    ]
    if meta["floors_overridden"]:
        out.append(
            '<p class="note"><strong>Disclosure control floors overridden</strong> '
            f"(--allow-below-floors): {escape('; '.join(meta['floors_overridden']))}.</p>"
        )
    funnels = [
        t for t in tables if "recorded" in t.spec.measures and len(set(t.spec.measures) & set(FUNNEL)) >= 3
    ]
    if funnels:
        t = funnels[0]
        total = next(r for r in t.rows if _is_all(r, len(t.spec.by)))
        out.append(f"<h2>{escape(t.spec.title)}</h2>{_funnel_svg(t, total)}")
        for t in funnels:
            if "force_area" in t.spec.by:
                out.append(f"<h2>Funnel by police force area (share of recorded crimes)</h2>{_force_heat(t)}")
                break
    for t in tables:
        for s in t.spec.statistics:
            out.append(
                f"<h2>{escape(STATISTICS[s].description.capitalize())}: median and quartiles</h2>"
                f"{_quartiles_svg(t, s)}"
            )
    out.append("<h2>Tables</h2>")
    for t in tables:
        out.append(
            f"<h3>{escape(t.spec.title)}</h3><p class='note'>{escape(t.spec.description)} "
            f"File tables/{escape(t.spec.name)}.csv. {t.cells:,} distinct count cells, "
            f"{t.primary + t.secondary:,} withheld.</p>{_table_html(t)}"
        )
    out.append("</body></html>")
    return "\n".join(out)
