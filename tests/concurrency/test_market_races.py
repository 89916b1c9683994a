"""Races on the last 10 tonnes of one listing: many buyers quote, order, pay and are certified at
once, each step in its own unit of work, as web requests and webhook deliveries would be.

The seller holds 12 t of one native project vintage and lists 10 t of them, so an oversold listing
would show as more than 10 t retired rather than hide behind the registry refusing the extra units.
Each buyer asks for a seeded 1-400 kg (more for fewer buyers: demand is about twice the listing),
half of them on the listing by id, half by the platform's choice. A buyer that loses a
serialization race or a deadlock, or meets its own idempotency key in flight, retries the step with
the same key and notification, as a real client and provider would; a buyer told the credits are
gone (``units_not_available``, ``insufficient_units``, ``no_eligible_listing``) stops. Anything
else fails the test.

Afterwards: every order that was taken is certified, with one retirement and one certificate of
its own; the kilograms sold plus what is left on the listing make exactly 10 t, and what is left is
smaller than every refused request (no buyer was turned away while their kilograms were there); a
last buyer takes exactly what is left, so exactly 10 t are sold, and one more kilogram is refused.
The registry, its journal, the market's reconciliation and the money ledger must all agree.

PostgreSQL runs ``CONCURRENCY_MARKET_BUYERS`` (200) buyer threads in a schema of its own. The server
allows 100 connections and is shared, so the buyers draw their sessions from one pool of
``CONCURRENCY_MARKET_CONNECTIONS`` (30) connections, as an application server's request threads
do. SQLite runs ``CONCURRENCY_MARKET_SQLITE_BUYERS`` (80) buyers on ``CONCURRENCY_SQLITE_WORKERS``
(8) threads with an engine each, queued by ``BEGIN IMMEDIATE``. ``CONCURRENCY_SEED`` varies the sizes.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from neutralize.certificates import service as certificates
from neutralize.certificates.models import Certificate, CertificateVersion
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import KeyRing
from neutralize.market import gateways, service
from neutralize.market.gateways.base import EventKind
from neutralize.market.gateways.sandbox import SandboxGateway
from neutralize.market.models import Listing, Order, PaymentEvent
from neutralize.market.schemas import Beneficiary, OrderCreate, OrderPublic, QuoteCreate, QuotePublic
from neutralize.registry import journal
from neutralize.registry import service as registry
from neutralize.registry.domain import BlockState
from neutralize.registry.models import Block, Retirement
from tests.concurrency.test_registry_races import MAX_CONFLICTS, _is_conflict
from tests.conftest import fresh_database
from tests.integration.market.conftest import KEY_B64, SETTINGS, Market, Seller

SEED = int(os.environ.get("CONCURRENCY_SEED", "20261125"))
PG_BUYERS = int(os.environ.get("CONCURRENCY_MARKET_BUYERS", "200"))
PG_CONNECTIONS = int(os.environ.get("CONCURRENCY_MARKET_CONNECTIONS", "30"))
SQLITE_BUYERS = int(os.environ.get("CONCURRENCY_MARKET_SQLITE_BUYERS", "80"))
SQLITE_THREADS = int(os.environ.get("CONCURRENCY_SQLITE_WORKERS", "8"))

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))  # the market factories' clock
KEYS = KeyRing.from_key_b64(KEY_B64, clock=CLOCK)
HELD_KG = 12_000  # the seller's holding: 2 t more than listed
LISTED_KG = 10_000  # the last 10 t of the listing
LARGEST_KG = 400  # the largest request, unless fewer buyers need larger ones to outrun the listing
# The refusals that mean the credits are gone; any other refusal fails the test.
GONE = {ErrorCode.UNITS_NOT_AVAILABLE, ErrorCode.INSUFFICIENT_UNITS, ErrorCode.NO_ELIGIBLE_LISTING}
JOIN_TIMEOUT_S = 600
DEADLOCK = "40P01"
T = TypeVar("T")


# --- backends ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    settings: Settings
    buyers: int
    threads: int


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """A freshly migrated database of its own: a WAL SQLite file, or a PostgreSQL schema."""
    settings = fresh_database(request.param, "market_races", tmp_path_factory)
    if request.param == "sqlite":
        return Backend("sqlite", settings, SQLITE_BUYERS, SQLITE_THREADS)
    return Backend("postgresql", settings, PG_BUYERS, PG_BUYERS)


def _shared_engine(backend: Backend) -> Engine | None:
    """PostgreSQL: one bounded pool for every thread. SQLite: none, each thread makes its own."""
    if backend.name == "sqlite":
        return None
    return create_engine(
        backend.settings.database_url,
        pool_pre_ping=True,
        pool_size=PG_CONNECTIONS,
        max_overflow=0,
        pool_timeout=JOIN_TIMEOUT_S,
    )


def race(backend: Backend, job: Callable[[int, sessionmaker[Session]], None]) -> list[str]:
    """Run ``job(thread, factory)`` on ``backend.threads`` threads at once; the tracebacks of the
    threads that failed."""
    errors: list[str] = []
    barrier = threading.Barrier(backend.threads)
    shared = _shared_engine(backend)

    def thread(number: int) -> None:
        engine = shared or make_engine(backend.settings)
        try:
            with engine.connect():  # connect before the start line: the buyers race, not the logins
                pass
            barrier.wait(timeout=JOIN_TIMEOUT_S)
            job(number, make_session_factory(engine))
        except BaseException:
            errors.append(f"thread {number}:\n{traceback.format_exc()}")
            barrier.abort()
        finally:
            if shared is None:
                engine.dispose()

    threads = [threading.Thread(target=thread, args=(n,), name=f"buyer-{n}") for n in range(backend.threads)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        assert not stuck, f"buyers still running after {JOIN_TIMEOUT_S} s (a lock never released?): {stuck}"
    finally:
        if shared is not None:
            shared.dispose()
    return errors


# --- buyers ------------------------------------------------------------------------------------


@dataclass
class Buyer:
    """One buyer's request and what became of it."""

    number: int
    kg: int
    by_listing: bool  # quote on the listing by id, else let the platform choose
    order: OrderPublic | None = None
    refused: ErrorCode | None = None
    refused_at: str | None = None  # quote | order
    effect: str | None = None  # what the payment notification did
    conflicts: int = 0
    last_conflict: str = ""

    @property
    def key(self) -> str:
        return f"race-buyer-{self.number:04d}"


def plan(rng: random.Random, buyers: int) -> list[Buyer]:
    """Seeded sizes whose total is about twice the listing, whatever the number of buyers."""
    largest = max(LARGEST_KG, 4 * LISTED_KG // buyers)
    planned = [Buyer(n, rng.randint(1, largest), by_listing=rng.random() < 0.5) for n in range(buyers)]
    demand = sum(b.kg for b in planned)
    assert demand > LISTED_KG + 2 * largest, f"{buyers} buyers ask for {demand:,} kg: no race to run"
    return planned


def _retrying(buyer: Buyer, step: Callable[[], T]) -> T:
    """Run ``step`` until it commits; a step that lost a race (a serialization failure, its
    idempotency key in flight, SQLite's busy lock) is sent again unchanged. A deadlock is not a lost
    race here: the market takes its locks in one order (order, listing, registry chain), so one means
    that order was broken; it fails the buyer with the server's account of the cycle. Other errors
    propagate."""
    while True:
        try:
            return step()
        except DomainError as error:
            if error.code is not ErrorCode.IDEMPOTENCY_CONFLICT:
                raise
            buyer.last_conflict = str(error)
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == DEADLOCK:
                raise AssertionError(f"buyer {buyer.number} met a deadlock: {error.orig}") from error
            if not _is_conflict(error):
                raise
            buyer.last_conflict = str(error.orig).splitlines()[0]
        buyer.conflicts += 1
        if buyer.conflicts >= MAX_CONFLICTS:
            raise AssertionError(f"buyer {buyer.number} lost {buyer.conflicts} races: {buyer.last_conflict}")
        time.sleep(random.uniform(0, 0.01))


def _sandbox() -> SandboxGateway:
    gateway = gateways.get("sandbox", SETTINGS)
    assert isinstance(gateway, SandboxGateway)
    return gateway


def quote(factory: sessionmaker[Session], listing_id: str, buyer: Buyer) -> QuotePublic:
    cmd = QuoteCreate(kg=buyer.kg, listing_id=listing_id if buyer.by_listing else None)
    with unit_of_work(factory) as session:
        return service.create_quote(session=session, clock=CLOCK, settings=SETTINGS, cmd=cmd)


def order(factory: sessionmaker[Session], quoted: QuotePublic, buyer: Buyer) -> OrderPublic:
    cmd = OrderCreate(
        quote_id=quoted.id,
        beneficiary=Beneficiary(display_name=f"Buyer {buyer.number}"),
        idempotency_key=buyer.key,
        expected_total_minor=quoted.split.total_minor,
    )
    with unit_of_work(factory) as session:
        return service.create_order(session=session, clock=CLOCK, settings=SETTINGS, cmd=cmd)


def pay(factory: sessionmaker[Session], ordered: OrderPublic, buyer: Buyer) -> str:
    """The provider's signed notification that the order's payment succeeded (one event id, however
    often it is delivered), through the webhook's parser."""
    sandbox = _sandbox()
    headers, body = sandbox.notification(
        provider_ref=ordered.next_action["url"].rsplit("/", 1)[1],
        kind=EventKind.SUCCEEDED,
        amount_minor=ordered.split.total_minor,
        currency=ordered.split.currency,
        signed_at=CLOCK.now(),
        event_id=f"evt-{buyer.key}",
    )
    event = sandbox.parse_webhook(headers=headers, body=body, now=CLOCK.now())
    with unit_of_work(factory) as session:
        return service.apply_payment_event(
            session=session, clock=CLOCK, settings=SETTINGS, gateway="sandbox", event=event
        )


def fulfil(factory: sessionmaker[Session], ordered: OrderPublic) -> OrderPublic:
    with unit_of_work(factory) as session:
        return service.fulfil(session=session, clock=CLOCK, settings=SETTINGS, keys=KEYS, order_id=ordered.id)


def buy(factory: sessionmaker[Session], listing_id: str, buyer: Buyer) -> None:
    """Quote, order, pay, fulfil: each its own unit of work. A buyer told the credits are gone stops."""
    try:
        quoted = _retrying(buyer, lambda: quote(factory, listing_id, buyer))
    except DomainError as error:
        if error.code not in GONE:
            raise
        buyer.refused, buyer.refused_at = error.code, "quote"
        return
    try:
        ordered = _retrying(buyer, lambda: order(factory, quoted, buyer))
    except DomainError as error:
        if error.code not in GONE:
            raise
        buyer.refused, buyer.refused_at = error.code, "order"
        return
    buyer.effect = _retrying(buyer, lambda: pay(factory, ordered, buyer))
    buyer.order = _retrying(buyer, lambda: fulfil(factory, ordered))


def set_up(factory: sessionmaker[Session]) -> Seller:
    """A seller holding 12 t of a registered native project's 2025 vintage, 10 t of it listed."""
    with unit_of_work(factory) as session:
        return Market(session).native_seller(kg=HELD_KG, listed_kg=LISTED_KG)


def _listing(factory: sessionmaker[Session], seller: Seller) -> Listing:
    with unit_of_work(factory) as session:
        listing = session.get(Listing, seller.listing.id)
        assert listing is not None
        return listing


# --- what must hold afterwards ------------------------------------------------------------------


def assert_race_outcome(factory: sessionmaker[Session], seller: Seller, buyers: list[Buyer]) -> int:
    """Every buyer was served or refused as the credits ran out; nothing oversold, nobody turned away
    while their kilograms were still there. Returns what is left on the listing."""
    taken = [b for b in buyers if b.order is not None]
    refused = [b for b in buyers if b.refused is not None]
    assert len(taken) + len(refused) == len(buyers), "a buyer neither bought nor was refused"
    assert taken, "nobody bought anything: no race was run"
    assert refused, "nobody was refused: demand never exceeded the listing"
    assert {b.refused for b in refused} <= GONE
    # A payment is taken once, and every order taken ends certified.
    assert Counter(b.effect for b in taken) == Counter({"paid": len(taken)})
    assert [b.number for b in taken if b.order and b.order.status != "certified"] == []
    assert all(b.order and b.order.kg == b.kg for b in taken)
    # The listing ran out exactly: what is left is what was not sold, and it is less than any refused
    # request (the listing only shrinks during the race, so each refused buyer still would not fit).
    sold_kg = sum(b.kg for b in taken)
    listing = _listing(factory, seller)
    assert sold_kg <= LISTED_KG, f"oversold: {sold_kg:,} kg of {LISTED_KG:,}"
    assert listing.available_kg == LISTED_KG - sold_kg
    assert listing.sold_kg == sold_kg
    assert listing.available_kg < min(b.kg for b in refused), (
        f"{listing.available_kg} kg left, yet buyers of {sorted(b.kg for b in refused)[:5]} kg were refused"
    )
    return listing.available_kg


def assert_sold_out(factory: sessionmaker[Session], seller: Seller, buyers: list[Buyer]) -> None:
    """The ledgers after the listing sold out: one retirement and one certificate per order, the
    registry, its journal, the market's reconciliation and the money all agree."""
    taken = {b.order.id: b for b in buyers if b.order is not None}
    with unit_of_work(factory) as session:
        orders = {o.id: o for o in session.scalars(select(Order))}
        assert set(orders) == set(taken), "orders in the database are not the ones the buyers took"
        assert {o.status for o in orders.values()} == {"certified"}
        assert sum(o.kg for o in orders.values()) == LISTED_KG
        listing = session.get(Listing, seller.listing.id)
        assert listing is not None and (listing.available_kg, listing.sold_kg) == (0, LISTED_KG)

        # One retirement of its own per order, of exactly its kilograms, and 10 t retired in all.
        retirements = dict(session.execute(select(Retirement.id, Retirement.quantity_kg)).all())
        assert retirements == {o.retirement_id: o.kg for o in orders.values()}
        size = Block.span_end - Block.span_start + 1
        retired = session.scalar(select(func.sum(size)).where(Block.state == BlockState.RETIRED.value))
        assert retired == LISTED_KG
        report = registry.check(session=session)
        assert report.ok, report.problems
        (vintage,) = [v for v in report.vintages if v.project_code == seller.project.code]
        assert {k: v for k, v in vintage.by_state_kg.items() if v} == {
            "held": HELD_KG - LISTED_KG,
            "retired": LISTED_KG,
        }
        audit = journal.verify(session=session)
        assert audit.ok, audit.problems

        # Exactly one certificate per retirement, signed once, naming that retirement, verifying live.
        certified = list(session.scalars(select(Certificate)))
        assert Counter(c.subject_ref for c in certified) == Counter(set(orders))
        versions = Counter(session.scalars(select(CertificateVersion.number)))
        assert versions == Counter({c.number: 1 for c in certified})
        for certificate in certified:
            placed = orders[certificate.subject_ref]
            assert certificate.number == placed.certificate_number
            assert certificate.document["evidence"]["retirement_id"] == placed.retirement_id
            assert certificate.kg == placed.kg
            verified = certificates.verify(session=session, keys=KEYS, number=certificate.number)
            assert verified.ok, verified.checks

        # One payment notification applied per order; no order paid and left unretired.
        effects = Counter(session.scalars(select(PaymentEvent.effect)))
        assert effects == Counter({"paid": len(orders)})
        reconciled = service.reconcile(session=session)
        assert reconciled.ok, reconciled.problems

        # The money: balanced, the seller owed the credits' share, the gateway holding every total.
        money = service.settlements(session=session)
        assert money.balanced
        owed = {s.organisation_id: s.owed_minor for s in money.settlements}
        assert owed == {seller.org.id: sum(o.credits_minor for o in orders.values())}
        assert money.accounts["gateway:sandbox CNY"] == sum(o.total_minor for o in orders.values())


def _summary(backend: Backend, buyers: list[Buyer], seconds: float, left_kg: int) -> str:
    refused = Counter(f"{b.refused_at}:{b.refused}" for b in buyers if b.refused)
    taken = [b for b in buyers if b.order]
    return (
        f"{backend.name}: {len(buyers)} buyers on {backend.threads} threads in {seconds:.1f} s: "
        f"{len(taken)} certified ({sum(b.kg for b in taken):,} kg, {left_kg} kg left), refused "
        f"{dict(refused)}, {sum(b.conflicts for b in buyers)} conflicts retried (seed {SEED})"
    )


# --- the test ------------------------------------------------------------------------------------


def test_buyers_racing_for_the_last_ten_tonnes_buy_exactly_ten_tonnes(backend: Backend) -> None:
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    try:
        # given a listing with its last 10 t, and buyers asking for about twice that at once
        seller = set_up(factory)
        buyers = plan(random.Random(SEED), backend.buyers)

        def job(thread: int, thread_factory: sessionmaker[Session]) -> None:
            for buyer in buyers[thread :: backend.threads]:
                buy(thread_factory, seller.listing.id, buyer)

        # when they all quote, order, pay and are certified at once
        started = time.monotonic()
        errors = race(backend, job)
        elapsed = time.monotonic() - started
        assert errors == [], "\n".join(errors)

        # then what was sold and what is left make 10 t, and nobody was turned away needlessly
        left_kg = assert_race_outcome(factory, seller, buyers)
        print(_summary(backend, buyers, elapsed, left_kg))

        # and a last buyer takes exactly what is left, after which one more kilogram is refused
        if left_kg:
            last = Buyer(len(buyers), left_kg, by_listing=True)
            buy(factory, seller.listing.id, last)
            assert last.order is not None and last.order.status == "certified", last
            buyers.append(last)
        late_refusals = ((True, ErrorCode.INSUFFICIENT_UNITS), (False, ErrorCode.NO_ELIGIBLE_LISTING))
        for by_listing, code in late_refusals:
            late = Buyer(len(buyers) + 1, 1, by_listing=by_listing)
            buy(factory, seller.listing.id, late)
            assert (late.refused, late.refused_at) == (code, "quote")
        assert_sold_out(factory, seller, buyers)
    finally:
        engine.dispose()
