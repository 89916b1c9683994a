"""The same registry record asked for many times at once (a double submit, a client's retry after a
timeout): it is made once, and every other request is told so with a code, never a server error.

- an organisation's name, and a project code: one each, the others ``duplicate``;
- a verification issued with different idempotency keys: one issuance, the others
  ``already_issued`` (issuances take the unit space one at a time, and look again once they have it);
- a home retirement recorded by its home id: one, the others ``duplicate``;
- a public registry export imported: once, every other request told it was imported already.

Thread counts as in ``test_account_redemptions``; each request works in a unit of work of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import SYSTEM
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import mirror, service
from neutralize.registry.importers.records import Programme
from neutralize.registry.models import HomeRetirement, ImportBatch, Issuance, Project
from neutralize.registry.schemas import IssueCmd
from tests.concurrency.test_access_races import _first_exception
from tests.concurrency.test_account_redemptions import PG_REDEEMERS, SQLITE_THREADS
from tests.concurrency.test_market_races import Backend, race
from tests.conftest import fresh_database
from tests.integration.registry.conftest import CLOCK, Registry, verra_serial

WON = "won"
VERRA_EXPORT = Path(__file__).resolve().parents[1] / "data" / "registry" / "verra_export.csv"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    settings = fresh_database(request.param, "registry_duplicates", tmp_path_factory)
    threads = SQLITE_THREADS if request.param == "sqlite" else PG_REDEEMERS
    return Backend(request.param, settings, threads, threads)


def _at_once(backend: Backend, made: Callable[[int, Session], object]) -> Counter[str]:
    """``made(thread, session)`` on every thread at once; what each was answered."""
    outcomes: list[str] = []

    def request(thread: int, factory: sessionmaker[Session]) -> None:
        try:
            with unit_of_work(factory) as session:
                made(thread, session)
            outcomes.append(WON)
        except DomainError as refused:
            outcomes.append(refused.code.value)

    errors = race(backend, request)
    assert errors == [], _first_exception(errors)
    return Counter(outcomes)


def _count(backend: Backend, table: type) -> int:
    engine = make_engine(backend.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        engine.dispose()


def _set_up(backend: Backend, build: Callable[[Session], object]) -> object:
    engine = make_engine(backend.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return build(session)
    finally:
        engine.dispose()


def test_an_organisation_name_asked_for_at_once_is_taken_once(backend: Backend) -> None:
    outcomes = _at_once(backend, lambda _thread, session: Registry(session).organisation(name="Tianfu Metro"))
    assert outcomes == {WON: 1, ErrorCode.DUPLICATE.value: backend.threads - 1}, outcomes


def test_a_project_code_asked_for_at_once_is_taken_once(backend: Backend) -> None:
    owner = _set_up(backend, lambda session: Registry(session).organisation())

    def create(thread: int, session: Session) -> None:
        Registry(session).draft_project(owner, code="CDCER-0042")  # type: ignore[arg-type]

    outcomes = _at_once(backend, create)
    assert outcomes == {WON: 1, ErrorCode.DUPLICATE.value: backend.threads - 1}, outcomes
    assert _count(backend, Project) == 1


def test_a_verification_issued_at_once_is_issued_once(backend: Backend) -> None:
    def verified(session: Session) -> str:
        registry = Registry(session)
        return registry.verification(registry.project(registry.organisation())).id

    verification = _set_up(backend, verified)

    def issue(thread: int, session: Session) -> None:
        cmd = IssueCmd(verification_id=str(verification), idempotency_key=f"issue-{thread}")
        service.issue(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)

    outcomes = _at_once(backend, issue)
    assert outcomes == {WON: 1, ErrorCode.ALREADY_ISSUED.value: backend.threads - 1}, outcomes
    assert _count(backend, Issuance) == 1


def test_a_home_retirement_recorded_at_once_is_kept_once(backend: Backend) -> None:
    def exported(session: Session) -> None:
        mirror.import_export(session=session, clock=CLOCK, actor=SYSTEM, programme=Programme.VERRA,
                             data=VERRA_EXPORT.read_bytes(), filename=VERRA_EXPORT.name)  # fmt: skip

    _set_up(backend, exported)
    cmd = mirror.HomeRetirementCreate(
        project_code="VCS-1340", vintage=2020, home_retirement_id="HOME-1",
        serial=verra_serial(1340, 1, 2),
        quantity_tonnes=2, retired_on=date(2026, 11, 1), beneficiary_text="Platform on behalf of buyers",
    )  # fmt: skip

    def record(thread: int, session: Session) -> None:
        mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)

    outcomes = _at_once(backend, record)
    assert outcomes == {WON: 1, ErrorCode.DUPLICATE.value: backend.threads - 1}, outcomes
    assert _count(backend, HomeRetirement) == 1


def test_an_export_imported_at_once_is_imported_once(backend: Backend) -> None:
    reports: list[bool] = []

    def load(thread: int, session: Session) -> None:
        report = mirror.import_export(session=session, clock=CLOCK, actor=SYSTEM, programme=Programme.VERRA,
                                      data=VERRA_EXPORT.read_bytes(), filename=VERRA_EXPORT.name)  # fmt: skip
        reports.append(report.already_imported)

    outcomes = _at_once(backend, load)
    assert outcomes == {WON: backend.threads}, outcomes
    assert Counter(reports) == {False: 1, True: backend.threads - 1}
    assert _count(backend, ImportBatch) == 1
