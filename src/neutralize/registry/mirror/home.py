"""The platform's own credits at home registries: the units it holds there (its stock), the
retirements an operator made there, and the kilogram shares of those retirements allocated to buyers,
with a Merkle root over each retirement's shares."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.core.canonical import canonical_json
from neutralize.core.clock import Clock
from neutralize.core.db import add_once
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError, Problem
from neutralize.core.ids import new_id
from neutralize.registry import journal
from neutralize.registry.domain import KG_PER_TONNE, merkle_root
from neutralize.registry.importers.records import Programme, SerialForm
from neutralize.registry.importers.serials import SerialError, parse_gs_serial, parse_vcs_serial
from neutralize.registry.mirror.blocks import public_mirrored_project
from neutralize.registry.mirror.schemas import (
    HomeHoldingCreate,
    HomeHoldingPublic,
    HomeRetirementCreate,
    HomeRetirementPublic,
    ShareCreate,
    SharePublic,
)
from neutralize.registry.models import HomeHolding, HomeRetirement, Project, RetirementShare

HOME_SERIALS = {Programme.VERRA.value: parse_vcs_serial, Programme.GOLD_STANDARD.value: parse_gs_serial}
HOME_FORMS = (SerialForm.VCS_13, SerialForm.VCS_12, SerialForm.GS)  # the forms that name the home project


def record_holding(
    *, session: Session, clock: Clock, actor: Actor, cmd: HomeHoldingCreate
) -> HomeHoldingPublic:
    """Record units the platform holds at a home registry; retirements there draw them down."""
    require(actor, Role.ADMIN)
    project = _mirrored_project(session, cmd.project_code)
    _home_serial(project, cmd.serial, cmd.quantity_tonnes)

    def taken() -> bool:
        query = select(HomeHolding.id).where(
            HomeHolding.programme == project.standard, HomeHolding.serial == cmd.serial
        )
        return session.scalars(query).first() is not None

    recorded = DomainError(code=ErrorCode.DUPLICATE, message=f"the holding {cmd.serial} is recorded")
    if taken():
        raise recorded
    now = clock.now()
    row = HomeHolding(
        id=new_id("hold", now),
        project_id=project.id,
        programme=project.standard,
        home_account=cmd.home_account,
        serial=cmd.serial,
        vintage=cmd.vintage,
        quantity_tonnes=cmd.quantity_tonnes,
        retired_tonnes=0,
        actor=actor.id,
        recorded_at=now,
    )
    add_once(session, [row], taken=taken, refusal=recorded)  # the same holding sent twice at once
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"home:{project.code}",
        operation="record_holding",
        payload={"id": row.id, **cmd.model_dump(mode="json")},
    )
    return HomeHoldingPublic.model_validate(row)


def holdings_at_home(*, session: Session, project_code: str | None = None) -> list[HomeHoldingPublic]:
    """The platform's stock at home registries, with what is still unretired."""
    query = select(HomeHolding).order_by(HomeHolding.recorded_at, HomeHolding.id)
    if project_code is not None:
        query = query.where(HomeHolding.project_id == _mirrored_project(session, project_code).id)
    return [HomeHoldingPublic.model_validate(row) for row in session.scalars(query)]


def _home_serial(project: Project, serial: str, tonnes: int) -> None:
    """``serial`` as the home registry publishes it: in its grammar, naming ``project`` (Kyoto/CDM
    ranges name the CDM project instead), and numbering ``tonnes`` units."""
    parse = HOME_SERIALS.get(project.standard)
    if parse is None:
        return
    try:
        read = parse(serial)
    except SerialError as error:
        raise DomainError(
            code=ErrorCode.INVALID_SERIAL,
            message=f"{serial!r}: {error.message}",
            problems=[Problem(code=ErrorCode.INVALID_SERIAL, message=error.message, field="serial",
                              hint=error.hint)],
        ) from None  # fmt: skip
    if read.form in HOME_FORMS and read.project_id != project.home_id:
        raise DomainError(
            code=ErrorCode.INVALID_SERIAL,
            message=f"the serial names project {read.project_id}, not {project.code}",
        )
    if read.quantity != tonnes:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"the serial numbers {read.quantity} t, not the {tonnes} t given",
            problems=[Problem(code=ErrorCode.INVALID_REQUEST, message="last unit − first unit + 1 must "
                              "equal quantity_tonnes", field="quantity_tonnes")],
        )  # fmt: skip


def _mirrored_project(session: Session, code: str) -> Project:
    project = session.scalars(select(Project).where(Project.code == code)).first()
    if project is None:
        raise NotFoundError(f"no project {code!r}")
    if project.native:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"{code} is a native project: its credits live and retire in this registry, "
            "not at a home registry",
        )
    return project


def _draw(session: Session, holding_id: str, project: Project, tonnes: int) -> int:
    """Take ``tonnes`` of a holding for a home retirement; never more than is unretired. Returns the
    holding's vintage."""
    holding = session.scalars(
        select(HomeHolding).where(HomeHolding.id == holding_id).with_for_update()
    ).first()
    if holding is None or holding.project_id != project.id:
        raise NotFoundError(f"no holding {holding_id!r} of {project.code}")
    if holding.retired_tonnes + tonnes > holding.quantity_tonnes:
        unretired = holding.quantity_tonnes - holding.retired_tonnes
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS, message=f"{unretired} t of this holding are unretired"
        )
    holding.retired_tonnes += tonnes
    return holding.vintage


def record_retirement(
    *, session: Session, clock: Clock, actor: Actor, cmd: HomeRetirementCreate
) -> HomeRetirementPublic:
    """Record a retirement made on the home registry, so kilogram shares of it can be allocated."""
    require(actor, Role.ADMIN)
    project = _mirrored_project(session, cmd.project_code)

    def taken() -> bool:
        query = select(HomeRetirement.id).where(
            HomeRetirement.programme == project.standard,
            HomeRetirement.home_retirement_id == cmd.home_retirement_id,
        )
        return session.scalars(query).first() is not None

    recorded = DomainError(
        code=ErrorCode.DUPLICATE, message=f"home retirement {cmd.home_retirement_id} is recorded"
    )
    if taken():
        raise recorded
    _home_serial(project, cmd.serial, cmd.quantity_tonnes)
    if cmd.retired_on > clock.now().date():
        raise DomainError(
            code=ErrorCode.OUT_OF_RANGE,
            message=f"a retirement made on the home registry on {cmd.retired_on} is yet to be made",
            problems=[
                Problem(code=ErrorCode.OUT_OF_RANGE, message="a day that has not come", field="retired_on")
            ],
        )
    vintage = _draw(session, cmd.holding_id, project, cmd.quantity_tonnes) if cmd.holding_id else cmd.vintage
    if vintage is None:
        raise DomainError(code=ErrorCode.MISSING_FIELD, message="give the holding drawn on, or the vintage")
    if cmd.vintage is not None and cmd.vintage != vintage:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST, message=f"the holding is of vintage {vintage}, not {cmd.vintage}"
        )
    now = clock.now()
    row = HomeRetirement(
        id=new_id("hret", now),
        project_id=project.id,
        holding_id=cmd.holding_id,
        programme=project.standard,
        vintage=vintage,
        home_retirement_id=cmd.home_retirement_id,
        serial=cmd.serial,
        quantity_tonnes=cmd.quantity_tonnes,
        quantity_kg=cmd.quantity_tonnes * KG_PER_TONNE,
        allocated_kg=0,
        retired_on=cmd.retired_on,
        beneficiary_text=cmd.beneficiary_text,
        merkle_root=merkle_root([]),
        actor=actor.id,
        recorded_at=now,
    )
    add_once(session, [row], taken=taken, refusal=recorded)  # the same form sent twice at once
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"home:{project.code}",
        operation="record_retirement",
        payload={"id": row.id, **cmd.model_dump(mode="json")},
    )
    return home_retirement_public(session=session, retirement_id=row.id)


def allocate_share(*, session: Session, clock: Clock, actor: Actor, cmd: ShareCreate) -> HomeRetirementPublic:
    """Allocate ``kg`` of a recorded home retirement to a buyer; never more than it holds."""
    require(actor, Role.ADMIN)
    locked = select(HomeRetirement).where(HomeRetirement.id == cmd.home_retirement_id).with_for_update()
    # populate_existing: a row the session already holds (the market reads them first) is read again
    row = session.scalars(locked.execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFoundError(f"no home retirement {cmd.home_retirement_id!r}")
    shared = select(RetirementShare.id).where(
        RetirementShare.home_retirement_id == row.id, RetirementShare.reference == cmd.reference
    )
    if session.scalars(shared).first() is not None:  # the retirement's row lock orders allocations
        raise DomainError(
            code=ErrorCode.DUPLICATE, message=f"this retirement already has a share for {cmd.reference!r}"
        )
    if row.allocated_kg + cmd.kg > row.quantity_kg:
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS,
            message=f"{row.quantity_kg - row.allocated_kg} kg of this retirement are unallocated",
        )
    session.add(
        RetirementShare(
            home_retirement_id=row.id,
            kg=cmd.kg,
            beneficiary=cmd.beneficiary,
            reference=cmd.reference,
            allocated_at=clock.now(),
        )
    )
    row.allocated_kg += cmd.kg
    session.flush()
    row.merkle_root = merkle_root(_share_leaves(session, row.id))
    project = session.get(Project, row.project_id)
    assert project is not None
    journal.append(
        session=session,
        clock=clock,
        actor=actor,
        chain=f"home:{project.code}",
        operation="allocate_share",
        payload={**cmd.model_dump(mode="json"), "merkle_root": row.merkle_root},
    )
    return home_retirement_public(session=session, retirement_id=row.id)


def _shares(session: Session, retirement_id: str) -> list[RetirementShare]:
    query = select(RetirementShare).where(RetirementShare.home_retirement_id == retirement_id)
    return list(session.scalars(query.order_by(RetirementShare.id)))


def _share_leaves(session: Session, retirement_id: str) -> list[bytes]:
    return [
        canonical_json({"id": s.id, "kg": s.kg, "beneficiary": s.beneficiary, "reference": s.reference})
        for s in _shares(session, retirement_id)
    ]


def home_retirement_public(*, session: Session, retirement_id: str) -> HomeRetirementPublic:
    row = session.get(HomeRetirement, retirement_id)
    if row is None:
        raise NotFoundError(f"no home retirement {retirement_id!r}")
    project = session.get(Project, row.project_id)
    assert project is not None
    shares = [
        SharePublic(id=s.id, kg=s.kg, beneficiary=s.beneficiary, reference=s.reference)
        for s in _shares(session, row.id)
    ]
    return HomeRetirementPublic(
        id=row.id,
        project_code=project.code,
        programme=row.programme,
        vintage=row.vintage,
        home_retirement_id=row.home_retirement_id,
        serial=row.serial,
        quantity_tonnes=row.quantity_tonnes,
        quantity_kg=row.quantity_kg,
        allocated_kg=row.allocated_kg,
        retired_on=row.retired_on,
        beneficiary_text=row.beneficiary_text,
        merkle_root=row.merkle_root,
        shares=shares,
    )


def share_problems(*, session: Session) -> list[str]:
    """Home retirements whose shares exceed them or whose published root no longer matches, and
    holdings whose retired tonnes are not the retirements drawn on them."""
    problems = []
    drawn: dict[str, int] = {}
    for holding_id, tonnes in session.execute(
        select(HomeRetirement.holding_id, HomeRetirement.quantity_tonnes).where(
            HomeRetirement.holding_id.is_not(None)
        )
    ).all():
        drawn[str(holding_id)] = drawn.get(str(holding_id), 0) + tonnes
    for holding in session.scalars(select(HomeHolding)):
        if drawn.get(holding.id, 0) != holding.retired_tonnes:
            problems.append(
                f"home holding {holding.serial}: {holding.retired_tonnes} t retired, "
                f"retirements drew {drawn.get(holding.id, 0)} t"
            )
    for row in session.scalars(select(HomeRetirement)):
        total = sum(s.kg for s in _shares(session, row.id))
        if total != row.allocated_kg or total > row.quantity_kg:
            problems.append(
                f"home retirement {row.home_retirement_id}: shares {total} kg of {row.quantity_kg} kg"
            )
        if merkle_root(_share_leaves(session, row.id)) != row.merkle_root:
            problems.append(
                f"home retirement {row.home_retirement_id}: its shares do not match the published root"
            )
    return problems


def home_retirements_of(
    *, session: Session, project_code: str, page: int = 1, page_size: int = 50
) -> list[HomeRetirementPublic]:
    """The retirements the platform recorded at a project's home registry, newest first."""
    project = public_mirrored_project(session, project_code)
    ids = session.scalars(
        select(HomeRetirement.id)
        .where(HomeRetirement.project_id == project.id)
        .order_by(HomeRetirement.retired_on.desc(), HomeRetirement.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return [home_retirement_public(session=session, retirement_id=i) for i in ids]


def retirements_with_room(*, session: Session, project_code: str, vintage: int) -> list[HomeRetirementPublic]:
    """Recorded home retirements of a project vintage with kilograms still unallocated, oldest first."""
    project = _mirrored_project(session, project_code)
    ids = session.scalars(
        select(HomeRetirement.id)
        .where(
            HomeRetirement.project_id == project.id,
            HomeRetirement.vintage == vintage,
            HomeRetirement.allocated_kg < HomeRetirement.quantity_kg,
        )
        .order_by(HomeRetirement.recorded_at, HomeRetirement.id)
    )
    return [home_retirement_public(session=session, retirement_id=i) for i in ids]


def unretired_stock_kg(*, session: Session, project_code: str, vintage: int) -> int:
    """Kilograms the platform holds at home for a project vintage and has not retired there."""
    project = _mirrored_project(session, project_code)
    tonnes = session.scalar(
        select(func.coalesce(func.sum(HomeHolding.quantity_tonnes - HomeHolding.retired_tonnes), 0)).where(
            HomeHolding.project_id == project.id, HomeHolding.vintage == vintage
        )
    )
    return int(tonnes or 0) * KG_PER_TONNE
