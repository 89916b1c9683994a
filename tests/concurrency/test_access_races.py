"""Many browsers at once on one account's doors: sign-in attempts against one address's rate limit,
one password-reset link, one e-mail address signed up twice.

- A rate limit lets exactly ``limit`` attempts through in its window, however many arrive together
  (each attempt is counted in the request's own transaction, as the sign-in page does).
- A reset link sets the password once: one request wins, the others are told the link is used
  (``token_invalid``), and the password is the winner's.
- An address signs up once: one account is made, the others are told it exists (``duplicate``),
  never a server error.
- A reset that commits while a sign-in with the old password is being checked wins: the sign-in is
  refused, keeps no session and writes no rehash of the old password (PostgreSQL; SQLite's writers
  never overlap).

Thread counts as in ``test_account_redemptions``; each thread works in a unit of work of its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access import users
from neutralize.access.models import OutboxMessage, RateEvent, User, WebSession
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


@pytest.mark.postgres  # SQLite's writers never overlap: the sign-in holds the database until it ends
def test_a_reset_during_a_sign_in_with_the_old_password_wins(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_thread_does(backend, _sign_up)
    checked, reset_done = threading.Event(), threading.Event()
    real = users._hasher

    class SlowHasher:  # the reset commits while the sign-in's hash is being checked
        def verify(self, hash_: str, password: str) -> bool:
            ok = real.verify(hash_, password)
            checked.set()
            assert reset_done.wait(timeout=30)
            return ok

        def check_needs_rehash(self, hash_: str) -> bool:
            return True  # as after an upgrade of the hash's parameters: the sign-in would write one

        def hash(self, password: str) -> str:
            return real.hash(password)

    monkeypatch.setattr(users, "_hasher", SlowHasher())
    answers: list[str] = []

    def sign_in() -> None:
        engine = make_engine(backend.settings)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                users.log_in(session=session, clock=CLOCK, settings=backend.settings, email=EMAIL,
                             password=PASSWORD)  # fmt: skip
            answers.append(WON)
        except DomainError as refused:
            answers.append(refused.code.value)
        finally:
            engine.dispose()

    def reset(factory: sessionmaker[Session]) -> None:
        with unit_of_work(factory) as session:
            users.request_password_reset(session=session, clock=CLOCK, settings=backend.settings,
                                         email=EMAIL, base_url="https://neutralize.test")  # fmt: skip
            body = session.scalars(select(OutboxMessage.body)).one()
        token = next(w for w in body.split() if "/password-reset/" in w).rsplit("/", 1)[1]
        with unit_of_work(factory) as session:
            users.reset_password(session=session, clock=CLOCK, settings=backend.settings, token=token,
                                 password="the second password")  # fmt: skip

    signing_in = threading.Thread(target=sign_in)
    signing_in.start()
    assert checked.wait(timeout=30)
    _one_thread_does(backend, reset)
    reset_done.set()
    signing_in.join(timeout=30)
    assert answers == [ErrorCode.UNAUTHENTICATED.value]

    def after(factory: sessionmaker[Session]) -> tuple[str, int]:
        with unit_of_work(factory) as session:
            return session.scalars(select(User.password_hash)).one(), int(
                session.scalar(select(func.count()).select_from(WebSession)) or 0
            )

    hash_, sessions = _one_thread_does(backend, after)
    assert PasswordHasher().verify(hash_, "the second password") and sessions == 0
