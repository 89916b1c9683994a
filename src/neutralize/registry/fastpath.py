"""PostgreSQL: a retirement in one round trip, through the server-side function ``registry_retire``.

A retirement must hold its vintage's chain head (and the blocks it splits) from the moment it reads
them until it commits, so retirements of one vintage go one at a time: the rate is one over that
hold time. On the Python path the hold spans about ten round trips and the client's ORM work in
between. On PostgreSQL, ``service.retire`` instead calls ``registry_retire`` (created by migration
0007), which does the same work in the same order inside the server, so the locks are held for
the function's own few statements and the commit.

The function writes the same rows as the Python path: the retirement, the block splits, one
journal entry hashed exactly as ``journal.append`` hashes it (so ``journal.verify`` checks both),
the chain head and the idempotency record with the result. SQLite runs the Python path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from neutralize.registry.schemas import OperationResult, RetireCmd

# Switched off by the tests that compare this path with the Python path on PostgreSQL.
ENABLED = True

_RETIRE = text(
    "SELECT registry_retire(:actor, :key, :request_sha256, :holder, :project_code, "
    "CAST(:vintage AS integer), CAST(:quantity_kg AS bigint), CAST(:first_unit AS bigint), "
    "CAST(:last_unit AS bigint), :beneficiary, :reason, CAST(:claim_period_start AS date), "
    "CAST(:claim_period_end AS date), :claim_country, :retirement_id, CAST(:at AS timestamptz), :at_json)"
)
# The result's time as ``OperationResult.model_dump(mode="json")`` writes it, so that the result kept
# under the idempotency key is the same JSON on both paths.
_TIME = TypeAdapter(datetime)
_IDEMPOTENCY_KEY_CONSTRAINT = "pk_idempotency"


def applies(session: Session) -> bool:
    """Whether this session's database retires through ``registry_retire``."""
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
    session.flush()  # the function reads the tables: anything pending in the session goes first
    params = {
        "actor": actor.id,
        "key": cmd.idempotency_key,
        "request_sha256": journal.request_sha256("retire", cmd),
        "holder": holder,
        "project_code": project_code,
        "vintage": vintage,
        "quantity_kg": cmd.units.quantity_kg if wanted is None else None,
        "first_unit": wanted.start if wanted is not None else None,
        "last_unit": wanted.end if wanted is not None else None,
        "beneficiary": cmd.beneficiary,
        "reason": cmd.reason,
        "claim_period_start": cmd.claim_period_start,
        "claim_period_end": cmd.claim_period_end,
        "claim_country": cmd.claim_country,
        "retirement_id": new_id("ret", now),
        "at": now,
        "at_json": _TIME.dump_python(now, mode="json"),
    }
    try:
        answer: dict[str, Any] = session.execute(_RETIRE, params).scalar_one()
    except IntegrityError as error:
        if _constraint(error) != _IDEMPOTENCY_KEY_CONSTRAINT:
            raise
        # A concurrent retry with the same key committed first: this transaction must not stand.
        raise DomainError(
            code=ErrorCode.IDEMPOTENCY_CONFLICT,
            message=f"idempotency key {cmd.idempotency_key!r} is being used concurrently",
        ) from None
    if "error" in answer:
        code, message = ErrorCode(answer["error"]), str(answer["message"])
        raise (
            NotFoundError(message) if code is ErrorCode.NOT_FOUND else DomainError(code=code, message=message)
        )
    # Rows the session may have loaded (blocks, the chain head) changed behind the ORM's back.
    session.expire_all()
    return OperationResult.model_validate(answer["result"])


def _constraint(error: IntegrityError) -> str | None:
    diagnostics = getattr(error.orig, "diag", None)
    name = getattr(diagnostics, "constraint_name", None)
    return name if isinstance(name, str) else None
