"""The insert-only journal: append hash-chained entries, keep idempotent results, verify chains.

There is one chain per project vintage (plus one per project for its lifecycle, and one for
organisations), so retirements of different vintages never queue on one chain head. Appending
locks only that chain's head row. On PostgreSQL retirements by quantity from one vintage also run
side by side in lanes, each with a chain of its own (``vintage_lanes``; ADR 6, migration 0017).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Text, select, text, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor
from neutralize.core.canonical import canonical_json
from neutralize.core.clock import Clock
from neutralize.core.db import hold
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import KeyRing, KeyVerifier, Signature, VerifyOutcome
from neutralize.registry.domain import GENESIS, entry_hash, merkle_root
from neutralize.registry.models import ChainHead, Checkpoint, IdempotencyRecord, JournalEntry
from neutralize.registry.schemas import AuditProblem, AuditReport, JournalRef

Result = TypeVar("Result", bound=BaseModel)


def vintage_chain(project_code: str, vintage: int) -> str:
    return f"vintage:{project_code}:{vintage}"


# On PostgreSQL: the first key of the advisory lock that ``lock_chain`` takes exclusively (and a
# retirement in a lane shared) on a chain's name; the same number is in migration 0017's functions.
VINTAGE_LOCK_CLASS = 1315272
LANES = 8  # lanes per vintage, the vintage's own chain the first


def vintage_lanes(project_code: str, vintage: int) -> list[str]:
    """The chains a vintage's movements append to: its own, then the lanes of retirements that ran
    side by side with another (PostgreSQL)."""
    main = vintage_chain(project_code, vintage)
    return [main] + [f"{main}/{lane}" for lane in range(2, LANES + 1)]


def project_chain(project_code: str) -> str:
    return f"project:{project_code}"


ORGANISATIONS_CHAIN = "organisations"


def hashed_fields(entry: JournalEntry) -> dict[str, Any]:
    """The fields an entry's hash covers: all of them but the hashes themselves."""
    return {
        "chain": entry.chain,
        "seq": entry.chain_seq,
        "at": _iso(entry.at),
        "actor": entry.actor,
        "operation": entry.operation,
        "idempotency_key": entry.idempotency_key,
        "payload": entry.payload,
    }


def _iso(at: datetime) -> str:
    # SQLite gives back naive UTC, PostgreSQL aware times in the session's zone: the hash must
    # not depend on the backend.
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def lock_chain(session: Session, chain: str) -> None:
    """Take the chain's head lock now, before reading what the command will change.

    Every movement of a project vintage appends to its chain, so holding the head serialises
    them; taken first, it also means the reads that follow see every block a previous command
    committed (PostgreSQL's READ COMMITTED takes a fresh snapshot per statement). On PostgreSQL the
    chain's advisory lock comes first, exclusive: no retirement runs in a lane meanwhile.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:chain))"),
            {"lock_class": VINTAGE_LOCK_CLASS, "chain": chain},
        )
    session.execute(select(ChainHead.seq).where(ChainHead.chain == chain).with_for_update())


def lock_unit_space(session: Session) -> None:
    """Serialise issuances, which take the next span of the registry-wide unit space."""
    hold(session, "neutralize.unit_space")


def append(
    *,
    session: Session,
    clock: Clock,
    actor: Actor,
    chain: str,
    operation: str,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
) -> JournalRef:
    """Append one entry to ``chain`` (creating the chain on first use); returns its reference."""
    head = session.scalars(select(ChainHead).where(ChainHead.chain == chain).with_for_update()).one_or_none()
    if head is None:
        head = ChainHead(chain=chain, seq=0, hash=GENESIS)
        session.add(head)
    entry = JournalEntry(
        chain=chain,
        chain_seq=head.seq + 1,
        at=clock.now().astimezone(UTC),  # stored as UTC: SQLite keeps no offset
        actor=actor.id,
        operation=operation,
        idempotency_key=idempotency_key,
        payload=payload,
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = entry_hash(head.hash, hashed_fields(entry))
    session.add(entry)
    head.seq, head.hash = entry.chain_seq, entry.hash
    session.flush()
    return JournalRef(chain=chain, seq=entry.chain_seq, hash=entry.hash)


def request_sha256(operation: str, request: BaseModel) -> str:
    """What an idempotency key binds: the operation and the request, as one digest."""
    return hashlib.sha256(
        canonical_json({"operation": operation, "request": request.model_dump(mode="json")})
    ).hexdigest()


def idempotent(
    *,
    session: Session,
    clock: Clock,
    actor: Actor,
    key: str,
    operation: str,
    request: BaseModel,
    result_type: type[Result],
    run: Callable[[], Result],
) -> Result:
    """Run a command once per (actor, key): a retry with the same request gets the first result;
    the same key with another request is refused with ``IDEMPOTENCY_CONFLICT``."""
    digest = request_sha256(operation, request)
    earlier = session.get(IdempotencyRecord, (actor.id, key))
    if earlier is not None:
        if earlier.request_sha256 != digest:
            raise DomainError(
                code=ErrorCode.IDEMPOTENCY_CONFLICT,
                message=f"idempotency key {key!r} was used for a different request",
            )
        return result_type.model_validate(earlier.response)
    result = run()
    session.add(
        IdempotencyRecord(
            actor=actor.id,
            key=key,
            request_sha256=digest,
            response=result.model_dump(mode="json"),
            created_at=clock.now(),
        )
    )
    try:
        session.flush()
    except IntegrityError:
        # A concurrent retry with the same key committed first: this transaction must not stand.
        raise DomainError(
            code=ErrorCode.IDEMPOTENCY_CONFLICT, message=f"idempotency key {key!r} is being used concurrently"
        ) from None
    return result


def checkpoint(*, session: Session, clock: Clock, keys: KeyRing) -> Checkpoint:
    """Sign the current head of every chain (run it periodically, e.g. from cron)."""
    heads = [[h.chain, h.seq, h.hash] for h in session.scalars(select(ChainHead).order_by(ChainHead.chain))]
    root = merkle_root(canonical_json(head) for head in heads)
    at = clock.now()
    signature = keys.sign(_checkpoint_bytes(heads, root, at))
    row = Checkpoint(
        at=at, heads=heads, root=root, key_id=signature.key_id, signature=signature.signature_b64
    )
    session.add(row)
    session.flush()
    return row


def _checkpoint_bytes(heads: list[Any], root: str, at: datetime) -> bytes:
    return canonical_json({"heads": heads, "root": root, "at": _iso(at)})


@dataclass(frozen=True, slots=True)
class _Point:
    """A checkpoint as stored; ``heads`` and ``at`` None if they cannot be read."""

    id: int
    key_id: str
    signature: str
    root: str
    heads: list[list[Any]] | None  # [[chain, seq, hash], ...] as signed
    at: datetime | None


def _heads_and_time(stored_heads: Any, stored_at: Any) -> tuple[list[list[Any]] | None, datetime | None]:
    heads, unreadable = _json(stored_heads)
    well_formed = (
        unreadable is None
        and isinstance(heads, list)
        and all(
            isinstance(h, list) and len(h) == 3 and isinstance(h[0], str) and isinstance(h[1], int)
            for h in heads
        )
    )
    return (heads if well_formed else None), _time(stored_at)


def _verify_checkpoints(session: Session, keys: KeyVerifier) -> list[AuditProblem]:
    """Each checkpoint's signature holds, and each head it signed is still in the journal as signed."""
    problems = []
    rows = session.execute(select(JournalEntry.chain, JournalEntry.chain_seq, JournalEntry.hash))
    hashes = {(chain, seq): hash_ for chain, seq, hash_ in rows}
    c = Checkpoint
    typed = session.get_bind().dialect.name == "postgresql"
    columns = (c.heads, c.at) if typed else (type_coerce(c.heads, Text), type_coerce(c.at, Text))
    query = select(c.id, c.key_id, c.signature, c.root, *columns).order_by(c.id)
    for point_id, key_id, signature_b64, signed_root, stored_heads, stored_at in session.execute(query):
        point = _Point(
            point_id, key_id, signature_b64, signed_root, *_heads_and_time(stored_heads, stored_at)
        )
        if point.heads is None or point.at is None:
            problems.append(
                AuditProblem(
                    chain="checkpoints", seq=point.id, kind="altered", detail="the checkpoint cannot be read"
                )
            )
            continue
        signature = Signature(key_id=point.key_id, signature_b64=point.signature)
        root = merkle_root(canonical_json(head) for head in point.heads)
        outcome = keys.check(_checkpoint_bytes(point.heads, point.root, point.at), signature)
        if outcome is VerifyOutcome.UNKNOWN_KEY:
            problems.append(
                AuditProblem(
                    chain="checkpoints",
                    seq=point.id,
                    kind="unknown_key",
                    detail=f"signed by {point.key_id}, which is not among the keys given",
                )
            )
            continue
        if root != point.root or outcome is not VerifyOutcome.VALID:
            problems.append(
                AuditProblem(
                    chain="checkpoints",
                    seq=point.id,
                    kind="altered",
                    detail="the checkpoint's signature does not hold",
                )
            )
            continue
        for chain, seq, hash_ in point.heads:
            found = hashes.get((chain, seq))
            if seq and found != hash_:
                problems.append(
                    AuditProblem(
                        chain=chain,
                        seq=seq,
                        kind="removed" if found is None else "altered",
                        detail=f"checkpoint {point.id} signed entry {seq}: "
                        + ("it is gone" if found is None else "it differs from what was signed"),
                    )
                )
                break
    return problems


@dataclass(frozen=True)
class _Row:
    """A journal row as stored, read without trusting its types: a row whose payload is not JSON or
    whose time is not a time is reported altered (SQLite keeps whatever text it is given)."""

    id: int
    chain: str
    seq: int
    at: datetime | None
    actor: str
    operation: str
    idempotency_key: str | None
    payload: Any
    prev_hash: str
    hash: str
    unreadable: str | None


def _rows(session: Session) -> list[_Row]:
    # PostgreSQL's json and timestamptz columns hold nothing else; SQLite's are text, read as text.
    typed = session.get_bind().dialect.name == "postgresql"
    e = JournalEntry
    payload = e.payload if typed else type_coerce(e.payload, Text)
    at = e.at if typed else type_coerce(e.at, Text)
    query = select(e.id, e.chain, e.chain_seq, at, e.actor, e.operation, e.idempotency_key, payload,
                   e.prev_hash, e.hash).order_by(e.chain, e.id)  # fmt: skip
    return [_row(*values) for values in session.execute(query)]


def _row(id_: int, chain: str, seq: int, at: Any, actor: str, operation: str, key: str | None,
         payload: Any, prev_hash: str, hash_: str) -> _Row:  # fmt: skip
    payload, unreadable = _json(payload)
    at = _time(at)
    if at is None:
        unreadable = unreadable or "its time is not a timestamp"
    return _Row(id_, chain, seq, at, actor, operation, key, payload, prev_hash, hash_, unreadable)


def _json(stored: Any) -> tuple[Any, str | None]:
    """A stored JSON value as read (SQLite gives its text, maybe as bytes), or why it cannot be."""
    try:
        value = json.loads(stored) if isinstance(stored, str | bytes) else stored
        canonical_json(value)  # only what JSON can hold
    except (ValueError, TypeError):
        return None, "its payload is not JSON"
    return value, None


def _time(stored: Any) -> datetime | None:
    """A stored time as read (SQLite gives its text), or None if it is not one."""
    if isinstance(stored, str):
        try:
            stored = datetime.fromisoformat(stored)
        except ValueError:
            return None
    return stored if isinstance(stored, datetime) else None


def _row_fields(row: _Row) -> dict[str, Any]:
    assert row.at is not None
    return {
        "chain": row.chain,
        "seq": row.seq,
        "at": _iso(row.at),
        "actor": row.actor,
        "operation": row.operation,
        "idempotency_key": row.idempotency_key,
        "payload": row.payload,
    }


def verify(*, session: Session, keys: KeyVerifier | None = None) -> AuditReport:
    """Recompute every chain; report the first altered, removed or reordered entry of each; with
    ``keys``, also check every signed checkpoint against the journal (a checkpoint signed by a key
    not given is reported ``unknown_key``). A row that cannot be read is reported altered."""
    problems: list[AuditProblem] = []
    # Heads first: an entry appended while we read lies past the head we hold; it is verified like
    # every other entry, and the head need only match the entry at its own seq.
    heads = {head.chain: head for head in session.scalars(select(ChainHead))}
    entries = 0
    by_chain: dict[str, list[_Row]] = {}
    for row in _rows(session):
        by_chain.setdefault(row.chain, []).append(row)
        entries += 1
    for chain in sorted(set(by_chain) | set(heads)):
        problem = _verify_chain(chain, by_chain.get(chain, []), heads.get(chain))
        if problem is not None:
            problems.append(problem)
    if keys is not None:
        problems += _verify_checkpoints(session, keys)
    return AuditReport(ok=not problems, chains=len(by_chain), entries=entries, problems=problems)


def _verify_chain(chain: str, entries: list[_Row], head: ChainHead | None) -> AuditProblem | None:
    previous, expected_seq = GENESIS, 1
    present = {entry.seq for entry in entries}
    for entry in entries:
        if entry.seq != expected_seq:
            # The entry expected here is further on (rows swapped), or nowhere (rows deleted).
            kind = "reordered" if expected_seq in present else "removed"
            return AuditProblem(
                chain=chain,
                seq=expected_seq,
                kind=kind,
                detail=f"expected entry {expected_seq}, found {entry.seq}",
            )
        if entry.unreadable is not None:
            return AuditProblem(chain=chain, seq=entry.seq, kind="altered", detail=entry.unreadable)
        if entry.prev_hash != previous:
            return AuditProblem(
                chain=chain,
                seq=entry.seq,
                kind="reordered",
                detail="its previous hash is not the hash of the entry before it",
            )
        if entry_hash(previous, _row_fields(entry)) != entry.hash:
            return AuditProblem(
                chain=chain, seq=entry.seq, kind="altered", detail="its content does not match its hash"
            )
        previous, expected_seq = entry.hash, expected_seq + 1
    last = expected_seq - 1
    if head is not None and head.seq > last:
        return AuditProblem(
            chain=chain, seq=last + 1, kind="removed", detail=f"entries {last + 1} to {head.seq} are missing"
        )
    at_head = entries[head.seq - 1].hash if head is not None and head.seq >= 1 else GENESIS
    if head is None or head.hash != at_head:
        return AuditProblem(
            chain=chain,
            seq=head.seq if head is not None else last,
            kind="head_mismatch",
            detail="the chain's recorded head does not match its entry",
        )
    return None
