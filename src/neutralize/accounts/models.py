"""Carbon-account tables: each partner's accounts, the insert-only history of what their records were
credited, the points spent on partners' benefits, links between a person's accounts, consents, and
the bundles that turn verified grams into registry credits.

An account row keeps running totals (grams credited and bundled, points spent) so that a balance
among a million accounts is one primary-key read; ``accounts.service.check`` proves them equal to
the history. The database refuses what must never happen: negative grams, more grams bundled than
credited, more points spent than earned (1 point per 100 g credited, see docs/accounts.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from neutralize.core.db import Base

BIG_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite's rowid needs INTEGER
GRAMS_PER_POINT = 100


class CarbonAccount(Base):
    """A person's account at one partner, known by the partner's pseudonymous reference."""

    __tablename__ = "carbon_accounts"
    __table_args__ = (
        UniqueConstraint("partner_id", "reference"),
        CheckConstraint("credited_g >= 0", name="credited"),
        CheckConstraint("bundled_g >= 0 AND bundled_g <= credited_g", name="bundled"),
        CheckConstraint(
            f"points_spent >= 0 AND points_spent * {GRAMS_PER_POINT} <= credited_g", name="points"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    reference: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)  # once linked
    credited_g: Mapped[int] = mapped_column(BigInteger, default=0)
    bundled_g: Mapped[int] = mapped_column(BigInteger, default=0)
    points_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccountEntry(Base):
    """One record as received and what it was credited (0 g with a code when rejected), with the
    methodology version, parameter set and rule results behind it. Insert-only."""

    __tablename__ = "account_entries"
    __table_args__ = (
        UniqueConstraint("partner_id", "external_id"),  # re-sending a record changes nothing
        CheckConstraint("grams >= 0", name="grams"),
        Index("ix_account_entries_account_time", "account_id", "started_at"),  # history; spans by day
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(ForeignKey("carbon_accounts.id"))
    behaviour: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    measures: Mapped[dict[str, Any]] = mapped_column(JSON)
    distance_m: Mapped[int | None] = mapped_column(BigInteger)  # the trip's, where it has one
    grams: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str | None] = mapped_column(String(40))  # why it was rejected or capped
    methodology: Mapped[str | None] = mapped_column(String(60))  # e.g. "public_transport@1.0.0"
    parameters_sha256: Mapped[str | None] = mapped_column(String(64))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LinkCode(Base):
    """A one-time code a partner's app shows a person, who confirms it while signed in: their account
    at that partner joins their other accounts (and overlapping behaviour is credited once)."""

    __tablename__ = "account_link_codes"

    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("carbon_accounts.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LevelConsent(Base):
    """A person lets one partner read their green level through the API, until they withdraw it.
    The grant's id is what the person hands the partner."""

    __tablename__ = "level_consents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Benefit(Base):
    """An offer a partner publishes, priced in points; ``stock`` None means unlimited."""

    __tablename__ = "benefits"
    __table_args__ = (
        CheckConstraint("points > 0", name="points"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    points: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Redemption(Base):
    """Points spent on a benefit, once per (account, idempotency key). Insert-only."""

    __tablename__ = "redemptions"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("carbon_accounts.id"), index=True)
    benefit_id: Mapped[str] = mapped_column(ForeignKey("benefits.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Bundle(Base):
    """Verified grams of a period turned into a native carbon-inclusive issuance, in whole kilograms."""

    __tablename__ = "account_bundles"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    issuance_id: Mapped[str | None] = mapped_column(ForeignKey("issuances.id"))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kg: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BundleTake(Base):
    """How many grams a bundle took from one history entry. Insert-only; per entry, the takes never
    add up to more than it was credited."""

    __tablename__ = "account_bundle_takes"
    __table_args__ = (
        CheckConstraint("grams > 0", name="grams"),
        Index("ix_account_bundle_takes_entry", "entry_id"),
    )

    bundle_id: Mapped[str] = mapped_column(ForeignKey("account_bundles.id"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("account_entries.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("carbon_accounts.id"), index=True)
    grams: Mapped[int] = mapped_column(BigInteger)
