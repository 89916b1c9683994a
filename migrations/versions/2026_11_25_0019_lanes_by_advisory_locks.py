"""PostgreSQL: a retirement takes its lane and its blocks with advisory locks, not row locks.

Since migration 0017 a retirement by quantity tries for a lane inside a subtransaction (so that a
failed attempt lets go of what it took), and took the lane's chain head and its blocks there with
``FOR UPDATE SKIP LOCKED``. A row lock gives the subtransaction a transaction id of its own, and the
retirement then updated those rows from its main transaction: PostgreSQL records a row locked by one
transaction id and updated by another as a *multixact*. Every retirement made one, and two
transaction ids instead of one (measured: 1,022 multixacts and 2,000 ids for 1,000 retirements).

Now ``registry_take_lane`` takes, without waiting, transaction-level advisory locks instead: the
lane's (class 1315273, the hash of the lane's chain name) and each block's (class 1315274, the block
id modulo 2^31 - 1; two blocks that share a key only make one of them look busy). Nothing in the
attempt writes or locks a row (but for a new lane's head, opened once), so it needs no transaction id,
and an attempt that fails still lets go of its locks with its subtransaction. The rows are then
locked by the retirement's own updates. Every other movement of the vintage still takes the vintage's
advisory lock exclusively first (``registry_lock_chain``, ``journal.lock_chain``), so no lane is in
use while it runs and it needs no lane or block lock: the advisory locks only keep lanes apart.

A block found by the candidate query is read again once its lock is held: another lane may have
retired from it, or all of it, and committed, after the query's snapshot. What the other lane
committed is visible by then, as PostgreSQL makes a commit visible before it releases its locks.

Same lanes, same choice of blocks (lowest serials nobody else is moving), same rows written.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 11:45:00.000000+00:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# Raises SQLSTATE NZ001, as before, when every lane is in use, the vintage has no chain yet, or the
# blocks nobody else is moving do not hold the quantity: the caller undoes the attempt and takes the
# ordinary way.
TAKE_LANE = """
CREATE OR REPLACE FUNCTION registry_take_lane(
    p_holder text, p_project_id text, p_project_code text, p_vintage integer, p_quantity_kg bigint,
    OUT o_chain text, OUT o_seq bigint, OUT o_hash text,
    OUT o_blocks blocks[], OUT o_first bigint[], OUT o_last bigint[]
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_main text := 'vintage:' || p_project_code || ':' || p_vintage;
    v_lane text;
    v_seen blocks;
    v_block blocks;
    v_wanted bigint := p_quantity_kg;
    v_take bigint;
BEGIN
    -- Waits while a movement holds (or waits for) the vintage the ordinary way: nothing is held yet.
    PERFORM pg_advisory_xact_lock_shared(1315272, hashtext(v_main));
    FOR n IN 1 .. 8 LOOP
        v_lane := CASE WHEN n = 1 THEN v_main ELSE v_main || '/' || n END;
        IF pg_try_advisory_xact_lock(1315273, hashtext(v_lane)) THEN
            o_chain := v_lane;
            EXIT;
        END IF;
    END LOOP;
    IF o_chain IS NULL THEN
        RAISE EXCEPTION 'no lane is free' USING ERRCODE = 'NZ001';
    END IF;
    SELECT h.seq, h.hash INTO o_seq, o_hash FROM chain_heads h WHERE h.chain = o_chain;
    IF NOT FOUND THEN
        IF o_chain = v_main THEN
            RAISE EXCEPTION 'the vintage has no chain yet' USING ERRCODE = 'NZ001';
        END IF;
        o_seq := 0;
        o_hash := repeat('0', 64);
        INSERT INTO chain_heads (chain, seq, hash) VALUES (o_chain, o_seq, o_hash) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no lane is free' USING ERRCODE = 'NZ001';
        END IF;
    END IF;
    o_blocks := '{}';
    o_first := '{}';
    o_last := '{}';
    FOR v_seen IN SELECT b.* FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
         WHERE b.project_id = p_project_id AND b.vintage = p_vintage AND b.state = 'held'
           AND a.organisation_id = p_holder AND a.kind = 'holding'
         ORDER BY b.span_start
    LOOP
        CONTINUE WHEN NOT pg_try_advisory_xact_lock(1315274, (v_seen.id % 2147483647)::integer);
        SELECT b.* INTO v_block FROM blocks b
         WHERE b.id = v_seen.id AND b.state = 'held' AND b.account_id = v_seen.account_id;
        CONTINUE WHEN NOT FOUND;
        v_take := least(v_wanted, v_block.span_end - v_block.span_start + 1);
        o_blocks := o_blocks || v_block;
        o_first := o_first || v_block.span_start;
        o_last := o_last || (v_block.span_start + v_take - 1);
        v_wanted := v_wanted - v_take;
        EXIT WHEN v_wanted = 0;
    END LOOP;
    IF v_wanted > 0 THEN
        RAISE EXCEPTION 'the blocks free now do not hold % kg', p_quantity_kg USING ERRCODE = 'NZ001';
    END IF;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind().execution_options(no_parameters=True)
    connection.exec_driver_sql(TAKE_LANE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    path = Path(__file__).with_name("2026_11_25_0017_retirement_lanes.py")
    spec = importlib.util.spec_from_file_location("neutralize_migration_0017", path)
    assert spec is not None and spec.loader is not None
    earlier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(earlier)
    connection = op.get_bind().execution_options(no_parameters=True)
    connection.exec_driver_sql(earlier.TAKE_LANE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
