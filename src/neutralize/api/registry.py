"""Registry routes: public reads, and commands for holders, verifiers and admins (API keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from neutralize.access.domain import Role
from neutralize.access.service import require
from neutralize.api.deps import ActorDep, ClockDep, SessionDep, SettingsDep
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.signing import verifier_from_settings
from neutralize.registry import exports, journal, mirror, service
from neutralize.registry.domain import BlockState
from neutralize.registry.importers.records import BlockStatus, Programme
from neutralize.registry.schemas import (
    AuditReport,
    BlockPublic,
    BufferReversalCmd,
    CancelCmd,
    CheckReport,
    ExportCmd,
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
    VerificationCreate,
    VerificationPublic,
)

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])
Page = Annotated[int, Query(ge=1, le=10_000)]
PageSize = Annotated[int, Query(ge=1, le=200)]
CREATED = status.HTTP_201_CREATED


# --- public -------------------------------------------------------------------------------------


@router.get("/projects")
def list_projects(
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    standard: Annotated[str | None, Query(max_length=40)] = None,
    label: Annotated[str | None, Query(max_length=40)] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> list[ProjectPublic]:
    """Projects (all but drafts), filtered by status, standard or quality label."""
    return service.list_projects(
        session=session,
        status=status_,
        standard=standard,
        label=label,
        public=True,
        page=page,
        page_size=page_size,
    )


@router.get("/projects/{code}")
def read_project(code: str, session: SessionDep, actor: ActorDep) -> ProjectPublic:
    """A project; a draft only for its owner organisation and admins (``not_found`` to others)."""
    return service.visible_project(session=session, code=code, actor=actor)


@router.get("/projects/{code}/home-blocks")
def list_home_blocks(
    code: str,
    session: SessionDep,
    status_: Annotated[BlockStatus | None, Query(alias="status")] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> list[mirror.MirroredBlockPublic]:
    """A mirrored project's blocks as its home registry published them (public), in unit order."""
    return mirror.mirrored_blocks_of(
        session=session,
        project_code=code,
        status=status_.value if status_ else None,
        page=page,
        page_size=page_size,
    )


@router.get("/projects/{code}/home-retirements")
def list_home_retirements(
    code: str, session: SessionDep, page: Page = 1, page_size: PageSize = 50
) -> list[mirror.HomeRetirementPublic]:
    """The retirements the platform made at a mirrored project's home registry (public), newest first."""
    return mirror.home_retirements_of(session=session, project_code=code, page=page, page_size=page_size)


@router.get("/serials/{serial}")
def where_did_it_go(
    serial: str, session: SessionDep, actor: ActorDep, page: Page = 1, page_size: PageSize = 50
) -> list[BlockPublic]:
    """Where every kilogram of a serial range is now, block by block in serial order, each cut to the
    range asked (accounts and reservations are not shown to the public)."""
    return service.where_did_it_go(
        session=session, text=serial, actor=actor, clip=True, page=page, page_size=page_size
    )


# --- organisations and projects -------------------------------------------------------------------


@router.post("/organisations", status_code=CREATED)
def create_organisation(
    body: OrganisationCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> OrganisationPublic:
    return service.create_organisation(
        session=session, clock=clock, actor=require(actor, Role.ADMIN), cmd=body
    )


@router.get("/organisations/{organisation_id}")
def read_organisation(organisation_id: str, session: SessionDep, actor: ActorDep) -> OrganisationPublic:
    """Your own organisation (admins: any); another's answers ``not_found``, as if it did not exist."""
    who = require(actor, *Role)
    if not who.is_admin and who.organisation_id != organisation_id:
        raise NotFoundError(f"no organisation {organisation_id!r} of yours")
    return service.organisation_public(session=session, organisation_id=organisation_id)


@router.get("/holdings")
def read_holdings(
    session: SessionDep,
    actor: ActorDep,
    project: Annotated[str | None, Query(max_length=40)] = None,
    vintage: Annotated[int | None, Query(ge=1990, le=2100)] = None,
    state: BlockState | None = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> list[BlockPublic]:
    """The blocks in your organisation's accounts, filtered by project, vintage or state."""
    who = require(actor, *Role)
    if who.organisation_id is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="this key belongs to no organisation")
    return service.holdings(
        session=session,
        organisation_id=who.organisation_id,
        project_code=project,
        vintage=vintage,
        state=state,
        page=page,
        page_size=page_size,
    )


@router.post("/projects", status_code=CREATED)
def create_project(
    body: ProjectCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> ProjectPublic:
    return service.create_project(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/projects/{code}/transitions")
def transition_project(
    code: str, body: ProjectTransition, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> ProjectPublic:
    return service.transition_project(
        session=session, clock=clock, actor=require(actor, *Role), project_code=code, cmd=body
    )


@router.post("/verifications", status_code=CREATED)
def record_verification(
    body: VerificationCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> VerificationPublic:
    return service.record_verification(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


# --- credits --------------------------------------------------------------------------------------


@router.post("/issuances", status_code=CREATED)
def issue(body: IssueCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.issue(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/transfers", status_code=CREATED)
def transfer(body: TransferCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.transfer(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/retirements", status_code=CREATED)
def retire(body: RetireCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.retire(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/cancellations", status_code=CREATED)
def cancel(body: CancelCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.cancel(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/exports", status_code=CREATED)
def export(body: ExportCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.export(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/reservations", status_code=CREATED)
def reserve(body: ReserveCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.reserve(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/reservations/release", status_code=CREATED)
def release(body: ReservationCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.release(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.post("/reservations/post", status_code=CREATED)
def post(body: PostCmd, session: SessionDep, clock: ClockDep, actor: ActorDep) -> OperationResult:
    return service.post(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


# --- checks ---------------------------------------------------------------------------------------


@router.get("/check")
def check(session: SessionDep, actor: ActorDep) -> CheckReport:
    require(actor, Role.ADMIN)
    return service.check(session=session)


@router.get("/audit")
def audit(session: SessionDep, actor: ActorDep, settings: SettingsDep, clock: ClockDep) -> AuditReport:
    """Every journal chain and every signed checkpoint, against the keys as configured now (admin)."""
    require(actor, Role.ADMIN)
    return journal.verify(session=session, keys=verifier_from_settings(settings, clock=clock))


# --- mirrored credits -----------------------------------------------------------------------------


@router.post("/imports", status_code=CREATED)
def import_export(
    session: SessionDep,
    clock: ClockDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="a Verra or Gold Standard public CSV export")],
    programme: Annotated[Programme, Query(description="VCS or GS")],
) -> mirror.ImportReport:
    return mirror.import_export(
        session=session,
        clock=clock,
        actor=require(actor, *Role),
        programme=programme,
        data=file.file.read(),
        filename=file.filename or "upload.csv",
    )


@router.get("/home-serials")
def find_home_serial(
    session: SessionDep,
    q: Annotated[str, Query(min_length=6, max_length=200)],
    page: Page = 1,
    page_size: PageSize = 50,
) -> list[mirror.MirroredBlockPublic]:
    """Mirrored public data: blocks whose home serial contains ``q`` (literally, in any case), in unit
    order, each issued one with ``remaining_kg`` and each retired or cancelled one inside an issued one
    with ``part_of``."""
    return mirror.find_home_serial(session=session, text=q, page=page, page_size=page_size)


@router.post("/home-retirements", status_code=CREATED)
def record_retirement(
    body: mirror.HomeRetirementCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> mirror.HomeRetirementPublic:
    return mirror.record_retirement(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.get("/home-retirements/{retirement_id}")
def read_home_retirement(retirement_id: str, session: SessionDep) -> mirror.HomeRetirementPublic:
    """A home retirement with its shares and their Merkle root (public)."""
    return mirror.home_retirement_public(session=session, retirement_id=retirement_id)


@router.post("/shares", status_code=CREATED)
def allocate_share(
    body: mirror.ShareCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> mirror.HomeRetirementPublic:
    return mirror.allocate_share(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.get("/exports/{kind}.{fmt}")
def download(kind: str, fmt: str, session: SessionDep, actor: ActorDep) -> Response:
    """Projects (public), or unit blocks and journal transactions (admins), as CSV or JSON."""
    if kind != "projects":
        require(actor, Role.ADMIN)
    drafts = actor is not None and actor.is_admin
    text = exports.export(session=session, kind=kind, fmt=fmt, drafts=drafts)
    media = "text/csv" if fmt == "csv" else "application/json"
    return Response(
        content=text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{kind}.{fmt}"'},
    )


@router.post("/buffer-reversals", status_code=CREATED)
def reverse_buffer(
    body: BufferReversalCmd, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> OperationResult:
    """Replace credits found invalid from the project's buffer (admin)."""
    return service.reverse_buffer(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.get("/retirements")
def list_retirements(
    session: SessionDep,
    actor: ActorDep,
    project: Annotated[str | None, Query(max_length=40)] = None,
    vintage: Annotated[int | None, Query(ge=1990, le=2100)] = None,
    beneficiary: Annotated[str | None, Query(max_length=300)] = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> list[RetirementPublic]:
    """Retirements (public), newest first, filtered by project, vintage or beneficiary."""
    return service.retirements_of(
        session=session,
        project_code=project,
        vintage=vintage,
        beneficiary=beneficiary,
        page=page,
        page_size=page_size,
        public=True,
        actor=actor,
    )


@router.post("/home-holdings", status_code=CREATED)
def record_holding(
    body: mirror.HomeHoldingCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> mirror.HomeHoldingPublic:
    """Record units the platform holds at a home registry (admin)."""
    return mirror.record_holding(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.get("/home-holdings")
def list_holdings(
    session: SessionDep, actor: ActorDep, project: Annotated[str | None, Query(max_length=40)] = None
) -> list[mirror.HomeHoldingPublic]:
    """The platform's stock at home registries (admin)."""
    require(actor, Role.ADMIN)
    return mirror.holdings_at_home(session=session, project_code=project)
