"""The plain-words review of each config, as sections of rows that every renderer shares.

For a reviewer who does not read Python: per agency, what happens to each source column; for the
linkage, what is compared and when two records count as one person; for the release, which tables
may leave and under which disclosure control. Built from the validated models, so it says what the
tool will do, not what the config's comments claim.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel

from linkage import __version__
from linkage.audit.detect import ConfigFile, ConfigKind, collect_files, read_config_file
from linkage.audit.findings import Finding, Severity, check
from linkage.audit.sample import Sample, read_sample
from linkage.config.agency import (
    AddressField,
    AgencyConfig,
    BooleanAttribute,
    CategoryAttribute,
    CodeAttribute,
    CsvInput,
    DateAttribute,
    ForenamesField,
    FullNameField,
    IdField,
    IntegerAttribute,
    OnInvalid,
    RecordIdField,
    SexField,
)
from linkage.config.linkage import BlockingRule, Clustering, Condition, LinkageConfig, Term, match_weight
from linkage.config.release import ReleasePolicy
from linkage.errors import ConfigError
from linkage.release.vocabulary import DIMENSIONS, MEASURES, STATISTICS, Measure
from linkage.tokens.spec import RECORD_KEY, SEX, TOKEN_COLUMNS, TOKEN_SPEC_VERSION, WEAK_MARKERS, columns_for


class Section(BaseModel):
    title: str
    intro: str = ""
    columns: list[str]
    rows: list[list[str]]


class FileReview(BaseModel):
    path: str
    kind: ConfigKind | None
    sha256: str
    title: str
    note: str = ""  # why a file was not reviewed
    sections: list[Section] = []


class AuditReport(BaseModel):
    tool_version: str = __version__
    token_spec_version: str = TOKEN_SPEC_VERSION
    files: list[FileReview]
    findings: list[Finding]

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def exit_code(self) -> int:
        """1 if any high finding, else 0."""
        return 1 if self.count(Severity.high) else 0


# --- agency --------------------------------------------------------------------------------------------

_TOKEN_DESCRIPTIONS = {c.name: c.description for c in TOKEN_COLUMNS} | {
    RECORD_KEY: "the agency's record id, keyed per agency"
}
_ON_INVALID = {
    OnInvalid.reject: "row rejected (kept in the agency)",
    OnInvalid.missing: "value blanked, counted",
}
# Short names of the columns a linkage compares, for conditions in plain words.
_PLAIN = {
    "fn1": "first forename",
    "fn2": "second forename",
    "fn1_canon": "first forename after nicknames (Bob = Robert)",
    "fn1_phon": "sound of the first forename",
    "fn1_pre3": "first 3 letters of the first forename",
    "sn": "surname",
    "sn_phon": "sound of the surname",
    "sn_pre3": "first 3 letters of the surname",
    "sn_p1": "first part of the surname",
    "sn_p2": "last part of the surname",
    "dob": "date of birth",
    "dob_swap": "date of birth with day and month swapped",
    "dob_ym": "year and month of birth",
    "dob_yd": "year and day of birth",
    "dob_md": "month and day of birth",
    "pc": "postcode",
    "pc_sector": "postcode sector",
    "pc_district": "postcode district",
    "pnc": "PNC id",
    "case_ref": "case reference",
    SEX: "sex",
}


def _identifier_rows(config: AgencyConfig) -> list[list[str]]:
    """One row per identifier field; the token columns each produces come from the token spec."""
    rows = []
    people = [("", config.identifiers)] + [(f"victim {i}: ", v) for i, v in enumerate(config.victims, 1)]
    for who, identifiers in people:  # victims' columns become victim-mention rows, tokenised alike
        for name in type(identifiers).model_fields:
            if name == "attributes":  # a victim's own attributes: listed with the attributes
                continue
            spec = getattr(identifiers, name)
            for item in spec if isinstance(spec, list) else [spec]:
                if item is not None:
                    row = _identifier_row(name, item)
                    rows.append([row[0], who + row[1], *row[2:]])
    return rows


def _identifier_row(name: str, spec) -> list[str]:
    if isinstance(spec, RecordIdField):  # a row without its id (or a part of it) is always rejected
        detail = f"{RECORD_KEY}: {_TOKEN_DESCRIPTIONS[RECORD_KEY]}"
        return [
            " + ".join(spec.parts),
            "tokenised (record id)",
            RECORD_KEY,
            detail,
            _ON_INVALID[OnInvalid.reject],
        ]
    columns = spec.columns if isinstance(spec, ForenamesField | AddressField) else [spec.column]
    if isinstance(spec, SexField):
        recode = ", ".join(f"{raw} → {code or 'missing'}" for raw, code in spec.map.items())
        return [", ".join(columns), "kept in the clear as a code", SEX, recode, _ON_INVALID[spec.on_invalid]]
    if isinstance(spec, IdField):
        name = spec.type.value
        tokens = list(columns_for(name, spec.family))
    else:
        tokens = [RECORD_KEY] if name == "record_id" else list(columns_for(name))
    details = [
        f"{t}: {_TOKEN_DESCRIPTIONS.get(t, 'weak-evidence marker' if t in WEAK_MARKERS else t)}"
        for t in tokens
    ]
    if isinstance(spec, FullNameField):
        details.insert(0, f"one column, layouts {', '.join(repr(v.value) for v in spec.layouts)}")
    if name == "date_of_birth":
        details.insert(0, f"read with formats {', '.join(spec.formats)}")
    return [
        ", ".join(columns),
        f"tokenised ({name.replace('_', ' ')})",
        ", ".join(tokens),
        "\n".join(details),
        _ON_INVALID[spec.on_invalid],
    ]


def _attribute_detail(attr) -> str:
    if isinstance(attr, DateAttribute):
        return f"a date read with formats {', '.join(attr.formats)}"
    if isinstance(attr, CodeAttribute):
        return f"upper-cased; must match {attr.pattern}"
    if isinstance(attr, CategoryAttribute):
        outputs = attr.values or sorted({v for v in (attr.map or {}).values() if v is not None})
        recoded = f" (recoded from {len(attr.map)} raw values)" if attr.map else ""
        return f"one of: {', '.join(outputs)}{recoded}"
    if isinstance(attr, IntegerAttribute):
        low = "" if attr.min is None else str(attr.min)
        high = "" if attr.max is None else str(attr.max)
        return f"a whole number {low}..{high}" if low or high else "any whole number"
    if isinstance(attr, BooleanAttribute):
        return f"true if {'/'.join(attr.true_values)}, false if {'/'.join(attr.false_values)}"
    raise TypeError(attr)  # pragma: no cover - the discriminated union admits no other type


def _facts(title: str, rows: list[list[str]], intro: str = "") -> Section:
    """A two-column section of plain statements."""
    return Section(title=title, intro=intro, columns=["", ""], rows=rows)


def review_agency(config: AgencyConfig, fingerprint: str | None, sample: Sample | None) -> list[Section]:
    fmt = config.input
    source = (
        f"CSV, {fmt.encoding}, delimiter {fmt.delimiter!r}, quote {fmt.quotechar!r}"
        if isinstance(fmt, CsvInput)
        else "Parquet"
    )
    agency = config.agency
    key = (
        f"fingerprint expected by the linkage config: {fingerprint}"
        if fingerprint
        else "no audited linkage config pins a key fingerprint"
    )
    overview = _facts(
        "Overview",
        [
            ["agency", f"{agency.name} ({agency.kind.value}) {agency.description}".strip()],
            ["input", source],
            ["read as missing", ", ".join(repr(v) for v in config.missing_values)],
            ["project key", f"tokens are keyed HMAC-SHA256 under the key the agency holds; {key}"],
        ],
    )
    rows = _identifier_rows(config)
    own = [(f"victim {i}'s own, ", a) for i, v in enumerate(config.victims, 1) for a in v.attributes]
    for who, attr in [("", a) for a in config.attributes] + own:
        on_victims = "; also on victim-mention rows" if attr.victim else ""
        rows.append(
            [
                attr.column,
                f"passed through ({who}{attr.type})",
                attr.out_name,
                _attribute_detail(attr) + on_victims,
                _ON_INVALID[attr.on_invalid],
            ]
        )
    if config.age_band:
        band = config.age_band
        dob = config.identifiers.date_of_birth
        rows.append(
            [
                f"{dob.column} + {band.at}" if dob else band.at,
                "derived in the clear",
                band.name,
                f"age at {band.at} in bands {', '.join(band.labels())}; the date of birth never passes",
                "",
            ]
        )
    if sample is None:
        rows.append(
            [
                "every other column",
                "dropped",
                "",
                "never leaves the agency; listed by name in the manifest",
                "",
            ]
        )
        intro = "Give --sample AGENCY=FILE to list the dropped columns of a real extract."
    else:
        dropped = sample.dropped(config)
        rows += [[c, "dropped", "", "never leaves the agency", ""] for c in dropped]
        intro = f"The sample {sample.path.name} has {len(sample.header)} columns; {len(dropped)} are dropped."
    columns = Section(
        title="What happens to each column",
        intro=intro,
        columns=["source column", "what happens", "becomes", "details", "if invalid"],
        rows=rows,
    )
    return [overview, columns]


# --- linkage ---------------------------------------------------------------------------------------------


def _term_words(text: str) -> str:
    term = Term(text)  # config terms are parsed Terms; the annotation says str
    if not term.crossed:
        return f"same {_PLAIN.get(term, term)}"  # v2 columns (addresses, id_<family>) by their name
    return f"{_PLAIN.get(term.left, term.left)} of one = {_PLAIN.get(term.right, term.right)} of the other"


def _condition_words(condition: Condition | BlockingRule) -> str:
    if condition.equal or isinstance(condition, BlockingRule):
        return " AND ".join(_term_words(t) for t in condition.equal)
    return "at least one of: " + " OR ".join(_term_words(t) for t in condition.equal_any)


def _clustering_words(clustering: Clustering) -> str:
    if clustering.method == "connected_components":
        return (
            "plain connected components: records joined by linked pairs, directly or through others, "
            "are one person"
        )
    columns = " or ".join(
        _PLAIN.get(r.column, r.column)
        + (f" (unless {', '.join(_term_words(Term.parse(t)) for t in r.unless_any)})" if r.unless_any else "")
        + (" (yields to a pair the model links directly)" if r.direct_link_overrides else "")
        for r in clustering.conflict_rules()
    )
    if not clustering.conflict_rules():
        columns = (
            "valid typed id (PNC, CRO, NI, NHS) or date of birth (derived from the extracts at run time; "
            "weak evidence exempt; a date of birth yields to a pair the model links directly: see the "
            "run's model.yaml)"
        )
    unless = (
        f", unless a pair's match weight ≥ {clustering.override_match_weight:g}"
        if math.isfinite(clustering.override_match_weight)
        else " (no override)"
    )
    return (
        "records joined by pairs at or above the threshold, strongest first; never two different "
        f"{columns} values in one person{unless}"
    )


def review_linkage(config: LinkageConfig) -> list[Section]:
    ex, be, t = config.extracts, config.backend, config.training
    overview = _facts(
        "Overview",
        [
            ["description", config.description],
            ["extracts", f"{', '.join(ex.agencies)} from {ex.directory}; each verified first"],
            ["trusted agency keys", ex.trusted_keys or "-"],
            ["key fingerprint expected", ex.expected_key_fingerprint or "not pinned"],
            ["engine", f"{be.engine.value}, {be.threads} threads, memory limit {be.memory_limit}"],
            ["working database", "kept after the run" if be.keep_database else "deleted after the run"],
        ],
        intro="The linkage sees keyed tokens (numbers) and the sex code only; it asks whether two are equal.",
    )
    comparisons = []
    for comp in config.comparisons:
        missing = " or ".join(_PLAIN.get(c, c) for c in comp.missing_when)
        comparisons.append(
            [comp.name, "missing", "no evidence either way", f"{missing} missing on either record"]
        )
        for n, level in enumerate(comp.levels, start=1):
            tf = "; rarer values count for more" if level.term_frequency else ""
            comparisons.append(["", str(n), level.label, _condition_words(level) + tf])
        comparisons.append(["", "else", "all other cases", "usually evidence against"])
    blocking = []
    for rule in config.blocking_rules:
        when = _condition_words(rule)
        if rule.either_missing:
            when += f", where {' or '.join(rule.either_missing)} is missing on one record"
        blocking.append([rule.name, when, rule.description])
    lam = "; ".join(_condition_words(r) for r in t.deterministic_rules)
    training = _facts(
        "Training",
        [
            ["share of pairs that match", f"from near-certain matches ({lam}), taken to be "
             f"{t.deterministic_recall:.0%} of all true pairs"],
            ["chance agreement (u)", f"from {t.u_max_pairs:,.0f} random pairs, seed {t.seed}"],
            ["agreement among matches (m)", "estimated over pairs with: "
             + "; ".join(_condition_words(r) for r in t.em_rules)],
            ["evidence that comes together", (
                "; ".join(f"{g.name}: {', '.join(g.comparisons)}" for g in t.correlated)
                or "derived at run time: surname, date of birth and place (unless omitted)")
             + ". Pairs agreeing on all of a group count for less, by how much more often different "
             "people (twins, relatives at one address) agree on all of them than chance says, "
             "measured at run time against a checked id, e.g. the PNC (quality report)"],
        ],
    )  # fmt: skip
    c = config.clustering
    p = c.threshold_match_probability
    linked = (
        f"match probability ≥ {p:g} (match weight ≥ {match_weight(p):.1f})"
        if p != "auto"
        else "chosen by the model at run time: the lowest threshold at which the model's own estimate of "
        f"precision among linked pairs reaches {c.auto_threshold.target_precision:g} (value and expected "
        "precision/recall in the quality report)"
    )
    clustering = _facts(
        "Clustering",
        [
            ["linked pair", linked],
            [f"people ({config.clustering.method})", _clustering_words(config.clustering)],
        ],
    )
    return [
        overview,
        Section(
            title="Comparisons",
            intro="A pair lands in the first level that holds.",
            columns=["comparison", "level", "label", "holds when"],
            rows=comparisons,
        ),
        Section(
            title="Blocking rules",
            intro="Only pairs meeting at least one rule are scored.",
            columns=["rule", "pairs compared when", "description"],
            rows=blocking,
        ),
        training,
        clustering,
    ]


# --- release policy --------------------------------------------------------------------------------------


def _meanings(policy: ReleasePolicy) -> list[list[str]]:
    """Each name the policy uses, once, with what it means in the release vocabulary."""
    rows: dict[tuple[str, str], str] = {}
    for t in policy.tables:
        for kind, names, vocabulary in (
            ("breakdown or condition", [*t.by, *t.where], DIMENSIONS),
            ("count", t.measures, MEASURES),
            ("statistic", t.statistics, STATISTICS),
        ):
            for name in names:
                entry = vocabulary[name]  # the policy model admits vocabulary names only
                if isinstance(entry, Measure):
                    meaning = f"{entry.label}: {entry.description}"
                else:
                    meaning = entry.description
                rows.setdefault((name, kind), meaning)
    return [[name, kind, meaning] for (name, kind), meaning in rows.items()]


def review_release(policy: ReleasePolicy) -> list[Section]:
    sdc = policy.sdc
    rounding = (
        f"every published count is rounded to a multiple of {sdc.rounding_base}; totals are rounded "
        "on their own"
        if sdc.rounding_base > 1
        else "off: exact counts are published"
    )
    rules = _facts(
        "Disclosure control (every table)",
        [
            ["policy", f"{policy.title}{f', published by {policy.publisher}' if policy.publisher else ''}"],
            ["threshold", f"a count of fewer than {sdc.threshold} journeys, or of fewer than {sdc.threshold} "
             "distinct people, is suppressed"],
            ["rounding", rounding],
            ["zero cells", "suppressed (a zero can reveal that a whole group shares an outcome)"
             if sdc.zeros_disclosive else "published"],
            ["dominance", f"a magnitude (e.g. total custody days) is suppressed when its {sdc.dominance.n} "
             f"largest contributions exceed {sdc.dominance.k:.0%} of it"],
            ["p% rule", f"a magnitude is suppressed when, without its two largest contributions, it is "
             f"less than {sdc.p_percent:.0%} of the largest"],
            ["secondary suppression", "more cells are suppressed until no suppressed cell can be worked out "
             "from a table's margins, checked exactly for groups of up to "
             f"{sdc.linear_audit_max_cells:,} suppressed cells"],
            ["cell key perturbation", "each count is randomly rounded by a key of the journeys it counts "
             f"(the same journeys, the same value in every release); means and quartiles to "
             f"{sdc.perturbation.magnitude_base} days" if sdc.perturbation.enabled else "off"],
        ],
        intro="Applied by `linkage release` to every cell before anything is written; ACRO then re-checks "
        "every table for the output checker.",
    )  # fmt: skip
    rows = [
        [
            f"{t.name}\n{t.title}",
            "; ".join(f"{d} = {v}" for d, v in t.where.items()) or "all journeys",
            ", ".join(t.measures),
            ", ".join(t.by) or "(one total)",
            ", ".join(t.statistics),
        ]
        for t in policy.tables
    ]
    tables = Section(
        title="Tables that may be published",
        intro="Each cell counts case journeys in the table's population; every margin ('All') is "
        "published too.",
        columns=["table", "population", "counts", "broken down by", "per-cell statistics"],
        rows=rows,
    )
    names = Section(
        title="What the names mean",
        intro="From the release vocabulary (docs/release-guide.md): nothing else can be published.",
        columns=["name", "used as", "meaning"],
        rows=_meanings(policy),
    )
    return [rules, tables, names]


# --- the whole audit ---------------------------------------------------------------------------------------


def review_file(file: ConfigFile, fingerprint: str | None, sample: Sample | None) -> FileReview:
    review = FileReview(path=str(file.path), kind=file.kind, sha256=file.sha256, title=file.path.name)
    if isinstance(file.config, AgencyConfig):
        review.title = f"Agency config: {file.config.agency.name}"
        review.sections = review_agency(file.config, fingerprint, sample)
    elif isinstance(file.config, LinkageConfig):
        review.title = "Linkage config"
        review.sections = review_linkage(file.config)
    elif isinstance(file.config, ReleasePolicy):
        review.title = "Release policy"
        review.sections = review_release(file.config)
    else:
        review.note = "not reviewed: see the findings"
    return review


def run_audit(paths: list[Path], sample_paths: dict[str, Path] | None = None) -> AuditReport:
    """Review and check every config under ``paths``; ``sample_paths`` maps agency name -> raw extract."""
    files = [read_config_file(p) for p in collect_files(paths)]
    agencies = {f.config.agency.name: f.config for f in files if isinstance(f.config, AgencyConfig)}
    samples: dict[str, Sample] = {}
    for agency, path in (sample_paths or {}).items():
        if agency not in agencies:
            raise ConfigError(
                f"--sample {agency}=...: no valid agency config named {agency!r} is being audited"
            )
        samples[agency] = read_sample(agencies[agency], path)
    fingerprints = [
        f.config.extracts.expected_key_fingerprint for f in files if isinstance(f.config, LinkageConfig)
    ]
    fingerprint = next((fp for fp in fingerprints if fp), None)
    reviews = [
        review_file(
            f, fingerprint, samples.get(f.config.agency.name) if isinstance(f.config, AgencyConfig) else None
        )
        for f in files
    ]
    return AuditReport(files=reviews, findings=check(files, samples))
