"""Market tables: listings, quotes, orders and their history, payments, webhook events, pending
shares of home-registry stock, the double-entry money ledger and the quality policy versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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


class Listing(Base):
    """Credits of one project vintage offered at a price per tonne."""

    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint("available_kg >= 0", name="available"),
        CheckConstraint("sold_kg >= 0", name="sold"),
        CheckConstraint("price_per_tonne_minor > 0", name="price"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    vintage: Mapped[int] = mapped_column(Integer)
    seller_organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    native: Mapped[bool] = mapped_column(Boolean)
    price_per_tonne_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    available_kg: Mapped[int] = mapped_column(BigInteger)
    sold_kg: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    actor: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Quote(Base):
    """A priced offer for some kilograms of one listing, valid until it expires."""

    __tablename__ = "quotes"
    __table_args__ = (CheckConstraint("kg > 0", name="kg"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), index=True)
    kg: Mapped[int] = mapped_column(BigInteger)
    split: Mapped[dict[str, Any]] = mapped_column(JSON)
    gateway: Mapped[str] = mapped_column(String(20))
    footprint_id: Mapped[str | None] = mapped_column(String(40))
    offsets: Mapped[dict[str, Any]] = mapped_column(JSON)  # what it offsets, per language
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Order(Base):
    """One purchase from quote to certificate. The amounts are the quote's, fixed at creation."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("kg > 0", name="kg"),
        CheckConstraint(
            "total_minor = credits_minor + platform_fee_minor + tax_minor + payment_fee_minor", name="total"
        ),
        Index("ix_orders_status_until", "status", "reserved_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id"), index=True)
    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    seller_organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    native: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))
    kg: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    price_per_tonne_minor: Mapped[int] = mapped_column(BigInteger)
    credits_minor: Mapped[int] = mapped_column(BigInteger)
    platform_fee_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    payment_fee_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    beneficiary_name: Mapped[str] = mapped_column(String(200))
    beneficiary_email: Mapped[str | None] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(500))
    offsets: Mapped[dict[str, Any]] = mapped_column(JSON)
    gateway: Mapped[str] = mapped_column(String(20))
    reservation_round: Mapped[int] = mapped_column(Integer, default=0)
    reserved_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retirement_id: Mapped[str | None] = mapped_column(String(40))
    certificate_number: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(500))  # why it failed or was refunded
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrderOwner(Base):
    """The account an order belongs to: the signed-in buyer's, or a guest's who claimed it later
    through the order's own link (whose id only the buyer was shown). One owner, never changed."""

    __tablename__ = "order_owners"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrderEvent(Base):
    """Every status change of an order, with when and why."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Payment(Base):
    """A payment asked of a gateway for one order."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("gateway", "provider_ref"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    gateway: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str] = mapped_column(String(120))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))  # pending, succeeded, failed, refunded
    next_action: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaymentEvent(Base):
    """A provider's notification, kept once per event id: a second delivery has no effect."""

    __tablename__ = "payment_events"

    gateway: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    provider_ref: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    effect: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PendingShare(Base):
    """Kilograms of home-registry stock sold to one order, waiting for (or allocated to) a
    retirement recorded at home."""

    __tablename__ = "pending_shares"
    __table_args__ = (CheckConstraint("kg > 0", name="kg"),)

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    vintage: Mapped[int] = mapped_column(Integer)
    kg: Mapped[int] = mapped_column(BigInteger)
    beneficiary: Mapped[str] = mapped_column(String(300))
    home_retirement_id: Mapped[str | None] = mapped_column(ForeignKey("home_retirements.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    allocated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """One leg of a money transaction; the legs of one transaction sum to zero.

    Accounts: ``gateway:<name>`` (money received through a provider), ``owner:<organisation>``
    (owed to a project owner or seller), ``platform:fees``, ``platform:tax`` (payable),
    ``provider_fees:<name>`` (owed to the provider) and ``payouts`` (money sent out).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_account", "account", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # sale, refund, payout
    account: Mapped[str] = mapped_column(String(80))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), index=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id"), index=True)
    memo: Mapped[str] = mapped_column(String(300), default="")
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QualityPolicy(Base):
    """A version of the quality policy; the newest is in force."""

    __tablename__ = "quality_policies"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
