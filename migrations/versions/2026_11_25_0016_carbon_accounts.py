"""carbon accounts: partners' accounts, the insert-only history of their records, links, consents,
benefits and redemptions, and bundles of verified grams

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 07:00:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INSERT_ONLY = ("account_entries", "redemptions", "account_bundle_takes")


def upgrade() -> None:
    op.create_table(
        "benefits",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_benefits_points")),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name=op.f("ck_benefits_stock")),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["organisations.id"], name=op.f("fk_benefits_partner_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefits")),
    )
    with op.batch_alter_table("benefits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_benefits_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "carbon_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("credited_g", sa.BigInteger(), nullable=False),
        sa.Column("bundled_g", sa.BigInteger(), nullable=False),
        sa.Column("points_spent", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "bundled_g >= 0 AND bundled_g <= credited_g", name=op.f("ck_carbon_accounts_bundled")
        ),
        sa.CheckConstraint("credited_g >= 0", name=op.f("ck_carbon_accounts_credited")),
        sa.CheckConstraint(
            "points_spent >= 0 AND points_spent * 100 <= credited_g", name=op.f("ck_carbon_accounts_points")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["organisations.id"], name=op.f("fk_carbon_accounts_partner_id_organisations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_carbon_accounts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carbon_accounts")),
        sa.UniqueConstraint("partner_id", "reference", name=op.f("uq_carbon_accounts_partner_id")),
    )
    with op.batch_alter_table("carbon_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_carbon_accounts_user_id"), ["user_id"], unique=False)

    op.create_table(
        "level_consents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["organisations.id"], name=op.f("fk_level_consents_partner_id_organisations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_level_consents_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_level_consents")),
    )
    with op.batch_alter_table("level_consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_level_consents_user_id"), ["user_id"], unique=False)

    op.create_table(
        "account_entries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("behaviour", sa.String(length=24), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("distance_m", sa.BigInteger(), nullable=True),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("methodology", sa.String(length=60), nullable=True),
        sa.Column("parameters_sha256", sa.String(length=64), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("grams >= 0", name=op.f("ck_account_entries_grams")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["carbon_accounts.id"], name=op.f("fk_account_entries_account_id_carbon_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["organisations.id"], name=op.f("fk_account_entries_partner_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_entries")),
        sa.UniqueConstraint("partner_id", "external_id", name=op.f("uq_account_entries_partner_id")),
    )
    with op.batch_alter_table("account_entries", schema=None) as batch_op:
        batch_op.create_index("ix_account_entries_account", ["account_id", "id"], unique=False)

    op.create_table(
        "account_link_codes",
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["carbon_accounts.id"],
            name=op.f("fk_account_link_codes_account_id_carbon_accounts"),
        ),
        sa.PrimaryKeyConstraint("code_sha256", name=op.f("pk_account_link_codes")),
    )
    with op.batch_alter_table("account_link_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_link_codes_account_id"), ["account_id"], unique=False)

    op.create_table(
        "redemptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("benefit_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["carbon_accounts.id"], name=op.f("fk_redemptions_account_id_carbon_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["benefit_id"], ["benefits.id"], name=op.f("fk_redemptions_benefit_id_benefits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("account_id", "idempotency_key", name=op.f("uq_redemptions_account_id")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_redemptions_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_redemptions_benefit_id"), ["benefit_id"], unique=False)

    op.create_table(
        "account_bundles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("issuance_id", sa.String(length=40), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kg", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuance_id"], ["issuances.id"], name=op.f("fk_account_bundles_issuance_id_issuances")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_account_bundles_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_bundles")),
    )
    with op.batch_alter_table("account_bundles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_bundles_project_id"), ["project_id"], unique=False)

    op.create_table(
        "account_bundle_takes",
        sa.Column("bundle_id", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("grams > 0", name=op.f("ck_account_bundle_takes_grams")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["carbon_accounts.id"],
            name=op.f("fk_account_bundle_takes_account_id_carbon_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["account_bundles.id"],
            name=op.f("fk_account_bundle_takes_bundle_id_account_bundles"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["account_entries.id"],
            name=op.f("fk_account_bundle_takes_entry_id_account_entries"),
        ),
        sa.PrimaryKeyConstraint("bundle_id", "entry_id", name=op.f("pk_account_bundle_takes")),
    )
    with op.batch_alter_table("account_bundle_takes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_bundle_takes_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_account_bundle_takes_entry", ["entry_id"], unique=False)
    for table in INSERT_ONLY:  # the history is never rewritten (the market's function, revision 0006)
        if op.get_bind().dialect.name == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_insert_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION market_insert_only()"
            )
            continue
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is insert-only'); END"
            )


def downgrade() -> None:
    for table in INSERT_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_insert_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    with op.batch_alter_table("account_bundle_takes", schema=None) as batch_op:
        batch_op.drop_index("ix_account_bundle_takes_entry")
        batch_op.drop_index(batch_op.f("ix_account_bundle_takes_account_id"))

    op.drop_table("account_bundle_takes")
    with op.batch_alter_table("account_bundles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_bundles_project_id"))

    op.drop_table("account_bundles")
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redemptions_benefit_id"))
        batch_op.drop_index(batch_op.f("ix_redemptions_account_id"))

    op.drop_table("redemptions")
    with op.batch_alter_table("account_link_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_link_codes_account_id"))

    op.drop_table("account_link_codes")
    with op.batch_alter_table("account_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_account_entries_account")

    op.drop_table("account_entries")
    with op.batch_alter_table("level_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_level_consents_user_id"))

    op.drop_table("level_consents")
    with op.batch_alter_table("carbon_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carbon_accounts_user_id"))

    op.drop_table("carbon_accounts")
    with op.batch_alter_table("benefits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_benefits_partner_id"))

    op.drop_table("benefits")
