"""Market writes that have no order to lock, sent many times at once: admins putting a new quality
policy in force (each gets a version of its own, numbered one after the other) and a provider's
notification for a payment the platform does not know (kept once). None fails. Thread counts as in
``test_account_redemptions``.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from neutralize.access.domain import SYSTEM
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.market import service as market
from neutralize.market.gateways.base import EventKind, GatewayEvent
from neutralize.market.models import PaymentEvent, QualityPolicy
from tests.concurrency.test_account_redemptions import CLOCK, backend  # noqa: F401 (the fixture)
from tests.concurrency.test_market_races import Backend, race


def test_policies_put_in_force_at_once_each_get_a_version(backend: Backend) -> None:  # noqa: F811
    engine = make_engine(backend.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            document = market.current_policy(session=session)
            before = session.scalars(select(QualityPolicy.version)).all()

        def put_in_force(_thread: int, factory: object) -> None:
            with unit_of_work(factory) as session:  # type: ignore[arg-type]
                market.set_policy(session=session, clock=CLOCK, actor=SYSTEM, document=document)

        assert race(backend, put_in_force) == []
        with unit_of_work(make_session_factory(engine)) as session:
            versions = sorted(session.scalars(select(QualityPolicy.version)))
        first = max(before, default=0) + 1
        assert versions == sorted(before) + list(range(first, first + backend.threads))
    finally:
        engine.dispose()


def test_one_notification_for_no_known_payment_delivered_at_once_is_kept_once(
    backend: Backend,  # noqa: F811
) -> None:
    """A provider delivers one event for a payment the platform does not know, many times at once:
    one delivery records it (ignored), the others find it recorded; none fails."""
    engine = make_engine(backend.settings)
    event = GatewayEvent(event_id="evt-unknown", provider_ref="pay-unknown", kind=EventKind.SUCCEEDED,
                         amount_minor=100, currency="CNY")  # fmt: skip
    effects: list[str] = []

    def deliver(_thread: int, factory: object) -> None:
        with unit_of_work(factory) as session:  # type: ignore[arg-type]
            effects.append(
                market.apply_payment_event(
                    session=session, clock=CLOCK, settings=backend.settings, gateway="sandbox", event=event
                )
            )

    try:
        assert race(backend, deliver) == []
        assert Counter(effects) == {
            "ignored: no such payment": 1,
            "duplicate: no effect": backend.threads - 1,
        }
        with unit_of_work(make_session_factory(engine)) as session:
            assert session.scalar(select(func.count()).select_from(PaymentEvent)) == 1
    finally:
        engine.dispose()
