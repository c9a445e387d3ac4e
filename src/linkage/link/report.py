"""quality.html: an offline report of the model and its results, for the analyst and the board.

Secure environments have no internet, so the chart libraries (vega, vega-lite, vega-embed, as
packaged with Splink) are inlined once at the top and every chart is a spec rendered by them; the
file loads nothing from anywhere. Token values never appear: Splink's waterfall charts are built
with `remove_sensitive_data=True`, and the tables hold counts only.
"""

from __future__ import annotations

import html
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from splink import Linker

from linkage.config.linkage import LinkageConfig
from linkage.link.backend import Backend
from linkage.link.metrics import RunMetrics, miss_rate
from linkage.link.model import MIRRORED
from linkage.link.splink_adapter import SplinkDataFrame, json_for_html, load_chart_libraries
from linkage.tokens.spec import RECORD_KEY, SOURCE_DATASET
from linkage.util import atomic_write_bytes

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; } td, th { padding: 0.2rem 0.7rem; }
th { text-align: left; background: #f0f0f0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #555; max-width: 55rem; } .chart { margin: 1rem 0; }
"""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v:,}</td>' if isinstance(v, int) else f"<td>{html.escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _bar_chart(values: list[dict[str, Any]], x: str, y: str, title: str, x_type: str = "ordinal") -> dict:
    """A plain vega-lite bar chart (the same libraries Splink's charts use)."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": 600,
        "height": 250,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": x, "type": x_type, "sort": None},
            "y": {"field": y, "type": "quantitative", "scale": {"type": "symlog"}},
        },
    }


def _waterfall_chart(
    backend: Backend, linker: Linker, predictions: SplinkDataFrame, agencies: list[str], n: int
) -> dict | None:
    """Score ``n`` example pairs again with every intermediate column, for waterfall charts.

    The examples are spread over the match-weight range (deterministic: ordered by weight, then
    ids). The main scoring keeps no intermediate columns (speed), so a second linker, loaded from
    the trained model with them switched on, rescores just these pairs.
    """
    if n == 0:
        return None
    pairs = backend.sql(f"""
        WITH ranked AS (
            SELECT {SOURCE_DATASET}_l, {RECORD_KEY}_l, {SOURCE_DATASET}_r, {RECORD_KEY}_r,
                   ntile({n}) OVER (ORDER BY match_weight, {RECORD_KEY}_l, {RECORD_KEY}_r) AS bucket,
                   row_number() OVER (ORDER BY match_weight, {RECORD_KEY}_l, {RECORD_KEY}_r) AS i
            FROM {predictions.physical_name}
        )
        -- the middle pair of each of n equal slices of the weight range
        SELECT {SOURCE_DATASET}_l, {RECORD_KEY}_l, {SOURCE_DATASET}_r, {RECORD_KEY}_r
        FROM (SELECT *, row_number() OVER (PARTITION BY bucket ORDER BY i) AS j,
                     count(*) OVER (PARTITION BY bucket) AS m FROM ranked)
        WHERE j = (m + 1) // 2 ORDER BY bucket
    """)
    if not pairs:
        return None
    model = linker.misc.save_model_to_json()
    model["retain_matching_columns"] = model["retain_intermediate_calculation_columns"] = True
    tables = [
        backend.db_api.register(
            backend.input_table(ds), dataset_display_name=ds, table_name=f"waterfall_{ds}"
        )
        for ds in agencies  # all of them, so term frequencies are those the model was scored with
    ]
    explainer = Linker(tables, model, log_level=None)
    records = []
    for ds_l, key_l, ds_r, key_r in pairs:
        left, right = (_record(backend, ds, key) for ds, key in ((ds_l, key_l), (ds_r, key_r)))
        scored = explainer.inference.score_pair(left, right)
        records.extend(scored.as_record_list())
        scored.drop_table_from_database_and_remove_from_cache()
    return explainer.visualisations.waterfall_chart(records, remove_sensitive_data=True).chart_dict


def _record(backend: Backend, dataset: str, key: int) -> dict[str, Any]:
    """One input record as a dict (held in memory only to rescore it)."""
    cursor = backend.con.execute(
        f"SELECT * FROM {backend.input_table(dataset)} WHERE {RECORD_KEY} = ?", [key]
    )
    names = [d[0] for d in cursor.description]
    return {**dict(zip(names, cursor.fetchall()[0], strict=True)), SOURCE_DATASET: dataset}


def _people_precision(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "(not measured)"


def write_quality_report(
    path: Path,
    config: LinkageConfig,
    backend: Backend,
    linker: Linker,
    predictions: SplinkDataFrame,
    metrics: RunMetrics,
) -> None:
    """Write the self-contained report (about 1 MB, most of it the inlined chart libraries)."""
    viz = linker.visualisations
    threshold = metrics.threshold_match_probability
    choice = metrics.threshold
    sections: list[tuple[str, str, dict]] = [
        (
            "Expected precision and recall by threshold (from the model, no ground truth)",
            "The model's match probability of each scored pair is its own estimate that the two records are "
            "one person; summed over the pairs at or above a threshold it estimates how many links are "
            "right (precision) and what share of all matching pairs blocking found they keep (recall). "
            f"The threshold in use is marked ({choice.rule}). Pair by pair the model is optimistic where "
            "different people share correlated evidence (twins, a household, namesakes), so read the curve "
            "as a ranking of thresholds; the people formed at the threshold hold pairs with an expected "
            f"precision of {_people_precision(choice.people_expected_precision)} (every pair of records "
            "inside a person, chains included: the figure the precision floor is checked on). Where the "
            "data has a checked id, the 'checked' lines are the same estimates from probabilities measured "
            "against it (the table 'The model checked against a checked id').",
            _curve_chart(metrics),
        ),
        (
            "Match weights",
            "How much each level of each comparison counts for (right) or against (left) two records "
            "being the same person. The top bar is the prior: the share of all pairs that match.",
            viz.match_weights_chart().chart_dict,
        ),
        (
            "m and u probabilities",
            "m: how often true matches fall in a level; u: how often non-matches do by chance. A level "
            "with m close to u carries little evidence.",
            viz.m_u_parameters_chart().chart_dict,
        ),
        (
            "Stability of the m estimates across training passes",
            "Each EM pass estimates m separately; estimates that disagree widely between passes "
            "deserve a look (the model uses their average).",
            viz.parameter_estimate_comparisons_chart().chart_dict,
        ),
        *(
            [
                (
                    "Match-weight histogram",
                    f"Scored pairs by match weight (pairs below {config.report.pair_floor_match_weight} "
                    f"were discarded when scored). Pairs at or above the threshold ({threshold}) are linked. "
                    "A clear valley between two humps means the threshold is not critical.",
                    viz.match_weights_histogram(predictions).chart_dict,
                )
            ]
            if metrics.pairs_above_floor  # Splink's histogram fails on no pairs (a few distinct records)
            else []
        ),
        (
            "Cluster sizes",
            "Number of people (clusters) by number of records. A long tail of very large clusters "
            "suggests chaining: different people joined through intermediate records.",
            _bar_chart(
                [
                    {"records per person": k, "people": v}
                    for k, v in metrics.clusters.size_distribution.items()
                ],
                "records per person",
                "people",
                "Cluster size distribution",
            ),
        ),
        (
            "Comparisons per blocking rule",
            "Pairs each blocking rule adds to those found by the rules above it. Only these pairs are "
            "scored at all.",
            _bar_chart(
                [{"rule": b.name, "comparisons": b.comparisons} for b in metrics.blocking],
                "rule",
                "comparisons",
                "New comparisons per blocking rule",
            ),
        ),
    ]
    waterfall = _waterfall_chart(
        backend, linker, predictions, list(metrics.records), config.report.waterfall_examples
    )
    if waterfall:
        sections.append(
            (
                "Worked examples (waterfall)",
                "How the match weight of a few example pairs, spread from weak to strong, adds up level "
                "by level. Token values are removed; use the arrows to step through the examples.",
                waterfall,
            )
        )
    atomic_write_bytes(path, _render(config, metrics, sections).encode("utf-8"))


def _summary(config: LinkageConfig, metrics: RunMetrics) -> str:
    c = metrics.clusters
    choice = metrics.threshold
    rows = [[agency, n] for agency, n in metrics.records.items()] + [["all agencies", metrics.records_total]]
    overview: list[list[Any]] = [
        ["prior: share of all pairs that match", f"{metrics.probability_two_random_records_match:.3g}"],
        ["pairs compared (after blocking)", metrics.comparisons_total],
        ["pairs linked (at or above threshold)", metrics.pairs_linked],
        ["threshold (match probability)", f"{choice.threshold_match_probability:.6g}"],
        ["threshold (match weight)", f"{choice.match_weight:g}"],
        ["how the threshold was chosen", choice.rule],
        ["expected precision at the threshold (model)", f"{choice.expected_precision:.4f}"],
        [
            "expected recall at the threshold (model, among pairs blocking found)",
            f"{choice.expected_recall:.4f}",
        ],
        [
            "blocking recall (estimate from the rules' overlap; per rule below)",
            f"{metrics.blocking_recall.estimate:.4f}" if metrics.blocking_recall else "n/a",
        ],
        *(
            [
                [
                    "expected precision of the people formed (model; chains included)",
                    f"{e.expected_precision:.4f}",
                ],
                [
                    "expected recall of the people formed (model; among pairs blocking found)",
                    f"{e.expected_recall:.4f}",
                ],
            ]
            if (e := metrics.expected_clusters)
            else []
        ),
        *(
            [
                [
                    f"the same, from the probabilities checked against {i.identifier} (precision, recall)",
                    f"{e.checked_precision:.4f}, {e.checked_recall:.4f}",
                ],
            ]
            if (e := metrics.expected_clusters)
            and (i := metrics.id_calibration)
            and i.identifier
            and e.checked_precision is not None
            and e.checked_recall is not None
            else []
        ),
        ["clustering method", config.clustering.method],
        ["people (clusters)", c.clusters],
        ["people with records in more than one agency", c.linked_across_agencies],
        ["single-record people", c.singletons],
        ["largest cluster (records)", c.largest[0].size if c.largest else 0],
    ]
    thresholds = [
        [t.threshold_match_probability, t.match_weight, t.pairs] for t in metrics.pairs_by_threshold
    ]
    largest = [
        [
            x.size,
            ", ".join(f"{k} {v}" for k, v in x.by_dataset.items()),
            x.edges,
            f"{x.density:.2f}",
            x.bridges,
            ", ".join(x.conflicts) or "none",
        ]
        for x in c.largest
    ]
    d = c.diagnostics
    chaining: list[list[Any]] = []
    if d:
        chaining = [
            ["merges refused (the two people would conflict)", d.merges_refused],
            *[[f"clusters holding conflicting {col}", n] for col, n in d.clusters_with_conflicts.items()],
            ["bridge pairs (removing one splits its cluster)", d.bridge_edges],
            ["clusters with at least one bridge", d.clusters_with_bridges],
        ]
    timings = [[k, f"{v:.1f}"] for k, v in metrics.timings_seconds.items()]
    return (
        "<h2>Inputs</h2>"
        + _table(["agency", "records"], rows)
        + f"<p class='note'>Key fingerprint {metrics.key_fingerprint}, token spec "
        f"v{metrics.token_spec_version}; every extract's signature and hash were verified before linking.</p>"
        + "<h2>Results</h2>"
        + _table(["measure", "value"], overview)
        + "<h3>Linked pairs at other thresholds</h3><p class='note'>How many scored pairs would be linked "
        "at each threshold. A count that changes little across thresholds means a robust result.</p>"
        + _table(["match probability", "match weight", "pairs"], thresholds)
        + "<h3>Chaining diagnostics</h3><p class='note'>Signs that different people were joined through "
        "intermediate records. A conflict is two records of one person with different PNC ids or dates of "
        "birth with nothing in common (possible only through the override, or with connected components). "
        "A bridge is a linked pair whose removal splits the person in two: a cluster held together by a "
        "single bridge deserves a look, more so when it is large and sparse (low density = few of its "
        "record pairs are linked directly). Counts only; no value is shown.</p>"
        + _table(["measure", "value"], chaining)
        + "<h3>Largest clusters</h3>"
        + _table(["records", "by agency", "linked pairs", "density", "bridges", "conflicts"], largest)
        + "<h3>The model derived from the data</h3><p class='note'>Comparisons, blocking rules and "
        "training passes come from the token families the extracts hold (model.yaml in the run folder "
        "lists them). What was left out, and why:</p>"
        + _table(["note"], [[n] for n in metrics.model_notes] or [["nothing: every family was usable"]])
        + "<h3>Blocking candidates under the budget</h3><p class='note'>"
        + html.escape(
            f"Budget {metrics.blocking_budget:,.0f} pairs; pairs each candidate rule generates on its own "
            "(counted by Splink before scoring). A capped rule makes no pair from a value shared by more "
            "records than its cap (derive.max_block_size)."
            if metrics.blocking_budget
            else "Blocking rules fixed by the config (no budget choice)."
        )
        + "</p>"
        + _table(
            ["rule", "cap", "pairs", "used"],
            [
                [b["name"], b.get("max_block_size") or "-", b["comparisons"], b["reason"] or "yes"]
                for b in metrics.blocking_candidates
            ],
        )
        + "<h3>What each blocking rule found</h3><p class='note'>Pairs each rule adds to those found by "
        "the rules above it, and how many of them are linked (at or above the threshold): a rule whose "
        "comparisons link almost nothing costs time for little recall (docs/scaling.md). Among the likely "
        "matches (p &ge; 0.5): the share of those the rule could find (both records hold its columns) that "
        "it misses (smoothed), and its near misses, those no other rule finds. In the blocking recall "
        "estimate each near miss counts the odds that its rule fails, at most one lost match.</p>"
        + _table(["rule", "comparisons", "linked", "misses", "found alone"], _blocking_rows(metrics))
        + _correlated(metrics)
        + _id_check(metrics)
        + "<h3>Timings (seconds)</h3>"
        + _table(["stage", "seconds"], timings)
    )


def _blocking_rows(metrics: RunMetrics) -> list[list[Any]]:
    """Per blocking rule: comparisons, linked pairs, and its misses among the likely matches (one entry
    for a crossed rule and its mirror image, shown on the first)."""
    misses = {m.name: m for m in metrics.blocking_recall.rules} if metrics.blocking_recall else {}
    rows: list[list[Any]] = []
    for b in metrics.blocking:
        linked = "n/a" if b.linked is None else b.linked
        m = misses.get(b.name)
        if m is None:
            mirrored = b.name.endswith(MIRRORED)
            rows.append(
                [b.name, b.comparisons, linked, *(["with the rule above"] * 2 if mirrored else ["n/a"] * 2)]
            )
            continue
        q = miss_rate(m)
        rate = f"not measured ({m.could_find} pairs)" if q is None else f"{q:.1%} of {m.could_find:,}"
        rows.append([b.name, b.comparisons, linked, rate, m.found_alone])
    return rows


CORRELATED_HEADER = [
    "group",
    "agreeing pairs",
    "measured with",
    "pairs measured",
    "disagreeing id / agreeing instrument",
    "id error rate / instrument m, u",
    "different people",
    "by chance",
    "correction (bits)",
    "note",
]


def _correlated(metrics: RunMetrics) -> str:
    """Evidence that comes together, measured against a checked id or with an instrument comparison
    (link/correlated.py)."""
    if not metrics.correlated:
        return ""
    note = (
        "The model adds each comparison's weight as if its agreements were independent. Different people "
        "sharing a home share a surname and an address (twins a date of birth too), so for each group "
        "below the run counted the pairs of records agreeing on all of its comparisons' first levels, "
        "and, among those whose two records both hold a valid checked id, the share with different ids "
        "beyond the id's own error rate: the pairs of different people agreeing on all of them. Without "
        "a checked id, an instrument comparison (the forename, which relatives rarely share) measures "
        "it instead: among the agreeing pairs holding it, the share agreeing on it falls short of its "
        "trained m by the share of different people. Where there are more than the separate chances "
        "predict, such a pair's weight is lowered by the correction (a comparison of its own in the "
        "model). It assumes pairs with the id (or the instrument) are like the others; with victim "
        "mentions, it covers pairs of the agencies' own subjects only (victim mentions carry no id)."
    )
    rows = [
        [
            f"{c.name}: {', '.join(c.comparisons)}",
            c.agreeing_pairs,
            "-"
            if c.identifier is None
            else f"{c.identifier} ({'instrument' if c.instrument else 'checked id'})",
            c.labelled_pairs,
            c.different_ids,
            f"{c.id_error_rate:.4f}" + (f", {c.instrument_u:.2g}" if c.instrument_u is not None else ""),
            "-" if c.different_people is None else f"{c.different_people:,.0f}",
            "-" if c.expected_by_chance is None else f"{c.expected_by_chance:.3g}",
            "not applied" if c.weight is None else f"{c.weight:+.2f}",
            c.note,
        ]
        for c in metrics.correlated
    ]
    return (
        "<h3>Evidence that comes together</h3><p class='note'>"
        + html.escape(note)
        + "</p>"
        + _table(CORRELATED_HEADER, rows)
    )


def _id_check(metrics: RunMetrics) -> str:
    """The model's probabilities against a checked id, band by band (link/recalibrate.py)."""
    c = metrics.id_calibration
    if c is None:
        return ""
    note = (
        "Pairs whose two records both hold a valid checked id are labelled by it (same id: one person). "
        "Band by band of the weight the other evidence gives them (w', the id's own weight taken off), the "
        "share of same-id pairs (corrected for the id's own error rate, made monotone) is set beside the "
        "model's probability; the measured one is used for every pair with that much other evidence "
        "when the threshold is chosen and the people's precision and recall are estimated. It assumes "
        f"pairs with the id are like the others. {c.note}."
    )
    rows = [
        [
            b.match_weight_from,
            b.labelled_pairs,
            b.same_id,
            f"{b.model_probability:.4f}",
            f"{b.measured_probability:.4f}",
        ]
        for b in c.bands
    ]
    return (
        "<h3>The model checked against a checked id</h3><p class='note'>"
        + html.escape(note)
        + "</p>"
        + (_table(["w' from", "labelled pairs", "same id", "model", "measured"], rows) if rows else "")
    )


def _curve_chart(metrics: RunMetrics) -> dict:
    """Expected precision and recall against match weight, with the chosen threshold as a rule."""
    values = [
        {"match weight": p.match_weight, "measure": name, "value": value}
        for p in metrics.threshold.curve
        for name, value in (
            ("expected precision", p.expected_precision),
            ("expected recall", p.expected_recall),
            *(
                [("checked precision", p.checked_precision), ("checked recall", p.checked_recall)]
                if metrics.id_calibration and metrics.id_calibration.identifier
                else []
            ),
        )
        if value is not None
    ]
    x = {"field": "match weight", "type": "quantitative"}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Model-estimated precision and recall by threshold",
        "width": 600,
        "height": 250,
        "layer": [
            {
                "data": {"values": values},
                "mark": {"type": "line", "point": True, "tooltip": True},
                "encoding": {
                    "x": x,
                    "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}},
                    "color": {"field": "measure", "type": "nominal"},
                },
            },
            {
                "data": {"values": [{"match weight": metrics.threshold.match_weight}]},
                "mark": {"type": "rule", "strokeDash": [4, 4]},
                "encoding": {"x": x},
            },
        ],
    }


def _render(config: LinkageConfig, metrics: RunMetrics, sections: list[tuple[str, str, dict]]) -> str:
    libraries = "".join(f"<script>{src}</script>\n" for src in load_chart_libraries().values())
    charts = []
    for i, (title, note, spec) in enumerate(sections):
        charts.append(
            f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>"
            f"<div class='chart' id='chart{i}'></div>"
            f"<script>vegaEmbed('#chart{i}', {json_for_html(spec, cls=_Encoder)}, {{actions: false}})"
            f".catch(e => {{ document.getElementById('chart{i}').textContent = 'chart error: ' + e; }});"
            "</script>"
        )
    title = f"Linkage quality report: run {html.escape(metrics.run_id)}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style>\n{libraries}</head><body><h1>{title}</h1>"
        f"<p class='note'>{html.escape(config.description)}</p>"
        + _summary(config, metrics)
        + "".join(charts)
        + "</body></html>\n"
    )


class _Encoder(json.JSONEncoder):
    """Chart data can hold Decimals (DuckDB histogram bins)."""

    def default(self, o: Any) -> Any:
        return float(o) if isinstance(o, Decimal) else super().default(o)
