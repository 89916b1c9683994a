"""Stored footprints on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.core.clock import FixedClock
from neutralize.core.errors import NotFoundError
from neutralize.footprint import service
from neutralize.footprint.models import Footprint

CLOCK = FixedClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


def test_a_saved_footprint_reads_back_identically(session: Session) -> None:
    # given a computed footprint
    computed = service.calculate(activities=[{"type": "hotel", "country": "DE", "nights": 3}])
    # when it is saved and read back
    saved = service.save(session=session, clock=CLOCK, footprint=computed)
    # then it has an id and time, and reads back unchanged with exact decimals
    assert saved.id is not None and saved.created_at == CLOCK.now()
    assert service.get(session=session, footprint_id=saved.id) == saved
    row = session.scalars(select(Footprint).where(Footprint.id == saved.id)).one()
    assert str(row.total_kg_co2e) == "39.600000"


def test_reading_an_unknown_footprint_raises_not_found(session: Session) -> None:
    with pytest.raises(NotFoundError):
        service.get(session=session, footprint_id="fp_none")


def test_the_schema_refuses_a_negative_total(session: Session) -> None:
    session.add(
        Footprint(
            id="fp_bad",
            created_at=CLOCK.now(),
            input_sha256="0" * 64,
            total_kg_co2e=-1,
            line_count=1,
            result={},
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()
