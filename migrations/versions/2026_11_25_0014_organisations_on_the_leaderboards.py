"""organisations on the leaderboards: a signed-in guest's user and organisation on their
participation, and each organisation's standing per scene and across all

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-25 06:30:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation_totals",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("organisation_id", sa.String(length=40), nullable=False),
        sa.Column("participants", sa.BigInteger(), nullable=False),
        sa.Column("reduction_g", sa.BigInteger(), nullable=False),
        sa.Column("offset_kg", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_totals_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("scope", "organisation_id", name=op.f("pk_organisation_totals")),
    )
    with op.batch_alter_table("organisation_totals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_organisation_totals_rank", ["scope", "reduction_g", "offset_kg"], unique=False
        )

    with op.batch_alter_table("participations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("organisation_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_participations_organisation_id_organisations"),
            "organisations",
            ["organisation_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("participations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_participations_organisation_id_organisations"), type_="foreignkey"
        )
        batch_op.drop_column("organisation_id")
        batch_op.drop_column("user_id")

    with op.batch_alter_table("organisation_totals", schema=None) as batch_op:
        batch_op.drop_index("ix_organisation_totals_rank")

    op.drop_table("organisation_totals")
