"""Market rules without I/O: order states, the price split, the quality policy and listing choice.

Money is integer minor units of one ISO currency; credits are integer kilograms. Every rounding
here is stated: the buyer's amounts round half up to the minor unit, a footprint rounds up to the
whole kilogram.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any

from neutralize.core.errors import DomainError, ErrorCode

KG_PER_TONNE = 1_000
BASIS_POINTS = 10_000
MAX_ORDER_KG = 100_000_000  # 100,000 t: a larger purchase is a contract, not a checkout


class OrderStatus(StrEnum):
    """Where an order is. Reading top to bottom is the happy path."""

    CREATED = "created"
    RESERVED = "reserved"
    PAYMENT_PENDING = "payment_pending"
    PAID = "paid"
    RETIRED = "retired"  # native credits retired on the beneficiary's behalf
    ALLOCATED = "allocated"  # a share of home-registry stock, pending or done at home
    CERTIFIED = "certified"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.RESERVED, OrderStatus.FAILED, OrderStatus.CANCELLED}),
    OrderStatus.RESERVED: frozenset(
        {OrderStatus.PAYMENT_PENDING, OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.FAILED}
    ),
    OrderStatus.PAYMENT_PENDING: frozenset(
        {OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED}
    ),
    # A late payment for a voided order is still money received: it is paid, then refunded or fulfilled.
    OrderStatus.EXPIRED: frozenset({OrderStatus.PAID}),
    OrderStatus.FAILED: frozenset({OrderStatus.PAID}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.PAID}),
    OrderStatus.PAID: frozenset({OrderStatus.RETIRED, OrderStatus.ALLOCATED, OrderStatus.REFUNDED}),
    OrderStatus.RETIRED: frozenset({OrderStatus.CERTIFIED}),
    OrderStatus.ALLOCATED: frozenset({OrderStatus.CERTIFIED}),
    OrderStatus.CERTIFIED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# Orders whose credits are held for them (a reservation to void if they end early).
HOLDING_STATES = frozenset({OrderStatus.RESERVED, OrderStatus.PAYMENT_PENDING})
# Where a paid order must end.
SETTLED_STATES = frozenset({OrderStatus.CERTIFIED, OrderStatus.REFUNDED})


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Refuse a move the order state machine does not allow."""
    if target not in ORDER_TRANSITIONS[current]:
        raise DomainError(
            code=ErrorCode.INVALID_TRANSITION, message=f"an order cannot go from {current} to {target}"
        )


def kilograms_to_offset(footprint_kg_co2e: Decimal) -> int:
    """The whole kilograms that offset a footprint: always rounded up, never down."""
    if not footprint_kg_co2e.is_finite() or footprint_kg_co2e <= 0:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message="a footprint to offset must be above zero")
    return int(footprint_kg_co2e.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """What the platform adds to the credits' price, in basis points (1 bp = 0.01 %)."""

    platform_fee_bp: int
    platform_fee_min_minor: int
    tax_bp: int  # on the platform fee: the service the platform sells
    payment_fee_bp: int  # the payment provider's charge, passed on as it is


@dataclass(frozen=True, slots=True)
class PriceSplit:
    """Where every minor unit of a purchase goes. ``total_minor`` is what the buyer pays."""

    currency: str
    kg: int
    price_per_tonne_minor: int
    credits_minor: int  # reaches the project owner (or the stock's seller)
    platform_fee_minor: int
    tax_minor: int
    payment_fee_minor: int

    @property
    def total_minor(self) -> int:
        return self.credits_minor + self.platform_fee_minor + self.tax_minor + self.payment_fee_minor

    @property
    def owner_share_permille(self) -> int:
        """The share of the buyer's payment that reaches the project owner, in ‰ (rounded down)."""
        return self.credits_minor * 1000 // self.total_minor if self.total_minor else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "kg": self.kg,
            "price_per_tonne_minor": self.price_per_tonne_minor,
            "credits_minor": self.credits_minor,
            "platform_fee_minor": self.platform_fee_minor,
            "tax_minor": self.tax_minor,
            "payment_fee_minor": self.payment_fee_minor,
            "total_minor": self.total_minor,
            "owner_share_permille": self.owner_share_permille,
        }


def _share(amount: int, numerator: int, denominator: int) -> int:
    """``amount × numerator / denominator`` rounded half up (amounts are never negative)."""
    return (amount * numerator * 2 + denominator) // (denominator * 2)


def price(*, kg: int, price_per_tonne_minor: int, currency: str, fees: FeeSchedule) -> PriceSplit:
    """The full price split for ``kg`` of credits at ``price_per_tonne_minor``."""
    if not 0 < kg <= MAX_ORDER_KG:
        raise DomainError(
            code=ErrorCode.OUT_OF_RANGE, message=f"a purchase is between 1 and {MAX_ORDER_KG:,} kg"
        )
    credits = _share(kg, price_per_tonne_minor, KG_PER_TONNE)
    platform_fee = max(_share(credits, fees.platform_fee_bp, BASIS_POINTS), fees.platform_fee_min_minor)
    tax = _share(platform_fee, fees.tax_bp, BASIS_POINTS)
    payment_fee = _share(credits + platform_fee + tax, fees.payment_fee_bp, BASIS_POINTS)
    return PriceSplit(
        currency=currency,
        kg=kg,
        price_per_tonne_minor=price_per_tonne_minor,
        credits_minor=credits,
        platform_fee_minor=platform_fee,
        tax_minor=tax,
        payment_fee_minor=payment_fee,
    )


# --- quality policy --------------------------------------------------------------------------------


class Verdict(StrEnum):
    OFFER = "offer"
    FLAG = "flag"  # shown with the reason, never picked by default
    EXCLUDE = "exclude"  # not offered at all


@dataclass(frozen=True, slots=True)
class CreditFacts:
    """What the quality policy looks at: one listing's project vintage and its labels."""

    standard: str
    vintage: int
    credit_type: str | None  # None: a mirrored project's home registry does not say
    nature_based: bool | None
    project_type: str
    country: str
    region: str | None
    labels: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    verdict: Verdict
    reason: str


def assess(facts: CreditFacts, policy: Mapping[str, Any]) -> list[Finding]:
    """Apply every rule of ``policy`` (the data of ``market/policy.json``) to one listing."""
    findings: list[Finding] = []
    for rule in policy.get("rules", []):
        if _matches(facts, rule["when"]):
            findings.append(Finding(rule["id"], Verdict(rule["verdict"]), rule["reason"]))
    return findings


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    if any(f.verdict is Verdict.EXCLUDE for f in findings):
        return Verdict.EXCLUDE
    return Verdict.FLAG if findings else Verdict.OFFER


_QUALITY_LABELS = ("icvcm_ccp", "corsia_phase", "carbon_inclusive", "article6_authorised")


def _matches(facts: CreditFacts, when: Mapping[str, Any]) -> bool:
    """Every condition of a rule must hold (an empty rule never matches)."""
    tests = {
        "label": lambda v: bool(facts.labels.get(v)),
        "standard_in": lambda v: facts.standard in v,
        "vintage_before": lambda v: facts.vintage < int(v),
        "no_quality_label": lambda v: bool(v) == (not any(facts.labels.get(k) for k in _QUALITY_LABELS)),
        "project_type_in": lambda v: facts.project_type in v,
    }
    unknown = set(when) - set(tests)
    if unknown:
        raise ValueError(f"unknown policy conditions: {sorted(unknown)}")
    return bool(when) and all(tests[key](value) for key, value in when.items())


# --- choosing a listing ------------------------------------------------------------------------------


class Preference(StrEnum):
    CHEAPEST = "cheapest"
    LOCAL_FIRST = "local_first"
    REMOVALS_ONLY = "removals_only"


@dataclass(frozen=True, slots=True)
class Candidate:
    listing_id: str
    price_per_tonne_minor: int
    available_kg: int
    facts: CreditFacts
    verdict: Verdict


def choose(
    candidates: Sequence[Candidate],
    *,
    kg: int,
    preference: Preference,
    project_type: str | None = None,
    buyer_country: str | None = None,
    buyer_region: str | None = None,
) -> Candidate:
    """The platform's pick: offered (never flagged) listings with enough stock, by preference,
    then price, then listing id so the same inputs always give the same pick."""
    pool = [c for c in candidates if c.verdict is Verdict.OFFER and c.available_kg >= kg]
    if preference is Preference.REMOVALS_ONLY:
        pool = [c for c in pool if c.facts.credit_type == "removal"]
    if project_type is not None:
        pool = [c for c in pool if c.facts.project_type == project_type]
    if not pool:
        raise DomainError(
            code=ErrorCode.NO_ELIGIBLE_LISTING,
            message=f"no offered listing has {kg:,} kg for this choice",
        )

    def distance(c: Candidate) -> int:
        if preference is not Preference.LOCAL_FIRST:
            return 0
        if buyer_region is not None and c.facts.region == buyer_region:
            return 0
        return 1 if buyer_country is not None and c.facts.country == buyer_country else 2

    return min(pool, key=lambda c: (distance(c), c.price_per_tonne_minor, c.listing_id))


# --- text from buyers ----------------------------------------------------------------------------------


def clean_text(value: str, *, field: str, max_length: int) -> str:
    """Trimmed, NFC-normalised text without control characters, at most ``max_length`` long."""
    text = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in text):
        raise DomainError(
            code=ErrorCode.INVALID_TEXT, message=f"{field} contains control or invisible characters"
        )
    if len(text) > max_length:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"{field} is at most {max_length} characters")
    return text


def whole_tonnes_to_retire(pending_kg: int, unallocated_kg: int) -> int:
    """Whole tonnes to retire at home so that ``pending_kg`` of shares fit beside what recorded
    retirements still have unallocated."""
    missing = pending_kg - unallocated_kg
    return math.ceil(missing / KG_PER_TONNE) if missing > 0 else 0
