"""Stored footprints: a computed result kept so quotes, scenes and reports can refer to it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from neutralize.core.db import Base


class Footprint(Base):
    __tablename__ = "footprints"
    __table_args__ = (
        CheckConstraint("total_kg_co2e >= 0", name="total_non_negative"),
        CheckConstraint("line_count > 0", name="has_lines"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    total_kg_co2e: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    line_count: Mapped[int]
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
