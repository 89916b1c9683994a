"""PostgreSQL retires, reserves, posts and releases through one server-side call each
(``registry.fastpath``): each must do exactly what the Python path does. Each case runs the same
command twice from the same state, once through the function and once through the Python path, with
the same clock and retirement id, and compares the results, the refusals and every row written,
journal hashes included."""

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
from neutralize.registry.domain import ProjectStatus, Span, parse_serial, serial
from neutralize.registry.models import Block, ChainHead, IdempotencyRecord, JournalEntry, Retirement
from neutralize.registry.schemas import (
    BufferReversalCmd,
    OperationResult,
    PostCmd,
    ReservationCmd,
    ReserveCmd,
    RetireCmd,
    TransferCmd,
    Units,
)

from .conftest import ADMIN, CLOCK, VINTAGE, Org, Registry

pytestmark = pytest.mark.postgres  # the one-call movements are PostgreSQL's; SQLite runs the Python path

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
    """Every row a movement writes, as plain values (ids of new blocks and entries aside); the
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


def test_an_organisation_without_holdings_is_refused_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = registry.organisation()
    cmd = retire_cmd(Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=1))
    for outcome in both_ways(registry, monkeypatch, retiring(registry, stranger.member, cmd)):
        assert outcome.refusal is ErrorCode.INSUFFICIENT_UNITS


# --- reservations, posts and releases -----------------------------------------------------------------

ORDER = "ord_fastpath"


def reserve_cmd(units: Units, key: str = "reserve-1", reservation: str = ORDER) -> ReserveCmd:
    return ReserveCmd(units=units, reservation=reservation, idempotency_key=key)


def post_cmd(
    reservation: str = ORDER, key: str = "post-1", beneficiary: str = "张三", **claim: Any
) -> PostCmd:
    # a post retires what the reservation holds: it names only the claim
    return PostCmd(
        reservation=reservation,
        idempotency_key=key,
        beneficiary=beneficiary,
        reason="Travel to the Chengdu forum, 2026",
        **claim,
    )


def release_cmd(reservation: str = ORDER, key: str = "release-1") -> ReservationCmd:
    return ReservationCmd(reservation=reservation, idempotency_key=key)


def reserving(registry: Registry, actor: Actor, cmd: ReserveCmd) -> Callable[[], OperationResult]:
    return lambda: service.reserve(session=registry.session, clock=CLOCK, actor=actor, cmd=cmd)


def ending(
    registry: Registry, actor: Actor, operation: str, cmd: PostCmd | ReservationCmd, clock: Clock = CLOCK
) -> Callable[[], OperationResult]:
    if isinstance(cmd, PostCmd):
        return lambda: service.post(session=registry.session, clock=clock, actor=actor, cmd=cmd)
    return lambda: service.release(session=registry.session, clock=clock, actor=actor, cmd=cmd)


def end_cmd(operation: str, key: str | None = None, reservation: str = ORDER) -> PostCmd | ReservationCmd:
    if operation == "post":
        return post_cmd(reservation, key=key or "post-1")
    return release_cmd(reservation, key=key or "release-1")


@pytest.mark.parametrize("case", CASES)
def test_a_reservation_writes_the_same_rows_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    cmd = reserve_cmd(CASES[case](setting), reservation=TRICKY)
    fast, slow = both_ways(registry, monkeypatch, reserving(registry, setting.owner.member, cmd))
    assert fast.refusal is None and slow.refusal is None
    assert fast.result is not None and fast.result == slow.result
    assert {b.state for b in fast.result.blocks} == {"reserved"}
    assert fast.rows == slow.rows


@pytest.mark.parametrize("case", REFUSALS)
def test_a_reservation_refused_is_refused_the_same_both_ways_and_writes_nothing(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    units, code = REFUSALS[case]
    before = snapshot(registry.session)
    cmd = reserve_cmd(units(setting))
    for outcome in both_ways(registry, monkeypatch, reserving(registry, setting.owner.member, cmd)):
        assert outcome.refusal is code
        assert outcome.rows == before
    assert service.check(session=registry.session).ok


# What is reserved as ORDER before the post or release, in serials of the setting.
RESERVATIONS: dict[str, Callable[[Setting], list[Units]]] = {
    "part of a block": lambda h: [Units(serial=h.nz(300, 399))],
    "a whole replaced block": lambda h: [Units(serial=h.nz(0, 99))],
    "a replaced block and part of the next": lambda h: [
        Units(project_code=h.code, vintage=VINTAGE, quantity_kg=340)
    ],
    "two reservations under one name": lambda h: [Units(serial=h.nz(500, 599)), Units(serial=h.nz(300, 349))],
}


def reserve_all(registry: Registry, setting: Setting, units: list[Units], reservation: str = ORDER) -> None:
    for n, named in enumerate(units):
        cmd = reserve_cmd(named, key=f"setup-{reservation}-{n}", reservation=reservation)
        reserving(registry, setting.owner.member, cmd)()


@pytest.mark.parametrize("operation", ["post", "release"])
@pytest.mark.parametrize("case", RESERVATIONS)
def test_a_post_or_release_writes_the_same_rows_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, case: str, operation: str
) -> None:
    reserve_all(registry, setting, RESERVATIONS[case](setting))
    command = ending(registry, setting.owner.member, operation, end_cmd(operation))
    fast, slow = both_ways(registry, monkeypatch, command)
    assert fast.refusal is None and slow.refusal is None
    assert fast.result is not None and fast.result == slow.result
    assert {b.state for b in fast.result.blocks} == {"retired" if operation == "post" else "held"}
    assert fast.rows == slow.rows


def test_a_post_with_any_beneficiary_and_claim_hashes_the_same_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    reserve_all(registry, setting, RESERVATIONS["a replaced block and part of the next"](setting))
    period = {"claim_period_start": date(2026, 1, 1), "claim_period_end": date(2026, 12, 31)}
    cmd = post_cmd(key='key "with" \\ odd ✓ characters', beneficiary=TRICKY, claim_country="CN", **period)
    fast, slow = both_ways(registry, monkeypatch, ending(registry, setting.owner.member, "post", cmd))
    assert fast.result is not None and fast.result == slow.result
    assert fast.rows == slow.rows
    assert fast.rows["journal"][-1]["payload"]["beneficiary"] == TRICKY
    assert fast.rows["retirements"][-1]["claim_country"] == "CN"


@pytest.mark.parametrize("operation", ["post", "release"])
def test_a_post_or_release_keeps_and_hashes_any_clock_time_the_same_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    at = datetime(2026, 11, 25, 17, 30, 1, 234_500, tzinfo=timezone(timedelta(hours=8)))
    reserve_all(registry, setting, RESERVATIONS["part of a block"](setting))
    command = ending(registry, setting.owner.member, operation, end_cmd(operation), clock=FixedClock(at))
    fast, slow = both_ways(registry, monkeypatch, command)
    assert fast.result is not None and fast.result == slow.result and fast.result.at == at
    assert fast.rows == slow.rows


def _posted_before(registry: Registry, setting: Setting) -> None:
    reserve_all(registry, setting, RESERVATIONS["part of a block"](setting))
    ending(registry, setting.owner.member, "post", post_cmd(key="posted-before"))()


def test_a_reservation_of_another_vintage_under_the_same_name_is_refused_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = service.get_project(session=registry.session, code=setting.code)
    registry.issuance(project, kg=1_000, period=(date(2024, 1, 1), date(2024, 12, 31)))
    reserve_all(registry, setting, RESERVATIONS["part of a block"](setting))
    units = Units(project_code=setting.code, vintage=2024, quantity_kg=10)
    reserve_all(registry, setting, [units], reservation=f"{ORDER}-2024")
    before = snapshot(registry.session)
    # the same name again, in 2024: a reservation spans one project vintage
    command = reserving(registry, setting.owner.member, reserve_cmd(units, key="2024", reservation=ORDER))
    for outcome in both_ways(registry, monkeypatch, command):
        assert outcome.refusal is ErrorCode.INVALID_REQUEST
        assert outcome.rows == before


# Refusals of a post or release: what comes before it, who sends it, what it names, and the code.
END_REFUSALS: dict[
    str, tuple[Callable[[Registry, Setting], None], Callable[[Setting], Actor], str, ErrorCode]
] = {
    "nothing reserved under the name": (
        lambda r, h: reserve_all(r, h, RESERVATIONS["part of a block"](h)),
        lambda h: h.owner.member,
        "ord_unknown",
        ErrorCode.UNITS_NOT_AVAILABLE,
    ),
    "another holder's reservation": (
        lambda r, h: reserve_all(r, h, RESERVATIONS["part of a block"](h)),
        lambda h: h.buyer.member,
        ORDER,
        ErrorCode.UNITS_NOT_AVAILABLE,
    ),
    "a reservation already posted": (
        _posted_before,
        lambda h: h.owner.member,
        ORDER,
        ErrorCode.UNITS_NOT_AVAILABLE,
    ),
}


@pytest.mark.parametrize("operation", ["post", "release"])
@pytest.mark.parametrize("case", END_REFUSALS)
def test_a_post_or_release_refused_is_refused_the_same_both_ways_and_writes_nothing(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, case: str, operation: str
) -> None:
    before_it, sender, reservation, code = END_REFUSALS[case]
    before_it(registry, setting)
    before = snapshot(registry.session)
    command = ending(registry, sender(setting), operation, end_cmd(operation, reservation=reservation))
    for outcome in both_ways(registry, monkeypatch, command):
        assert outcome.refusal is code
        assert outcome.rows == before
    assert service.check(session=registry.session).ok


@pytest.mark.parametrize("operation", ["retire", "retire by serial", "reserve", "post", "release"])
def test_a_suspended_projects_units_do_not_move_both_ways(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    # given units reserved for an order, then the project suspended
    reserve_all(registry, setting, RESERVATIONS["part of a block"](setting))
    project = service.get_project(session=registry.session, code=setting.code)
    registry.move(project, ProjectStatus.SUSPENDED, ADMIN)
    before = snapshot(registry.session)
    member, some = setting.owner.member, Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=5)
    command = {
        "retire": lambda: retiring(registry, member, retire_cmd(some)),
        "retire by serial": lambda: retiring(
            registry, member, retire_cmd(Units(serial=setting.nz(600, 609)))
        ),
        "reserve": lambda: reserving(registry, member, reserve_cmd(some, reservation="another order")),
        "post": lambda: ending(registry, member, "post", end_cmd("post")),
        "release": lambda: ending(registry, member, "release", end_cmd("release")),
    }[operation]()
    for outcome in both_ways(registry, monkeypatch, command):
        if operation == "release":  # units only go back to their holding: an order can still end
            assert outcome.refusal is None
        else:  # refused on both paths, and nothing is written
            assert outcome.refusal is ErrorCode.PROJECT_NOT_REGISTERED
            assert outcome.rows == before


# --- retries and one call ------------------------------------------------------------------------------


def _commands(
    registry: Registry, setting: Setting, operation: str
) -> tuple[Callable[[], OperationResult], Callable[[], OperationResult]]:
    """A command and another request under the same key (for a post or release, after the reservation)."""
    member = setting.owner.member

    def by_quantity(kg: int) -> Units:
        return Units(project_code=setting.code, vintage=VINTAGE, quantity_kg=kg)

    if operation == "retire":
        return (retiring(registry, member, retire_cmd(by_quantity(5))),
                retiring(registry, member, retire_cmd(by_quantity(6))))  # fmt: skip
    if operation == "reserve":
        return (reserving(registry, member, reserve_cmd(by_quantity(5))),
                reserving(registry, member, reserve_cmd(by_quantity(6))))  # fmt: skip
    reserve_all(registry, setting, RESERVATIONS["part of a block"](setting))
    if operation == "post":
        other = post_cmd(key="end-1", beneficiary="Someone else")
    else:
        other = release_cmd(reservation="ord_other", key="end-1")
    return (ending(registry, member, operation, end_cmd(operation, key="end-1")),
            ending(registry, member, operation, other))  # fmt: skip


OPERATIONS = ["retire", "reserve", "post", "release"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_retry_returns_the_first_result_and_another_request_under_the_key_is_a_conflict(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    command, other = _commands(registry, setting, operation)
    for first_way in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", first_way)
        savepoint = registry.session.begin_nested()
        first = command()
        after_first = snapshot(registry.session)
        for retry_way in (True, False):  # a retry is answered the same by either path
            monkeypatch.setattr(fastpath, "ENABLED", retry_way)
            assert command() == first
            with pytest.raises(DomainError) as caught:
                other()
            assert caught.value.code is ErrorCode.IDEMPOTENCY_CONFLICT
            assert snapshot(registry.session) == after_first
        savepoint.rollback()
        registry.session.expire_all()  # rows loaded inside the savepoint are gone


def test_a_key_used_to_post_is_a_conflict_for_a_release(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    reserve_all(registry, setting, RESERVATIONS["part of a block"](setting))
    ending(registry, setting.owner.member, "post", end_cmd("post", key="end-1"))()
    command = ending(registry, setting.owner.member, "release", end_cmd("release", key="end-1"))
    for outcome in both_ways(registry, monkeypatch, command):
        assert outcome.refusal is ErrorCode.IDEMPOTENCY_CONFLICT


@pytest.mark.parametrize("operation", OPERATIONS)
def test_postgresql_moves_units_in_one_call(
    registry: Registry, setting: Setting, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    command, _other = _commands(registry, setting, operation)
    statements: list[str] = []
    connection = registry.session.connection()

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", note)
    try:
        command()
    finally:
        event.remove(connection, "before_cursor_execute", note)
    function = {"retire": "registry_retire", "reserve": "registry_reserve"}.get(
        operation, "registry_post_or_release"
    )
    *before, call = statements
    assert call.startswith(f"SELECT {function}(")
    # a reservation first holds its name and looks for units of another vintage under it
    assert len(before) == (2 if operation == "reserve" else 0)
