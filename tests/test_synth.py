"""Tests of the synthetic generator: determinism, file contract, noise rates, attrition, hard cases."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.config import load_config
from linkage.config.agency import AgencyConfig, Attribute, ForenamesField
from linkage.synth import SynthParams, generate, generate_from
from linkage.synth.identifiers import PNC_CHECK, is_valid_postcode, pnc_check
from linkage.synth.noise import FACT_KINDS, NOISE_KINDS, ocr, postcode_typo, typo
from linkage.synth.people import HARD_CASE_TAGS

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "agencies"
AGENCIES = ("police", "prosecution", "court", "prison", "probation")
PNC_RE = re.compile(r"^(\d{2}|\d{4})/(\d{1,7})([A-Z])$")
PERSONS, SEED, BAD = 3000, 7, 9


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(PERSONS, SEED, out, bad_rows=BAD)
    return out


def pnc_ok(value: str) -> bool:
    m = PNC_RE.match(value)
    if not m or len(m.group(2)) > 7:
        return False
    return pnc_check(int(m.group(1)[-2:]), int(m.group(2))) == m.group(3)


def date_ok(v: str, formats: list[str]) -> bool:
    for f in formats:
        try:
            dt.datetime.strptime(v, f)
            return True
        except ValueError:
            pass
    return False


def attr_ok(a: Attribute, v: str) -> bool:
    """Whether a present value passes the attribute's declared type."""
    if a.type == "date":
        return date_ok(v, a.formats)
    if a.type == "code":
        return bool(re.match(a.pattern, v.upper()))
    if a.type == "category":
        return v in (a.map or {}) or v in (a.values or [])
    if a.type == "integer":
        return v.isdigit() and (a.min is None or int(v) >= a.min) and (a.max is None or int(v) <= a.max)
    return v in a.true_values + a.false_values


def check_file(path: Path, cfg: AgencyConfig) -> dict[int, list[str]]:
    """Validate every data row against the agency config: {source_row: [problems]} for bad rows."""
    missing = {v.upper() for v in cfg.missing_values}
    problems: dict[int, list[str]] = {}
    assert cfg.input.format == "csv"
    with path.open(encoding=cfg.input.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=cfg.input.delimiter, quotechar=cfg.input.quotechar)
        header = next(reader)
        for col in cfg.source_columns():
            assert col in header, f"{path.name} lacks column {col}"
        ids = cfg.identifiers
        for row_no, row in enumerate(reader, start=1):
            bad: list[str] = []
            if len(row) != len(header):
                problems[row_no] = ["column count"]
                continue
            rec = {h: v.strip() for h, v in zip(header, row, strict=True)}

            def present(col: str, rec: dict[str, str] = rec) -> str | None:
                v = rec[col]
                return None if v.upper() in missing else v

            dob = ids.date_of_birth
            if dob and (v := present(dob.column)) and not date_ok(v, dob.formats):
                bad.append("dob")
            sexes = {k.upper() for k in ids.sex.map} if ids.sex else set()
            if ids.sex and (v := present(ids.sex.column)) and v.upper() not in sexes:
                bad.append("sex")
            for spec in ids.ids:
                valid = pnc_ok if spec.type == "pnc" else lambda v, p=spec.pattern: bool(re.match(p, v))
                if (v := present(spec.column)) and not valid(v):
                    bad.append(spec.type.value)
            if ids.postcode and (v := present(ids.postcode.column)) and not is_valid_postcode(v):
                bad.append("postcode")
            if ids.full_name and not present(ids.full_name.column):
                bad.append("full_name")
            if ids.surname and not present(ids.surname.column):
                bad.append("surname")
            if isinstance(ids.forenames, ForenamesField) and not present(ids.forenames.columns[0]):
                bad.append("forename missing")
            if not present(ids.record_id.column):
                bad.append("record id")
            for a in cfg.attributes:
                v = present(a.column)
                if v is None:
                    continue
                if not attr_ok(a, v):
                    bad.append(a.column)
            if bad:
                problems[row_no] = bad
    return problems


def test_files_satisfy_the_demo_configs_except_injected_bad_rows(synth: Path) -> None:
    bad = pq.read_table(synth / "truth" / "bad_rows.parquet").to_pylist()
    for agency in AGENCIES:
        cfg = load_config(CONFIGS / f"{agency}.yaml", AgencyConfig)
        problems = check_file(synth / f"{agency}.csv", cfg)
        injected = {b["source_row"] for b in bad if b["source_dataset"] == agency}
        assert len(injected) == BAD
        assert set(problems) == injected, agency


def test_record_ids_unique_and_truth_covers_every_row(synth: Path) -> None:
    records = pq.read_table(synth / "truth" / "records.parquet").to_pylist()
    bad = pq.read_table(synth / "truth" / "bad_rows.parquet").to_pylist()
    for agency in AGENCIES:
        cfg = load_config(CONFIGS / f"{agency}.yaml", AgencyConfig)
        with (synth / f"{agency}.csv").open(encoding=cfg.input.encoding, newline="") as fh:
            rows = list(csv.reader(fh, delimiter=cfg.input.delimiter))[1:]
        ids = [r[0] for r in rows]
        assert len(set(ids)) == len(ids)
        rows_truth = sorted(
            [r["source_row"] for r in records if r["source_dataset"] == agency and r["role"] == "subject"]
            + [b["source_row"] for b in bad if b["source_dataset"] == agency]
        )
        assert rows_truth == list(range(1, len(rows) + 1))


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(400, 11, a, bad_rows=3)
    generate(400, 11, b, bad_rows=3)
    generate(400, 12, c, bad_rows=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) >= 9
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "police.csv").read_bytes() != (c / "police.csv").read_bytes()


def test_chunking_keeps_memory_bounded_and_rows_consistent(tmp_path: Path) -> None:
    s = generate_from(SynthParams.preset(900, chunk_persons=250, seed=3), tmp_path)
    persons = pq.read_table(tmp_path / "truth" / "persons.parquet")
    assert persons.num_rows == 900 and len(set(persons.column("person_id").to_pylist())) == 900
    assert s.records["police"] == pq.read_table(tmp_path / "truth" / "journeys.parquet").num_rows


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    from linkage.errors import LinkageError

    generate(50, 1, tmp_path)
    with pytest.raises(LinkageError):
        generate(50, 1, tmp_path)
    generate(50, 1, tmp_path, overwrite=True)


def test_noise_rates_match_parameters(synth: Path) -> None:
    meta = json.loads((synth / "truth" / "synth.json").read_text())
    rates = meta["params"]["noise"]
    tags = Counter()
    for s in pq.read_table(synth / "truth" / "records.parquet").column("noise").to_pylist():
        tags.update(s.split(",") if s else [])
    assert set(tags) <= set(NOISE_KINDS) | set(FACT_KINDS)
    for kind in NOISE_KINDS:
        counts = meta["noise"][kind]
        n, k, p = counts["eligible"], counts["applied"], rates[kind]
        assert tags[kind] == k, kind  # the truth tags every corruption that was applied
        if kind == "agency_variant":  # persistent per (person, agency): clustered, so looser
            assert n > 1000 and abs(k / n - p) < 0.03
            continue
        assert n > 30, kind
        tol = 4 * math.sqrt(p * (1 - p) / n) + 0.002
        assert abs(k / n - p) <= tol, (kind, k / n, p)


def test_error_rate_presets_order(tmp_path: Path) -> None:
    totals = {}
    for level in ("low", "medium", "high"):
        s = generate(600, 5, tmp_path / level, error_rate=level)
        totals[level] = sum(v["applied"] for v in s.noise.values())
    assert totals["low"] < totals["medium"] < totals["high"]


def test_identifier_formats(synth: Path) -> None:
    with (synth / "prison.csv").open(encoding="utf-8") as fh:
        prison = list(csv.DictReader(fh))
    short = [r["pnc_number"] for r in prison if re.match(r"^\d{2}/", r["pnc_number"])]
    assert short and all(not re.match(r"^\d{2}/0", s) for s in short)  # serial unpadded
    assert "urn" not in prison[0] and "case_urn" not in prison[0]
    raw = (synth / "court.csv").read_bytes()
    text = raw.decode("cp1252")
    assert re.search(r"[À-ÿ]", text), "court file should carry accented names"
    assert "\r\n" in text
    with (synth / "police.csv").open(encoding="utf-8") as fh:
        police = list(csv.DictReader(fh))
    assert any('"' in r["officer_notes"] and "," in r["officer_notes"] for r in police)
    forces = Counter(r["force_area_code"] for r in police)
    assert forces.most_common(1)[0][0] == "E23000001"  # the Met is the largest force
    assert 0.08 < forces["E23000001"] / len(police) < 0.22


def test_noise_primitives() -> None:
    assert pnc_check(1, 12345) == PNC_CHECK[int("010012345") % 23]
    for h in range(200):
        t = typo("Katherine", h)
        assert t != "Katherine" and abs(len(t) - 9) <= 1
        assert is_valid_postcode(postcode_typo("SW1A 1AA", h)) and postcode_typo("SW1A 1AA", h) != "SW1A 1AA"
    assert ocr("Martin", 0) in {"Maitin", "Mar tin", "Marlin"} or ocr("Martin", 0) != "Martin"
    assert ocr("Bob", 0) is None


def _days(a: object, b: object) -> int:
    return (b - a).days  # type: ignore[operator]


def test_attrition_matches_published_ratios(tmp_path: Path) -> None:
    params = SynthParams.preset(30000, seed=9)
    generate_from(params, tmp_path)
    j = pq.read_table(tmp_path / "truth" / "journeys.parquet").to_pylist()
    a = params.attrition
    da = [r for r in j if r["da_flag"]]
    assert abs(len(da) / len(j) - 0.3) < 0.03
    # Cases old enough for every stage to have happened by the extract date.
    old = [r for r in da if r["recorded_date"] < dt.date(2020, 1, 1)]
    referred = [r for r in old if r["cps_receipt_date"]]
    assert abs(len(referred) / len(old) - a.cps_referral_da) < 0.012
    charged = [r for r in referred if r["charging_decision"] == "Charge"]
    assert abs(len(charged) / len(referred) - a.charge_rate) < 0.05
    tried = [r for r in charged if r["verdict"]]
    convicted = [r for r in tried if r["verdict"] in ("Guilty plea", "Convicted")]
    assert abs(len(convicted) / len(tried) - a.conviction_rate) < 0.06
    outcomes = [r["police_outcome"] for r in old if r["police_outcome"]]
    assert abs(outcomes.count(16) / len(outcomes) - 0.54) < 0.03
    custody = [r for r in j if r["sentence_type"] == "Immediate custody"]
    assert custody and all(r["prison_reception_date"] for r in custody)
    crown = sorted(
        _days(r["offence_date"], r["verdict_date"])
        for r in j
        if r["verdict_date"] and r["court_code"].startswith("T") and r["verdict"] == "Convicted"
    )
    assert 250 < crown[len(crown) // 2] < 520  # offence to Crown Court completion ~378 days
    breaches = [r for r in j if r["breach_of_case_id"] is not None]
    assert breaches and all(r["offence_code"] == "195/12" for r in breaches)


def test_hard_cases_are_tagged_and_hard(synth: Path) -> None:
    persons = pq.read_table(synth / "truth" / "persons.parquet").to_pylist()
    tags = Counter(p["hard_case"] for p in persons if p["hard_case"])
    assert set(tags) == set(HARD_CASE_TAGS)
    groups: dict[int, list[dict]] = {}
    for p in persons:
        if p["hard_case"] in ("twin", "jr_sr"):
            groups.setdefault(p["hard_case_group"], []).append(p)
    for members in groups.values():
        assert len(members) == 2
        if members[0]["hard_case"] == "twin":
            assert members[0]["date_of_birth"] == members[1]["date_of_birth"]
        else:
            assert members[0]["date_of_birth"] != members[1]["date_of_birth"]
    records = pq.read_table(synth / "truth" / "records.parquet").to_pylist()
    tagged = {p["person_id"]: p["hard_case"] for p in persons if p["hard_case"]}
    assert all(r["hard_case"] == tagged.get(r["person_id"]) for r in records)


def test_no_hard_cases_when_disabled(tmp_path: Path) -> None:
    s = generate(500, 2, tmp_path, hard_cases=False)
    assert s.hard_case_persons == {}


def test_cli_synth_json_and_usage_errors(tmp_path: Path) -> None:
    from linkage.synth.command import synth_cmd

    runner = CliRunner()
    res = runner.invoke(
        synth_cmd,
        [
            "--persons",
            "200",
            "--seed",
            "4",
            "--out",
            str(tmp_path / "o"),
            "--json",
            "--quiet",
            "--bad-rows",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["records"]["police"] > 200 and summary["bad_rows"]["police"] == 2
    assert runner.invoke(synth_cmd, ["--persons", "0", "--out", str(tmp_path / "x")]).exit_code == 2
    assert (
        runner.invoke(
            synth_cmd, ["--persons", "5", "--out", str(tmp_path / "x"), "--error-rate", "huge"]
        ).exit_code
        == 2
    )
    assert (
        runner.invoke(
            synth_cmd, ["--persons", "5", "--out", str(tmp_path / "x"), "--da-share", "1.5"]
        ).exit_code
        == 2
    )


def test_tiny_run_writes_header_only_files(tmp_path: Path) -> None:
    s = generate(3, 0, tmp_path, bad_rows=2)
    assert s.records["prison"] == 0 and s.bad_rows["prison"] == 0  # a bad row copies a good one
    assert (tmp_path / "prison.csv").read_text().count("\n") == 1


@pytest.fixture(scope="module")
def probation(synth: Path) -> tuple[list[dict], dict[int, dict]]:
    """The probation CSV rows with their true case, and every true case by id."""
    records = pq.read_table(synth / "truth" / "records.parquet").to_pylist()
    case_of = {r["source_row"]: r["case_id"] for r in records if r["source_dataset"] == "probation"}
    with (synth / "probation.csv").open(encoding="utf-8", newline="") as fh:
        rows = [
            {**r, "case_id": case_of.get(i)}
            for i, r in enumerate(csv.DictReader(fh, delimiter="\t"), start=1)
        ]
    cases = {c["case_id"]: c for c in pq.read_table(synth / "truth" / "journeys.parquet").to_pylist()}
    return [r for r in rows if r["case_id"] is not None], cases


def _dmy(v: str) -> dt.date | None:
    return dt.datetime.strptime(v, "%d.%m.%Y").date() if v else None


def test_probation_rows_are_the_true_supervisions(probation) -> None:
    """Every probation row is the supervision of its true case, field by field; truth reconciles."""
    rows, cases = probation
    with_supervision = {k for k, c in cases.items() if c["probation_type"]}
    assert sorted(r["case_id"] for r in rows) == sorted(with_supervision)  # one row per supervision
    for r in rows:
        c = cases[r["case_id"]]
        assert r["order_type"] == c["probation_type"]
        assert _dmy(r["start_date"]) == c["probation_start_date"]
        assert _dmy(r["expected_end_date"]) == c["probation_expected_end_date"]
        assert _dmy(r["breach_date"]) == c["probation_breach_date"]
        assert _dmy(r["termination_date"]) == c["probation_end_date"]
        assert (r["termination_reason"] or None) == c["probation_termination"]
        assert r["requirement"] == c["probation_requirement"]
    # the CRN is the person's: one CRN per person, different persons different CRNs
    crn = {}
    for r in rows:
        crn.setdefault(cases[r["case_id"]]["person_id"], set()).add(r["crn"])
    assert all(len(v) == 1 for v in crn.values())
    assert len({next(iter(v)) for v in crn.values()}) == len(crn)


def test_probation_events_are_ordered_and_censored(probation) -> None:
    rows, cases = probation
    end = SynthParams(persons=1).extract_date
    for r in rows:
        c = cases[r["case_id"]]
        start, expected, breach, stop = (
            c["probation_start_date"],
            c["probation_expected_end_date"],
            c["probation_breach_date"],
            c["probation_end_date"],
        )
        assert start <= end and start < expected
        assert breach is None or start < breach <= min(end, expected)
        assert stop is None or (start < stop <= end and (breach is None or breach < stop))
        assert (stop is None) == (c["probation_termination"] is None)
        if c["probation_termination"] in ("Revoked - breach", "Recalled to custody"):
            assert breach is not None
        if c["probation_termination"] == "Completed":
            assert stop == expected


def test_every_sentence_that_should_produce_supervision_does(probation) -> None:
    """Community orders and suspended sentences start supervision within 14 days of sentence; every
    release from custody starts a licence that day; nothing else is supervised."""
    _, cases = probation
    end = SynthParams(persons=1).extract_date
    follows = {"Community order": "Community order", "Suspended sentence": "Suspended sentence order"}
    counts: Counter[str] = Counter()
    for c in cases.values():
        kind = c["probation_type"]
        if c["prison_release_date"] is not None:
            assert kind == "Licence" and c["probation_start_date"] == c["prison_release_date"]
        elif c["sentence_type"] in follows and c["sentence_date"] + dt.timedelta(days=14) <= end:
            assert kind == follows[c["sentence_type"]]
            assert 0 <= (c["probation_start_date"] - c["sentence_date"]).days <= 14
        elif c["sentence_type"] not in follows:
            assert kind is None, c["case_id"]
        counts[kind or "none"] += 1
    assert counts["Licence"] and counts["Community order"] and counts["Suspended sentence order"]
    # a DA case is often sent to the DA perpetrator programme
    bbr = [
        c["da_flag"] for c in cases.values() if c["probation_requirement"] == "Building Better Relationships"
    ]
    assert bbr and all(bbr)


def test_police_employee_suspects_are_rare_and_referred_less(tmp_path: Path) -> None:
    generate(20000, 3, tmp_path)
    cases = pq.read_table(
        tmp_path / "truth" / "journeys.parquet",
        columns=["da_flag", "suspect_police_employee", "cps_receipt_date", "person_id"],
    ).to_pylist()
    da = [c for c in cases if c["da_flag"]]
    employee = [c for c in da if c["suspect_police_employee"]]
    assert 0.003 < len(employee) / len(da) < 0.01
    # an employee is one for all their cases
    flags: dict[int, set[bool]] = {}
    for c in cases:
        flags.setdefault(c["person_id"], set()).add(c["suspect_police_employee"])
    assert all(len(v) == 1 for v in flags.values())
    referred = sum(c["cps_receipt_date"] is not None for c in employee) / len(employee)
    others = [c for c in da if not c["suspect_police_employee"]]
    referred_others = sum(c["cps_receipt_date"] is not None for c in others) / len(others)
    assert referred < referred_others


PROBATION_NAME = load_config(CONFIGS / "probation.yaml", AgencyConfig).identifiers.full_name
PROBATION_NAME_LAYOUTS = [str(x) for x in PROBATION_NAME.layouts] if PROBATION_NAME else []
_forename = st.from_regex(r"[A-Z][a-z]{1,9}(-[A-Z][a-z]{1,6})?", fullmatch=True)
_surname_word = st.from_regex(r"(O'|Mc)?[A-Z][a-z]{1,9}(-[A-Z][a-z]{1,8})?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(_forename, min_size=1, max_size=3), st.lists(_surname_word, min_size=1, max_size=3))
def test_probation_names_split_back_into_forenames_and_surname(forenames, surname_words) -> None:
    """probation.csv writes "Forenames SURNAME" with the surname in capitals (layouts.probation); the
    config's layouts read every such name back into exactly its forenames and surname."""
    from linkage.tokens.standardise import split_full_name_layouts

    surname = " ".join(w.upper() for w in surname_words)
    raw = " ".join([*forenames, surname])
    fore, sur, _ = split_full_name_layouts(raw, PROBATION_NAME_LAYOUTS)
    assert (fore, sur) == (" ".join(forenames), surname)
