"""Payment gateways: one protocol, and the providers the platform ships (offline, sandbox)."""

from __future__ import annotations

from neutralize.core.config import Settings
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market.gateways.base import PaymentGateway
from neutralize.market.gateways.offline import OfflineGateway
from neutralize.market.gateways.sandbox import SandboxGateway


def get(name: str, settings: Settings) -> PaymentGateway:
    """The gateway called ``name`` if the platform offers it (``UNKNOWN_GATEWAY`` otherwise)."""
    if name not in settings.payment_gateways:
        raise DomainError(
            code=ErrorCode.UNKNOWN_GATEWAY,
            message=f"no payment gateway {name!r}; on offer: {', '.join(settings.payment_gateways)}",
        )
    if name == "sandbox":
        return SandboxGateway(
            secret=settings.sandbox_secret(),
            fee_bp=settings.sandbox_fee_bp,
            pay_url=f"{settings.public_url.rstrip('/')}/sandbox/pay",
        )
    return OfflineGateway(payee=settings.offline_payee)
