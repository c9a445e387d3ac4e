"""The linkage config: which extracts to link, and what overrides the model derived from them.

This model is the one place the linkage schema is defined; `configs/linkage.yaml` is the demo's,
commented for a governance reviewer. Version 2: every section is optional. `linkage run` derives
the comparisons, blocking rules, training rules and conflict rules from the token families present
in the extracts (link/derive.py); whatever a section here sets overrides the derived part:
  comparisons      merged by name: an entry replaces the derived comparison of that name or adds one;
                   `omit` drops derived comparisons, blocking rules or correlated groups by name
  blocking_rules   replaces the derived candidates when given (then no budget choice is made)
  training         field by field; deterministic_rules / em_rules / correlated each replace the
                   derived list
  clustering       field by field; never_link_different replaces the derived conflict rules
A version-1 file (every section given) still loads: it is a version-2 file that overrides everything.
Comparisons and blocking rules are written in a small vocabulary over token columns (see `Term`),
never in SQL, so a reviewer can read what each level means and the tool can check that only
comparable tokens are compared.
"""

from __future__ import annotations

import itertools
import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, GetCoreSchemaHandler, field_validator, model_validator
from pydantic_core import CoreSchema, core_schema

from linkage.config.agency import Strict
from linkage.tokens import spec
from linkage.tokens.spec import ROLE, SEX, TOKEN_COLUMNS

# Columns a term may name, with the (purpose, family) that says which tokens are comparable.
# `sex` is a clear-text code, comparable only with itself.
_COMPARABLE: dict[str, tuple[str, str]] = {c.name: (c.purpose.value, c.family) for c in TOKEN_COLUMNS}
# Token spec v2 (the lead's contract): typed ids and address tokens, each a family of its own. Listed
# here so the linkage accepts v2 extracts whichever order the spec module and this one are merged in;
# entries the spec module already defines win (setdefault).
for _name, _purpose in (
    ("cro", "national_ids"),
    ("ni", "national_ids"),
    ("nhs", "national_ids"),
    ("addr_house", "addresses"),
    ("addr_street", "addresses"),
    ("addr_town", "addresses"),
):
    _COMPARABLE.setdefault(_name, (_purpose, _name))
_COMPARABLE[SEX] = ("clear", SEX)
# The record's role (token spec v2: 'subject' or 'victim'; 'subject' for extracts without victim
# mentions) and, derived at load, VICTIM_MENTION: true for a victim mention, NULL otherwise, so that
# `equal: [victim_mention]` holds only for two victim mentions.
VICTIM_MENTION = "victim_mention"
_COMPARABLE[ROLE] = ("clear", ROLE)
_COMPARABLE[VICTIM_MENTION] = ("clear", VICTIM_MENTION)
# The other party on the record's crime (victim mentions, token spec v2), derived at load by the
# linkage (backend.load_extract), never in an extract: for a victim mention the suspect on its row,
# for a suspect the first victim named. The same tokens as the party's own, in families of their own.
PARTY_COLUMNS: dict[str, str] = {"party_fn1": "fn1", "party_sn": "sn", "party_dob": "dob"}
for _name, _base in PARTY_COLUMNS.items():
    _COMPARABLE[_name] = ("other_party", f"party_{_COMPARABLE[_base][1]}")
# Generic ids: one column per declared family, `id_<family>`; only same-named columns are comparable.
GENERIC_ID = re.compile(r"^id_([a-z][a-z0-9_]{0,19})$")
# Weak-evidence markers (BOOLEAN): true when the identifier is a placeholder or failed its check.
WEAK_MARKERS: tuple[str, ...] = tuple(
    getattr(spec, "WEAK_MARKERS", ("dob_weak", "pnc_weak", "cro_weak", "ni_weak", "nhs_weak"))
)
_TERM = re.compile(r"^\s*([a-z0-9_]+)\s*(?:=\s*([a-z0-9_]+)\s*)?$")


def column_family(column: str) -> tuple[str, str] | None:
    """(purpose, family) of a comparable column, or None when it is not one."""
    if column in _COMPARABLE:
        return _COMPARABLE[column]
    m = GENERIC_ID.match(column)
    return ("generic_ids", m.group(1)) if m else None


class Term(str):
    """``col`` (equal on both records) or ``a=b`` (``a`` on one record equals ``b`` on the other).

    A cross term such as ``fn1=sn`` detects a forename/surname swap; it is only allowed between
    columns of one token family (fn1 and sn are both family "name"), because tokens of different
    families are unrelated numbers.
    """

    @property
    def left(self) -> str:
        return self.split("=")[0]

    @property
    def right(self) -> str:
        return self.split("=")[-1]

    @property
    def crossed(self) -> bool:
        return self.left != self.right

    @property
    def columns(self) -> set[str]:
        return {self.left, self.right}

    @classmethod
    def parse(cls, text: str) -> Term:
        m = _TERM.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a column name or 'column=column'")
        left, right = m.group(1), m.group(2) or m.group(1)
        for col in (left, right):
            if column_family(col) is None:
                raise ValueError(f"{col!r} is not a token column (nor 'sex')")
        if column_family(left) != column_family(right):
            raise ValueError(f"{left!r} and {right!r} are tokens of different families and never equal")
        return cls(left if left == right else f"{left}={right}")

    def mirrored(self) -> Term:
        return Term(f"{self.right}={self.left}") if self.crossed else self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """A string in configs and their JSON schema; the fields' validators parse and check it."""
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


def _terms(values: list[str]) -> list[Term]:
    return [Term.parse(v) for v in values]


def _columns(values: list[str]) -> list[str]:
    for v in values:
        if column_family(v) is None:
            raise ValueError(f"{v!r} is not a token column (nor 'sex')")
    return values


TermList = Annotated[list[Term], Field(min_length=1)]


class Condition(Strict):
    """Tokens that must agree: ``equal`` all hold, or at least one of ``equal_any`` holds.

    A condition is symmetric: ``fn1=fn2`` holds when either record's first forename equals the
    other's second forename.
    """

    equal: list[Term] = Field(default_factory=list, description="Terms that must all hold.")
    equal_any: list[Term] = Field(default_factory=list, description="Terms of which at least one holds.")

    @field_validator("equal", "equal_any")
    @classmethod
    def _parse(cls, v: list[str]) -> list[Term]:
        return _terms(v)

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        if bool(self.equal) == bool(self.equal_any):
            raise ValueError("give exactly one of 'equal' or 'equal_any'")
        return self


class Level(Condition):
    """One level of agreement, from the strongest (first) to the weakest (last)."""

    label: str = Field(description="Plain-words meaning, shown in the quality report's charts.")
    term_frequency: str | None = Field(
        None,
        description="Adjust this level's weight by how common the token is (a rare surname that "
        "agrees is stronger evidence than a common one).",
    )

    @field_validator("term_frequency")
    @classmethod
    def _tf_column(cls, v: str | None) -> str | None:
        return None if v is None else _columns([v])[0]


class Comparison(Strict):
    """How one aspect of two records (forename, date of birth...) is scored.

    A pair lands in the first level whose condition holds; a pair in none of them is 'all other
    cases'; a pair where a ``missing_when`` column is missing on either record is 'missing' and
    scores zero (neither for nor against) - unless one of ``unless_any`` holds (a date of birth
    known only in its day/month-swapped reading still agrees with the other record's date).
    """

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    description: str = ""
    missing_when: Annotated[list[str], Field(min_length=1)]
    unless_any: list[Term] = Field(
        default_factory=list,
        description="Terms that make the pair comparable even when a missing_when column is missing.",
    )
    levels: Annotated[list[Level], Field(min_length=1)]

    @field_validator("missing_when")
    @classmethod
    def _missing_columns(cls, v: list[str]) -> list[str]:
        return _columns(v)

    @field_validator("unless_any")
    @classmethod
    def _unless_terms(cls, v: list[str]) -> list[Term]:
        return _terms(v)


class BlockingRule(Strict):
    """Pairs that are compared at all: those whose ``equal`` terms all hold.

    Blocking only decides which pairs get scored; a true pair found by no rule is lost, so the
    rules are chosen together to catch (nearly) every true pair (recall is measured and reported).
    """

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    description: str = ""
    equal: TermList
    either_missing: list[str] = Field(
        default_factory=list,
        description="Restrict to pairs where these columns are missing on at least one record.",
    )
    max_block_size: Annotated[int, Field(ge=2, le=100_000)] | None = Field(
        None,
        description="Cap on over-common values: a record whose values of the `equal` columns are shared by "
        "more than this many records (over every source) gets no pair from this rule, so the rule makes "
        "at most about max_block_size / 2 pairs per record. Only for rules of plain terms (no `a=b`).",
    )

    @field_validator("equal")
    @classmethod
    def _parse(cls, v: list[str]) -> list[Term]:
        return _terms(v)

    @model_validator(mode="after")
    def _cap_on_plain_terms(self) -> BlockingRule:
        if self.max_block_size is not None and any(t.crossed for t in self.equal):
            raise ValueError(
                f"blocking rule '{self.name}': max_block_size needs plain terms (a value shared by many "
                "records); a crossed term such as fn1=sn has no one value to count"
            )
        return self

    @field_validator("either_missing")
    @classmethod
    def _missing_columns(cls, v: list[str]) -> list[str]:
        return _columns(v)


class BackendEngine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


_MEMORY = r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
_SPARK_MEMORY = r"^\d+[kmgtKMGT]$"  # Spark's own form: 4g, 512m


class Spark(Strict):
    """Apache Spark connection settings (``engine: spark``); `--spark-conf key=value` adds to ``conf``.

    Local mode (``local[*]``, every core of this machine) needs only Java 17+ and the ``spark``
    extra; on a cluster, ``master`` names it (``yarn``, ``spark://host:7077``, ``k8s://...``) or is
    left to ``spark-submit``/Databricks, which set it before the run starts (docs/scaling.md).
    """

    master: str | None = Field(
        "local[*]",
        description="Spark master URL; null keeps what spark-submit or the platform already set.",
    )
    app_name: str = "justice-linkage"
    driver_memory: Annotated[str, Field(pattern=_SPARK_MEMORY)] | None = Field(
        "4g",
        description="Memory of the driver, which (in local mode) also runs every task; null keeps the "
        "platform's. It also receives the scored pairs for clustering.",
    )
    executor_memory: Annotated[str, Field(pattern=_SPARK_MEMORY)] | None = Field(
        None, description="Memory per executor on a cluster (spark.executor.memory), e.g. 8g."
    )
    checkpoint_dir: str | None = Field(
        None,
        description="Where Splink writes intermediate tables to cut Spark's lineage (default: the run's "
        "work folder). On a cluster: a path every executor can write (hdfs://, s3a://, dbfs:/).",
    )
    shuffle_partitions: Annotated[int, Field(ge=1, le=100_000)] = Field(
        8,
        description="spark.sql.shuffle.partitions: about 2-4 per core on the cluster; small in local mode.",
    )
    break_lineage: Literal["persist", "checkpoint", "parquet"] | None = Field(
        None,
        description="How Splink materialises intermediate tables: persist (memory and local disk), "
        "parquet (files in checkpoint_dir), checkpoint; default persist in local mode, parquet otherwise.",
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Any other Spark settings (key: value), applied last; they win over the above.",
    )

    @field_validator("conf", mode="before")
    @classmethod
    def _as_strings(cls, v: object) -> object:
        if isinstance(v, dict):
            return {str(k): str(x).lower() if isinstance(x, bool) else str(x) for k, x in v.items()}
        return v


class Backend(Strict):
    engine: BackendEngine = Field(
        BackendEngine.duckdb,
        description="duckdb (embedded, one machine) or spark (Splink's Spark API; the `spark` extra).",
    )
    threads: Annotated[int, Field(ge=1, le=256)] = 2
    memory_limit: Annotated[str, Field(pattern=_MEMORY)] = "6GB"
    database_dir: str | None = Field(
        None,
        description="Folder for the on-disk working database and spill files (default: a work/ folder in "
        "the run directory). It holds tokens while the run lasts and is deleted afterwards.",
    )
    keep_database: bool = Field(False, description="Keep the working database after the run (debugging).")
    spark: Spark = Field(default_factory=Spark, description="Used only when engine is spark.")


class Extracts(Strict):
    directory: str | None = Field(
        None, description="Folder of pseudonymised extracts, relative to this file (or `--extracts`)."
    )
    trusted_keys: str | None = Field(
        None,
        description="Folder of the agencies' *.signing.pub, relative to this file (or `--trusted-keys`).",
    )
    expected_key_fingerprint: str | None = Field(
        None, description="Project key fingerprint announced by the key custodian (optional)."
    )
    agencies: list[str] = Field(
        default_factory=list,
        description="Agencies that must all be present (and no other); empty: every extract in the folder. "
        "The agency becomes `source_dataset`.",
    )


class Correlated(Strict):
    """Comparisons whose first levels are not independent evidence when they agree together.

    Splink adds each comparison's weight as if the agreements were independent. Different people who
    share a home share a surname and an address, and twins a date of birth too, so a pair agreeing
    on all of them is far less rare among different people than the product of the separate chances.
    """

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    description: str = ""
    comparisons: Annotated[list[str], Field(min_length=2)] = Field(
        description="Comparison names; each one's first level must be plain equality of one or more "
        "columns (so that the run can count the pairs agreeing on all of them).",
    )

    instrument: str | None = Field(
        None,
        description="Without a checked id to label the pairs, measure with this comparison instead (not "
        "in the group; its first level plain equality of one column): among the agreeing pairs, matches "
        "agree on it as often as its trained m says and different people as rarely as its u, so its "
        "agreement rate there tells how many are different people. The forename: relatives and twins "
        "rarely share one.",
    )
    subjects_only: bool = Field(
        False,
        description="Measure and correct pairs of two subject records only, never a pair with a victim "
        "mention (set by the derivation when the extracts hold victim mentions: they carry no checked "
        "id, and different victims agree on these far more rarely than different subjects).",
    )

    @field_validator("comparisons")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a correlated group names a comparison twice")
        return v

    @model_validator(mode="after")
    def _instrument_outside(self) -> Correlated:
        if self.instrument in self.comparisons:
            raise ValueError(f"the instrument '{self.instrument}' is one of the group's own comparisons")
        return self


class Training(Strict):
    seed: int = Field(42, description="Seed for u sampling: the same seed gives the same model.")
    deterministic_rules: list[BlockingRule] = Field(
        default_factory=list,
        description="Near-certain matches, used only to estimate how many pairs match at all (lambda); "
        "empty: derived (an id, or name + date of birth + postcode/address).",
    )
    deterministic_recall: Annotated[float, Field(gt=0, le=1)] = Field(
        0.6, description="Share of all true pairs the deterministic rules are believed to find."
    )
    u_max_pairs: Annotated[float, Field(ge=1e4)] = Field(
        5e6, description="Random pairs sampled to learn how often non-matches agree by chance (u)."
    )
    em_rules: list[BlockingRule] = Field(
        default_factory=list,
        description="Blocking passes for expectation maximisation (m); each pass learns the comparisons "
        "its rule does not use, so together they must cover every comparison. Empty: derived.",
    )
    em_max_pairs: Annotated[float, Field(ge=1e3)] = Field(
        1e6, description="Cap on pairs per EM pass (bounds time and memory)."
    )
    em_convergence: Annotated[float, Field(gt=0, lt=0.1)] = Field(
        1e-4, description="EM stops when no m value moves more than this between iterations."
    )
    em_max_iterations: Annotated[int, Field(ge=1, le=1000)] = Field(
        25, description="EM stops after this many iterations per pass even if not converged."
    )
    correlated: list[Correlated] = Field(
        default_factory=list,
        description="Comparisons whose first levels different people often share all at once (twins: "
        "surname, date of birth and address); the run measures how often against a checked id and "
        "corrects the weight of pairs agreeing on all of them (link/correlated.py). Empty: derived.",
    )

    @field_validator("correlated")
    @classmethod
    def _unique_groups(cls, v: list[Correlated]) -> list[Correlated]:
        names = [g.name for g in v]
        if len(set(names)) != len(names):
            raise ValueError("correlated group names must be unique")
        for a, b in itertools.combinations(v, 2):
            if shared := sorted(set(a.comparisons) & set(b.comparisons)):
                raise ValueError(
                    f"correlated groups '{a.name}' and '{b.name}' share {', '.join(shared)}: a pair agreeing "
                    "on both would be corrected twice"
                )
        return v


class ConflictRule(Strict):
    """Two records conflict when both hold ``column`` with different values and none of the
    ``unless_any`` terms holds between them (e.g. two dates of birth with no part in common)."""

    column: str = Field(description="A strong identifier one person cannot hold two unrelated values of.")
    unless_any: list[Term] = Field(
        default_factory=list,
        description="Partial agreements that make two different values compatible (a typo, not another "
        "person): e.g. [dob=dob_swap, dob_ym, dob_md, dob_yd] for a date of birth.",
    )
    weak_marker: str | None = Field(
        None,
        description="A weak-evidence marker column (e.g. dob_weak): a record whose marker is true (a "
        "placeholder date, an id that failed its check) never conflicts on this identifier.",
    )
    direct_link_overrides: bool = Field(
        False,
        description="A pair linked directly (at or above the threshold) may join two records that differ "
        "on this identifier: the model has already weighed the difference in its score. Joins through "
        "other records (chaining) are still refused. For identifiers without a check character, where "
        "a difference may be a typo (the date of birth); never for valid typed ids.",
    )

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        return _columns([v])[0]

    @field_validator("weak_marker")
    @classmethod
    def _marker(cls, v: str | None) -> str | None:
        if v is not None and v not in WEAK_MARKERS:
            raise ValueError(f"{v!r} is not a weak-evidence marker ({', '.join(WEAK_MARKERS)})")
        return v

    @field_validator("unless_any")
    @classmethod
    def _parse(cls, v: list[str]) -> list[Term]:
        return _terms(v)


class AutoThreshold(Strict):
    """How the threshold is chosen from the model when ``threshold_match_probability`` is ``auto``."""

    rule: Literal["max_expected_f1", "target_precision"] = Field(
        "max_expected_f1",
        description="max_expected_f1: the threshold at which the model's own expected F1 is highest "
        "(precision and recall weighed alike); target_precision: the lowest threshold whose expected "
        "precision reaches `target_precision` (more cautious).",
    )
    target_precision: Annotated[float, Field(gt=0.5, lt=1)] = Field(
        0.9995, description="Used by the target_precision rule only."
    )
    min_expected_precision: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.995,
        description="Precision floor for the people formed, whatever the rule: when the model's expected "
        "precision over the pairs of records each person holds (chains included) is below this, a higher "
        "threshold is clustered too and kept if the people's expected F1 is at least as high there (it is "
        "where a person has many records; not where each has one record per source). 0: never raised.",
    )
    floor_needs_f1_gain: bool = Field(
        True,
        description="Keep a raise for the precision floor only if the people's expected F1 is at least as "
        "high there (one raise is tried). false: precision first, whatever the recall cost: raised step by "
        "step (up to four raises, each another clustering) until the people reach the floor.",
    )
    calibrate_with_ids: bool = Field(
        True,
        description="Check the model's match probabilities against a checked id (a never_link_different "
        "id with no typo tolerance, e.g. a valid PNC) on the pairs where both records hold one, and use "
        "the measured share of same-id pairs by weight of the other evidence for the people's expected "
        "precision/recall (reported, and what the floor's F1 guard compares) and the curve's 'checked' "
        "lines (link/recalibrate.py). Clustering still compares Splink's own weights with the "
        "threshold. false: the model's own probabilities throughout.",
    )
    f1_tolerance: Annotated[float, Field(ge=0, lt=0.05)] = Field(
        0.0,
        description="max_expected_f1 only: take the highest threshold whose expected F1 is within this of "
        "the best (the pairwise estimate ignores the links clustering adds through other records; where "
        "people have many records a slightly higher threshold is then no worse). 0: the best itself.",
    )


class Clustering(Strict):
    method: Literal["connected_components", "constrained_components"] = Field(
        "constrained_components",
        description="connected_components: any chain of linked pairs is one person. constrained_components: "
        "pairs are merged strongest first, refusing a merge that would put two conflicting records "
        "(`never_link_different`) in one person.",
    )
    threshold_match_probability: float | Literal["auto"] = Field(
        "auto",
        description="Pairs at or above this probability are the same person; 'auto' chooses it from the "
        "model (see `auto_threshold`) and reports its expected precision and recall.",
    )
    auto_threshold: AutoThreshold = Field(default_factory=AutoThreshold)
    never_link_different: list[str | ConflictRule] = Field(
        default_factory=list,
        description="Strong identifiers one person cannot hold two unrelated values of (constrained only): "
        "a column name (any two different values conflict) or {column, unless_any, weak_marker}. Empty: "
        "derived (valid typed ids and the date of birth, weak evidence exempt).",
    )
    one_to_one: bool = Field(
        False,
        description="Each source holds each person at most once (study design, e.g. two registers): a "
        "merge that would put two records of one source in one person is refused.",
    )
    override_match_weight: float = Field(
        20.0,
        description="A pair at or above this match weight (odds of about a million to one) merges despite "
        "a conflict: a mistyped PNC id that happens to be valid, a mistyped date; .inf: never.",
    )

    @field_validator("threshold_match_probability")
    @classmethod
    def _probability(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0 < v < 1:  # a str is "auto" (the field's Literal)
            raise ValueError("a probability strictly between 0 and 1, or 'auto'")
        return v

    @field_validator("never_link_different")
    @classmethod
    def _conflict_columns(cls, v: list[str | ConflictRule]) -> list[str | ConflictRule]:
        _columns([r for r in v if isinstance(r, str)])
        return v

    @model_validator(mode="after")
    def _method_needs(self) -> Clustering:
        if self.method == "connected_components" and (self.never_link_different or self.one_to_one):
            raise ValueError("never_link_different and one_to_one are used only by constrained_components")
        return self

    def conflict_rules(self) -> list[ConflictRule]:
        return [ConflictRule(column=r) if isinstance(r, str) else r for r in self.never_link_different]

    def conflict_columns(self) -> set[str]:
        """Every column the conflict rules read."""
        return {
            c
            for r in self.conflict_rules()
            for t in [r.column, *r.unless_any]
            for c in (Term(t).left, Term(t).right)
        }


class Report(Strict):
    pair_floor_match_weight: float = Field(
        -5.0,
        description="Scored pairs below this match weight are dropped right after scoring; the rest feed "
        "the histogram and the threshold table in the quality report.",
    )
    waterfall_examples: Annotated[int, Field(ge=0, le=20)] = 6
    largest_clusters: Annotated[int, Field(ge=0, le=100)] = 10


class Derivation(Strict):
    """How the model is derived from the extracts (link/derive.py)."""

    min_coverage: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.01,
        description="A token column is used only when at least this share of all records holds it (from "
        "the manifests' token_coverage); below it, its comparison level, blocking rules and EM pass are "
        "left out with a line in the report.",
    )
    comparisons_per_record: Annotated[float, Field(gt=0, le=10_000)] = Field(
        20.0,
        description="Blocking budget: candidate rules are taken in order while the pairs they generate, "
        "each counted on its own by Splink before scoring, sum to at most this many per record, so the "
        "work grows linearly with the records. Rules overlap: far fewer distinct pairs are scored.",
    )
    min_budget: Annotated[float, Field(ge=1e3)] = Field(
        2e6, description="The budget is never below this many pairs (small studies keep every rule)."
    )
    max_block_size: Annotated[int, Field(ge=2, le=100_000)] = Field(
        50,
        description="Cap on over-common values for the derived broad rules (names alone, a name with part of "
        "a date, a birthday, postcode or house alone): a value shared by more records than this makes no "
        "pair through that rule (a common name alone says little), so each stays linear in the records. "
        "Keep it above the records one person may hold, so that one person's records still meet.",
    )


class LinkageConfig(Strict):
    version: Literal[1, 2] = 2
    description: str = ""
    link_type: Literal["link_and_dedupe", "link_only"] = Field(
        "link_and_dedupe",
        description="link_and_dedupe: a person may appear many times in one source too (the default). "
        "link_only: only pairs from different sources are compared (study design, e.g. two registers).",
    )
    extracts: Extracts = Field(default_factory=Extracts)
    backend: Backend = Field(default_factory=Backend)
    derive: Derivation = Field(default_factory=Derivation)
    comparisons: list[Comparison] = Field(
        default_factory=list, description="Merged by name with the derived comparisons."
    )
    blocking_rules: list[BlockingRule] = Field(
        default_factory=list, description="Replaces the derived candidate rules when given."
    )
    omit: list[str] = Field(
        default_factory=list,
        description="Derived comparisons, blocking rules or correlated groups to leave out, by name.",
    )
    training: Training = Field(default_factory=Training)
    clustering: Clustering = Field(default_factory=Clustering)
    report: Report = Field(default_factory=Report)

    @model_validator(mode="after")
    def _consistent(self) -> LinkageConfig:
        names = [c.name for c in self.comparisons]
        if len(set(names)) != len(names):
            raise ValueError("comparison names must be unique")
        rules = [r.name for r in self.blocking_rules]
        if len(set(rules)) != len(rules):
            raise ValueError("blocking rule names must be unique")
        if len(set(self.extracts.agencies)) != len(self.extracts.agencies):
            raise ValueError("extracts.agencies lists an agency twice")
        floor, threshold = self.report.pair_floor_match_weight, self.clustering.threshold_match_probability
        if threshold != "auto" and floor >= match_weight(threshold):
            raise ValueError("report.pair_floor_match_weight must be below the clustering threshold")
        return self

    def resolve(self, config_path: Path, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value)
        return path if path.is_absolute() else (Path(config_path).parent / path)


def match_weight(probability: float) -> float:
    """log2 of the odds: the scale of Splink's match weights."""
    return math.log2(probability / (1 - probability))
