"""Shared fixtures: fast keys (low scrypt cost, same format), sample extracts, CLI runner."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from linkage.config import load_config
from linkage.config.agency import AgencyConfig
from linkage.keys import ProjectKey, load_project_key, load_signing_key, new_project_key, new_signing_key

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "agencies"
PASSPHRASE = "test passphrase, long enough"
FAST_KDF = 12  # scrypt 2**12 in tests; the format and code path are the production ones


@dataclass
class Keys:
    project_path: Path
    project: ProjectKey
    signing_dir: Path

    def signing(self, agency: str):
        return load_signing_key(self.signing_dir / f"{agency}.signing.key", PASSPHRASE)

    def pseudonymise_args(
        self, input_path: Path, out: Path, *, config: Path | None = None, signed: bool = True
    ) -> list:
        """Arguments of `linkage pseudonymise` for the police demo config (signed by police)."""
        args = [
            "pseudonymise",
            "--config",
            config or CONFIGS / "police.yaml",
            "--key",
            self.project_path,
            "--input",
            input_path,
            "--out",
            out,
        ]
        return [*args, "--signing-key", self.signing_dir / "police.signing.key"] if signed else args


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    new_project_key("test-project", d / "project.key", PASSPHRASE, log2_n=FAST_KDF)
    signing_dir = d / "signing"
    for agency in ("police", "prosecution", "court", "prison", "probation", "other"):
        new_signing_key(agency, signing_dir, PASSPHRASE, log2_n=FAST_KDF)
    return Keys(d / "project.key", load_project_key(d / "project.key", PASSPHRASE), signing_dir)


@pytest.fixture(autouse=True)
def run_log(tmp_path, monkeypatch) -> Path:
    """Every test gets its own run log (never ./linkage-log.jsonl in the working tree)."""
    path = tmp_path / "linkage-log.jsonl"
    monkeypatch.setenv("LINKAGE_LOG", str(path))
    return path


@pytest.fixture
def passphrase_env(monkeypatch) -> str:
    monkeypatch.setenv("LINKAGE_KEY_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE


def agency_config(name: str) -> AgencyConfig:
    return load_config(CONFIGS / f"{name}.yaml", AgencyConfig)


POLICE_HEADER = [
    "crime_ref",
    "urn",
    "forename",
    "middle_names",
    "surname",
    "dob",
    "gender",
    "postcode",
    "pnc_id",
    "force_area_code",
    "recorded_date",
    "offence_date",
    "offence_code",
    "da_flag",
    "outcome",
    "outcome_date",
    "ethnicity_code",
    "victim_sex",
    "victim_relationship",
    "suspect_police_employee",
    "officer_notes",
]
# The police layout also names up to three victims and the children in the household (token spec v2
# victim mentions), and the force's nominal id of the suspect; these rows name no victim and no nominal
# id, so every row stays one record (tests/test_victims.py names victims).
POLICE_VICTIM_COLUMNS = [
    f"victim{i}_{c}"
    for i in (1, 2, 3)
    for c in ("forename", "surname", "dob", "gender", "postcode", "ethnicity_code", "nominal_id")
] + ["children_in_household", "nominal_id"]
POLICE_HEADER[-3:-3] = POLICE_VICTIM_COLUMNS  # before victim_sex, victim_relationship and officer_notes

CPS_HEADER = [  # the prosecution demo layout (pipe-delimited)
    "cps_ref",
    "urn",
    "defendant_name",
    "date_of_birth",
    "sex",
    "postcode",
    "pnc",
    "cps_area",
    "receipt_date",
    "charging_decision",
    "decision_date",
    "principal_offence",
    "da_flag",
]

# Distinctive identifiers, so a leak scan can look for them byte for byte.
POLICE_ROWS = [
    [
        "CR0001",
        "01YE0123456",
        "Bartholomew",
        "Quentin",
        "Featherstonehaugh",
        "05/03/1971",
        "Male",
        "SW1A 1AA",
        "2001/0012345H",
        "E23000001",
        "01/02/2021",
        "31/01/2021",
        "008/01",
        "Y",
        "16",
        "01/03/2021",
        "W1",
        "Female",
        "Partner",
        "N",
        'said "enough", left',
    ],
    [
        "CR0002",
        "01YE0123457",
        "Zoë",
        "",
        "Smythe-Wolstenholme",
        "31/12/1985",
        "Female",
        "M1 1AE",
        "",
        "E23000001",
        "02/02/2021",
        "01/02/2021",
        "008/01",
        "N",
        "",
        "",
        "NS",
        "Male",
        "Ex-partner",
        "N",
        "",
    ],
    [
        "CR0003",
        "01YE0123458",
        "Ebenezer",
        "",
        "Throckmorton",
        "17/07/1990",
        "Unknown",
        "NFA",
        "",
        "W15000002",
        "03/02/2021",
        "02/02/2021",
        "105/01",
        "Y",
        "1",
        "05/05/2021",
        "B2",
        "Female",
        "Family member",
        "Y",
        "notes",
    ],
]


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


for _row in POLICE_ROWS:
    _row[-3:-3] = [""] * len(POLICE_VICTIM_COLUMNS)


@pytest.fixture
def police_csv(tmp_path) -> Path:
    (tmp_path / "raw").mkdir()
    return write_csv(tmp_path / "raw" / "police.csv", POLICE_HEADER, POLICE_ROWS)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run `linkage ARGS...` in-process through the real entry point (exit codes included)."""
    from linkage.cli import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["linkage", *map(str, args)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
