"""Registry services on SQLite and PostgreSQL: the project lifecycle, issuance and every unit
movement, with conservation, structure and the journal checked after every scenario."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.core.errors import ErrorCode, validation_problems
from neutralize.registry import service
from neutralize.registry.domain import AccountKind, ProjectStatus, Span, serial
from neutralize.registry.models import Block, IdempotencyRecord, JournalEntry, Retirement
from neutralize.registry.schemas import (
    CancelCmd,
    ExportCmd,
    OperationResult,
    OrganisationCreate,
    PostCmd,
    ProjectCreate,
    ProjectPublic,
    ProjectTransition,
    ReservationCmd,
    ReserveCmd,
    RetireCmd,
    TransferCmd,
    Units,
)

from .conftest import (
    ADMIN,
    CLOCK,
    VERIFIER,
    VINTAGE,
    Org,
    Registry,
    assert_accounted_for,
    by_serial,
    refused,
    span_of,
    spans,
    units,
)


@pytest.fixture(autouse=True)
def _ledger_stays_sound(registry: Registry) -> Iterator[None]:
    yield
    registry.assert_sound()


@pytest.fixture
def owner(registry: Registry) -> Org:
    return registry.organisation("Chengdu Metro Carbon Co.")


@pytest.fixture
def buyer(registry: Registry) -> Org:
    return registry.organisation("Tianfu Conference Centre")


@pytest.fixture
def project(registry: Registry, owner: Org) -> ProjectPublic:
    return registry.project(owner)


@pytest.fixture
def issued(registry: Registry, project: ProjectPublic) -> OperationResult:
    """10,000 kg of vintage 2025 held by the project's owner."""
    return registry.issuance(project, kg=10_000)


def first_unit(issued: OperationResult) -> int:
    return span_of(issued.blocks[0].serial).start


def nz(project: ProjectPublic, start: int, end: int, vintage: int = VINTAGE) -> str:
    return serial(project.code, vintage, Span(start, end))


# --- commands, short ------------------------------------------------------------------------------


def transfer(
    registry: Registry, actor: Actor, what: Units, to: str, key: str | None = None
) -> OperationResult:
    return service.transfer(
        session=registry.session,
        clock=CLOCK,
        actor=actor,
        cmd=TransferCmd(units=what, to_account_id=to, idempotency_key=key or registry.key("transfer")),
    )


def retire_cmd(
    registry: Registry, what: Units, key: str | None = None, beneficiary: str = "张三"
) -> RetireCmd:
    return RetireCmd(
        units=what,
        beneficiary=beneficiary,
        reason="Travel to the Chengdu forum, 2026",
        claim_period_start=date(2026, 11, 1),
        claim_period_end=date(2026, 11, 30),
        claim_country="CN",
        idempotency_key=key or registry.key("retire"),
    )


def retire(registry: Registry, actor: Actor, what: Units, key: str | None = None) -> OperationResult:
    return service.retire(
        session=registry.session, clock=CLOCK, actor=actor, cmd=retire_cmd(registry, what, key)
    )


def cancel(registry: Registry, actor: Actor, what: Units) -> OperationResult:
    return service.cancel(
        session=registry.session,
        clock=CLOCK,
        actor=actor,
        cmd=CancelCmd(units=what, reason="issued in error", idempotency_key=registry.key("cancel")),
    )


def export(registry: Registry, actor: Actor, what: Units) -> OperationResult:
    return service.export(
        session=registry.session,
        clock=CLOCK,
        actor=actor,
        cmd=ExportCmd(
            units=what,
            destination_registry="VCS",
            reference="VCS-IMPORT-77",
            idempotency_key=registry.key("export"),
        ),
    )


def reserve(registry: Registry, actor: Actor, what: Units, reservation: str = "order-1") -> OperationResult:
    return service.reserve(
        session=registry.session,
        clock=CLOCK,
        actor=actor,
        cmd=ReserveCmd(units=what, reservation=reservation, idempotency_key=registry.key("reserve")),
    )


def release(registry: Registry, actor: Actor, reservation: str = "order-1") -> OperationResult:
    return service.release(
        session=registry.session,
        clock=CLOCK,
        actor=actor,
        cmd=ReservationCmd(reservation=reservation, idempotency_key=registry.key("release")),
    )


def post(
    registry: Registry, actor: Actor, project: ProjectPublic, reservation: str = "order-1"
) -> OperationResult:
    return service.post(
        session=registry.session,
        clock=CLOCK,
        actor=actor,
        cmd=post_cmd(registry, reservation),
    )


def post_cmd(registry: Registry, reservation: str = "order-1", key: str | None = None) -> PostCmd:
    return PostCmd(
        reservation=reservation,
        idempotency_key=key or registry.key("post"),
        beneficiary="张三",
        reason="Travel to the Chengdu forum, 2026",
        claim_country="CN",
    )


def journal_entries(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(JournalEntry)) or 0


def block_rows(session: Session) -> list[tuple[int, int, str, str]]:
    return [
        (b.span_start, b.span_end, b.state, b.account_id)
        for b in session.scalars(select(Block).order_by(Block.span_start))
    ]


# --- organisations and projects -------------------------------------------------------------------


def test_an_organisation_gets_one_account_of_each_kind(registry: Registry) -> None:
    org = registry.organisation("Wuhou Hotel")
    assert sorted(org.accounts) == sorted(kind.value for kind in AccountKind)
    assert len(set(org.accounts.values())) == len(AccountKind)


def test_only_an_admin_creates_organisations_and_names_are_unique(registry: Registry, owner: Org) -> None:
    with refused(registry.session, ErrorCode.FORBIDDEN):
        service.create_organisation(
            session=registry.session, clock=CLOCK, actor=owner.owner, cmd=OrganisationCreate(name="Mine")
        )
    with refused(registry.session, ErrorCode.DUPLICATE):
        registry.organisation(owner.name)


def test_a_project_walks_draft_submitted_validated_registered_each_step_by_its_role(
    registry: Registry, owner: Org
) -> None:
    # given a draft project created by its owner
    project = registry.draft_project(owner)
    assert (project.status, project.native) == ("draft", True)
    # when its owner submits it, a verifier validates it and an admin registers it
    submitted = registry.move(project, ProjectStatus.SUBMITTED, owner.owner)
    validated = registry.move(submitted, ProjectStatus.VALIDATED, VERIFIER)
    registered = registry.move(validated, ProjectStatus.REGISTERED, ADMIN)
    # then each step took, and the project's chain records creation and the three steps
    assert [submitted.status, validated.status, registered.status] == ["submitted", "validated", "registered"]
    assert service.get_project(session=registry.session, code=project.code).status == "registered"
    chain = list(
        registry.session.scalars(
            select(JournalEntry.operation)
            .where(JournalEntry.chain == f"project:{project.code}")
            .order_by(JournalEntry.chain_seq)
        )
    )
    assert chain == ["create_project", "transition_project", "transition_project", "transition_project"]


def _walk(registry: Registry, owner: Org, status: ProjectStatus) -> ProjectPublic:
    if status in (ProjectStatus.REJECTED, ProjectStatus.SUSPENDED):
        before = ProjectStatus.SUBMITTED if status is ProjectStatus.REJECTED else ProjectStatus.REGISTERED
        return registry.move(registry.project(owner, status=before), status, ADMIN)
    return registry.project(owner, status=status)


@pytest.mark.parametrize(
    ("start", "to", "who"),
    [
        (ProjectStatus.DRAFT, ProjectStatus.SUBMITTED, "verifier"),
        (ProjectStatus.DRAFT, ProjectStatus.SUBMITTED, "member"),
        (ProjectStatus.DRAFT, ProjectStatus.SUBMITTED, "other_owner"),
        (ProjectStatus.SUBMITTED, ProjectStatus.VALIDATED, "owner"),
        (ProjectStatus.SUBMITTED, ProjectStatus.VALIDATED, "member"),
        (ProjectStatus.SUBMITTED, ProjectStatus.REJECTED, "verifier"),
        (ProjectStatus.SUBMITTED, ProjectStatus.REJECTED, "owner"),
        (ProjectStatus.VALIDATED, ProjectStatus.REGISTERED, "verifier"),
        (ProjectStatus.VALIDATED, ProjectStatus.REGISTERED, "owner"),
        (ProjectStatus.REGISTERED, ProjectStatus.SUSPENDED, "owner"),
        (ProjectStatus.SUSPENDED, ProjectStatus.REGISTERED, "verifier"),
    ],
)
def test_a_lifecycle_step_taken_by_the_wrong_role_is_forbidden(
    registry: Registry, owner: Org, start: ProjectStatus, to: ProjectStatus, who: str
) -> None:
    # given a project at ``start``
    project = _walk(registry, owner, start)
    other = registry.organisation()
    actor = {"verifier": VERIFIER, "member": owner.member, "owner": owner.owner, "other_owner": other.owner}[
        who
    ]
    # when the wrong role asks for the step, it is refused and nothing changes (a draft is its owner
    # organisation's and admins' only: to anyone else it does not exist)
    sees = start is not ProjectStatus.DRAFT or actor.organisation_id == owner.id
    with refused(registry.session, ErrorCode.FORBIDDEN if sees else ErrorCode.NOT_FOUND):
        registry.move(project, to, actor)
    assert service.get_project(session=registry.session, code=project.code).status == start.value


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (ProjectStatus.DRAFT, ProjectStatus.VALIDATED),
        (ProjectStatus.DRAFT, ProjectStatus.REGISTERED),
        (ProjectStatus.DRAFT, ProjectStatus.REJECTED),
        (ProjectStatus.SUBMITTED, ProjectStatus.REGISTERED),
        (ProjectStatus.SUBMITTED, ProjectStatus.SUBMITTED),
        (ProjectStatus.VALIDATED, ProjectStatus.SUBMITTED),
        (ProjectStatus.REGISTERED, ProjectStatus.SUBMITTED),
        (ProjectStatus.REGISTERED, ProjectStatus.REJECTED),
        (ProjectStatus.REGISTERED, ProjectStatus.REGISTERED),
        (ProjectStatus.REJECTED, ProjectStatus.SUBMITTED),
        (ProjectStatus.REJECTED, ProjectStatus.REGISTERED),
        (ProjectStatus.SUSPENDED, ProjectStatus.VALIDATED),
    ],
)
def test_a_step_the_lifecycle_does_not_have_is_an_invalid_transition_even_for_an_admin(
    registry: Registry, owner: Org, start: ProjectStatus, to: ProjectStatus
) -> None:
    project = _walk(registry, owner, start)
    with refused(registry.session, ErrorCode.INVALID_TRANSITION):
        registry.move(project, to, ADMIN)
    assert service.get_project(session=registry.session, code=project.code).status == start.value


def test_an_admin_rejects_suspends_and_reinstates(registry: Registry, owner: Org) -> None:
    submitted = registry.project(owner, status=ProjectStatus.SUBMITTED)
    assert registry.move(submitted, ProjectStatus.REJECTED, ADMIN).status == "rejected"
    validated = registry.project(owner, status=ProjectStatus.VALIDATED)
    assert registry.move(validated, ProjectStatus.REJECTED, ADMIN).status == "rejected"
    registered = registry.project(owner)
    suspended = registry.move(registered, ProjectStatus.SUSPENDED, ADMIN)
    assert suspended.status == "suspended"
    assert registry.move(suspended, ProjectStatus.REGISTERED, ADMIN).status == "registered"


def test_a_project_owner_creates_projects_for_its_own_organisation_only(
    registry: Registry, owner: Org
) -> None:
    other = registry.organisation()
    cmd = ProjectCreate(
        code="CDCER-9999",
        name="Someone else's project",
        standard="CDCER",
        methodology="CDCER-TRANSIT",
        methodology_version="1.0",
        project_type="transport",
        credit_type="avoidance",
        nature_based=False,
        country="CN",
        owner_organisation_id=owner.id,
    )
    for actor in (other.owner, VERIFIER, owner.member):
        with refused(registry.session, ErrorCode.FORBIDDEN):
            service.create_project(session=registry.session, clock=CLOCK, actor=actor, cmd=cmd)
    service.create_project(session=registry.session, clock=CLOCK, actor=owner.owner, cmd=cmd)
    with refused(registry.session, ErrorCode.DUPLICATE):
        service.create_project(session=registry.session, clock=CLOCK, actor=ADMIN, cmd=cmd)


def test_unknown_projects_are_not_found(registry: Registry) -> None:
    with refused(registry.session, ErrorCode.NOT_FOUND):
        service.transition_project(
            session=registry.session,
            clock=CLOCK,
            actor=ADMIN,
            project_code="NOPE-1",
            cmd=ProjectTransition(to_status="submitted"),
        )


def test_only_a_verifier_or_an_admin_records_a_verification(
    registry: Registry, owner: Org, project: ProjectPublic
) -> None:
    verification = registry.verification(project)
    assert (verification.project_code, verification.verified_kg) == (project.code, 10_000)
    from neutralize.registry.schemas import VerificationCreate

    cmd = VerificationCreate(
        project_code=project.code,
        verifier="Self-verified",
        period_start=date(2024, 1, 1),
        period_end=date(2024, 12, 31),
        verified_kg=5,
        report_url="https://example.org/report.pdf",
    )
    for actor in (owner.owner, owner.member):
        with refused(registry.session, ErrorCode.FORBIDDEN):
            service.record_verification(session=registry.session, clock=CLOCK, actor=actor, cmd=cmd)


# --- issuance --------------------------------------------------------------------------------------


def test_issuing_a_verified_period_gives_the_owner_one_fresh_serial_block(
    registry: Registry, owner: Org, project: ProjectPublic
) -> None:
    # given a verification of 10,000 kg for 2025
    verification = registry.verification(project, kg=10_000)
    # when an admin issues it
    result = registry.issue(verification.id)
    # then the owner holds one block of 10,000 kg, vintage 2025, named by its serial
    assert (result.operation, result.project_code, result.vintage, result.quantity_kg) == (
        "issue",
        project.code,
        2025,
        10_000,
    )
    [block] = result.blocks
    assert (block.kg, block.state, block.account_id) == (10_000, "held", owner.holding)
    span = span_of(block.serial)
    assert span.size == 10_000
    assert block.serial == nz(project, span.start, span.end, 2025)
    assert registry.holdings(owner) == result.blocks
    assert result.journal.chain == f"vintage:{project.code}:2025"
    assert result.journal.seq == 1


def test_two_issuances_take_consecutive_unshared_ranges_of_the_unit_space(
    registry: Registry, owner: Org, project: ProjectPublic
) -> None:
    other_project = registry.project(owner)
    first = registry.issuance(project, kg=700)
    second = registry.issuance(other_project, kg=300)
    third = registry.issuance(project, kg=5, period=(date(2024, 1, 1), date(2024, 6, 30)))
    a, b, c = (span_of(r.blocks[0].serial) for r in (first, second, third))
    assert (b.start, c.start) == (a.end + 1, b.end + 1)
    assert (a.size, b.size, c.size) == (700, 300, 5)
    assert third.vintage == 2024


@pytest.mark.parametrize(
    "status", [ProjectStatus.VALIDATED, ProjectStatus.SUBMITTED, ProjectStatus.SUSPENDED]
)
def test_issuing_needs_a_registered_project(registry: Registry, owner: Org, status: ProjectStatus) -> None:
    project = _walk(registry, owner, status)
    verification = registry.verification(project)
    with refused(registry.session, ErrorCode.PROJECT_NOT_REGISTERED):
        registry.issue(verification.id)


def test_issuing_needs_a_verification(registry: Registry, project: ProjectPublic) -> None:
    with refused(registry.session, ErrorCode.NOT_VERIFIED):
        registry.issue("ver_does_not_exist")


@pytest.mark.parametrize(
    "period_end",
    [date(2026, 11, 25), date(2026, 11, 26), date(2027, 12, 31)],
    ids=["ends-today", "ends-tomorrow", "ends-next-year"],
)
def test_issuing_needs_the_monitoring_period_to_have_ended(
    registry: Registry, project: ProjectPublic, period_end: date
) -> None:
    verification = registry.verification(project, period=(date(2026, 1, 1), period_end))
    with refused(registry.session, ErrorCode.PERIOD_NOT_ENDED):
        registry.issue(verification.id)


def test_a_period_that_ended_yesterday_can_be_issued(registry: Registry, project: ProjectPublic) -> None:
    result = registry.issuance(project, kg=10, period=(date(2026, 1, 1), date(2026, 11, 24)))
    assert (result.vintage, result.quantity_kg) == (2026, 10)


def test_a_verification_is_issued_once_only(registry: Registry, project: ProjectPublic) -> None:
    verification = registry.verification(project)
    registry.issue(verification.id)
    with refused(registry.session, ErrorCode.ALREADY_ISSUED):
        registry.issue(verification.id)  # a new key: a new command, not a retry


def test_the_same_monitoring_period_cannot_be_issued_twice_through_two_verifications(
    registry: Registry, project: ProjectPublic
) -> None:
    registry.issuance(project, kg=10_000)
    # a second verification of the same (or an overlapping) period is refused at once
    with refused(registry.session, ErrorCode.DUPLICATE):
        registry.issuance(project, kg=10_000)
    with refused(registry.session, ErrorCode.DUPLICATE):
        registry.verification(project, period=(date(2025, 6, 1), date(2026, 5, 31)))


@pytest.mark.parametrize("who", ["owner", "verifier"])
def test_only_an_admin_issues(registry: Registry, owner: Org, project: ProjectPublic, who: str) -> None:
    verification = registry.verification(project)
    with refused(registry.session, ErrorCode.FORBIDDEN):
        registry.issue(verification.id, actor=owner.owner if who == "owner" else VERIFIER)


def test_a_forestry_issuance_puts_its_buffer_share_in_the_buffer_account(
    registry: Registry, owner: Org, buyer: Org
) -> None:
    # given a nature-based project with a 20 % buffer share
    forest = registry.project(owner, nature_based=True, buffer_permille=200)
    # when 10,000 kg are issued
    result = registry.issuance(forest, kg=10_000)
    # then 8,000 kg are held and the top 2,000 kg of the range sit in the buffer account
    held, buffered = result.blocks
    start = span_of(held.serial).start
    assert (held.state, held.kg, held.account_id) == ("held", 8_000, owner.holding)
    assert (buffered.state, buffered.kg, buffered.account_id) == (
        "buffer",
        2_000,
        owner.account(AccountKind.BUFFER),
    )
    assert span_of(held.serial) == Span(start, start + 7_999)
    assert span_of(buffered.serial) == Span(start + 8_000, start + 9_999)
    [vintage] = service.check(session=registry.session).vintages
    assert vintage.by_state_kg["buffer"] == 2_000 and vintage.by_state_kg["held"] == 8_000
    # and the buffer cannot be moved as if it were held
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        transfer(registry, owner.owner, by_serial(buffered.serial), buyer.holding)
    with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
        retire(registry, owner.owner, units(forest, 8_001))


def test_the_buffer_share_rounds_up_to_a_whole_kg(registry: Registry, owner: Org) -> None:
    forest = registry.project(owner, nature_based=True, buffer_permille=150)
    result = registry.issuance(forest, kg=1_001)  # 150.15 kg of buffer
    assert [(b.state, b.kg) for b in result.blocks] == [("held", 850), ("buffer", 151)]


def test_a_project_that_is_not_nature_based_sets_no_buffer_aside(registry: Registry, owner: Org) -> None:
    # given a project that is not nature-based asking for a buffer share, which issuance never applies
    # then it is refused at creation (conflicting fields) rather than kept and ignored
    with pytest.raises(ValidationError) as caught:
        registry.project(owner, nature_based=False, buffer_permille=200)
    assert [p.code for p in validation_problems(caught.value.errors())] == [ErrorCode.CONFLICTING_FIELDS]
    # and without a share it issues everything as held
    result = registry.issuance(registry.project(owner, nature_based=False), kg=1_000)
    assert [(b.state, b.kg) for b in result.blocks] == [("held", 1_000)]


# --- transfer --------------------------------------------------------------------------------------


def test_transfer_by_quantity_moves_the_lowest_serials_and_splits_the_block(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    result = transfer(registry, owner.owner, units(project, 3_000), buyer.holding)
    assert spans(result.blocks) == [Span(s, s + 2_999)]
    assert (result.quantity_kg, result.blocks[0].account_id) == (3_000, buyer.holding)
    assert spans(registry.holdings(owner)) == [Span(s + 3_000, s + 9_999)]
    assert spans(registry.holdings(buyer)) == [Span(s, s + 2_999)]
    assert registry.kg_by_state(buyer) == {"held": 3_000}


def test_transfer_by_serial_sub_range_splits_the_block_in_three_in_serial_order(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    result = transfer(registry, owner.owner, by_serial(nz(project, s + 100, s + 199)), buyer.holding)
    assert spans(result.blocks) == [Span(s + 100, s + 199)]
    assert spans(registry.holdings(owner)) == [Span(s, s + 99), Span(s + 200, s + 9_999)]
    went = assert_accounted_for(registry.session, issued.blocks[0].serial, 10_000)
    assert [(b.kg, b.account_id) for b in went] == [
        (100, owner.holding),
        (100, buyer.holding),
        (9_800, owner.holding),
    ]


def test_transfer_by_quantity_takes_lowest_serials_across_several_blocks(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    # given the owner holds three separate pieces after giving two ranges away
    s = first_unit(issued)
    transfer(registry, owner.owner, by_serial(nz(project, s + 10, s + 19)), buyer.holding)
    transfer(registry, owner.owner, by_serial(nz(project, s + 30, s + 39)), buyer.holding)
    # when it transfers 25 kg by quantity
    result = transfer(registry, owner.owner, units(project, 25), buyer.holding)
    # then it gives the lowest 25 units it holds, piece by piece, in serial order
    assert spans(result.blocks) == [Span(s, s + 9), Span(s + 20, s + 29), Span(s + 40, s + 44)]
    assert spans(registry.holdings(owner)) == [Span(s + 45, s + 9_999)]


def test_a_serial_range_held_in_several_blocks_moves_as_one_command(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    third = registry.organisation()
    # given the buyer holds [s, s+49] as two blocks
    transfer(registry, owner.owner, by_serial(nz(project, s + 25, s + 49)), buyer.holding)
    transfer(registry, owner.owner, by_serial(nz(project, s, s + 24)), buyer.holding)
    # when it moves [s+10, s+39] on
    result = transfer(registry, buyer.owner, by_serial(nz(project, s + 10, s + 39)), third.holding)
    # then both blocks were split and the moved parts are in serial order
    assert spans(result.blocks) == [Span(s + 10, s + 24), Span(s + 25, s + 39)]
    assert result.quantity_kg == 30
    assert spans(registry.holdings(buyer)) == [Span(s, s + 9), Span(s + 40, s + 49)]


def test_a_transfer_goes_to_a_holding_account_only(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    for account in (buyer.account(AccountKind.RETIREMENT), buyer.account(AccountKind.BUFFER), "acc_nope"):
        with refused(registry.session, ErrorCode.NOT_FOUND):
            transfer(registry, owner.owner, units(project, 1), account)


def test_another_organisation_cannot_move_your_units(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    whole = issued.blocks[0].serial
    for actor in (buyer.owner, buyer.member):
        with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
            transfer(registry, actor, by_serial(whole), owner.holding)
        with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
            transfer(registry, actor, units(project, 1), owner.holding)
        with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
            retire(registry, actor, by_serial(whole))
        with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
            reserve(registry, actor, units(project, 1))
    assert registry.kg_by_state(owner) == {"held": 10_000}


@pytest.mark.parametrize("who", ["admin-without-organisation", "verifier"])
def test_an_actor_without_holdings_cannot_move_units(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult, who: str
) -> None:
    actor = (
        ADMIN if who.startswith("admin") else Actor(id="v-2", role=Role.VERIFIER, organisation_id=owner.id)
    )
    with refused(registry.session, ErrorCode.FORBIDDEN):
        transfer(registry, actor, units(project, 1), owner.holding)
    with refused(registry.session, ErrorCode.FORBIDDEN):
        retire(registry, actor, units(project, 1))


def test_moving_more_than_is_held_is_insufficient_units(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
        transfer(registry, owner.owner, units(project, 10_001), buyer.holding)
    with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
        retire(registry, owner.owner, units(project, 10_001))
    with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
        transfer(registry, owner.owner, units(project, 1, vintage=2024), buyer.holding)  # no 2024 vintage
    # the exact amount held is fine
    assert transfer(registry, owner.owner, units(project, 10_000), buyer.holding).quantity_kg == 10_000


def test_a_serial_range_not_fully_held_is_not_available(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    transfer(registry, owner.owner, by_serial(nz(project, s + 500, s + 500)), buyer.holding)
    cases = [
        nz(project, s + 400, s + 600),  # one unit in the middle is gone
        nz(project, s + 9_990, s + 10_010),  # runs past the end of the issuance
        nz(project, s, s + 9, vintage=2024),  # the right units, the wrong vintage
    ]
    for text in cases:
        with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
            transfer(registry, owner.owner, by_serial(text), buyer.holding)
    assert registry.kg_by_state(owner) == {"held": 9_999}


@pytest.mark.parametrize(
    "text",
    [
        "NZ-CDCER-0001-2025-1-2",
        "not a serial",
        "NZ-CDCER-0001-2025-000000000009-000000000001",
        "NZ-CDCER-0001-2025-000000000000-000000000001",
    ],
)
def test_a_malformed_serial_is_an_invalid_serial(
    registry: Registry, owner: Org, buyer: Org, issued: OperationResult, text: str
) -> None:
    with refused(registry.session, ErrorCode.INVALID_SERIAL):
        transfer(registry, owner.owner, by_serial(text), buyer.holding)
    with refused(registry.session, ErrorCode.INVALID_SERIAL):
        retire(registry, owner.owner, by_serial(text))
    with refused(registry.session, ErrorCode.INVALID_SERIAL):
        service.where_did_it_go(session=registry.session, private=True, text=text)


def test_a_serial_of_an_unknown_project_is_not_found(registry: Registry, owner: Org, buyer: Org) -> None:
    with refused(registry.session, ErrorCode.NOT_FOUND):
        transfer(registry, owner.owner, by_serial("NZ-NOPE-2025-000000000001-000000000002"), buyer.holding)


# --- retirement ------------------------------------------------------------------------------------


def test_retiring_340_kg_from_a_10000_kg_block(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    # when a guest's 340 kg are retired
    result = retire(registry, owner.owner, units(project, 340))
    # then the lowest 340 units are retired, into the retirement account, under one retirement
    [block] = result.blocks
    assert span_of(block.serial) == Span(s, s + 339)
    assert (block.state, block.account_id) == ("retired", owner.account(AccountKind.RETIREMENT))
    assert result.retirement_id is not None and block.retirement_id == result.retirement_id
    retirement = registry.session.get(Retirement, result.retirement_id)
    assert retirement is not None
    assert (retirement.quantity_kg, retirement.beneficiary, retirement.vintage) == (340, "张三", 2025)
    assert registry.kg_by_state(owner) == {"held": 9_660, "retired": 340}
    assert assert_accounted_for(registry.session, nz(project, s, s + 339), 340) == [block]


def test_many_small_retirements_each_get_their_own_sub_range(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    results = [retire(registry, owner.owner, units(project, 340)) for _ in range(12)]
    expected = [Span(s + 340 * i, s + 340 * (i + 1) - 1) for i in range(12)]
    assert [span_of(r.blocks[0].serial) for r in results] == expected
    assert len({r.retirement_id for r in results}) == 12
    assert [r.journal.seq for r in results] == list(range(2, 14))  # after the issuance
    assert registry.kg_by_state(owner) == {"held": 10_000 - 12 * 340, "retired": 12 * 340}
    went = assert_accounted_for(registry.session, issued.blocks[0].serial, 10_000)
    assert [b.retirement_id for b in went[:-1]] == [r.retirement_id for r in results]


def test_retired_units_never_move_again(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    retired = nz(project, s, s + 99)
    retire(registry, owner.owner, by_serial(retired))
    before = block_rows(registry.session)
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        transfer(registry, owner.owner, by_serial(retired), buyer.holding)
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        retire(registry, owner.owner, by_serial(nz(project, s + 99, s + 100)))
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        cancel(registry, owner.owner, by_serial(retired))
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        export(registry, owner.owner, by_serial(retired))
    with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
        transfer(registry, owner.owner, units(project, 9_901), buyer.holding)
    assert block_rows(registry.session) == before


def test_post_needs_the_retirement_details(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    # a post names the claim (beneficiary, reason); the units are the reservation's
    with pytest.raises(ValidationError) as caught:
        PostCmd.model_validate({"reservation": "order-1", "idempotency_key": "post-no-details"})
    assert {p.code for p in validation_problems(caught.value.errors())} == {ErrorCode.MISSING_FIELD}
    # and a release takes no retirement details at all
    with pytest.raises(ValidationError) as caught:
        ReservationCmd.model_validate(
            {"reservation": "order-1", "idempotency_key": "k", "retirement": {"beneficiary": "x"}}
        )
    assert {p.code for p in validation_problems(caught.value.errors())} == {ErrorCode.UNKNOWN_FIELD}


# --- reserve, release, post ------------------------------------------------------------------------


def test_reserve_then_release_returns_the_units(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    # given 500 kg reserved for an order
    reserved = reserve(registry, owner.owner, units(project, 500))
    [block] = reserved.blocks
    assert (block.state, block.reservation, block.account_id) == ("reserved", "order-1", owner.holding)
    assert registry.kg_by_state(owner) == {"held": 9_500, "reserved": 500}
    # then reserved units cannot be moved by anyone
    with refused(registry.session, ErrorCode.INSUFFICIENT_UNITS):
        transfer(registry, owner.owner, units(project, 9_501), buyer.holding)
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        retire(registry, owner.owner, by_serial(nz(project, s, s)))
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        release(registry, buyer.owner)  # not the buyer's reservation
    # when the order fails and the reservation is released
    released = release(registry, owner.owner)
    # then the same units are held again, with no reservation
    assert spans(released.blocks) == [Span(s, s + 499)]
    assert [(b.state, b.reservation) for b in released.blocks] == [("held", None)]
    assert registry.kg_by_state(owner) == {"held": 10_000}
    # and a second release finds nothing
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        release(registry, owner.owner)


def test_reserve_then_post_retires_what_was_reserved(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    reserve(registry, owner.owner, units(project, 200))
    reserve(registry, owner.owner, units(project, 140))  # the same order, in two steps
    posted = post(registry, owner.owner, project)
    assert posted.operation == "post" and posted.quantity_kg == 340
    assert spans(posted.blocks) == [Span(s, s + 199), Span(s + 200, s + 339)]
    assert {(b.state, b.account_id, b.reservation) for b in posted.blocks} == {
        ("retired", owner.account(AccountKind.RETIREMENT), None)
    }
    retirement = registry.session.get(Retirement, posted.retirement_id)
    assert retirement is not None and retirement.quantity_kg == 340
    assert registry.kg_by_state(owner) == {"held": 9_660, "retired": 340}
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        release(registry, owner.owner)  # nothing is left reserved


def test_a_reservation_spans_one_project_vintage_so_it_can_always_be_posted_or_released(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    registry.issuance(project, kg=100, period=(date(2024, 1, 1), date(2024, 12, 31)))
    reserve(registry, owner.owner, units(project, 10))
    # units of another vintage under the same name are refused at once, and nothing of them is reserved
    with refused(registry.session, ErrorCode.INVALID_REQUEST):
        reserve(registry, owner.owner, units(project, 10, vintage=2024))
    assert registry.kg_by_state(owner) == {"held": 10_090, "reserved": 10}
    # more of the same vintage is welcome, another organisation may use the same name for its own
    reserve(registry, owner.owner, units(project, 5))
    assert post(registry, owner.owner, project).quantity_kg == 15
    reserve(registry, owner.owner, units(project, 10, vintage=2024))
    assert release(registry, owner.owner).quantity_kg == 10
    registry.assert_sound()


def test_a_transfer_to_your_own_holding_account_is_refused(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    with refused(registry.session, ErrorCode.INVALID_REQUEST):
        transfer(registry, owner.owner, units(project, 10), owner.holding)
    assert spans(registry.holdings(owner)) == spans(issued.blocks)  # no block was split


def test_a_claim_period_ends_after_it_starts() -> None:
    what = Units(project_code="P", vintage=VINTAGE, quantity_kg=1)
    with pytest.raises(ValidationError, match="claim_period_end is before claim_period_start"):
        RetireCmd(units=what, beneficiary="b", reason="r", claim_period_start=date(2025, 12, 31),
                  claim_period_end=date(2025, 1, 1), idempotency_key="k")  # fmt: skip
    RetireCmd(units=what, beneficiary="b", reason="r", claim_period_start=date(2025, 1, 1),
              claim_period_end=date(2025, 1, 1), idempotency_key="k")  # fmt: skip


def test_release_and_post_with_the_same_key_are_different_commands(
    registry: Registry, owner: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    # given a reservation released under key K
    reserve(registry, owner.owner, units(project, 10))
    cmd = ReservationCmd(reservation="order-1", idempotency_key="order-1-finish")
    service.release(session=registry.session, clock=CLOCK, actor=owner.owner, cmd=cmd)
    reserve(registry, owner.owner, units(project, 10))
    # when the same key is used to post the reservation, it is refused as another command
    with refused(registry.session, ErrorCode.IDEMPOTENCY_CONFLICT):
        service.post(
            session=registry.session,
            clock=CLOCK,
            actor=owner.owner,
            cmd=post_cmd(registry, key="order-1-finish"),
        )


# --- cancel and export -----------------------------------------------------------------------------


def test_cancel_moves_units_to_cancelled_for_good(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    result = cancel(registry, owner.owner, units(project, 1_000))
    assert [(b.state, b.account_id, b.kg) for b in result.blocks] == [
        ("cancelled", owner.account(AccountKind.RETIREMENT), 1_000)
    ]
    assert result.retirement_id is None
    entry = registry.session.scalars(
        select(JournalEntry).where(JournalEntry.chain == result.journal.chain, JournalEntry.chain_seq == 2)
    ).one()
    assert (entry.operation, entry.payload["note"]) == ("cancel", "issued in error")
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        transfer(registry, owner.owner, by_serial(nz(project, s, s)), buyer.holding)
    [vintage] = service.check(session=registry.session).vintages
    assert vintage.by_state_kg["cancelled"] == 1_000


def test_export_records_the_destination_and_the_units_leave_for_good(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    result = export(registry, owner.owner, by_serial(nz(project, s + 5_000, s + 6_999)))
    [block] = result.blocks
    assert (block.state, block.account_id, block.kg) == ("exported", owner.account(AccountKind.EXPORT), 2_000)
    assert block.destination == "VCS: VCS-IMPORT-77"
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        transfer(registry, owner.owner, by_serial(nz(project, s + 5_000, s + 5_000)), buyer.holding)
    assert spans(registry.holdings(owner)) == [
        Span(s, s + 4_999),
        Span(s + 5_000, s + 6_999),
        Span(s + 7_000, s + 9_999),
    ]


# --- idempotency -----------------------------------------------------------------------------------


def test_a_retried_command_returns_the_first_result_and_changes_nothing(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    first = transfer(registry, owner.owner, units(project, 300), buyer.holding, key="t-1")
    blocks, entries = block_rows(registry.session), journal_entries(registry.session)
    registry.session.expire_all()  # the retry reads the stored result back from the database
    again = transfer(registry, owner.owner, units(project, 300), buyer.holding, key="t-1")
    assert again == first
    assert block_rows(registry.session) == blocks
    assert journal_entries(registry.session) == entries
    assert registry.kg_by_state(buyer) == {"held": 300}


def test_a_retried_retirement_and_issuance_return_the_first_result(
    registry: Registry, owner: Org, project: ProjectPublic
) -> None:
    verification = registry.verification(project, kg=1_000)
    issued = registry.issue(verification.id, key="issue-1")
    assert registry.issue(verification.id, key="issue-1") == issued  # not ALREADY_ISSUED
    retired = retire(registry, owner.owner, units(project, 340), key="r-1")
    retirements = registry.session.scalar(select(func.count()).select_from(Retirement))
    assert retire(registry, owner.owner, units(project, 340), key="r-1") == retired
    assert registry.session.scalar(select(func.count()).select_from(Retirement)) == retirements
    assert registry.kg_by_state(owner) == {"held": 660, "retired": 340}


def test_the_same_key_with_another_command_is_an_idempotency_conflict(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    transfer(registry, owner.owner, units(project, 300), buyer.holding, key="t-1")
    before = block_rows(registry.session), journal_entries(registry.session)
    with refused(registry.session, ErrorCode.IDEMPOTENCY_CONFLICT):
        transfer(registry, owner.owner, units(project, 301), buyer.holding, key="t-1")
    with refused(registry.session, ErrorCode.IDEMPOTENCY_CONFLICT):
        retire(registry, owner.owner, units(project, 300), key="t-1")
    with refused(registry.session, ErrorCode.IDEMPOTENCY_CONFLICT):
        transfer(registry, owner.owner, units(project, 300), registry.organisation().holding, key="t-1")
    assert (block_rows(registry.session), journal_entries(registry.session)) == before


def test_keys_belong_to_the_actor_that_chose_them(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    # the same key from two actors is two commands
    transfer(registry, owner.owner, units(project, 300), buyer.holding, key="k")
    back = transfer(registry, buyer.owner, units(project, 100), owner.holding, key="k")
    assert back.quantity_kg == 100
    records = registry.session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "k")).all()
    assert sorted(r.actor for r in records) == sorted([owner.owner.id, buyer.owner.id])


# --- the whole picture -----------------------------------------------------------------------------


def test_check_and_where_did_it_go_account_for_every_kg_after_a_mixed_history(
    registry: Registry, owner: Org, buyer: Org, project: ProjectPublic, issued: OperationResult
) -> None:
    s = first_unit(issued)
    transfer(registry, owner.owner, units(project, 2_000), buyer.holding)  # buyer: [s, s+1999]
    retire(registry, buyer.owner, units(project, 340))  # [s, s+339]
    reserve(registry, buyer.owner, by_serial(nz(project, s + 1_000, s + 1_099)), reservation="o-7")
    cancel(registry, owner.owner, by_serial(nz(project, s + 9_000, s + 9_499)))
    export(registry, owner.owner, units(project, 1_500))  # [s+2000, s+3499]
    [vintage] = service.check(session=registry.session).vintages
    assert vintage.issued_kg == 10_000
    assert vintage.by_state_kg == {
        "held": 10_000 - 340 - 100 - 500 - 1_500,
        "reserved": 100,
        "retired": 340,
        "cancelled": 500,
        "buffer": 0,
        "exported": 1_500,
    }
    assert registry.kg_by_state(buyer) == {"held": 2_000 - 340 - 100, "retired": 340, "reserved": 100}
    went = assert_accounted_for(registry.session, issued.blocks[0].serial, 10_000)
    assert [(b.state, b.kg) for b in went] == [
        ("retired", 340),
        ("held", 660),
        ("reserved", 100),
        ("held", 900),
        ("exported", 1_500),
        ("held", 5_500),
        ("cancelled", 500),
        ("held", 500),
    ]
    # where_did_it_go on a sub-range shows the whole blocks that hold any of its units
    around = service.where_did_it_go(
        session=registry.session, private=True, text=nz(project, s + 990, s + 1_010)
    )
    assert [(b.state, span_of(b.serial)) for b in around] == [
        ("held", Span(s + 340, s + 999)),
        ("reserved", Span(s + 1_000, s + 1_099)),
    ]
    assert around[1].reservation == "o-7"
