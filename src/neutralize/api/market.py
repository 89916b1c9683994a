"""Market routes: listings, quotes, orders, payment webhooks, certificates, settlements."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access import users
from neutralize.access.domain import Role
from neutralize.access.service import require
from neutralize.api.deps import ActorDep, ClockDep, KeysDep, SessionDep, SettingsDep, session_factory
from neutralize.certificates import service as certificates
from neutralize.certificates.schemas import Verification
from neutralize.core.clock import Clock
from neutralize.core.config import Settings
from neutralize.core.db import unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import KeyRing
from neutralize.market import gateways, service
from neutralize.market.gateways.base import EventKind, GatewayEvent
from neutralize.market.gateways.sandbox import SandboxGateway
from neutralize.market.schemas import (
    ListingCreate,
    ListingPublic,
    OrderCreate,
    OrderPublic,
    PayoutCreate,
    PendingRetirement,
    ProjectSales,
    QuoteCreate,
    QuotePublic,
    ReconcileReport,
    Settlement,
    SettlementReport,
)
from neutralize.registry import service as registry
from neutralize.scenes import service as scenes

router = APIRouter(prefix="/api/v1", tags=["market"])
CREATED = status.HTTP_201_CREATED
MAX_WEBHOOK_BYTES = 64 * 1024


@router.get("/listings")
def list_listings(session: SessionDep) -> list[ListingPublic]:
    """Credits on offer, with their labels and the quality policy's verdict, cheapest first."""
    return service.list_listings(session=session)


@router.post("/listings", status_code=CREATED)
def create_listing(
    body: ListingCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> ListingPublic:
    return service.create_listing(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/quotes", status_code=CREATED)
def create_quote(
    body: QuoteCreate, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> QuotePublic:
    """Price kilograms, a footprint's total or a stored footprint; guests need no key."""
    return service.create_quote(session=session, clock=clock, settings=settings, cmd=body)


@router.post("/orders", status_code=CREATED)
def create_order(
    body: OrderCreate, request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> OrderPublic:
    """Reserve a quote's credits and start its payment; the same idempotency key returns the first
    order. At most ``NEUTRALIZE_ORDERS_PER_MINUTE`` orders a minute per client address (429)."""
    address = request.client.host if request.client else "unknown"
    users.rate_limit(
        session=session,
        clock=clock,
        bucket=f"order:{address}",
        limit=settings.orders_per_minute,
        window_seconds=60,
    )
    return service.create_order(session=session, clock=clock, settings=settings, cmd=body)


@router.get("/orders/{order_id}")
def read_order(order_id: str, session: SessionDep) -> OrderPublic:
    """An order by its id (unguessable: the id is the guest's handle on it)."""
    return service.order_public(session=session, order_id=order_id)


@router.post("/orders/{order_id}/cancel")
def cancel_order(order_id: str, session: SessionDep, clock: ClockDep) -> OrderPublic:
    return service.cancel_order(session=session, clock=clock, order_id=order_id)


# --- payments -----------------------------------------------------------------------------------------


def settle(
    factory: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    keys: KeyRing,
    gateway: str,
    event: GatewayEvent,
) -> str:
    """Record a verified payment event, then complete a paid order in a transaction of its own: a
    crash between the two leaves the order paid, and ``neutralize market reconcile`` finishes it."""
    with unit_of_work(factory) as session:
        effect = service.apply_payment_event(
            session=session, clock=clock, settings=settings, gateway=gateway, event=event
        )
        order_id = service.order_for_payment(
            session=session, gateway=gateway, provider_ref=event.provider_ref
        )
    if order_id is not None:
        with unit_of_work(factory) as session:
            service.fulfil(session=session, clock=clock, settings=settings, keys=keys, order_id=order_id)
            scenes.record_offsets(session=session, order_ids=[order_id])  # the guest's rank counts it
    return effect


def run_jobs(factory: sessionmaker[Session], clock: Clock, settings: Settings, keys: KeyRing) -> None:
    """The market's periodic work: void stale reservations, allocate waiting shares. Safe to run in
    every process at once (expiry skips rows another process holds)."""
    with unit_of_work(factory) as session:
        service.expire(session=session, clock=clock)
    with unit_of_work(factory) as session:
        service.allocate_pending(session=session, clock=clock, settings=settings, keys=keys)


@router.post("/payments/webhooks/{gateway}")
async def payment_webhook(
    gateway: str, request: Request, clock: ClockDep, settings: SettingsDep, keys: KeysDep
) -> dict[str, str]:
    """A provider's signed notification. A bad signature is refused (422); a repeat has no effect."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise DomainError(code=ErrorCode.PAYLOAD_TOO_LARGE, message="notification too large")
    event = gateways.get(gateway, settings).parse_webhook(
        headers=dict(request.headers), body=body, now=clock.now()
    )
    # The database work blocks: it runs on the thread pool, not on the event loop.
    effect = await run_in_threadpool(settle, session_factory(request), clock, settings, keys, gateway, event)
    return {"effect": effect}


class SandboxPayment(BaseModel):
    outcome: Literal["succeeded", "failed"] = "succeeded"
    deliveries: int = Field(default=1, ge=1, le=3, description="deliver the notification this many times")


def pay_in_sandbox(
    factory: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    keys: KeyRing,
    provider_ref: str,
    outcome: EventKind,
    deliveries: int = 1,
) -> tuple[str, list[str]]:
    """The simulated provider: the buyer pays or is declined, and the provider notifies the platform
    through the same path a real provider's webhook takes (no money moves). Returns the order and
    the effect of each delivery."""
    sandbox = gateways.get("sandbox", settings)
    assert isinstance(sandbox, SandboxGateway)
    with unit_of_work(factory) as session:
        payment = service.payment_by_ref(session=session, gateway="sandbox", provider_ref=provider_ref)
    headers, body = sandbox.notification(
        provider_ref=provider_ref,
        kind=outcome,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        signed_at=clock.now(),
    )
    effects = [
        settle(
            factory,
            clock,
            settings,
            keys,
            "sandbox",
            sandbox.parse_webhook(headers=headers, body=body, now=clock.now()),
        )
        for _ in range(deliveries)
    ]
    return payment.order_id, effects


@router.post("/payments/sandbox/{provider_ref}")
def sandbox_pay(
    provider_ref: str,
    body: SandboxPayment,
    request: Request,
    clock: ClockDep,
    settings: SettingsDep,
    keys: KeysDep,
) -> dict[str, Any]:
    """Pay (or be declined) at the simulated provider; its notifications come back as webhooks would."""
    order_id, effects = pay_in_sandbox(
        session_factory(request),
        clock,
        settings,
        keys,
        provider_ref,
        EventKind(body.outcome),
        body.deliveries,
    )
    return {"order_id": order_id, "effects": effects, "simulated": True}


# --- certificates --------------------------------------------------------------------------------------


@router.get("/certificates/{number}")
def read_certificate(number: str, session: SessionDep) -> dict[str, Any]:
    """The signed certificate (canonical JSON document + Ed25519 signature)."""
    return certificates.get(session=session, number=number)


@router.get("/certificates/{number}/pdf", response_class=Response)
def certificate_pdf(number: str, session: SessionDep) -> Response:
    """The certificate as a bilingual A4 PDF; its signed JSON is embedded (``neutralize verify``)."""
    return Response(
        certificates.pdf(session=session, number=number),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )


@router.get("/certificates/{number}/card.png", response_class=Response)
def certificate_card(number: str, session: SessionDep) -> Response:
    """A PNG share card with the certificate's QR code."""
    return Response(certificates.share_card(session=session, number=number), media_type="image/png")


@router.get("/certificates/{number}/verification")
def verify_certificate(number: str, session: SessionDep, keys: KeysDep) -> Verification:
    """Check a certificate live: signature, and that the registry still shows what it claims."""
    return certificates.verify(session=session, keys=keys, number=number)


# --- money and operations --------------------------------------------------------------------------------


@router.get("/market/projects/{code}/sales")
def project_sales(code: str, session: SessionDep, actor: ActorDep) -> list[ProjectSales]:
    """Public: tonnes sold through the platform and money passed on to the project owner (a draft's
    only to its owner organisation and admins, ``not_found`` to others)."""
    registry.visible_project(session=session, code=code, actor=actor)
    return service.project_sales(session=session, project_code=code)


@router.get("/market/settlements")
def settlements(session: SessionDep, actor: ActorDep) -> SettlementReport | list[Settlement]:
    """Admins see every account; a project owner sees their own settlement only."""
    who = require(actor, Role.ADMIN, Role.PROJECT_OWNER)
    report = service.settlements(session=session)
    if who.is_admin:
        return report
    return [s for s in report.settlements if s.organisation_id == who.organisation_id]


@router.post("/market/payouts", status_code=CREATED)
def payout(body: PayoutCreate, session: SessionDep, clock: ClockDep, actor: ActorDep) -> Settlement:
    return service.payout(session=session, clock=clock, actor=require(actor, Role.ADMIN), cmd=body)


@router.get("/market/retire-pending")
def retire_pending(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, actor: ActorDep
) -> list[PendingRetirement]:
    require(actor, Role.ADMIN)
    return service.retire_pending(session=session, clock=clock, settings=settings)


@router.get("/market/reconciliation")
def reconciliation(session: SessionDep, actor: ActorDep) -> ReconcileReport:
    require(actor, Role.ADMIN)
    return service.reconcile(session=session)


@router.get("/market/alerts")
def alerts(
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[str]:
    require(actor, Role.ADMIN)
    return service.alerts(session=session, clock=clock, settings=settings)[:limit]
