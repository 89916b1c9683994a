"""Registry use cases: organisations, projects, verification, issuance and every unit movement.

Every command that moves credits takes the client's idempotency key, locks the blocks it reads,
splits them where only part moves, and appends one journal entry to the project vintage's chain.
Services never commit: the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.core.clock import Clock
from neutralize.core.db import add_once, hold
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.ids import new_id
from neutralize.registry import fastpath, journal, mirror
from neutralize.registry.domain import (
    PROJECT_TRANSITIONS,
    AccountKind,
    BlockState,
    ProjectStatus,
    Span,
    parse_serial,
    serial,
    split_share,
    take_lowest,
    vintage_of,
)
from neutralize.registry.models import (
    Account,
    Block,
    IdempotencyRecord,
    Issuance,
    JournalEntry,
    Organisation,
    Project,
    ProjectEvent,
    Retirement,
    Verification,
)
from neutralize.registry.schemas import (
    AccountPublic,
    BlockPublic,
    BufferReversalCmd,
    CancelCmd,
    CheckReport,
    ExportCmd,
    IssuancePublic,
    IssueCmd,
    OperationResult,
    OrganisationCreate,
    OrganisationPublic,
    PostCmd,
    ProjectCreate,
    ProjectPublic,
    ProjectTransition,
    ReservationCmd,
    ReserveCmd,
    RetireCmd,
    RetirementPublic,
    TransferCmd,
    Units,
    VerificationCreate,
    VerificationPublic,
    VintageBalance,
)

# --- organisations and accounts -----------------------------------------------------------------


def create_organisation(
    *, session: Session, clock: Clock, actor: Actor, cmd: OrganisationCreate
) -> OrganisationPublic:
    """A new organisation with its holding, retirement, buffer and export accounts."""
    require(actor, Role.ADMIN)

    def taken() -> bool:
        return (
            session.scalars(select(Organisation.id).where(Organisation.name == cmd.name)).first() is not None
        )

    duplicate = DomainError(
        code=ErrorCode.DUPLICATE, message=f"an organisation is already called {cmd.name!r}"
    )
    if taken():
        raise duplicate
    now = clock.now()
    organisation = Organisation(id=new_id("org", now), name=cmd.name, created_at=now)
    add_once(session, [organisation], taken=taken, refusal=duplicate)  # written now: the accounts refer to it
    for kind in AccountKind:
        session.add(
            Account(
                id=new_id("acc", now),
                organisation_id=organisation.id,
                kind=kind.value,
                name=kind.value,
                created_at=now,
            )
        )
    session.flush()
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=journal.ORGANISATIONS_CHAIN,
        operation="create_organisation",
        payload={"id": organisation.id, "name": cmd.name},
    )
    return organisation_public(session=session, organisation_id=organisation.id)


def organisation_names(*, session: Session, organisation_ids: Sequence[str]) -> dict[str, str]:
    """Organisation names by id."""
    rows = session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(organisation_ids))
    )
    return dict(rows.all())


def organisation_public(*, session: Session, organisation_id: str) -> OrganisationPublic:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFoundError(f"no organisation {organisation_id!r}")
    accounts = session.scalars(
        select(Account).where(Account.organisation_id == organisation_id).order_by(Account.kind)
    )
    return OrganisationPublic(
        id=organisation.id,
        name=organisation.name,
        accounts=[
            AccountPublic(id=a.id, organisation_id=a.organisation_id, kind=a.kind, name=a.name)
            for a in accounts
        ],
    )


def _account(session: Session, organisation_id: str | None, kind: AccountKind) -> Account:
    account = session.scalars(
        select(Account).where(Account.organisation_id == organisation_id, Account.kind == kind.value)
    ).first()
    if account is None:
        raise NotFoundError(f"organisation {organisation_id!r} has no {kind} account")
    return account


# --- projects ---------------------------------------------------------------------------------


def create_project(*, session: Session, clock: Clock, actor: Actor, cmd: ProjectCreate) -> ProjectPublic:
    """A native project, in draft; its owner (or an admin) submits it next."""
    require(actor, Role.ADMIN, Role.PROJECT_OWNER)
    if actor.role is Role.PROJECT_OWNER and actor.organisation_id != cmd.owner_organisation_id:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="a project owner registers its own projects only")
    if session.get(Organisation, cmd.owner_organisation_id) is None:
        raise NotFoundError(f"no organisation {cmd.owner_organisation_id!r}")

    def taken() -> bool:
        return session.scalars(select(Project.id).where(Project.code == cmd.code)).first() is not None

    duplicate = DomainError(code=ErrorCode.DUPLICATE, message=f"a project already has the code {cmd.code!r}")
    if taken():
        raise duplicate
    now = clock.now()
    fields = cmd.model_dump(exclude={"labels"})
    project = Project(
        id=new_id("prj", now),
        labels=cmd.labels.model_dump(),
        status=ProjectStatus.DRAFT.value,
        native=True,
        created_at=now,
        **fields,
    )
    created = ProjectEvent(
        project_id=project.id,
        from_status=None,
        to_status=project.status,
        actor=actor.id,
        note="created",
        at=now,
    )
    add_once(session, [project, created], taken=taken, refusal=duplicate)  # the same code at once
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=journal.project_chain(cmd.code),
        operation="create_project",
        payload=cmd.model_dump(mode="json"),
    )
    return project_public(project)


def transition_project(
    *, session: Session, clock: Clock, actor: Actor, project_code: str, cmd: ProjectTransition
) -> ProjectPublic:
    """Move a project along its lifecycle; each step has its role (an admin may take any step)."""
    project = _seen(_project(session, project_code, lock=True), actor)
    current, wanted = ProjectStatus(project.status), ProjectStatus(cmd.to_status)
    role = PROJECT_TRANSITIONS.get((current, wanted))
    if role is None:
        raise DomainError(
            code=ErrorCode.INVALID_TRANSITION, message=f"a {current} project cannot become {wanted}"
        )
    require(actor, Role(role), Role.ADMIN)
    if actor.role is Role.PROJECT_OWNER and actor.organisation_id != project.owner_organisation_id:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="only the project's owner may submit it")
    project.status = wanted.value
    session.add(
        ProjectEvent(
            project_id=project.id,
            from_status=current.value,
            to_status=wanted.value,
            actor=actor.id,
            note=cmd.note,
            at=clock.now(),
        )
    )
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=journal.project_chain(project.code),
        operation="transition_project",
        payload={"from": current.value, "to": wanted.value, "note": cmd.note},
    )
    return project_public(project)


def _project(session: Session, code: str, *, lock: bool = False) -> Project:
    held = _held_projects(session)
    if not lock and code in held:
        return held[code]
    query = select(Project).where(Project.code == code)
    project = session.scalars(query.with_for_update() if lock else query).first()
    if project is None:
        raise NotFoundError(f"no project {code!r}")
    held[code] = project
    return project


def _held_projects(session: Session) -> dict[str, Project]:
    """The projects this unit of work has read, by code and by id. The session's identity map holds
    rows weakly: a project read, turned into its public form and let go would be read again by the
    next step of the same operation (an order reads its project five or six times). Held here, the
    same row object is used until the session closes, as the identity map would use it."""
    held: dict[str, Project] = session.info.setdefault("neutralize.projects", {})
    return held


def _seen(project: Project, actor: Actor | None) -> Project:
    """``project`` if ``actor`` may see it: a draft is its owner organisation's and admins' only; to
    anyone else it answers ``NOT_FOUND``, exactly as a project that does not exist."""
    if project.status == ProjectStatus.DRAFT.value and not (
        actor is not None and (actor.is_admin or actor.organisation_id == project.owner_organisation_id)
    ):
        raise NotFoundError(f"no project {project.code!r}")
    return project


def _native(project: Project) -> None:
    """Mirrored projects are verified and issued at their home registry, never here."""
    if not project.native:
        raise DomainError(
            code=ErrorCode.PROJECT_NOT_REGISTERED,
            message=f"{project.code} is mirrored from {project.home_registry}: it is registered, verified "
            "and issued there, not in this registry",
        )


def get_project(*, session: Session, code: str) -> ProjectPublic:
    return project_public(_project(session, code))


def visible_project(*, session: Session, code: str, actor: Actor | None) -> ProjectPublic:
    """A project as ``actor`` may see it: a draft is its owner organisation's and admins' only;
    to anyone else it answers ``NOT_FOUND``, as if it did not exist."""
    return project_public(_seen(_project(session, code), actor))


def project_by_id(*, session: Session, project_id: str) -> ProjectPublic:
    held = _held_projects(session)
    project = held.get(project_id) or session.get(Project, project_id)
    if project is None:
        raise NotFoundError(f"no project {project_id!r}")
    held[project_id] = held[project.code] = project
    return project_public(project)


def list_projects(
    *,
    session: Session,
    status: str | None = None,
    standard: str | None = None,
    label: str | None = None,
    public: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> list[ProjectPublic]:
    """One page of projects by code; ``public`` leaves drafts out (before paging, so no page is short)."""
    query = select(Project).order_by(Project.code)
    if public:
        query = query.where(Project.status != ProjectStatus.DRAFT.value)
    if status:
        query = query.where(Project.status == status)
    if standard:
        query = query.where(Project.standard == standard)
    projects = [p for p in session.scalars(query) if label is None or p.labels.get(label)]
    start = (page - 1) * page_size
    return [project_public(p) for p in projects[start : start + page_size]]


def project_public(project: Project) -> ProjectPublic:
    """A project as the registry shows it. A mirrored project's credit type and whether it is nature-based
    are not stated: the home registries' exports do not give them, and nothing here claims more."""
    public = ProjectPublic.model_validate(project, from_attributes=True)
    return public if project.native else public.model_copy(update={"credit_type": None, "nature_based": None})


# --- verification and issuance ------------------------------------------------------------------


def record_verification(
    *, session: Session, clock: Clock, actor: Actor, cmd: VerificationCreate
) -> VerificationPublic:
    """A verifier's record of a monitoring period: it must exist before that period is issued."""
    require(actor, Role.VERIFIER, Role.ADMIN)
    project = _seen(_project(session, cmd.project_code, lock=True), actor)
    _native(project)
    overlapping = session.scalars(
        select(Verification).where(
            Verification.project_id == project.id,
            Verification.period_start <= cmd.period_end,
            Verification.period_end >= cmd.period_start,
        )
    ).first()
    if overlapping is not None:
        raise DomainError(
            code=ErrorCode.DUPLICATE,
            message=f"{project.code} is already verified for {overlapping.period_start} to "
            f"{overlapping.period_end}: a monitoring period is verified (and issued) once",
        )
    now = clock.now()
    verification = Verification(
        id=new_id("ver", now),
        project_id=project.id,
        verifier=cmd.verifier,
        period_start=cmd.period_start,
        period_end=cmd.period_end,
        verified_kg=cmd.verified_kg,
        report_sha256=cmd.report_sha256,
        report_url=cmd.report_url,
        actor=actor.id,
        created_at=now,
    )
    session.add(verification)
    session.flush()
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=journal.project_chain(project.code),
        operation="record_verification",
        payload={"id": verification.id, **cmd.model_dump(mode="json")},
    )
    return VerificationPublic(project_code=project.code, **_columns(verification, VerificationPublic))


def issue(*, session: Session, clock: Clock, actor: Actor, cmd: IssueCmd) -> OperationResult:
    """Issue a verified vintage as one fresh serial block; forestry puts its buffer share aside."""
    require(actor, Role.ADMIN)
    return journal.idempotent(
        session=session,
        clock=clock,
        actor=actor,
        key=cmd.idempotency_key,
        operation="issue",
        request=cmd,
        result_type=OperationResult,
        run=lambda: _issue(session, clock, actor, cmd),
    )


def _issue(session: Session, clock: Clock, actor: Actor, cmd: IssueCmd) -> OperationResult:
    verification = session.get(Verification, cmd.verification_id)
    if verification is None:
        raise DomainError(code=ErrorCode.NOT_VERIFIED, message=f"no verification {cmd.verification_id!r}")
    project = session.get(Project, verification.project_id)
    assert project is not None
    _native(project)
    if project.status != ProjectStatus.REGISTERED.value:
        raise DomainError(
            code=ErrorCode.PROJECT_NOT_REGISTERED, message=f"{project.code} is {project.status}"
        )
    now = clock.now()
    if verification.period_end >= now.date():
        raise DomainError(
            code=ErrorCode.PERIOD_NOT_ENDED,
            message=f"the monitoring period ends {verification.period_end}: issue after it",
        )
    quantity = verification.verified_kg
    journal.lock_unit_space(session)  # issuances one at a time: the check below sees any made meanwhile
    if session.scalars(select(Issuance).where(Issuance.verification_id == verification.id)).first():
        raise DomainError(code=ErrorCode.ALREADY_ISSUED, message="this verification is already issued")
    last = session.scalar(select(func.max(Issuance.span_end))) or 0
    span = Span(last + 1, last + quantity)
    vintage = vintage_of(verification.period_end)
    # The issuance appends to the vintage's own chain, which retirements in lanes also append to: it
    # has the vintage to itself, as every movement does (an earlier issuance may have units held).
    journal.lock_chain(session, journal.vintage_chain(project.code, vintage))
    issuance = Issuance(
        id=new_id("iss", now),
        project_id=project.id,
        verification_id=verification.id,
        vintage=vintage,
        quantity_kg=quantity,
        span_start=span.start,
        span_end=span.end,
        serial=serial(project.code, vintage, span),
        actor=actor.id,
        issued_at=now,
    )
    session.add(issuance)
    session.flush()
    kept, buffered = split_share(quantity, project.buffer_permille if project.nature_based else 0)
    blocks = []
    if kept:
        holding = _account(session, project.owner_organisation_id, AccountKind.HOLDING)
        blocks.append(
            _new_block(
                session, issuance, Span(span.start, span.start + kept - 1), BlockState.HELD, holding.id, now
            )
        )
    if buffered:
        buffer = _account(session, project.owner_organisation_id, AccountKind.BUFFER)
        blocks.append(
            _new_block(
                session, issuance, Span(span.end - buffered + 1, span.end), BlockState.BUFFER, buffer.id, now
            )
        )
    return _record(
        session,
        clock,
        actor,
        "issue",
        project,
        vintage,
        blocks,
        cmd.idempotency_key,
        {"verification_id": verification.id, "issuance_id": issuance.id, "serial": issuance.serial},
    )


def _new_block(
    session: Session, issuance: Issuance, span: Span, state: BlockState, account_id: str, now: datetime
) -> Block:
    block = Block(
        issuance_id=issuance.id,
        project_id=issuance.project_id,
        vintage=issuance.vintage,
        span_start=span.start,
        span_end=span.end,
        state=state.value,
        account_id=account_id,
        updated_at=now,
    )
    session.add(block)
    session.flush()
    return block


# --- moving units -------------------------------------------------------------------------------


def transfer(*, session: Session, clock: Clock, actor: Actor, cmd: TransferCmd) -> OperationResult:
    """Move units from the actor's holding account to another organisation's holding account."""
    destination = session.get(Account, cmd.to_account_id)
    if destination is None or destination.kind != AccountKind.HOLDING.value:
        raise NotFoundError(f"no holding account {cmd.to_account_id!r}")
    if destination.organisation_id == _holder(actor):
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message="a transfer goes to another organisation's holding account, not to your own",
        )
    return _move(
        session, clock, actor, cmd, cmd.units, "transfer", BlockState.HELD, lambda _s: destination.id
    )


def retire(*, session: Session, clock: Clock, actor: Actor, cmd: RetireCmd) -> OperationResult:
    """Retire units for good, on behalf of a beneficiary, into the holder's retirement account.

    On PostgreSQL this runs as one server-side call (see ``registry.fastpath``); same result,
    refusals and rows."""
    holder = _holder(actor)
    if (named := _fast_units(session, cmd.units)) is not None:
        code, vintage, wanted = named
        return fastpath.retire(
            session=session,
            clock=clock,
            actor=actor,
            holder=holder,
            cmd=cmd,
            project_code=code,
            vintage=vintage,
            wanted=wanted,
        )
    retirement_account = _account(session, holder, AccountKind.RETIREMENT)
    return _move(
        session,
        clock,
        actor,
        cmd,
        cmd.units,
        "retire",
        BlockState.RETIRED,
        lambda _s: retirement_account.id,
        retirement=cmd,
    )


def cancel(*, session: Session, clock: Clock, actor: Actor, cmd: CancelCmd) -> OperationResult:
    """Cancel units without a claim (errors, invalidation)."""
    account = _account(session, _holder(actor), AccountKind.RETIREMENT)
    return _move(
        session,
        clock,
        actor,
        cmd,
        cmd.units,
        "cancel",
        BlockState.CANCELLED,
        lambda _s: account.id,
        note=cmd.reason,
        destination=cmd.reason,  # kept on the blocks: shown wherever the cancelled units are
    )


def export(*, session: Session, clock: Clock, actor: Actor, cmd: ExportCmd) -> OperationResult:
    """Units leave this registry for another, with destination and reference."""
    account = _account(session, _holder(actor), AccountKind.EXPORT)
    return _move(
        session,
        clock,
        actor,
        cmd,
        cmd.units,
        "export",
        BlockState.EXPORTED,
        lambda _s: account.id,
        destination=f"{cmd.destination_registry}: {cmd.reference}",
    )


def reserve(*, session: Session, clock: Clock, actor: Actor, cmd: ReserveCmd) -> OperationResult:
    """Hold units for an order: they stay in the account but cannot move until released or posted.

    On PostgreSQL this runs as one server-side call (see ``registry.fastpath``); same result,
    refusals and rows."""
    _one_vintage_per_reservation(session, actor, cmd)
    if (named := _fast_units(session, cmd.units)) is not None:
        code, vintage, wanted = named
        return fastpath.reserve(
            session=session,
            clock=clock,
            actor=actor,
            holder=_holder(actor),
            cmd=cmd,
            project_code=code,
            vintage=vintage,
            wanted=wanted,
        )
    return _move(
        session,
        clock,
        actor,
        cmd,
        cmd.units,
        "reserve",
        BlockState.RESERVED,
        lambda block: block.account_id,
        reservation=cmd.reservation,
    )


def _one_vintage_per_reservation(session: Session, actor: Actor, cmd: ReserveCmd) -> None:
    """A reservation is posted as one retirement, of one project vintage: units of another one are
    refused at once, rather than found unpostable later. Reservations of one name are checked one at a
    time (``hold``), so two at once cannot both pass; a key used before is left to the reservation,
    which answers with its first result."""
    holder = _holder(actor)
    try:
        code, vintage, _ = _which(cmd.units)
    except DomainError:
        return  # a malformed serial: the reservation itself refuses it, after any earlier use of the key
    hold(session, f"neutralize.reservation.{holder}.{cmd.reservation}")
    used_before = select(IdempotencyRecord.key).where(
        IdempotencyRecord.actor == actor.id, IdempotencyRecord.key == cmd.idempotency_key
    )
    other = session.execute(
        select(Project.code, Block.vintage)
        .join(Project, Block.project_id == Project.id)
        .join(Account, Block.account_id == Account.id)
        .where(
            Block.reservation == cmd.reservation,
            Block.state == BlockState.RESERVED.value,
            Account.organisation_id == holder,
            or_(Project.code != code, Block.vintage != vintage),
            ~used_before.exists(),
        )
        .limit(1)
    ).first()
    if other is not None:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"reservation {cmd.reservation!r} holds units of {other.code} {other.vintage}: "
            "a reservation spans one project vintage",
        )


def release(*, session: Session, clock: Clock, actor: Actor, cmd: ReservationCmd) -> OperationResult:
    """Give reserved units back to the holding they came from (on PostgreSQL in one server-side call)."""
    return _reservation(session, clock, actor, cmd, "release", BlockState.HELD)


def post(*, session: Session, clock: Clock, actor: Actor, cmd: PostCmd) -> OperationResult:
    """Complete a reservation: retire what it holds with the claim's details given (on PostgreSQL in
    one server-side call). A suspended project's units are not retired (``PROJECT_NOT_REGISTERED``)."""
    return _reservation(session, clock, actor, cmd, "post", BlockState.RETIRED)


def reverse_buffer(
    *, session: Session, clock: Clock, actor: Actor, cmd: BufferReversalCmd
) -> OperationResult:
    """Cancel as many buffer units of the project vintage as were found invalid, and link the invalid
    credits to the buffer units that replace them; the link follows them onto any certificate. A held
    or reserved block is split so that only its invalid units carry the link (and keep it wherever
    they move); a retired, cancelled or exported block never changes its span, so it carries the link
    whole (a later reversal of other units of it adds its replacements to the link).

    Units are found invalid once: a range overlapping an earlier reversal's, or buffer units that were
    cancelled as replacements, is refused (``DUPLICATE``, ``UNITS_NOT_AVAILABLE``)."""
    require(actor, Role.ADMIN)

    def run() -> OperationResult:
        try:
            code, vintage, invalid = parse_serial(cmd.invalid_serial)
        except ValueError as error:
            raise DomainError(code=ErrorCode.INVALID_SERIAL, message=str(error)) from None
        project = _project(session, code)
        journal.lock_chain(session, journal.vintage_chain(project.code, vintage))
        affected = _invalid_blocks(session, project, vintage, invalid)
        _not_reversed_before(session, project.code, vintage, invalid)
        buffer = list(
            session.scalars(
                select(Block)
                .where(
                    Block.project_id == project.id,
                    Block.vintage == vintage,
                    Block.state == BlockState.BUFFER.value,
                )
                .order_by(Block.span_start)
                .with_for_update()
            )
        )
        try:
            spans = take_lowest([Span(b.span_start, b.span_end) for b in buffer], invalid.size)
        except ValueError:
            raise DomainError(
                code=ErrorCode.INSUFFICIENT_UNITS,
                message=f"the buffer of {code} {vintage} holds less than {invalid.size} kg",
            ) from None
        by_start = {b.span_start: b for b in buffer}
        picked = [(by_start[span.start], span) for span in spans]
        result = _apply(
            session,
            clock,
            actor,
            "reverse_buffer",
            picked,
            BlockState.CANCELLED,
            lambda block: block.account_id,
            cmd.idempotency_key,
            destination=f"replaces {cmd.invalid_serial}: {cmd.reason}",
            extra={"invalid_serial": cmd.invalid_serial, "reason": cmd.reason},
        )
        replacement = ", ".join(block.serial for block in result.blocks)  # every serial, in full
        now = clock.now()
        for block in affected:
            if not BlockState(block.state).is_final:
                part = Span(max(block.span_start, invalid.start), min(block.span_end, invalid.end))
                block = _split(session, block, part, BlockState(block.state), block.account_id, now,
                               reservation=block.reservation, retirement_id=block.retirement_id,
                               destination=block.destination)  # fmt: skip
            # Only a final block can carry a link already (other units of it were found invalid
            # before): the link grows, it is never overwritten.
            block.replaced_by = ", ".join(filter(None, (block.replaced_by, replacement)))
        session.flush()
        return result

    return journal.idempotent(
        session=session,
        clock=clock,
        actor=actor,
        key=cmd.idempotency_key,
        operation="reverse_buffer",
        request=cmd,
        result_type=OperationResult,
        run=run,
    )


def _invalid_blocks(session: Session, project: Project, vintage: int, invalid: Span) -> list[Block]:
    """The blocks (locked) holding the units found invalid: issued, non-buffer credits only."""
    rows = session.execute(
        select(Block, Account.kind)
        .join(Account, Block.account_id == Account.id)
        .where(
            Block.project_id == project.id,
            Block.vintage == vintage,
            Block.span_start <= invalid.end,
            Block.span_end >= invalid.start,
            Block.state != BlockState.BUFFER.value,
        )
        .order_by(Block.span_start)
        .with_for_update(of=Block)
    ).all()
    covered = sum(min(b.span_end, invalid.end) - max(b.span_start, invalid.start) + 1 for b, _ in rows)
    if covered != invalid.size:
        raise DomainError(
            code=ErrorCode.UNITS_NOT_AVAILABLE,
            message="the invalid range must lie within issued, non-buffer credits",
        )
    if any(kind == AccountKind.BUFFER.value for _, kind in rows):
        raise DomainError(
            code=ErrorCode.UNITS_NOT_AVAILABLE,
            message="the range holds buffer units cancelled as replacements: they are not credits in use",
        )
    return [block for block, _ in rows]


def _not_reversed_before(session: Session, code: str, vintage: int, invalid: Span) -> None:
    """Refuse units an earlier reversal of this vintage already found invalid (its journal entries
    name the ranges; a held block keeps no trace of them once it is split and moved)."""
    earlier = session.scalars(
        select(JournalEntry.payload).where(
            JournalEntry.chain == journal.vintage_chain(code, vintage),
            JournalEntry.operation == "reverse_buffer",
        )
    )
    for payload in earlier:
        _, _, span = parse_serial(str(payload["invalid_serial"]))
        if span.start <= invalid.end and span.end >= invalid.start:
            raise DomainError(
                code=ErrorCode.DUPLICATE,
                message=f"units of {payload['invalid_serial']} were already found invalid and replaced",
            )


def _fast_units(session: Session, units: Units) -> tuple[str, int, Span | None] | None:
    """What ``units`` names, if this session's database moves them in one server-side call."""
    if not fastpath.applies(session):
        return None
    try:
        return _which(units)
    except DomainError:
        return None  # a malformed serial: the Python path refuses it, after any earlier use of the key


def _holder(actor: Actor) -> str:
    require(actor, Role.ADMIN, Role.PROJECT_OWNER, Role.ORGANISER, Role.MEMBER, Role.INTEGRATOR)
    if actor.organisation_id is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="only an organisation holds credits")
    return actor.organisation_id


def _reservation(
    session: Session,
    clock: Clock,
    actor: Actor,
    cmd: PostCmd | ReservationCmd,
    operation: Literal["post", "release"],
    state: BlockState,
) -> OperationResult:
    holder = _holder(actor)
    if fastpath.applies(session):
        return fastpath.post_or_release(
            session=session, clock=clock, actor=actor, holder=holder, cmd=cmd, operation=operation
        )

    def reserved() -> list[Block]:
        query = (
            select(Block)
            .join(Account, Block.account_id == Account.id)
            .where(
                Block.reservation == cmd.reservation,
                Block.state == BlockState.RESERVED.value,
                Account.organisation_id == holder,
            )
            .order_by(Block.span_start)
        )
        return list(session.scalars(query.with_for_update(of=Block)))

    def run() -> OperationResult:
        blocks = reserved()
        if blocks:  # lock the vintage's chain, then read again: nothing changes under us
            first = blocks[0]
            code = project_by_id(session=session, project_id=first.project_id).code
            journal.lock_chain(session, journal.vintage_chain(code, first.vintage))
            blocks = reserved()
        if not blocks:
            raise DomainError(
                code=ErrorCode.UNITS_NOT_AVAILABLE, message=f"nothing is reserved as {cmd.reservation!r}"
            )
        if len({(b.project_id, b.vintage) for b in blocks}) > 1:
            raise DomainError(
                code=ErrorCode.INVALID_REQUEST, message="a reservation spans one project vintage"
            )
        picked = [(block, Span(block.span_start, block.span_end)) for block in blocks]
        if isinstance(cmd, PostCmd):
            _movable(_project(session, project_by_id(session=session, project_id=blocks[0].project_id).code))
            account = _account(session, holder, AccountKind.RETIREMENT)
            return _apply(
                session,
                clock,
                actor,
                operation,
                picked,
                state,
                lambda _b: account.id,
                cmd.idempotency_key,
                retirement=cmd,
                extra={"reservation": cmd.reservation},
            )
        return _apply(
            session,
            clock,
            actor,
            operation,
            picked,
            state,
            lambda b: b.account_id,
            cmd.idempotency_key,
            extra={"reservation": cmd.reservation},
        )

    return journal.idempotent(
        session=session,
        clock=clock,
        actor=actor,
        key=cmd.idempotency_key,
        operation=operation,
        request=cmd,
        result_type=OperationResult,
        run=run,
    )


def _move(
    session: Session,
    clock: Clock,
    actor: Actor,
    cmd: TransferCmd | RetireCmd | CancelCmd | ExportCmd | ReserveCmd,
    units: Units,
    operation: str,
    state: BlockState,
    account_for: Callable[[Block], str],
    retirement: RetireCmd | None = None,
    reservation: str | None = None,
    destination: str | None = None,
    note: str | None = None,
) -> OperationResult:
    holder = _holder(actor)

    def run() -> OperationResult:
        project, picked = _pick(session, holder, units, suspended_too=state is BlockState.CANCELLED)
        extra = {
            k: v for k, v in (("reservation", reservation), ("destination", destination), ("note", note)) if v
        }
        return _apply(
            session,
            clock,
            actor,
            operation,
            picked,
            state,
            account_for,
            cmd.idempotency_key,
            retirement=retirement,
            reservation=reservation,
            destination=destination,
            extra=extra,
            project=project,
        )

    return journal.idempotent(
        session=session,
        clock=clock,
        actor=actor,
        key=cmd.idempotency_key,
        operation=operation,
        request=cmd,
        result_type=OperationResult,
        run=run,
    )


def _pick(
    session: Session, holder: str | None, units: Units, *, suspended_too: bool = False
) -> tuple[Project, list[tuple[Block, Span]]]:
    """The project, and the held blocks (locked) and the parts of them that ``units`` names, lowest
    serials first. A suspended project's units do not move (but may be cancelled: ``suspended_too``)."""
    code, vintage, wanted = _which(units)
    project = _project(session, code)
    if not suspended_too:
        _movable(project)
    journal.lock_chain(session, journal.vintage_chain(project.code, vintage))
    query = (
        select(Block)
        .join(Account, Block.account_id == Account.id)
        .where(
            Block.project_id == project.id,
            Block.vintage == vintage,
            Block.state == BlockState.HELD.value,
            Account.organisation_id == holder,
            Account.kind == AccountKind.HOLDING.value,
        )
        .order_by(Block.span_start)
    )
    if wanted is not None:
        query = query.where(Block.span_start <= wanted.end, Block.span_end >= wanted.start)
    blocks = list(session.scalars(query.with_for_update(of=Block)))
    if wanted is not None:
        return project, _cover(blocks, wanted)
    assert units.quantity_kg is not None
    try:
        spans = take_lowest([Span(b.span_start, b.span_end) for b in blocks], units.quantity_kg)
    except ValueError:
        held = sum(b.span_end - b.span_start + 1 for b in blocks)
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS,
            message=f"{held} kg of {code} {vintage} held, {units.quantity_kg} asked",
        ) from None
    by_start = {b.span_start: b for b in blocks}
    return project, [(by_start[span.start], span) for span in spans]


def _movable(project: Project) -> None:
    if project.status == ProjectStatus.SUSPENDED.value:
        raise DomainError(
            code=ErrorCode.PROJECT_NOT_REGISTERED,
            message=f"{project.code} is suspended: its units do not move until it is registered again",
        )


def _which(units: Units) -> tuple[str, int, Span | None]:
    """The project code, vintage and (for a serial) the span that ``units`` names."""
    if units.serial is None:
        assert units.project_code is not None and units.vintage is not None
        return units.project_code, units.vintage, None
    try:
        return parse_serial(units.serial)
    except ValueError as error:
        raise DomainError(code=ErrorCode.INVALID_SERIAL, message=str(error)) from None


def _cover(blocks: Sequence[Block], wanted: Span) -> list[tuple[Block, Span]]:
    """Parts of ``blocks`` covering ``wanted`` exactly; every unit of it must be held here."""
    picked, next_unit = [], wanted.start
    for block in blocks:
        if block.span_start > next_unit:
            break
        part = Span(max(block.span_start, next_unit), min(block.span_end, wanted.end))
        picked.append((block, part))
        next_unit = part.end + 1
    if next_unit <= wanted.end:
        raise DomainError(
            code=ErrorCode.UNITS_NOT_AVAILABLE,
            message=f"units {next_unit} to {wanted.end} are not held in this account",
        )
    return picked


def _apply(
    session: Session,
    clock: Clock,
    actor: Actor,
    operation: str,
    picked: list[tuple[Block, Span]],
    state: BlockState,
    account_for: Callable[[Block], str],
    idempotency_key: str,
    *,
    retirement: RetireCmd | PostCmd | None = None,
    reservation: str | None = None,
    destination: str | None = None,
    extra: Mapping[str, object] | None = None,
    project: Project | None = None,
) -> OperationResult:
    now = clock.now()
    first = picked[0][0]
    project = project or session.get(Project, first.project_id)
    assert project is not None
    retirement_id = None
    if retirement is not None:
        retirement_id = new_id("ret", now)
        session.add(
            Retirement(
                id=retirement_id,
                project_id=project.id,
                vintage=first.vintage,
                quantity_kg=sum(span.size for _, span in picked),
                beneficiary=retirement.beneficiary,
                reason=retirement.reason,
                claim_period_start=retirement.claim_period_start,
                claim_period_end=retirement.claim_period_end,
                claim_country=retirement.claim_country,
                actor=actor.id,
                retired_at=now,
            )
        )
        session.flush()
    moved = [
        _split(
            session,
            block,
            span,
            state,
            account_for(block),
            now,
            reservation=reservation,
            retirement_id=retirement_id,
            destination=destination,
        )
        for block, span in picked
    ]
    payload = {"retirement_id": retirement_id, **(extra or {})}
    if retirement is not None:
        payload["beneficiary"] = retirement.beneficiary
    return _record(session, clock, actor, operation, project, first.vintage, moved, idempotency_key, payload)


def _split(
    session: Session,
    block: Block,
    part: Span,
    state: BlockState,
    account_id: str,
    now: datetime,
    *,
    reservation: str | None,
    retirement_id: str | None,
    destination: str | None,
) -> Block:
    """Move ``part`` of ``block``: the block shrinks (or changes whole) and the part becomes its own block."""
    current = Span(block.span_start, block.span_end)
    if BlockState(block.state).is_final:
        raise DomainError(
            code=ErrorCode.UNITS_NOT_AVAILABLE, message="retired and cancelled units never move"
        )
    attributes = {
        "state": state.value,
        "account_id": account_id,
        "reservation": reservation,
        "retirement_id": retirement_id,
        "destination": destination,
        "updated_at": now,
    }
    if part == current:
        for name, value in attributes.items():
            setattr(block, name, value)
        session.flush()
        return block
    remainder = current.without(part)
    block.span_start, block.span_end, block.updated_at = remainder[0].start, remainder[0].end, now
    session.flush()  # shrink first: at no moment do two blocks overlap
    keep = {"state": block.state, "account_id": block.account_id, "reservation": block.reservation,
            "replaced_by": block.replaced_by}  # fmt: skip
    for rest in remainder[1:]:
        session.add(
            Block(
                issuance_id=block.issuance_id,
                project_id=block.project_id,
                vintage=block.vintage,
                span_start=rest.start,
                span_end=rest.end,
                updated_at=now,
                **keep,
            )
        )
    moved = Block(
        issuance_id=block.issuance_id,
        project_id=block.project_id,
        vintage=block.vintage,
        span_start=part.start,
        span_end=part.end,
        replaced_by=block.replaced_by,  # credits found invalid take their link wherever they go
        **attributes,
    )
    session.add(moved)
    session.flush()
    return moved


def _record(
    session: Session,
    clock: Clock,
    actor: Actor,
    operation: str,
    project: Project,
    vintage: int,
    blocks: Sequence[Block],
    idempotency_key: str,
    payload: dict[str, object],
) -> OperationResult:
    shown = [block_public(b, project.code) for b in blocks]
    entry = journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=journal.vintage_chain(project.code, vintage),
        operation=operation,
        idempotency_key=idempotency_key,
        payload={**payload, "blocks": [b.model_dump(mode="json") for b in shown]},
    )
    return OperationResult(
        operation=operation,
        project_code=project.code,
        vintage=vintage,
        quantity_kg=sum(b.kg for b in shown),
        blocks=shown,
        retirement_id=payload.get("retirement_id"),
        journal=entry,
        at=clock.now(),
    )


def block_public(block: Block, project_code: str, span: Span | None = None) -> BlockPublic:
    """``block`` as results show it; ``span``: only that part of it."""
    span = span or Span(block.span_start, block.span_end)
    return BlockPublic(
        serial=serial(project_code, block.vintage, span),
        project_code=project_code,
        vintage=block.vintage,
        kg=span.size,
        state=block.state,
        account_id=block.account_id,
        reservation=block.reservation,
        retirement_id=block.retirement_id,
        destination=block.destination,
        replaced_by=block.replaced_by,
    )


# --- reading and checking -------------------------------------------------------------------------


def holdings(
    *,
    session: Session,
    organisation_id: str,
    project_code: str | None = None,
    vintage: int | None = None,
    state: BlockState | None = None,
    page: int = 1,
    page_size: int = 50,
) -> list[BlockPublic]:
    """The blocks in an organisation's accounts, in serial order, filtered by project, vintage or state."""
    query = (
        select(Block, Project.code)
        .join(Project, Block.project_id == Project.id)
        .join(Account, Block.account_id == Account.id)
        .where(Account.organisation_id == organisation_id)
    )
    if project_code:
        query = query.where(Project.code == project_code)
    if vintage is not None:
        query = query.where(Block.vintage == vintage)
    if state is not None:
        query = query.where(Block.state == state.value)
    query = query.order_by(Project.code, Block.vintage, Block.span_start).offset((page - 1) * page_size)
    return [block_public(block, code) for block, code in session.execute(query.limit(page_size))]


def held_kg(*, session: Session, organisation_id: str, project_code: str, vintage: int) -> int:
    """The kilograms of a project vintage an organisation holds free to move (not reserved)."""
    kg = session.scalar(
        select(func.coalesce(func.sum(Block.span_end - Block.span_start + 1), 0))
        .join(Project, Block.project_id == Project.id)
        .join(Account, Block.account_id == Account.id)
        .where(
            Account.organisation_id == organisation_id,
            Project.code == project_code,
            Block.vintage == vintage,
            Block.state == BlockState.HELD.value,
        )
    )
    return int(kg or 0)


def where_did_it_go(
    *,
    session: Session,
    text: str,
    actor: Actor | None = None,
    private: bool = False,
    clip: bool = False,
    page: int = 1,
    page_size: int = 200,
) -> list[BlockPublic]:
    """Every block overlapping a serial (range), in serial order, one page of them: where each of its
    kilograms is now. ``clip``: each block cut to the range asked. Unless ``private`` (the operator's
    command line), the answer is the public's: no accounts, no reservation names (a reservation is
    an order's id), and a draft project ``actor`` may not see answers ``NOT_FOUND``."""
    try:
        code, vintage, wanted = parse_serial(text)
    except ValueError as error:
        raise DomainError(code=ErrorCode.INVALID_SERIAL, message=str(error)) from None
    project = _project(session, code)
    if not private:
        _seen(project, actor)
    blocks = session.scalars(
        select(Block)
        .where(
            Block.project_id == project.id,
            Block.vintage == vintage,
            Block.span_start <= wanted.end,
            Block.span_end >= wanted.start,
        )
        .order_by(Block.span_start)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    shown = []
    for block in blocks:
        span = Span(block.span_start, block.span_end)
        if clip:
            span = Span(max(span.start, wanted.start), min(span.end, wanted.end))
        one = block_public(block, code, span)
        shown.append(one if private else one.model_copy(update={"account_id": "", "reservation": None}))
    return shown


def check(*, session: Session) -> CheckReport:
    """Conservation per project vintage (issued = held + reserved + retired + cancelled + buffer +
    exported), blocks inside their issuance, and no two blocks sharing a unit."""
    problems: list[str] = []
    # One statement, so issuances and blocks are read in one snapshot even while commands commit.
    size = Block.span_end - Block.span_start + 1
    issued_rows = select(
        Issuance.project_id, Issuance.vintage, literal("issued"), func.sum(Issuance.quantity_kg)
    )
    block_rows = select(Block.project_id, Block.vintage, Block.state, func.sum(size))
    both = union_all(
        issued_rows.group_by(Issuance.project_id, Issuance.vintage),
        block_rows.group_by(Block.project_id, Block.vintage, Block.state),
    )
    issued: dict[tuple[str, int], int] = {}
    held: dict[tuple[str, int], dict[str, int]] = {}
    for project_id, vintage, state, kg in session.execute(both).all():
        if state == "issued":
            issued[(project_id, vintage)] = int(kg)
        else:
            held.setdefault((project_id, vintage), {})[state] = int(kg)
    codes = dict(session.execute(select(Project.id, Project.code)).all())
    vintages = []
    for key in sorted(set(issued) | set(held)):
        by_state = {state.value: held.get(key, {}).get(state.value, 0) for state in BlockState}
        balanced = sum(by_state.values()) == issued.get(key, 0)
        if not balanced:
            problems.append(
                f"{codes.get(key[0])} {key[1]}: issued {issued.get(key, 0)} kg, blocks hold "
                f"{sum(by_state.values())} kg"
            )
        vintages.append(
            VintageBalance(
                project_code=codes.get(key[0], key[0]),
                vintage=key[1],
                issued_kg=issued.get(key, 0),
                by_state_kg=by_state,
                balanced=balanced,
            )
        )
    problems += _structure_problems(session)
    problems += mirror.block_problems(session=session) + mirror.share_problems(session=session)
    return CheckReport(ok=not problems, vintages=vintages, problems=problems)


def _structure_problems(session: Session) -> list[str]:
    problems = []
    outside = (
        session.execute(
            select(Block.id)
            .join(Issuance, Block.issuance_id == Issuance.id)
            .where((Block.span_start < Issuance.span_start) | (Block.span_end > Issuance.span_end))
        )
        .scalars()
        .all()
    )
    problems += [f"block {block_id} lies outside its issuance" for block_id in outside]
    previous: Block | None = None
    for block in session.scalars(select(Block).order_by(Block.span_start)):
        if previous is not None and block.span_start <= previous.span_end:
            problems.append(f"blocks {previous.id} and {block.id} share units from {block.span_start}")
        previous = block
    return problems


def _columns(row: object, shape: type) -> dict[str, object]:
    return {name: getattr(row, name) for name in shape.model_fields if hasattr(row, name)}  # type: ignore[attr-defined]


def issuances_of(*, session: Session, project_code: str) -> list[IssuancePublic]:
    project = _project(session, project_code)
    rows = session.scalars(
        select(Issuance).where(Issuance.project_id == project.id).order_by(Issuance.span_start)
    )
    return [IssuancePublic(project_code=project.code, **_columns(row, IssuancePublic)) for row in rows]


def retirements_of(
    *,
    session: Session,
    project_code: str | None = None,
    vintage: int | None = None,
    beneficiary: str | None = None,
    page: int = 1,
    page_size: int = 50,
    public: bool = False,
    actor: Actor | None = None,
) -> list[RetirementPublic]:
    """Retirements, newest first, filtered by project, vintage or (part of) the beneficiary's name,
    taken literally. ``public``: a draft project ``actor`` may not see answers ``NOT_FOUND``."""
    query = select(Retirement, Project.code).join(Project, Retirement.project_id == Project.id)
    if project_code is not None:
        project = _project(session, project_code)
        query = query.where(Project.code == (_seen(project, actor) if public else project).code)
    if vintage is not None:
        query = query.where(Retirement.vintage == vintage)
    if beneficiary:
        query = query.where(Retirement.beneficiary.contains(beneficiary, autoescape=True))
    query = (
        query.order_by(Retirement.retired_at.desc(), Retirement.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    result = []
    for row, code in session.execute(query).all():
        blocks = session.scalars(
            select(Block).where(Block.retirement_id == row.id).order_by(Block.span_start)
        )
        serials = [serial(code, b.vintage, Span(b.span_start, b.span_end)) for b in blocks]
        result.append(RetirementPublic(project_code=code, serials=serials, **_columns(row, RetirementPublic)))
    return result


def beneficiaries(*, session: Session, retirement_ids: Sequence[str]) -> dict[str, str]:
    """Who each retirement was for, by retirement id."""
    rows = session.execute(
        select(Retirement.id, Retirement.beneficiary).where(Retirement.id.in_(retirement_ids))
    )
    return dict(rows.all())
