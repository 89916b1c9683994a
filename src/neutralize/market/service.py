"""Market use cases: list credits, quote, order, take payment, retire or allocate, certify, settle.

Two phases (DESIGN.md §4): an order reserves credits, a confirmed payment posts them (retires native
credits, or allocates a share of home-registry stock) and certifies, and failure or expiry voids the
reservation. Locks are always taken in the order: order, then listing, then the registry's chain.
Services never commit: the caller's unit of work does; a paid order is completed in a unit of work
of its own, so a crash in between leaves it paid and ``reconcile`` finishes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.certificates import service as certificates
from neutralize.certificates.domain import NativeEvidence, ShareEvidence, claims_in_name
from neutralize.core.canonical import canonical_json
from neutralize.core.clock import Clock, as_utc
from neutralize.core.config import Settings
from neutralize.core.db import hold
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.ids import new_id
from neutralize.core.signing import KeyRing
from neutralize.footprint import service as footprints
from neutralize.market import gateways
from neutralize.market.domain import (
    HOLDING_STATES,
    Candidate,
    CreditFacts,
    FeeSchedule,
    OrderStatus,
    PriceSplit,
    Verdict,
    assess,
    check_transition,
    choose,
    clean_text,
    kilograms_to_offset,
    price,
    verdict_of,
    whole_tonnes_to_retire,
)
from neutralize.market.gateways.base import EventKind, GatewayEvent
from neutralize.market.models import (
    LedgerEntry,
    Listing,
    Order,
    OrderEvent,
    Payment,
    PaymentEvent,
    PendingShare,
    QualityPolicy,
    Quote,
)
from neutralize.market.schemas import (
    Finding,
    ListingCreate,
    ListingPublic,
    OrderCreate,
    OrderPublic,
    PaymentPublic,
    PayoutCreate,
    PendingRetirement,
    PriceSplitPublic,
    ProjectSales,
    QuoteCreate,
    QuotePublic,
    ReconcileReport,
    Settlement,
    SettlementReport,
)
from neutralize.registry import journal, mirror
from neutralize.registry import service as registry
from neutralize.registry.domain import label_phrases
from neutralize.registry.schemas import PostCmd, ProjectPublic, ReservationCmd, ReserveCmd, Units

MARKET_ACTOR_ID = "market"
MARKET_ADMIN = Actor(id=MARKET_ACTOR_ID, role=Role.ADMIN)


def _seller(order_or_listing: Order | Listing) -> Actor:
    """The market acts for the seller, who consented by listing: only the seller's units move."""
    organisation = order_or_listing.seller_organisation_id
    return Actor(id=MARKET_ACTOR_ID, role=Role.PROJECT_OWNER, organisation_id=organisation)


# --- quality policy -----------------------------------------------------------------------------


class _Rule(BaseModel):
    id: str = Field(min_length=1, max_length=60)
    when: dict[str, Any] = Field(min_length=1)
    verdict: Verdict
    reason: str = Field(min_length=1, max_length=300)

    @field_validator("when")
    @classmethod
    def _known(cls, when: dict[str, Any]) -> dict[str, Any]:
        kinds: dict[str, type] = {
            "label": str,
            "standard_in": list,
            "vintage_before": int,
            "no_quality_label": bool,
            "project_type_in": list,
        }
        if set(when) - set(kinds):
            raise ValueError(f"unknown conditions {sorted(set(when) - set(kinds))}; known: {sorted(kinds)}")
        for key, value in when.items():
            kind = kinds[key]
            wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
            if wrong or (kind is list and not all(isinstance(v, str) for v in value)):
                raise ValueError(f"{key} takes {'a list of strings' if kind is list else kind.__name__}")
        return when


class _Policy(BaseModel):
    about: str = ""
    rules: list[_Rule] = Field(max_length=100)


@lru_cache(maxsize=1)
def default_policy() -> dict[str, Any]:
    text = resources.files("neutralize.market").joinpath("policy.json").read_text("utf-8")
    policy: dict[str, Any] = json.loads(text)
    return policy


def current_policy(*, session: Session) -> dict[str, Any]:
    """The quality policy in force: the newest an admin set, else the shipped default."""
    row = session.scalars(select(QualityPolicy).order_by(QualityPolicy.version.desc()).limit(1)).first()
    return row.document if row is not None else default_policy()


def set_policy(*, session: Session, clock: Clock, actor: Actor, document: Any) -> dict[str, Any]:
    """Put a new version of the quality policy in force (admins only)."""
    require(actor, Role.ADMIN)
    try:
        policy = _Policy.model_validate(document).model_dump(mode="json")
    except ValidationError as error:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message=f"not a quality policy: {error}") from None
    hold(session, "neutralize.quality_policy")  # two admins at once: one version each, in turn
    latest = session.scalar(select(func.max(QualityPolicy.version))) or 0
    session.add(QualityPolicy(version=latest + 1, document=policy, actor=actor.id, created_at=clock.now()))
    session.flush()
    return policy


# --- listings ---------------------------------------------------------------------------------------


def create_listing(*, session: Session, clock: Clock, actor: Actor, cmd: ListingCreate) -> ListingPublic:
    """Offer credits of a project vintage: a project owner its native holdings; an admin the platform's
    stock at a home registry."""
    require(actor, Role.ADMIN, Role.PROJECT_OWNER)
    project = registry.get_project(session=session, code=cmd.project_code)
    if project.status != "registered":
        raise DomainError(code=ErrorCode.PROJECT_NOT_REGISTERED, message=f"{project.code} is not registered")
    if project.native:
        seller = _native_seller(session, actor, project, cmd)
    else:
        require(actor, Role.ADMIN)
        if cmd.seller_organisation_id is None:
            raise DomainError(
                code=ErrorCode.MISSING_FIELD,
                message="name the organisation whose home-registry stock this is (seller_organisation_id)",
            )
        seller = registry.organisation_public(session=session, organisation_id=cmd.seller_organisation_id).id
        free = _mirrored_free_kg(session, project, cmd.vintage)
        if cmd.available_kg > free:
            raise DomainError(
                code=ErrorCode.INSUFFICIENT_UNITS,
                message=f"only {free:,} kg of home stock is free to list for {project.code} {cmd.vintage}",
            )
    now = clock.now()
    listing = Listing(
        id=new_id("lst", now),
        project_id=project.id,
        vintage=cmd.vintage,
        seller_organisation_id=seller,
        native=project.native,
        price_per_tonne_minor=cmd.price_per_tonne_minor,
        currency=cmd.currency,
        available_kg=cmd.available_kg,
        sold_kg=0,
        active=True,
        actor=actor.id,
        created_at=now,
    )
    session.add(listing)
    session.flush()
    return _listing_public(listing, project, current_policy(session=session))


def _native_seller(session: Session, actor: Actor, project: ProjectPublic, cmd: ListingCreate) -> str:
    if actor.organisation_id is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="only an organisation lists native credits")
    # The vintage's chain lock: two listings made at once cannot both count the same holding.
    journal.lock_chain(session, journal.vintage_chain(project.code, cmd.vintage))
    held = registry.held_kg(
        session=session, organisation_id=actor.organisation_id, project_code=project.code, vintage=cmd.vintage
    )
    listed = _listed_kg(session, project.id, cmd.vintage, seller=actor.organisation_id)
    if cmd.available_kg > held - listed:
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS,
            message=f"you hold {held:,} kg of {project.code} {cmd.vintage}, {listed:,} of them listed "
            f"already; list at most {max(held - listed, 0):,}",
        )
    return actor.organisation_id


def _listed_kg(session: Session, project_id: str, vintage: int, *, seller: str | None = None) -> int:
    """Kilograms active listings of a project vintage still offer (of one seller, if given)."""
    query = select(func.coalesce(func.sum(Listing.available_kg), 0)).where(
        Listing.project_id == project_id, Listing.vintage == vintage, Listing.active.is_(True)
    )
    if seller is not None:
        query = query.where(Listing.seller_organisation_id == seller)
    return int(session.scalar(query) or 0)


def _mirrored_free_kg(session: Session, project: ProjectPublic, vintage: int) -> int:
    """Home stock of a vintage that nothing claims yet: unretired holdings plus room in recorded
    retirements, less what listings offer and what they sold that no retirement holds yet (held
    for orders, paid, or a share still waiting)."""
    journal.lock_chain(session, f"home:{project.code}")  # one listing at a time counts the stock
    stock = mirror.unretired_stock_kg(session=session, project_code=project.code, vintage=vintage)
    room = sum(
        r.quantity_kg - r.allocated_kg
        for r in mirror.retirements_with_room(session=session, project_code=project.code, vintage=vintage)
    )
    sold = session.scalar(
        select(func.coalesce(func.sum(Listing.sold_kg), 0)).where(
            Listing.project_id == project.id, Listing.vintage == vintage
        )
    )
    allocated = session.scalar(
        select(func.coalesce(func.sum(PendingShare.kg), 0)).where(
            PendingShare.project_id == project.id,
            PendingShare.vintage == vintage,
            PendingShare.home_retirement_id.is_not(None),
        )
    )
    claimed = _listed_kg(session, project.id, vintage) + int(sold or 0) - int(allocated or 0)
    return max(stock + room - claimed, 0)


def list_listings(*, session: Session, include_inactive: bool = False) -> list[ListingPublic]:
    """Every listing with its labels and the quality policy's verdict, cheapest first."""
    policy = current_policy(session=session)
    query = select(Listing).order_by(Listing.price_per_tonne_minor, Listing.id)
    if not include_inactive:
        query = query.where(Listing.active.is_(True))
    projects: dict[str, ProjectPublic] = {}
    result = []
    for listing in session.scalars(query):
        project = projects.get(listing.project_id) or _project_by_id(session, listing.project_id)
        projects[listing.project_id] = project
        if include_inactive or project.status == "registered":  # a suspended project's are not on offer
            result.append(_listing_public(listing, project, policy))
    return result


def get_listing(*, session: Session, listing_id: str) -> ListingPublic:
    listing = _listing(session, listing_id)
    project = _project_by_id(session, listing.project_id)
    return _listing_public(listing, project, current_policy(session=session))


def _listing(session: Session, listing_id: str, *, lock: bool = False) -> Listing:
    """A listing, locked for a change of its counts if ``lock``. The lock is FOR NO KEY UPDATE: it
    must not block the FOR KEY SHARE that PostgreSQL takes to check an order's foreign key, or a
    fulfilment holding the registry chain would deadlock with an order creation holding the listing."""
    if lock:
        query = select(Listing).where(Listing.id == listing_id).with_for_update(key_share=True)
        # populate_existing: a row the session already holds is read again under the lock
        listing = session.scalars(query.execution_options(populate_existing=True)).first()
    else:  # the session's identity map answers without a query when it holds the row
        listing = session.get(Listing, listing_id)
    if listing is None:
        raise NotFoundError(f"no listing {listing_id!r}")
    return listing


def _project_by_id(session: Session, project_id: str) -> ProjectPublic:
    return registry.project_by_id(session=session, project_id=project_id)


def _facts(listing: Listing, project: ProjectPublic) -> CreditFacts:
    return CreditFacts(
        standard=project.standard,
        vintage=listing.vintage,
        credit_type=project.credit_type,
        nature_based=project.nature_based,
        project_type=project.project_type,
        country=project.country,
        region=project.region,
        labels=project.labels,
    )


def _listing_public(listing: Listing, project: ProjectPublic, policy: Mapping[str, Any]) -> ListingPublic:
    findings = assess(_facts(listing, project), policy)
    return ListingPublic(
        id=listing.id,
        project_code=project.code,
        project_name=project.name,
        vintage=listing.vintage,
        native=listing.native,
        seller_organisation_id=listing.seller_organisation_id,
        price_per_tonne_minor=listing.price_per_tonne_minor,
        currency=listing.currency,
        available_kg=listing.available_kg,
        sold_kg=listing.sold_kg,
        active=listing.active,
        labels=label_phrases(
            standard=project.standard,
            vintage=listing.vintage,
            credit_type=project.credit_type,
            nature_based=project.nature_based,
            labels=project.labels,
            native=project.native,
        ),
        verdict=verdict_of(findings).value,
        findings=[Finding(rule=f.rule, verdict=f.verdict.value, reason=f.reason) for f in findings],
    )


# --- quotes -------------------------------------------------------------------------------------------


def fees(settings: Settings, gateway: str) -> FeeSchedule:
    return FeeSchedule(
        platform_fee_bp=settings.platform_fee_bp,
        platform_fee_min_minor=settings.platform_fee_min_minor,
        tax_bp=settings.tax_bp,
        payment_fee_bp=gateways.get(gateway, settings).fee_bp,
    )


def create_quote(*, session: Session, clock: Clock, settings: Settings, cmd: QuoteCreate) -> QuotePublic:
    """Price some kilograms (or a footprint, rounded up to whole kg) on one listing; it expires."""
    gateway = cmd.gateway or settings.payment_gateways[0]
    gateways.get(gateway, settings)  # refuses a gateway that is not on offer
    kg, offsets = _amount(session, cmd)
    policy = current_policy(session=session)
    listing = _pick_listing(session, cmd, kg, policy)
    if cmd.currency is not None and cmd.currency != listing.currency:
        raise DomainError(
            code=ErrorCode.CURRENCY_MISMATCH,
            message=f"this listing is priced in {listing.currency}, not {cmd.currency}",
        )
    split = price(
        kg=kg,
        price_per_tonne_minor=listing.price_per_tonne_minor,
        currency=listing.currency,
        fees=fees(settings, gateway),
    )
    now = clock.now()
    quote = Quote(
        id=new_id("quo", now),
        listing_id=listing.id,
        kg=kg,
        split=split.as_dict(),
        gateway=gateway,
        footprint_id=cmd.footprint_id,
        offsets=offsets,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.quote_ttl_seconds),
    )
    session.add(quote)
    session.flush()
    project = _project_by_id(session, listing.project_id)
    return QuotePublic(
        id=quote.id,
        listing=_listing_public(listing, project, policy),
        kg=kg,
        split=PriceSplitPublic(**quote.split),
        gateway=quote.gateway,
        offsets=offsets,
        created_at=now,
        expires_at=quote.expires_at,
    )


def _amount(session: Session, cmd: QuoteCreate) -> tuple[int, dict[str, str]]:
    """Whole kilograms to buy, and what they offset in words."""
    if cmd.footprint_id is not None:
        footprint = footprints.get(session=session, footprint_id=cmd.footprint_id)
        total = footprint.total_kg_co2e
        n = len(footprint.lines)
        kg = kilograms_to_offset(total)
        return kg, {
            "en": f"Footprint {cmd.footprint_id}: {n} activities, {_kg_text(total)} kg CO2e",
            "zh": f"碳足迹 {cmd.footprint_id}：{n} 项活动，{_kg_text(total)} 千克二氧化碳当量",
        }
    if cmd.kg_co2e is not None:
        kg = kilograms_to_offset(cmd.kg_co2e)
        return kg, {
            "en": f"A footprint of {_kg_text(cmd.kg_co2e)} kg CO2e",
            "zh": f"{_kg_text(cmd.kg_co2e)} 千克二氧化碳当量的碳足迹",
        }
    assert cmd.kg is not None
    return cmd.kg, {"en": f"{cmd.kg:,} kg CO2e", "zh": f"{cmd.kg:,} 千克二氧化碳当量"}


def _kg_text(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1')):,}"


def _pick_listing(session: Session, cmd: QuoteCreate, kg: int, policy: Mapping[str, Any]) -> Listing:
    if cmd.listing_id is not None:
        listing = _listing(session, cmd.listing_id)
        project = _project_by_id(session, listing.project_id)
        if (
            not listing.active
            or project.status != "registered"
            or verdict_of(assess(_facts(listing, project), policy)) is Verdict.EXCLUDE
        ):
            raise DomainError(
                code=ErrorCode.LISTING_EXCLUDED, message=f"listing {listing.id} is not on offer"
            )
        if listing.available_kg < kg:
            raise DomainError(
                code=ErrorCode.INSUFFICIENT_UNITS,
                message=f"listing {listing.id} has {listing.available_kg:,} kg, not {kg:,}",
            )
        return listing
    candidates = []
    by_id: dict[str, Listing] = {}
    query = select(Listing).where(Listing.active.is_(True), Listing.available_kg >= kg)
    if cmd.currency is not None:
        query = query.where(Listing.currency == cmd.currency)
    for listing in session.scalars(query):
        project = _project_by_id(session, listing.project_id)
        if project.status != "registered":
            continue  # a suspended project's credits are not on offer
        facts = _facts(listing, project)
        by_id[listing.id] = listing
        verdict = verdict_of(assess(facts, policy))
        candidates.append(
            Candidate(listing.id, listing.price_per_tonne_minor, listing.available_kg, facts, verdict)
        )
    chosen = choose(
        candidates,
        kg=kg,
        preference=cmd.preference,
        project_type=cmd.project_type,
        buyer_country=cmd.buyer_country,
        buyer_region=cmd.buyer_region,
    )
    return by_id[chosen.listing_id]


# --- orders -------------------------------------------------------------------------------------------


def create_order(*, session: Session, clock: Clock, settings: Settings, cmd: OrderCreate) -> OrderPublic:
    """Reserve the quote's credits and start its payment. The client's idempotency key makes a retry
    return the first order; the same key with another request is refused."""
    name = clean_text(cmd.beneficiary.display_name, field="beneficiary.display_name", max_length=200)
    reason = clean_text(cmd.beneficiary.reason, field="beneficiary.reason", max_length=500)
    if not name or not reason:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message="the beneficiary needs a name and a reason")
    if reserved := claims_in_name(name, certificates.claims_policy()):
        raise DomainError(
            code=ErrorCode.CLAIM_NOT_SUPPORTED,
            message=f"a name on a certificate may not carry a claim ({', '.join(reserved)})",
        )
    digest = hashlib.sha256(
        canonical_json(cmd.model_dump(mode="json", exclude={"idempotency_key"}))
    ).hexdigest()
    earlier = session.scalars(select(Order).where(Order.idempotency_key == cmd.idempotency_key)).first()
    if earlier is not None:
        if earlier.request_sha256 != digest:
            raise DomainError(
                code=ErrorCode.IDEMPOTENCY_CONFLICT,
                message=f"idempotency key {cmd.idempotency_key!r} was used for a different order",
            )
        return order_public(session=session, order_id=earlier.id)
    now = clock.now()
    quote = session.get(Quote, cmd.quote_id)
    if quote is None:
        raise NotFoundError(f"no quote {cmd.quote_id!r}")
    if as_utc(quote.expires_at) <= now:
        raise DomainError(code=ErrorCode.QUOTE_EXPIRED, message="the quote has expired: ask for a new one")
    split = PriceSplitPublic(**quote.split)
    _check_expectations(cmd, split)
    listing = _listing(session, quote.listing_id)  # its project and seller never change
    order = Order(
        id=new_id("ord", now),
        idempotency_key=cmd.idempotency_key,
        request_sha256=digest,
        quote_id=quote.id,
        listing_id=listing.id,
        project_id=listing.project_id,
        seller_organisation_id=listing.seller_organisation_id,
        native=listing.native,
        status=OrderStatus.CREATED.value,
        kg=quote.kg,
        currency=split.currency,
        price_per_tonne_minor=split.price_per_tonne_minor,
        credits_minor=split.credits_minor,
        platform_fee_minor=split.platform_fee_minor,
        tax_minor=split.tax_minor,
        payment_fee_minor=split.payment_fee_minor,
        total_minor=split.total_minor,
        beneficiary_name=name,
        beneficiary_email=cmd.beneficiary.email,
        reason=reason,
        offsets=quote.offsets,
        gateway=quote.gateway,
        reservation_round=0,
        created_at=now,
        updated_at=now,
    )
    # All or nothing, whatever the caller does with a refusal: a savepoint around the writes.
    with session.begin_nested():
        _insert_order(session, order)
        _event(session, order, None, OrderStatus.CREATED, "", now)
        # Everything above contends for nothing; from here the listing and the registry chain are
        # held until the commit, so only the reservation itself and the payment's start come after.
        listing = _listing(session, quote.listing_id, lock=True)
        if not listing.active or listing.available_kg < quote.kg:
            raise DomainError(
                code=ErrorCode.UNITS_NOT_AVAILABLE,
                message=f"only {listing.available_kg:,} kg are left on this listing",
            )
        _reserve(session, clock, settings, order, listing)
        _start_payment(session, clock, settings, order)
    return _order_public(session, order)


def _check_expectations(cmd: OrderCreate, split: PriceSplitPublic) -> None:
    if cmd.expected_currency is not None and cmd.expected_currency != split.currency:
        raise DomainError(
            code=ErrorCode.CURRENCY_MISMATCH,
            message=f"the quote is in {split.currency}, not {cmd.expected_currency}",
        )
    if cmd.expected_total_minor is not None and cmd.expected_total_minor != split.total_minor:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"the quote's total is {split.total_minor}, not {cmd.expected_total_minor}",
        )


def _insert_order(session: Session, order: Order) -> None:
    try:
        with session.begin_nested():
            session.add(order)
    except IntegrityError:
        raise DomainError(
            code=ErrorCode.IDEMPOTENCY_CONFLICT,
            message=f"idempotency key {order.idempotency_key!r} is being used concurrently: retry",
        ) from None


def _transition(session: Session, order: Order, target: OrderStatus, now: datetime, note: str = "") -> None:
    current = OrderStatus(order.status)
    check_transition(current, target)
    order.status, order.updated_at = target.value, now
    if note:
        order.note = note[:500]
    _event(session, order, current, target, note, now)


def _event(
    session: Session, order: Order, source: OrderStatus | None, target: OrderStatus, note: str, at: datetime
) -> None:
    session.add(
        OrderEvent(
            order_id=order.id,
            from_status=None if source is None else source.value,
            to_status=target.value,
            note=note[:500],
            at=at,
        )
    )


def _reserve(session: Session, clock: Clock, settings: Settings, order: Order, listing: Listing) -> None:
    """Hold the order's credits: the listing's kilograms, and for native credits the registry units."""
    now = clock.now()
    listing.available_kg -= order.kg
    listing.sold_kg += order.kg
    order.reservation_round += 1
    if order.native:
        registry.reserve(
            session=session,
            clock=clock,
            actor=_seller(order),
            cmd=ReserveCmd(
                units=_units(session, order),
                reservation=order.id,
                idempotency_key=f"{order.id}:reserve:{order.reservation_round}",
            ),
        )
    order.reserved_until = now + timedelta(seconds=settings.reservation_ttl_seconds)
    if OrderStatus(order.status) is OrderStatus.CREATED:
        _transition(session, order, OrderStatus.RESERVED, now)


def _units(session: Session, order: Order) -> Units:
    project = _project_by_id(session, order.project_id)
    listing = _listing(session, order.listing_id)
    return Units(project_code=project.code, vintage=listing.vintage, quantity_kg=order.kg)


def _void(session: Session, clock: Clock, order: Order, target: OrderStatus, note: str) -> None:
    """End an unpaid order and give its credits back."""
    _release(session, clock, order)
    _transition(session, order, target, clock.now(), note)


def _release(session: Session, clock: Clock, order: Order) -> None:
    """Give an order's held credits back: the listing's kilograms and the registry reservation."""
    if order.reserved_until is None:  # nothing held (released before, or never reserved again)
        return
    listing = _listing(session, order.listing_id, lock=True)
    listing.available_kg += order.kg
    listing.sold_kg -= order.kg
    if order.native:
        registry.release(
            session=session,
            clock=clock,
            actor=_seller(order),
            cmd=ReservationCmd(
                reservation=order.id, idempotency_key=f"{order.id}:release:{order.reservation_round}"
            ),
        )
    order.reserved_until = None


def _start_payment(session: Session, clock: Clock, settings: Settings, order: Order) -> None:
    gateway = gateways.get(order.gateway, settings)
    now = clock.now()
    payment_id = new_id("pay", now)
    start = gateway.start(
        payment_id=payment_id,
        amount_minor=order.total_minor,
        currency=order.currency,
        description=f"Offset {order.kg:,} kg CO2e (order {order.id})",
        return_url=f"{settings.public_url.rstrip('/')}/orders/{order.id}",
    )
    session.add(
        Payment(
            id=payment_id,
            order_id=order.id,
            gateway=gateway.name,
            provider_ref=start.provider_ref,
            amount_minor=order.total_minor,
            currency=order.currency,
            status="pending",
            next_action=dict(start.next_action),
            created_at=now,
            updated_at=now,
        )
    )
    _transition(session, order, OrderStatus.PAYMENT_PENDING, now)


def cancel_order(*, session: Session, clock: Clock, order_id: str) -> OrderPublic:
    """The buyer gives up before paying: the reservation is voided."""
    order = _order(session, order_id, lock=True)
    if OrderStatus(order.status) not in HOLDING_STATES:
        raise DomainError(
            code=ErrorCode.INVALID_TRANSITION, message=f"an order that is {order.status} cannot be cancelled"
        )
    _void(session, clock, order, OrderStatus.CANCELLED, "cancelled by the buyer")
    return _order_public(session, order)


def _order(session: Session, order_id: str, *, lock: bool = False) -> Order:
    if lock:
        query = select(Order).where(Order.id == order_id).with_for_update()
        order = session.scalars(query.execution_options(populate_existing=True)).first()
    else:
        order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"no order {order_id!r}")
    return order


def order_public(*, session: Session, order_id: str) -> OrderPublic:
    return _order_public(session, _order(session, order_id))


def _order_public(session: Session, order: Order) -> OrderPublic:
    payment = session.scalars(select(Payment).where(Payment.order_id == order.id)).first()
    project = _project_by_id(session, order.project_id)
    listing = _listing(session, order.listing_id)
    events = session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    )
    split = PriceSplit(
        currency=order.currency,
        kg=order.kg,
        price_per_tonne_minor=order.price_per_tonne_minor,
        credits_minor=order.credits_minor,
        platform_fee_minor=order.platform_fee_minor,
        tax_minor=order.tax_minor,
        payment_fee_minor=order.payment_fee_minor,
    )
    return OrderPublic(
        id=order.id,
        status=order.status,
        kg=order.kg,
        project_code=project.code,
        vintage=listing.vintage,
        native=order.native,
        split=PriceSplitPublic(**split.as_dict()),
        beneficiary_name=order.beneficiary_name,
        gateway=order.gateway,
        simulated_payment=order.gateway == "sandbox",
        next_action=dict(payment.next_action) if payment is not None else {},
        reserved_until=order.reserved_until,
        certificate_number=order.certificate_number,
        note=order.note,
        created_at=order.created_at,
        history=[
            {"from": e.from_status, "to": e.to_status, "note": e.note, "at": e.at.isoformat()} for e in events
        ],
    )


# --- payments ----------------------------------------------------------------------------------------


def apply_payment_event(
    *, session: Session, clock: Clock, settings: Settings, gateway: str, event: GatewayEvent
) -> str:
    """What a verified provider notification does to its order; a repeat, late or out-of-order one
    never has a second effect. Returns the effect, which is also recorded."""
    of_payment = select(Payment).where(Payment.gateway == gateway, Payment.provider_ref == event.provider_ref)
    order_id = session.scalars(of_payment.with_only_columns(Payment.order_id)).first()
    # The order's lock first, as everywhere: it also makes two deliveries of one event take turns.
    order = _order(session, order_id, lock=True) if order_id is not None else None
    if session.get(PaymentEvent, (gateway, event.event_id)) is not None:
        return "duplicate: no effect"
    if order is None:
        effect = "ignored: no such payment"
    else:
        payment = session.scalars(
            of_payment.with_for_update().execution_options(populate_existing=True)
        ).one()
        effect = _apply(session, clock, settings, payment, order, event)
    kept = PaymentEvent(
        gateway=gateway,
        event_id=event.event_id,
        provider_ref=event.provider_ref,
        kind=event.kind.value,
        amount_minor=event.amount_minor,
        currency=event.currency,
        effect=effect,
        received_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(kept)
    except IntegrityError:  # delivered twice at once for no known payment: no order lock serialised them
        return "duplicate: no effect"
    return effect


def _apply(
    session: Session, clock: Clock, settings: Settings, payment: Payment, order: Order, event: GatewayEvent
) -> str:
    status = OrderStatus(order.status)
    if event.kind is EventKind.FAILED:
        if status in HOLDING_STATES:
            payment.status = "failed"
            _void(session, clock, order, OrderStatus.FAILED, "the payment was declined")
            return "failed: reservation voided"
        return f"no effect: the order is {status}"
    if event.kind is EventKind.REFUNDED:
        return "no effect: refunds are started here and recorded when made"
    if (event.amount_minor, event.currency) != (payment.amount_minor, payment.currency):
        return f"refused: {event.amount_minor} {event.currency} does not match the payment"
    if status in HOLDING_STATES:
        _paid(session, clock, payment, order)
        return "paid"
    if status is OrderStatus.CANCELLED:
        _paid(session, clock, payment, order)
        refund(session=session, clock=clock, settings=settings, actor=MARKET_ADMIN, order_id=order.id,
               reason="paid after the buyer cancelled the order")  # fmt: skip
        return "paid after cancellation: refunded"
    if status in (OrderStatus.EXPIRED, OrderStatus.FAILED):
        _paid(session, clock, payment, order)
        return _reserve_again_or_refund(session, clock, settings, order)
    return f"no effect: the order is already {status}"


def _paid(session: Session, clock: Clock, payment: Payment, order: Order) -> None:
    now = clock.now()
    payment.status, payment.updated_at = "succeeded", now
    _transition(session, order, OrderStatus.PAID, now)
    _post_money(
        session,
        clock,
        kind="sale",
        order=order,
        actor=MARKET_ACTOR_ID,
        legs=[
            (f"gateway:{order.gateway}", order.total_minor),
            (f"owner:{order.seller_organisation_id}", -order.credits_minor),
            ("platform:fees", -order.platform_fee_minor),
            ("platform:tax", -order.tax_minor),
            (f"provider_fees:{order.gateway}", -order.payment_fee_minor),
        ],
        memo=f"{order.kg:,} kg for {order.beneficiary_name}"[:300],
    )


def _reserve_again_or_refund(session: Session, clock: Clock, settings: Settings, order: Order) -> str:
    """Money arrived for a voided order: take the credits again if they are still there, else refund."""
    try:
        with session.begin_nested():
            listing = _listing(session, order.listing_id, lock=True)
            if not listing.active or listing.available_kg < order.kg:
                raise DomainError(code=ErrorCode.UNITS_NOT_AVAILABLE, message="the credits are gone")
            _reserve(session, clock, settings, order, listing)
    except DomainError:
        refund(
            session=session,
            clock=clock,
            settings=settings,
            actor=MARKET_ADMIN,
            order_id=order.id,
            reason="paid after the reservation ended and the credits were sold to others",
        )
        return "paid late: refunded, the credits were gone"
    return "paid late: credits reserved again"


def confirm_offline_payment(
    *, session: Session, clock: Clock, settings: Settings, actor: Actor, order_id: str, reference: str
) -> str:
    """An operator saw the bank transfer: the same path as a provider's notification."""
    require(actor, Role.ADMIN)
    payment = session.scalars(select(Payment).where(Payment.order_id == order_id)).first()
    if payment is None or payment.gateway != "offline":
        raise NotFoundError(f"no offline payment for order {order_id!r}")
    event = GatewayEvent(
        event_id=f"operator:{payment.provider_ref}:{reference}"[:120],
        provider_ref=payment.provider_ref,
        kind=EventKind.SUCCEEDED,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
    )
    return apply_payment_event(
        session=session, clock=clock, settings=settings, gateway="offline", event=event
    )


def refund(
    *, session: Session, clock: Clock, settings: Settings, actor: Actor, order_id: str, reason: str
) -> OrderPublic:
    """Give a paid order's money back (it was never fulfilled); the ledger reverses the sale."""
    require(actor, Role.ADMIN)
    order = _order(session, order_id, lock=True)
    if OrderStatus(order.status) is not OrderStatus.PAID:
        raise DomainError(
            code=ErrorCode.INVALID_TRANSITION,
            message=f"only a paid, unfulfilled order is refunded (it is {order.status})",
        )
    payment = session.scalars(select(Payment).where(Payment.order_id == order.id)).one()
    result = gateways.get(order.gateway, settings).refund(
        provider_ref=payment.provider_ref,
        amount_minor=order.total_minor,
        currency=order.currency,
        reason=reason,
    )
    payment.status, payment.updated_at = "refunded", clock.now()
    _release(session, clock, order)
    _post_money(
        session,
        clock,
        kind="refund",
        order=order,
        actor=actor.id,
        legs=[
            (f"gateway:{order.gateway}", -order.total_minor),
            (f"owner:{order.seller_organisation_id}", order.credits_minor),
            ("platform:fees", order.platform_fee_minor),
            ("platform:tax", order.tax_minor),
            (f"provider_fees:{order.gateway}", order.payment_fee_minor),
        ],
        memo=f"{reason} ({result.detail})"[:300],
    )
    _transition(session, order, OrderStatus.REFUNDED, clock.now(), reason)
    return _order_public(session, order)


def _post_money(
    session: Session,
    clock: Clock,
    *,
    kind: str,
    order: Order | None,
    actor: str,
    legs: Sequence[tuple[str, int]],
    memo: str,
    currency: str | None = None,
    project_id: str | None = None,
) -> str:
    """One balanced money transaction: its legs sum to zero."""
    if sum(amount for _, amount in legs) != 0:
        raise ValueError(f"unbalanced money transaction: {legs}")
    now = clock.now()
    transaction_id = new_id("txn", now)
    rows = [
        {"transaction_id": transaction_id, "kind": kind, "account": account, "amount_minor": amount,
         "currency": currency or (order.currency if order else "CNY"),
         "order_id": order.id if order else None,
         "project_id": order.project_id if order else project_id, "memo": memo, "actor": actor, "at": now}
        for account, amount in legs
        if amount != 0
    ]  # fmt: skip
    if rows:  # the legs in one statement: nothing needs their ids back
        session.execute(insert(LedgerEntry), rows)
    return transaction_id


# --- fulfilment ---------------------------------------------------------------------------------------


def paid_order_ids(*, session: Session) -> list[str]:
    """Orders paid but not yet retired or allocated: what ``fulfil`` and ``reconcile`` finish."""
    return list(
        session.scalars(select(Order.id).where(Order.status == OrderStatus.PAID.value).order_by(Order.id))
    )


def fulfil(
    *, session: Session, clock: Clock, settings: Settings, keys: KeyRing, order_id: str
) -> OrderPublic:
    """Retire a paid order's native credits (or allocate its share of home stock) and certify it.
    Run it again at will: an order that is not paid is left as it is, and so is one whose project was
    suspended since it was ordered (its units do not move): ``reconcile`` names it, for an admin to
    refund it or to fulfil it once the project is registered again."""
    order = _order(session, order_id, lock=True)
    if OrderStatus(order.status) is not OrderStatus.PAID:
        return _order_public(session, order)
    project = _project_by_id(session, order.project_id)
    if project.status != "registered":
        return _order_public(session, order)
    listing = _listing(session, order.listing_id)
    evidence: NativeEvidence | ShareEvidence
    if order.native:
        evidence = _retire(session, clock, order, project.code, listing.vintage)
        _transition(session, order, OrderStatus.RETIRED, clock.now())
    else:
        evidence = _share(session, clock, settings, order, project, listing.vintage)
        _transition(session, order, OrderStatus.ALLOCATED, clock.now())
    envelope = certificates.certify(
        session=session,
        clock=clock,
        keys=keys,
        base_url=settings.public_url,
        request=certificates.CertifyRequest(
            order_id=order.id,
            holder_name=order.beneficiary_name,
            kg=order.kg,
            offsets=order.offsets,
            project_code=project.code,
            vintage=listing.vintage,
            evidence=evidence,
            currency=order.currency,
            total_minor=order.total_minor,
            credits_minor=order.credits_minor,
            owner_share_permille=order.credits_minor * 1000 // order.total_minor,
        ),
    )
    order.certificate_number = envelope["certificate"]["number"]
    _transition(session, order, OrderStatus.CERTIFIED, clock.now())
    return _order_public(session, order)


def _retire(session: Session, clock: Clock, order: Order, project_code: str, vintage: int) -> NativeEvidence:
    result = registry.post(
        session=session,
        clock=clock,
        actor=_seller(order),
        cmd=PostCmd(
            reservation=order.id,
            idempotency_key=f"{order.id}:post",
            beneficiary=order.beneficiary_name,
            reason=order.reason,
        ),
    )
    assert result.retirement_id is not None
    order.retirement_id = result.retirement_id
    return NativeEvidence(retirement_id=result.retirement_id, serials=[b.serial for b in result.blocks])


def _share(
    session: Session, clock: Clock, settings: Settings, order: Order, project: ProjectPublic, vintage: int
) -> ShareEvidence:
    share = PendingShare(
        order_id=order.id,
        project_id=order.project_id,
        vintage=vintage,
        kg=order.kg,
        beneficiary=order.beneficiary_name,
        created_at=clock.now(),
    )
    session.add(share)
    session.flush()
    return _allocate(session, clock, settings, share, project) or ShareEvidence(
        programme=project.standard, share_kg=order.kg, reference=order.id
    )


def _allocate(
    session: Session, clock: Clock, settings: Settings, share: PendingShare, project: ProjectPublic
) -> ShareEvidence | None:
    """Put a share into a recorded home retirement with room for it, if there is one."""
    for home in mirror.retirements_with_room(
        session=session, project_code=project.code, vintage=share.vintage
    ):
        if home.quantity_kg - home.allocated_kg < share.kg:
            continue
        try:
            with session.begin_nested():  # the room was read unlocked: another share may have taken it
                done = mirror.allocate_share(
                    session=session,
                    clock=clock,
                    actor=MARKET_ADMIN,
                    cmd=mirror.ShareCreate(
                        home_retirement_id=home.id,
                        kg=share.kg,
                        beneficiary=share.beneficiary,
                        reference=share.order_id,
                    ),
                )
        except DomainError as error:
            if error.code is not ErrorCode.INSUFFICIENT_UNITS:
                raise
            continue
        share.home_retirement_id, share.allocated_at = done.id, clock.now()
        return ShareEvidence(
            programme=done.programme,
            share_kg=share.kg,
            reference=share.order_id,
            record_id=done.id,
            home_retirement_id=done.home_retirement_id,
            retired_on=done.retired_on.isoformat(),
            home_serial=done.serial,
            beneficiary_text=done.beneficiary_text,
            address=f"{settings.public_url.rstrip('/')}/registry/projects/{project.code}",
            merkle_root=done.merkle_root,
        )
    return None


def allocate_pending(*, session: Session, clock: Clock, settings: Settings, keys: KeyRing) -> list[str]:
    """Allocate waiting shares (oldest first) to home retirements recorded since, and sign their
    certificates again as retired. Returns the orders whose shares were allocated."""
    waiting = session.scalars(
        select(PendingShare)
        .where(PendingShare.home_retirement_id.is_(None))
        .order_by(PendingShare.created_at, PendingShare.order_id)
        .with_for_update()
    ).all()
    allocated = []
    for share in waiting:
        project = _project_by_id(session, share.project_id)
        evidence = _allocate(session, clock, settings, share, project)
        if evidence is None:
            continue
        if certificates.number_for_order(session=session, order_id=share.order_id) is not None:
            certificates.record_home_retirement(
                session=session, clock=clock, keys=keys, order_id=share.order_id, evidence=evidence
            )
        allocated.append(share.order_id)
    return allocated


def expire(*, session: Session, clock: Clock, limit: int = 500) -> list[str]:
    """Void reservations whose time ran out (unpaid orders only). Returns the orders expired."""
    now = clock.now()
    query = (
        select(Order)
        .where(Order.status.in_([s.value for s in HOLDING_STATES]), Order.reserved_until < now)
        .order_by(Order.reserved_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    expired = []
    for order in session.scalars(query).all():
        _void(session, clock, order, OrderStatus.EXPIRED, "the reservation ran out before payment")
        expired.append(order.id)
    return expired


# --- money and reports --------------------------------------------------------------------------------


def payout(*, session: Session, clock: Clock, actor: Actor, cmd: PayoutCreate) -> Settlement:
    """Record money sent to a project owner; never more than they are owed. The idempotency key
    makes a retry return the first result rather than pay twice."""
    require(actor, Role.ADMIN)
    account = f"owner:{cmd.organisation_id}"

    def run() -> Settlement:
        _lock_account(session, account)  # two payouts at once must not both spend one balance
        owed = -_balance(session, account, cmd.currency)
        if cmd.amount_minor > owed:
            raise DomainError(
                code=ErrorCode.INSUFFICIENT_UNITS,
                message=f"{cmd.organisation_id} is owed {owed} {cmd.currency}, not {cmd.amount_minor}",
            )
        _post_money(
            session,
            clock,
            kind="payout",
            order=None,
            actor=actor.id,
            legs=[(account, cmd.amount_minor), ("payouts", -cmd.amount_minor)],
            memo=cmd.reference,
            currency=cmd.currency,
        )
        return next(
            s
            for s in settlements(session=session).settlements
            if s.organisation_id == cmd.organisation_id and s.currency == cmd.currency
        )

    return journal.idempotent(
        session=session,
        clock=clock,
        actor=actor,
        key=cmd.idempotency_key,
        operation="payout",
        request=cmd,
        result_type=Settlement,
        run=run,
    )


def _lock_account(session: Session, account: str) -> None:
    """Serialise changes to one money account (SQLite: every write already holds the database)."""
    hold(session, f"money:{account}")


def _balance(session: Session, account: str, currency: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.account == account, LedgerEntry.currency == currency
        )
    )
    return int(total or 0)


def settlements(*, session: Session) -> SettlementReport:
    """What each project owner is owed and was paid, every account's balance, and whether every
    money transaction balances."""
    rows = session.execute(
        select(
            LedgerEntry.account, LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount_minor)
        ).group_by(LedgerEntry.account, LedgerEntry.currency, LedgerEntry.kind)
    ).all()
    accounts: dict[str, int] = {}
    owners: dict[tuple[str, str], dict[str, int]] = {}
    for account, currency, kind, amount in rows:
        key = f"{account} {currency}"
        accounts[key] = accounts.get(key, 0) + int(amount)
        if account.startswith("owner:"):
            sums = owners.setdefault((account.removeprefix("owner:"), currency), {"owed": 0, "paid": 0})
            sums["paid" if kind == "payout" else "owed"] += -int(amount) if kind != "payout" else int(amount)
    unbalanced = session.execute(
        select(LedgerEntry.transaction_id)
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount_minor) != 0)
        .limit(1)
    ).first()
    names = registry.organisation_names(session=session, organisation_ids=[o for o, _ in owners])
    return SettlementReport(
        settlements=[
            Settlement(
                organisation_id=org,
                organisation_name=names.get(org, org),
                currency=currency,
                owed_minor=sums["owed"],
                paid_minor=sums["paid"],
                balance_minor=sums["owed"] - sums["paid"],
            )
            for (org, currency), sums in sorted(owners.items())
        ],
        accounts=dict(sorted(accounts.items())),
        balanced=unbalanced is None and sum(accounts.values()) == 0,
    )


_SOLD = [OrderStatus.RETIRED.value, OrderStatus.ALLOCATED.value, OrderStatus.CERTIFIED.value]


def project_sales(*, session: Session, project_code: str) -> list[ProjectSales]:
    """Tonnes sold and money passed on for one project, per currency, checked against the ledger."""
    project = registry.get_project(session=session, code=project_code)
    rows = session.execute(
        select(Order.currency, func.sum(Order.kg), func.count(), func.sum(Order.credits_minor))
        .where(Order.project_id == project.id, Order.status.in_(_SOLD))
        .group_by(Order.currency)
    ).all()
    result = []
    for currency, kg, count, credits in rows:
        ledger = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
                LedgerEntry.project_id == project.id,
                LedgerEntry.currency == currency,
                LedgerEntry.account.startswith("owner:"),
                LedgerEntry.kind.in_(["sale", "refund"]),
            )
        )
        passed_on = -int(ledger or 0)
        result.append(
            ProjectSales(
                project_code=project.code,
                currency=currency,
                kg_sold=int(kg),
                orders=int(count),
                passed_on_minor=passed_on,
                reconciled=passed_on == int(credits),
            )
        )
    return result


def retire_pending(*, session: Session, clock: Clock, settings: Settings) -> list[PendingRetirement]:
    """For each mirrored project vintage with waiting shares: the whole tonnes to retire at home,
    and the beneficiary text to enter there."""
    rows = session.execute(
        select(
            PendingShare.project_id,
            PendingShare.vintage,
            func.sum(PendingShare.kg),
            func.min(PendingShare.created_at),
        )
        .where(PendingShare.home_retirement_id.is_(None))
        .group_by(PendingShare.project_id, PendingShare.vintage)
    ).all()
    limit = clock.now() - timedelta(days=settings.pending_share_alert_days)
    result = []
    for project_id, vintage, pending, oldest in rows:
        project = _project_by_id(session, project_id)
        room = sum(
            r.quantity_kg - r.allocated_kg
            for r in mirror.retirements_with_room(session=session, project_code=project.code, vintage=vintage)
        )
        result.append(
            PendingRetirement(
                project_code=project.code,
                vintage=vintage,
                programme=project.standard,
                pending_kg=int(pending),
                unallocated_kg=room,
                tonnes_to_retire=whole_tonnes_to_retire(int(pending), room),
                beneficiary_text=(
                    f"Retired for buyers on the Neutralize platform; their shares are listed at "
                    f"{settings.public_url.rstrip('/')}/registry/projects/{project.code}"
                ),
                oldest_pending=oldest,
                overdue=oldest is not None and as_utc(oldest) < limit,
            )
        )
    return result


def reconcile(*, session: Session) -> ReconcileReport:
    """Prove the market's promises: no paid order is left unfulfilled, every fulfilled order has its
    certificate and retirement, listings add up, and money balances."""
    problems: list[str] = []
    for order_id in paid_order_ids(session=session):
        project = _project_by_id(session, _order(session, order_id).project_id)
        waiting = (
            "" if project.status == "registered" else f" (its project {project.code} is {project.status})"
        )
        problems.append(f"order {order_id} is paid but neither retired, allocated nor refunded{waiting}")
    for order in session.scalars(select(Order).where(Order.status.in_(_SOLD))):
        if (
            order.status == OrderStatus.CERTIFIED.value
            and certificates.number_for_order(session=session, order_id=order.id) is None
        ):
            problems.append(f"order {order.id} is certified but has no certificate")
        if order.native and order.retirement_id is None:
            problems.append(f"native order {order.id} has no retirement")
    held = {
        listing_id: int(kg)
        for listing_id, kg in session.execute(
            select(Order.listing_id, func.sum(Order.kg))
            .where(Order.status.in_([s.value for s in HOLDING_STATES] + [OrderStatus.PAID.value] + _SOLD))
            .group_by(Order.listing_id)
        ).all()
    }
    for listing in session.scalars(select(Listing)):
        if listing.sold_kg != held.get(listing.id, 0):
            problems.append(
                f"listing {listing.id} counts {listing.sold_kg:,} kg sold "
                f"but its orders hold {held.get(listing.id, 0):,}"
            )
    if not settlements(session=session).balanced:
        problems.append("the money ledger does not balance")
    for event in session.scalars(select(PaymentEvent).where(PaymentEvent.effect.startswith("refused"))):
        problems.append(
            f"{event.gateway} event {event.event_id} for payment {event.provider_ref} was refused "
            f"({event.effect}): money may have arrived that no order took"
        )
    return ReconcileReport(ok=not problems, expired=0, fulfilled=[], allocated=[], problems=problems)


def alerts(*, session: Session, clock: Clock, settings: Settings) -> list[str]:
    """What an admin must act on: shares waiting too long for a home retirement, stuck paid orders."""
    found = [
        f"{p.pending_kg:,} kg of {p.project_code} shares have waited since {p.oldest_pending:%Y-%m-%d}: "
        f"retire {p.tonnes_to_retire} t at {p.programme}"
        for p in retire_pending(session=session, clock=clock, settings=settings)
        if p.overdue
    ]
    found += [f"order {o} is paid but not fulfilled" for o in paid_order_ids(session=session)]
    return found


def payment_by_ref(*, session: Session, gateway: str, provider_ref: str) -> PaymentPublic:
    payment = session.scalars(
        select(Payment).where(Payment.gateway == gateway, Payment.provider_ref == provider_ref)
    ).first()
    if payment is None:
        raise NotFoundError(f"no {gateway} payment {provider_ref!r}")
    return PaymentPublic.model_validate(payment)


def order_for_payment(*, session: Session, gateway: str, provider_ref: str) -> str | None:
    """The order a provider's payment reference belongs to, if any."""
    return session.scalars(
        select(Payment.order_id).where(Payment.gateway == gateway, Payment.provider_ref == provider_ref)
    ).first()


def sold_orders(*, session: Session, order_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Of the given orders, those whose credits were retired or allocated: kilograms and project code."""
    if not order_ids:
        return {}
    rows = session.execute(
        select(Order.id, Order.kg, Order.project_id).where(Order.id.in_(order_ids), Order.status.in_(_SOLD))
    ).all()
    codes = {pid: _project_by_id(session, pid).code for pid in {r.project_id for r in rows}}
    return {r.id: (int(r.kg), codes[r.project_id]) for r in rows}
