"""`linkage audit`: demo configs audit clean; each risky setting is flagged; formats; schemas; run log."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, POLICE_HEADER, POLICE_ROWS, ROOT, agency_config, write_csv
from linkage.audit.findings import CODES, Severity
from linkage.audit.review import AuditReport, run_audit
from linkage.runlog import EntryBuilder, append

LINKAGE = ROOT / "configs" / "linkage.yaml"
RELEASE = ROOT / "configs" / "release.yaml"


def load(path: Path) -> dict:
    """A config as plain data (YAML anchors unshared, so a change touches one place only)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8"))))


def save(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def police(tmp_path: Path, change=None) -> Path:
    """The demo police config, changed by ``change(data)``, written to tmp_path."""
    data = load(CONFIGS / "police.yaml")
    if change:
        change(data)
    return save(tmp_path / "police.yaml", data)


def add_attribute(attr: dict):
    return lambda d: d["attributes"].append(attr)


def release(tmp_path: Path, change=None) -> Path:
    """The demo release policy, changed by ``change(data)``, written to tmp_path."""
    data = load(RELEASE)
    if change:
        change(data)
    return save(tmp_path / "release.yaml", data)


def table(name: str, **changes):
    """A change to the demo policy's table ``name``."""
    return lambda d: next(t for t in d["tables"] if t["name"] == name).update(changes)


def codes(report: AuditReport) -> set[str]:
    return {f.code for f in report.findings}


def audit_json(run_cli, *args) -> tuple[int, dict]:
    """Exit code and report of `linkage audit ARGS --json` (an exit-1 run adds an error object after it)."""
    result = run_cli("audit", *args, "--json")
    doc, _ = json.JSONDecoder().raw_decode(result.stdout)
    return result.exit_code, doc


# --- the demo ---------------------------------------------------------------------------------------


def test_demo_configs_audit_clean(run_cli):
    code, report = audit_json(run_cli, ROOT / "configs")
    assert code == 0
    assert [f for f in report["findings"] if f["severity"] == "high"] == []
    kinds = sorted(f["kind"] for f in report["files"])
    assert kinds == ["agency"] * 10 + ["linkage", "release"]  # 5 demo agencies + 5 in configs/examples/


def test_demo_release_policy_review():
    report = run_audit([RELEASE])
    assert report.findings == [] and report.exit_code == 0
    review = report.files[0]
    assert review.kind == "release" and review.title == "Release policy"
    rules, tables, names = review.sections
    facts = dict(rules.rows)
    assert facts["threshold"].startswith("a count of fewer than 10 journeys, or of fewer than 10 distinct")
    assert "multiple of 5" in facts["rounding"] and facts["zero cells"].startswith("suppressed")
    assert "2 largest contributions exceed 90%" in facts["dominance"] and "10%" in facts["p% rule"]
    rows = {r[0].split("\n")[0]: r for r in tables.rows}
    assert rows["sentencing"][1:] == ["sentenced = Yes", "journeys", "sentence_type, da_flag", "custody_days"]
    meaning = {(r[0], r[1]): r[2] for r in names.rows}
    assert meaning[("custody_days", "statistic")] == "length of an immediate custodial sentence in days"
    assert meaning[("recorded", "count")].startswith("Recorded by police")


def test_linkage_review_describes_the_clustering(tmp_path):
    def people(report: AuditReport) -> list[str]:
        clustering = next(s for s in report.files[0].sections if s.title == "Clustering")
        return next(r for r in clustering.rows if r[0].startswith("people"))

    constrained = people(run_audit([LINKAGE]))
    assert constrained == [
        "people (constrained_components)",
        "records joined by pairs at or above the threshold, strongest first; never two different valid "
        "typed id (PNC, CRO, NI, NHS) or date of birth (derived from the extracts at run time; weak "
        "evidence exempt; a date of birth yields to a pair the model links directly: see the run's "
        "model.yaml) values in one person, unless a pair's match weight ≥ 20",
    ]
    data = load(LINKAGE)
    dob = {"column": "dob", "unless_any": ["dob_ym"], "direct_link_overrides": True}
    data["clustering"] = {**data["clustering"], "never_link_different": ["pnc", dob]}
    written = people(run_audit([save(tmp_path / "written.yaml", data)]))
    assert (
        "date of birth (unless same year and month of birth) (yields to a pair the model links directly)"
        in written[1]
    )
    data["clustering"] = {"method": "connected_components", "threshold_match_probability": 0.99}
    plain = people(run_audit([save(tmp_path / "linkage.yaml", data)]))
    assert plain[0] == "people (connected_components)" and plain[1].startswith("plain connected components")


def test_review_says_what_happens_to_each_column():
    review = run_audit([CONFIGS / "police.yaml"]).files[0]
    rows = {r[0]: r for r in review.sections[1].rows}
    assert rows["surname"][1:3] == ["tokenised (surname)", "sn, sn_phon, sn_pre3, sn_p1, sn_p2"]
    assert rows["gender"][1] == "kept in the clear as a code"
    assert rows["outcome"][1:3] == ["passed through (integer)", "police_outcome"]
    assert rows["every other column"][1] == "dropped"


# --- one test per risky setting ---------------------------------------------------------------------


def test_schema_error_is_a_high_finding_with_line(tmp_path, run_cli):
    path = police(tmp_path, lambda d: d["identifiers"]["surname"].update(colum="x"))
    code, report = audit_json(run_cli, path)
    (finding,) = [f for f in report["findings"] if f["code"] == "AUD001"]
    assert code == 1 and finding["severity"] == "high"
    assert "line" in finding["reason"] and "identifiers.surname.colum" in finding["reason"]


def test_agency_without_record_id_is_valid(tmp_path):
    """Token spec v2: the record id is optional (record keys then come from row numbers)."""
    report = run_audit([police(tmp_path, lambda d: d["identifiers"].pop("record_id"))])
    assert "AUD001" not in codes(report)


def test_invalid_yaml_and_unrecognised_file(tmp_path):
    (tmp_path / "broken.yaml").write_text("agency: [unclosed\n")
    save(tmp_path / "other.yaml", {"colour": "blue"})
    report = run_audit([tmp_path])
    assert sorted(f.code for f in report.findings) == ["AUD001", "AUD002"]


def test_bloom_filter_requested(tmp_path):
    report = run_audit([police(tmp_path, lambda d: d["identifiers"]["surname"].update(bloom={"bits": 1024}))])
    assert {"AUD003", "AUD001"} <= codes(report) and report.exit_code == 1


@pytest.mark.parametrize(
    "attr",
    [
        {"column": "suspect_phone", "type": "code", "pattern": r"^\d{11}$"},
        {"column": "victimDateOfBirth", "type": "date", "formats": ["%d/%m/%Y"]},
        {"column": "extra", "name": "home_address", "type": "code", "pattern": "^[A-Z]{2}$"},
    ],
    ids=["phone", "camel-case-dob", "output-name"],
)
def test_identifier_looking_column_passed_through(tmp_path, attr):
    report = run_audit([police(tmp_path, add_attribute(attr))])
    assert codes(report) >= {"AUD101"} and report.exit_code == 1


def test_free_text_column_passed_through(tmp_path):
    report = run_audit([police(tmp_path, add_attribute({"column": "officer_notes", "type": "code"}))])
    assert "AUD102" in codes(report)


@pytest.mark.parametrize("pattern", [".*", "^.{1,200}$", r"^[A-Z0-9 ,.'-]+$", r"^\d{3}/\d{2}"])
def test_permissive_code_pattern(tmp_path, pattern):
    report = run_audit(
        [police(tmp_path, add_attribute({"column": "area", "type": "code", "pattern": pattern}))]
    )
    assert codes(report) == {"AUD103"}
    added = len(agency_config("police").attributes)  # the attribute appended last
    assert report.findings[0].field == f"attributes[{added}].pattern"


def test_record_reference_passed_through_is_medium(tmp_path):
    attr = {"column": "hearing_ref", "type": "code", "pattern": r"^[A-Z]{2}\d{6}$"}
    report = run_audit([police(tmp_path, add_attribute(attr))])
    assert codes(report) == {"AUD105"} and report.exit_code == 0


def test_dob_rejected_when_invalid_is_low(tmp_path):
    report = run_audit(
        [police(tmp_path, lambda d: d["identifiers"]["date_of_birth"].update(on_invalid="reject"))]
    )
    assert codes(report) == {"AUD107"} and report.findings[0].severity is Severity.low


def test_record_keys_from_row_numbers_are_medium(tmp_path):
    """Without a record id, keys follow row numbers: a removed row re-draws every later key, and with it
    the release's cell key perturbation."""
    report = run_audit([police(tmp_path, lambda d: d["identifiers"].pop("record_id"))])
    assert codes(report) == {"AUD109"} and report.findings[0].severity is Severity.medium
    assert report.findings[0].field == "identifiers" and report.exit_code == 0


def test_sample_values_that_look_like_identifiers(tmp_path, run_cli):
    """A pattern no probe trips, but the data carries postcodes; sampled values are never printed."""
    attr = {"column": "area_code", "type": "code", "pattern": r"^[A-Z]{1,2}\d{1,2}\d[A-Z]{2}$"}
    config = police(tmp_path, add_attribute(attr))
    rows = [[*row, pc] for row, pc in zip(POLICE_ROWS, ["M11AE", "B338TH", "L18JQ"], strict=True)]
    sample = write_csv(tmp_path / "police.csv", [*POLICE_HEADER, "area_code"], rows)
    code, report = audit_json(run_cli, config, "--sample", f"police={sample}")
    (finding,) = report["findings"]
    assert code == 1 and finding["code"] == "AUD104" and "3 look like postcodes" in finding["reason"]
    dropped = [r[0] for r in report["files"][0]["sections"][1]["rows"] if r[1] == "dropped"]
    assert dropped == ["officer_notes"]
    text = run_cli("audit", config, "--sample", f"police={sample}")
    for value in ("M11AE", "Featherstonehaugh", "05/03/1971", "SW1A 1AA"):
        assert value not in text.stdout + text.stderr + json.dumps(report)


def test_sample_missing_a_configured_column(tmp_path):
    sample = write_csv(tmp_path / "police.csv", POLICE_HEADER[1:], [r[1:] for r in POLICE_ROWS])
    report = run_audit([CONFIGS / "police.yaml"], {"police": sample})
    assert codes(report) == {"AUD106"} and "crime_ref" in report.findings[0].reason


def test_key_file_referenced_from_secure_config(tmp_path):
    data = load(LINKAGE)
    data["extracts"]["trusted_keys"] = "../custodian/project.key"
    report = run_audit([save(tmp_path / "linkage.yaml", data)])
    assert "AUD201" in codes(report) and report.exit_code == 1


def test_key_file_inside_a_referenced_folder(tmp_path):
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "police.signing.pub").write_text("public")
    (tmp_path / "trusted" / "police.signing.key").write_text("private")
    data = load(LINKAGE)
    data["extracts"]["trusted_keys"] = "trusted"
    report = run_audit([save(tmp_path / "linkage.yaml", data)])
    (finding,) = [f for f in report.findings if f.code == "AUD201"]
    assert "police.signing.key" in finding.reason and finding.field == "extracts.trusted_keys"


def test_low_match_threshold(tmp_path):
    data = load(LINKAGE)
    data["clustering"]["threshold_match_probability"] = 0.8
    report = run_audit([save(tmp_path / "linkage.yaml", data)])
    assert "AUD202" in codes(report) and report.exit_code == 0


def _sdc(**changes):
    return lambda d: d["sdc"].update(changes)


@pytest.mark.parametrize(
    "change, code, field",
    [
        (_sdc(threshold=5), "AUD301", "sdc.threshold"),
        (_sdc(rounding_base=3), "AUD302", "sdc.rounding_base"),
        (_sdc(zeros_disclosive=False), "AUD303", "sdc.zeros_disclosive"),
        (_sdc(dominance={"n": 2, "k": 0.95}), "AUD305", "sdc.dominance"),
        (_sdc(dominance={"n": 1, "k": 0.9}), "AUD305", "sdc.dominance"),
        (_sdc(p_percent=0.05), "AUD305", "sdc.p_percent"),
    ],
    ids=["threshold", "rounding", "zeros", "dominance-k", "dominance-n", "p-percent"],
)
def test_release_policy_below_the_floors_is_high(tmp_path, change, code, field):
    path = release(tmp_path, change)
    report = run_audit([path])
    (finding,) = report.findings
    assert finding.code == code and finding.severity is Severity.high and report.exit_code == 1
    assert finding.field == field and finding.line is not None
    assert "--allow-below-floors" in finding.reason
    line = path.read_text(encoding="utf-8").splitlines()[finding.line - 1].strip()
    assert line.startswith(f"{field.split('.')[-1]}:")


def test_perturbation_off_is_flagged(tmp_path):
    report = run_audit([release(tmp_path, _sdc(perturbation={"enabled": False}))])
    assert codes(report) == {"AUD307"} and report.exit_code == 0


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (table("funnel", by=["person_id", "da_flag"]), "tables.0.by", "person_id identifies records"),
        (table("funnel_by_age_band", by=["dob_ym"]), "tables.4.by", "dob_ym identifies records"),
        (
            table("prisoners", where={"prison_reception": "Yes", "source_row": "7"}),
            "tables.15.where",
            "source_row identifies records",
        ),
        (table("reoffending", measures=["police_record_key"]), "tables.20.measures", "identifies records"),
        (
            table("trend_quarterly", by=["recorded_quarter", "recorded_date"]),
            "tables.1.by",
            "recorded_date is not a dimension of the release vocabulary",
        ),
        (
            table("sentencing", statistics=["sentence_length_days"]),
            "tables.11.statistics",
            "not a statistic of the release vocabulary",
        ),
        (table("prisoners", where={}), "tables.15", "needs `where: {prison_reception: Yes}`"),
    ],
    ids=["person-id", "token", "source-row-condition", "record-key-measure", "raw-date", "raw-statistic",
         "stage-not-fixed"],
)  # fmt: skip
def test_release_policy_outside_the_vocabulary_is_a_schema_error(tmp_path, change, field, reason):
    """The policy model refuses the table (the release refuses the same file): AUD001, line and key."""
    report = run_audit([release(tmp_path, change)])
    (finding,) = report.findings
    assert finding.code == "AUD001" and finding.severity is Severity.high and report.exit_code == 1
    assert f"field '{field}'" in finding.reason and reason in finding.reason
    assert re.search(r"line \d+", finding.reason)


def test_stricter_magnitude_rules_pass(tmp_path):
    report = run_audit([release(tmp_path, _sdc(dominance={"n": 3, "k": 0.8}, p_percent=0.2, threshold=20))])
    assert report.findings == []


def test_release_schema_error_names_line_and_field(tmp_path):
    """A misspelt key: still recognised as a release policy, validated by ReleasePolicy (AUD001)."""
    path = release(tmp_path, lambda d: d["sdc"].update(rounding=5))
    report = run_audit([path])
    (finding,) = report.findings
    assert finding.code == "AUD001" and report.files[0].kind == "release"
    assert "field 'sdc.rounding': unknown key" in finding.reason and "line " in finding.reason


def test_every_code_is_documented():
    guide = (ROOT / "docs" / "governance-guide.md").read_text(encoding="utf-8")
    assert [c for c in CODES if c not in guide] == []


# --- output formats, schemas, usage -----------------------------------------------------------------------


def test_markdown_and_html(tmp_path, run_cli):
    md = run_cli("audit", ROOT / "configs", "--format", "md")
    assert md.exit_code == 0 and md.stdout.startswith("# Configuration audit")
    assert r"^(E23\|W15)" in md.stdout  # table cells are escaped
    out = tmp_path / "audit.html"
    result = run_cli("audit", ROOT / "configs", "--out", out)
    page = out.read_text(encoding="utf-8")
    assert result.exit_code == 0 and str(out) in result.stdout
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "What happens to each column" in page
    assert "<script" not in page and "http" not in page and "<link" not in page


def test_schema_export(tmp_path, run_cli):
    result = run_cli("audit", "--schema", tmp_path / "schemas")
    assert result.exit_code == 0
    written = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert written == ["agency.schema.json", "linkage.schema.json", "release.schema.json"]
    agency = json.loads((tmp_path / "schemas" / "agency.schema.json").read_text())
    linkage = json.loads((tmp_path / "schemas" / "linkage.schema.json").read_text())
    policy = json.loads((tmp_path / "schemas" / "release.schema.json").read_text())
    assert {"agency", "identifiers"} <= set(agency["required"]) and agency["additionalProperties"] is False
    assert "comparisons" in linkage["properties"] and agency["$schema"].endswith("2020-12/schema")
    assert {"title", "tables"} <= set(policy["required"]) and "rounding_base" in policy["$defs"]["SDCRules"][
        "properties"
    ]


def test_usage_errors(tmp_path, run_cli):
    assert run_cli("audit", tmp_path / "nope.yaml").exit_code == 2
    assert run_cli("audit", CONFIGS, "--sample", f"nobody={CONFIGS / 'police.yaml'}").exit_code == 2
    assert run_cli("audit", "configs").exit_code == 2  # neither PATH nor --schema
    help_text = run_cli("audit", "--help").stdout
    assert "linkage audit PATH..." in help_text and "linkage audit log [FILE]" in help_text


# --- the run log --------------------------------------------------------------------------------------


def make_log(path: Path, n: int = 4) -> list[str]:
    for i in range(n):
        append(EntryBuilder(f"command-{i}", [CONFIGS / "police.yaml"], [], "ab" * 16), "ok", path=path)
    return path.read_text().splitlines()


def test_audit_log_intact(run_log, run_cli):
    make_log(run_log)
    result = run_cli("audit", "log")  # default: $LINKAGE_LOG
    assert result.exit_code == 0 and "chain intact: 4 entries" in result.stdout
    code, data = audit_json(run_cli, "log", run_log)
    assert code == 0 and data["ok"] and [e["command"] for e in data["verified_entries"]][-1] == "command-3"


def test_audit_log_tampered(tmp_path, run_cli):
    path = tmp_path / "other-log.jsonl"
    lines = make_log(path)
    entry = json.loads(lines[2])
    entry["outcome"] = "failed"
    path.write_text("\n".join([*lines[:2], json.dumps(entry), lines[3]]) + "\n")
    result = run_cli("audit", "log", path)
    assert result.exit_code == 1 and "chain broken at line 3" in result.stdout
    code, data = audit_json(run_cli, "log", path)
    assert code == 1 and data["first_broken"] == 3 and "altered" in data["reason"]
    assert [e["command"] for e in data["verified_entries"]] == ["command-0", "command-1"]


def test_audit_log_missing(tmp_path, run_cli):
    assert run_cli("audit", "log", tmp_path / "none.jsonl").exit_code == 2
