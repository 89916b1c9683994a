"""Scene tables: the scenes organisers run, and each guest's participation in one."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
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
    # The guest's reference on the event's registration list: their answers replace its estimate.
    registration_ref: Mapped[str | None] = mapped_column(String(60))
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


# --- event neutrality (docs/scenes.md, "Event carbon neutrality") ------------------------------------


class EventPlan(Base):
    """Step 1: the expected attendance and footprint, and the reduction plan."""

    __tablename__ = "event_plans"

    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), primary_key=True)
    expected_attendees: Mapped[int] = mapped_column(Integer)
    expected_kg: Mapped[int] = mapped_column(BigInteger)
    reduction_plan: Mapped[str] = mapped_column(Text)
    destination_airport: Mapped[str | None] = mapped_column(String(3))  # where attendees fly to
    recorded_by: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventMeasure(Base):
    """Step 2: a reduction measure and its evidence."""

    __tablename__ = "event_measures"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), index=True)
    description: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[str] = mapped_column(String(500))  # a reference, an address or a note
    saved_kg: Mapped[int | None] = mapped_column(BigInteger)  # the organiser's estimate, if any
    recorded_by: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRegistration(Base):
    """Step 3: one attendee of the registration list and the estimate of their travel and stay
    (None: no origin given, so extrapolated)."""

    __tablename__ = "event_registrations"
    __table_args__ = (UniqueConstraint("scene_id", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), index=True)
    reference: Mapped[str] = mapped_column(String(60))
    row_number: Mapped[int] = mapped_column(Integer)
    activities: Mapped[list[Any]] = mapped_column(JSON)
    kg_co2e: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventItem(Base):
    """Step 3: an item the organiser entered (venue electricity, catering, fuel, materials, waste),
    once per key: entering it again replaces it."""

    __tablename__ = "event_items"
    __table_args__ = (UniqueConstraint("scene_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), index=True)
    key: Mapped[str] = mapped_column(String(60))  # electricity:CN-SC, catering:vegan, declared:waste
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    unit: Mapped[str] = mapped_column(String(20))
    kg_co2e: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    low_kg_co2e: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    high_kg_co2e: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    source: Mapped[str] = mapped_column(String(500))  # the factor and edition, or the declared source
    recorded_by: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventOffset(Base):
    """Step 4: an order for the event (counted once certified), or an allowance cancellation made
    elsewhere, recorded with its reference."""

    __tablename__ = "event_offsets"
    __table_args__ = (UniqueConstraint("scene_id", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(120))  # the order, or the cancellation's reference
    kg: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventEvaluation(Base):
    """Step 5: who evaluated the event's neutrality: the organiser with evidence, or a third party."""

    __tablename__ = "event_evaluations"

    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    evaluator: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(500))  # the report's number or address, or evidence
    recorded_by: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventReminder(Base):
    """An offset-deadline reminder sent (each threshold once per event)."""

    __tablename__ = "event_reminders"

    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), primary_key=True)
    days_before: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
