"""Certificate tables: the current signed version of each certificate, and every earlier one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from neutralize.core.db import Base


class Certificate(Base):
    """One certificate per retirement or share; ``document`` and ``signature_b64`` are its newest
    signed version (a pending share's certificate is signed again when the home retirement is
    recorded)."""

    __tablename__ = "certificates"

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(40), unique=True)  # the order it certifies
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # native_retirement, home_retirement_share
    status: Mapped[str] = mapped_column(String(20))  # retired, pending
    kg: Mapped[int] = mapped_column(BigInteger)
    holder_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    key_id: Mapped[str] = mapped_column(String(40))
    signature_b64: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CertificateVersion(Base):
    """Every signed version, kept so that an older copy still verifies and shows what changed."""

    __tablename__ = "certificate_versions"
    __table_args__ = (UniqueConstraint("number", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(ForeignKey("certificates.number"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    key_id: Mapped[str] = mapped_column(String(40))
    signature_b64: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
