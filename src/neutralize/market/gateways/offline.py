"""Offline payments: the buyer pays by bank transfer or invoice and an operator confirms it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market.gateways.base import GatewayEvent, PaymentStart, RefundResult


class OfflineGateway:
    """No notifications arrive from a bank: ``neutralize market confirm-payment`` stands in for them."""

    name = "offline"
    simulated = False
    fee_bp = 0

    def __init__(self, *, payee: str) -> None:
        self._payee = payee

    def start(
        self, *, payment_id: str, amount_minor: int, currency: str, description: str, return_url: str
    ) -> PaymentStart:
        reference = f"NZ-{payment_id[-12:].upper()}"
        return PaymentStart(
            provider_ref=reference,
            next_action={
                "kind": "bank_transfer",
                "payee": self._payee,
                "amount_minor": amount_minor,
                "currency": currency,
                "reference": reference,
                "description": description,
            },
        )

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes, now: datetime) -> GatewayEvent:
        raise DomainError(
            code=ErrorCode.WEBHOOK_SIGNATURE_INVALID,
            message="offline payments have no webhooks: an operator confirms them",
        )

    def refund(self, *, provider_ref: str, amount_minor: int, currency: str, reason: str) -> RefundResult:
        return RefundResult(provider_ref=provider_ref, done=False, detail="an operator sends the money back")
