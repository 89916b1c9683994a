"""Registry tables: organisations, accounts, projects, verifications, issuances, blocks, retirements
and the insert-only journal."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from neutralize.core.db import Base

_STATES = "'held', 'reserved', 'retired', 'cancelled', 'buffer', 'exported'"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Account(Base):
    __tablename__ = "registry_accounts"
    __table_args__ = (
        UniqueConstraint("organisation_id", "kind", "name"),
        CheckConstraint("kind IN ('holding', 'retirement', 'buffer', 'export')", name="kind"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("buffer_permille BETWEEN 0 AND 1000", name="buffer_share"),
        CheckConstraint("credit_type IN ('avoidance', 'removal')", name="credit_type"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    standard: Mapped[str] = mapped_column(String(40), index=True)
    methodology: Mapped[str] = mapped_column(String(120))
    methodology_version: Mapped[str] = mapped_column(String(40))
    project_type: Mapped[str] = mapped_column(String(80))
    credit_type: Mapped[str] = mapped_column(String(20))
    nature_based: Mapped[bool] = mapped_column(Boolean)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(10))
    owner_organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    buffer_permille: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), index=True)
    native: Mapped[bool] = mapped_column(Boolean, default=True)
    home_registry: Mapped[str | None] = mapped_column(String(40))
    home_id: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProjectEvent(Base):
    """Who moved a project from one status to another, and when."""

    __tablename__ = "project_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Verification(Base):
    """A verifier's record that a monitoring period's reductions happened."""

    __tablename__ = "verifications"
    __table_args__ = (
        CheckConstraint("period_end >= period_start", name="period"),
        CheckConstraint("verified_kg > 0", name="quantity"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    verifier: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    verified_kg: Mapped[int] = mapped_column(BigInteger)
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    report_url: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Issuance(Base):
    """One issuance: a fresh span of the unit space for one verified vintage."""

    __tablename__ = "issuances"
    __table_args__ = (
        CheckConstraint("span_end >= span_start", name="span"),
        CheckConstraint("quantity_kg = span_end - span_start + 1", name="quantity"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id"), unique=True)
    vintage: Mapped[int] = mapped_column(Integer)
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    span_start: Mapped[int] = mapped_column(BigInteger, unique=True)
    span_end: Mapped[int] = mapped_column(BigInteger, unique=True)
    serial: Mapped[str] = mapped_column(String(120), unique=True)
    actor: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Retirement(Base):
    """A retirement on behalf of a beneficiary: the claim a set of retired blocks supports."""

    __tablename__ = "retirements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    vintage: Mapped[int] = mapped_column(Integer)
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    beneficiary: Mapped[str] = mapped_column(String(300), index=True)
    reason: Mapped[str] = mapped_column(String(1000))
    claim_period_start: Mapped[date | None] = mapped_column(Date)
    claim_period_end: Mapped[date | None] = mapped_column(Date)
    claim_country: Mapped[str | None] = mapped_column(String(2))
    actor: Mapped[str] = mapped_column(String(40))
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Block(Base):
    """A contiguous span of units in one state and one account. Spans never overlap."""

    __tablename__ = "blocks"
    __table_args__ = (
        CheckConstraint("span_end >= span_start", name="span"),
        CheckConstraint(f"state IN ({_STATES})", name="state"),
        Index("ix_blocks_holding", "account_id", "project_id", "vintage", "state"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    issuance_id: Mapped[str] = mapped_column(ForeignKey("issuances.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    vintage: Mapped[int] = mapped_column(Integer)
    span_start: Mapped[int] = mapped_column(BigInteger, index=True)
    span_end: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(ForeignKey("registry_accounts.id"))
    reservation: Mapped[str | None] = mapped_column(String(120), index=True)
    retirement_id: Mapped[str | None] = mapped_column(ForeignKey("retirements.id"), index=True)
    # Exports: registry and reference; cancellations: the reason (a buffer replacement: what it replaces).
    destination: Mapped[str | None] = mapped_column(Text)
    # Credits found invalid: every serial of the buffer units that replace them, comma-separated.
    replaced_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JournalEntry(Base):
    """Insert-only: every operation, hash-chained per chain (one chain per project vintage, and its
    retirement lanes on PostgreSQL)."""

    __tablename__ = "journal"
    __table_args__ = (UniqueConstraint("chain", "chain_seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(String(80))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ChainHead(Base):
    """The last entry of each chain; locked while a new entry is appended."""

    __tablename__ = "chain_heads"

    chain: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    """The first result of a command, kept under the client's key."""

    __tablename__ = "idempotency"

    actor: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """A signed statement of every chain's head at one moment: history before it cannot be rewritten
    without the signing key."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heads: Mapped[list[Any]] = mapped_column(JSON)  # [[chain, seq, hash], ...] sorted by chain
    root: Mapped[str] = mapped_column(String(64))  # Merkle root over the heads
    key_id: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(120))


class ImportBatch(Base):
    """One imported export file of a home registry's public data."""

    __tablename__ = "import_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    programme: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    projects: Mapped[int] = mapped_column(Integer)
    blocks: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(40))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MirroredBlock(Base):
    """A block of a home registry's public data, read-only here: quantities in kg next to the
    home serial range as published."""

    __tablename__ = "mirrored_blocks"
    __table_args__ = (
        # a retired or cancelled block may lie inside an issued one, from its first unit on
        UniqueConstraint("programme", "unit_space", "first_unit", "status"),
        CheckConstraint("last_unit >= first_unit", name="units"),
        CheckConstraint("quantity_kg = (last_unit - first_unit + 1) * 1000", name="quantity"),
        Index("ix_mirrored_blocks_space", "programme", "unit_space", "first_unit", "last_unit"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("import_batches.id"), index=True)
    programme: Mapped[str] = mapped_column(String(20))
    serial: Mapped[str] = mapped_column(String(200), index=True)
    unit_space: Mapped[str] = mapped_column(String(120))
    first_unit: Mapped[int] = mapped_column(BigInteger)
    last_unit: Mapped[int] = mapped_column(BigInteger)
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    vintage_start: Mapped[date] = mapped_column(Date)
    vintage_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), index=True)
    issued_on: Mapped[date | None] = mapped_column(Date)
    retired_on: Mapped[date | None] = mapped_column(Date)
    beneficiary: Mapped[str | None] = mapped_column(String(500))
    reason: Mapped[str | None] = mapped_column(String(1000))
    source_line: Mapped[int] = mapped_column(Integer)


class HomeRetirement(Base):
    """A retirement the platform made on a home registry, recorded here; buyers get kg shares of it."""

    __tablename__ = "home_retirements"
    __table_args__ = (
        UniqueConstraint("programme", "home_retirement_id"),
        CheckConstraint("quantity_kg = quantity_tonnes * 1000", name="quantity"),
        CheckConstraint("allocated_kg BETWEEN 0 AND quantity_kg", name="allocated"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    holding_id: Mapped[str | None] = mapped_column(ForeignKey("home_holdings.id"), index=True)
    programme: Mapped[str] = mapped_column(String(20))
    vintage: Mapped[int | None] = mapped_column(Integer)  # null only for records made before it was kept
    home_retirement_id: Mapped[str] = mapped_column(String(120))
    serial: Mapped[str] = mapped_column(String(200))
    quantity_tonnes: Mapped[int] = mapped_column(BigInteger)
    quantity_kg: Mapped[int] = mapped_column(BigInteger)
    allocated_kg: Mapped[int] = mapped_column(BigInteger, default=0)
    retired_on: Mapped[date] = mapped_column(Date)
    beneficiary_text: Mapped[str] = mapped_column(String(500))
    merkle_root: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetirementShare(Base):
    """Kilograms of a home retirement allocated to one buyer."""

    __tablename__ = "retirement_shares"
    __table_args__ = (
        CheckConstraint("kg > 0", name="kg"),
        UniqueConstraint("home_retirement_id", "reference"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    home_retirement_id: Mapped[str] = mapped_column(ForeignKey("home_retirements.id"), index=True)
    kg: Mapped[int] = mapped_column(BigInteger)
    beneficiary: Mapped[str] = mapped_column(String(300))
    reference: Mapped[str] = mapped_column(String(120))  # the order (or other claim) it belongs to
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HomeHolding(Base):
    """Units the platform holds in its own account at a home registry, to retire there for buyers."""

    __tablename__ = "home_holdings"
    __table_args__ = (
        CheckConstraint("quantity_tonnes > 0", name="quantity"),
        CheckConstraint("retired_tonnes BETWEEN 0 AND quantity_tonnes", name="retired"),
        UniqueConstraint("programme", "serial"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    programme: Mapped[str] = mapped_column(String(20))
    home_account: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str] = mapped_column(String(200))
    vintage: Mapped[int] = mapped_column(Integer)
    quantity_tonnes: Mapped[int] = mapped_column(BigInteger)
    retired_tonnes: Mapped[int] = mapped_column(BigInteger, default=0)
    actor: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
