"""Market shapes: listing, quote and order requests, and what the API and CLI return."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neutralize.market.domain import MAX_ORDER_KG, Preference


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListingCreate(Command):
    project_code: str = Field(max_length=40)
    vintage: int = Field(ge=1990, le=2100)
    price_per_tonne_minor: int = Field(gt=0, le=10**9, description="price of one tonne in minor units")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    available_kg: int = Field(gt=0, le=10**12)
    seller_organisation_id: str | None = Field(
        default=None, max_length=40, description="for home-registry stock: the organisation that holds it"
    )


class Finding(BaseModel):
    rule: str
    verdict: str
    reason: str


class ListingPublic(BaseModel):
    id: str
    project_code: str
    project_name: str
    vintage: int
    native: bool
    seller_organisation_id: str
    price_per_tonne_minor: int
    currency: str
    available_kg: int
    sold_kg: int
    active: bool
    labels: list[str]
    verdict: str  # offer, flag, exclude (the quality policy's)
    findings: list[Finding]


class QuoteCreate(Command):
    """Either a mass (``kg``), a footprint's total (``kg_co2e``) or a stored footprint (``footprint_id``);
    either a ``listing_id`` or the platform's choice by ``preference``."""

    kg: int | None = Field(default=None, gt=0, le=MAX_ORDER_KG)
    kg_co2e: Decimal | None = Field(default=None, gt=0, le=MAX_ORDER_KG, allow_inf_nan=False)
    footprint_id: str | None = Field(default=None, max_length=40)
    listing_id: str | None = Field(default=None, max_length=40)
    preference: Preference = Preference.CHEAPEST
    project_type: str | None = Field(default=None, max_length=80)
    buyer_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    buyer_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    gateway: Literal["sandbox", "offline"] | None = Field(
        default=None, description="default: the first on offer"
    )

    @model_validator(mode="after")
    def _one_amount(self) -> QuoteCreate:
        given = [v for v in (self.kg, self.kg_co2e, self.footprint_id) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of kg, kg_co2e and footprint_id")
        return self


class PriceSplitPublic(BaseModel):
    currency: str
    kg: int
    price_per_tonne_minor: int
    credits_minor: int
    platform_fee_minor: int
    tax_minor: int
    payment_fee_minor: int
    total_minor: int
    owner_share_permille: int


class QuotePublic(BaseModel):
    id: str
    listing: ListingPublic
    kg: int
    split: PriceSplitPublic
    gateway: str
    offsets: dict[str, str]
    created_at: datetime
    expires_at: datetime


class Beneficiary(Command):
    display_name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    reason: str = Field(default="Offsetting my footprint", min_length=1, max_length=500)


class OrderCreate(Command):
    quote_id: str = Field(max_length=40)
    beneficiary: Beneficiary
    idempotency_key: str = Field(min_length=8, max_length=120)
    expected_total_minor: int | None = Field(default=None, ge=0, description="refuse if the price changed")
    expected_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class OrderPublic(BaseModel):
    id: str
    status: str
    kg: int
    project_code: str
    vintage: int
    native: bool
    split: PriceSplitPublic
    beneficiary_name: str
    gateway: str
    simulated_payment: bool
    next_action: dict[str, Any]
    reserved_until: datetime | None
    certificate_number: str | None
    note: str | None
    created_at: datetime
    history: list[dict[str, Any]]


class PaymentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_id: str
    gateway: str
    provider_ref: str
    amount_minor: int
    currency: str
    status: str


class PayoutCreate(Command):
    organisation_id: str = Field(max_length=40)
    amount_minor: int = Field(gt=0, le=10**13)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    reference: str = Field(min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=120)


class Settlement(BaseModel):
    organisation_id: str
    organisation_name: str
    currency: str
    owed_minor: int  # passed on from sales, less refunds
    paid_minor: int  # sent out as payouts
    balance_minor: int  # still to pay


class SettlementReport(BaseModel):
    settlements: list[Settlement]
    accounts: dict[str, int]  # every ledger account's balance (minor units, one currency each)
    balanced: bool  # every transaction's legs sum to zero


class ProjectSales(BaseModel):
    project_code: str
    currency: str
    kg_sold: int
    orders: int
    passed_on_minor: int
    reconciled: bool  # the orders and the money ledger agree


class PendingRetirement(BaseModel):
    project_code: str
    vintage: int
    programme: str
    pending_kg: int
    unallocated_kg: int  # in retirements already recorded at home
    tonnes_to_retire: int
    beneficiary_text: str
    oldest_pending: datetime | None
    overdue: bool


class ReconcileReport(BaseModel):
    ok: bool
    expired: int
    fulfilled: list[str]
    allocated: list[str]
    problems: list[str]
