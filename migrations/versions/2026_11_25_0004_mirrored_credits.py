"""Mirrored credits: imported public registry data, home retirements and the shares of them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 02:41:21.128838+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("programme", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("projects", sa.Integer(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
        sa.UniqueConstraint("sha256", name=op.f("uq_import_batches_sha256")),
    )
    op.create_table(
        "home_retirements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("programme", sa.String(length=20), nullable=False),
        sa.Column("home_retirement_id", sa.String(length=120), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=False),
        sa.Column("quantity_tonnes", sa.BigInteger(), nullable=False),
        sa.Column("quantity_kg", sa.BigInteger(), nullable=False),
        sa.Column("allocated_kg", sa.BigInteger(), nullable=False),
        sa.Column("retired_on", sa.Date(), nullable=False),
        sa.Column("beneficiary_text", sa.String(length=500), nullable=False),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "allocated_kg BETWEEN 0 AND quantity_kg", name=op.f("ck_home_retirements_allocated")
        ),
        sa.CheckConstraint("quantity_kg = quantity_tonnes * 1000", name=op.f("ck_home_retirements_quantity")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_home_retirements_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_home_retirements")),
        sa.UniqueConstraint("programme", "home_retirement_id", name=op.f("uq_home_retirements_programme")),
    )
    with op.batch_alter_table("home_retirements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_home_retirements_project_id"), ["project_id"], unique=False)

    op.create_table(
        "mirrored_blocks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("programme", sa.String(length=20), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=False),
        sa.Column("unit_space", sa.String(length=120), nullable=False),
        sa.Column("first_unit", sa.BigInteger(), nullable=False),
        sa.Column("last_unit", sa.BigInteger(), nullable=False),
        sa.Column("quantity_kg", sa.BigInteger(), nullable=False),
        sa.Column("vintage_start", sa.Date(), nullable=False),
        sa.Column("vintage_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("retired_on", sa.Date(), nullable=True),
        sa.Column("beneficiary", sa.String(length=500), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.CheckConstraint("last_unit >= first_unit", name=op.f("ck_mirrored_blocks_units")),
        sa.CheckConstraint(
            "quantity_kg = (last_unit - first_unit + 1) * 1000", name=op.f("ck_mirrored_blocks_quantity")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_mirrored_blocks_batch_id_import_batches")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_mirrored_blocks_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirrored_blocks")),
        sa.UniqueConstraint(
            "programme", "unit_space", "first_unit", name=op.f("uq_mirrored_blocks_programme")
        ),
    )
    with op.batch_alter_table("mirrored_blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mirrored_blocks_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mirrored_blocks_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mirrored_blocks_serial"), ["serial"], unique=False)
        batch_op.create_index(
            "ix_mirrored_blocks_space", ["programme", "unit_space", "first_unit", "last_unit"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mirrored_blocks_status"), ["status"], unique=False)

    op.create_table(
        "retirement_shares",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_retirement_id", sa.String(length=40), nullable=False),
        sa.Column("kg", sa.BigInteger(), nullable=False),
        sa.Column("beneficiary", sa.String(length=300), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kg > 0", name=op.f("ck_retirement_shares_kg")),
        sa.ForeignKeyConstraint(
            ["home_retirement_id"],
            ["home_retirements.id"],
            name=op.f("fk_retirement_shares_home_retirement_id_home_retirements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retirement_shares")),
        sa.UniqueConstraint(
            "home_retirement_id", "reference", name=op.f("uq_retirement_shares_home_retirement_id")
        ),
    )
    with op.batch_alter_table("retirement_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retirement_shares_home_retirement_id"), ["home_retirement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("retirement_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retirement_shares_home_retirement_id"))

    op.drop_table("retirement_shares")
    with op.batch_alter_table("mirrored_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mirrored_blocks_status"))
        batch_op.drop_index("ix_mirrored_blocks_space")
        batch_op.drop_index(batch_op.f("ix_mirrored_blocks_serial"))
        batch_op.drop_index(batch_op.f("ix_mirrored_blocks_project_id"))
        batch_op.drop_index(batch_op.f("ix_mirrored_blocks_batch_id"))

    op.drop_table("mirrored_blocks")
    with op.batch_alter_table("home_retirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_home_retirements_project_id"))

    op.drop_table("home_retirements")
    op.drop_table("import_batches")
