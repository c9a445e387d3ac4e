"""The model comes from the data: comparisons, blocking candidates, training and conflict rules are
derived from the token families present and populated in the verified extracts.

A column is *usable* when at least `derive.min_coverage` of all records hold it (the manifests'
`token_coverage`, or a count over the extract for columns a manifest does not count, such as `sex`
and the weak-evidence markers); with `link_type: link_only` it must also be held by two sources.
Every comparison level, blocking rule, training rule and conflict rule that reads an unusable column
is left out with a note for the report, whether it was derived or written in the config: a family
absent from the data is never a crash. The linkage config then overrides the derived parts (see
config/linkage.py for replace vs merge per section).

The candidate blocking rules are ordered from the most specific to the broadest; which of them are
used is decided at run time under the comparison budget (`choose_blocking`), by counting the pairs
each one generates with Splink's own counter.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow.parquet as pq
import yaml
from splink import Linker

from linkage.config.linkage import (
    GENERIC_ID,
    PARTY_COLUMNS,
    VICTIM_MENTION,
    WEAK_MARKERS,
    BlockingRule,
    Clustering,
    Comparison,
    ConflictRule,
    Correlated,
    Level,
    LinkageConfig,
    Term,
    Training,
    column_family,
)
from linkage.errors import ConfigError
from linkage.link.backend import party_sql
from linkage.link.model import (
    blocking_sql,
    comparison_columns,
    instrument_column,
    rule_columns,
    settings,
    uncountable,
)
from linkage.tokens.spec import MENTION_OF, ROLE, VICTIM_INDEX

if TYPE_CHECKING:
    # the one module allowed Splink's private API (from the install issue; typing only here)
    from linkage.link.splink_adapter import SplinkDataFrame

TYPED_IDS = ("pnc", "cro", "ni", "nhs")  # national ids with a check character: valid ones are strong


@dataclass
class Coverage:
    """Records per source and non-missing values per column and source."""

    records: dict[str, int]
    held: dict[str, dict[str, int]]  # column -> source -> non-missing values

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def share(self, column: str) -> float:
        return sum(self.held.get(column, {}).values()) / self.total if self.total else 0.0

    def sources(self, column: str) -> int:
        return sum(1 for n in self.held.get(column, {}).values() if n > 0)


def read_coverage(extracts: dict[str, Path]) -> Coverage:
    """Coverage of every comparable column and weak marker in the extracts (Parquet + manifest).

    Token columns are counted by the agency at pseudonymisation (`token_coverage` in the manifest,
    which verification has tied to these bytes); other columns are counted here.
    """
    records: dict[str, int] = {}
    held: dict[str, dict[str, int]] = {}
    for source, parquet in extracts.items():
        parquet = Path(parquet)
        manifest_path = parquet.with_name(parquet.name.removesuffix(".parquet") + ".manifest.json")
        counted = json.loads(manifest_path.read_text())["token_coverage"] if manifest_path.exists() else {}
        names = pq.read_schema(parquet).names
        wanted = [c for c in names if column_family(c) is not None or c in WEAK_MARKERS]
        to_count = [c for c in wanted if c not in counted]
        # column names come from the schema and passed column_family / WEAK_MARKERS: safe identifiers
        counts = "".join(f", count({c})" for c in to_count)
        # victim mentions, as loaded (VICTIM_MENTION): counted in the same scan
        victims = f", count(*) FILTER (WHERE {ROLE} = 'victim')" if ROLE in names else ""
        with duckdb.connect() as con:  # its own connection: never the process-wide default one
            row = con.execute(
                f"SELECT count(*){counts}{victims} FROM read_parquet(?)", [str(parquet)]
            ).fetchall()[0]
            if victims:
                held.setdefault(VICTIM_MENTION, {})[source] = int(row[-1])
                row = row[:-1]
            if {MENTION_OF, VICTIM_INDEX} <= set(names):  # victim mentions: the other party, as loaded
                party = party_sql("read_parquet(?)", set(names))
                counts = ", ".join(f"count({c})" for c in PARTY_COLUMNS)
                row_party = con.execute(f"SELECT {counts} FROM ({party})", [str(parquet)])
                for c, n in zip(PARTY_COLUMNS, row_party.fetchall()[0], strict=True):
                    held.setdefault(c, {})[source] = int(n)
        records[source] = int(row[0])
        for c, n in zip(to_count, row[1:], strict=True):
            held.setdefault(c, {})[source] = int(n)
        for c in wanted:
            if c in counted:
                held.setdefault(c, {})[source] = int(counted[c])
    return Coverage(records, held)


@dataclass
class DerivedModel:
    """A fully resolved config (every section filled) and what was left out, and why."""

    config: LinkageConfig
    usable: set[str]
    notes: list[str] = field(default_factory=list)
    budget: float = 0.0  # comparisons the blocking rules may generate (0: rules fixed by the config)


def _level(label: str, *equal: str, tf: str | None = None, any_of: bool = False) -> Level:
    key = "equal_any" if any_of else "equal"
    return Level(label=label, term_frequency=tf, **{key: list(equal)})


# where a person lives, most specific first: (label, column, term-frequency adjusted)
PLACE_LEVELS = (
    ("same house and street", "addr_house", True),
    ("same postcode", "pc", True),
    ("same street", "addr_street", True),
    ("same postcode sector", "pc_sector", False),
    ("same postcode district", "pc_district", False),
    ("same town", "addr_town", True),
)


def _place(usable: set[str]) -> Comparison:
    """One comparison for the address, postcode and town: they are one fact about a person.

    Household members share all of them at once, so scoring each as independent evidence counted one
    home three times (pseudopeople: 454 pairs of relatives linked on surname + home alone). The most
    specific part that agrees is the level; the pair is neutral only when no part agrees and the
    first part held (postcode, else street, ...) is missing on either record.
    """
    # none usable: the full comparison, which the trimming leaves out with a note
    levels = [(label, c, tf) for label, c, tf in PLACE_LEVELS if c in usable] or list(PLACE_LEVELS)
    key = next((c for c in ("pc", "addr_street", "addr_house", "addr_town") if c in usable), "pc")
    return Comparison(
        name="place",
        description="Where the person lives: house and street, postcode, street, postcode sector or "
        "district, town (nested: the most specific agreement counts; people move, so a weaker one "
        "is still evidence).",
        missing_when=[key],
        unless_any=[c for _, c, _ in levels if c != key],
        levels=[_level(label, c, tf=c if tf else None) for label, c, tf in levels],
    )


def _candidate_comparisons(generic_ids: list[str], usable: set[str]) -> list[Comparison]:
    """Every comparison the derivation knows, with every level; unusable parts are removed later."""
    comparisons = [
        Comparison(
            name="forename",
            description="First forename, allowing nicknames, middle names used as first names and swaps.",
            missing_when=["fn1"],
            levels=[
                _level("same first forename", "fn1", tf="fn1"),
                _level("same after nicknames and spelling variants (Bob = Robert)", "fn1_canon"),
                _level("middle name used as first name", "fn1=fn2", any_of=True),
                _level("forename and surname swapped", "fn1=sn", "sn=fn1"),
                # names entered in the wrong fields with a typo in one of them: one name crossed over.
                # Only here, not in `surname` too, so that one crossed name counts once
                _level("one name crossed over to the other field", "fn1=sn", any_of=True),
                _level("sounds the same", "fn1_phon"),
                _level("same first three letters", "fn1_pre3"),
            ],
        ),
        Comparison(
            name="surname",
            description="Surname, allowing one part of a double-barrelled name, swaps and misspellings.",
            missing_when=["sn"],
            levels=[
                _level("same surname", "sn", tf="sn"),
                _level(
                    "one part of a double-barrelled surname",
                    "sn_p1=sn",
                    "sn_p2=sn",
                    "sn_p1",
                    "sn_p2",
                    any_of=True,
                ),
                _level("forename and surname swapped", "sn=fn1", "fn1=sn"),
                _level("sounds the same", "sn_phon"),
                _level("same first three letters", "sn_pre3"),
            ],
        ),
        Comparison(
            name="date_of_birth",
            description="Date of birth, allowing a day/month transposition or one wrong part. Term "
            "frequency discounts placeholder dates shared by many records.",
            missing_when=["dob"],
            # token spec v2: a date valid only with day and month swapped has dob NULL and the date in
            # dob_swap; it still agrees with a record holding that date (or the same swapped reading)
            unless_any=["dob=dob_swap", "dob_swap"],
            levels=[
                _level("same date of birth", "dob", tf="dob"),
                _level("day and month transposed", "dob=dob_swap", "dob_swap", any_of=True),
                # one level for 'one part differs': each alone is too rare to be trained on most data
                _level("two of year, month and day agree", "dob_ym", "dob_md", "dob_yd", any_of=True),
            ],
        ),
        _place(usable),
    ]
    for typed in TYPED_IDS:
        comparisons.append(
            Comparison(
                name=typed,
                description=f"{typed.upper()} id (checked): strong evidence when both records have one",
                missing_when=[typed],
                levels=[_level(f"same {typed.upper()}", typed)],
            )
        )
    for column in generic_ids:
        family = column.removeprefix("id_")  # generic_ids are the columns GENERIC_ID matched
        comparisons.append(
            Comparison(
                name=column,
                description=f"Generic id of family '{family}' (no check character: typos are possible).",
                missing_when=[column],
                levels=[_level(f"same {family}", column, tf=column)],
            )
        )
    comparisons += [
        Comparison(
            name="case_ref",
            description="Case reference shared by the agencies handling one case.",
            missing_when=["case_ref"],
            levels=[_level("same case reference", "case_ref")],
        ),
        Comparison(
            name="other_party",
            description="The other party on the crime: a victim's suspect, a suspect's first victim "
            "(victim mentions only). Most repeat victims are harmed again by the same person, and a "
            "counter-allegation names the same two people the other way round; a different party is "
            "weak evidence against (people have new partners).",
            missing_when=["party_dob"],
            levels=[
                _level("same other party (surname and date of birth)", "party_sn", "party_dob"),
                _level("same other party (forename and date of birth)", "party_fn1", "party_dob"),
            ],
        ),
        Comparison(
            name="sex",
            description="Recorded sex (M/F/X). A mismatch counts against, a little.",
            missing_when=["sex"],
            levels=[_level("same sex", "sex")],
        ),
    ]
    if VICTIM_MENTION in usable:
        comparisons.append(
            Comparison(
                name="record_roles",
                description="The roles of the two records: both victim mentions, both the agencies' own "
                "subjects (suspects, defendants, prisoners, offenders), or one of each. Not evidence "
                "about the person: it lets the model learn how often each kind of pair is one person "
                "(a victim is named on fewer records than a suspect), one prior per kind of pair.",
                missing_when=[ROLE],
                levels=[
                    _level("both victim mentions", VICTIM_MENTION),
                    _level("both subjects", ROLE),
                ],
            )
        )
    return comparisons


def _rule(
    name: str,
    *equal: str,
    either_missing: Iterable[str] = (),
    description: str = "",
    cap: int | None = None,
) -> BlockingRule:
    return BlockingRule(
        name=name,
        equal=list(equal),
        either_missing=list(either_missing),
        description=description,
        max_block_size=cap,
    )


def _candidate_blocking(generic_ids: list[str], cap: int) -> list[BlockingRule]:
    """Blocking candidates, most specific first: ids, then names with date parts, then names with
    addresses, then names alone (kept only if the budget allows).

    The broad rules (names alone, a name with part of a date, a birthday, postcode or house alone)
    carry the cap on over-common values (``cap`` records sharing a value): without it their pairs
    grow with the square of the records (John Smith, 01/01/1980, a hostel's postcode).
    """
    rules = [_rule(c, c, description=f"same {c}") for c in (*TYPED_IDS, *generic_ids, "case_ref")]
    rules += [
        _rule("surname_birthday", "sn", "dob"),
        _rule("forename_birthday", "fn1_canon", "dob", description="catches surname changes"),
        _rule("surname_birth_month", "sn", "dob_ym", "fn1_pre3", description="a mistyped day"),
        _rule(
            "surname_start_birth_year_day", "sn_pre3", "dob_yd", "fn1_pre3", description="a mistyped month"
        ),
        _rule("surname_sound_birthday", "sn_phon", "dob_md", "fn1_pre3", description="a mistyped year"),
        _rule("dob_transposed_surname_start", "dob=dob_swap", "sn_pre3"),
        _rule("names_swapped_dob", "fn1=sn", "dob"),
        _rule("postcode_forename_start", "pc", "fn1_pre3"),
        _rule("postcode_surname_start", "pc", "sn_pre3"),
        _rule("address_forename_start", "addr_house", "fn1_pre3"),
        _rule("address_surname_start", "addr_house", "sn_pre3"),
        _rule("dob_postcode_district", "dob", "pc_district"),
        _rule("dob_town", "dob", "addr_town"),
        _rule("names_postcode_district", "fn1_canon", "sn", "pc_district"),
        _rule("names_town", "fn1_canon", "sn", "addr_town"),
        _rule("name_sounds_birth_year_month", "fn1_phon", "sn_phon", "dob_ym"),
        _rule("name_sounds_postcode_sector", "fn1_phon", "sn_phon", "pc_sector"),
        _rule("name_sounds_street", "fn1_phon", "sn_phon", "addr_street"),
        _rule("name_starts_postcode_district", "fn1_pre3", "sn_pre3", "pc_district"),
        _rule("name_starts_town", "fn1_pre3", "sn_pre3", "addr_town"),
        _rule("street_forename_sound", "addr_street", "fn1_phon"),
        # broader rules, each tolerating an error in a name AND in the date or address, capped on
        # over-common values: taken only while the budget allows (all of them on small studies)
        _rule("names", "fn1_canon", "sn", description="names alone, common ones capped", cap=cap),
        _rule("surname_forename_start", "sn", "fn1_pre3", cap=cap),
        _rule("forename_surname_start", "fn1_canon", "sn_pre3", cap=cap),
        _rule("name_sounds", "fn1_phon", "sn_phon", cap=cap),
        _rule("surname_sound_birth_month", "sn_phon", "dob_ym", cap=cap),
        _rule("forename_start_birthday", "fn1_pre3", "dob_md", cap=cap),
        _rule("surname_start_birth_month", "sn_pre3", "dob_ym", cap=cap),
        _rule("postcode", "pc", cap=cap),
        _rule("house", "addr_house", cap=cap),
        _rule("birthday", "dob", cap=cap),
    ]
    return rules


def _trim_comparison(comp: Comparison, usable: set[str], notes: list[str]) -> Comparison | None:
    """The comparison without the levels it cannot use; None when its key column is unusable."""
    lacking = [c for c in comp.missing_when if c not in usable]
    if lacking:
        notes.append(f"comparison '{comp.name}' left out: {', '.join(lacking)} absent or too sparse")
        return None
    levels = []
    for level in comp.levels:
        terms = [*level.equal, *level.equal_any]
        if level.equal_any:
            # the model's validators made every term a Term (the fields are declared list[str])
            kept = [eq for eq in level.equal_any if Term(eq).columns <= usable]
            if not kept:
                continue
            level = level.model_copy(update={"equal_any": kept})
        elif not all(Term(eq).columns <= usable for eq in terms):
            continue
        if level.term_frequency and level.term_frequency not in usable:
            level = level.model_copy(update={"term_frequency": None})
        levels.append(level)
    if not levels:
        notes.append(f"comparison '{comp.name}' left out: none of its levels has usable columns")
        return None
    unless = [eq for eq in comp.unless_any if Term(eq).columns <= usable]
    return comp.model_copy(update={"levels": levels, "unless_any": unless})


def _usable_rules(
    rules: list[BlockingRule], usable: set[str], what: str, notes: list[str]
) -> list[BlockingRule]:
    kept = []
    for rule in rules:
        lacking = sorted(rule_columns(rule) - usable)
        if lacking:
            notes.append(f"{what} '{rule.name}' left out: {', '.join(lacking)} absent or too sparse")
        else:
            kept.append(rule)
    return kept


def _merge_by_name(derived: list[Comparison], given: list[Comparison], notes: list[str]) -> list[Comparison]:
    """The config's comparisons replace the derived ones of the same name; a derived comparison keyed
    on a column a config comparison of another name is keyed on (``missing_when``) steps aside too,
    so one field is never scored twice (a v1 file's `postcode` and the derived `place`)."""
    by_name = {c.name: c for c in given}
    keyed = {c for comp in given for c in comp.missing_when}
    merged = []
    for comp in derived:
        if comp.name in by_name:
            merged.append(by_name.pop(comp.name))
        elif shared := sorted(keyed & set(comp.missing_when)):
            notes.append(
                f"comparison '{comp.name}' left out: a config comparison is keyed on {', '.join(shared)}"
            )
        else:
            merged.append(comp)
    return merged + list(by_name.values())


def _deterministic(usable: set[str], generic_ids: list[str], everywhere: set[str]) -> list[BlockingRule]:
    """Near-certain matches for lambda: a shared id, or the same names and date of birth (and place).

    The place is added only when every source holds it (``everywhere``): a rule that one source
    cannot meet finds matches within the others only, and lambda would be counted from a fraction
    of the links (census x SSA: SSA holds no postcode; lambda came out 30 times too small).
    """
    # (an absent id family is already noted once, for its comparison)
    rules = [_rule(f"same_{c}", c) for c in (*TYPED_IDS, *generic_ids) if c in usable]
    place = next((c for c in ("pc", "addr_house") if c in usable and c in everywhere), None)
    names_dob = ["fn1", "sn", "dob"] + ([place] if place else [])
    rules.append(_rule("same_name_dob" + (f"_{place}" if place else ""), *names_dob))
    return rules


def _em_passes(comparisons: list[Comparison], usable: set[str], generic_ids: list[str]) -> list[BlockingRule]:
    """Fewest passes (from a fixed candidate order) that leave no comparison untrained."""
    candidates = [
        _rule("em_dob", "dob"),
        _rule("em_names", "fn1", "sn"),
        _rule("em_postcode", "pc"),
        _rule("em_address", "addr_house"),
        *(_rule(f"em_{c}", c) for c in (*TYPED_IDS, *generic_ids)),
        _rule("em_surname_birth_year_month", "sn", "dob_ym"),
        # names alone: a sound-alike code trains the other name (EM samples at most em_max_pairs)
        _rule("em_surname_sound", "sn_phon"),
        _rule("em_forename_sound", "fn1_phon"),
    ]
    passes: list[BlockingRule] = []
    untrained = {c.name for c in comparisons}
    for rule in candidates:
        if not rule_columns(rule) <= usable:
            continue
        trains = {c.name for c in comparisons if not comparison_columns(c) & rule_columns(rule)}
        if trains & untrained:
            passes.append(rule)
            untrained -= trains
        if not untrained:
            break
    return passes


# Different people sharing a home share a surname and an address; twins the date of birth too. With a
# checked id to measure against, the twins (all three agree) are corrected; without one the forename
# is the instrument, and relatives living together (dates of birth agreeing or not) are measured
CORRELATED = Correlated(
    name="surname_dob_place",
    description="Twins and relatives living together agree on surname, date of birth and address at once "
    "far more often than the three separate chances imply.",
    comparisons=["surname", "date_of_birth", "place"],
    instrument="forename",
)
CORRELATED_HOME = Correlated(
    name="surname_place",
    description="Relatives living together agree on surname and address far more often than the two "
    "separate chances imply (measured with the forename, which they rarely share).",
    comparisons=["surname", "place"],
    instrument="forename",
)


def _correlated(
    groups: list[Correlated],
    comparisons: list[Comparison],
    known: set[str],
    notes: list[str],
    *,
    derived: bool,
    victims: bool,
) -> list[Correlated]:
    """The groups whose comparisons are all in the model, each covering subjects only when the
    extracts hold victim mentions. A group written in the config is refused when it names an unknown
    comparison (a typo would silently switch the correction off) or one whose first level cannot be
    counted; the derived group is then left out with a note."""
    present = {c.name: c for c in comparisons}
    kept = []
    for group in groups:
        unknown = sorted(set(group.comparisons) - known)
        if unknown:
            raise ConfigError(f"training.correlated '{group.name}': no comparison named {', '.join(unknown)}")
        if f"correlated_{group.name}" in present:  # the name of the comparison the correction becomes
            raise ConfigError(
                f"training.correlated '{group.name}': a comparison is already named correlated_{group.name}"
            )
        absent = [c for c in group.comparisons if c not in present]
        if absent:
            notes.append(f"correlated group '{group.name}' left out: {', '.join(absent)} not in the model")
            continue
        if why := uncountable(group, comparisons):
            if not derived:
                raise ConfigError(f"training.correlated '{group.name}': {why}")
            notes.append(f"correlated group '{group.name}' left out: {why}")
            continue
        instrument = group.instrument
        if instrument is not None and instrument not in known:
            raise ConfigError(f"training.correlated '{group.name}': no comparison named {instrument}")
        if instrument is not None and (
            instrument not in present or instrument_column(present[instrument]) is None
        ):
            why = (
                "not in the model"
                if instrument not in present
                else "its first level is not one column's equality"
            )
            if not derived:
                raise ConfigError(f"training.correlated '{group.name}': instrument '{instrument}' {why}")
            notes.append(f"correlated group '{group.name}': no instrument ('{instrument}' {why})")
            instrument = None
        kept.append(group.model_copy(update={"subjects_only": group.subjects_only or victims,
                                             "instrument": instrument}))  # fmt: skip
    return kept


def _conflict_rules(usable: set[str], present: set[str]) -> list[str | ConflictRule]:
    """Valid typed ids and the date of birth; weak evidence (a marked record) never conflicts, and a
    date of birth yields to a direct link (only chains across two unrelated dates are refused)."""
    rules: list[str | ConflictRule] = []
    for typed in TYPED_IDS:
        if typed in usable:
            marker = f"{typed}_weak"
            rules.append(ConflictRule(column=typed, weak_marker=marker if marker in present else None))
    if "dob" in usable:
        unless = [t for t in ("dob=dob_swap", "dob_ym", "dob_md", "dob_yd") if set(t.split("=")) <= usable]
        # a date of birth has no check character: two unrelated dates may be a typo or a wholesale
        # error (FEBRL4, pseudopeople), so a pair the model links despite them may merge; chains may not
        rules.append(
            ConflictRule(
                column="dob",
                unless_any=unless,
                weak_marker="dob_weak" if "dob_weak" in present else None,
                direct_link_overrides=True,
            )
        )
    return rules


def derive(config: LinkageConfig, coverage: Coverage) -> DerivedModel:
    """The resolved model: derived parts overridden by the config, unusable parts left out (noted)."""
    notes: list[str] = []
    if len(coverage.records) < 2 and (config.link_type == "link_only" or config.clustering.one_to_one):
        declared = "link_type: link_only" if config.link_type == "link_only" else "clustering.one_to_one"
        raise ConfigError(
            f"{declared} is for records of different extracts, and there is only one "
            f"({', '.join(coverage.records) or 'none'}); use link_and_dedupe without one_to_one to find the "
            "same person within one extract"
        )
    share = config.derive.min_coverage
    need_sources = 2 if config.link_type == "link_only" else 1
    present = set(coverage.held)
    usable = {
        c
        for c in present
        if coverage.share(c) >= share and coverage.share(c) > 0 and coverage.sources(c) >= need_sources
    } - set(WEAK_MARKERS)
    for c in sorted(present - usable - set(WEAK_MARKERS)):
        if coverage.share(c) > 0:
            notes.append(
                f"column {c} not used: held by {coverage.share(c):.2%} of records "
                f"in {coverage.sources(c)} source(s) (needs {share:.2%} in {need_sources})"
            )
    generic_ids = sorted(c for c in usable if GENERIC_ID.match(c))
    # columns every source holds (on at least the minimum share of its own records)
    everywhere = {
        c
        for c in usable
        if all(n > 0 and coverage.held[c].get(s, 0) >= share * n for s, n in coverage.records.items())
    }
    omitted = set(config.omit)

    derived = [c for c in _candidate_comparisons(generic_ids, usable) if c.name not in omitted]
    merged = _merge_by_name(derived, config.comparisons, notes)
    comparisons = [c for c in (_trim_comparison(comp, usable, notes) for comp in merged) if c]
    if not comparisons:
        shared = " held by two of them (link_only)" if need_sources == 2 else ""
        raise ConfigError(f"no comparison has usable columns in these extracts{shared}: nothing to link on")

    if config.blocking_rules:
        blocking = _usable_rules(config.blocking_rules, usable, "blocking rule", notes)
        budget = 0.0
    else:
        cap = config.derive.max_block_size
        candidates = [r for r in _candidate_blocking(generic_ids, cap) if r.name not in omitted]
        blocking = [r for r in candidates if rule_columns(r) <= usable]
        n = coverage.total
        budget = max(config.derive.min_budget, config.derive.comparisons_per_record * n)
    if not blocking:
        raise ConfigError("no blocking rule has usable columns in these extracts: no pair would be compared")

    t = config.training
    # lambda is estimated from the pairs the deterministic rules find among ALL records: a rule on an id
    # that one source alone holds (probation's CRN) sees only that source's pairs and would understate it
    # (unless that source is all there is: one extract, deduplicated)
    shared_ids = [c for c in generic_ids if coverage.sources(c) >= min(2, len(coverage.records))]
    if not t.deterministic_rules:
        for c in sorted(set(generic_ids) - set(shared_ids)):
            notes.append(f"deterministic rule 'same_{c}' left out: {c} is held by one source only")
    deterministic = _usable_rules(
        t.deterministic_rules or _deterministic(usable, shared_ids, everywhere),
        usable,
        "deterministic rule",
        notes,
    )
    if not deterministic:
        notes.append("no deterministic rule is usable: lambda falls back to one match per record")
    em_rules = _usable_rules(
        t.em_rules or _em_passes(comparisons, usable, generic_ids), usable, "EM pass", notes
    )
    known = {c.name for c in derived} | {c.name for c in config.comparisons} | omitted
    victims = any(n > 0 for n in coverage.held.get(VICTIM_MENTION, {}).values())
    checked = any(typed in usable for typed in TYPED_IDS)
    correlated = _correlated(
        t.correlated or [g for g in (CORRELATED if checked else CORRELATED_HOME,) if g.name not in omitted],
        comparisons, known, notes, derived=not t.correlated, victims=victims,
    )  # fmt: skip
    training = Training.model_validate(
        {**t.model_dump(), "deterministic_rules": [r.model_dump() for r in deterministic],
         "em_rules": [r.model_dump() for r in em_rules], "correlated": [g.model_dump() for g in correlated]}
    )  # fmt: skip

    cl = config.clustering
    conflicts = cl.never_link_different
    if cl.method == "constrained_components":
        if conflicts:
            kept: list[str | ConflictRule] = []
            for rule in cl.conflict_rules():
                if rule.column in usable:
                    kept.append(rule)
                else:
                    notes.append(f"conflict rule on '{rule.column}' left out: absent or too sparse")
            conflicts = kept
        else:
            conflicts = _conflict_rules(usable, present)
    clustering = Clustering.model_validate(
        {
            **cl.model_dump(),
            "never_link_different": [r.model_dump() if isinstance(r, ConflictRule) else r for r in conflicts],
        }
    )
    resolved = LinkageConfig.model_validate(
        {
            **config.model_dump(exclude={"comparisons", "blocking_rules", "training", "clustering", "omit"}),
            "version": 2,
            "comparisons": [x.model_dump() for x in comparisons],
            "blocking_rules": [r.model_dump() for r in blocking],
            "training": training.model_dump(),
            "clustering": clustering.model_dump(),
        }
    )
    return DerivedModel(resolved, usable, notes, budget)


@dataclass
class RuleCount:
    """One candidate blocking rule and the pairs Splink counted for it on its own (mirror forms summed)."""

    name: str
    comparisons: int
    chosen: bool
    reason: str = ""
    max_block_size: int | None = None  # the rule's cap on over-common values, if any


def count_rule(linker: Linker, rule: BlockingRule, proportion: float) -> int:
    """Pairs one rule generates on its own, by Splink's counter (sampled when ``proportion`` < 1)."""
    sqls = [r.sql for r in blocking_sql(rule)]
    with warnings.catch_warnings():
        # Splink warns (on the terminal) when a sampled count rests on under 1,000 pairs: such a rule
        # is small against the budget (choose_blocking), so its rough count changes no choice
        warnings.filterwarnings("ignore", "The sampled blocking analysis estimate", UserWarning)
        counted = linker.blocking_analysis.count_comparisons_from_blocking_rules(
            sqls, record_sample_proportion=proportion
        )
    return round(sum(r["marginal_comparison_count"] for r in counted))


def choose_blocking(
    linker: Linker, model: DerivedModel, records: int, exact_up_to: int = 100_000
) -> tuple[list[BlockingRule], list[RuleCount]]:
    """The candidate rules, in order, whose pairs fit the budget; with every rule's count.

    Each rule is counted on its own by Splink's counter, and rules are taken in order while the sum
    of their counts fits the budget. Rules overlap, so the pairs actually scored (metrics.json) are
    fewer than that sum: the budget is an upper bound, never exceeded whatever the overlap. Up to
    ``exact_up_to`` records the counts are exact; above, Splink estimates them from a sample of
    records on each side of the join (p = exact_up_to / records of them, p^2 of the pairs: a
    rule big enough to matter for the budget still has thousands of sampled pairs).
    """
    rules = model.config.blocking_rules
    if not model.budget:  # rules fixed by the config: all used
        return rules, []
    proportion = min(1.0, exact_up_to / records) if records else 1.0
    chosen, counts, used = [], [], 0
    for rule in rules:
        n = count_rule(linker, rule, proportion)
        if used + n <= model.budget:
            chosen.append(rule)
            used += n
            counts.append(RuleCount(rule.name, n, True, max_block_size=rule.max_block_size))
        else:
            reason = f"over the budget of {model.budget:,.0f} pairs"
            counts.append(RuleCount(rule.name, n, False, reason, rule.max_block_size))
            model.notes.append(
                f"blocking rule '{rule.name}' left out: {n:,} pairs would exceed the budget "
                f"({used:,} used of {model.budget:,.0f})"
            )
    if not chosen:
        raise ConfigError("every candidate blocking rule exceeds the comparison budget: raise it")
    return chosen, counts


def resolve_blocking(
    model: DerivedModel, tables: list[SplinkDataFrame], records: int
) -> tuple[LinkageConfig, list[RuleCount]]:
    """The resolved config with the blocking rules chosen under the budget over ``tables``."""
    probe = Linker(tables, settings(model.config), log_level=None)
    chosen, counts = choose_blocking(probe, model, records)
    return model.config.model_copy(update={"blocking_rules": chosen}), counts


def _flow(value: object) -> str:
    """One YAML value in flow style on one line."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()


def _dump(data: object) -> str:
    return yaml.safe_dump(data, default_flow_style=False, width=100, sort_keys=False)


def render_model(model: DerivedModel, resolved: LinkageConfig, counts: list[RuleCount]) -> str:
    """The resolved model as a commented linkage config (version 2) that reproduces it when run.

    Keep it as configs/linkage.yaml to fix the model; every section it sets then overrides what
    would be derived from the next extracts.
    """
    data = resolved.model_dump(mode="json", exclude_defaults=False)
    lines = [
        "# Linkage model derived from the token families present in the extracts (`linkage model`).",
        "# Run with it as --config to fix every part; delete a section to let it be derived again.",
        "# Comparisons: a pair lands in the first level that holds; 'missing' when a missing_when column",
        "# is missing on either record. Blocking rules: only pairs meeting at least one are scored.",
        *textwrap.wrap(
            f"Columns used (held by at least {resolved.derive.min_coverage:.1%} of records): "
            + ", ".join(sorted(model.usable)),
            width=100,
            initial_indent="# ",
            subsequent_indent="#   ",
        ),
    ]
    if model.notes:
        lines.append("# Left out, and why:")
        lines += [f"#   - {n}" for n in model.notes]
    head = {k: data[k] for k in ("version", "description", "link_type")}
    lines.append(_dump(head).rstrip())
    for section in ("extracts", "backend", "derive"):
        lines.append(_dump({section: data[section]}).rstrip())
    lines.append("comparisons:")
    for comp in data["comparisons"]:
        lines.append(f"  # {comp['description']}" if comp["description"] else "  #")
        lines.append(f"  - name: {comp['name']}")
        lines.append(f"    description: {json.dumps(comp['description'])}")
        lines.append(f"    missing_when: {_flow(comp['missing_when'])}")
        if comp["unless_any"]:
            lines.append(f"    unless_any: {_flow(comp['unless_any'])}")
        lines.append("    levels:")
        for level in comp["levels"]:
            kept = {k: level[k] for k in ("label", "equal", "equal_any", "term_frequency") if level[k]}
            lines.append(f"      - {_flow(kept)}")
    counted = {c.name: c for c in counts}
    lines.append("blocking_rules:")
    if model.budget:
        lines.append(
            f"  # chosen under a budget of {model.budget:,.0f} pairs (counted by Splink before scoring); "
            "fixing this list fixes the rules"
        )
    for rule in data["blocking_rules"]:
        c = counted.get(rule["name"])
        note = f"  # {c.comparisons:,} pairs" if c else ""
        kept = {k: v for k, v in rule.items() if v not in ("", [], None)}
        lines.append(f"  - {_flow(kept)}{note}")
    for c in counts:
        if not c.chosen:
            lines.append(f"  # left out: {c.name} ({c.comparisons:,} pairs, {c.reason})")
    lines.append(_dump({"training": data["training"]}).rstrip())
    clustering = data["clustering"]
    lines.append(_dump({"clustering": clustering}).rstrip())
    lines.append(_dump({"report": data["report"]}).rstrip())
    return "\n".join(lines) + "\n"
