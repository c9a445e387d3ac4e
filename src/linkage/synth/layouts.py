"""Per-agency native CSV layouts, matching the demo configs in configs/agencies/.

Each agency gets its own column names, name layout, date format, code lists, encoding, delimiter
and line ending, plus the free-text and contact columns its config drops (so the drop path is
exercised). Record ids are assigned from the row number when rows are written, so they reveal
nothing about the person or the case.
"""

from __future__ import annotations

import csv
import functools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linkage.synth import reference as ref
from linkage.synth.identifiers import MISSING_DAY, DateFormatter, pnc_long, pnc_short, pnc_with_bad_check
from linkage.synth.journeys import ALL_OFFENCES, Cases
from linkage.synth.noise import Identities
from linkage.synth.params import COMPLETENESS
from linkage.synth.people import Persons, pools


@dataclass(frozen=True)
class Layout:
    """How one agency's file looks on disk."""

    agency: str
    filename: str
    encoding: str
    delimiter: str
    lineterminator: str
    date_format: str
    id_column: str
    id_width: int
    dob_column: str
    pnc_column: str
    bad_date: str  # an impossible date in this layout's format (for --bad-rows)


LAYOUTS: dict[str, Layout] = {
    "police": Layout(
        "police", "police.csv", "utf-8", ",", "\n", "%d/%m/%Y", "crime_ref", 7, "dob", "pnc_id", "31/02/1985"
    ),
    "prosecution": Layout(
        "prosecution",
        "prosecution.csv",
        "utf-8",
        "|",
        "\n",
        "%Y-%m-%d",
        "cps_ref",
        8,
        "date_of_birth",
        "pnc",
        "1985-02-31",
    ),
    "court": Layout(
        "court",
        "court.csv",
        "cp1252",
        ";",
        "\r\n",
        "%d-%b-%Y",
        "hearing_id",
        9,
        "defendant_dob",
        "pnc_id",
        "31-Feb-1985",
    ),
    "prison": Layout(
        "prison",
        "prison.csv",
        "utf-8",
        ",",
        "\n",
        "%Y%m%d",
        "booking_id",
        7,
        "birth_date",
        "pnc_number",
        "19850231",
    ),
    # tab-separated, dd.mm.yyyy dates, one "Forenames SURNAME" name column, the probation case
    # reference number (CRN) of the person, and a PNC id only sometimes
    "probation": Layout(
        "probation",
        "probation.csv",
        "utf-8",
        "\t",
        "\n",
        "%d.%m.%Y",
        "event_id",
        8,
        "offender_dob",
        "pnc_ref",
        "31.02.1985",
    ),
}

POLICE_NOTES = (
    'Suspect arrested at home address, victim states "he pushed me", bail conditions set',
    "Attended following 999 call; parties separated, DASH risk: medium",
    'Victim declined to provide statement, said "not this time", BWV reviewed',
    "Neighbour reported shouting, officers attended, no injuries seen",
    "Suspect interviewed under caution, no comment; file to CPS",
    'Third-party report; victim said "it\'s fine", safeguarding referral made',
    "Ongoing enquiries, CCTV requested",
    "",
)
CPS_NOTES = (
    "Evidence-led prosecution considered",
    "Victim personal statement obtained",
    "Awaiting further evidence from police, action plan issued",
    "Special measures application",
    "",
)


@functools.cache
def formatter(fmt: str) -> DateFormatter:
    return DateFormatter(fmt)


_LATIN_FALLBACK = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d", "Đ": "D"})


def to_cp1252(s: str) -> str:
    """What a cp1252 system keeps of a name: characters it cannot hold lose their accents."""
    try:
        s.encode("cp1252")
        return s
    except UnicodeEncodeError:
        t = unicodedata.normalize("NFKD", s.translate(_LATIN_FALLBACK))
        return (
            "".join(c for c in t if not unicodedata.combining(c)).encode("cp1252", "replace").decode("cp1252")
        )


def to_ascii_upper(s: str) -> str:
    """NOMIS-style upper-case ASCII."""
    t = unicodedata.normalize("NFKD", s.translate(_LATIN_FALLBACK))
    return "".join(c for c in t if not unicodedata.combining(c)).encode("ascii", "ignore").decode().upper()


def _dates(days: np.ndarray, fmt: str, missing: str = "") -> np.ndarray:
    return formatter(fmt)(days, missing)


def _join(*parts: np.ndarray, sep: str = " ") -> np.ndarray:
    return np.array([sep.join(p for p in ps if p) for ps in zip(*parts, strict=True)], dtype=object)


def _pnc(ident: Identities, short_share: float, rng: np.random.Generator) -> np.ndarray:
    out = np.full(len(ident.pnc_year), "", dtype=object)
    short = rng.random(len(out)) < short_share
    for i in np.flatnonzero(ident.pnc_year > 0):
        y, s = int(ident.pnc_year[i]), int(ident.pnc_serial[i])
        out[i] = pnc_short(y, s) if short[i] else pnc_long(y, s)
    return out


def _missing_as(values: np.ndarray, rng: np.random.Generator, token: str, share: float) -> np.ndarray:
    """Some systems write a word ("N/K", "UNKNOWN") where a value is missing."""
    out = values.copy()
    blank = (out == "") & (rng.random(len(out)) < share)
    out[blank] = token
    return out


def _hash_codes(pid: np.ndarray, salt: int) -> np.ndarray:
    x = (pid.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)) >> np.uint64(8)
    return x


NOMINAL_MISSING = 0.05  # police records without the person's nominal id (a quick-entry record)


def nominal_ids(pid: np.ndarray, force: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """The police RMS "nominal" id: one per person per force (victims and suspects alike), e.g.
    GMP04711234; a person known to two forces has two. ``salt`` (per record) decides which records lack
    it, by hash, so no random draw is spent and the other columns stay as they were."""
    short = np.array([f.short for f in ref.FORCE_AREAS], dtype=object)[force]
    h = _hash_codes(pid * 64 + force.astype(np.int64), 29)
    missing = _hash_codes(salt, 31) % np.uint64(1000) < np.uint64(int(NOMINAL_MISSING * 1000))
    out = np.array(
        [f"{s}{int(x % np.uint64(10**8)):08d}" for s, x in zip(short, h, strict=True)], dtype=object
    )
    out[missing] = ""
    return out


def urns(cases: Cases) -> np.ndarray:
    """Unique Reference Numbers: force number, 2-letter station, 5-digit serial, 2-digit year."""
    h = _hash_codes(cases.case_id, 17)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    yy = (cases.recorded // 365.25 + 1970).astype(np.int64) % 100
    return np.array(
        [
            f"{f + 1:02d}{letters[int(x % 23)]}{letters[int(x // 23 % 23)]}"
            f"{int(x // 529 % 100000):05d}{y:02d}"
            for f, x, y in zip(cases.force, h, yy, strict=True)
        ],
        dtype=object,
    )


def _urn_variants(urn: np.ndarray, rng: np.random.Generator, present: float, noise: np.ndarray) -> np.ndarray:
    """The case reference as another agency keys it: mostly identical, sometimes formatted or mistyped."""
    out = urn.copy()
    u = rng.random(len(out))
    fmt, typo_ = u < 0.05, (u >= 0.05) & (u < 0.07)
    for i in np.flatnonzero(fmt):
        s = out[i]
        out[i] = f"{s[:2]}/{s[2:4]}/{s[4:9]}/{s[9:]}"
        noise[i] = ",".join(x for x in (noise[i], "urn_format") if x)
    for i in np.flatnonzero(typo_):
        s = out[i]
        k = 4 + int(u[i] * 1000) % 5
        out[i] = s[:k] + str((int(s[k]) + 1) % 10) + s[k + 1 :]
        noise[i] = ",".join(x for x in (noise[i], "urn_typo") if x)
    out[rng.random(len(out)) >= present] = ""
    return out


def _offence_codes(idx: np.ndarray) -> np.ndarray:
    return np.array([o.code for o in ALL_OFFENCES], dtype=object)[idx]


def _phone(rng: np.random.Generator, n: int) -> np.ndarray:
    nums = rng.integers(0, 10**9, n)
    return np.array([f"07{x:09d}" for x in nums], dtype=object)


def _person_names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    fore = pools().forenames[("anglo", 0)].names[rng.integers(0, 150, n)]
    sur = np.array(list(pools().surnames["anglo"].names), dtype=object)[rng.integers(0, 400, n)]
    return fore, sur


def _sentence_days(cases: Cases) -> np.ndarray:
    keep = cases.sentence_type.astype(str) != ""
    keep &= np.isin(
        cases.sentence_type.astype(str), ["Immediate custody", "Suspended sentence", "Community order"]
    )
    return np.where(keep & (cases.sentence_days >= 0), cases.sentence_days.astype(str), "").astype(object)


def police(
    cases: Cases, ident: Identities, persons: Persons, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns of police.csv (crime_ref is a prefix; the row number is appended when written)."""
    fmt, n = LAYOUTS["police"].date_format, len(cases)
    yy = (cases.recorded // 365.25 + 1970).astype(np.int64) % 100
    short = np.array([f.short for f in ref.FORCE_AREAS], dtype=object)[cases.force]
    urn = urns(cases)
    urn[(cases.receipt == MISSING_DAY) | (rng.random(n) >= COMPLETENESS["police"].case_reference)] = ""
    sur = ident.surname.copy()
    upper = rng.random(n) < 0.04  # some officers type surnames in capitals
    sur[upper] = np.array([s.upper() for s in sur[upper]], dtype=object)
    gender = np.array(["Male", "Female"], dtype=object)[np.maximum(ident.sex, 0)]
    gender[ident.sex < 0] = np.where(rng.random(int((ident.sex < 0).sum())) < 0.5, "Unknown", "")
    towns = pools().towns[rng.integers(0, len(pools().towns), n)]
    address = np.where(ident.street != "", _join(ident.street, towns, sep=", "), "").astype(object)
    notes = np.array(POLICE_NOTES, dtype=object)[rng.integers(0, len(POLICE_NOTES), n)]
    outcome = np.where(cases.outcome > 0, cases.outcome.astype(str), "").astype(object)
    return {
        "crime_ref": np.array([f"{s}/{y:02d}/" for s, y in zip(short, yy, strict=True)], dtype=object),
        "urn": urn,
        "force_area_code": np.array([f.code for f in ref.FORCE_AREAS], dtype=object)[cases.force],
        "recorded_date": _dates(cases.recorded, fmt),
        "offence_date": _dates(cases.offence_day, fmt),
        "offence_code": _offence_codes(cases.offence),
        "da_flag": np.where(cases.da, "Y", "N").astype(object),
        "surname": sur,
        "forename": ident.forename,
        "middle_names": ident.middle,
        "dob": _missing_as(_dates(ident.dob, fmt), rng, "N/K", 0.2),
        "gender": gender,
        "ethnicity_code": np.where(rng.random(n) < 0.03, "NS", persons.ethnicity[cases.pidx]).astype(object),
        "address_line1": address,
        "postcode": ident.postcode,
        "pnc_id": _pnc(ident, 0.0, rng),
        "nominal_id": nominal_ids(persons.pid[cases.pidx], cases.force, cases.case_id * 4),
        "suspect_phone": np.where(rng.random(n) < 0.6, _phone(rng, n), "").astype(object),
        "victim_sex": cases.victim_sex,
        "victim_relationship": cases.victim_relationship,
        "suspect_police_employee": np.where(cases.police_employee, "Y", "N").astype(object),
        "outcome": outcome,
        "outcome_date": _dates(cases.outcome_day, fmt),
        "officer_notes": notes,
    }


def prosecution(
    cases: Cases, ident: Identities, persons: Persons, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns of prosecution.csv (pipe-delimited; one "SURNAME, Forenames" name column)."""
    fmt, n = LAYOUTS["prosecution"].date_format, len(cases)
    # ~3 % typed without the comma ("John SMITH"), read by the config's second layout; chosen by the
    # case id, not the random stream, so every other value stays as before
    no_comma = cases.case_id % 97 < 3
    name = np.array(
        [
            f"{f} {m} {s.upper()}".replace("  ", " ") if nc else f"{s.upper()}, {f} {m}".strip()
            for s, f, m, nc in zip(ident.surname, ident.forename, ident.middle, no_comma, strict=True)
        ],
        dtype=object,
    )
    sex = np.array(["M", "F"], dtype=object)[np.maximum(ident.sex, 0)]
    sex[ident.sex < 0] = "U"
    flag = cases.da ^ (rng.random(n) < 0.02)  # CPS and police flags disagree now and then
    lf, ls = _person_names(rng, n)
    return {
        "cps_ref": np.full(n, "", dtype=object),
        "urn": _urn_variants(urns(cases), rng, COMPLETENESS["prosecution"].case_reference, ident.noise),
        "cps_area": cases.cps_area,
        "defendant_name": name,
        "date_of_birth": _missing_as(_dates(ident.dob, fmt), rng, "N/K", 0.1),
        "sex": sex,
        "postcode": ident.postcode,
        "pnc": _pnc(ident, 0.0, rng),
        "receipt_date": _dates(cases.receipt, fmt),
        "charging_decision": cases.decision,
        "decision_date": _dates(cases.decision_day, fmt),
        "principal_offence": _offence_codes(cases.cps_offence),
        "da_flag": np.where(flag, "1", "0").astype(object),
        "reviewing_lawyer": _join(lf, ls),
        "case_notes": np.array(CPS_NOTES, dtype=object)[rng.integers(0, len(CPS_NOTES), n)],
    }


def court(
    cases: Cases, ident: Identities, persons: Persons, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns of court.csv (cp1252, semicolons, 05-Mar-1990 dates; no DA flag)."""
    fmt, n = LAYOUTS["court"].date_format, len(cases)
    sex = np.array(["M", "F"], dtype=object)[np.maximum(ident.sex, 0)]
    sex[ident.sex < 0] = ""
    towns = pools().towns[rng.integers(0, len(pools().towns), n)]
    offence = np.where(rng.random(n) < 0.95, cases.cps_offence, cases.offence)
    ro = np.array(["", "N", "Y"], dtype=object)[cases.restraining_order.astype(np.int64) + 1]
    _, judges = _person_names(rng, n)
    title = np.array(["HHJ", "DJ", "Recorder"], dtype=object)[rng.integers(0, 3, n)]
    cp = np.vectorize(to_cp1252, otypes=[object])
    return {
        "hearing_id": np.full(n, "", dtype=object),
        "case_urn": _urn_variants(urns(cases), rng, COMPLETENESS["court"].case_reference, ident.noise),
        "court_code": cases.court_code,
        "defendant_surname": cp(ident.surname) if n else ident.surname,
        "defendant_forenames": cp(_join(ident.forename, ident.middle)) if n else ident.forename,
        "defendant_dob": _dates(ident.dob, fmt),
        "defendant_sex": sex,
        "defendant_address": np.where(ident.street != "", _join(ident.street, towns, sep=", "), "").astype(
            object
        ),
        "defendant_postcode": ident.postcode,
        "pnc_id": _pnc(ident, 0.10, rng),
        "offence_code": _offence_codes(offence),
        "first_hearing_date": _dates(cases.hearing, fmt),
        "verdict": cases.verdict,
        "verdict_date": _dates(cases.verdict_day, fmt),
        "sentence_type": cases.sentence_type,
        "sentence_days": _sentence_days(cases),
        "sentence_date": _dates(cases.sentence_day, fmt),
        "restraining_order": ro,
        "judge_name": _join(title, judges),
    }


def prison(
    cases: Cases, ident: Identities, persons: Persons, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns of prison.csv (upper-case ASCII names, YYYYMMDD dates, short PNC ids, no case reference)."""
    fmt, n = LAYOUTS["prison"].date_format, len(cases)
    up = np.vectorize(to_ascii_upper, otypes=[object])
    sex = np.array(["M", "F"], dtype=object)[np.maximum(ident.sex, 0)]
    sex[ident.sex < 0] = ""
    h = _hash_codes(persons.pid[cases.pidx], 91)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    number = np.array(
        [
            f"{letters[int(x % 23)]}{int(x // 23 % 10000):04d}{letters[int(x // 230000 % 23)]}"
            f"{letters[int(x // 5290000 % 23)]}"
            for x in h
        ],
        dtype=object,
    )
    cell = np.array(
        [
            f"{'ABCDEFG'[a]}-{b}-{c:03d}"
            for a, b, c in zip(
                rng.integers(0, 7, n), rng.integers(1, 5, n), rng.integers(1, 40, n), strict=True
            )
        ],
        dtype=object,
    )
    return {
        "booking_id": np.full(n, "", dtype=object),
        "prison_number": number,
        "establishment_code": cases.establishment,
        "last_name": up(ident.surname) if n else ident.surname,
        "first_name": up(ident.forename) if n else ident.forename,
        "middle_name": up(ident.middle) if n else ident.middle,
        "birth_date": _dates(ident.dob, fmt),
        "gender": sex,
        "ethnicity_code": persons.ethnicity[cases.pidx],
        "home_postcode": _missing_as(ident.postcode, rng, "UNKNOWN", 0.3),
        "pnc_number": _pnc(ident, 0.7, rng),
        "reception_date": _dates(cases.reception, fmt),
        "release_date": _dates(cases.release, fmt),
        "index_offence": _offence_codes(cases.cps_offence),
        "sentence_days": _sentence_days(cases),
        "cell_location": cell,
    }


PROBATION_NOTES = (
    "Induction completed; sentence plan agreed",
    "Failed to attend appointment, warning letter issued",
    "Attended BBR session 4 of 24",
    "Home visit, no concerns",
    "",
)


def probation(
    cases: Cases, ident: Identities, persons: Persons, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns of probation.csv (tab-separated; "Forenames SURNAME"; dd.mm.yyyy; a CRN per person)."""
    fmt, n = LAYOUTS["probation"].date_format, len(cases)
    name = np.array(
        [
            " ".join(p for p in (f, m, s.upper()) if p)
            for f, m, s in zip(ident.forename, ident.middle, ident.surname, strict=True)
        ],
        dtype=object,
    )
    sex = np.array(["Male", "Female"], dtype=object)[np.maximum(ident.sex, 0)]
    sex[ident.sex < 0] = "Not specified"
    h = _hash_codes(persons.pid[cases.pidx], 53)  # the CRN belongs to the person, not to the order
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    crn = np.array([f"{letters[int(x % 23)]}{int(x // 23 % 1000000):06d}" for x in h], dtype=object)
    lf, ls = _person_names(rng, n)
    return {
        "event_id": np.full(n, "", dtype=object),
        "crn": crn,
        "offender_name": name,
        "offender_dob": _missing_as(_dates(ident.dob, fmt), rng, "Not recorded", 0.5),
        "gender": sex,
        "ethnicity": np.where(rng.random(n) < 0.05, "NS", persons.ethnicity[cases.pidx]).astype(object),
        "address_postcode": ident.postcode,
        "pnc_ref": _pnc(ident, 0.3, rng),
        "court_urn": _urn_variants(urns(cases), rng, COMPLETENESS["probation"].case_reference, ident.noise),
        "order_type": cases.probation_type,
        "main_offence": _offence_codes(cases.cps_offence),
        "sentence_days": _sentence_days(cases),
        "requirement": cases.probation_requirement,
        "start_date": _dates(cases.probation_start, fmt),
        "expected_end_date": _dates(cases.probation_expected_end, fmt),
        "breach_date": _dates(cases.probation_breach, fmt),
        "termination_date": _dates(cases.probation_end, fmt),
        "termination_reason": cases.probation_termination,
        "offender_manager": _join(lf, ls),
        "contact_notes": np.array(PROBATION_NOTES, dtype=object)[rng.integers(0, len(PROBATION_NOTES), n)],
    }


BUILDERS: dict[str, Callable[[Cases, Identities, Persons, np.random.Generator], dict[str, np.ndarray]]] = {
    "police": police,
    "prosecution": prosecution,
    "court": court,
    "prison": prison,
    "probation": probation,
}
ID_PREFIX = {"police": "", "prosecution": "CPS", "court": "", "prison": "BK", "probation": "PR"}


class CsvSink:
    """Appends rows to one agency file and counts data rows (source_row is 1-based, header excluded)."""

    def __init__(self, out_dir: Path, layout: Layout, header: Sequence[str]) -> None:
        self.layout = layout
        self.path = out_dir / layout.filename
        self.rows = 0
        self._fh = self.path.open("w", encoding=layout.encoding, newline="")  # closed by close()
        self._w = csv.writer(
            self._fh,
            delimiter=layout.delimiter,
            quotechar='"',
            lineterminator=layout.lineterminator,
            quoting=csv.QUOTE_MINIMAL,
        )
        self._w.writerow(header)

    def write(self, rows: list[list[str]]) -> None:
        self._w.writerows(rows)
        self.rows += len(rows)

    def close(self) -> None:
        self._fh.close()


def bad_row(
    row: list[str], header: Sequence[str], layout: Layout, kind: str, pnc_year: int, pnc_serial: int
) -> list[str]:
    """A deliberately bad copy of a good row that the agency config must reject: a wrong column count,
    or no usable identifier left (surname missing, impossible date, PNC id with a wrong check letter, no
    police nominal id;
    token spec v2 keeps a row while a surname with a forename or date of birth, or a valid id, remains)."""
    out = list(row)
    if kind == "column_count":
        return out[:-3]
    out[header.index(SURNAME_COLUMN[layout.agency])] = ""
    out[header.index(layout.dob_column)] = layout.bad_date
    out[header.index(layout.pnc_column)] = pnc_with_bad_check(pnc_year, pnc_serial)
    for col in OTHER_ID_COLUMNS.get(layout.agency, ()):
        out[header.index(col)] = ""
    return out


# The column holding the surname (or the whole name) in each layout: blanked in a no_identifier bad row.
SURNAME_COLUMN = {
    "police": "surname",
    "prosecution": "defendant_name",
    "court": "defendant_surname",
    "prison": "last_name",
    "probation": "offender_name",
}
# Other valid ids a layout holds, blanked too in a no_identifier bad row (a valid id keeps a row).
OTHER_ID_COLUMNS = {"probation": ("crn",), "police": ("nominal_id",)}
BAD_ROW_KINDS = ("column_count", "no_identifier")
