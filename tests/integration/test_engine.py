"""A server's pooled connections: an idle one is pinged before it is handed out (and replaced if
it died), a busy one is trusted, and a disconnect on a busy one costs one statement only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from neutralize.core import db
from neutralize.core.db import make_engine
from tests.conftest import POSTGRES_URL, fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    built = make_engine(fresh_database("postgresql", "engine", tmp_path_factory))
    yield built
    built.dispose()


def pid_and_kill(engine: Engine) -> int:
    """The pooled connection's server process, ended from outside as a server restart would."""
    with engine.connect() as connection:
        pid = int(connection.scalar(text("SELECT pg_backend_pid()")))
    assert POSTGRES_URL is not None
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()
    return pid


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "TRUSTED_FOR_S", 0.0)  # every connection counts as idle
    dead = pid_and_kill(engine)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT pg_backend_pid()")) != dead


def test_only_an_idle_connection_is_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pinged: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pinged.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    with engine.connect() as connection:  # new: never used
        connection.scalar(text("SELECT 1"))
    with engine.connect() as connection:  # used a moment ago
        connection.scalar(text("SELECT 1"))
    assert len(pinged) == 1
    monkeypatch.setattr(db, "TRUSTED_FOR_S", 0.0)
    with engine.connect() as connection:
        connection.scalar(text("SELECT 1"))
    assert len(pinged) == 2


def test_a_dead_busy_connection_fails_one_statement_and_the_pool_recovers(engine: Engine) -> None:
    pid_and_kill(engine)
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.scalar(text("SELECT 1"))
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1
