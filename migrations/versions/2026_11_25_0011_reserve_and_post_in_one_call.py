"""PostgreSQL: reservations, posts and releases in one server-side call, as retirements.

``registry_retire`` (revision 0007) becomes a few steps shared by every movement of a project
vintage, each a function of its own:

- ``registry_earlier``: the answer kept under the client's idempotency key, or a conflict;
- ``registry_lock_chain``: the vintage's chain head, locked (or a new chain's genesis);
- ``registry_pick_held``: the holder's held blocks (locked), lowest serials first or the serial
  range asked, as ``service._pick`` and ``service._cover`` choose them;
- ``registry_move``: the block splits of ``service._split`` (the block shrinks first, what is left
  on its right becomes a block of its own, and the moved part another) and the moved blocks as
  the result shows them;
- ``registry_append``: the journal entry hashed exactly as ``registry.journal.append`` hashes it,
  and the chain head;
- ``registry_keep``: the result as ``schemas.OperationResult`` under the client's key.

``registry_retire`` (same signature), ``registry_reserve`` and ``registry_post_or_release`` are
made of them, each in its Python path's order (``service.retire``, ``service.reserve``,
``service._reservation``), with the same refusals, returned as ``{"error": code, "message": ...}``
before anything is written. The general ``registry_block_json`` replaces
``registry_retired_block_json``.

The functions write these tables column by column: a migration that changes them must change the
functions too (tests/integration/registry/test_fastpath.py compares them with the Python path).

SQLite has no server-side functions: there the Python path runs, and this revision changes nothing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 05:30:00.000000+00:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The block as registry.service.block_public shows it, in canonical JSON (keys sorted). STABLE, as
# registry_json_text, so that the planner inlines it.
BLOCK_JSON = """
CREATE FUNCTION registry_block_json(
    project_code text, vintage integer, first_unit bigint, last_unit bigint, state text, account_id text,
    reservation text, retirement_id text, destination text, replaced_by text
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"account_id":' || registry_json_text(account_id)
        || ',"destination":' || registry_json_text(destination)
        || ',"kg":' || (last_unit - first_unit + 1)
        || ',"project_code":' || registry_json_text(project_code)
        || ',"replaced_by":' || registry_json_text(replaced_by)
        || ',"reservation":' || registry_json_text(reservation)
        || ',"retirement_id":' || registry_json_text(retirement_id)
        || ',"serial":' || registry_json_text(registry_serial(project_code, vintage, first_unit, last_unit))
        || ',"state":' || registry_json_text(state)
        || ',"vintage":' || vintage
        || '}'
$$
"""

# A unit movement's payload in canonical JSON, as service._apply builds it: the blocks, the
# retirement id (or null), the reservation when there is one, the beneficiary for a retirement.
# A null reservation or beneficiary is left out, as the Python path leaves them out.
PAYLOAD = """
CREATE FUNCTION registry_payload(beneficiary text, blocks text, reservation text, retirement_id text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{' || CASE WHEN beneficiary IS NULL THEN ''
                       ELSE '"beneficiary":' || registry_json_text(beneficiary) || ',' END
        || '"blocks":[' || blocks || ']'
        || CASE WHEN reservation IS NULL THEN ''
                ELSE ',"reservation":' || registry_json_text(reservation) END
        || ',"retirement_id":' || registry_json_text(retirement_id) || '}'
$$
"""

# journal.idempotent: null if the key is new; the first result for the same request; a conflict
# for another request under the key.
EARLIER = """
CREATE FUNCTION registry_earlier(p_actor text, p_key text, p_request_sha256 text)
RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    v_earlier record;
BEGIN
    SELECT request_sha256, response INTO v_earlier FROM idempotency WHERE actor = p_actor AND key = p_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_earlier.request_sha256 <> p_request_sha256 THEN
        RETURN json_build_object('error', 'idempotency_conflict',
            'message', format('idempotency key %L was used for a different request', p_key));
    END IF;
    RETURN json_build_object('result', v_earlier.response);
END
$fn$
"""

# journal.lock_chain: the head first, before any block is read. Every movement of the vintage queues
# here, and the reads that follow see what the previous holder committed.
LOCK_CHAIN = """
CREATE FUNCTION registry_lock_chain(p_chain text, OUT o_seq bigint, OUT o_hash text, OUT o_new boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT h.seq, h.hash INTO o_seq, o_hash FROM chain_heads h WHERE h.chain = p_chain FOR UPDATE;
    o_new := NOT FOUND;
    IF o_new THEN
        o_seq := 0;
        o_hash := repeat('0', 64);
    END IF;
END
$fn$
"""

# service._pick: the held blocks of the holder's holding accounts (locked), and the part of each
# that moves: by quantity lowest serials first (p_first_unit and p_last_unit null), or the serial
# range asked (p_quantity_kg null). A refusal comes back in o_error.
PICK_HELD = """
CREATE FUNCTION registry_pick_held(
    p_holder text, p_project_id text, p_project_code text, p_vintage integer,
    p_quantity_kg bigint, p_first_unit bigint, p_last_unit bigint,
    OUT o_blocks blocks[], OUT o_first bigint[], OUT o_last bigint[], OUT o_error json
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_block blocks;
    v_wanted bigint := p_quantity_kg;
    v_take bigint;
    v_held bigint := 0;
    v_next bigint := p_first_unit;
BEGIN
    o_blocks := '{}';
    o_first := '{}';
    o_last := '{}';
    IF p_first_unit IS NULL THEN
        FOR v_block IN
            SELECT b.* FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
             WHERE b.project_id = p_project_id AND b.vintage = p_vintage AND b.state = 'held'
               AND a.organisation_id = p_holder AND a.kind = 'holding'
             ORDER BY b.span_start
               FOR UPDATE OF b
        LOOP
            v_take := least(v_wanted, v_block.span_end - v_block.span_start + 1);
            v_held := v_held + (v_block.span_end - v_block.span_start + 1);
            o_blocks := o_blocks || v_block;
            o_first := o_first || v_block.span_start;
            o_last := o_last || (v_block.span_start + v_take - 1);
            v_wanted := v_wanted - v_take;
            EXIT WHEN v_wanted = 0;
        END LOOP;
        IF v_wanted > 0 THEN
            o_error := json_build_object('error', 'insufficient_units', 'message',
                format('%s kg of %s %s held, %s asked', v_held, p_project_code, p_vintage, p_quantity_kg));
        END IF;
        RETURN;
    END IF;
    FOR v_block IN
        SELECT b.* FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
         WHERE b.project_id = p_project_id AND b.vintage = p_vintage AND b.state = 'held'
           AND a.organisation_id = p_holder AND a.kind = 'holding'
           AND b.span_start <= p_last_unit AND b.span_end >= p_first_unit
         ORDER BY b.span_start
           FOR UPDATE OF b
    LOOP
        EXIT WHEN v_block.span_start > v_next;
        o_blocks := o_blocks || v_block;
        o_first := o_first || greatest(v_block.span_start, v_next);
        o_last := o_last || least(v_block.span_end, p_last_unit);
        v_next := least(v_block.span_end, p_last_unit) + 1;
    END LOOP;
    IF v_next <= p_last_unit THEN
        o_error := json_build_object('error', 'units_not_available', 'message',
            format('units %s to %s are not held in this account', v_next, p_last_unit));
    END IF;
END
$fn$
"""

# service._split for each picked block: [p_first[i], p_last[i]] of p_blocks[i] moves to p_state, in
# p_account_id (null: the block's own account), with the reservation and retirement id given (or
# none). The block shrinks first (no two blocks ever overlap), what is left on its right becomes a
# block of its own, and the moved part another. Returns the moved blocks as the result shows them,
# comma-separated.
MOVE = """
CREATE FUNCTION registry_move(
    p_blocks blocks[], p_first bigint[], p_last bigint[], p_project_code text, p_state text,
    p_account_id text, p_reservation text, p_retirement_id text, p_at timestamptz
) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    v_block blocks;
    v_account text;
    v_replaced_by text;
    v_shown text := '';
BEGIN
    FOR i IN 1 .. cardinality(p_blocks) LOOP
        v_block := p_blocks[i];
        v_account := coalesce(p_account_id, v_block.account_id);
        IF p_first[i] = v_block.span_start AND p_last[i] = v_block.span_end THEN
            UPDATE blocks SET state = p_state, account_id = v_account, reservation = p_reservation,
                              retirement_id = p_retirement_id, destination = NULL, updated_at = p_at
             WHERE id = v_block.id;
            v_replaced_by := v_block.replaced_by;
        ELSE
            IF p_first[i] > v_block.span_start THEN
                UPDATE blocks SET span_end = p_first[i] - 1, updated_at = p_at WHERE id = v_block.id;
                IF p_last[i] < v_block.span_end THEN
                    INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state,
                                        account_id, reservation, updated_at)
                    VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, p_last[i] + 1,
                            v_block.span_end, v_block.state, v_block.account_id, v_block.reservation, p_at);
                END IF;
            ELSE
                UPDATE blocks SET span_start = p_last[i] + 1, updated_at = p_at WHERE id = v_block.id;
            END IF;
            INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state, account_id,
                                reservation, retirement_id, updated_at)
            VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, p_first[i], p_last[i],
                    p_state, v_account, p_reservation, p_retirement_id, p_at);
            v_replaced_by := NULL;
        END IF;
        v_shown := v_shown || CASE WHEN i > 1 THEN ',' ELSE '' END
            || registry_block_json(p_project_code, v_block.vintage, p_first[i], p_last[i], p_state, v_account,
                                   p_reservation, p_retirement_id, NULL, v_replaced_by);
    END LOOP;
    RETURN v_shown;
END
$fn$
"""

# journal.append after registry_lock_chain: the entry after the head (p_seq, p_prev), hashed as the
# Python path hashes it: SHA-256 of the previous hash, a newline and the canonical JSON of
# registry.journal.hashed_fields (keys sorted); then the head moves on. Returns the entry's hash.
APPEND = r"""
CREATE FUNCTION registry_append(
    p_chain text, p_seq bigint, p_prev text, p_new_chain boolean, p_at timestamptz, p_actor text,
    p_operation text, p_key text, p_payload text
) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    v_seq bigint := p_seq + 1;
    v_hash text := encode(sha256(convert_to(
        p_prev || E'\n'
        || '{"actor":' || registry_json_text(p_actor)
        || ',"at":"' || to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '"'
        || ',"chain":' || registry_json_text(p_chain)
        || ',"idempotency_key":' || registry_json_text(p_key)
        || ',"operation":' || registry_json_text(p_operation)
        || ',"payload":' || p_payload
        || ',"seq":' || v_seq
        || '}', 'UTF8')), 'hex');
BEGIN
    INSERT INTO journal (chain, chain_seq, at, actor, operation, idempotency_key, payload, prev_hash, hash)
    VALUES (p_chain, v_seq, p_at, p_actor, p_operation, p_key, p_payload::json, p_prev, v_hash);
    IF p_new_chain THEN
        INSERT INTO chain_heads (chain, seq, hash) VALUES (p_chain, v_seq, v_hash);
    ELSE
        UPDATE chain_heads SET seq = v_seq, hash = v_hash WHERE chain = p_chain;
    END IF;
    RETURN v_hash;
END
$fn$
"""

# The result as schemas.OperationResult, kept under the client's key (a retry gets it back), in
# the answer's form. p_at_json is p_at as the result shows it (the client's JSON form of the time).
KEEP = """
CREATE FUNCTION registry_keep(
    p_actor text, p_key text, p_request_sha256 text, p_operation text, p_project_code text,
    p_vintage integer, p_quantity_kg bigint, p_blocks text, p_retirement_id text, p_chain text,
    p_seq bigint, p_hash text, p_at timestamptz, p_at_json text
) RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    v_response json := ('{"operation":' || registry_json_text(p_operation)
        || ',"project_code":' || registry_json_text(p_project_code)
        || ',"vintage":' || p_vintage
        || ',"quantity_kg":' || p_quantity_kg
        || ',"blocks":[' || p_blocks || ']'
        || ',"retirement_id":' || registry_json_text(p_retirement_id)
        || ',"journal":{"chain":' || registry_json_text(p_chain) || ',"seq":' || p_seq
        || ',"hash":"' || p_hash || '"}'
        || ',"at":' || registry_json_text(p_at_json) || '}')::json;
BEGIN
    INSERT INTO idempotency (actor, key, request_sha256, response, created_at)
    VALUES (p_actor, p_key, p_request_sha256, v_response, p_at);
    RETURN json_build_object('result', v_response);
END
$fn$
"""

# service.retire: the retirement account, the idempotency record, the project, then the locks
# (chain head, held blocks), the retirement row, the splits, the journal entry, the chain head and
# the idempotency record.
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
    v_chain text := 'vintage:' || p_project_code || ':' || p_vintage;
    v_head record;
    v_pick record;
    v_quantity bigint;
    v_blocks text;
    v_hash text;
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
    SELECT * INTO v_head FROM registry_lock_chain(v_chain);
    SELECT * INTO v_pick FROM registry_pick_held(p_holder, v_project_id, p_project_code, p_vintage,
                                                 p_quantity_kg, p_first_unit, p_last_unit);
    IF v_pick.o_error IS NOT NULL THEN
        RETURN v_pick.o_error;
    END IF;
    SELECT sum(l - f + 1) INTO v_quantity FROM unnest(v_pick.o_first, v_pick.o_last) AS part(f, l);
    INSERT INTO retirements (id, project_id, vintage, quantity_kg, beneficiary, reason, claim_period_start,
                             claim_period_end, claim_country, actor, retired_at)
    VALUES (p_retirement_id, v_project_id, p_vintage, v_quantity, p_beneficiary, p_reason,
            p_claim_period_start, p_claim_period_end, p_claim_country, p_actor, p_at);
    v_blocks := registry_move(v_pick.o_blocks, v_pick.o_first, v_pick.o_last, p_project_code, 'retired',
                              v_account, NULL, p_retirement_id, p_at);
    v_hash := registry_append(v_chain, v_head.o_seq, v_head.o_hash, v_head.o_new, p_at, p_actor, 'retire',
        p_key, registry_payload(p_beneficiary, v_blocks, NULL, p_retirement_id));
    RETURN registry_keep(p_actor, p_key, p_request_sha256, 'retire', p_project_code, p_vintage, v_quantity,
        v_blocks, p_retirement_id, v_chain, v_head.o_seq + 1, v_hash, p_at, p_at_json);
END
$fn$
"""

# service.reserve: the idempotency record, the project, then the locks (chain head, held blocks),
# the splits (the reserved part stays in its account), the journal entry, the chain head and the
# idempotency record.
RESERVE = """
CREATE FUNCTION registry_reserve(
    p_actor text, p_key text, p_request_sha256 text, p_holder text, p_project_code text,
    p_vintage integer, p_quantity_kg bigint, p_first_unit bigint, p_last_unit bigint, p_reservation text,
    p_at timestamptz, p_at_json text
) RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    v_answer json;
    v_project_id text;
    v_chain text := 'vintage:' || p_project_code || ':' || p_vintage;
    v_head record;
    v_pick record;
    v_quantity bigint;
    v_blocks text;
    v_hash text;
BEGIN
    v_answer := registry_earlier(p_actor, p_key, p_request_sha256);
    IF v_answer IS NOT NULL THEN
        RETURN v_answer;
    END IF;
    SELECT id INTO v_project_id FROM projects WHERE code = p_project_code;
    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found', 'message', format('no project %L', p_project_code));
    END IF;
    SELECT * INTO v_head FROM registry_lock_chain(v_chain);
    SELECT * INTO v_pick FROM registry_pick_held(p_holder, v_project_id, p_project_code, p_vintage,
                                                 p_quantity_kg, p_first_unit, p_last_unit);
    IF v_pick.o_error IS NOT NULL THEN
        RETURN v_pick.o_error;
    END IF;
    SELECT sum(l - f + 1) INTO v_quantity FROM unnest(v_pick.o_first, v_pick.o_last) AS part(f, l);
    v_blocks := registry_move(v_pick.o_blocks, v_pick.o_first, v_pick.o_last, p_project_code, 'reserved',
                              NULL, p_reservation, NULL, p_at);
    v_hash := registry_append(v_chain, v_head.o_seq, v_head.o_hash, v_head.o_new, p_at, p_actor, 'reserve',
        p_key, registry_payload(NULL, v_blocks, p_reservation, NULL));
    RETURN registry_keep(p_actor, p_key, p_request_sha256, 'reserve', p_project_code, p_vintage, v_quantity,
        v_blocks, NULL, v_chain, v_head.o_seq + 1, v_hash, p_at, p_at_json);
END
$fn$
"""

# service._reservation: 'post' retires what the reservation holds (the retirement details given),
# 'release' gives it back to its holding. The idempotency record; the reservation's blocks, locked,
# then the vintage's chain head, then the blocks read again under it (nothing changes under us);
# for a post the retirement account and the retirement row; the blocks move whole; the journal
# entry, the chain head and the idempotency record.
POST_OR_RELEASE = """
CREATE FUNCTION registry_post_or_release(
    p_operation text, p_actor text, p_key text, p_request_sha256 text, p_holder text, p_reservation text,
    p_beneficiary text, p_reason text, p_claim_period_start date, p_claim_period_end date,
    p_claim_country text, p_retirement_id text, p_at timestamptz, p_at_json text
) RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    v_answer json;
    v_block blocks;
    v_blocks blocks[];
    v_project_id text;
    v_project_code text;
    v_chain text;
    v_head record;
    v_first bigint[];
    v_last bigint[];
    v_quantity bigint;
    v_account text;
    v_retirement_id text;
    v_shown text;
    v_hash text;
BEGIN
    v_answer := registry_earlier(p_actor, p_key, p_request_sha256);
    IF v_answer IS NOT NULL THEN
        RETURN v_answer;
    END IF;
    -- Read (and lock) the reservation's blocks, lock their vintage's chain, then read them again.
    -- Should the second read find another project vintage (the reservation was ended and made again
    -- meanwhile), its chain is locked too, as journal.append would lock it.
    FOR pass IN 1 .. 2 LOOP
        v_blocks := '{}';
        FOR v_block IN
            SELECT b.* FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
             WHERE b.reservation = p_reservation AND b.state = 'reserved' AND a.organisation_id = p_holder
             ORDER BY b.span_start
               FOR UPDATE OF b
        LOOP
            v_blocks := v_blocks || v_block;
        END LOOP;
        EXIT WHEN cardinality(v_blocks) = 0;
        IF v_project_id IS DISTINCT FROM v_blocks[1].project_id THEN
            v_project_id := v_blocks[1].project_id;
            SELECT code INTO v_project_code FROM projects WHERE id = v_project_id;
        END IF;
        IF v_chain IS DISTINCT FROM 'vintage:' || v_project_code || ':' || v_blocks[1].vintage THEN
            v_chain := 'vintage:' || v_project_code || ':' || v_blocks[1].vintage;
            SELECT * INTO v_head FROM registry_lock_chain(v_chain);
        END IF;
    END LOOP;
    IF cardinality(v_blocks) = 0 THEN
        RETURN json_build_object('error', 'units_not_available',
            'message', format('nothing is reserved as %L', p_reservation));
    END IF;
    IF EXISTS (SELECT FROM unnest(v_blocks) b
                WHERE b.project_id <> v_project_id OR b.vintage <> v_blocks[1].vintage) THEN
        RETURN json_build_object('error', 'invalid_request',
            'message', 'a reservation spans one project vintage');
    END IF;
    SELECT array_agg(b.span_start ORDER BY b.span_start), array_agg(b.span_end ORDER BY b.span_start),
           sum(b.span_end - b.span_start + 1)
      INTO v_first, v_last, v_quantity FROM unnest(v_blocks) b;
    IF p_operation = 'post' THEN
        SELECT id INTO v_account FROM registry_accounts
         WHERE organisation_id = p_holder AND kind = 'retirement' LIMIT 1;
        IF NOT FOUND THEN
            RETURN json_build_object('error', 'not_found',
                'message', format('organisation %L has no retirement account', p_holder));
        END IF;
        v_retirement_id := p_retirement_id;
        INSERT INTO retirements (id, project_id, vintage, quantity_kg, beneficiary, reason,
                                 claim_period_start, claim_period_end, claim_country, actor, retired_at)
        VALUES (v_retirement_id, v_project_id, v_blocks[1].vintage, v_quantity, p_beneficiary, p_reason,
                p_claim_period_start, p_claim_period_end, p_claim_country, p_actor, p_at);
    END IF;
    -- Whole blocks move: retired into the retirement account, or held again in their own account.
    v_shown := registry_move(v_blocks, v_first, v_last, v_project_code,
                             CASE p_operation WHEN 'post' THEN 'retired' ELSE 'held' END,
                             v_account, NULL, v_retirement_id, p_at);
    v_hash := registry_append(v_chain, v_head.o_seq, v_head.o_hash, v_head.o_new, p_at, p_actor, p_operation,
        p_key, registry_payload(CASE p_operation WHEN 'post' THEN p_beneficiary END, v_shown, p_reservation,
                                v_retirement_id));
    RETURN registry_keep(p_actor, p_key, p_request_sha256, p_operation, v_project_code, v_blocks[1].vintage,
        v_quantity, v_shown, v_retirement_id, v_chain, v_head.o_seq + 1, v_hash, p_at, p_at_json);
END
$fn$
"""

CREATED = (BLOCK_JSON, PAYLOAD, EARLIER, LOCK_CHAIN, PICK_HELD, MOVE, APPEND, KEEP, RESERVE, POST_OR_RELEASE)

DROPPED = (
    "registry_post_or_release(text, text, text, text, text, text, text, text, date, date, text, text, "
    "timestamptz, text)",
    "registry_reserve(text, text, text, text, text, integer, bigint, bigint, bigint, text, timestamptz, "
    "text)",
    "registry_keep(text, text, text, text, text, integer, bigint, text, text, text, bigint, text, "
    "timestamptz, text)",
    "registry_append(text, bigint, text, boolean, timestamptz, text, text, text, text)",
    "registry_move(blocks[], bigint[], bigint[], text, text, text, text, text, timestamptz)",
    "registry_pick_held(text, text, text, integer, bigint, bigint, bigint)",
    "registry_lock_chain(text)",
    "registry_earlier(text, text, text)",
    "registry_payload(text, text, text, text)",
    "registry_block_json(text, integer, bigint, bigint, text, text, text, text, text, text)",
)
RETIRE_0007 = (
    "registry_retire(text, text, text, text, text, integer, bigint, bigint, bigint, text, text, date, date, "
    "text, text, timestamptz, text)"
)
RETIRED_BLOCK_JSON_0007 = "registry_retired_block_json(text, integer, bigint, bigint, text, text, text)"


def _revision_0007() -> ModuleType:
    """Revision 0007's module, whose function texts the downgrade puts back."""
    path = Path(__file__).with_name("2026_11_25_0007_retire_in_one_call.py")
    spec = importlib.util.spec_from_file_location("neutralize_migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Sent as they are: no bind parameters, so the function bodies' colons and percent signs stay.
    connection = op.get_bind().execution_options(no_parameters=True)
    for statement in (*CREATED, RETIRE):
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql(f"DROP FUNCTION {RETIRED_BLOCK_JSON_0007}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    earlier = _revision_0007()
    connection = op.get_bind().execution_options(no_parameters=True)
    connection.exec_driver_sql(f"DROP FUNCTION {RETIRE_0007}")
    for signature in DROPPED:
        connection.exec_driver_sql(f"DROP FUNCTION {signature}")
    for statement in (earlier.RETIRED_BLOCK_JSON, earlier.RETIRE):
        connection.exec_driver_sql(statement)
