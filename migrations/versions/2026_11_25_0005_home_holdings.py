"""The platform's own holdings at home registries, and which holding a home retirement drew on.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:27:16.586924+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "home_holdings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("programme", sa.String(length=20), nullable=False),
        sa.Column("home_account", sa.String(length=200), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("quantity_tonnes", sa.BigInteger(), nullable=False),
        sa.Column("retired_tonnes", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity_tonnes > 0", name=op.f("ck_home_holdings_quantity")),
        sa.CheckConstraint(
            "retired_tonnes BETWEEN 0 AND quantity_tonnes", name=op.f("ck_home_holdings_retired")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_home_holdings_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_home_holdings")),
        sa.UniqueConstraint("programme", "serial", name=op.f("uq_home_holdings_programme")),
    )
    with op.batch_alter_table("home_holdings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_home_holdings_project_id"), ["project_id"], unique=False)

    with op.batch_alter_table("home_retirements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holding_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_home_retirements_holding_id"), ["holding_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_home_retirements_holding_id_home_holdings"),
            "home_holdings",
            ["holding_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("home_retirements", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_home_retirements_holding_id_home_holdings"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_home_retirements_holding_id"))
        batch_op.drop_column("holding_id")

    with op.batch_alter_table("home_holdings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_home_holdings_project_id"))

    op.drop_table("home_holdings")
