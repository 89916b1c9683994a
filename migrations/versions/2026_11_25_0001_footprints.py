"""Stored footprints.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "footprints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("total_kg_co2e", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.CheckConstraint("total_kg_co2e >= 0", name="total_non_negative"),
        sa.CheckConstraint("line_count > 0", name="has_lines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_footprints")),
    )
    op.create_index(op.f("ix_footprints_created_at"), "footprints", ["created_at"])
    op.create_index(op.f("ix_footprints_input_sha256"), "footprints", ["input_sha256"])


def downgrade() -> None:
    op.drop_index(op.f("ix_footprints_input_sha256"), table_name="footprints")
    op.drop_index(op.f("ix_footprints_created_at"), table_name="footprints")
    op.drop_table("footprints")
