"""order owners: the account that keeps an order and its certificate (the signed-in buyer, or a
guest who claims it later through the order's link)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 06:45:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_owners",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_owners_order_id_orders")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_order_owners_user_id_users")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_owners")),
    )
    with op.batch_alter_table("order_owners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_owners_user_id"), ["user_id"], unique=False)
    # An order's owner never changes: the rows are insert-only, as the market's history is (0006).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER order_owners_insert_only BEFORE UPDATE OR DELETE ON order_owners "
            "FOR EACH ROW EXECUTE FUNCTION market_insert_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER order_owners_no_{event.lower()} BEFORE {event} ON order_owners "
                "BEGIN SELECT RAISE(ABORT, 'order_owners is insert-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS order_owners_insert_only ON order_owners")
    else:
        op.execute("DROP TRIGGER IF EXISTS order_owners_no_update")
        op.execute("DROP TRIGGER IF EXISTS order_owners_no_delete")
    with op.batch_alter_table("order_owners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_owners_user_id"))

    op.drop_table("order_owners")
