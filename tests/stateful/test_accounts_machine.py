"""Carbon accounts against a model: a Hypothesis state machine takes in records, re-sends them,
redeems points and bundles days of verified grams, on a real (SQLite) database, and after every step
checks that no gram is counted twice: each account's totals equal its history, bundled grams never
exceed credited ones (per account and per entry), points never go negative, and a re-sent record
changes nothing."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.accounts import bundles, intake
from neutralize.accounts import service as accounts
from neutralize.accounts.ingest import records_frame
from neutralize.accounts.models import AccountEntry, BundleTake, CarbonAccount
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.migrations import upgrade
from neutralize.registry import service as registry
from neutralize.registry.domain import ProjectStatus
from neutralize.registry.schemas import Labels, OrganisationCreate, ProjectCreate, ProjectTransition

CLOCK = FixedClock(datetime(2026, 6, 1, tzinfo=UTC))
ACCOUNTS = ("a", "b", "c")
STRESS = os.environ.get("HYPOTHESIS_PROFILE") == "stress"
MACHINE_SETTINGS = settings(max_examples=200 if STRESS else 10, stateful_step_count=25, deadline=None)
EXPECTED = {ErrorCode.INSUFFICIENT_POINTS, ErrorCode.INSUFFICIENT_UNITS, ErrorCode.IDEMPOTENCY_CONFLICT}


class AccountsMachine(RuleBasedStateMachine):
    engine: Engine

    def __init__(self) -> None:
        super().__init__()
        self.connection = self.engine.connect()
        self.transaction = self.connection.begin()
        self.session = Session(bind=self.connection, join_transaction_mode="create_savepoint")
        self.sent: dict[str, dict[str, object]] = {}  # external id -> the record first sent
        self.redeemed: dict[str, int] = {}  # idempotency key -> points it spent
        self.bundled_days: set[int] = set()
        self.numbers = itertools.count(1)

    @initialize()
    def partner_project_and_benefit(self) -> None:
        org = registry.create_organisation(
            session=self.session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name="Machine metro")
        )
        self.partner = Actor(id="machine-key", role=Role.INTEGRATOR, organisation_id=org.id)
        owner = Actor(id="machine-owner", role=Role.PROJECT_OWNER, organisation_id=org.id)
        project = registry.create_project(
            session=self.session, clock=CLOCK, actor=owner,
            cmd=ProjectCreate(code="MACHINE-RIDES", name="Riders", standard="CDCER", methodology="transit",
                              methodology_version="1", project_type="transport", credit_type="avoidance",
                              nature_based=False, country="CN", owner_organisation_id=org.id,
                              labels=Labels(carbon_inclusive=True)),
        )  # fmt: skip
        verifier = Actor(id="v", role=Role.VERIFIER)
        steps = (
            (ProjectStatus.SUBMITTED, owner),
            (ProjectStatus.VALIDATED, verifier),
            (ProjectStatus.REGISTERED, SYSTEM),
        )
        for to, actor in steps:
            registry.transition_project(
                session=self.session,
                clock=CLOCK,
                actor=actor,
                project_code=project.code,
                cmd=ProjectTransition(to_status=to.value),
            )
        offer = accounts.BenefitCreate(title="A day pass", points=7)
        self.benefit = accounts.publish_benefit(
            session=self.session, clock=CLOCK, actor=self.partner, cmd=offer
        ).id

    @rule(account=st.sampled_from(ACCOUNTS), day=st.integers(1, 6), hour=st.integers(6, 21),
          km=st.integers(1, 60), resend=st.booleans())  # fmt: skip
    def ride(self, account: str, day: int, hour: int, km: int, resend: bool) -> None:
        if resend and self.sent:
            record = next(iter(self.sent.values()))
        else:
            start = f"2026-03-{day:02d}T{hour:02d}:00:00+08:00"
            record = {
                "account_ref": account,
                "external_id": f"r-{next(self.numbers)}",
                "behaviour": "public_transport",
                "mode": "metro",
                "distance_km": km,
                "start_time": start,
                "end_time": f"2026-03-{day:02d}T{hour:02d}:45:00+08:00",
            }
        before = self._credited()
        report = intake.ingest(
            session=self.session, clock=CLOCK, actor=self.partner, raw=records_frame([record])
        )
        if str(record["external_id"]) in self.sent:
            assert report.already_received == 1 and self._credited() == before  # re-sending changes nothing
        else:
            self.sent[str(record["external_id"])] = record
            assert self._credited() == before + report.grams

    @rule(account=st.sampled_from(ACCOUNTS), key=st.sampled_from(["k1", "k2", "k3", "k4"]))
    def redeem(self, account: str, key: str) -> None:
        found = self.session.scalars(select(CarbonAccount).where(CarbonAccount.reference == account)).first()
        if found is None:
            return
        try:
            accounts.redeem(session=self.session, clock=CLOCK, actor=self.partner, account_id=found.id,
                            benefit_id=self.benefit, idempotency_key=f"{account}-{key}")  # fmt: skip
            self.redeemed[f"{account}-{key}"] = 7
        except DomainError as refused:
            assert refused.code in EXPECTED

    @rule(day=st.integers(1, 6))
    def bundle_a_day(self, day: int) -> None:
        if day in self.bundled_days:
            return
        cmd = bundles.BundleCreate(project_code="MACHINE-RIDES", period_start=date(2026, 3, day),
                                   period_end=date(2026, 3, day), verifier="Machine verifier",
                                   report_sha256=f"{day:02d}" * 32)  # fmt: skip
        try:
            made = bundles.bundle(session=self.session, clock=CLOCK, actor=SYSTEM, cmd=cmd)
        except DomainError as refused:
            assert refused.code in EXPECTED
            return
        self.bundled_days.add(day)
        assert made.grams_taken == made.kg * 1_000

    @invariant()
    def no_gram_counted_twice(self) -> None:
        assert accounts.check(session=self.session) == []
        for row in self.session.scalars(select(CarbonAccount)):
            self.session.refresh(row)
            assert 0 <= row.bundled_g <= row.credited_g and row.points_spent * 100 <= row.credited_g
        spent = sum(row.points_spent for row in self.session.scalars(select(CarbonAccount)))
        assert spent == sum(self.redeemed.values())
        grams = self.session.scalar(select(func.coalesce(func.sum(AccountEntry.grams), 0)))
        taken = self.session.scalar(select(func.coalesce(func.sum(BundleTake.grams), 0)))
        assert taken is not None and grams is not None and taken <= grams and taken % 1_000 == 0

    def _credited(self) -> int:
        return int(self.session.scalar(select(func.coalesce(func.sum(CarbonAccount.credited_g), 0))) or 0)

    def teardown(self) -> None:
        self.session.close()
        self.transaction.rollback()
        self.connection.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("accounts-machine") / "machine.db"
    settings_ = Settings(environment="test", database_url=f"sqlite:///{path}")
    upgrade(settings_)
    made = make_engine(settings_)
    yield made
    made.dispose()


def test_no_gram_is_counted_twice(engine: Engine) -> None:
    AccountsMachine.engine = engine
    run_state_machine_as_test(AccountsMachine, settings=MACHINE_SETTINGS)
