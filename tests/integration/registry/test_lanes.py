"""PostgreSQL: retirements by quantity from one holding run side by side in lanes (migration 0017,
ADR 6), while every other movement of the vintage still has it to itself. Each test commits, in a
database of its own, from two sessions at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from time import sleep

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.registry import journal, service
from neutralize.registry.domain import Span, parse_serial, serial
from neutralize.registry.models import Account, Block
from neutralize.registry.schemas import OperationResult, RetireCmd, TransferCmd, Units
from tests.conftest import fresh_database

from .conftest import CLOCK, PERIOD_2025, VINTAGE, Org, Registry

pytestmark = pytest.mark.postgres

SEGMENT_KG = 1_000_000  # migration 0017's registry_cut


@dataclass(frozen=True)
class Holding:
    holder: Org
    other: Org
    code: str
    start: int  # the issuance's first unit
    end: int


@pytest.fixture
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_database("postgresql", "lanes", tmp_path_factory))
    yield make_session_factory(engine)
    engine.dispose()


def holding(factory: sessionmaker[Session], kg: int, period: tuple[date, date] = PERIOD_2025) -> Holding:
    """An organisation holding ``kg`` of one vintage in one block, committed."""
    with unit_of_work(factory) as session:
        registry = Registry(session)
        holder, other = registry.organisation(), registry.organisation()
        project = registry.project(holder)
        issued = registry.issuance(project, kg=kg, period=period)
        span = parse_serial(issued.blocks[0].serial)[2]
    return Holding(holder=holder, other=other, code=project.code, start=span.start, end=span.end)


def two_blocks(factory: sessionmaker[Session]) -> Holding:
    """A holding of 3 segments in two blocks: units 1,000-1,999 of it moved away."""
    at = holding(factory, 3 * SEGMENT_KG)
    middle = Units(serial=serial(at.code, VINTAGE, Span(at.start + 1_000, at.start + 1_999)))
    with unit_of_work(factory) as session:
        service.transfer(
            session=session,
            clock=CLOCK,
            actor=at.holder.member,
            cmd=TransferCmd(units=middle, to_account_id=at.other.holding, idempotency_key="middle"),
        )
    return at


def retire(session: Session, at: Holding, kg: int, key: str) -> OperationResult:
    cmd = RetireCmd(units=Units(project_code=at.code, vintage=VINTAGE, quantity_kg=kg), beneficiary="张三",
                    reason="lanes", idempotency_key=key)  # fmt: skip
    return service.retire(session=session, clock=CLOCK, actor=at.holder.member, cmd=cmd)


def retirement_after(
    factory: sessionmaker[Session], first: Session, at: Holding, kg: int, key: str
) -> OperationResult:
    """A retirement sent while ``first`` is open: it is still waiting half a second later, and is
    answered once ``first`` commits (which this does, and closes it)."""
    answers: list[OperationResult] = []

    def second() -> None:
        with unit_of_work(factory) as session:
            answers.append(retire(session, at, kg, key))

    try:
        waiting = threading.Thread(target=second)
        waiting.start()
        sleep(0.5)
        assert waiting.is_alive() and not answers
        first.commit()
    finally:
        first.close()
    waiting.join(timeout=30)
    [answer] = answers
    return answer


def held_spans(session: Session, at: Holding) -> list[Span]:
    rows = session.scalars(
        select(Block)
        .join(Account, Block.account_id == Account.id)
        .where(Account.organisation_id == at.holder.id, Block.state == "held")
        .order_by(Block.span_start)
    )
    return [Span(b.span_start, b.span_end) for b in rows]


def span(result: OperationResult) -> Span:
    return parse_serial(result.blocks[0].serial)[2]


def ledger_holds(factory: sessionmaker[Session]) -> None:
    with unit_of_work(factory) as session:
        check = service.check(session=session)
        audit = journal.verify(session=session)
    assert check.ok, check.problems
    assert audit.ok, audit.problems


def test_a_retirement_meeting_another_runs_in_a_lane_of_its_own_without_waiting(
    factory: sessionmaker[Session],
) -> None:
    at = two_blocks(factory)
    first, second = factory(), factory()
    try:
        one = retire(first, at, 100, "first")  # open: holds the vintage's own chain and the lowest block
        second.execute(text("SET LOCAL lock_timeout = '10s'"))  # waiting for `first` would fail
        two = retire(second, at, 100, "second")
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    lanes = journal.vintage_lanes(at.code, VINTAGE)
    assert (one.journal.chain, one.journal.seq) == (lanes[0], 3)  # after the issuance and the transfer
    assert (two.journal.chain, two.journal.seq) == (lanes[1], 1)
    assert span(one) == Span(at.start, at.start + 99)
    assert span(two) == Span(at.start + 2_000, at.start + 2_099)  # the lowest units nobody was moving
    cut = (at.start + 2_100) // SEGMENT_KG * SEGMENT_KG + SEGMENT_KG  # the next multiple after its rest
    with unit_of_work(factory) as session:
        assert held_spans(session, at) == [
            Span(at.start + 100, at.start + 999),
            Span(at.start + 2_100, cut - 1),
            Span(cut, at.end),
        ]
    ledger_holds(factory)


def test_an_ordinary_movement_waits_for_a_retirement_in_a_lane(factory: sessionmaker[Session]) -> None:
    at = holding(factory, 10_000)
    first, second = factory(), factory()
    try:
        retire(first, at, 100, "first")
        second.execute(text("SET LOCAL lock_timeout = '200ms'"))
        move = TransferCmd(units=Units(project_code=at.code, vintage=VINTAGE, quantity_kg=100),
                           to_account_id=at.other.holding, idempotency_key="transfer")  # fmt: skip
        with pytest.raises(OperationalError, match="lock timeout"):
            service.transfer(session=second, clock=CLOCK, actor=at.holder.member, cmd=move)
        second.rollback()
        first.commit()
    finally:
        first.close()
        second.close()
    ledger_holds(factory)


def test_a_retirement_that_waited_for_the_lowest_block_cuts_its_rest(factory: sessionmaker[Session]) -> None:
    at = holding(factory, 3 * SEGMENT_KG)
    first = factory()
    one = retire(first, at, 100, "first")  # the only block is the first one's until it commits
    two = retirement_after(factory, first, at, 200, "second")
    lanes = journal.vintage_lanes(at.code, VINTAGE)
    assert one.journal.chain == two.journal.chain == lanes[0]  # the ordinary way, after the first
    assert span(one) == Span(at.start, at.start + 99)
    assert span(two) == Span(at.start + 100, at.start + 299)
    cut = (at.start + 300) // SEGMENT_KG * SEGMENT_KG + SEGMENT_KG
    with unit_of_work(factory) as session:
        assert held_spans(session, at) == [Span(at.start + 300, cut - 1), Span(cut, at.end)]
    ledger_holds(factory)


def test_a_retirement_alone_takes_the_vintages_own_chain_and_cuts_nothing(
    factory: sessionmaker[Session],
) -> None:
    at = holding(factory, 3 * SEGMENT_KG)
    with unit_of_work(factory) as session:
        done = retire(session, at, 100, "alone")
    assert done.journal.chain == journal.vintage_chain(at.code, VINTAGE)
    with unit_of_work(factory) as session:
        assert held_spans(session, at) == [Span(at.start + 100, at.end)]
    ledger_holds(factory)


def test_a_retirement_in_a_lane_updates_rows_no_other_transaction_id_locked(
    factory: sessionmaker[Session],
) -> None:
    """The lane and its blocks are taken with advisory locks (migration 0019), not with row locks in
    the attempt's subtransaction: a row locked by that subtransaction's id and then updated by the
    retirement's own would be marked with a multixact, one per retirement."""
    at = two_blocks(factory)
    first, second, observer = factory(), factory(), factory()
    own_id = text("SELECT pg_current_xact_id()::xid::text")
    marked = text("SELECT xmax::text FROM chain_heads WHERE chain = :chain")  # as committed: by whom
    try:
        one = retire(first, at, 100, "first")
        second.execute(text("SET LOCAL lock_timeout = '10s'"))  # waiting for `first` would fail
        two = retire(second, at, 100, "second")  # in lane 2, beside the first
        assert observer.scalar(marked, {"chain": one.journal.chain}) == first.scalar(own_id)
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
        observer.close()
    lanes = journal.vintage_lanes(at.code, VINTAGE)
    assert (one.journal.chain, two.journal.chain) == (lanes[0], lanes[1])
    ledger_holds(factory)


def test_a_retirement_waits_for_an_issuance_of_its_vintage(factory: sessionmaker[Session]) -> None:
    """An issuance appends to the vintage's own chain, lane 1: it has the vintage to itself like every
    other movement, so a retirement that starts meanwhile waits for it and then follows its entry."""
    at = holding(factory, 10_000, period=(date(2025, 1, 1), date(2025, 6, 30)))
    first = factory()
    project = service.get_project(session=first, code=at.code)
    more = Registry(first).issuance(project, kg=5_000, period=(date(2025, 7, 1), date(2025, 9, 30)))
    done = retirement_after(factory, first, at, 100, "after-the-issuance")  # the issuance's vintage
    assert done.journal.chain == more.journal.chain == journal.vintage_chain(at.code, VINTAGE)
    assert done.journal.seq == more.journal.seq + 1
    ledger_holds(factory)
