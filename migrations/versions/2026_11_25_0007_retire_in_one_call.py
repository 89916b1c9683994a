"""PostgreSQL: a retirement in one server-side call (``registry_retire``).

The function does what ``registry.service.retire`` does on SQLite, in the same order and with the
same refusals: the retirement account, the idempotency record, the project, the vintage's chain
head (locked), the held blocks (locked, lowest serials first or the serial range asked), the
retirement row, the block splits, the journal entry hashed exactly as ``registry.journal`` hashes
it (so one verifier serves both backends), the chain head and the idempotency record. Refusals
come back as ``{"error": code, "message": ...}`` before anything is written, so the caller's
transaction stays usable, as after a refusal on the Python path.

The function writes these tables column by column: a migration that changes them must change the
function too (tests/integration/registry/test_fastpath.py compares it with the Python path).

SQLite has no server-side functions: there the Python path runs, and this revision changes nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 03:55:00.000000+00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A JSON string (or null) exactly as canonical JSON writes it: PostgreSQL's JSON string escaping
# (", \, \b \f \n \r \t, other control characters as \u00xx, everything else as itself) is the
# same as the canonical form's (core.canonical: json.dumps with ensure_ascii=False). The helpers
# are STABLE, like to_json, so that the planner inlines them into the expressions that use them
# (an IMMUTABLE function calling a STABLE one would run as a function call of its own each time).
JSON_TEXT = """
CREATE FUNCTION registry_json_text(value text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT coalesce(to_json(value)::text, 'null') $$
"""

# registry.domain.serial: NZ-<project>-<vintage, 4 digits>-<first unit>-<last unit>, units
# zero-padded to at least 12 digits.
SERIAL = """
CREATE FUNCTION registry_serial(project_code text, vintage integer, first_unit bigint, last_unit bigint)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'NZ-' || project_code || '-' || lpad(vintage::text, 4, '0')
        || '-' || CASE WHEN first_unit < 1000000000000 THEN lpad(first_unit::text, 12, '0')
                       ELSE first_unit::text END
        || '-' || CASE WHEN last_unit < 1000000000000 THEN lpad(last_unit::text, 12, '0')
                       ELSE last_unit::text END
$$
"""

# The block as registry.service.block_public shows it, in canonical JSON (keys sorted).
RETIRED_BLOCK_JSON = """
CREATE FUNCTION registry_retired_block_json(
    project_code text, vintage integer, first_unit bigint, last_unit bigint, account_id text,
    retirement_id text, replaced_by text
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"account_id":' || registry_json_text(account_id)
        || ',"destination":null'
        || ',"kg":' || (last_unit - first_unit + 1)
        || ',"project_code":' || registry_json_text(project_code)
        || ',"replaced_by":' || registry_json_text(replaced_by)
        || ',"reservation":null'
        || ',"retirement_id":' || registry_json_text(retirement_id)
        || ',"serial":' || registry_json_text(registry_serial(project_code, vintage, first_unit, last_unit))
        || ',"state":"retired"'
        || ',"vintage":' || vintage
        || '}'
$$
"""

RETIRE = r"""
CREATE FUNCTION registry_retire(
    p_actor text,
    p_key text,
    p_request_sha256 text,
    p_holder text,
    p_project_code text,
    p_vintage integer,
    p_quantity_kg bigint,  -- by quantity (lowest serials first): p_first_unit and p_last_unit null
    p_first_unit bigint,   -- by serial range: p_quantity_kg null
    p_last_unit bigint,
    p_beneficiary text,
    p_reason text,
    p_claim_period_start date,
    p_claim_period_end date,
    p_claim_country text,
    p_retirement_id text,
    p_at timestamptz,
    p_at_json text  -- p_at as the result shows it (the client's JSON form of the time)
) RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
    v_retirement_account text;
    v_earlier record;
    v_project_id text;
    v_chain text := 'vintage:' || p_project_code || ':' || p_vintage;
    v_seq bigint;
    v_prev text;
    v_new_chain boolean := false;
    v_block blocks;
    v_picked blocks[] := '{}';
    v_first bigint[] := '{}';  -- the part of each picked block that is retired
    v_last bigint[] := '{}';
    v_wanted bigint;
    v_take bigint;
    v_held bigint := 0;
    v_next bigint;
    v_quantity bigint := 0;
    v_blocks text := '';
    v_replaced_by text;
    v_payload text;
    v_at text := to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US');
    v_hash text;
    v_response json;
BEGIN
    SELECT id INTO v_retirement_account FROM registry_accounts
     WHERE organisation_id = p_holder AND kind = 'retirement' LIMIT 1;
    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found',
            'message', format('organisation %L has no retirement account', p_holder));
    END IF;
    SELECT request_sha256, response INTO v_earlier FROM idempotency WHERE actor = p_actor AND key = p_key;
    IF FOUND THEN
        IF v_earlier.request_sha256 <> p_request_sha256 THEN
            RETURN json_build_object('error', 'idempotency_conflict',
                'message', format('idempotency key %L was used for a different request', p_key));
        END IF;
        RETURN json_build_object('result', v_earlier.response);
    END IF;
    SELECT id INTO v_project_id FROM projects WHERE code = p_project_code;
    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found', 'message', format('no project %L', p_project_code));
    END IF;

    -- The chain head first, as journal.lock_chain: every movement of the vintage queues here, and
    -- the block reads that follow see what the previous holder committed.
    SELECT seq, hash INTO v_seq, v_prev FROM chain_heads WHERE chain = v_chain FOR UPDATE;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := repeat('0', 64);
        v_new_chain := true;
    END IF;

    IF p_first_unit IS NULL THEN
        v_wanted := p_quantity_kg;
        FOR v_block IN
            SELECT b.* FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
             WHERE b.project_id = v_project_id AND b.vintage = p_vintage AND b.state = 'held'
               AND a.organisation_id = p_holder AND a.kind = 'holding'
             ORDER BY b.span_start
               FOR UPDATE OF b
        LOOP
            v_take := least(v_wanted, v_block.span_end - v_block.span_start + 1);
            v_held := v_held + (v_block.span_end - v_block.span_start + 1);
            v_picked := v_picked || v_block;
            v_first := v_first || v_block.span_start;
            v_last := v_last || (v_block.span_start + v_take - 1);
            v_wanted := v_wanted - v_take;
            EXIT WHEN v_wanted = 0;
        END LOOP;
        IF v_wanted > 0 THEN
            RETURN json_build_object('error', 'insufficient_units', 'message',
                format('%s kg of %s %s held, %s asked', v_held, p_project_code, p_vintage, p_quantity_kg));
        END IF;
    ELSE
        v_next := p_first_unit;
        FOR v_block IN
            SELECT b.* FROM blocks b JOIN registry_accounts a ON a.id = b.account_id
             WHERE b.project_id = v_project_id AND b.vintage = p_vintage AND b.state = 'held'
               AND a.organisation_id = p_holder AND a.kind = 'holding'
               AND b.span_start <= p_last_unit AND b.span_end >= p_first_unit
             ORDER BY b.span_start
               FOR UPDATE OF b
        LOOP
            EXIT WHEN v_block.span_start > v_next;
            v_picked := v_picked || v_block;
            v_first := v_first || greatest(v_block.span_start, v_next);
            v_last := v_last || least(v_block.span_end, p_last_unit);
            v_next := least(v_block.span_end, p_last_unit) + 1;
        END LOOP;
        IF v_next <= p_last_unit THEN
            RETURN json_build_object('error', 'units_not_available', 'message',
                format('units %s to %s are not held in this account', v_next, p_last_unit));
        END IF;
    END IF;

    FOR i IN 1 .. cardinality(v_picked) LOOP
        v_quantity := v_quantity + (v_last[i] - v_first[i] + 1);
    END LOOP;
    INSERT INTO retirements (id, project_id, vintage, quantity_kg, beneficiary, reason, claim_period_start,
                             claim_period_end, claim_country, actor, retired_at)
    VALUES (p_retirement_id, v_project_id, p_vintage, v_quantity, p_beneficiary, p_reason,
            p_claim_period_start, p_claim_period_end, p_claim_country, p_actor, p_at);

    -- Split as service._split does: the block shrinks first (no two blocks ever overlap), what is
    -- left on its right becomes a block of its own, and the retired part another.
    FOR i IN 1 .. cardinality(v_picked) LOOP
        v_block := v_picked[i];
        IF v_first[i] = v_block.span_start AND v_last[i] = v_block.span_end THEN
            UPDATE blocks SET state = 'retired', account_id = v_retirement_account, reservation = NULL,
                              retirement_id = p_retirement_id, destination = NULL, updated_at = p_at
             WHERE id = v_block.id;
            v_replaced_by := v_block.replaced_by;
        ELSE
            IF v_first[i] > v_block.span_start THEN
                UPDATE blocks SET span_end = v_first[i] - 1, updated_at = p_at WHERE id = v_block.id;
                IF v_last[i] < v_block.span_end THEN
                    INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state,
                                        account_id, reservation, updated_at)
                    VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, v_last[i] + 1,
                            v_block.span_end, v_block.state, v_block.account_id, v_block.reservation, p_at);
                END IF;
            ELSE
                UPDATE blocks SET span_start = v_last[i] + 1, updated_at = p_at WHERE id = v_block.id;
            END IF;
            INSERT INTO blocks (issuance_id, project_id, vintage, span_start, span_end, state, account_id,
                                retirement_id, updated_at)
            VALUES (v_block.issuance_id, v_block.project_id, v_block.vintage, v_first[i], v_last[i],
                    'retired', v_retirement_account, p_retirement_id, p_at);
            v_replaced_by := NULL;
        END IF;
        v_blocks := v_blocks || CASE WHEN i > 1 THEN ',' ELSE '' END
            || registry_retired_block_json(p_project_code, p_vintage, v_first[i], v_last[i],
                                           v_retirement_account, p_retirement_id, v_replaced_by);
    END LOOP;

    -- The journal entry, hashed as registry.journal.append hashes it: SHA-256 of the previous hash,
    -- a newline and the canonical JSON of registry.journal.hashed_fields (keys sorted).
    v_payload := '{"beneficiary":' || registry_json_text(p_beneficiary)
        || ',"blocks":[' || v_blocks || ']'
        || ',"retirement_id":' || registry_json_text(p_retirement_id) || '}';
    v_seq := v_seq + 1;
    v_hash := encode(sha256(convert_to(
        v_prev || E'\n'
        || '{"actor":' || registry_json_text(p_actor)
        || ',"at":"' || v_at || '"'
        || ',"chain":' || registry_json_text(v_chain)
        || ',"idempotency_key":' || registry_json_text(p_key)
        || ',"operation":"retire"'
        || ',"payload":' || v_payload
        || ',"seq":' || v_seq
        || '}', 'UTF8')), 'hex');
    INSERT INTO journal (chain, chain_seq, at, actor, operation, idempotency_key, payload, prev_hash, hash)
    VALUES (v_chain, v_seq, p_at, p_actor, 'retire', p_key, v_payload::json, v_prev, v_hash);
    IF v_new_chain THEN
        INSERT INTO chain_heads (chain, seq, hash) VALUES (v_chain, v_seq, v_hash);
    ELSE
        UPDATE chain_heads SET seq = v_seq, hash = v_hash WHERE chain = v_chain;
    END IF;

    -- The result as schemas.OperationResult, kept under the client's key: a retry gets it back.
    v_response := ('{"operation":"retire"'
        || ',"project_code":' || registry_json_text(p_project_code)
        || ',"vintage":' || p_vintage
        || ',"quantity_kg":' || v_quantity
        || ',"blocks":[' || v_blocks || ']'
        || ',"retirement_id":' || registry_json_text(p_retirement_id)
        || ',"journal":{"chain":' || registry_json_text(v_chain) || ',"seq":' || v_seq
        || ',"hash":"' || v_hash || '"}'
        || ',"at":' || registry_json_text(p_at_json) || '}')::json;
    INSERT INTO idempotency (actor, key, request_sha256, response, created_at)
    VALUES (p_actor, p_key, p_request_sha256, v_response, p_at);
    RETURN json_build_object('result', v_response);
END
$fn$
"""

FUNCTIONS = (
    "registry_retire(text, text, text, text, text, integer, bigint, bigint, bigint, text, text, date, date, "
    "text, text, timestamptz, text)",
    "registry_retired_block_json(text, integer, bigint, bigint, text, text, text)",
    "registry_serial(text, integer, bigint, bigint)",
    "registry_json_text(text)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Sent as they are: no bind parameters, so the function bodies' colons and percent signs stay.
    connection = op.get_bind().execution_options(no_parameters=True)
    for statement in (JSON_TEXT, SERIAL, RETIRED_BLOCK_JSON, RETIRE):
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
