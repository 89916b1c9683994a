"""Races on one project vintage: many workers retire (by quantity and by overlapping serial ranges)
and transfer the same units at once, each in its own unit of work on its own connection.

Afterwards the ledger rules of DESIGN.md §4 must hold: conservation per vintage, no unit in two
blocks, every retired kilogram in exactly one successful retirement, every journal chain intact.

PostgreSQL runs 50 workers (``CONCURRENCY_WORKERS``) in a schema of its own; SQLite runs 8
(``CONCURRENCY_SQLITE_WORKERS``) on a WAL file, where ``BEGIN IMMEDIATE`` queues the writers.
``CONCURRENCY_OPS`` (commands per worker) and ``CONCURRENCY_SEED`` vary the load; ``make stress``
raises them. Lost races are allowed: a serialization failure or deadlock is retried, and so is a
refusal because the units just moved (``insufficient_units``, ``units_not_available``), a bounded
number of times each. Anything else a worker meets fails the test.

The last tests pin down one interleaving each (a command waiting on a lock while another commits,
a check or an audit reading while a command commits): each must give the right answer, not only
leave the ledger sound.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.migrations import upgrade
from neutralize.registry import journal, service
from neutralize.registry.domain import AccountKind, BlockState, ProjectStatus, Span, parse_serial, serial
from neutralize.registry.models import Account, Block, IdempotencyRecord, Issuance, JournalEntry, Retirement
from neutralize.registry.schemas import (
    IssueCmd,
    OperationResult,
    OrganisationCreate,
    ProjectCreate,
    ProjectTransition,
    RetireCmd,
    TransferCmd,
    Units,
    VerificationCreate,
)
from tests.conftest import ON_CI, POSTGRES_URL

SEED = int(os.environ.get("CONCURRENCY_SEED", "20261125"))
PG_WORKERS = int(os.environ.get("CONCURRENCY_WORKERS", "50"))
SQLITE_WORKERS = int(os.environ.get("CONCURRENCY_SQLITE_WORKERS", "8"))
OPS_PER_WORKER = int(os.environ.get("CONCURRENCY_OPS", "4"))

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
VERIFIER = Actor(id="verifier-1", role=Role.VERIFIER)
PERIOD = (date(2025, 1, 1), date(2025, 12, 31))  # ended before the clock: vintage 2025
VINTAGE = 2025
LATER_PERIOD = (date(2026, 1, 1), date(2026, 6, 30))  # vintage 2026, also ended
ISSUED_KG = 100_000
HOT_UNITS = 4_000  # serial-range commands aim at the lowest units, where quantity retirements take from
MAX_REFUSALS = 3  # tries of a command refused because its units just moved
MAX_CONFLICTS = 25  # tries of a command that lost a serialization race or a deadlock
JOIN_TIMEOUT_S = 300

# The refusals that only mean another worker moved the units first.
LOST_RACE = {ErrorCode.INSUFFICIENT_UNITS, ErrorCode.UNITS_NOT_AVAILABLE}
# serialization_failure, deadlock_detected, lock_not_available
PG_CONFLICTS = {"40001", "40P01", "55P03"}


# --- backends ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    settings: Settings
    workers: int


def _postgres_settings(schema: str) -> Settings:
    """Settings for an empty schema of its own (the shared test schema stays untouched)."""
    if not POSTGRES_URL:
        message = (
            "PostgreSQL race tests skipped: NEUTRALIZE_TEST_POSTGRES_URL is not set (make test sets it "
            "when pg_isready answers)"
        )
        if ON_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    return Settings(
        environment="test", database_url=f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    )


def _admin(*statements: str) -> None:
    assert POSTGRES_URL
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    except DBAPIError as error:  # the server is configured but does not answer
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} does not answer: {error}")
    finally:
        admin.dispose()


@contextmanager
def _postgres_backend() -> Iterator[Backend]:
    """A freshly migrated PostgreSQL schema of this test process, dropped afterwards."""
    schema = f"neutralize_races_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    settings = _postgres_settings(schema)
    try:
        upgrade(settings)
        yield Backend("postgresql", settings, PG_WORKERS)
    finally:
        _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A freshly migrated database: a WAL SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        settings = Settings(environment="test", database_url=f"sqlite:///{tmp_path / 'races.db'}")
        upgrade(settings)
        yield Backend("sqlite", settings, SQLITE_WORKERS)
        return
    with _postgres_backend() as postgres:
        yield postgres


def _is_conflict(error: DBAPIError) -> bool:
    """A transaction that lost a race the database detected: it changed nothing and may be retried."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate in PG_CONFLICTS or "database is locked" in str(error.orig)


# --- the ledger the workers race on -------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    id: str
    holding: str
    retirement: str
    member: Actor


@dataclass(frozen=True)
class Ledger:
    project_code: str
    issued: Span
    orgs: tuple[Org, ...]  # orgs[0] owns the project and holds the issued block


def _organisation(session: Session, name: str, n: int) -> Org:
    created = service.create_organisation(
        session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name=name)
    )
    accounts = {a.kind: a.id for a in created.accounts}
    return Org(
        id=created.id,
        holding=accounts[AccountKind.HOLDING.value],
        retirement=accounts[AccountKind.RETIREMENT.value],
        member=Actor(id=f"member-{n}", role=Role.MEMBER, organisation_id=created.id),
    )


def _registered_project(session: Session, owner: Org, code: str) -> str:
    """A native project walked to ``registered``, with a recorded verification; its id."""
    owner_key = Actor(id=f"owner-{code}", role=Role.PROJECT_OWNER, organisation_id=owner.id)
    service.create_project(
        session=session,
        clock=CLOCK,
        actor=owner_key,
        cmd=ProjectCreate(
            code=code,
            name="Chengdu metro riders",
            standard="CDCER",
            methodology="CDCER-TRANSIT",
            methodology_version="1.0",
            project_type="transport",
            credit_type="avoidance",
            nature_based=False,
            country="CN",
            region="CN-SC",
            owner_organisation_id=owner.id,
        ),
    )
    for status, actor in (
        (ProjectStatus.SUBMITTED, owner_key),
        (ProjectStatus.VALIDATED, VERIFIER),
        (ProjectStatus.REGISTERED, SYSTEM),
    ):
        service.transition_project(
            session=session,
            clock=CLOCK,
            actor=actor,
            project_code=code,
            cmd=ProjectTransition(to_status=status.value),
        )
    return code


def _verification(session: Session, code: str, kg: int, period: tuple[date, date] = PERIOD) -> str:
    return service.record_verification(
        session=session,
        clock=CLOCK,
        actor=VERIFIER,
        cmd=VerificationCreate(
            project_code=code,
            verifier="Sichuan Verification Co.",
            period_start=period[0],
            period_end=period[1],
            verified_kg=kg,
            report_sha256="ab" * 32,
        ),
    ).id


def set_up(factory: sessionmaker[Session], code: str = "RACE-1") -> Ledger:
    """Three organisations; the first owns a registered project with one issued block of 100 t."""
    with unit_of_work(factory) as session:
        orgs = tuple(_organisation(session, f"Organisation {n}", n) for n in range(3))
        _registered_project(session, orgs[0], code)
        issued = service.issue(
            session=session,
            clock=CLOCK,
            actor=SYSTEM,
            cmd=IssueCmd(verification_id=_verification(session, code, ISSUED_KG), idempotency_key="issue-1"),
        )
    (block,) = issued.blocks
    return Ledger(project_code=code, issued=parse_serial(block.serial)[2], orgs=orgs)


# --- commands and the workers that race them ---------------------------------------------------


@dataclass
class Op:
    """One command of one worker and what became of it."""

    worker: int
    kind: str  # retire | transfer
    source: int  # the acting organisation (index into Ledger.orgs)
    target: int | None  # transfers: the receiving organisation
    cmd: RetireCmd | TransferCmd
    result: OperationResult | None = None
    refused: ErrorCode | None = None
    attempts: int = 0
    conflicts: int = 0

    @property
    def asked_kg(self) -> int:
        units = self.cmd.units
        if units.quantity_kg is not None:
            return units.quantity_kg
        assert units.serial is not None
        return parse_serial(units.serial)[2].size


def plan(rng: random.Random, worker: int, count: int, ledger: Ledger) -> list[Op]:
    """``count`` random commands on the same units: retirements and transfers, by quantity (lowest
    serials first) or by serial ranges inside the hot lowest units, from any organisation."""
    ops = []
    for i in range(count):
        key = f"w{worker}-op{i}"
        kind = rng.choices(["retire", "transfer"], weights=[6, 4])[0]
        source = rng.choices(range(len(ledger.orgs)), weights=[6, 2, 2])[0]
        if rng.random() < 0.5:
            units = Units(project_code=ledger.project_code, vintage=VINTAGE, quantity_kg=rng.randint(1, 400))
        else:
            start = ledger.issued.start + rng.randrange(HOT_UNITS)
            end = min(start + rng.randint(1, 300) - 1, ledger.issued.end)
            units = Units(serial=serial(ledger.project_code, VINTAGE, Span(start, end)))
        target = None
        cmd: RetireCmd | TransferCmd
        if kind == "retire":
            cmd = RetireCmd(
                units=units, beneficiary=f"Guest {worker}-{i}", reason="race test", idempotency_key=key
            )
        else:
            target = rng.choice([o for o in range(len(ledger.orgs)) if o != source])
            cmd = TransferCmd(units=units, to_account_id=ledger.orgs[target].holding, idempotency_key=key)
        ops.append(Op(worker=worker, kind=kind, source=source, target=target, cmd=cmd))
    return ops


def execute(factory: sessionmaker[Session], ledger: Ledger, op: Op) -> OperationResult:
    """Run ``op`` once, in its own unit of work (committed when this returns)."""
    actor = ledger.orgs[op.source].member
    with unit_of_work(factory) as session:
        if isinstance(op.cmd, RetireCmd):
            return service.retire(session=session, clock=CLOCK, actor=actor, cmd=op.cmd)
        return service.transfer(session=session, clock=CLOCK, actor=actor, cmd=op.cmd)


def run_op(factory: sessionmaker[Session], ledger: Ledger, op: Op, rng: random.Random) -> None:
    """Run ``op`` until it commits, or is refused :data:`MAX_REFUSALS` times because its units moved;
    retries keep the same idempotency key. Conflicts beyond :data:`MAX_CONFLICTS` and any other
    error propagate."""
    refusals = 0
    while True:
        op.attempts += 1
        try:
            op.result = execute(factory, ledger, op)
            return
        except DomainError as error:
            if error.code not in LOST_RACE:
                raise
            refusals += 1
            if refusals >= MAX_REFUSALS:
                op.refused = error.code
                return
        except DBAPIError as error:
            if not _is_conflict(error):
                raise
            op.conflicts += 1
            if op.conflicts >= MAX_CONFLICTS:
                raise
        time.sleep(rng.uniform(0, 0.01))


def race(settings: Settings, workers: int, job: Callable[[int, sessionmaker[Session]], None]) -> list[str]:
    """Run ``job(worker, factory)`` on ``workers`` threads at once, each with its own engine and
    session factory; the tracebacks of the workers that failed."""
    errors: list[str] = []
    barrier = threading.Barrier(workers)

    def thread(worker: int) -> None:
        engine = make_engine(settings)
        try:
            with engine.connect():  # connect before the start line: the commands race, not the logins
                pass
            barrier.wait(timeout=120)
            job(worker, make_session_factory(engine))
        except BaseException:
            errors.append(f"worker {worker}:\n{traceback.format_exc()}")
            barrier.abort()
        finally:
            engine.dispose()

    threads = [threading.Thread(target=thread, args=(w,), name=f"race-{w}") for w in range(workers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"workers still running after {JOIN_TIMEOUT_S} s (a lock never released?): {stuck}"
    return errors


# --- what must hold afterwards ------------------------------------------------------------------


def _spans(result: OperationResult) -> list[Span]:
    return sorted(parse_serial(b.serial)[2] for b in result.blocks)


def _joined(spans: list[Span]) -> list[Span]:
    """Sorted spans with adjacent ones joined."""
    joined: list[Span] = []
    for span in sorted(spans):
        if joined and joined[-1].end + 1 == span.start:
            joined[-1] = Span(joined[-1].start, span.end)
        else:
            joined.append(span)
    return joined


def _overlapping_blocks(session: Session) -> list[Any]:
    return list(
        session.execute(
            text(
                "SELECT a.id, a.span_start, a.span_end, b.id, b.span_start, b.span_end "
                "FROM blocks a JOIN blocks b ON a.id < b.id "
                "AND a.span_start <= b.span_end AND b.span_start <= a.span_end"
            )
        ).all()
    )


def assert_sound(factory: sessionmaker[Session], ledger: Ledger, ops: list[Op]) -> None:
    done = [op for op in ops if op.result is not None]
    retirements = [op for op in done if op.kind == "retire"]
    with unit_of_work(factory) as session:
        report = service.check(session=session)
        assert report.ok, report.problems
        audit = journal.verify(session=session)
        assert audit.ok, audit.problems

        # No unit in two blocks, asked of the database directly, and the blocks tile the issuance.
        assert _overlapping_blocks(session) == []
        tiles = [Span(s, e) for s, e in session.execute(select(Block.span_start, Block.span_end))]
        tiles.sort()
        assert tiles[0].start == ledger.issued.start and tiles[-1].end == ledger.issued.end
        gaps = [(a, b) for a, b in itertools.pairwise(tiles) if a.end + 1 != b.start]
        assert gaps == [], gaps[:5]

        # Every command moved exactly what it asked for.
        wrong = [(op.cmd.idempotency_key, op.asked_kg, op.result.quantity_kg) for op in done if op.result]
        assert [w for w in wrong if w[1] != w[2]] == []
        for op in done:
            assert op.result is not None
            if op.cmd.units.serial is not None:  # exactly the range asked for, maybe in several blocks
                assert _joined(_spans(op.result)) == [parse_serial(op.cmd.units.serial)[2]]

        # Retired kilograms: the database's total is what the successful retirements returned, and
        # no unit is in two of them.
        size = Block.span_end - Block.span_start + 1
        retired_db = (
            session.scalar(select(func.sum(size)).where(Block.state == BlockState.RETIRED.value)) or 0
        )
        retired_results = sum(op.result.quantity_kg for op in retirements if op.result)
        assert retired_db == retired_results
        units = sorted(
            (span, op.cmd.idempotency_key) for op in retirements if op.result for span in _spans(op.result)
        )
        doubled = [(a, b) for a, b in itertools.pairwise(units) if a[0].end >= b[0].start]
        assert doubled == [], doubled[:5]

        # Each retirement row holds exactly the blocks its result named, in its holder's account.
        rows = dict(session.execute(select(Retirement.id, Retirement.quantity_kg)).all())
        expected_rows = {op.result.retirement_id: op.result.quantity_kg for op in retirements if op.result}
        assert rows == expected_rows
        retired_blocks: dict[str | None, list[tuple[Span, str]]] = {}
        for block in session.scalars(select(Block).where(Block.state == BlockState.RETIRED.value)):
            retired_blocks.setdefault(block.retirement_id, []).append(
                (Span(block.span_start, block.span_end), block.account_id)
            )
        for op in retirements:
            assert op.result is not None
            found = sorted(retired_blocks.get(op.result.retirement_id, []))
            assert [span for span, _ in found] == _spans(op.result), op.cmd.idempotency_key
            assert {account for _, account in found} == {ledger.orgs[op.source].retirement}

        # Holdings per organisation follow from the successful commands alone.
        expected = [ISSUED_KG] + [0] * (len(ledger.orgs) - 1)
        for op in done:
            assert op.result is not None
            expected[op.source] -= op.result.quantity_kg
            if op.target is not None:
                expected[op.target] += op.result.quantity_kg
        held = dict(
            session.execute(
                select(Account.organisation_id, func.sum(size))
                .join(Account, Block.account_id == Account.id)
                .where(Block.state == BlockState.HELD.value)
                .group_by(Account.organisation_id)
            ).all()
        )
        assert [int(held.get(org.id, 0)) for org in ledger.orgs] == expected

        # One journal entry and one idempotency record per successful command, none for the refused
        # (on the vintage's own chain, or on PostgreSQL in one of its retirement lanes).
        chains = journal.vintage_lanes(ledger.project_code, VINTAGE)
        keys = Counter(
            session.scalars(select(JournalEntry.idempotency_key).where(JournalEntry.chain.in_(chains)))
        )
        assert keys == Counter(["issue-1"] + [op.cmd.idempotency_key for op in done])
        records = {
            (r.actor, r.key): r.response
            for r in session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key != "issue-1"))
        }
        assert records == {
            (ledger.orgs[op.source].member.id, op.cmd.idempotency_key): op.result.model_dump(mode="json")
            for op in done
            if op.result
        }


def _summary(backend: Backend, ops: list[Op], seconds: float) -> str:
    done = sum(op.result is not None for op in ops)
    refused = Counter(op.refused for op in ops if op.refused)
    return (
        f"{backend.name}: {backend.workers} workers, {len(ops)} commands in {seconds:.1f} s: {done} done, "
        f"refused {dict(refused)}, {sum(op.attempts for op in ops)} attempts, "
        f"{sum(op.conflicts for op in ops)} conflicts retried (seed {SEED})"
    )


# --- the tests -----------------------------------------------------------------------------------


def test_racing_retirements_and_transfers_keep_the_ledger_sound(backend: Backend) -> None:
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    try:
        ledger = set_up(factory)
        plans = {
            w: plan(random.Random(SEED * 1_000 + w), w, OPS_PER_WORKER, ledger)
            for w in range(backend.workers)
        }

        def job(worker: int, worker_factory: sessionmaker[Session]) -> None:
            rng = random.Random(SEED * 7_919 + worker)
            for op in plans[worker]:
                run_op(worker_factory, ledger, op, rng)

        started = time.monotonic()
        errors = race(backend.settings, backend.workers, job)
        elapsed = time.monotonic() - started
        ops = [op for w in sorted(plans) for op in plans[w]]
        print(_summary(backend, ops, elapsed))
        assert errors == [], "\n".join(errors)
        assert any(op.kind == "retire" and op.result for op in ops), "nothing was retired: no race was run"
        assert_sound(factory, ledger, ops)

        # A retry of a finished command, even now, returns its first result and moves nothing more.
        replayed = [(op, op.result) for op in ops if op.result is not None][:10]
        for op, first in replayed:
            assert execute(factory, ledger, op).model_dump(mode="json") == first.model_dump(mode="json")
        assert_sound(factory, ledger, ops)
    finally:
        engine.dispose()


def test_one_idempotency_key_from_many_threads_moves_units_once(backend: Backend) -> None:
    """Every worker sends the same retirement with the same key at once (a client retrying in a
    hurry): it is carried out once, and every worker ends up with that one result."""
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    workers = min(backend.workers, 20)
    try:
        ledger = set_up(factory)
        cmd = RetireCmd(
            units=Units(project_code=ledger.project_code, vintage=VINTAGE, quantity_kg=250),
            beneficiary="Hasty client",
            reason="retried at once",
            idempotency_key="same-key",
        )
        results: dict[int, OperationResult] = {}

        def job(worker: int, worker_factory: sessionmaker[Session]) -> None:
            op = Op(worker=worker, kind="retire", source=0, target=None, cmd=cmd)
            for _ in range(MAX_CONFLICTS):
                try:
                    results[worker] = execute(worker_factory, ledger, op)
                    return
                except DomainError as error:
                    # Another worker holds the key in a transaction not yet committed.
                    assert error.code is ErrorCode.IDEMPOTENCY_CONFLICT, error
                except DBAPIError as error:
                    if not _is_conflict(error):
                        raise
                time.sleep(0.005)
            raise AssertionError(f"worker {worker} never got the result")

        errors = race(backend.settings, workers, job)
        assert errors == [], "\n".join(errors)
        assert len(results) == workers
        shown = {r.model_dump_json() for r in results.values()}
        assert len(shown) == 1, shown
        op = Op(worker=0, kind="retire", source=0, target=None, cmd=cmd, result=next(iter(results.values())))
        assert_sound(factory, ledger, [op])
    finally:
        engine.dispose()


def test_racing_issuances_take_disjoint_serial_ranges(backend: Backend) -> None:
    """Issuances of different projects at once: each gets a range of the unit space no other has,
    and a lost race is reported as a conflict to retry, not as an unhandled database error."""
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    workers = min(backend.workers, 10)
    try:
        with unit_of_work(factory) as session:
            owner = _organisation(session, "Issuer", 0)
            verifications = {}
            for w in range(workers):
                code = _registered_project(session, owner, f"ISSUE-{w}")
                verifications[w] = _verification(session, code, 1_000 + w)
        issued: dict[int, OperationResult] = {}
        unhandled: list[str] = []

        def job(worker: int, worker_factory: sessionmaker[Session]) -> None:
            cmd = IssueCmd(verification_id=verifications[worker], idempotency_key=f"issue-{worker}")
            for _ in range(MAX_CONFLICTS):
                try:
                    with unit_of_work(worker_factory) as session:
                        issued[worker] = service.issue(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)
                    return
                except IntegrityError as error:
                    # Two issuances read the same highest unit and both took the range after it;
                    # the unique index refused the second. Safe, but not a conflict code a client
                    # knows to retry: recorded, retried here so the ledger can still be checked.
                    unhandled.append(str(error.orig).splitlines()[0])
                except DBAPIError as error:
                    if not _is_conflict(error):
                        raise
                time.sleep(0.005)
            raise AssertionError(f"worker {worker} never issued")

        errors = race(backend.settings, workers, job)
        assert errors == [], "\n".join(errors)
        assert len(issued) == workers
        with unit_of_work(factory) as session:
            spans = sorted(
                Span(s, e) for s, e in session.execute(select(Issuance.span_start, Issuance.span_end))
            )
            assert all(a.end < b.start for a, b in itertools.pairwise(spans)), spans
            assert _overlapping_blocks(session) == []
            report = service.check(session=session)
            assert report.ok, report.problems
            assert journal.verify(session=session).ok
        assert not unhandled, f"{len(unhandled)} of {workers} concurrent issuances failed: {unhandled[0]}"
    finally:
        engine.dispose()


@pytest.mark.parametrize("by", ["serial", "quantity"])
def test_a_command_that_waited_on_a_split_block_still_finds_the_units_held(backend: Backend, by: str) -> None:
    """One retirement splits the issued block in the middle and commits while a second command waits
    on that block's lock. The units the second asks for are still held, so it must succeed."""
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    try:
        ledger = set_up(factory)
        start = ledger.issued.start
        first_cmd = RetireCmd(
            units=Units(serial=serial(ledger.project_code, VINTAGE, Span(start + 1_000, start + 1_099))),
            beneficiary="First",
            reason="splits the block",
            idempotency_key="first",
        )
        units = (
            Units(serial=serial(ledger.project_code, VINTAGE, Span(start + 5_000, start + 5_099)))
            if by == "serial"
            else Units(project_code=ledger.project_code, vintage=VINTAGE, quantity_kg=5_000)
        )
        second = Op(
            worker=1,
            kind="retire",
            source=0,
            target=None,
            cmd=RetireCmd(units=units, beneficiary="Second", reason="waited", idempotency_key="second"),
        )
        outcome: dict[str, Any] = {}

        def wait_then_retire() -> None:
            try:
                outcome["result"] = execute(factory, ledger, second)
            except DomainError as error:
                outcome["refused"] = error
            except BaseException:
                outcome["error"] = traceback.format_exc()

        with unit_of_work(factory) as session:
            service.retire(session=session, clock=CLOCK, actor=ledger.orgs[0].member, cmd=first_cmd)
            waiter = threading.Thread(target=wait_then_retire)
            waiter.start()
            _until_waiting_on_a_lock(backend, engine)
        waiter.join(timeout=60)
        assert not waiter.is_alive()
        assert "error" not in outcome, outcome["error"]
        # the waiting command sees the blocks the first one's split inserted: it takes the vintage's
        # chain lock before it reads any block
        assert "refused" not in outcome, outcome.get("refused")
        assert "result" in outcome, outcome
        assert outcome["result"].quantity_kg == second.asked_kg
        second.result = outcome["result"]
        first = Op(worker=0, kind="retire", source=0, target=None, cmd=first_cmd)
        with unit_of_work(factory) as session:
            stored = session.get(IdempotencyRecord, (ledger.orgs[0].member.id, "first"))
            assert stored is not None
            first.result = OperationResult.model_validate(stored.response)
        assert_sound(factory, ledger, [first, second])
    finally:
        engine.dispose()


def _until_waiting_on_a_lock(backend: Backend, engine: Engine) -> None:
    """Return once another session of this database waits on a lock (PostgreSQL), or after a pause
    long enough for the waiter to queue behind ``BEGIN IMMEDIATE`` (SQLite)."""
    if backend.name == "sqlite":
        time.sleep(0.3)
        return
    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' "
                    "AND (query ILIKE '%FOR UPDATE%' OR query ILIKE '%registry_retire(%')"
                )
            )
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second command never waited on the first one's lock")


# --- checks taken while others commit (PostgreSQL: READ COMMITTED, one snapshot per statement) ------


@pytest.fixture
def postgres_backend() -> Iterator[Backend]:
    """PostgreSQL only: on SQLite ``BEGIN IMMEDIATE`` keeps writers out while a check reads."""
    with _postgres_backend() as postgres:
        yield postgres


def _commit_between_statements(engine: Engine, marker: str, action: Callable[[], None]) -> list[str]:
    """Run ``action`` (which commits on another connection) just before the first statement on
    ``engine`` that contains ``marker``; the statements seen, for the assertion message."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split("\n", 1)[0][:80])
        if marker in statement and not any(marker in s for s in seen[:-1]):
            action()

    return seen


def test_audit_verify_while_a_command_commits_finds_no_problem(postgres_backend: Backend) -> None:
    """``journal.verify`` reads the chain heads, then the entries. A retirement committing between
    the two reads is not tampering: a verification must not report it."""
    writer_engine = make_engine(postgres_backend.settings)
    checker_engine = make_engine(postgres_backend.settings)
    writer = make_session_factory(writer_engine)
    try:
        ledger = set_up(writer)
        op = Op(
            worker=0,
            kind="retire",
            source=0,
            target=None,
            cmd=RetireCmd(
                units=Units(project_code=ledger.project_code, vintage=VINTAGE, quantity_kg=10),
                beneficiary="Guest",
                reason="committed mid-audit",
                idempotency_key="mid-audit",
            ),
        )

        def retire() -> None:
            op.result = execute(writer, ledger, op)

        seen = _commit_between_statements(checker_engine, "FROM journal", retire)
        with unit_of_work(make_session_factory(checker_engine)) as session:
            audit = journal.verify(session=session)
        assert op.result is not None, f"the retirement never ran; statements: {seen}"
        assert audit.ok, [p.model_dump() for p in audit.problems]
        with unit_of_work(writer) as session:
            assert journal.verify(session=session).ok
    finally:
        writer_engine.dispose()
        checker_engine.dispose()


def test_registry_check_while_an_issuance_commits_finds_no_problem(postgres_backend: Backend) -> None:
    """``service.check`` sums the issuances, then the blocks. An issuance committing between the two
    reads does not break conservation: a check must not report it."""
    writer_engine = make_engine(postgres_backend.settings)
    checker_engine = make_engine(postgres_backend.settings)
    writer = make_session_factory(writer_engine)
    try:
        ledger = set_up(writer)
        with unit_of_work(writer) as session:  # a later monitoring period: periods are verified once
            verification = _verification(session, ledger.project_code, 2_000, period=LATER_PERIOD)
        issued: list[OperationResult] = []

        def issue() -> None:
            with unit_of_work(writer) as session:
                issued.append(
                    service.issue(
                        session=session,
                        clock=CLOCK,
                        actor=SYSTEM,
                        cmd=IssueCmd(verification_id=verification, idempotency_key="mid-check"),
                    )
                )

        seen = _commit_between_statements(checker_engine, "FROM blocks", issue)
        with unit_of_work(make_session_factory(checker_engine)) as session:
            report = service.check(session=session)
        assert issued, f"the issuance never ran; statements: {seen}"
        assert report.ok, report.problems
        with unit_of_work(writer) as session:
            assert service.check(session=session).ok
    finally:
        writer_engine.dispose()
        checker_engine.dispose()
