"""The release policy (configs/release.yaml): which tables leave the secure zone, under which SDC rules.

The policy is a closed vocabulary: every name (dimension, measure, statistic) must be one the
release vocabulary defines (linkage.release.vocabulary) and every `where` value one of that
dimension's closed values, checked here by pydantic, so a bad policy is refused with the file, line
and key before anything runs (exit 2; `linkage audit` reports it as AUD001). No policy text reaches
SQL: names select vocabulary entries whose SQL is code, and values are bound as query parameters.

The SDC numbers may be set below the floors (threshold 10, rounding base 5, dominance (2, 0.9),
p% 0.10) here, but `linkage release` refuses such a policy unless run with --allow-below-floors
(release/sdc.py: below_floors), and `linkage audit` flags it high.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from linkage.release.vocabulary import DIMENSIONS, IDENTIFYING, MEASURES, STATISTICS

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
# Titles and descriptions reach the report, the metadata and the terminal: printable text only.
Text = Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f\u2028\u2029]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dominance(_Model):
    """(n, k) rule: a magnitude cell is disclosive if its n largest contributions exceed k of its total."""

    n: int = Field(2, ge=1)
    k: float = Field(0.9, gt=0, le=1)


class Perturbation(_Model):
    """Cell key perturbation (ONS Census 2021 method; release/perturb.py): on by default."""

    enabled: bool = Field(True, description="perturb counts and magnitudes by cell key")
    key_scope: Literal["cell", "release"] = Field(
        "cell",
        description="cell: the same journeys always get the same noise (ONS); release: the noise also "
        "changes whenever any journey of the release changes (hides which cells one person is in, but "
        "repeated releases of changing data can be averaged)",
    )
    magnitude_base: int = Field(
        7, ge=1, le=365, description="days: means and quartiles of days are randomly rounded to this"
    )


class SDCRules(_Model):
    """Statistical disclosure control parameters (defaults: ACRO 1.0.2 and ONS/SRS guidance)."""

    threshold: int = Field(10, ge=1, description="smallest publishable count, of journeys and of persons")
    rounding_base: int = Field(5, ge=1, description="published counts are rounded to a multiple of this")
    zeros_disclosive: bool = Field(True, description="suppress zero counts (group disclosure)")
    dominance: Dominance = Dominance()
    p_percent: float = Field(0.10, gt=0, lt=1, description="p% rule for magnitude cells")
    perturbation: Perturbation = Perturbation()
    linear_audit_max_cells: int = Field(
        3000, ge=0, description="largest group of suppressed cells the exact-recovery audit solves"
    )


def _vocabulary_names(names: list[str], vocabulary: Mapping[str, object], kind: str) -> list[str]:
    for n in names:
        if n in IDENTIFYING or n.endswith("record_key"):
            raise ValueError(f"{n} identifies records or people; a release never carries it")
        if n not in vocabulary:
            raise ValueError(
                f"{n} is not a {kind} of the release vocabulary (a record-level column or a misspelling; "
                "docs/release-guide.md lists every name)"
            )
    return names


class TableSpec(_Model):
    """One published table: measures (columns) by dimensions (rows, every margin included)."""

    name: Name = Field(description="also the file name: tables/<name>.csv")
    title: Text
    description: Text = ""
    measures: Annotated[list[Name], Field(min_length=1)]
    by: Annotated[list[Name], Field(max_length=4)] = []
    where: dict[Name, str] = Field(default_factory=dict, description="population: dimension = value")
    statistics: list[Name] = Field(
        default_factory=list, description="per-cell summaries of a single-measure table"
    )

    @field_validator("measures", "by", "statistics")
    @classmethod
    def _names(cls, v: list[str], info: ValidationInfo) -> list[str]:
        vocabularies: dict[str | None, tuple[Mapping[str, object], str]] = {
            "measures": (MEASURES, "measure"),
            "by": (DIMENSIONS, "dimension"),
            "statistics": (STATISTICS, "statistic"),
        }
        vocabulary, kind = vocabularies[info.field_name]
        return _vocabulary_names(v, vocabulary, kind)

    @field_validator("where")
    @classmethod
    def _where(cls, v: dict[str, str]) -> dict[str, str]:
        _vocabulary_names(list(v), DIMENSIONS, "dimension")
        for d, value in v.items():
            dim = DIMENSIONS[d]
            if not dim.allows(value):
                allowed = ", ".join(dim.values) + (" or a code like the data's" if dim.pattern else "")
                raise ValueError(f"where.{d}: not one of the closed values of {d} ({allowed})")
        return v

    @model_validator(mode="after")
    def _shape(self) -> TableSpec:
        if len(set(self.by)) != len(self.by):
            raise ValueError("a dimension appears twice in 'by'")
        if set(self.where) & set(self.by):
            raise ValueError("a dimension cannot be both a 'where' condition and a 'by' breakdown")
        if self.statistics and len(self.measures) != 1:
            raise ValueError("statistics need a table with exactly one measure")
        if self.statistics and MEASURES[self.measures[0]].not_recorded:
            raise ValueError(f"statistics need a measure some source records ({self.measures[0]} is not)")
        for d in self.by:
            req = DIMENSIONS[d].requires
            if req and self.where.get(req[0]) != req[1]:
                raise ValueError(f"breakdown by {d} needs `where: {{{req[0]}: {req[1]}}}`")
        for m in self.measures:
            fixed = MEASURES[m].conditions.items()
            clash = [d for d, v in fixed if d in self.by or self.where.get(d, v) != v]
            if clash:
                raise ValueError(f"measure {m} fixes {', '.join(clash)}, also a breakdown or condition")
        # a table counts one unit (journeys, victims or perpetrators); its dimensions must exist there
        units = {MEASURES[m].unit for m in self.measures}
        if len(units) > 1:
            raise ValueError(f"measures count different units ({', '.join(sorted(units))}): split the table")
        unit = units.pop()
        if unit != "journeys" and self.statistics:
            raise ValueError(f"statistics summarise journeys; this table counts {unit}")
        wrong = [d for d in [*self.by, *self.where] if unit not in DIMENSIONS[d].units]
        if wrong:
            raise ValueError(f"dimension(s) {', '.join(wrong)} do not apply to {unit}")
        return self


class ReleasePolicy(_Model):
    policy_version: Literal[1] = 1
    title: Text
    publisher: Text = ""
    sdc: SDCRules = SDCRules()
    tables: Annotated[list[TableSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> ReleasePolicy:
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("table names must be unique")
        return self


# The floors `linkage release` enforces unless run with --allow-below-floors (DESIGN.md, ACRO defaults).
FLOOR_THRESHOLD, FLOOR_ROUNDING_BASE, FLOOR_DOMINANCE_N, FLOOR_DOMINANCE_K, FLOOR_P = 10, 5, 2, 0.9, 0.10


def below_floors(rules: SDCRules) -> list[str]:
    """Each SDC setting of the policy that is looser than its floor, in words (empty: all hold)."""
    out = []
    if rules.threshold < FLOOR_THRESHOLD:
        out.append(f"sdc.threshold {rules.threshold} < {FLOOR_THRESHOLD}")
    if rules.rounding_base < FLOOR_ROUNDING_BASE:
        out.append(f"sdc.rounding_base {rules.rounding_base} < {FLOOR_ROUNDING_BASE}")
    if rules.dominance.n < FLOOR_DOMINANCE_N:
        out.append(f"sdc.dominance.n {rules.dominance.n} < {FLOOR_DOMINANCE_N}")
    if rules.dominance.k > FLOOR_DOMINANCE_K:
        out.append(f"sdc.dominance.k {rules.dominance.k:g} > {FLOOR_DOMINANCE_K:g}")
    if rules.p_percent < FLOOR_P:
        out.append(f"sdc.p_percent {rules.p_percent:g} < {FLOOR_P:g}")
    if not rules.zeros_disclosive:
        out.append("sdc.zeros_disclosive is false")
    return out
