"""Many requests at once on one scene: organisers asking for the same short name, and an organiser's
event steps sent again while the first is still running (a double click, a retry after a timeout).

- A short name is taken once: one scene is made, the others are told it is taken (``duplicate``),
  never a server error.
- Each event step sent many times at once is kept once, as when it is sent again later: the plan,
  an organiser item (one per key), the registration list (it replaces the earlier one) and the
  evaluation. No request fails.

Thread counts as in ``test_account_redemptions``; each request works in a unit of work of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import Actor, Role
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.scenes import events
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import SceneType
from neutralize.scenes.models import (
    EventEvaluation,
    EventItem,
    EventPlan,
    EventRegistration,
    Participation,
    Scene,
)
from neutralize.scenes.neutrality import EvaluationKind
from tests.concurrency.test_access_races import _first_exception
from tests.concurrency.test_account_redemptions import PG_REDEEMERS, SQLITE_THREADS
from tests.concurrency.test_market_races import Backend, race
from tests.conftest import fresh_database
from tests.integration.market.conftest import Market
from tests.integration.scenes.test_event_neutrality import REGISTRATIONS

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
ORGANISER = Actor(id="usr-forum", role=Role.ORGANISER)
SLUG = "green-forum"
WON = "won"
NOV_20, NOV_21 = date(2026, 11, 20), date(2026, 11, 21)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    settings = fresh_database(request.param, "scene_races", tmp_path_factory)
    threads = SQLITE_THREADS if request.param == "sqlite" else PG_REDEEMERS
    return Backend(request.param, settings, threads, threads)


def _create(actor: Actor) -> Callable[[Session], object]:
    cmd = scenes.SceneCreate(slug=SLUG, type=SceneType.CONFERENCE, name="Green Forum", region="CN-SC")
    return lambda session: scenes.create_scene(session=session, clock=CLOCK, actor=actor, cmd=cmd)


STEPS: dict[str, Callable[[Session], object]] = {
    "plan": lambda session: events.record_plan(
        session=session, clock=CLOCK, actor=ORGANISER, slug=SLUG,
        cmd=events.PlanCmd(expected_attendees=6, expected_kg=3_000, reduction_plan="Rail first",
                           destination_airport="TFU", starts_on=NOV_20, ends_on=NOV_21),
    ),
    "item": lambda session: events.record_item(
        session=session, clock=CLOCK, actor=ORGANISER, slug=SLUG,
        cmd=events.ItemCmd(kind="declared", qualifier="waste", quantity=Decimal(120),
                           source="the venue's waste report"),
    ),
    "registrations": lambda session: events.import_registrations(
        session=session, clock=CLOCK, actor=ORGANISER, slug=SLUG, text=REGISTRATIONS
    ),
    "evaluation": lambda session: events.record_evaluation(
        session=session, clock=CLOCK, actor=ORGANISER, slug=SLUG,
        cmd=events.EvaluationCmd(kind=EvaluationKind.SELF_DECLARED, evaluator="Green Forum",
                                 reference="https://forum.example.org/neutrality"),
    ),
}  # fmt: skip


def _count(factory: sessionmaker[Session], table: type) -> int:
    with unit_of_work(factory) as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_a_short_name_is_taken_once(backend: Backend) -> None:
    outcomes: list[str] = []

    def create(thread: int, factory: sessionmaker[Session]) -> None:
        try:
            with unit_of_work(factory) as session:
                _create(Actor(id=f"usr-{thread}", role=Role.ORGANISER))(session)
            outcomes.append(WON)
        except DomainError as refused:
            outcomes.append(refused.code.value)

    errors = race(backend, create)
    assert errors == [], _first_exception(errors)
    assert Counter(outcomes) == {WON: 1, ErrorCode.DUPLICATE.value: backend.threads - 1}, Counter(outcomes)


def test_an_event_step_sent_many_times_at_once_is_kept_once(backend: Backend) -> None:
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            _create(ORGANISER)(session)
        failed: dict[str, str] = {}
        for step, send in STEPS.items():

            def again(_thread: int, factory_of_thread: sessionmaker[Session]) -> None:
                with unit_of_work(factory_of_thread) as session:
                    send(session)  # noqa: B023 (the race ends before the loop moves on)

            errors = race(backend, again)
            if errors:
                failed[step] = _first_exception(errors)
        assert failed == {}, "\n".join(f"{step}: {why}" for step, why in failed.items())
        kept = {
            table.__name__: _count(factory, table)
            for table in (Scene, EventPlan, EventItem, EventRegistration, EventEvaluation)
        }
        assert kept == {
            "Scene": 1, "EventPlan": 1, "EventItem": 1, "EventRegistration": 5, "EventEvaluation": 1
        }  # fmt: skip
    finally:
        engine.dispose()


def _hotel_with_a_seller(session: Session) -> Market:
    """A hotel scene, and a market with a native seller of 10 tonnes to order from."""
    market = Market(session)
    market.native_seller(kg=10_000)
    scenes.create_scene(
        session=session,
        clock=CLOCK,
        actor=ORGANISER,
        cmd=scenes.SceneCreate(slug="hotel", type=SceneType.HOTEL, name="Hotel"),
    )
    return market


def test_a_participation_keeps_the_first_order_linked_to_it(backend: Backend) -> None:
    """A guest orders from two tabs at once: each order is linked to the participation as it is made.
    The first link stays; every guest who looks right after their own link sees that same order."""
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            market = _hotel_with_a_seller(session)
            _footprint, participation = scenes.participate(
                session=session, clock=CLOCK, slug="hotel", form={"nights": "1"}
            )
            orders = [market.order(market.quote(10)).id for _ in range(backend.threads)]  # fmt: skip
        seen: list[str | None] = []

        def link(thread: int, factory_of_thread: sessionmaker[Session]) -> None:
            with unit_of_work(factory_of_thread) as session:
                scenes.link_order(session=session, participation_id=participation,
                                  order_id=orders[thread], beneficiary=f"Guest {thread}")  # fmt: skip
            with unit_of_work(factory_of_thread) as session:
                seen.append(session.scalars(select(Participation.order_id)).one())

        errors = race(backend, link)
        assert errors == [], _first_exception(errors)
        assert len(set(seen)) == 1 and seen[0] in orders, Counter(seen)
    finally:
        engine.dispose()


def test_an_order_offsets_one_participation_only(backend: Backend) -> None:
    """The same order linked to many participations at once (a retried form whose order is given back
    by its idempotency key, sent from other participations): one participation counts it, the others
    are told it is taken (``duplicate``), never a server error. Later, the same."""
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            market = _hotel_with_a_seller(session)
            guests = [
                scenes.participate(session=session, clock=CLOCK, slug="hotel", form={"nights": "1"})[1]
                for _ in range(backend.threads + 1)
            ]
            order = market.order(market.quote(10)).id
        outcomes: list[str] = []

        def link(thread: int, factory_of_thread: sessionmaker[Session]) -> None:
            try:
                with unit_of_work(factory_of_thread) as session:
                    scenes.link_order(session=session, participation_id=guests[thread], order_id=order,
                                      beneficiary=f"Guest {thread}")  # fmt: skip
                outcomes.append(WON)
            except DomainError as refused:
                outcomes.append(refused.code.value)

        errors = race(backend, link)
        assert errors == [], _first_exception(errors)
        taken = ErrorCode.DUPLICATE.value
        assert Counter(outcomes) == {WON: 1, taken: backend.threads - 1}, Counter(outcomes)
        with pytest.raises(DomainError) as later, unit_of_work(factory) as session:
            scenes.link_order(
                session=session, participation_id=guests[-1], order_id=order, beneficiary="Late"
            )
        assert later.value.code is ErrorCode.DUPLICATE
        with unit_of_work(factory) as session:
            linked = session.scalars(select(Participation.id).where(Participation.order_id == order)).all()
        assert len(linked) == 1 and linked[0] in guests[:-1]
    finally:
        engine.dispose()
