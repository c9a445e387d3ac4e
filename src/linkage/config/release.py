"""The release policy (configs/release.yaml): which tables leave the secure zone, under which SDC rules.

Names of dimensions, measures and statistics are plain strings here and are checked against the
release vocabulary by `linkage.release.tables.check_policy`, which refuses identifiers (tokens,
record keys, row numbers, person ids) with exit 1 rather than treating them as a typo (exit 2).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dominance(_Model):
    """(n, k) rule: a magnitude cell is disclosive if its n largest contributions exceed k of its total."""

    n: int = Field(2, ge=1)
    k: float = Field(0.9, gt=0, le=1)


class SDCRules(_Model):
    """Statistical disclosure control parameters (defaults: ACRO 1.0.2 and ONS/SRS guidance)."""

    threshold: int = Field(10, ge=1, description="smallest publishable count, of journeys and of persons")
    rounding_base: int = Field(5, ge=1, description="published counts are rounded to a multiple of this")
    zeros_disclosive: bool = Field(True, description="suppress zero counts (group disclosure)")
    dominance: Dominance = Dominance()
    p_percent: float = Field(0.10, gt=0, lt=1, description="p% rule for magnitude cells")
    linear_audit_max_cells: int = Field(
        3000, ge=0, description="largest group of suppressed cells the exact-recovery audit solves"
    )


class TableSpec(_Model):
    """One published table: measures (columns) by dimensions (rows, every margin included)."""

    name: Name
    title: str
    description: str = ""
    measures: Annotated[list[Name], Field(min_length=1)]
    by: Annotated[list[Name], Field(max_length=4)] = []
    where: dict[Name, str] = Field(default_factory=dict, description="population: dimension = value")
    statistics: list[Name] = Field(
        default_factory=list, description="per-cell summaries of a single-measure table"
    )

    @model_validator(mode="after")
    def _shape(self) -> TableSpec:
        if len(set(self.by)) != len(self.by):
            raise ValueError("a dimension appears twice in 'by'")
        if set(self.where) & set(self.by):
            raise ValueError("a dimension cannot be both a 'where' condition and a 'by' breakdown")
        if self.statistics and len(self.measures) != 1:
            raise ValueError("statistics need a table with exactly one measure")
        return self


class ReleasePolicy(_Model):
    policy_version: Literal[1] = 1
    title: str
    publisher: str = ""
    sdc: SDCRules = SDCRules()
    tables: Annotated[list[TableSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> ReleasePolicy:
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("table names must be unique")
        return self
