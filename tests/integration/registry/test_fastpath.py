"""PostgreSQL retires through one server-side call (``registry.fastpath``): it must do exactly what
the Python path does. Each case runs the same retirement twice from the same state, once through
the function and once through the Python path, with the same clock and retirement id, and compares
the results, the refusals and every row written, journal hashes included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor
from neutralize.core.clock import Clock, FixedClock
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.ids import new_id
from neutralize.registry import fastpath, journal, service
from neutralize.registry.domain import Span, parse_serial, serial
from neutralize.registry.models import Block, ChainHead, IdempotencyRecord, JournalEntry, Retirement
from neutralize.registry.schemas import (
    BufferReversalCmd,
    OperationResult,
    RetireCmd,
    TransferCmd,
    Units,
)

from .conftest import ADMIN, CLOCK, VINTAGE, Org, Registry

pytestmark = pytest.mark.postgres  # the one-call retirement is PostgreSQL's; SQLite runs the Python path

RETIREMENT_ID = "ret_0000000000fastpathfastpath"
TRICKY = 'Zoë "Q" \\ back\nslash\t\x01\x1f\x7f 😀 \u2028 张三 /'


@dataclass(frozen=True)
class Setting:
    """A nature-based project vintage in several blocks: the owner holds [s, s+99] (replaced by
    buffer units after a reversal) and [s+200, s+8999]; the buyer holds [s+100, s+199]."""

    owner: Org
    buyer: Org
    code: str
    s: int

    def nz(self, first: int, last: int) -> str:
        return serial(self.code, VINTAGE, Span(self.s + first, self.s + last))


@pytest.fixture
def setting(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Setting:
    owner, buyer = registry.organisation(), registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=100)
    issued = registry.issuance(project, kg=10_000)  # 9,000 held, 1,000 buffer
    start = parse_serial(issued.blocks[0].serial)[2].start
    here = Setting(owner=owner, buyer=buyer, code=project.code, s=start)
    service.transfer(
        session=registry.session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=TransferCmd(units=Units(serial=here.nz(100, 199)), to_account_id=buyer.holding,
                        idempotency_key="fragment"),
    )  # fmt: skip
    service.reverse_buffer(
        session=registry.session,
        clock=CLOCK,
        actor=ADMIN,
        cmd=BufferReversalCmd(invalid_serial=here.nz(0, 49), reason="fire", idempotency_key="reversal"),
    )
    real_new_id = new_id

    def fixed_id(prefix: str, at: datetime) -> str:
        return RETIREMENT_ID if prefix == "ret" else real_new_id(prefix, at)

    monkeypatch.setattr(fastpath, "new_id", fixed_id)
    monkeypatch.setattr(service, "new_id", fixed_id)
    return here


@dataclass
class Outcome:
    result: OperationResult | None
    refusal: ErrorCode | None
    rows: dict[str, Any]


def snapshot(session: Session) -> dict[str, Any]:
    """Every row a retirement writes, as plain values (ids of new blocks and entries aside); the
    result kept under the key as its JSON."""

    def rows(table: Any, *order: Any, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        found = session.execute(select(table).order_by(*order)).mappings()
        return [{k: v for k, v in row.items() if k not in skip} for row in found]

    idempotency = rows(IdempotencyRecord.__table__, IdempotencyRecord.actor, IdempotencyRecord.key)
    return {
        "blocks": rows(Block.__table__, Block.span_start, skip=("id",)),
        "retirements": rows(Retirement.__table__, Retirement.id),
        "journal": rows(JournalEntry.__table__, JournalEntry.chain, JournalEntry.chain_seq, skip=("id",)),
        "heads": rows(ChainHead.__table__, ChainHead.chain),
        "idempotency": idempotency,
    }


def both_ways(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, command: Callable[[], OperationResult]
) -> Iterator[Outcome]:
    """``command`` through the function, then through the Python path, each from the same state."""
    for enabled in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", enabled)
        savepoint = registry.session.begin_nested()
        result, refusal = None, None
        try:
            result = command()
        except DomainError as error:
            refusal = error.code
        registry.session.expire_all()
        yield Outcome(result, refusal, snapshot(registry.session))
        if refusal is None:
            audit = journal.verify(session=registry.session)
            assert audit.ok, audit.problems
        savepoint.rollback()
        registry.session.expire_all()  # rows loaded inside the savepoint are gone


def retire_cmd(units: Units, key: str = "retire-1", beneficiary: str = "张三", **claim: Any) -> RetireCmd:
    return RetireCmd(units=units, beneficiary=beneficiary, reason="Forum travel, 2026", idempotency_key=key,
                     **claim)  # fmt: skip


def retiring(
    registry: Registry, actor: Actor, cmd: RetireCmd, clock: Clock = CLOCK
) -> Callable[[], OperationResult]:
    return lambda: service.retire(session=registry.session, clock=clock, actor=actor, cmd=cmd)


CASES: dict[str, Callable[[Setting], Units]] = {
    "quantity inside one block": lambda h: Units(project_code=h.code, vintage=VINTAGE, quantity_kg=34),
    "quantity of a whole block": lambda h: Units(project_code=h.code, vintage=VINTAGE, quantity_kg=100),
    "quantity across blocks": lambda h: Units(project_code=h.code, vintage=VINTAGE, quantity_kg=340),
    "everything held": lambda h: Units(project_code=h.code, vintage=VINTAGE, quantity_kg=8_900),
    "serial in the middle of a block": lambda h: Units(serial=h.nz(300, 399)),
    "serial at the end of a block": lambda h: Units(serial=h.nz(8_900, 8_999)),
    "serial of a replaced block, whole": lambda h: Units(serial=h.nz(0, 99)),
    "serial of a replaced block, part": lambda h: Units(serial=h.nz(10, 19)),
    "serial across blocks, lower case": lambda h: Units(serial=h.nz(50, 99).lower()),
}


@pytest.mark.parametrize("case", CASES)
def test_a_retirement_writes_the_same_rows_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    cmd = retire_cmd(CASES[case](setting), claim_period_start=date(2026, 1, 1),
                     claim_period_end=date(2026, 12, 31), claim_country="CN")  # fmt: skip
    fast, slow = both_ways(registry, monkeypatch, retiring(registry, setting.owner.member, cmd))
    assert fast.refusal is None and slow.refusal is None
    assert fast.result == slow.result
    assert fast.rows == slow.rows


def test_any_beneficiary_text_hashes_the_same_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    units = Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=7)
    cmd = retire_cmd(units, beneficiary=TRICKY, key='key "with" \\ odd ✓ characters')
    fast, slow = both_ways(registry, monkeypatch, retiring(registry, setting.owner.member, cmd))
    assert fast.result is not None and fast.result == slow.result
    assert fast.rows == slow.rows
    assert fast.rows["journal"][-1]["payload"]["beneficiary"] == TRICKY


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 25, 17, 30, 1, 234_500, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 11, 25, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 11, 26, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_any_clock_time_is_kept_and_hashed_the_same_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, at: datetime
) -> None:
    units = Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=12)
    command = retiring(registry, setting.owner.member, retire_cmd(units), clock=FixedClock(at))
    fast, slow = both_ways(registry, monkeypatch, command)
    assert fast.result is not None and fast.result == slow.result and fast.result.at == at
    assert fast.rows == slow.rows
    [kept] = [r for r in fast.rows["idempotency"] if r["key"] == "retire-1"]
    assert kept["response"] == fast.result.model_dump(mode="json")


REFUSALS: dict[str, tuple[Callable[[Setting], Units], ErrorCode]] = {
    "more than is held": (
        lambda h: Units(project_code=h.code, vintage=VINTAGE, quantity_kg=8_901),
        ErrorCode.INSUFFICIENT_UNITS,
    ),
    "a vintage not held": (
        lambda h: Units(project_code=h.code, vintage=2024, quantity_kg=1),
        ErrorCode.INSUFFICIENT_UNITS,
    ),
    "units held by another": (lambda h: Units(serial=h.nz(150, 250)), ErrorCode.UNITS_NOT_AVAILABLE),
    "units in the buffer": (lambda h: Units(serial=h.nz(9_990, 9_999)), ErrorCode.UNITS_NOT_AVAILABLE),
    "an unknown project": (
        lambda h: Units(project_code="NOPE-1", vintage=VINTAGE, quantity_kg=1),
        ErrorCode.NOT_FOUND,
    ),
    "a malformed serial": (lambda h: Units(serial="NZ-" + h.code + "-2025-1-2"), ErrorCode.INVALID_SERIAL),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_is_the_same_both_ways_and_writes_nothing(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    units, code = REFUSALS[case]
    before = snapshot(registry.session)
    cmd = retire_cmd(units(setting))
    for outcome in both_ways(registry, monkeypatch, retiring(registry, setting.owner.member, cmd)):
        assert outcome.refusal is code
        assert outcome.rows == before
    # and the session is still usable after the refusal, as after one on the Python path
    assert service.check(session=registry.session).ok


def test_a_retry_returns_the_first_result_and_another_request_under_the_key_is_a_conflict(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = setting.owner.member
    cmd = retire_cmd(Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=5))
    other = retire_cmd(Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=6))
    for first_way in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", first_way)
        savepoint = registry.session.begin_nested()
        first = service.retire(session=registry.session, clock=CLOCK, actor=member, cmd=cmd)
        after_first = snapshot(registry.session)
        for retry_way in (True, False):  # a retry is answered the same by either path
            monkeypatch.setattr(fastpath, "ENABLED", retry_way)
            assert service.retire(session=registry.session, clock=CLOCK, actor=member, cmd=cmd) == first
            with pytest.raises(DomainError) as caught:
                service.retire(session=registry.session, clock=CLOCK, actor=member, cmd=other)
            assert caught.value.code is ErrorCode.IDEMPOTENCY_CONFLICT
            assert snapshot(registry.session) == after_first
        savepoint.rollback()
        registry.session.expire_all()  # rows loaded inside the savepoint are gone


def test_an_organisation_without_holdings_is_refused_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = registry.organisation()
    cmd = retire_cmd(Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=1))
    for outcome in both_ways(registry, monkeypatch, retiring(registry, stranger.member, cmd)):
        assert outcome.refusal is ErrorCode.INSUFFICIENT_UNITS


def test_postgresql_retires_in_one_call(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    connection = registry.session.connection()

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", note)
    try:
        cmd = retire_cmd(Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=3))
        service.retire(session=registry.session, clock=CLOCK, actor=setting.owner.member, cmd=cmd)
    finally:
        event.remove(connection, "before_cursor_execute", note)
    assert len(statements) == 1 and statements[0].startswith("SELECT registry_retire(")
