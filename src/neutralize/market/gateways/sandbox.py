"""A simulated payment provider for the demo and tests: it signs its notifications like a real one
(HMAC-SHA256 over the timestamp and body, Stripe-style) and can decline, repeat or delay them.

Pages label it as simulated: no money moves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import datetime

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market.gateways.base import EventKind, GatewayEvent, PaymentStart, RefundResult

SIGNATURE_HEADER = "sandbox-signature"
TOLERANCE_SECONDS = 300  # a delivery signed longer ago than this is a replay
MAX_BODY_BYTES = 16 * 1024


class SandboxGateway:
    name = "sandbox"
    simulated = True

    def __init__(self, *, secret: str, fee_bp: int, pay_url: str) -> None:
        self._secret = secret.encode("utf-8")
        self.fee_bp = fee_bp
        self._pay_url = pay_url.rstrip("/")

    def start(
        self, *, payment_id: str, amount_minor: int, currency: str, description: str, return_url: str
    ) -> PaymentStart:
        provider_ref = f"sbx_{secrets.token_hex(12)}"
        return PaymentStart(
            provider_ref=provider_ref,
            next_action={"kind": "redirect", "url": f"{self._pay_url}/{provider_ref}", "simulated": True},
        )

    def refund(self, *, provider_ref: str, amount_minor: int, currency: str, reason: str) -> RefundResult:
        return RefundResult(provider_ref=provider_ref, done=True, detail="refunded (simulated)")

    # --- the provider's side: notifications ------------------------------------------------------------

    def notification(
        self,
        *,
        provider_ref: str,
        kind: EventKind,
        amount_minor: int,
        currency: str,
        signed_at: datetime,
        event_id: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """One signed delivery of an event (deliver it twice to simulate a duplicate)."""
        body = json.dumps(
            {
                "id": event_id or f"evt_{secrets.token_hex(12)}",
                "type": f"payment.{kind.value}",
                "payment": provider_ref,
                "amount_minor": amount_minor,
                "currency": currency,
            },
            separators=(",", ":"),
        ).encode("utf-8")
        return {SIGNATURE_HEADER: self.sign(body, signed_at)}, body

    def sign(self, body: bytes, signed_at: datetime) -> str:
        timestamp = int(signed_at.timestamp())
        mac = hmac.new(self._secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={mac}"

    # --- our side: checking a notification -------------------------------------------------------------

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes, now: datetime) -> GatewayEvent:
        header = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "")
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(fields["t"])
            given = fields["v1"]
        except (KeyError, ValueError):
            raise _refused("the signature header is missing or malformed") from None
        if len(body) > MAX_BODY_BYTES:
            raise _refused("the notification is too large")
        mac = hmac.new(self._secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, given):
            raise _refused("the signature does not match")
        if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
            raise _refused("the signature is too old or from the future: a replay")
        return _event(body)


def _event(body: bytes) -> GatewayEvent:
    try:
        data = json.loads(body)
        kind = EventKind(str(data["type"]).removeprefix("payment."))
        amount = data["amount_minor"]
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError("amount_minor must be an integer")
        return GatewayEvent(
            event_id=str(data["id"])[:120],
            provider_ref=str(data["payment"])[:120],
            kind=kind,
            amount_minor=amount,
            currency=str(data["currency"])[:3],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST, message=f"unreadable notification: {error}"
        ) from None


def _refused(why: str) -> DomainError:
    return DomainError(code=ErrorCode.WEBHOOK_SIGNATURE_INVALID, message=f"webhook refused: {why}")
