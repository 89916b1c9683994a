"""Event neutrality pages: the organiser's page for the MEE guideline steps (plan, reduce, account,
offset, report and evaluate) with a form for each, the printable report, and the event's public page.
Every form carries the CSRF token; only the scene's organiser (or an admin) gets the organiser's
pages, anyone else is told the scene does not exist."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor
from neutralize.api.deps import ClockDep, SessionDep, SettingsDep
from neutralize.api.text import storable
from neutralize.core.clock import Clock
from neutralize.core.config import Settings
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.scenes import events
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import DIETS, SceneType
from neutralize.scenes.render import report_pdf
from neutralize.web.pages import page, problem_page
from neutralize.web.scenes import SEE_OTHER, signed_in_organiser
from neutralize.web.security import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
MAX_CSV_BYTES = 1024 * 1024


def _path(slug: str) -> str:
    return f"/organiser/scenes/{slug}/neutrality"


def _organiser_page(
    request: Request, session: Session, clock: Clock, settings: Settings, actor: Actor, slug: str,
    problem: DomainError | None = None,
) -> Response:  # fmt: skip
    """The organiser's neutrality page, with the problem of the last form if it had one (422)."""
    try:
        state = events.organised_neutrality(
            session=session, clock=clock, settings=settings, actor=actor, slug=slug
        )
        offer = events.event_listings(session=session, actor=actor, slug=slug)
    except DomainError as error:
        return problem_page(request, error)
    remaining = max(state.required_kg - state.offset_kg, 1)
    context = {"n": state, "offer": offer, "problem": problem, "diets": DIETS, "fuels": events.FUELS,
               "declared": events.DECLARED, "remaining_kg": remaining,
               "idempotency_key": secrets.token_urlsafe(18)}  # fmt: skip
    return page(request, "organiser_neutrality.html", context, 422 if problem else 200)


def _act(
    request: Request, session: Session, clock: Clock, settings: Settings, who: object, slug: str, anchor: str,
    action: Callable[[Actor], object],
) -> Response:  # fmt: skip
    """Run one step's form: back to its part of the page, or the page again with the problem."""
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        action(actor)
    except ValidationError as invalid:
        session.rollback()
        first = invalid.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        error = DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"{field}: {first['msg']}")
        return _organiser_page(request, session, clock, settings, actor, slug, error)
    except DomainError as error:
        session.rollback()
        if error.code is ErrorCode.NOT_FOUND:
            return problem_page(request, error)
        return _organiser_page(request, session, clock, settings, actor, slug, error)
    return RedirectResponse(f"{_path(slug)}#{anchor}", status_code=SEE_OTHER)


@router.get("/organiser/scenes/{slug}/neutrality", response_class=HTMLResponse)
def neutrality_page(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn
) -> Response:
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    return _organiser_page(request, session, clock, settings, actor, slug)


@router.post("/organiser/scenes/{slug}/neutrality/plan", dependencies=[CsrfChecked])
def plan(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    expected_attendees: Annotated[str, Form(max_length=10)], expected_kg: Annotated[str, Form(max_length=15)],
    reduction_plan: Annotated[str, Form(max_length=5_000)], starts_on: Annotated[str, Form(max_length=10)],
    ends_on: Annotated[str, Form(max_length=10)],
    destination_airport: Annotated[str, Form(max_length=3)] = "",
) -> Response:  # fmt: skip
    def action(actor: Actor) -> None:
        fields = {"expected_attendees": expected_attendees, "expected_kg": expected_kg,
                  "reduction_plan": reduction_plan, "starts_on": starts_on, "ends_on": ends_on,
                  "destination_airport": destination_airport.strip().upper() or None}  # fmt: skip
        cmd = events.PlanCmd.model_validate(fields)
        events.record_plan(session=session, clock=clock, actor=actor, slug=slug, cmd=cmd)

    return _act(request, session, clock, settings, who, slug, "step-plan", action)


@router.post("/organiser/scenes/{slug}/neutrality/measures", dependencies=[CsrfChecked])
def measure(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    description: Annotated[str, Form(max_length=500)], evidence: Annotated[str, Form(max_length=500)],
    saved_kg: Annotated[str, Form(max_length=15)] = "",
) -> Response:  # fmt: skip
    def action(actor: Actor) -> None:
        cmd = events.MeasureCmd.model_validate(
            {"description": description, "evidence": evidence, "saved_kg": saved_kg or None}
        )
        events.add_measure(session=session, clock=clock, actor=actor, slug=slug, cmd=cmd)

    return _act(request, session, clock, settings, who, slug, "step-reduce", action)


@router.post("/organiser/scenes/{slug}/neutrality/registrations", dependencies=[CsrfChecked])
async def registrations(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    registration_list: Annotated[UploadFile, File()],
) -> Response:  # fmt: skip
    data = await registration_list.read(MAX_CSV_BYTES + 1)

    def action(actor: Actor) -> None:
        if len(data) > MAX_CSV_BYTES:
            raise DomainError(code=ErrorCode.PAYLOAD_TOO_LARGE, message="a registration list is at most 1 MB")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DomainError(
                code=ErrorCode.UNSUPPORTED_FORMAT, message="save the list as UTF-8 CSV"
            ) from None
        if not storable(text):  # a CSV with a NUL decodes, but PostgreSQL's text cannot keep it
            raise DomainError(code=ErrorCode.INVALID_TEXT, message="the list holds a NUL character")
        events.import_registrations(session=session, clock=clock, actor=actor, slug=slug, text=text)

    return _act(request, session, clock, settings, who, slug, "step-account", action)


@router.post("/organiser/scenes/{slug}/neutrality/items", dependencies=[CsrfChecked])
def item(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    kind: Annotated[str, Form(max_length=20)], qualifier: Annotated[str, Form(max_length=20)],
    quantity: Annotated[str, Form(max_length=20)], source: Annotated[str, Form(max_length=500)] = "",
) -> Response:  # fmt: skip
    def action(actor: Actor) -> None:
        cmd = events.ItemCmd.model_validate(
            {"kind": kind, "qualifier": qualifier.strip(), "quantity": quantity, "source": source}
        )
        events.record_item(session=session, clock=clock, actor=actor, slug=slug, cmd=cmd)

    return _act(request, session, clock, settings, who, slug, "step-account", action)


@router.post("/organiser/scenes/{slug}/neutrality/offsets", dependencies=[CsrfChecked])
def offset(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    listing_id: Annotated[str, Form(max_length=40)], kg: Annotated[str, Form(max_length=12)],
    idempotency_key: Annotated[str, Form(min_length=8, max_length=60)],
) -> Response:  # fmt: skip
    """Order credits for the event; the organiser then pays on the order's page."""
    placed: list[str] = []

    def action(actor: Actor) -> None:
        order = events.offset_with_order(
            session=session, clock=clock, settings=settings, actor=actor, slug=slug,
            listing_id=listing_id, kg=_whole(kg, "kg"), idempotency_key=idempotency_key,
        )  # fmt: skip
        placed.append(order.id)

    response = _act(request, session, clock, settings, who, slug, "step-offset", action)
    if placed:
        return RedirectResponse(f"/orders/{placed[0]}", status_code=SEE_OTHER)
    return response


@router.post("/organiser/scenes/{slug}/neutrality/allowances", dependencies=[CsrfChecked])
def allowance(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    reference: Annotated[str, Form(max_length=120)], tonnes: Annotated[str, Form(max_length=12)],
) -> Response:  # fmt: skip
    def action(actor: Actor) -> None:
        events.record_allowance(session=session, clock=clock, actor=actor, slug=slug, reference=reference,
                                tonnes=_whole(tonnes, "tonnes"))  # fmt: skip

    return _act(request, session, clock, settings, who, slug, "step-offset", action)


@router.post("/organiser/scenes/{slug}/neutrality/evaluation", dependencies=[CsrfChecked])
def evaluation(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn,
    kind: Annotated[str, Form(max_length=20)], evaluator: Annotated[str, Form(max_length=200)],
    reference: Annotated[str, Form(max_length=500)],
) -> Response:  # fmt: skip
    def action(actor: Actor) -> None:
        cmd = events.EvaluationCmd.model_validate(
            {"kind": kind, "evaluator": evaluator, "reference": reference}
        )
        events.record_evaluation(session=session, clock=clock, actor=actor, slug=slug, cmd=cmd)

    return _act(request, session, clock, settings, who, slug, "step-evaluate", action)


@router.get("/organiser/scenes/{slug}/report.pdf")
def report(slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn) -> Response:
    """The organiser's printable report: the dashboard's figures and, for an event, its neutrality steps."""
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    board = scenes.dashboard(session=session, actor=actor, slug=slug)
    today = clock.now().date().isoformat()
    sections = [("Dashboard", _dashboard_lines(board, today))]
    if board.scene.type is SceneType.CONFERENCE:
        state = events.organised_neutrality(
            session=session, clock=clock, settings=settings, actor=actor, slug=slug
        )
        sections = _report_sections(board, state, today)
    pdf = report_pdf(title=board.scene.name, sections=sections)
    headers = {"Content-Disposition": f'inline; filename="{slug}-report.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


def _whole(text: str, field: str) -> int:
    """A whole number typed in a form, or ``out_of_range`` naming the field."""
    if not text.strip().isdigit() or int(text) <= 0:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"{field}: a whole number above zero")
    return int(text)


def _kg(value: Decimal | int | None) -> str:
    return "—" if value is None else f"{Decimal(value):,.1f} kg"


def _report_sections(
    board: scenes.Dashboard, state: events.Neutrality, today: str
) -> list[tuple[str, list[str]]]:
    """The report's text: the dashboard's figures, then each step as the organiser page shows it."""
    plan = state.plan or {}
    return [
        ("Dashboard", _dashboard_lines(board, today)),
        (
            "Steps (MEE large-event guidelines, 2019; ISO 14068-1:2023)",
            [f"{s['step']}: {'complete' if s['complete'] else 'open'} — {s['note']}" for s in state.steps],
        ),
        (
            "1 Plan",
            [
                f"Expected attendees {plan.get('expected_attendees', '—')}, "
                f"expected footprint {_kg(plan.get('expected_kg'))}",
                str(plan.get("reduction_plan", "no plan yet")),
            ],
        ),
        ("2 Reduce", [_measure_line(m) for m in state.measures]),
        ("3 Account", _account_lines(state)),
        ("4 Offset", _offset_lines(state)),
        ("5 Report and evaluate", _evaluation_lines(state)),
    ]


def _dashboard_lines(board: scenes.Dashboard, today: str) -> list[str]:
    return [
        f"Printed {today}. Participants: {board.participants}; "
        f"their footprint {_kg(board.total_kg_co2e)}; "
        f"{board.offset_share_percent} % offset by guests ({board.offset_kg:,} kg).",
        *(f"{k}: {_kg(v)}" for k, v in board.by_category.items()),
        *(f"Project {code}: {kg:,} kg" for code, kg in board.projects.items()),
    ]


def _measure_line(measure: dict[str, Any]) -> str:
    saved = f" (about {measure['saved_kg']:,} kg saved)" if measure["saved_kg"] else ""
    return f"{measure['description']} — evidence: {measure['evidence']}{saved}"


def _account_lines(state: events.Neutrality) -> list[str]:
    ex = state.extrapolation or {}
    counted = state.counted
    return [
        f"Registration list: {state.registrations} attendees. Counted: {counted['self_reported']} "
        f"self-reported, {counted['registration']} from the registration list, "
        f"{counted['extrapolated']} extrapolated.",
        f"Extrapolated ({ex.get('method', 'not possible yet')}): "
        f"{_kg(ex.get('low_kg'))} – {_kg(ex.get('high_kg'))}",
        *(
            f"{i['key']}: {i['quantity'].normalize():,f} {i['unit']} → {_kg(i['kg'])} ({i['source']})"
            for i in state.items
        ),
        f"Footprint: lower bound {_kg(state.low_kg)}, central {_kg(state.central_kg)}, "
        f"upper bound {_kg(state.high_kg)}; to offset: {state.required_kg:,} kg",
    ]


def _offset_lines(state: events.Neutrality) -> list[str]:
    left = f" ({state.days_left} days left)" if state.days_left is not None else ""
    lines = [
        f"Offset {state.offset_kg:,} of {state.required_kg:,} kg; deadline {state.deadline or '—'}{left}"
    ]
    for o in state.offsets:
        certificate = f", certificate {o.certificate_number}" if o.certificate_number else ""
        lines.append(f"{o.instrument} {o.reference}: {o.kg:,} kg, {o.status}{certificate}")
    return lines


def _evaluation_lines(state: events.Neutrality) -> list[str]:
    e = state.evaluation
    who = f"{e['kind']}: {e['evaluator']} ({e['reference']})" if e else "not evaluated yet"
    claim = list(state.claim.values()) if state.claim else [f"No neutrality claim: {state.claim_refused}"]
    return [who, *claim]


@router.get("/s/{slug}/neutrality", response_class=HTMLResponse)
def public_page(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> Response:
    """The event's public page: its steps, bounds, offsets with their certificates, and evaluator."""
    try:
        state = events.neutrality(session=session, clock=clock, settings=settings, slug=slug)
    except DomainError as error:
        return problem_page(request, error)
    return page(request, "scene_neutrality.html", {"n": state})
