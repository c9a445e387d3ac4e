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

from linkage.audit.detect import (
    BIRTHS,
    FREE_TEXT_WORDS,
    PERSON_WORDS,
    REFERENCE_WORDS,
    ConfigFile,
    ConfigKind,
    looks_like_births,
    name_words,
    value_kinds,
)
from linkage.audit.sample import Sample, category_outputs
from linkage.config.agency import AgencyConfig, CategoryAttribute, CodeAttribute, DateAttribute, OnInvalid
from linkage.config.linkage import LinkageConfig
from linkage.config.release import FLOOR_ROUNDING_BASE, FLOOR_THRESHOLD, ReleasePolicy, SDCRules


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
    "AUD108": (Severity.high, "category values listed in the config look like identifiers"),
    "AUD109": (Severity.medium, "record keys come from row numbers"),
    "AUD201": (Severity.high, "key or secret referenced from a secure-environment config"),
    "AUD202": (Severity.medium, "low match threshold"),
    "AUD203": (Severity.low, "expected key fingerprint not pinned"),
    "AUD301": (Severity.high, "disclosure threshold below 10"),
    "AUD302": (Severity.high, "rounding base below 5"),
    "AUD303": (Severity.high, "zeros not treated as disclosive"),
    "AUD305": (Severity.high, "magnitude rules looser than the release floors"),
    "AUD307": (Severity.medium, "cell key perturbation off"),
}

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


def identifier_columns(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    """Attributes of any type whose column or output name looks like an identifier, free text or a
    reference (a category of surnames is still surnames). Booleans are skipped: only true/false leave.
    """
    for i, attr in enumerate(config.attributes):
        if attr.type == "boolean":
            continue
        words = name_words(attr.column) | name_words(attr.out_name)
        loc = ("attributes", i, "column")
        what = f"Column {attr.column!r} passes through in the clear as a {attr.type}"
        if hits := sorted(words & PERSON_WORDS):
            yield Finding.of(
                file,
                "AUD101",
                f"{what}, and its name ({', '.join(hits)}) suggests a personal identifier. Identifiers "
                "must be declared under `identifiers:` (tokenised) or left out (dropped).",
                loc,
            )
        elif hits := sorted(words & FREE_TEXT_WORDS):
            yield Finding.of(
                file,
                "AUD102",
                f"{what}, and its name ({', '.join(hits)}) suggests free text, which can hold names, "
                "addresses and phone numbers. Leave it out (it is then dropped).",
                loc,
            )
        elif hits := sorted(words & REFERENCE_WORDS):
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


def category_values(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    """Without a sample: the values a category lets out are in the config; they must not be identifiers."""
    for i, attr in enumerate(config.attributes):
        if not isinstance(attr, CategoryAttribute):
            continue
        outputs = [v for v in category_outputs(attr).values() if v is not None]
        if found := value_kinds(outputs):
            counts = ", ".join(f"{n} look like {k}" for k, n in found.items())
            yield Finding.of(
                file,
                "AUD108",
                f"Of the {len(set(outputs))} values category {attr.column!r} lets out, {counts}: they would "
                "pass in the clear. Declare the column under `identifiers:` (tokenised) or leave it out.",
                ("attributes", i),
            )


def sampled_values(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    """With a sample: values of any attribute type that would pass and look like identifiers (a date
    attribute's values are dates by design: it is flagged when they lie a generation before the other
    dates, i.e. are dates of birth); config columns not in the file.
    """
    if sample is None:
        return
    dates = {a.column: sample.passing(a) for a in config.attributes if isinstance(a, DateAttribute)}
    for i, attr in enumerate(config.attributes):
        passed = sample.passing(attr)
        found = value_kinds(passed)
        if isinstance(attr, DateAttribute):
            found.pop("dates", None)
            events = [d for column, values in dates.items() if column != attr.column for d in values]
            if looks_like_births(passed, events):
                found[BIRTHS] = len(passed)
        if found:
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


def row_number_keys(file: ConfigFile, config: AgencyConfig, sample: Sample | None) -> Iterator[Finding]:
    if config.identifiers.record_id is None:
        yield Finding.of(
            file,
            "AUD109",
            "No `record_id`: each record's key is keyed from its row number, so a row removed or added "
            "in a later extract changes the key of every row after it. The release's cell key "
            "perturbation draws each unit's noise from that key, so two releases of nearly the same "
            "data get unrelated noise and can be differenced. Name the agency's own stable record id.",
            ("identifiers",),
        )


AgencyRule = Callable[[ConfigFile, AgencyConfig, Sample | None], Iterable[Finding]]
AGENCY_RULES: tuple[AgencyRule, ...] = (
    identifier_columns,
    permissive_patterns,
    category_values,
    sampled_values,
    dob_strict,
    row_number_keys,
)


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
    override = " `linkage release` refuses this policy unless run with --allow-below-floors."
    if sdc.threshold < FLOOR_THRESHOLD:
        yield Finding.of(
            file,
            "AUD301",
            f"Every table publishes cells counting as few as {sdc.threshold} journeys or people: small cells "
            f"can identify someone. Use a threshold of at least {FLOOR_THRESHOLD}.{override}",
            ("sdc", "threshold"),
        )
    if sdc.rounding_base < FLOOR_ROUNDING_BASE:
        yield Finding.of(
            file,
            "AUD302",
            f"Counts are rounded to base {sdc.rounding_base} only: near-exact counts let differences "
            "between tables or releases reveal suppressed cells. "
            f"Round to base {FLOOR_ROUNDING_BASE} or more.{override}",
            ("sdc", "rounding_base"),
        )
    if not sdc.zeros_disclosive:
        yield Finding.of(
            file,
            "AUD303",
            "Zero cells are published unchecked: a zero can reveal that everyone in a group shares an "
            "outcome (e.g. all suspects in an area were charged). Set `zeros_disclosive: true`, as the "
            f"release policy and ACRO do by default.{override}",
            ("sdc", "zeros_disclosive"),
        )
    if not sdc.perturbation.enabled:
        yield Finding.of(
            file,
            "AUD307",
            "Cell key perturbation is off: counts are rounded deterministically, so two releases of data "
            "that differ by one person can be differenced cell by cell (docs/release-guide.md). Keep "
            "`perturbation: {enabled: true}` (the default).",
            ("sdc", "perturbation"),
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
            f"The magnitude rules are looser than the release floors (ACRO's defaults): {'; '.join(looser)}. "
            "A mean or total dominated by one or two people's values (e.g. one very long sentence) can then "
            f"be published and reveal them.{override}",
            loc,
        )


RELEASE_RULES: tuple[Callable[[ConfigFile, ReleasePolicy], Iterable[Finding]], ...] = (sdc_settings,)


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
