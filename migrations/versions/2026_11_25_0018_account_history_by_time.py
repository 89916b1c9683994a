"""carbon accounts: the history indexed by account and behaviour time; room for running totals

- ``ix_account_entries_account_time`` (account, start) replaces (account, id): a new upload reads the
  earlier entries of its people over the upload's days (overlaps, daily caps) through it, one index
  range per account instead of a scan of every entry in those days, and the history page lists an
  account's latest behaviour from it.
- PostgreSQL: ``carbon_accounts`` keeps a fifth of each page free (fillfactor 80), so that adding to
  an account's running totals, which no index covers, writes the new row version beside the old one
  (a HOT update) instead of into every index.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 09:00:00.000000+00:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_account_entries_account")
        batch_op.create_index("ix_account_entries_account_time", ["account_id", "started_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE carbon_accounts SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE carbon_accounts RESET (fillfactor)")
    with op.batch_alter_table("account_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_account_entries_account_time")
        batch_op.create_index("ix_account_entries_account", ["account_id", "id"], unique=False)
