"""Scene tables: the scenes organisers run, and each guest's participation in one."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Numeric, String
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
    """One guest's footprint in a scene, and the order that offset it, if any.

    ``offset_kg`` and ``reduction_g`` are kept on the row (from the certified order, and from carbon
    accounts once they exist) so that a leaderboard of a million participants is an index scan.
    """

    __tablename__ = "participations"
    __table_args__ = (
        Index("ix_participations_rank", "scene_id", "reduction_g", "offset_kg", "id"),
        Index("ix_participations_rank_all", "reduction_g", "offset_kg", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), index=True)
    footprint_id: Mapped[str] = mapped_column(ForeignKey("footprints.id"))
    total_kg_co2e: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    by_category: Mapped[dict[str, Any]] = mapped_column(JSON)  # kg CO2e as decimal strings
    by_mode: Mapped[dict[str, Any]] = mapped_column(JSON)  # travel only: flight, rail, car, bus, ...
    name: Mapped[str | None] = mapped_column(String(200))  # given by the guest, or the offset's beneficiary
    show_name: Mapped[bool] = mapped_column(Boolean, default=False)  # otherwise shown masked: 张*
    # A signed-in guest's user and organisation: the organisation's leaderboards count the guest.
    user_id: Mapped[str | None] = mapped_column(String(40))
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    offset_kg: Mapped[int] = mapped_column(BigInteger, default=0)
    reduction_g: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ParticipationRank(Base):
    """Ranks as last computed for everyone (the app refreshes them every minute): "my rank" among a
    million is then one read. A row whose reductions or offsets changed since is ranked live."""

    __tablename__ = "participation_ranks"

    participation_id: Mapped[str] = mapped_column(ForeignKey("participations.id"), primary_key=True)
    scene_rank: Mapped[int] = mapped_column(BigInteger)
    overall_rank: Mapped[int] = mapped_column(BigInteger)
    reduction_g: Mapped[int] = mapped_column(BigInteger)
    offset_kg: Mapped[int] = mapped_column(BigInteger)


class OrganisationTotal(Base):
    """What an organisation's signed-in people did, per scene and across all (``scope`` "all"), kept
    up to date as they take part and offset, so that the organisations' top 100 is an index scan."""

    __tablename__ = "organisation_totals"
    __table_args__ = (Index("ix_organisation_totals_rank", "scope", "reduction_g", "offset_kg"),)

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)  # a scene's id, or "all"
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    participants: Mapped[int] = mapped_column(BigInteger, default=0)
    reduction_g: Mapped[int] = mapped_column(BigInteger, default=0)
    offset_kg: Mapped[int] = mapped_column(BigInteger, default=0)
