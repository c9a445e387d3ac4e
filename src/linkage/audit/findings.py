"""Risk rules: each looks at one config (and, for agencies, an optional data sample) and reports
settings a governance reviewer must not miss, with a severity, a code and a reason in plain words.

Any high finding makes `linkage audit` exit 1. The codes are listed, with what to do about each, in
docs/governance-guide.md. Rules never quote a sampled data value: they count and name patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from linkage.audit.detect import ConfigFile, ConfigKind
from linkage.audit.sample import Sample
from linkage.config.agency import AgencyConfig, CodeAttribute, IntegerAttribute, OnInvalid
from linkage.config.linkage import LinkageConfig
from linkage.config.release import ReleasePolicy, SDCRules, TableSpec
from linkage.errors import ConfigError
from linkage.release.tables import DisclosureRefused, check_policy
from linkage.release.vocabulary import DIMENSIONS, MEASURES, STATISTICS


class Severity(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


# code -> (severity, title). One table, so the guide, the renderers and the tests agree.
CODES: dict[str, tuple[Severity, str]] = {
    "AUD001": (Severity.high, "config does not match its schema"),
    "AUD002": (Severity.high, "file is not a recognised config"),
    "AUD003": (Severity.high, "Bloom-filter encoding requested without hardening"),
    "AUD101": (Severity.high, "identifier-looking column passed through in the clear"),
    "AUD102": (Severity.high, "free-text column passed through in the clear"),
    "AUD103": (Severity.high, "code pattern lets identifiers or free text through"),
    "AUD104": (Severity.high, "sampled values of a pass-through column look like identifiers"),
    "AUD105": (Severity.medium, "record or case reference passed through in the clear"),
    "AUD106": (Severity.medium, "column named in the config is missing from the sample"),
    "AUD107": (Severity.low, "a bad date of birth rejects the whole record"),
    "AUD201": (Severity.high, "key or secret referenced from a secure-environment config"),
    "AUD202": (Severity.medium, "low match threshold"),
    "AUD203": (Severity.low, "expected key fingerprint not pinned"),
    "AUD301": (Severity.high, "disclosure threshold below 10"),
    "AUD302": (Severity.high, "rounding off"),
    "AUD303": (Severity.high, "zeros not treated as disclosive"),
    "AUD304": (Severity.high, "release table at record level or outside the release vocabulary"),
    "AUD305": (Severity.medium, "magnitude rules looser than ACRO's defaults"),
    "AUD306": (Severity.high, "release table that `linkage release` refuses"),
}

MIN_THRESHOLD = 10  # smallest publishable cell count (DESIGN.md, ACRO's default)
MIN_MATCH_PROBABILITY = 0.9  # below this, more than 1 in 10 pairs at the threshold are different people


class Finding(BaseModel):
    code: str
    severity: Severity
    title: str
    reason: str
    file: str
    field: str | None = None
    line: int | None = None

    @classmethod
    def of(cls, file: ConfigFile, code: str, reason: str, loc: tuple = ()) -> Finding:
        """A finding about ``file`` at the YAML key path ``loc``; severity and title come from CODES."""
        severity, title = CODES[code]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
        return cls(
            code=code,
            severity=severity,
            title=title,
            reason=reason,
            file=str(file.path),
            field=field,
            line=file.line(loc) if loc else None,
        )


# --- what identifiers look like --------------------------------------------------------------------

# Words (and joined neighbouring words: first_name -> firstname) in a column name.
_PERSON_WORDS = {
    "name", "names", "forename", "forenames", "firstname", "givenname", "surname", "lastname", "familyname",
    "middlename", "fullname", "alias", "dob", "birth", "birthdate", "dateofbirth", "postcode", "postalcode",
    "zip", "address", "addr", "street", "phone", "telephone", "tel", "mobile", "email", "pnc", "cro", "nhs",
    "nino", "ninumber", "nationalinsurance", "passport", "prisonnumber", "prisonernumber", "nomis",
}  # fmt: skip
_FREE_TEXT_WORDS = {
    "notes",
    "note",
    "comment",
    "comments",
    "narrative",
    "text",
    "freetext",
    "remarks",
    "details",
}
_REFERENCE_WORDS = {"id", "ref", "reference", "urn"}

# Upper-case examples a code pattern must not accept (codes are upper-cased before matching).
_PROBES: dict[str, tuple[str, ...]] = {
    "a name": ("JOHN SMITH", "SMITH, JOHN", "MARY-JANE O'NEILL"),
    "a postcode": ("SW1A 1AA", "M1 1AE", "CR2 6XH"),
    "an address": ("12 HIGH STREET",),
    "an email address": ("JOHN.SMITH@EXAMPLE.COM",),
    "a phone number": ("07700 900123", "07700900123", "+44 7700 900123"),
    "a date of birth": ("05/03/1971", "1971-03-05", "05-MAR-1971"),
    "a PNC id": ("01/0012345H", "2001/12345H"),
    "free text": ("SAID ENOUGH AND LEFT THE HOUSE",),
}

# What sampled values are searched for (after upper-casing).
_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "PNC ids": re.compile(r"\b\d{2,4}/\d{1,7}[A-Z]\b"),
    "postcodes": re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}\b"),
    "email addresses": re.compile(r"[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}"),
    "phone numbers": re.compile(r"(?:\+44 ?|\b0)\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}\b|\b\d{10,11}\b"),
    "dates": re.compile(
        r"\b\d{1,2}[/.-](?:\d{1,2}|[A-Z]{3})[/.-](?:19|20)?\d{2}\b|\b(?:19|20)\d{2}-\d{2}-\d{2}\b"
    ),
    "free text": re.compile(r"\b[A-Z]{2,}(?: +[A-Z']+){3,}"),
}


def _words(column: str) -> set[str]:
    """Lower-case words of a column name (snake, kebab, camel case), plus joined neighbours."""
    parts = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", column)]
    joined = {"".join(parts[i : i + n]) for n in (2, 3) for i in range(len(parts) - n + 1)}
    return set(parts) | joined


# --- rules on every file ----------------------------------------------------------------------------


def schema(file: ConfigFile) -> Iterator[Finding]:
    if file.problem:
        yield Finding.of(file, "AUD001", f"The file cannot be checked until this is fixed. {file.problem}")
    elif file.data is not None and file.kind is None:
        yield Finding.of(
            file,
            "AUD002",
            "Its top-level keys are not those of an agency config, a linkage config or a release policy, "
            "so nothing in it was checked. Remove it from the folder, or fix its top-level keys.",
        )


def _walk(data: Any, loc: tuple = ()) -> Iterator[tuple[tuple, Any, Any]]:
    """Every (key path, key, value) in nested mappings and lists."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield (*loc, key), key, value
        yield from _walk(value, (*loc, key))


def bloom_filters(file: ConfigFile) -> Iterator[Finding]:
    """Token spec v1 has no Bloom filters; any request for one (even a schema error) is flagged."""
    for loc, key, value in _walk(file.data):
        if not (isinstance(key, str) and "bloom" in key.lower()) or value in (False, None):
            continue
        if isinstance(value, dict) and (value.get("enabled") is False or value.get("hardening")):
            continue
        yield Finding.of(
            file,
            "AUD003",
            "Bloom-filter encodings of names can be reversed by frequency and pattern attacks unless "
            "hardened (balancing, salting, XOR folding, rehashing), and token spec v1 has none. Remove it.",
            loc,
        )


# --- agency configs --------------------------------------------------------------------------------


def _would_pass(attr, raw: str) -> str | None:
    """A sampled value as it would leave the agency, for code and integer attributes (else None).

    Dates, categories and booleans leave only as a date, a listed value or true/false.
    """
    if isinstance(attr, CodeAttribute):
        code = raw.strip().upper()
        return code if re.match(attr.pattern, code) else None
    if isinstance(attr, IntegerAttribute):
        try:
            value = int(raw.strip())
        except ValueError:
            return None
        in_range = (attr.min is None or value >= attr.min) and (attr.max is None or value <= attr.max)
        return str(value) if in_range else None
    return None


def identifier_columns(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    """Attributes whose column or output name looks like an identifier, free text or a reference.

    Categories and booleans are skipped: only the values listed in the config can leave.
    """
    for i, attr in enumerate(config.attributes):
        if attr.type in ("category", "boolean"):
            continue
        words = _words(attr.column) | _words(attr.out_name)
        loc = ("attributes", i, "column")
        what = f"Column {attr.column!r} passes through in the clear as a {attr.type}"
        if hits := sorted(words & _PERSON_WORDS):
            yield Finding.of(
                file,
                "AUD101",
                f"{what}, and its name ({', '.join(hits)}) suggests a personal identifier. Identifiers "
                "must be declared under `identifiers:` (tokenised) or left out (dropped).",
                loc,
            )
        elif hits := sorted(words & _FREE_TEXT_WORDS):
            yield Finding.of(
                file,
                "AUD102",
                f"{what}, and its name ({', '.join(hits)}) suggests free text, which can hold names, "
                "addresses and phone numbers. Leave it out (it is then dropped).",
                loc,
            )
        elif hits := sorted(words & _REFERENCE_WORDS):
            yield Finding.of(
                file,
                "AUD105",
                f"{what}, and its name ({', '.join(hits)}) suggests a record or case reference: anyone "
                "with access to the agency's system could look the person up. Declare it as "
                "`record_id` or `case_reference` (tokenised) unless it is not a reference.",
                loc,
            )


def permissive_patterns(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    """Code patterns that accept identifier-shaped or free-text values, or anything after a valid code."""
    for i, attr in enumerate(config.attributes):
        if not isinstance(attr, CodeAttribute):
            continue
        loc = ("attributes", i, "pattern")
        accepted = [
            kind for kind, probes in _PROBES.items() if any(re.match(attr.pattern, p) for p in probes)
        ]
        if accepted:
            yield Finding.of(
                file,
                "AUD103",
                f"The pattern of code column {attr.column!r} accepts {', '.join(accepted)}, so such values "
                "would pass in the clear. Narrow it to the code's real format (e.g. '^\\d{3}/\\d{2}$').",
                loc,
            )
        elif not re.search(r"(?<!\\)\$$|\\Z$", attr.pattern):
            yield Finding.of(
                file,
                "AUD103",
                f"The pattern of code column {attr.column!r} does not end with '$', so it checks only the "
                "start of a value: anything written after a valid code passes too. End it with '$'.",
                loc,
            )


def sampled_values(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    """With a sample: pass-through values that look like identifiers; config columns not in the file."""
    if sample is None:
        return
    for i, attr in enumerate(config.attributes):
        passed = [
            v for raw in sample.values.get(attr.column, []) if (v := _would_pass(attr, raw)) is not None
        ]
        kinds = {kind: sum(1 for v in passed if p.search(v)) for kind, p in _VALUE_PATTERNS.items()}
        if found := {k: n for k, n in kinds.items() if n}:
            counts = ", ".join(f"{n} look like {k}" for k, n in found.items())
            yield Finding.of(
                file,
                "AUD104",
                f"In the sample {sample.path.name}, of {len(passed)} values of {attr.column!r} that would "
                f"pass, {counts}. Check the column's content and narrow its pattern or range.",
                ("attributes", i, "column"),
            )
    header = set(sample.header)
    for column in config.source_columns():
        if column not in header:
            yield Finding.of(
                file,
                "AUD106",
                f"Column {column!r} is not in the sample {sample.path.name}: `linkage pseudonymise` would "
                "refuse this file. Check the config against the agency's real extract layout.",
            )


def dob_strict(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    dob = config.identifiers.date_of_birth
    if dob is not None and dob.on_invalid is OnInvalid.reject:
        yield Finding.of(
            file,
            "AUD107",
            "An unreadable date of birth sends the whole row to the rejects file, although its name and "
            "ids could still link it (token spec v2 blanks the value, counts it and refuses the run when "
            "more than --max-blank-rate are blanked). Prefer the default `on_invalid: missing`.",
            ("identifiers", "date_of_birth", "on_invalid"),
        )


AgencyRule = Callable[[ConfigFile, AgencyConfig, Sample | None], Iterable[Finding]]
AGENCY_RULES: tuple[AgencyRule, ...] = (identifier_columns, permissive_patterns, sampled_values, dob_strict)


# --- secure-environment configs (linkage config, release policy) ---------------------------------------

# Setting names (lower case, letters only) that can only mean a key or a secret.
_SECRET_SETTINGS = {
    "key", "keyfile", "keypath", "projectkey", "projectkeyfile", "signingkey", "passphrase", "password",
    "secret",
}  # fmt: skip


def _holds_key_file(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.key")) if path.is_dir() else []


def secrets_referenced(file: ConfigFile) -> Iterator[Finding]:
    """The secure environment must never hold the project key (nor a signing private key)."""
    why = (
        "The secure environment must never hold the project key or an agency's private signing key: "
        "with the project key, tokens can be recomputed from guessed names and the extracts re-identified."
    )
    for loc, key, value in _walk(file.data):
        if isinstance(key, str) and re.sub(r"[^a-z]", "", key.lower()) in _SECRET_SETTINGS:
            yield Finding.of(file, "AUD201", f"Setting {key!r} names a key or secret. {why}", loc)
        elif isinstance(value, str) and value.strip().lower().endswith(".key"):
            yield Finding.of(file, "AUD201", f"Setting {key!r} points at a key file ({value}). {why}", loc)
        elif isinstance(value, str) and (held := _holds_key_file(file.path.parent / value)):
            yield Finding.of(
                file,
                "AUD201",
                f"Folder {value!r} (setting {key!r}) holds key file(s) {', '.join(held)}. {why}",
                loc,
            )


def fingerprint_pinned(file: ConfigFile, config: LinkageConfig) -> Iterator[Finding]:
    if config.extracts.expected_key_fingerprint is None:
        yield Finding.of(
            file,
            "AUD203",
            "The run checks that all extracts share one project key, but not which one: a test key used "
            "by every agency would go unnoticed. Set it to the fingerprint announced by the key custodian.",
            ("extracts", "expected_key_fingerprint"),
        )


def match_threshold(file: ConfigFile, config: LinkageConfig) -> Iterator[Finding]:
    p = config.clustering.threshold_match_probability
    if p != "auto" and p < MIN_MATCH_PROBABILITY:
        yield Finding.of(
            file,
            "AUD202",
            f"Records are joined into one person at a match probability of {p:g}: more than 1 in 10 pairs "
            "near the threshold are different people, whose cases would be merged. Use "
            f"{MIN_MATCH_PROBABILITY} or more unless the quality report shows otherwise.",
            ("clustering", "threshold_match_probability"),
        )


LINKAGE_RULES: tuple[Callable[[ConfigFile, LinkageConfig], Iterable[Finding]], ...] = (
    fingerprint_pinned,
    match_threshold,
)


# --- release policy -----------------------------------------------------------------------------------


def sdc_settings(file: ConfigFile, policy: ReleasePolicy) -> Iterator[Finding]:
    """The policy-wide disclosure control every table of the release goes through."""
    sdc = policy.sdc
    if sdc.threshold < MIN_THRESHOLD:
        yield Finding.of(
            file,
            "AUD301",
            f"Every table publishes cells counting as few as {sdc.threshold} journeys or people: small cells "
            f"can identify someone. Use a threshold of at least {MIN_THRESHOLD}.",
            ("sdc", "threshold"),
        )
    if sdc.rounding_base <= 1:
        yield Finding.of(
            file,
            "AUD302",
            "Every table publishes exact counts: without rounding, differences between tables or releases "
            "can reveal suppressed cells. Round to base 5 (the default).",
            ("sdc", "rounding_base"),
        )
    if not sdc.zeros_disclosive:
        yield Finding.of(
            file,
            "AUD303",
            "Zero cells are published unchecked: a zero can reveal that everyone in a group shares an "
            "outcome (e.g. all suspects in an area were charged). Set `zeros_disclosive: true`, as the "
            "release policy and ACRO do by default.",
            ("sdc", "zeros_disclosive"),
        )
    defaults = SDCRules()
    looser = []
    if sdc.dominance.n < defaults.dominance.n or sdc.dominance.k > defaults.dominance.k:
        looser.append(
            f"dominance ({sdc.dominance.n}, {sdc.dominance.k:g}) instead of "
            f"({defaults.dominance.n}, {defaults.dominance.k:g})"
        )
    if sdc.p_percent < defaults.p_percent:
        looser.append(f"p% {sdc.p_percent:g} instead of {defaults.p_percent:g}")
    if looser:
        loc = ("sdc", "dominance") if sdc.dominance != defaults.dominance else ("sdc", "p_percent")
        yield Finding.of(
            file,
            "AUD305",
            f"The magnitude rules are looser than ACRO's defaults: {'; '.join(looser)}. A mean or total "
            "dominated by one or two people's values (e.g. one very long sentence) can then be published "
            "and reveal them. Keep the defaults unless the output checker agrees.",
            loc,
        )


def _not_in_vocabulary(table: TableSpec) -> list[str]:
    """Names of a table that are no aggregate the release can build (docs/release-guide.md)."""
    return [
        *(n for n in [*table.by, *table.where] if n not in DIMENSIONS),
        *(n for n in table.measures if n not in MEASURES),
        *(n for n in table.statistics if n not in STATISTICS),
    ]


def _detail(exc: Exception, table: TableSpec) -> str:
    """The release check's message without its own "table NAME: " prefix."""
    return str(exc).removeprefix(f"table {table.name}: ")


def release_tables(file: ConfigFile, policy: ReleasePolicy) -> Iterator[Finding]:
    """Each table through the release's own policy check: identifiers and record-level names, names
    outside the release vocabulary (both AUD304), and anything else `linkage release` refuses (AUD306).

    Without journeys.parquet the audit cannot tell a raw journey column (such as a date) from a
    misspelling: both are outside the vocabulary, and the release refuses both.
    """
    for i, table in enumerate(policy.tables):
        try:
            check_policy(policy.model_copy(update={"tables": [table]}), journey_columns=set())
        except DisclosureRefused as exc:
            yield Finding.of(
                file,
                "AUD304",
                f"Table {table.name!r} is at record level: {_detail(exc, table)}. Only aggregate "
                "tables may leave the secure environment; `linkage release` refuses this policy.",
                ("tables", i),
            )
        except ConfigError as exc:
            if outside := _not_in_vocabulary(table):
                yield Finding.of(
                    file,
                    "AUD304",
                    f"Table {table.name!r} names {', '.join(outside)}, which the release vocabulary does "
                    "not define as a dimension, measure or statistic of journeys: a record-level column "
                    "(a raw date, a reference) or a misspelling. Only the names listed in "
                    "docs/release-guide.md can be published; `linkage release` refuses anything else.",
                    ("tables", i),
                )
            else:
                yield Finding.of(
                    file,
                    "AUD306",
                    f"`linkage release` would refuse table {table.name!r}: {_detail(exc, table)}.",
                    ("tables", i),
                )


RELEASE_RULES: tuple[Callable[[ConfigFile, ReleasePolicy], Iterable[Finding]], ...] = (
    sdc_settings,
    release_tables,
)


def check(files: list[ConfigFile], samples: dict[str, Sample]) -> list[Finding]:
    """Every finding for every file: high first, then by file and line."""
    out: list[Finding] = []
    for file in files:
        out += [*schema(file), *bloom_filters(file)]
        if file.kind in (ConfigKind.linkage, ConfigKind.release):
            out += secrets_referenced(file)
        if isinstance(file.config, AgencyConfig):
            sample = samples.get(file.config.agency.name)
            out += [f for rule in AGENCY_RULES for f in rule(file, file.config, sample)]
        if isinstance(file.config, LinkageConfig):
            out += [f for rule in LINKAGE_RULES for f in rule(file, file.config)]
        if isinstance(file.config, ReleasePolicy):
            out += [f for rule in RELEASE_RULES for f in rule(file, file.config)]
    order = list(Severity)
    return sorted(out, key=lambda f: (order.index(f.severity), f.file, f.line or 0))
