"""Registry and access: organisations, accounts, API keys, projects, verifications, issuances,
blocks, retirements, the journal and idempotency records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:36:00.874510+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_heads",
        sa.Column("chain", sa.String(length=80), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_chain_heads")),
    )
    op.create_table(
        "idempotency",
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("actor", "key", name=op.f("pk_idempotency")),
    )
    op.create_table(
        "journal",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("chain", sa.String(length=80), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
        sa.UniqueConstraint("chain", "chain_seq", name=op.f("uq_journal_chain")),
        sa.UniqueConstraint("hash", name=op.f("uq_journal_hash")),
    )
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journal_operation"), ["operation"], unique=False)

    op.create_table(
        "organisations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.String(length=40), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_api_keys_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("standard", sa.String(length=40), nullable=False),
        sa.Column("methodology", sa.String(length=120), nullable=False),
        sa.Column("methodology_version", sa.String(length=40), nullable=False),
        sa.Column("project_type", sa.String(length=80), nullable=False),
        sa.Column("credit_type", sa.String(length=20), nullable=False),
        sa.Column("nature_based", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=10), nullable=True),
        sa.Column("owner_organisation_id", sa.String(length=40), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("buffer_permille", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("native", sa.Boolean(), nullable=False),
        sa.Column("home_registry", sa.String(length=40), nullable=True),
        sa.Column("home_id", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credit_type IN ('avoidance', 'removal')", name=op.f("ck_projects_credit_type")),
        sa.CheckConstraint("buffer_permille BETWEEN 0 AND 1000", name=op.f("ck_projects_buffer_share")),
        sa.ForeignKeyConstraint(
            ["owner_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_projects_owner_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("code", name=op.f("uq_projects_code")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_projects_owner_organisation_id"), ["owner_organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_projects_standard"), ["standard"], unique=False)
        batch_op.create_index(batch_op.f("ix_projects_status"), ["status"], unique=False)

    op.create_table(
        "registry_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organisation_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('holding', 'retirement', 'buffer', 'export')", name=op.f("ck_registry_accounts_kind")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_registry_accounts_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_accounts")),
        sa.UniqueConstraint(
            "organisation_id", "kind", "name", name=op.f("uq_registry_accounts_organisation_id")
        ),
    )
    with op.batch_alter_table("registry_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registry_accounts_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "project_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_events_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_events")),
    )
    with op.batch_alter_table("project_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_events_project_id"), ["project_id"], unique=False)

    op.create_table(
        "retirements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("quantity_kg", sa.BigInteger(), nullable=False),
        sa.Column("beneficiary", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("claim_period_start", sa.Date(), nullable=True),
        sa.Column("claim_period_end", sa.Date(), nullable=True),
        sa.Column("claim_country", sa.String(length=2), nullable=True),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_retirements_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retirements")),
    )
    with op.batch_alter_table("retirements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retirements_beneficiary"), ["beneficiary"], unique=False)
        batch_op.create_index(batch_op.f("ix_retirements_project_id"), ["project_id"], unique=False)

    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("verifier", sa.String(length=200), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("verified_kg", sa.BigInteger(), nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=True),
        sa.Column("report_url", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("period_end >= period_start", name=op.f("ck_verifications_period")),
        sa.CheckConstraint("verified_kg > 0", name=op.f("ck_verifications_quantity")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_verifications_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verifications_project_id"), ["project_id"], unique=False)

    op.create_table(
        "issuances",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("verification_id", sa.String(length=40), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("quantity_kg", sa.BigInteger(), nullable=False),
        sa.Column("span_start", sa.BigInteger(), nullable=False),
        sa.Column("span_end", sa.BigInteger(), nullable=False),
        sa.Column("serial", sa.String(length=120), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity_kg = span_end - span_start + 1", name=op.f("ck_issuances_quantity")),
        sa.CheckConstraint("span_end >= span_start", name=op.f("ck_issuances_span")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_issuances_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"], ["verifications.id"], name=op.f("fk_issuances_verification_id_verifications")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuances")),
        sa.UniqueConstraint("serial", name=op.f("uq_issuances_serial")),
        sa.UniqueConstraint("span_end", name=op.f("uq_issuances_span_end")),
        sa.UniqueConstraint("span_start", name=op.f("uq_issuances_span_start")),
        sa.UniqueConstraint("verification_id", name=op.f("uq_issuances_verification_id")),
    )
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issuances_project_id"), ["project_id"], unique=False)

    op.create_table(
        "blocks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("issuance_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("span_start", sa.BigInteger(), nullable=False),
        sa.Column("span_end", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("reservation", sa.String(length=120), nullable=True),
        sa.Column("retirement_id", sa.String(length=40), nullable=True),
        sa.Column("destination", sa.String(length=300), nullable=True),
        sa.Column("replaced_by", sa.String(length=120), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('held', 'reserved', 'retired', 'cancelled', 'buffer', 'exported')",
            name=op.f("ck_blocks_state"),
        ),
        sa.CheckConstraint("span_end >= span_start", name=op.f("ck_blocks_span")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["registry_accounts.id"], name=op.f("fk_blocks_account_id_registry_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["issuance_id"], ["issuances.id"], name=op.f("fk_blocks_issuance_id_issuances")
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_blocks_project_id_projects")),
        sa.ForeignKeyConstraint(
            ["retirement_id"], ["retirements.id"], name=op.f("fk_blocks_retirement_id_retirements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocks")),
    )
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_blocks_holding", ["account_id", "project_id", "vintage", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_blocks_issuance_id"), ["issuance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_blocks_reservation"), ["reservation"], unique=False)
        batch_op.create_index(batch_op.f("ix_blocks_retirement_id"), ["retirement_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_blocks_span_start"), ["span_start"], unique=False)

    _guard_journal()
    if op.get_bind().dialect.name == "postgresql":
        # No unit in two blocks, whatever the code does.
        op.execute(
            "ALTER TABLE blocks ADD CONSTRAINT ex_blocks_no_shared_units "
            "EXCLUDE USING gist (int8range(span_start, span_end, '[]') WITH &&)"
        )


def _guard_journal() -> None:
    """The journal is insert-only: the database refuses to update or delete its rows."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION journal_insert_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the journal is insert-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER journal_insert_only BEFORE UPDATE OR DELETE ON journal "
            "FOR EACH ROW EXECUTE FUNCTION journal_insert_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER journal_no_{event.lower()} BEFORE {event} ON journal "
                "BEGIN SELECT RAISE(ABORT, 'the journal is insert-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS journal_insert_only ON journal")
        op.execute("DROP FUNCTION IF EXISTS journal_insert_only()")
        op.execute("ALTER TABLE blocks DROP CONSTRAINT IF EXISTS ex_blocks_no_shared_units")
    else:
        op.execute("DROP TRIGGER IF EXISTS journal_no_update")
        op.execute("DROP TRIGGER IF EXISTS journal_no_delete")
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocks_span_start"))
        batch_op.drop_index(batch_op.f("ix_blocks_retirement_id"))
        batch_op.drop_index(batch_op.f("ix_blocks_reservation"))
        batch_op.drop_index(batch_op.f("ix_blocks_issuance_id"))
        batch_op.drop_index("ix_blocks_holding")

    op.drop_table("blocks")
    with op.batch_alter_table("issuances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuances_project_id"))

    op.drop_table("issuances")
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verifications_project_id"))

    op.drop_table("verifications")
    with op.batch_alter_table("retirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retirements_project_id"))
        batch_op.drop_index(batch_op.f("ix_retirements_beneficiary"))

    op.drop_table("retirements")
    with op.batch_alter_table("project_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_events_project_id"))

    op.drop_table("project_events")
    with op.batch_alter_table("registry_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_accounts_organisation_id"))

    op.drop_table("registry_accounts")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_status"))
        batch_op.drop_index(batch_op.f("ix_projects_standard"))
        batch_op.drop_index(batch_op.f("ix_projects_owner_organisation_id"))

    op.drop_table("projects")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_organisation_id"))

    op.drop_table("api_keys")
    op.drop_table("organisations")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_operation"))

    op.drop_table("journal")
    op.drop_table("idempotency")
    op.drop_table("chain_heads")
