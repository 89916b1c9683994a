"""PostgreSQL: retirements by quantity from one holding run side by side, in lanes.

Every movement of a project vintage used to queue on one row, its chain head, and retirements from
one holding also on the holding's lowest block: one at a time, each holding both until its commit
reached the disk. Now (ADR 6):

- A movement that takes the vintage's chain head the ordinary way (``registry_lock_chain``, and
  ``journal.lock_chain`` on the Python path) first takes the vintage's advisory lock exclusively:
  while it runs, no lane is in use, and what it reads is what the others committed.
- ``registry_take_lane``: a retirement by quantity first takes the vintage's advisory lock shared
  (waiting only for a movement that takes it the ordinary way), then, without waiting, one free head
  of the vintage's lanes (``vintage:P:V`` itself, then ``vintage:P:V/2`` to ``vintage:P:V/8``, each
  a hash chain of its own, made on first use) and held blocks that nobody has locked, lowest serials
  first. If it cannot have them all, what it took is let go (its subtransaction is undone) and the
  retirement takes the ordinary way.
- ``registry_cut``: a retirement that met another one (in a lane of its own, or after waiting on the
  ordinary way) leaves the rest of a large held block cut at the next multiple of 1,000,000 kg, so
  that the next retirements find a block of their own. The cut moves no unit: both parts stay held
  in the same account, as one block was.

With no other movement of the vintage at the same time, a retirement takes the first lane (the
vintage's own chain), the lowest serials and cuts nothing: the same rows as before, and as the
Python path writes. ``registry_retire`` keeps its signature.

SQLite has no server-side functions: there the Python path runs, and this revision changes nothing.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 07:00:00.000000+00:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# journal.VINTAGE_LOCK_CLASS and journal.LANES: the advisory locks' first key, and lanes per vintage.
LOCK_CHAIN = """
CREATE OR REPLACE FUNCTION registry_lock_chain(
    p_chain text, OUT o_seq bigint, OUT o_hash text, OUT o_new boolean
) LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(1315272, hashtext(p_chain));
    SELECT h.seq, h.hash INTO o_seq, o_hash FROM chain_heads h WHERE h.chain = p_chain FOR UPDATE;
    o_new := NOT FOUND;
    IF o_new THEN
        o_seq := 0;
        o_hash := repeat('0', 64);
    END IF;
END
$fn$
"""

# The lane way of a retirement by quantity. Once it holds the vintage shared, nothing here waits (but
# for a lane another retirement is opening at the same moment). SQLSTATE NZ001 is raised, so that the
# caller undoes what was locked and takes the ordinary way, when every lane is in use, the vintage
# has no chain yet, or the blocks nobody has locked do not hold the quantity.
TAKE_LANE = """
CREATE FUNCTION registry_take_lane(
    p_holder text, p_project_id text, p_project_code text, p_vintage integer, p_quantity_kg bigint,
    OUT o_chain text, OUT o_seq bigint, OUT o_hash text,
    OUT o_blocks blocks[], OUT o_first bigint[], OUT o_last bigint[]
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_main text := 'vintage:' || p_project_code || ':' || p_vintage;
    v_lanes text[];
    v_open integer;
    v_block blocks;
    v_after bigint := -1;
    v_wanted bigint := p_quantity_kg;
    v_take bigint;
BEGIN
    -- Waits while a movement holds (or waits for) the vintage the ordinary way: nothing is held yet.
    PERFORM pg_advisory_xact_lock_shared(1315272, hashtext(v_main));
    v_lanes := ARRAY[v_main] || ARRAY(SELECT v_main || '/' || n FROM generate_series(2, 8) AS n);
    SELECT h.chain, h.seq, h.hash INTO o_chain, o_seq, o_hash FROM chain_heads h
     WHERE h.chain = ANY (v_lanes) ORDER BY array_position(v_lanes, h.chain) LIMIT 1
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        SELECT count(*) INTO v_open FROM chain_heads h WHERE h.chain = ANY (v_lanes);
        IF v_open = 0 OR v_open = cardinality(v_lanes) THEN
            RAISE EXCEPTION 'no lane is free' USING ERRCODE = 'NZ001';
        END IF;
        o_chain := v_lanes[v_open + 1];
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
    -- One block at a time: a FOR loop over the query would lock the next few blocks too.
    WHILE v_wanted > 0 LOOP
        SELECT b.* INTO v_block FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
         WHERE b.project_id = p_project_id AND b.vintage = p_vintage AND b.state = 'held'
           AND a.organisation_id = p_holder AND a.kind = 'holding' AND b.span_start > v_after
         ORDER BY b.span_start LIMIT 1
           FOR UPDATE OF b SKIP LOCKED;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the blocks free now do not hold % kg', p_quantity_kg USING ERRCODE = 'NZ001';
        END IF;
        v_take := least(v_wanted, v_block.span_end - v_block.span_start + 1);
        o_blocks := o_blocks || v_block;
        o_first := o_first || v_block.span_start;
        o_last := o_last || (v_block.span_start + v_take - 1);
        v_wanted := v_wanted - v_take;
        v_after := v_block.span_start;
    END LOOP;
END
$fn$
"""

# The held rest of a block (taken from its start) cut at the next multiple of 1,000,000 kg, if it
# reaches past it: the block shrinks first, then its right part becomes a held block of its own.
CUT = """
CREATE FUNCTION registry_cut(p_block_id bigint, p_at timestamptz) RETURNS void LANGUAGE plpgsql AS $fn$
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
                        reservation, updated_at)
    VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, v_at, v_block.span_end, 'held',
            v_block.account_id, v_block.reservation, p_at);
END
$fn$
"""

# service.retire: the retirement account, the idempotency record, the project; then a lane (by
# quantity) or the ordinary locks (chain head, held blocks); the retirement row, the splits, the
# journal entry on the chain taken, its head, the cut if another retirement was met, and the
# idempotency record.
RETIRE = """
CREATE OR REPLACE FUNCTION registry_retire(
    p_actor text, p_key text, p_request_sha256 text, p_holder text, p_project_code text,
    p_vintage integer, p_quantity_kg bigint, p_first_unit bigint, p_last_unit bigint, p_beneficiary text,
    p_reason text, p_claim_period_start date, p_claim_period_end date, p_claim_country text,
    p_retirement_id text, p_at timestamptz, p_at_json text
) RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    v_account text;
    v_answer json;
    v_project_id text;
    v_main text := 'vintage:' || p_project_code || ':' || p_vintage;
    v_chain text;
    v_seq bigint;
    v_hash text;
    v_new boolean := false;
    v_blocks blocks[];
    v_first bigint[];
    v_last bigint[];
    v_cut boolean := false;
    v_head record;
    v_pick record;
    v_lane record;
    v_quantity bigint;
    v_shown text;
BEGIN
    SELECT id INTO v_account FROM registry_accounts
     WHERE organisation_id = p_holder AND kind = 'retirement' LIMIT 1;
    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found',
            'message', format('organisation %L has no retirement account', p_holder));
    END IF;
    v_answer := registry_earlier(p_actor, p_key, p_request_sha256);
    IF v_answer IS NOT NULL THEN
        RETURN v_answer;
    END IF;
    SELECT id INTO v_project_id FROM projects WHERE code = p_project_code;
    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found', 'message', format('no project %L', p_project_code));
    END IF;
    IF p_quantity_kg IS NOT NULL THEN
        BEGIN
            SELECT * INTO v_lane FROM registry_take_lane(p_holder, v_project_id, p_project_code, p_vintage,
                                                        p_quantity_kg);
            v_chain := v_lane.o_chain;
        EXCEPTION WHEN SQLSTATE 'NZ001' THEN
            v_chain := NULL;
        END;
    END IF;
    IF v_chain IS NOT NULL THEN
        v_seq := v_lane.o_seq;
        v_hash := v_lane.o_hash;
        v_blocks := v_lane.o_blocks;
        v_first := v_lane.o_first;
        v_last := v_lane.o_last;
        v_cut := v_chain <> v_main;
    ELSE
        v_chain := v_main;
        SELECT * INTO v_head FROM registry_lock_chain(v_chain);
        SELECT * INTO v_pick FROM registry_pick_held(p_holder, v_project_id, p_project_code, p_vintage,
                                                     p_quantity_kg, p_first_unit, p_last_unit);
        IF v_pick.o_error IS NOT NULL THEN
            RETURN v_pick.o_error;
        END IF;
        v_seq := v_head.o_seq;
        v_hash := v_head.o_hash;
        v_new := v_head.o_new;
        v_blocks := v_pick.o_blocks;
        v_first := v_pick.o_first;
        v_last := v_pick.o_last;
        v_cut := p_quantity_kg IS NOT NULL;
    END IF;
    SELECT sum(l - f + 1) INTO v_quantity FROM unnest(v_first, v_last) AS part(f, l);
    INSERT INTO retirements (id, project_id, vintage, quantity_kg, beneficiary, reason, claim_period_start,
                             claim_period_end, claim_country, actor, retired_at)
    VALUES (p_retirement_id, v_project_id, p_vintage, v_quantity, p_beneficiary, p_reason,
            p_claim_period_start, p_claim_period_end, p_claim_country, p_actor, p_at);
    v_shown := registry_move(v_blocks, v_first, v_last, p_project_code, 'retired', v_account, NULL,
                             p_retirement_id, p_at);
    IF v_cut THEN
        PERFORM registry_cut(v_blocks[cardinality(v_blocks)].id, p_at);
    END IF;
    v_hash := registry_append(v_chain, v_seq, v_hash, v_new, p_at, p_actor, 'retire', p_key,
        registry_payload(p_beneficiary, v_shown, NULL, p_retirement_id));
    RETURN registry_keep(p_actor, p_key, p_request_sha256, 'retire', p_project_code, p_vintage, v_quantity,
        v_shown, p_retirement_id, v_chain, v_seq + 1, v_hash, p_at, p_at_json);
END
$fn$
"""

DROPPED = ("registry_take_lane(text, text, text, integer, bigint)", "registry_cut(bigint, timestamptz)")


def _revision_0011() -> ModuleType:
    """Revision 0011's module, whose function texts the downgrade puts back."""
    path = Path(__file__).with_name("2026_11_25_0011_reserve_and_post_in_one_call.py")
    spec = importlib.util.spec_from_file_location("neutralize_migration_0011", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Sent as they are: no bind parameters, so the function bodies' colons and percent signs stay.
    connection = op.get_bind().execution_options(no_parameters=True)
    for statement in (LOCK_CHAIN, TAKE_LANE, CUT, RETIRE):
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    earlier = _revision_0011()
    connection = op.get_bind().execution_options(no_parameters=True)
    connection.exec_driver_sql(earlier.RETIRE)
    connection.exec_driver_sql(earlier.LOCK_CHAIN.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    for signature in DROPPED:
        connection.exec_driver_sql(f"DROP FUNCTION {signature}")
