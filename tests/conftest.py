"""Shared fixtures: database backends (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from neutralize.core.config import Settings
from neutralize.core.db import make_engine
from neutralize.core.migrations import upgrade

settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "stress", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

POSTGRES_URL = os.environ.get("NEUTRALIZE_TEST_POSTGRES_URL")
ON_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of PostgreSQL-only behaviour are not collected for SQLite at all (rather than skipped)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        sqlite = "sqlite" in params.values()
        (dropped if sqlite and item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_sessionstart(session: pytest.Session) -> None:
    if ON_CI and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI=true but NEUTRALIZE_TEST_POSTGRES_URL is not set: the PostgreSQL suite must run"
        )


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_settings(purpose: str) -> Settings:
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL suite skipped: NEUTRALIZE_TEST_POSTGRES_URL is not set (make test sets it when "
            "pg_isready answers)"
        )
    schema = f"neutralize_{purpose}_{_worker()}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # the server is configured but does not answer
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} does not answer: {error}")
    finally:
        admin.dispose()
    separator = "&" if "?" in POSTGRES_URL else "?"
    return Settings(
        environment="test", database_url=f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    )


def fresh_database(backend: str, purpose: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a new, migrated database of its own on ``backend`` (sqlite or postgresql)."""
    if backend == "postgresql":
        settings_ = _postgres_settings(purpose)
    else:
        path: Path = tmp_path_factory.mktemp(purpose) / "test.db"
        settings_ = Settings(environment="test", database_url=f"sqlite:///{path}")
    upgrade(settings_)
    return settings_


@pytest.fixture(scope="session", params=BACKENDS)
def db_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a migrated, empty database on each backend (tests roll back what they do)."""
    return fresh_database(request.param, "test", tmp_path_factory)


@pytest.fixture(scope="session")
def db_engine(db_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(db_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db_engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (savepoint per test)."""
    connection = db_engine.connect()
    transaction = connection.begin()
    db_session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()
