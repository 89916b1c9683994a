"""Many requests at once spending the same points: an account with 450 points and a 200-point benefit.

First every thread sends one and the same idempotency key (a client retrying): all get the one
redemption it made, and 250 points are left. Then every thread redeems with a key of its own:
exactly one wins and the others are told the points are not there (``insufficient_points``).
Afterwards two redemptions exist and the account's points agree with them (``accounts.check``).

PostgreSQL runs ``CONCURRENCY_REDEEMERS`` (40) threads, SQLite ``CONCURRENCY_SQLITE_WORKERS`` (8),
each in its own unit of work, as web requests would be.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.accounts.models import Redemption
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import service as registry
from neutralize.registry.schemas import OrganisationCreate
from tests.concurrency.test_market_races import Backend, race
from tests.concurrency.test_registry_races import MAX_CONFLICTS, _is_conflict
from tests.conftest import fresh_database

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
PG_REDEEMERS = int(os.environ.get("CONCURRENCY_REDEEMERS", "40"))
SQLITE_THREADS = int(os.environ.get("CONCURRENCY_SQLITE_WORKERS", "8"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    settings = fresh_database(request.param, "redemption_races", tmp_path_factory)
    threads = SQLITE_THREADS if request.param == "sqlite" else PG_REDEEMERS
    return Backend(request.param, settings, threads, threads)


def set_up(backend: Backend) -> tuple[Actor, str, str]:
    """A partner, an account holding 450 points and a 200-point benefit."""
    engine = make_engine(backend.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            made = registry.create_organisation(
                session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name="Metro")
            )
            metro = Actor(id="key-metro", role=Role.INTEGRATOR, organisation_id=made.id)
            outcome = intake.Credited(
                external_id="trip-1", behaviour="public_transport", started_at=CLOCK.now(),
                ended_at=CLOCK.now(), measures={}, grams=45_050, code=None,
                methodology="public_transport@1.0.0", parameters_sha256=None,
            )  # fmt: skip
            intake.keep(
                session=session, clock=CLOCK, partner_id=made.id, reference="rider", outcomes=[outcome]
            )
            account = accounts.account_of(session=session, actor=metro, reference="rider")
            benefit = accounts.publish_benefit(
                session=session,
                clock=CLOCK,
                actor=metro,
                cmd=accounts.BenefitCreate(title="A month's pass", points=200),
            )
            return metro, account.id, benefit.id
    finally:
        engine.dispose()


def redeem(factory: sessionmaker[Session], who: Actor, account: str, benefit: str, key: str) -> str:
    """The redemption's id, or the refusal's code; a transaction that lost a race is retried."""
    for _ in range(MAX_CONFLICTS):
        try:
            with unit_of_work(factory) as session:
                return accounts.redeem(
                    session=session,
                    clock=CLOCK,
                    actor=who,
                    account_id=account,
                    benefit_id=benefit,
                    idempotency_key=key,
                ).id
        except DomainError as refused:
            return refused.code.value
        except DBAPIError as error:
            if not _is_conflict(error):
                raise
    raise AssertionError(f"{key}: still losing races after {MAX_CONFLICTS} tries")


def test_the_same_points_are_spent_once(backend: Backend) -> None:
    who, account, benefit = set_up(backend)
    retried: list[str] = []
    errors = race(
        backend, lambda n, factory: retried.append(redeem(factory, who, account, benefit, "same-key"))
    )
    assert errors == [] and len(set(retried)) == 1 and retried[0].startswith("red_"), retried
    outcomes: list[str] = []
    errors = race(
        backend, lambda n, factory: outcomes.append(redeem(factory, who, account, benefit, f"k-{n}"))
    )
    assert errors == []
    counted = Counter(o if o == ErrorCode.INSUFFICIENT_POINTS.value else "won" for o in outcomes)
    assert counted == {"won": 1, ErrorCode.INSUFFICIENT_POINTS.value: backend.threads - 1}, outcomes
    engine = make_engine(backend.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            assert session.scalar(select(func.count()).select_from(Redemption)) == 2
            assert accounts.check(session=session) == []
    finally:
        engine.dispose()
