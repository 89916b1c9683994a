"""Shapes of footprint requests and results as the API and CLI show them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_ACTIVITIES = 1_000


class FootprintCreate(BaseModel):
    """A list of activities in the vocabulary of docs/activities.md."""

    model_config = ConfigDict(extra="forbid")

    activities: list[Any] = Field(
        min_length=1,
        max_length=MAX_ACTIVITIES,
        description="Activities, each a JSON object with a `type` (see docs/activities.md).",
        examples=[[{"type": "flight", "origin": "PEK", "destination": "CTU", "round_trip": True}]],
    )


class FactorPublic(BaseModel):
    """A published factor with its full provenance."""

    factor_set: str
    id: str
    activity: str
    value: str = Field(description="exactly as published")
    unit: str
    gas_basis: str
    gwp_set: str | None
    edition: str
    region: str | None
    year: int | None
    source: str
    source_url: str | None
    licence: str
    attribution: str | None = Field(default=None, description="wording the licence requires when republished")
    uncertainty_low: str | None = None
    uncertainty_high: str | None = None
    note: str | None = None


class FactorPage(BaseModel):
    items: list[FactorPublic]
    total: int
    page: int
    page_size: int


class Uncertainty(BaseModel):
    low_kg_co2e: Decimal
    high_kg_co2e: Decimal
    basis: str = "95% confidence interval of the factor"


class FootprintLine(BaseModel):
    """One activity's emissions and the trail that produced them."""

    index: int
    ref: str | None
    type: str
    kg_co2e: Decimal = Field(description="rounded half to even to 6 decimal places")
    factor: FactorPublic
    amount: Decimal = Field(description="the activity amount the factor was applied to")
    amount_unit: str
    unit_multiplier: str = Field(description="exact multiplier from the amount to the factor's unit")
    distance_km: Decimal | None = None
    assumptions: list[str]
    geography_differs: bool
    year_differs: bool
    uncertainty: Uncertainty | None = None


class Reproducibility(BaseModel):
    """What is needed to compute the same numbers again."""

    input_sha256: str
    factor_sets: list[str]
    factor_data_sha256: str
    engine_version: str


class FootprintPublic(BaseModel):
    """A computed footprint: its lines, total and reproducibility record."""

    id: str | None = None
    created_at: datetime | None = None
    lines: list[FootprintLine]
    total_kg_co2e: Decimal
    factor_sets: list[str]
    warnings: list[str]
    reproducibility: Reproducibility


class BatchSummary(BaseModel):
    rows: int
    computed: int
    failed: int
    total_kg_co2e: Decimal
    errors: list[dict[str, Any]] = Field(description="the first failing rows, with row number and code")
