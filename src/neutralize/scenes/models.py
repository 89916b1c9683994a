"""Scene tables: the scenes organisers run, and each guest's participation in one."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from neutralize.core.db import Base


class Scene(Base):
    __tablename__ = "scenes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    organiser_id: Mapped[str] = mapped_column(String(40), index=True)  # the user or key that made it
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(10))
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Participation(Base):
    """One guest's footprint in a scene, and the order that offset it, if any."""

    __tablename__ = "participations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), index=True)
    footprint_id: Mapped[str] = mapped_column(ForeignKey("footprints.id"))
    total_kg_co2e: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    by_category: Mapped[dict[str, Any]] = mapped_column(JSON)  # kg CO2e as decimal strings
    by_mode: Mapped[dict[str, Any]] = mapped_column(JSON)  # travel only: flight, rail, car, bus, ...
    display_name: Mapped[str | None] = mapped_column(String(200))  # shown only if the guest agreed
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
