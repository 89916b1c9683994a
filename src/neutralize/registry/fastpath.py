"""PostgreSQL: retirements, reservations, posts and releases in one round trip each, through the
server-side functions ``registry_retire``, ``registry_reserve`` and ``registry_post_or_release``.

A movement of units must hold its vintage's chain head (and the blocks it splits) from the moment it
reads them until it commits, so movements of one vintage go one at a time: the rate is one over that
hold time. On the Python path the hold spans about ten round trips and the client's ORM work in
between. On PostgreSQL, ``service.retire``, ``reserve``, ``post`` and ``release`` instead call these
functions (created by migrations 0007 and 0011), which do the same work in the same order inside
the server, so the locks are held for the function's own few statements and the commit. Since
migration 0017 retirements by quantity from one vintage also run side by side, each in a lane of
its own (ADR 6); the others still go one at a time.

The functions write the same rows as the Python path: the retirement, the block splits, one
journal entry hashed exactly as ``journal.append`` hashes it (so ``journal.verify`` checks both),
the chain head and the idempotency record with the result. SQLite runs the Python path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor
from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.ids import new_id
from neutralize.registry import journal
from neutralize.registry.domain import Span
from neutralize.registry.models import Block, ChainHead
from neutralize.registry.schemas import OperationResult, PostCmd, ReservationCmd, ReserveCmd, RetireCmd

# Switched off by the tests that compare this path with the Python path on PostgreSQL.
ENABLED = True

_RETIRE = text(
    "SELECT registry_retire(:actor, :key, :request_sha256, :holder, :project_code, "
    "CAST(:vintage AS integer), CAST(:quantity_kg AS bigint), CAST(:first_unit AS bigint), "
    "CAST(:last_unit AS bigint), :beneficiary, :reason, CAST(:claim_period_start AS date), "
    "CAST(:claim_period_end AS date), :claim_country, :retirement_id, CAST(:at AS timestamptz), :at_json)"
)
_RESERVE = text(
    "SELECT registry_reserve(:actor, :key, :request_sha256, :holder, :project_code, "
    "CAST(:vintage AS integer), CAST(:quantity_kg AS bigint), CAST(:first_unit AS bigint), "
    "CAST(:last_unit AS bigint), :reservation, CAST(:at AS timestamptz), :at_json)"
)
_POST_OR_RELEASE = text(
    "SELECT registry_post_or_release(:operation, :actor, :key, :request_sha256, :holder, :reservation, "
    ":beneficiary, :reason, CAST(:claim_period_start AS date), CAST(:claim_period_end AS date), "
    ":claim_country, :retirement_id, CAST(:at AS timestamptz), :at_json)"
)
# The result's time as ``OperationResult.model_dump(mode="json")`` writes it, so that the result kept
# under the idempotency key is the same JSON on both paths.
_TIME = TypeAdapter(datetime)
_IDEMPOTENCY_KEY_CONSTRAINT = "pk_idempotency"
_NO_RETIREMENT = {
    "beneficiary": None,
    "reason": None,
    "claim_period_start": None,
    "claim_period_end": None,
    "claim_country": None,
}


def applies(session: Session) -> bool:
    """Whether this session's database moves units through the server-side functions."""
    return ENABLED and session.get_bind().dialect.name == "postgresql"


def retire(
    *,
    session: Session,
    clock: Clock,
    actor: Actor,
    holder: str,
    cmd: RetireCmd,
    project_code: str,
    vintage: int,
    wanted: Span | None,
) -> OperationResult:
    """Retire ``cmd``'s units of ``project_code`` ``vintage`` held by ``holder``: the serial range
    ``wanted``, or (if None) ``cmd.units.quantity_kg`` lowest serials first. Same result, refusals
    and rows as the Python path of ``service.retire``."""
    now = clock.now()
    params = {
        **_common(actor, cmd.idempotency_key, journal.request_sha256("retire", cmd), holder, now),
        **_units(project_code, vintage, cmd.units.quantity_kg, wanted),
        **_retirement(cmd),
        "retirement_id": new_id("ret", now),
    }
    return _call(session, _RETIRE, params)


def reserve(
    *,
    session: Session,
    clock: Clock,
    actor: Actor,
    holder: str,
    cmd: ReserveCmd,
    project_code: str,
    vintage: int,
    wanted: Span | None,
) -> OperationResult:
    """Reserve ``cmd``'s units of ``project_code`` ``vintage`` held by ``holder`` as
    ``cmd.reservation``, chosen as ``retire`` chooses them. Same result, refusals and rows as the
    Python path of ``service.reserve``."""
    params = {
        **_common(actor, cmd.idempotency_key, journal.request_sha256("reserve", cmd), holder, clock.now()),
        **_units(project_code, vintage, cmd.units.quantity_kg, wanted),
        "reservation": cmd.reservation,
    }
    return _call(session, _RESERVE, params)


def post_or_release(
    *,
    session: Session,
    clock: Clock,
    actor: Actor,
    holder: str,
    cmd: PostCmd | ReservationCmd,
    operation: Literal["post", "release"],
) -> OperationResult:
    """Post (retire with ``cmd``'s claim details) or release what ``holder`` holds reserved as
    ``cmd.reservation``. Same result, refusals and rows as the Python path of ``service.post`` and
    ``service.release``."""
    now = clock.now()
    posting = isinstance(cmd, PostCmd)
    assert posting == (operation == "post")
    params = {
        **_common(actor, cmd.idempotency_key, journal.request_sha256(operation, cmd), holder, now),
        **(_retirement(cmd) if isinstance(cmd, PostCmd) else _NO_RETIREMENT),
        "operation": operation,
        "reservation": cmd.reservation,
        "retirement_id": new_id("ret", now) if posting else None,
    }
    return _call(session, _POST_OR_RELEASE, params)


def _common(actor: Actor, key: str, request_sha256: str, holder: str, now: datetime) -> dict[str, Any]:
    return {
        "actor": actor.id,
        "key": key,
        "request_sha256": request_sha256,
        "holder": holder,
        "at": now,
        "at_json": _TIME.dump_python(now, mode="json"),
    }


def _units(project_code: str, vintage: int, quantity_kg: int | None, wanted: Span | None) -> dict[str, Any]:
    return {
        "project_code": project_code,
        "vintage": vintage,
        "quantity_kg": quantity_kg if wanted is None else None,
        "first_unit": wanted.start if wanted is not None else None,
        "last_unit": wanted.end if wanted is not None else None,
    }


def _retirement(cmd: RetireCmd | PostCmd) -> dict[str, Any]:
    return {
        "beneficiary": cmd.beneficiary,
        "reason": cmd.reason,
        "claim_period_start": cmd.claim_period_start,
        "claim_period_end": cmd.claim_period_end,
        "claim_country": cmd.claim_country,
    }


def _call(session: Session, statement: Any, params: dict[str, Any]) -> OperationResult:
    """One call of a movement function: its result, or its refusal raised as the Python path raises it."""
    session.flush()  # the function reads the tables: anything pending in the session goes first
    try:
        answer: dict[str, Any] = session.execute(statement, params).scalar_one()
    except IntegrityError as error:
        if _constraint(error) != _IDEMPOTENCY_KEY_CONSTRAINT:
            raise
        # A concurrent retry with the same key committed first: this transaction must not stand.
        raise DomainError(
            code=ErrorCode.IDEMPOTENCY_CONFLICT,
            message=f"idempotency key {params['key']!r} is being used concurrently",
        ) from None
    if "error" in answer:
        code, message = ErrorCode(answer["error"]), str(answer["message"])
        raise (
            NotFoundError(message) if code is ErrorCode.NOT_FOUND else DomainError(code=code, message=message)
        )
    _expire_moved(session)
    return OperationResult.model_validate(answer["result"])


def _expire_moved(session: Session) -> None:
    """Blocks and chain heads the session holds may have changed behind the ORM's back: they are read
    again when next used. Other rows (an order, a listing) stay as they are, without a query."""
    for row in list(session.identity_map.values()):
        if isinstance(row, Block | ChainHead):
            session.expire(row)


def _constraint(error: IntegrityError) -> str | None:
    diagnostics = getattr(error.orig, "diag", None)
    name = getattr(diagnostics, "constraint_name", None)
    return name if isinstance(name, str) else None
