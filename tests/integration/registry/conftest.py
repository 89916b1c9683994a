"""Factories for registry tests: organisations, projects walked through their lifecycle,
verifications and issuances, all made through the real services on the test's session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.clock import FixedClock
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import journal, service
from neutralize.registry.domain import AccountKind, ProjectStatus, Span, parse_serial
from neutralize.registry.models import Issuance
from neutralize.registry.schemas import (
    BlockPublic,
    IssueCmd,
    OperationResult,
    OrganisationCreate,
    ProjectCreate,
    ProjectPublic,
    ProjectTransition,
    Units,
    VerificationCreate,
    VerificationPublic,
)

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
ADMIN = SYSTEM
VERIFIER = Actor(id="verifier-1", role=Role.VERIFIER)
PERIOD_2025 = (date(2025, 1, 1), date(2025, 12, 31))  # ended before the clock: vintage 2025
VINTAGE = 2025
REPORT_SHA256 = "ab" * 32


@dataclass(frozen=True)
class Org:
    """An organisation, its accounts by kind, and actors acting for it."""

    id: str
    name: str
    accounts: dict[str, str]
    owner: Actor  # a project_owner key of this organisation
    member: Actor  # a member key of this organisation

    def account(self, kind: AccountKind) -> str:
        return self.accounts[kind.value]

    @property
    def holding(self) -> str:
        return self.account(AccountKind.HOLDING)


class Registry:
    """Row factories bound to one session; every row is made through the services."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.clock = CLOCK
        self._numbers = itertools.count(1)

    def number(self) -> int:
        return next(self._numbers)

    def key(self, prefix: str = "key") -> str:
        return f"{prefix}-{self.number()}"

    def organisation(self, name: str | None = None) -> Org:
        n = self.number()
        created = service.create_organisation(
            session=self.session,
            clock=self.clock,
            actor=ADMIN,
            cmd=OrganisationCreate(name=name or f"Organisation {n}"),
        )
        return Org(
            id=created.id,
            name=created.name,
            accounts={a.kind: a.id for a in created.accounts},
            owner=Actor(id=f"owner-{n}", role=Role.PROJECT_OWNER, organisation_id=created.id),
            member=Actor(id=f"member-{n}", role=Role.MEMBER, organisation_id=created.id),
        )

    def draft_project(
        self,
        owner: Org,
        *,
        code: str | None = None,
        nature_based: bool = False,
        buffer_permille: int = 0,
    ) -> ProjectPublic:
        return service.create_project(
            session=self.session,
            clock=self.clock,
            actor=owner.owner,
            cmd=ProjectCreate(
                code=code or f"CDCER-{self.number():04d}",
                name="Chengdu metro riders" if not nature_based else "Longquan hills forest",
                standard="CDCER",
                methodology="CDCER-TRANSIT" if not nature_based else "CDCER-FOREST",
                methodology_version="1.0",
                project_type="transport" if not nature_based else "afforestation",
                credit_type="avoidance" if not nature_based else "removal",
                nature_based=nature_based,
                country="CN",
                region="CN-SC",
                owner_organisation_id=owner.id,
                buffer_permille=buffer_permille,
            ),
        )

    def move(self, project: ProjectPublic, to: ProjectStatus, actor: Actor) -> ProjectPublic:
        return service.transition_project(
            session=self.session,
            clock=self.clock,
            actor=actor,
            project_code=project.code,
            cmd=ProjectTransition(to_status=to.value),
        )

    def project(
        self,
        owner: Org,
        *,
        status: ProjectStatus = ProjectStatus.REGISTERED,
        nature_based: bool = False,
        buffer_permille: int = 0,
    ) -> ProjectPublic:
        """A project walked as far as ``status``: draft → submitted (its owner) → validated
        (a verifier) → registered (an admin)."""
        project = self.draft_project(owner, nature_based=nature_based, buffer_permille=buffer_permille)
        path = [
            (ProjectStatus.SUBMITTED, owner.owner),
            (ProjectStatus.VALIDATED, VERIFIER),
            (ProjectStatus.REGISTERED, ADMIN),
        ]
        for wanted, actor in path:
            if project.status == status.value:
                break
            project = self.move(project, wanted, actor)
        assert project.status == status.value
        return project

    def verification(
        self, project: ProjectPublic, *, kg: int = 10_000, period: tuple[date, date] = PERIOD_2025
    ) -> VerificationPublic:
        return service.record_verification(
            session=self.session,
            clock=self.clock,
            actor=VERIFIER,
            cmd=VerificationCreate(
                project_code=project.code,
                verifier="Sichuan Verification Co.",
                period_start=period[0],
                period_end=period[1],
                verified_kg=kg,
                report_sha256=REPORT_SHA256,
            ),
        )

    def issue(self, verification_id: str, *, key: str | None = None, actor: Actor = ADMIN) -> OperationResult:
        return service.issue(
            session=self.session,
            clock=self.clock,
            actor=actor,
            cmd=IssueCmd(verification_id=verification_id, idempotency_key=key or self.key("issue")),
        )

    def issuance(
        self, project: ProjectPublic, *, kg: int = 10_000, period: tuple[date, date] = PERIOD_2025
    ) -> OperationResult:
        return self.issue(self.verification(project, kg=kg, period=period).id)

    def holdings(self, org: Org) -> list[BlockPublic]:
        return service.holdings(session=self.session, organisation_id=org.id)

    def kg_by_state(self, org: Org) -> dict[str, int]:
        totals: dict[str, int] = {}
        for block in self.holdings(org):
            totals[block.state] = totals.get(block.state, 0) + block.kg
        return totals

    def assert_sound(self) -> None:
        """Conservation and structure hold, every journal chain verifies, and every issued kg of
        every issuance is found in exactly one block."""
        report = service.check(session=self.session)
        assert report.ok, report.problems
        assert all(v.balanced for v in report.vintages)
        audit = journal.verify(session=self.session)
        assert audit.ok, audit.problems
        for issuance in self.session.scalars(select(Issuance)):
            assert_accounted_for(self.session, issuance.serial, issuance.quantity_kg)


def verra_serial(project_id: int, first: int, last: int, year: int = 2020) -> str:
    """A Verra serial of ``project_id`` numbering units ``first`` to ``last`` of vintage ``year``."""
    return f"19385-{first}-{last}-VCS-VCU-1507-VER-ET-14-{project_id}-0101{year}-3112{year}-0"


def units(project: ProjectPublic, kg: int, vintage: int = VINTAGE) -> Units:
    return Units(project_code=project.code, vintage=vintage, quantity_kg=kg)


def by_serial(text: str) -> Units:
    return Units(serial=text)


def span_of(text: str) -> Span:
    return parse_serial(text)[2]


def spans(blocks: list[BlockPublic]) -> list[Span]:
    return [span_of(b.serial) for b in blocks]


def assert_accounted_for(session: Session, serial_text: str, kg: int) -> list[BlockPublic]:
    """``where_did_it_go`` covers the serial range exactly: contiguous blocks, each kg once."""
    blocks = service.where_did_it_go(session=session, private=True, text=serial_text)
    wanted = span_of(serial_text)
    found = spans(blocks)
    assert found[0].start == wanted.start and found[-1].end == wanted.end, found
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(found)), found
    assert sum(b.kg for b in blocks) == kg
    return blocks


@contextmanager
def refused(session: Session, code: ErrorCode) -> Iterator[None]:
    """The command inside is refused with ``code``; like the unit of work, its writes are undone."""
    savepoint = session.begin_nested()
    with pytest.raises(DomainError) as caught:
        yield
    savepoint.rollback()
    assert caught.value.code is code, f"{caught.value.code}: {caught.value.message}"


@pytest.fixture
def registry(session: Session) -> Registry:
    return Registry(session)
