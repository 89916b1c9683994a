"""Mirrored blocks: a retired or cancelled block may lie inside an issued block of its project.

Gold Standard publishes an issuance as one block and its retirements as sub-blocks of it, so a retired
block may start at the issued block's first unit. The unique key (programme, unit space, first unit)
becomes (programme, unit space, first unit, status); the importer checks the rest of the rule (see
``registry/importers/assemble.py``).

A downgrade fails while a retired or cancelled block starts where its issued block starts.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25 16:30:00.000000+00:00
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

NAME = "uq_mirrored_blocks_programme"


def upgrade() -> None:
    with op.batch_alter_table("mirrored_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(NAME, type_="unique")
        batch_op.create_unique_constraint(NAME, ["programme", "unit_space", "first_unit", "status"])


def downgrade() -> None:
    with op.batch_alter_table("mirrored_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(NAME, type_="unique")
        batch_op.create_unique_constraint(NAME, ["programme", "unit_space", "first_unit"])
