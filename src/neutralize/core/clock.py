"""Time as a dependency: services take a clock so tests can fix it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that says what it is told; for tests and reproducible runs."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        """Move the clock on (tests of expiry and late events)."""
        self._at += delta


def as_utc(at: datetime) -> datetime:
    """A stored time as an aware UTC datetime: SQLite gives back naive UTC, PostgreSQL aware times."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
