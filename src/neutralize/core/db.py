"""Database engine, sessions and the unit of work.

Services receive a ``Session`` and never commit; the unit of work that opened it (a request
dependency or a CLI command) commits on success and rolls back on any exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from time import monotonic
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, exc, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from neutralize.core.config import Settings
from neutralize.core.errors import DomainError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every table of the platform."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# A pooled connection used less than this long ago is handed out without a ping first.
TRUSTED_FOR_S = 1.0


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured URL; SQLite gets WAL and ``BEGIN IMMEDIATE``, a server's
    connections a ping when they have been idle."""
    if not settings.is_sqlite:
        engine = create_engine(settings.database_url)
        _ping_when_idle(engine)
        return engine
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.database_url,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    _use_immediate_transactions(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Hand out only live connections, as ``pool_pre_ping`` does, but ping only those that have
    been idle for ``TRUSTED_FOR_S`` or more: a busy connection would pay one more round trip per
    unit of work (a quarter of a retirement's). Should the server go away while connections are
    busy, the first statement on one fails as a disconnect and the pool drops every connection made
    before it."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["neutralize_used_at"] = monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used_at = record.info.get("neutralize_used_at")
        if used_at is not None and monotonic() - used_at < TRUSTED_FOR_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and hands out another one.
            raise exc.DisconnectionError(f"the connection did not answer a ping: {error}") from error


def _use_immediate_transactions(engine: Engine) -> None:
    # pysqlite's own BEGIN handling defers locks until the first write; read-then-write
    # use cases need the write lock up front so two writers never both read stale state.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def add_once(
    session: Session, rows: Sequence[object], *, taken: Callable[[], bool], refusal: DomainError
) -> None:
    """Add ``rows`` and write them in a savepoint. When a unique key refuses them and ``taken()`` finds
    the thing they would make (sent twice, or made a moment ago by a request running at the same time),
    raise ``refusal`` instead, with nothing of them kept; any other integrity error goes on."""
    try:
        with session.begin_nested():
            session.add_all(rows)
    except exc.IntegrityError:
        if not taken():
            raise
        raise refusal from None


def hold(session: Session, name: str) -> None:
    """Hold ``name`` until the session's transaction ends: another transaction that holds it (the same
    operation at the same moment) waits until then. PostgreSQL takes a transaction-level advisory lock;
    SQLite needs none, as every write transaction already holds the database (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
