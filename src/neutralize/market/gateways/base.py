"""The one interface order code sees, whatever the provider (Alipay, WeChat Pay, Stripe, a bank).

A gateway starts a payment and says what the buyer does next (follow a link, scan a code, transfer
money with a reference); it turns the provider's signed notification into a ``GatewayEvent`` or
refuses it; and it asks for refunds. It never touches orders or the database: the market service
decides what an event means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class PaymentStart:
    """The provider's reference for a new payment, and what the buyer does next."""

    provider_ref: str
    next_action: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A verified notification: the provider's event id makes a second delivery harmless."""

    event_id: str
    provider_ref: str
    kind: EventKind
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class RefundResult:
    provider_ref: str
    done: bool  # False: an operator sends the money back (offline), the ledger still records it
    detail: str


class PaymentGateway(Protocol):
    """What every provider adapter offers."""

    name: str
    simulated: bool  # shown to buyers: no real money moves
    fee_bp: int  # the provider's charge on the amount paid, in basis points

    def start(
        self, *, payment_id: str, amount_minor: int, currency: str, description: str, return_url: str
    ) -> PaymentStart: ...

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes, now: datetime) -> GatewayEvent: ...

    def refund(self, *, provider_ref: str, amount_minor: int, currency: str, reason: str) -> RefundResult: ...
