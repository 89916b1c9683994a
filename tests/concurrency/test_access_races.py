"""Many browsers at once on one account's doors: sign-in attempts against one address's rate limit,
one password-reset link, one e-mail address signed up twice.

- A rate limit lets exactly ``limit`` attempts through in its window, however many arrive together
  (each attempt is counted in the request's own transaction, as the sign-in page does).
- A reset link sets the password once: one request wins, the others are told the link is used
  (``token_invalid``), and the password is the winner's.
- An address signs up once: one account is made, the others are told it exists (``duplicate``),
  never a server error.

Thread counts as in ``test_account_redemptions``; each thread works in a unit of work of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access import users
from neutralize.access.models import OutboxMessage, RateEvent, User
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from tests.concurrency.test_account_redemptions import PG_REDEEMERS, SQLITE_THREADS
from tests.concurrency.test_market_races import Backend, race
from tests.conftest import fresh_database

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
EMAIL = "li.wei@example.cn"
PASSWORD = "the first password"
LIMIT = 5
WON = "won"
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    settings = fresh_database(request.param, "access_races", tmp_path_factory)
    threads = SQLITE_THREADS if request.param == "sqlite" else PG_REDEEMERS
    return Backend(request.param, settings, threads, threads)


def _sign_up(factory: sessionmaker[Session], display_name: str = "Li Wei") -> str:
    """The new account's id, or the refusal's code."""
    try:
        with unit_of_work(factory) as session:
            cmd = users.SignUp(email=EMAIL, password=PASSWORD, display_name=display_name)
            return users.sign_up(session=session, clock=CLOCK, cmd=cmd).id
    except DomainError as refused:
        return refused.code.value


def _first_exception(errors: list[str]) -> str:
    """How many threads failed, and the exception line of the first one's traceback."""
    lines = errors[0].splitlines()
    line = next((x for x in lines if x.startswith(("sqlalchemy.", "psycopg."))), lines[-1])
    return f"{len(errors)} threads failed, the first with {line[:300]}"


def _one_thread_does(backend: Backend, work: Callable[[sessionmaker[Session]], T]) -> T:
    """``work`` done alone, before or after the race."""
    engine = make_engine(backend.settings)
    try:
        return work(make_session_factory(engine))
    finally:
        engine.dispose()


def test_a_rate_limit_lets_exactly_its_attempts_through(backend: Backend) -> None:
    _one_thread_does(backend, _sign_up)
    outcomes: list[str] = []

    def attempt(_thread: int, factory: sessionmaker[Session]) -> None:
        with unit_of_work(factory) as session:  # the sign-in page: a refused password still counts
            try:
                users.rate_limit(
                    session=session, clock=CLOCK, bucket=f"login:{EMAIL}", limit=LIMIT, window_seconds=900
                )
                users.log_in(session=session, clock=CLOCK, settings=backend.settings, email=EMAIL,
                             password="a guess that is wrong")  # fmt: skip
            except DomainError as refused:
                outcomes.append(refused.code.value)

    assert race(backend, attempt) == []
    counted = Counter(outcomes)
    assert counted == {
        ErrorCode.UNAUTHENTICATED.value: LIMIT,
        ErrorCode.RATE_LIMITED.value: backend.threads - LIMIT,
    }, counted

    def events(factory: sessionmaker[Session]) -> int:
        with unit_of_work(factory) as session:
            return int(session.scalar(select(func.count()).select_from(RateEvent)) or 0)

    assert _one_thread_does(backend, events) == LIMIT


def test_a_password_reset_link_works_once(backend: Backend) -> None:
    _one_thread_does(backend, _sign_up)

    def link(factory: sessionmaker[Session]) -> str:
        with unit_of_work(factory) as session:
            users.request_password_reset(session=session, clock=CLOCK, settings=backend.settings,
                                         email=EMAIL, base_url="https://neutralize.test")  # fmt: skip
            body = session.scalars(select(OutboxMessage.body)).one()
        return next(w for w in body.split() if "/password-reset/" in w).rsplit("/", 1)[1]

    token = _one_thread_does(backend, link)
    outcomes: dict[int, str] = {}

    def reset(thread: int, factory: sessionmaker[Session]) -> None:
        try:
            with unit_of_work(factory) as session:
                users.reset_password(session=session, clock=CLOCK, settings=backend.settings, token=token,
                                     password=f"new password {thread}")  # fmt: skip
            outcomes[thread] = WON
        except DomainError as refused:
            outcomes[thread] = refused.code.value

    assert race(backend, reset) == []
    counted = Counter(outcomes.values())
    assert counted == {WON: 1, ErrorCode.TOKEN_INVALID.value: backend.threads - 1}, counted
    winner = next(thread for thread, outcome in outcomes.items() if outcome == WON)

    def password_hash(factory: sessionmaker[Session]) -> str:
        with unit_of_work(factory) as session:
            return session.scalars(select(User.password_hash)).one()

    assert PasswordHasher().verify(_one_thread_does(backend, password_hash), f"new password {winner}")


def test_an_address_signs_up_once(backend: Backend) -> None:
    outcomes: list[str] = []
    errors = race(backend, lambda n, factory: outcomes.append(_sign_up(factory, f"Li Wei {n}")))
    assert errors == [], _first_exception(errors)
    counted = Counter(WON if o.startswith("usr_") else o for o in outcomes)
    assert counted == {WON: 1, ErrorCode.DUPLICATE.value: backend.threads - 1}, counted
