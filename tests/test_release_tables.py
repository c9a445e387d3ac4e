"""The demo policy's tables (configs/release.yaml) built from the TRUE clusters, cell by cell against
counts computed here independently from the synthetic truth (the true cases of truth/journeys.parquet,
with the attributes each agency recorded for them: the CPS's DA flag and offence, the recorded sex,
ethnicity, age band and victim details), before disclosure control; then the published values.

The expected counts never use the release vocabulary's SQL: each breakdown and measure is restated
below in Python from its published definition (docs/release-guide.md), over the true cases.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from datetime import date
from pathlib import Path
from statistics import quantiles

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from fixtures_journeys import linked_run  # noqa: F401 (fixture)
from linkage.config import load_config
from linkage.config.release import ReleasePolicy
from linkage.errors import ConfigError
from linkage.release.build import build_release
from linkage.release.lookups import force_area_names
from linkage.release.tables import ALL, NOT_APPLICABLE, NOT_AVAILABLE, SYMBOLS, build_cube, open_journeys
from linkage.release.vocabulary import DIMENSIONS

POLICY = ROOT / "configs" / "release.yaml"
NOT_KNOWN = "Not known"
# Home Office outcome types in the groups of the outcomes bulletin (restated from the guide)
OUTCOME_GROUP = {1: "Charged/summonsed", 15: "Evidential difficulties - victim supports action (15)"}
OUTCOME_GROUP |= {16: "Evidential difficulties - victim does not support action (16)"}
OUTCOME_GROUP |= dict.fromkeys((2, 3, 4, 6, 7, 8, 22), "Out-of-court resolution or diversion")
OUTCOME_GROUP |= dict.fromkeys((14, 18), "Evidential difficulties - suspect not identified, or no suspect")
OUTCOME_GROUP |= dict.fromkeys(
    (5, 9, 10, 11, 12, 13, 17, 20, 21), "Prosecution prevented or not in the public interest"
)
# ONS offence groups of the codes the synthetic data uses (restated from release/data/offence_groups.csv)
OFFENCE_GROUP = {"005/01": "Violence with injury", "008/01": "Violence with injury"}
OFFENCE_GROUP |= dict.fromkeys(("105/01", "009/01", "104/01"), "Violence without injury")
OFFENCE_GROUP |= dict.fromkeys(("008/31", "008/71", "195/94"), "Stalking and harassment")
OFFENCE_GROUP |= {"019/07": "Sexual offences", "058/01": "Criminal damage and arson"}
OFFENCE_GROUP |= {"125/10": "Public order offences", "092/01": "Drug offences"}
OFFENCE_GROUP |= dict.fromkeys(("028/01", "037/02", "046/00"), "Theft offences")
OFFENCE_GROUP |= {"195/12": "Miscellaneous crimes against society"}
CONVICTED = ("Guilty plea", "Convicted")
# tables checked cell by cell (every table of the demo policy built from case-level truth)
CHECKED = (
    "funnel",
    "trend_quarterly",
    "funnel_by_force",
    "funnel_by_relationship",
    "funnel_by_age_band",
    "funnel_by_suspect_sex",
    "funnel_by_ethnicity",
    "funnel_by_victim_sex",
    "police_outcomes_by_force",
    "timeliness_by_force",
    "sentencing",
    "sentencing_by_offence",
    "protective_orders",
    "protective_orders_by_force",
    "prisoners",
    "prisoners_by_force",
    "prisoners_by_sex",
    "prisoners_by_age_band",
    "prisoners_by_ethnicity",
    "probation",
    "probation_by_force",
    "probation_by_sex",
    "probation_by_age_band",
    "probation_by_ethnicity",
    "probation_breaches",
    "police_perpetrated",
    "police_perpetrated_by_nation",
    "police_perpetrated_by_force",
)


def _fy(d: date) -> int:
    return d.year - (d.month < 4)


def _quarter(d: date | None) -> str:
    if d is None:
        return NOT_KNOWN
    return f"{_fy(d)}/{(_fy(d) + 1) % 100:02d} Q{(d.month - 4) % 12 // 3 + 1}"


def _year(d: date | None) -> str:
    return NOT_KNOWN if d is None else f"{_fy(d)}/{(_fy(d) + 1) % 100:02d}"


def _days(a: date | None, b: date | None) -> int | None:
    return None if a is None or b is None else (b - a).days


@pytest.fixture(scope="module")
def truth(linked_run) -> list[dict]:  # noqa: F811
    return truth_cases(linked_run.raw / "truth", linked_run.extracts)


def truth_cases(t: Path, extracts: Path) -> list[dict]:
    """One dict per true case: its true attributes, the breakdown values and the stage facts."""
    con = duckdb.connect()

    def from_extract(agency: str, col: str) -> dict:
        """Each true case's value of an attribute its agency recorded (extract row -> truth case)."""
        return dict(
            con.execute(f"""
                SELECT r.case_id, any_value(e.{col})
                FROM read_parquet('{t / "records.parquet"}') r
                JOIN read_parquet('{extracts / agency}.parquet') e USING (source_row)
                WHERE r.source_dataset = '{agency}' AND r.role = 'subject' AND e.role = 'subject'
                GROUP BY 1""").fetchall()
        )

    # recorded by the agencies, not in truth/journeys: the CPS's DA flag (the journey's flag is "the
    # police or the CPS flagged it"), the offence the CPS and the court prosecuted (the CPS may
    # recharge), and the ethnicity each record states ("NS" on some police records)
    cps_flag = from_extract("prosecution", "da_flag")
    offence = {**from_extract("prosecution", "offence_code"), **from_extract("court", "offence_code")}
    police_eth, prison_eth = from_extract("police", "ethnicity"), from_extract("prison", "ethnicity")
    probation_eth = from_extract("probation", "ethnicity")
    ethnicity = {
        k: police_eth.get(k) or prison_eth.get(k) or probation_eth.get(k)
        for k in police_eth.keys() | prison_eth.keys() | probation_eth.keys()
    }
    relationship = from_extract("police", "victim_relationship")
    victim_sex = from_extract("police", "victim_sex")

    def first_stage(col: str) -> dict:
        """The value of the first stage (police, CPS, court, prison) that records it."""
        found = [from_extract(a, col) for a in ("police", "prosecution", "court", "prison", "probation")]
        return {k: next((f[k] for f in found if f.get(k)), None) for k in set().union(*found)}

    # the suspect's sex as recorded (some records differ from the person's) and the age band each
    # agency derived (no date of birth passes), from the first stage that records them
    suspect_sex, age_band = first_stage("sex"), first_stage("age_band")
    cur = con.execute(f"SELECT * FROM read_parquet('{t / 'journeys.parquet'}') ORDER BY case_id")
    names = [d[0] for d in cur.description]
    cases = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    da_crimes: dict[int, list[tuple[date, int]]] = {}
    for c in cases:
        if c["da_flag"]:
            da_crimes.setdefault(c["person_id"], []).append((c["recorded_date"], c["case_id"]))
    out = []
    for c in cases:
        da = bool(c["da_flag"]) or bool(cps_flag.get(c["case_id"]))
        reception = c["prison_reception_date"]
        history = reception is not None and any(
            d < reception and cid != c["case_id"] for d, cid in da_crimes.get(c["person_id"], [])
        )
        # supervision in the community: a DA history is an earlier DA crime before the supervision started
        supervised = c["probation_start_date"]
        probation_history = supervised is not None and any(
            d < supervised and cid != c["case_id"] for d, cid in da_crimes.get(c["person_id"], [])
        )
        force = c["force_area"] or ""
        nation = "England" if force.startswith("E23") else "Wales" if force.startswith("W15") else NOT_KNOWN
        sentenced = c["sentence_date"] is not None
        charged = c["charging_decision"] == "Charge"
        convicted = c["verdict"] in CONVICTED
        out.append(
            {
                "case_id": c["case_id"],
                "dims": {
                    "force_area": c["force_area"] or NOT_KNOWN,
                    "da_flag": "DA" if da else "Not DA",
                    "recorded_quarter": _quarter(c["recorded_date"]),
                    "police_outcome_group": "Open (no outcome yet)"
                    if c["police_outcome"] is None
                    else OUTCOME_GROUP.get(c["police_outcome"], "Other"),
                    "sentence_type": c["sentence_type"] or NOT_KNOWN,
                    "offence_group": OFFENCE_GROUP.get(
                        offence.get(c["case_id"]) or c["offence_code"], "Other offences"
                    ),
                    "order_year": _year(c["sentence_date"] or c["verdict_date"]),
                    "da_history": "Yes" if history else "No",
                    "da_prisoner": "DA index offence"
                    if da
                    else ("DA history only" if history else "Neither"),
                    "suspect_sex": {"M": "Male", "F": "Female", "X": "Other"}.get(
                        suspect_sex.get(c["case_id"]), NOT_KNOWN
                    ),
                    "ethnicity": ethnicity.get(c["case_id"]) or NOT_KNOWN,
                    "age_band": age_band.get(c["case_id"]) or NOT_KNOWN,
                    "victim_relationship": relationship.get(c["case_id"]) or NOT_KNOWN,
                    "victim_sex": {"M": "Male", "F": "Female"}.get(victim_sex.get(c["case_id"]), NOT_KNOWN),
                    "probation_type": c["probation_type"] or NOT_KNOWN,
                    "da_probation": "DA index offence"
                    if da
                    else ("DA history only" if probation_history else "Neither"),
                    "probation_termination": c["probation_termination"] or "Ongoing at the data end",
                    "nation": nation,
                    "police_employee": "Yes" if c["suspect_police_employee"] else "No",
                },
                "facts": {
                    "police_record": True,
                    "recorded": True,
                    "police_charge_summons": c["police_outcome"] == 1,
                    "cps_referral": c["cps_receipt_date"] is not None,
                    "cps_charged": charged,
                    "prosecuted": c["first_hearing_date"] is not None,
                    "convicted": convicted,
                    "sentenced": sentenced,
                    "custody": sentenced and c["sentence_type"] == "Immediate custody",
                    "orders_made": bool(c["restraining_order"]),
                    "orders_breached": bool(c["restraining_order"]) and bool(c["order_breached"]),
                    "prison_receptions": reception is not None,
                    "probation_starts": supervised is not None,
                    "probation_breaches": c["probation_breach_date"] is not None,
                },
                "days": {
                    "days_to_outcome": _days(c["recorded_date"], c["police_outcome_date"]),
                    "days_offence_to_report": _days(c["offence_date"], c["recorded_date"]),
                    "days_to_charge": _days(c["recorded_date"], c["decision_date"]) if charged else None,
                    "days_charge_to_hearing": _days(c["decision_date"], c["first_hearing_date"])
                    if charged
                    else None,
                    "days_hearing_to_verdict": _days(c["first_hearing_date"], c["verdict_date"]),
                    "days_verdict_to_sentence": _days(c["verdict_date"], c["sentence_date"])
                    if convicted
                    else None,
                    "days_offence_to_verdict": _days(c["offence_date"], c["verdict_date"]),
                    "custody_days": c["sentence_length_days"]
                    if c["sentence_type"] == "Immediate custody" and sentenced
                    else None,
                },
            }
        )
    return out


# population conditions of the demo policy, restated over the truth
WHERE = {
    ("police_record", "Yes"): lambda c: c["facts"]["police_record"],
    ("da_flag", "DA"): lambda c: c["dims"]["da_flag"] == "DA",
    ("sentenced", "Yes"): lambda c: c["facts"]["sentenced"],
    ("order_made", "Yes"): lambda c: c["facts"]["orders_made"],
    ("prison_reception", "Yes"): lambda c: c["facts"]["prison_receptions"],
    ("probation_case", "Yes"): lambda c: c["facts"]["probation_starts"],
    ("police_employee", "Yes"): lambda c: c["dims"]["police_employee"] == "Yes",
}


def expected(truth: list[dict], spec) -> tuple[dict, dict]:
    """Counts per (labels, measure) and per-cell values of each statistic, from the truth."""
    counts: Counter = Counter()
    values: dict = {}
    for c in truth:
        if not all(WHERE[(d, v)](c) for d, v in spec.where.items()):
            continue
        labels = [c["dims"][d] for d in spec.by]
        for combo in itertools.product(*[(v, ALL) for v in labels]):
            for m in spec.measures:
                if m == "journeys" or c["facts"].get(m):
                    counts[(combo, m)] += 1
            for s in spec.statistics:
                if c["days"][s] is not None:
                    values.setdefault((combo, s), []).append(c["days"][s])
    return counts, values


@pytest.fixture(scope="module")
def cube(linked_run):  # noqa: F811
    con, _ = open_journeys(linked_run.run / "journeys.parquet")
    return build_cube(con, load_config(POLICY, ReleasePolicy))


@pytest.mark.parametrize("name", CHECKED)
def test_every_cell_before_disclosure_control_equals_the_truth(cube, truth, name):
    table = next(t for t in cube.tables if t.spec.name == name)
    counts, values = expected(truth, table.spec)
    checked = 0
    for row in table.rows:
        combo = tuple(row.labels[d] for d in table.spec.by)
        for m, key in row.keys.items():
            assert cube.counts[key].n == counts[(combo, m)], (name, combo, m)
            checked += 1
            for s in table.spec.statistics:
                cell, true = cube.stats[(key, s)], values.get((combo, s), [])
                assert cell.n == len(true), (name, combo, s)
                if len(true) >= 2:  # DuckDB quantile_cont = linear interpolation ("inclusive")
                    assert [round(q, 6) for q in cell.quantiles] == [
                        round(q, 6) for q in quantiles(true, n=4, method="inclusive")
                    ], (name, combo, s)
    # every true combination with a count appears in the table (nothing dropped)
    shown = {tuple(r.labels[d] for d in table.spec.by) for r in table.rows}
    assert {combo for combo, _ in counts} <= shown
    assert checked >= len(table.rows)


@pytest.fixture(scope="module")
def bundle(linked_run, tmp_path_factory) -> Path:  # noqa: F811
    """The demo policy released from the perfect-linkage run."""
    out = tmp_path_factory.mktemp("demo-policy") / "r"
    with pytest.MonkeyPatch.context() as mp:  # a module fixture runs before the per-test run log is set
        mp.setenv("LINKAGE_LOG", str(out.with_name("log.jsonl")))
        build_release(linked_run.run, POLICY, out)
    return out


@pytest.fixture(scope="module")
def published(bundle) -> dict[str, list[dict[str, str]]]:
    tables = {}
    for p in sorted((bundle / "tables").glob("*.csv")):
        with open(p, newline="", encoding="utf-8") as fh:
            tables[p.stem] = list(csv.DictReader(fh))
    return tables


@pytest.mark.parametrize("name", CHECKED)
def test_published_cells_are_the_truth_within_the_noise_or_a_symbol(published, truth, name):
    spec = next(t for t in load_config(POLICY, ReleasePolicy).tables if t.name == name)
    counts, _ = expected(truth, spec)
    seen = 0
    for row in published[name]:
        combo = tuple(row[d] for d in spec.by)
        for m in spec.measures:
            v = row[m]
            if v in SYMBOLS:
                continue
            true = counts[(combo, m)]
            assert int(v) % 5 == 0 and int(v) >= 10 and abs(int(v) - true) <= 4, (name, combo, m, v, true)
            seen += 1
    # tiny tables may be all [c]
    assert seen or name.startswith(("protective", "prisoners_by", "probation_", "police_perpetrated_by")), (
        name
    )


def test_not_available_and_not_applicable_come_from_the_definitions(published):
    orders = published["protective_orders_by_force"]
    for m in ("dvpn_issued", "dvpo_made", "dvpo_breached", "dapo_made", "dapo_breached"):
        assert {r[m] for r in orders} == {NOT_AVAILABLE}
    assert not {r["orders_made"] for r in orders} & {NOT_AVAILABLE, NOT_APPLICABLE}
    for r in published["sentencing"] + published["sentencing_by_offence"]:
        custody = r["sentence_type"] in ("Immediate custody", ALL)
        cells = {r[f"custody_days_{q}"] for q in ("q1", "median", "q3", "mean")}
        assert (NOT_APPLICABLE in cells) != custody and (cells == {NOT_APPLICABLE} or custody), r
    for r in published["police_outcomes_by_force"]:
        open_ = r["police_outcome_group"] == "Open (no outcome yet)"
        assert (r["days_to_outcome_median"] == NOT_APPLICABLE) == open_, r
    # [z] never stands for a zero count, and counts are never [z]
    assert all(r["recorded"] != NOT_APPLICABLE for t in ("funnel", "funnel_by_force") for r in published[t])


def test_force_areas_carry_their_names_from_the_lookup(published):
    names = force_area_names()
    assert len(names) == 43 and all(c[:3] in ("E23", "W15") for c in names)
    rows = published["funnel_by_force"]
    assert list(rows[0])[:2] == ["force_area", "force_area_name"]
    for r in rows:
        assert r["force_area_name"] == names.get(r["force_area"], ""), r
    assert any(r["force_area_name"] for r in rows)


def test_the_lookup_files_cite_their_source():
    data = Path(__file__).parents[1] / "src" / "linkage" / "release" / "data"
    head = (data / "force_areas.csv").read_text().split("\ncode,name\n")[0]
    assert "Office for National Statistics" in head and "Police Force Areas (December 2023)" in head
    assert "Crime in England and Wales" in (data / "offence_groups.csv").read_text()


def test_report_puts_domestic_abuse_first_with_names_symbols_and_labelled_charts(bundle):
    html = (bundle / "report.html").read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([a-z]+)">', html)
    assert sections[:3] == ["funnel", "trend", "forces"] and sections[-2:] == ["gaps", "about"]
    assert html.index("<nav") < html.index('<section id="funnel"')  # contents before the first section
    assert "Domestic abuse" in html and "Other crimes" in html  # DA and non-DA side by side
    assert "Metropolitan Police (E23000001)" in html  # names beside codes
    for symbol in ("[c]", "[z]", "[x]"):
        assert symbol in html
    svgs = re.findall(r"<svg [^>]*>.*?</svg>", html, flags=re.S)
    assert len(svgs) >= 5
    for svg in svgs:
        ids = re.search(r'aria-labelledby="([^"]+)"', svg).group(1).split()
        assert 'role="img"' in svg and all(f'id="{i}"' in svg for i in ids)
        assert re.search(r"<title id=[^>]+>[^<]+</title><desc id=[^>]+>[^<]+</desc>", svg)
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert headers and not [h for h in headers if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)]
    assert "<script" not in html and "http" not in html
    assert '<meta name="viewport"' in html and "@media print" in html


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)))
def test_quarter_and_year_of_a_date_match_the_financial_calendar(d):
    con = duckdb.connect()
    con.execute("CREATE TABLE j AS SELECT ?::DATE AS recorded_date", [d])
    quarter, year = con.execute(
        f"SELECT {DIMENSIONS['recorded_quarter'].sql}, {DIMENSIONS['recorded_year'].sql} FROM j"
    ).fetchall()[0]
    assert (quarter, year) == (_quarter(d), _year(d))
    assert DIMENSIONS["recorded_quarter"].allows(quarter)


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("force_areas.csv", ["E23000001", "Met'; DROP TABLE x; --"]),
        ("force_areas.csv", ["X1", "Nowhere"]),
        ("offence_groups.csv", ["105/01' OR '1'='1", "Violence without injury"]),
        ("offence_groups.csv", ["105/01", "Made-up group"]),
        ("offence_groups.csv", ["105/01"]),
    ],
)
def test_a_tampered_lookup_row_is_refused_before_it_reaches_sql(monkeypatch, name, row):
    from linkage.release import lookups

    monkeypatch.setattr(lookups, "_rows", lambda _name, _header: [row])
    load = lookups.force_area_names if name == "force_areas.csv" else lookups.offence_groups
    load.cache_clear()
    try:
        with pytest.raises(ConfigError, match=f"{name}: data row 2"):
            load()
    finally:
        load.cache_clear()


def test_the_new_tables_count_something_in_every_population(cube, truth):
    """The probation and police-perpetrated tables are not vacuous: their populations exist in the truth
    and in the cube (a zero everywhere would pass the cell-by-cell check trivially)."""
    tables = {t.spec.name: t for t in cube.tables}

    def total(name: str, measure: str, **labels: str) -> int:
        t = tables[name]
        row = next(r for r in t.rows if all(r.labels[d] == labels.get(d, ALL) for d in t.spec.by))
        return cube.counts[row.keys[measure]].n

    groups = Counter(c["dims"]["da_probation"] for c in truth if c["facts"]["probation_starts"])
    assert groups["DA index offence"] and groups["DA history only"] and groups["Neither"]
    for group, n in groups.items():
        assert total("probation", "probation_starts", da_probation=group) == n
    types = Counter(c["dims"]["probation_type"] for c in truth if c["facts"]["probation_starts"])
    assert set(types) == {"Community order", "Suspended sentence order", "Licence"}
    assert total("probation", "probation_breaches") > 0
    employee = [c for c in truth if c["dims"]["police_employee"] == "Yes" and c["dims"]["da_flag"] == "DA"]
    assert employee and total("police_perpetrated", "recorded", police_employee="Yes") == len(employee)


def test_impossible_probation_combinations_are_not_applicable_not_withheld(published, truth):
    """A recall ends only a licence; a licence is never revoked for a breach nor ended early: those
    cells are [z] by the vocabulary's definition (and zero in the truth), every other cell never is."""
    spec = next(t for t in load_config(POLICY, ReleasePolicy).tables if t.name == "probation_breaches")
    counts, _ = expected(truth, spec)
    impossible = {
        ("Community order", "Recalled to custody"),
        ("Suspended sentence order", "Recalled to custody"),
        ("Licence", "Revoked - breach"),
        ("Licence", "Terminated early - good progress"),
    }
    rows = published["probation_breaches"]
    # a breakdown's values are those found in its population, so some combinations may be absent
    assert {(r["probation_type"], r["probation_termination"]) for r in rows} & impossible
    for r in rows:
        combo = (r["probation_type"], r["probation_termination"])
        for m in spec.measures:
            assert (r[m] == NOT_APPLICABLE) == (combo in impossible), (combo, m, r[m])
            if combo in impossible:
                assert counts[(combo, m)] == 0
