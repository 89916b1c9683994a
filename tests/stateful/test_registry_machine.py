"""The registry against a model: a Hypothesis state machine drives the real services on a real
database (a fresh migrated SQLite file per test case; PostgreSQL too when configured), one unit of
work per command, and after every step checks conservation, non-overlapping blocks, the journal
and that every unit is where a simple model says it is.

The model keeps, for every unit number, its project, vintage, organisation, state and reservation.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.migrations import upgrade
from neutralize.registry import journal, service
from neutralize.registry.domain import ProjectStatus, Span, parse_serial, serial
from neutralize.registry.models import Account, Block, Project
from neutralize.registry.schemas import (
    CancelCmd,
    ExportCmd,
    IssueCmd,
    OperationResult,
    OrganisationCreate,
    PostCmd,
    ProjectCreate,
    ProjectTransition,
    ReservationCmd,
    ReserveCmd,
    RetireCmd,
    TransferCmd,
    Units,
    VerificationCreate,
    VerificationPublic,
)

POSTGRES_URL = os.environ.get("NEUTRALIZE_TEST_POSTGRES_URL")
STRESS = os.environ.get("HYPOTHESIS_PROFILE") == "stress"
MACHINE_SETTINGS = settings(
    max_examples=settings().max_examples if STRESS else 25, stateful_step_count=20, deadline=None
)

ADMIN = SYSTEM
VERIFIER = Actor(id="machine-verifier", role=Role.VERIFIER)
ROLES = (Role.PROJECT_OWNER, Role.ORGANISER, Role.MEMBER)  # org 0 owns the projects
PROJECTS = (("MACHINE-TRANSIT", False, 0), ("MACHINE-FOREST", True, 100))  # code, nature-based, buffer ‰
VINTAGES = (2024, 2025)
RESERVATIONS = ("order-a", "order-b")
EXPECTED_REFUSALS = {ErrorCode.INSUFFICIENT_UNITS, ErrorCode.UNITS_NOT_AVAILABLE, ErrorCode.INVALID_REQUEST}

orgs = st.integers(0, len(ROLES) - 1)
projects = st.integers(0, len(PROJECTS) - 1)
vintages = st.sampled_from(VINTAGES)
quantities = st.integers(1, 600)


class TickingClock:
    """A UTC clock one millisecond later at every reading: entries get distinct times."""

    def __init__(self) -> None:
        self._at = datetime(2026, 11, 25, 9, tzinfo=UTC)

    def now(self) -> datetime:
        self._at += timedelta(milliseconds=1)
        return self._at


@dataclass(frozen=True)
class Unit:
    """What the model knows about one kilogram."""

    project: int
    vintage: int
    org: int
    state: str
    reservation: str | None = None


@dataclass(frozen=True)
class Done:
    """A command that succeeded: enough to send it again."""

    run: Callable[..., OperationResult]
    actor: Actor
    cmd: BaseModel
    result: OperationResult


# --- databases ------------------------------------------------------------------------------------


class Backend:
    """Gives each test case an empty, migrated database."""

    def fresh(self) -> Engine:
        raise NotImplementedError

    def done(self, engine: Engine) -> None:
        engine.dispose()


class SQLiteFiles(Backend):
    def __init__(self) -> None:
        self._dirs: dict[int, Path] = {}

    def fresh(self) -> Engine:
        directory = Path(tempfile.mkdtemp(prefix="neutralize-machine-"))
        settings_ = Settings(environment="test", database_url=f"sqlite:///{directory / 'registry.db'}")
        upgrade(settings_)
        engine = make_engine(settings_)
        self._dirs[id(engine)] = directory
        return engine

    def done(self, engine: Engine) -> None:
        engine.dispose()
        shutil.rmtree(self._dirs.pop(id(engine)), ignore_errors=True)


class PostgresSchema(Backend):
    """One schema migrated once; every test case starts from truncated tables."""

    def __init__(self, url: str) -> None:
        schema = f"neutralize_machine_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        separator = "&" if "?" in url else "?"
        self.settings = Settings(
            environment="test", database_url=f"{url}{separator}options=-csearch_path%3D{schema}"
        )
        upgrade(self.settings)
        self.engine = make_engine(self.settings)
        with self.engine.connect() as connection:
            self._tables = [
                name
                for (name,) in connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
                if name != "alembic_version"
            ]

    def fresh(self) -> Engine:
        with self.engine.begin() as connection:
            # TRUNCATE fires no row triggers: the journal's insert-only guard stays in place
            connection.execute(text(f"TRUNCATE TABLE {', '.join(self._tables)} RESTART IDENTITY CASCADE"))
        return self.engine

    def done(self, engine: Engine) -> None:
        pass  # the engine serves every test case


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield SQLiteFiles()
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL suite skipped: NEUTRALIZE_TEST_POSTGRES_URL is not set")
    postgres = PostgresSchema(POSTGRES_URL)
    yield postgres
    postgres.engine.dispose()


# --- the machine ----------------------------------------------------------------------------------


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.engine = backend.fresh()
        self.sessions = make_session_factory(self.engine)
        self.clock = TickingClock()
        self.keys = itertools.count(1)
        self.units: dict[int, Unit] = {}  # unit number -> what it is now
        self.next_unit = 1
        self.history: list[Done] = []
        self.verifications = 0
        self.verified: dict[tuple[int, int, date], int] = {}  # (project, vintage, day) -> kg verified
        with unit_of_work(self.sessions) as session:
            self.org_ids = [
                service.create_organisation(
                    session=session, clock=self.clock, actor=ADMIN, cmd=OrganisationCreate(name=f"Org {i}")
                ).id
                for i in range(len(ROLES))
            ]
            self.actors = [
                Actor(id=f"actor-{i}", role=role, organisation_id=org_id)
                for i, (role, org_id) in enumerate(zip(ROLES, self.org_ids, strict=True))
            ]
            self.accounts = [
                {
                    a.kind: a.id
                    for a in service.organisation_public(session=session, organisation_id=o).accounts
                }
                for o in self.org_ids
            ]
            for code, nature_based, buffer in PROJECTS:
                self._register(session, code, nature_based, buffer)

    def teardown(self) -> None:
        self.backend.done(self.engine)

    def _register(self, session: Session, code: str, nature_based: bool, buffer: int) -> None:
        service.create_project(
            session=session,
            clock=self.clock,
            actor=self.actors[0],
            cmd=ProjectCreate(
                code=code,
                name=code.title(),
                standard="CDCER",
                methodology="CDCER-M",
                methodology_version="1.0",
                project_type="forestry" if nature_based else "transport",
                credit_type="removal" if nature_based else "avoidance",
                nature_based=nature_based,
                country="CN",
                owner_organisation_id=self.org_ids[0],
                buffer_permille=buffer,
            ),
        )
        for status, actor in (("submitted", self.actors[0]), ("validated", VERIFIER), ("registered", ADMIN)):
            service.transition_project(
                session=session,
                clock=self.clock,
                actor=actor,
                project_code=code,
                cmd=ProjectTransition(to_status=status),
            )
        assert service.get_project(session=session, code=code).status == ProjectStatus.REGISTERED.value

    # --- running commands -----------------------------------------------------------------------

    def key(self) -> str:
        return f"key-{next(self.keys)}"

    def run(
        self, command: Callable[..., OperationResult], actor: Actor, cmd: BaseModel, refusal: ErrorCode | None
    ) -> OperationResult | None:
        """Run one command in its own unit of work; the model said whether it is refused, and how."""
        try:
            with unit_of_work(self.sessions) as session:
                result = command(session=session, clock=self.clock, actor=actor, cmd=cmd)
        except DomainError as error:
            assert error.code in EXPECTED_REFUSALS, f"{error.code}: {error.message}"
            assert refusal is error.code, f"model expected {refusal}, got {error.code}: {error.message}"
            return None
        assert refusal is None, f"model expected {refusal}, the command succeeded: {result}"
        self.history.append(Done(command, actor, cmd, result))
        return result

    def moved_units(self, result: OperationResult) -> list[int]:
        numbers = []
        for block in result.blocks:
            span = parse_serial(block.serial)[2]
            numbers += range(span.start, span.end + 1)
        return numbers

    def apply(self, result: OperationResult, expected: list[int], **change: Any) -> None:
        """Check the command moved exactly the expected units, lowest first, then update the model."""
        assert self.moved_units(result) == sorted(expected)
        assert result.quantity_kg == len(expected)
        for number in expected:
            self.units[number] = replace(self.units[number], **change)

    # --- choosing units, and what the model expects of them -----------------------------------------

    def held(self, org: int, project: int, vintage: int) -> list[int]:
        return sorted(
            n
            for n, u in self.units.items()
            if (u.org, u.project, u.vintage, u.state) == (org, project, vintage, "held")
        )

    def holder(self, data: st.DataObject) -> int:
        """Mostly an organisation that holds units (else most commands would just be refused)."""
        holders = sorted({u.org for u in self.units.values() if u.state == "held"})
        if holders and data.draw(st.integers(0, 3), label="pick a holder") > 0:
            return data.draw(st.sampled_from(holders), label="org")
        return data.draw(orgs, label="org")

    def reservation(self, data: st.DataObject) -> tuple[int, str]:
        """Mostly an existing reservation, as (organisation, name)."""
        existing = sorted({(u.org, u.reservation) for u in self.units.values() if u.reservation is not None})
        if existing and data.draw(st.integers(0, 3), label="pick a reservation") > 0:
            org, name = data.draw(st.sampled_from(existing), label="org, reservation")
            assert name is not None
            return org, name
        return data.draw(orgs, label="org"), data.draw(st.sampled_from(RESERVATIONS), label="reservation")

    def choose(self, data: st.DataObject, org: int) -> tuple[Units, list[int], ErrorCode | None]:
        """Units for a command by ``org``: by quantity, by a serial range inside what it holds, or by
        any serial range; and the units the model expects to move, or the refusal it expects."""
        holds = sorted(
            {(u.project, u.vintage) for u in self.units.values() if u.org == org and u.state == "held"}
        )
        if holds and data.draw(st.integers(0, 3), label="of a vintage it holds") > 0:
            project, vintage = data.draw(st.sampled_from(holds), label="project, vintage")
        else:
            project, vintage = data.draw(projects, label="project"), data.draw(vintages, label="vintage")
        code = PROJECTS[project][0]
        held = self.held(org, project, vintage)
        how = data.draw(
            st.sampled_from(["quantity", "own range", "quantity", "own range", "any range"]), label="how"
        )
        if how == "quantity":
            kg = data.draw(st.integers(1, len(held) + 20) if held else quantities, label="kg")
            units = Units(project_code=code, vintage=vintage, quantity_kg=kg)
            return units, held[:kg], None if len(held) >= kg else ErrorCode.INSUFFICIENT_UNITS
        if how == "own range" and held:
            start = data.draw(st.sampled_from(held), label="start")
            run_end = start
            while run_end + 1 in self.units and self.units[run_end + 1] == self.units[start]:
                run_end += 1
            end = data.draw(st.integers(start, run_end + 3), label="end")  # now and then past the run
        else:
            start = data.draw(st.integers(1, self.next_unit + 5), label="start")
            end = data.draw(st.integers(start, start + 300), label="end")
        wanted = list(range(start, end + 1))
        ok = all(self.units.get(n) == Unit(project, vintage, org, "held") for n in wanted)
        units = Units(serial=serial(code, vintage, Span(start, end)))
        return units, wanted, None if ok else ErrorCode.UNITS_NOT_AVAILABLE

    def reserved(self, org: int, reservation: str) -> tuple[list[int], ErrorCode | None]:
        numbers = sorted(
            n
            for n, u in self.units.items()
            if u.state == "reserved" and (u.org, u.reservation) == (org, reservation)
        )
        if not numbers:
            return numbers, ErrorCode.UNITS_NOT_AVAILABLE
        if len({(self.units[n].project, self.units[n].vintage) for n in numbers}) > 1:
            return numbers, ErrorCode.INVALID_REQUEST
        return numbers, None

    # --- rules ------------------------------------------------------------------------------------

    @initialize(vintage=vintages, kg=st.integers(1, 400))
    def issue_the_first_vintage(self, vintage: int, kg: int) -> None:
        self.issue(0, vintage, kg)

    def verify(self, project: int, period: date, kg: int) -> VerificationPublic:
        """A verification of one day's reductions (a monitoring period is verified once)."""
        self.verifications += 1
        with unit_of_work(self.sessions) as session:
            return service.record_verification(
                session=session,
                clock=self.clock,
                actor=VERIFIER,
                cmd=VerificationCreate(
                    project_code=PROJECTS[project][0],
                    verifier="Machine Verification Co.",
                    period_start=period,
                    period_end=period,
                    verified_kg=kg,
                    report_url=f"https://example.org/report/{self.verifications}",
                ),
            )

    @rule(project=projects, vintage=vintages, kg=st.integers(1, 400))
    def issue(self, project: int, vintage: int, kg: int) -> None:
        _, _, buffer = PROJECTS[project]
        # each issuance of a project vintage verifies the next day of that year
        days = sum(1 for key in self.verified if key[:2] == (project, vintage))
        period = date(vintage, 1, 1) + timedelta(days=days)
        verification = self.verify(project, period, kg)
        self.verified[(project, vintage, period)] = kg
        cmd = IssueCmd(verification_id=verification.id, idempotency_key=self.key())
        result = self.run(service.issue, ADMIN, cmd, None)
        assert result is not None
        buffered = -(-kg * buffer // 1000)
        start = self.next_unit
        for n in range(start, start + kg):
            state = "held" if n < start + kg - buffered else "buffer"
            self.units[n] = Unit(project=project, vintage=vintage, org=0, state=state)
        self.next_unit += kg
        assert self.moved_units(result) == list(range(start, start + kg))
        assert [(b.state, b.kg) for b in result.blocks] == [
            (s, k) for s, k in (("held", kg - buffered), ("buffer", buffered)) if k
        ]

    @precondition(lambda self: self.verified)
    @rule(data=st.data())
    def verify_a_period_again(self, data: st.DataObject) -> None:
        """A period already verified is refused (its reductions would be issued twice)."""
        project, _, period = data.draw(st.sampled_from(sorted(self.verified)), label="verified period")
        with pytest.raises(DomainError) as caught:
            self.verify(project, period, self.verified[(project, period.year, period)])
        assert caught.value.code is ErrorCode.DUPLICATE, caught.value.message

    @rule(receiver=orgs, data=st.data())
    def transfer(self, receiver: int, data: st.DataObject) -> None:
        giver = self.holder(data)
        units, expected, refusal = self.choose(data, giver)
        if receiver == giver:  # a transfer goes to another organisation
            refusal = ErrorCode.INVALID_REQUEST
        to = self.accounts[receiver]["holding"]
        cmd = TransferCmd(units=units, to_account_id=to, idempotency_key=self.key())
        result = self.run(service.transfer, self.actors[giver], cmd, refusal)
        if result is not None:
            self.apply(result, expected, org=receiver)

    @rule(data=st.data())
    def retire(self, data: st.DataObject) -> None:
        org = self.holder(data)
        units, expected, refusal = self.choose(data, org)
        cmd = RetireCmd(units=units, beneficiary="张三", reason="machine", idempotency_key=self.key())
        result = self.run(service.retire, self.actors[org], cmd, refusal)
        if result is not None:
            assert result.retirement_id is not None
            self.apply(result, expected, state="retired")

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        org = self.holder(data)
        units, expected, refusal = self.choose(data, org)
        cmd = CancelCmd(units=units, reason="issued in error", idempotency_key=self.key())
        result = self.run(service.cancel, self.actors[org], cmd, refusal)
        if result is not None:
            self.apply(result, expected, state="cancelled")

    @rule(data=st.data())
    def export(self, data: st.DataObject) -> None:
        org = self.holder(data)
        units, expected, refusal = self.choose(data, org)
        cmd = ExportCmd(units=units, destination_registry="VCS", reference="R-1", idempotency_key=self.key())
        result = self.run(service.export, self.actors[org], cmd, refusal)
        if result is not None:
            assert {b.destination for b in result.blocks} == {"VCS: R-1"}
            self.apply(result, expected, state="exported")

    @rule(data=st.data())
    def reservations(self, data: st.DataObject) -> None:
        """Reserve units for an order, or release or post a reservation. One rule, not three: the
        state machine switches whole rules off at random, and release and post need a reserve."""
        steps = ["reserve", "release", "post"]
        if not any(u.reservation for u in self.units.values()):
            steps = ["reserve", "reserve", "reserve", "release", "post"]  # mostly make one first
        step = data.draw(st.sampled_from(steps), label="reservation step")
        {"reserve": self.reserve, "release": self.release, "post": self.post}[step](data)

    def reserve(self, data: st.DataObject) -> None:
        org = self.holder(data)
        reservation = data.draw(st.sampled_from(RESERVATIONS), label="reservation")
        units, expected, refusal = self.choose(data, org)
        named = parse_serial(units.serial)[:2] if units.serial else (units.project_code, units.vintage)
        if any(
            u.state == "reserved"
            and (u.org, u.reservation) == (org, reservation)
            and (PROJECTS[u.project][0], u.vintage) != named
            for u in self.units.values()
        ):  # a reservation spans one project vintage
            refusal = ErrorCode.INVALID_REQUEST
        cmd = ReserveCmd(units=units, reservation=reservation, idempotency_key=self.key())
        result = self.run(service.reserve, self.actors[org], cmd, refusal)
        if result is not None:
            self.apply(result, expected, state="reserved", reservation=reservation)

    def release(self, data: st.DataObject) -> None:
        org, reservation = self.reservation(data)
        expected, refusal = self.reserved(org, reservation)
        cmd = ReservationCmd(reservation=reservation, idempotency_key=self.key())
        result = self.run(service.release, self.actors[org], cmd, refusal)
        if result is not None:
            self.apply(result, expected, state="held", reservation=None)

    def post(self, data: st.DataObject) -> None:
        org, reservation = self.reservation(data)
        expected, refusal = self.reserved(org, reservation)
        cmd = PostCmd(
            reservation=reservation,
            idempotency_key=self.key(),
            beneficiary="Order buyer",
            reason="order paid",
        )
        result = self.run(service.post, self.actors[org], cmd, refusal)
        if result is not None:
            assert result.retirement_id is not None
            self.apply(result, expected, state="retired", reservation=None)

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A retry with the same key and command gets the first result and changes nothing."""
        done = data.draw(st.sampled_from(self.history), label="earlier command")
        with unit_of_work(self.sessions) as session:
            again = done.run(session=session, clock=self.clock, actor=done.actor, cmd=done.cmd)
        assert again == done.result

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def reuse_key(self, data: st.DataObject) -> None:
        """The same key with another command is refused and changes nothing."""
        done = data.draw(st.sampled_from(self.history), label="earlier command")
        key = done.cmd.idempotency_key  # type: ignore[attr-defined]
        other: BaseModel
        if isinstance(done.cmd, IssueCmd):
            command, other = service.issue, IssueCmd(verification_id="ver_other", idempotency_key=key)
        else:
            units = Units(project_code=PROJECTS[0][0], vintage=VINTAGES[0], quantity_kg=10**9)
            command, other = service.cancel, CancelCmd(units=units, reason="other", idempotency_key=key)
        try:
            with unit_of_work(self.sessions) as session:
                command(session=session, clock=self.clock, actor=done.actor, cmd=other)
        except DomainError as error:
            assert error.code is ErrorCode.IDEMPOTENCY_CONFLICT, f"{error.code}: {error.message}"
        else:
            raise AssertionError("the same key with another command was accepted")

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def books_balance_and_match_the_model(self) -> None:
        with self.sessions() as session:
            report = service.check(session=session)
            assert report.ok, report.problems
            expected: dict[tuple[str, int], Counter[str]] = {}
            for unit in self.units.values():
                expected.setdefault((PROJECTS[unit.project][0], unit.vintage), Counter())[unit.state] += 1
            found = {
                (v.project_code, v.vintage): Counter({s: kg for s, kg in v.by_state_kg.items() if kg})
                for v in report.vintages
            }
            assert found == expected
            assert all(
                v.issued_kg == sum(found[(v.project_code, v.vintage)].values()) for v in report.vintages
            )
            for org, org_id in enumerate(self.org_ids):
                by_state: Counter[str] = Counter()
                for block in service.holdings(session=session, organisation_id=org_id):
                    by_state[block.state] += block.kg
                assert by_state == Counter(u.state for u in self.units.values() if u.org == org)

    @invariant()
    def blocks_never_overlap_and_every_unit_is_where_the_model_says(self) -> None:
        org_of = {org_id: i for i, org_id in enumerate(self.org_ids)}
        with self.sessions() as session:
            code_of = dict(session.execute(select(Project.id, Project.code)).all())
            project_of = {code: i for i, (code, _, _) in enumerate(PROJECTS)}
            rows = session.execute(
                select(Block, Account.organisation_id).join(Account).order_by(Block.span_start)
            ).all()
            seen: dict[int, Unit] = {}
            previous_end = 0
            for block, org_id in rows:
                assert block.span_start > previous_end, (
                    f"block {block.id} shares units with the one before it"
                )
                previous_end = block.span_end
                unit = Unit(
                    project_of[code_of[block.project_id]],
                    block.vintage,
                    org_of[org_id],
                    block.state,
                    block.reservation,
                )
                seen.update(dict.fromkeys(range(block.span_start, block.span_end + 1), unit))
            assert seen == self.units

    @invariant()
    def the_journal_verifies(self) -> None:
        with self.sessions() as session:
            report = journal.verify(session=session)
            assert report.ok, report.problems


def test_the_registry_keeps_its_books_whatever_is_done_to_it(backend: Backend) -> None:
    run_state_machine_as_test(lambda: RegistryMachine(backend), settings=MACHINE_SETTINGS)
