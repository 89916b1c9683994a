"""PostgreSQL: a block's ``replaced_by`` link follows its units when the block is split.

A buffer reversal links credits found invalid to the buffer units that replace them, and the link must
follow those credits onto any certificate. ``registry_move`` (revision 0011) and ``registry_cut``
(revision 0017) split blocks: the part that moves and the part left on its right were written without
the link, so a retirement of invalid credits named no replacement. Both now copy the block's link to
every part, as ``service._split`` does on the Python path. (Since this revision a reversal also splits
the invalid range out of a held or reserved block, so a linked block that can still move holds invalid
units only.)

Same signatures; the rows written differ only in ``replaced_by``.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25 14:45:00.000000+00:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

MOVE = """
CREATE OR REPLACE FUNCTION registry_move(
    p_blocks blocks[], p_first bigint[], p_last bigint[], p_project_code text, p_state text,
    p_account_id text, p_reservation text, p_retirement_id text, p_at timestamptz
) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    v_block blocks;
    v_account text;
    v_shown text := '';
BEGIN
    FOR i IN 1 .. cardinality(p_blocks) LOOP
        v_block := p_blocks[i];
        v_account := coalesce(p_account_id, v_block.account_id);
        IF p_first[i] = v_block.span_start AND p_last[i] = v_block.span_end THEN
            UPDATE blocks SET state = p_state, account_id = v_account, reservation = p_reservation,
                              retirement_id = p_retirement_id, destination = NULL, updated_at = p_at
             WHERE id = v_block.id;
        ELSE
            IF p_first[i] > v_block.span_start THEN
                UPDATE blocks SET span_end = p_first[i] - 1, updated_at = p_at WHERE id = v_block.id;
                IF p_last[i] < v_block.span_end THEN
                    INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state,
                                        account_id, reservation, replaced_by, updated_at)
                    VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, p_last[i] + 1,
                            v_block.span_end, v_block.state, v_block.account_id, v_block.reservation,
                            v_block.replaced_by, p_at);
                END IF;
            ELSE
                UPDATE blocks SET span_start = p_last[i] + 1, updated_at = p_at WHERE id = v_block.id;
            END IF;
            INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state, account_id,
                                reservation, retirement_id, replaced_by, updated_at)
            VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, p_first[i], p_last[i],
                    p_state, v_account, p_reservation, p_retirement_id, v_block.replaced_by, p_at);
        END IF;
        v_shown := v_shown || CASE WHEN i > 1 THEN ',' ELSE '' END
            || registry_block_json(p_project_code, v_block.vintage, p_first[i], p_last[i], p_state, v_account,
                                   p_reservation, p_retirement_id, NULL, v_block.replaced_by);
    END LOOP;
    RETURN v_shown;
END
$fn$
"""

CUT = """
CREATE OR REPLACE FUNCTION registry_cut(p_block_id bigint, p_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    v_block blocks;
    v_at bigint;
BEGIN
    SELECT * INTO v_block FROM blocks WHERE id = p_block_id AND state = 'held';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_at := (v_block.span_start / 1000000 + 1) * 1000000;
    IF v_block.span_end < v_at THEN
        RETURN;
    END IF;
    UPDATE blocks SET span_end = v_at - 1, updated_at = p_at WHERE id = p_block_id;
    INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state, account_id,
                        reservation, replaced_by, updated_at)
    VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, v_at, v_block.span_end, 'held',
            v_block.account_id, v_block.reservation, v_block.replaced_by, p_at);
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind().execution_options(no_parameters=True)
    connection.exec_driver_sql(MOVE)
    connection.exec_driver_sql(CUT)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind().execution_options(no_parameters=True)
    for name, attribute in (("0011_reserve_and_post_in_one_call", "MOVE"), ("0017_retirement_lanes", "CUT")):
        earlier = getattr(_revision(name), attribute)
        connection.exec_driver_sql(earlier.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(f"2026_11_25_{name}.py")
    spec = importlib.util.spec_from_file_location(f"neutralize_migration_{name[:4]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
