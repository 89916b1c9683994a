"""Scene pages: a guest's landing page and calculator (what the QR code opens), and the organiser's
scenes, poster and dashboard."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from neutralize.access.domain import Role
from neutralize.api.deps import ClockDep, SessionDep, SettingsDep
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import DIETS, TRAVEL_MODES, SceneType
from neutralize.scenes.render import poster_pdf, qr_png, qr_svg
from neutralize.web.pages import page, problem_page
from neutralize.web.security import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
SEE_OTHER = 303
MAX_FIELDS = 40


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A scene page: the calculators' choices are there for every template."""
    base = {"diets": DIETS, "travel_modes": TRAVEL_MODES, "scene_types": list(SceneType)}
    return page(request, name, {**base, **context}, status)


@router.get("/s/{slug}", response_class=HTMLResponse)
def landing(request: Request, slug: str, session: SessionDep) -> HTMLResponse:
    """What a scene's QR code opens: the scene's own calculator."""
    try:
        scene = scenes.get_scene(session=session, slug=slug)
    except DomainError as error:
        return problem_page(request, error)
    return _page(request, "scene.html", {"scene": scene, "form": {}, "problems": []})


@router.post("/s/{slug}", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def calculate(
    request: Request, slug: str, session: SessionDep, clock: ClockDep, who: SignedIn
) -> HTMLResponse:
    form = await request.form()  # read already for the CSRF check, with the framework's own limits
    if len(form.multi_items()) > MAX_FIELDS:
        message = f"a calculator form has at most {MAX_FIELDS} fields"
        raise DomainError(code=ErrorCode.PAYLOAD_TOO_LARGE, message=message)  # a coded page, 413
    values = {k: str(v)[:100] for k, v in form.items() if k != "csrf_token"}
    show_name = values.pop("show_name", "") == "true"
    name = values.pop("display_name", "")[:200] if show_name else None
    reference = values.pop("registration_ref", "")[:60] or None
    try:
        scene = scenes.get_scene(session=session, slug=slug)
    except DomainError as error:
        return problem_page(request, error)
    try:
        footprint, participation = scenes.participate(
            session=session,
            clock=clock,
            slug=slug,
            form=values,
            display_name=name,
            actor=who[0] if who else None,
            registration_ref=reference,
        )
    except DomainError as error:
        session.rollback()
        problems: list[Any] = list(error.problems) or [error]
        context = {"scene": scene, "form": values, "problems": problems}
        return _page(request, "scene.html", context, 422)
    context = {"scene": scene, "footprint": footprint, "participation": participation}
    return _page(request, "scene_result.html", context)


# --- organisers ------------------------------------------------------------------------------------


def signed_in_organiser(who: Any) -> Any:
    """The signed-in organiser or admin, or None (the page then sends them to sign in)."""
    if who is None or who[0].role not in (Role.ORGANISER, Role.ADMIN):
        return None
    return who[0]


@router.get("/organiser", response_class=HTMLResponse)
def organiser_home(request: Request, session: SessionDep, who: SignedIn) -> Response:
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    return _page(
        request, "organiser.html", {"scenes": scenes.scenes_of(session=session, actor=actor), "problem": None}
    )


@router.post("/organiser/scenes", dependencies=[CsrfChecked])
def create_scene(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    who: SignedIn,
    slug: Annotated[str, Form(max_length=60)],
    type_: Annotated[str, Form(alias="type", max_length=20)],
    name: Annotated[str, Form(max_length=200)],
    country: Annotated[str, Form(max_length=2)] = "CN",
    region: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        fields = {"slug": slug, "type": type_, "name": name, "country": country, "region": region or None}
        cmd = scenes.SceneCreate.model_validate(fields)
        scene = scenes.create_scene(session=session, clock=clock, actor=actor, cmd=cmd)
    except (ValidationError, DomainError) as failed:
        session.rollback()
        error = (
            failed
            if isinstance(failed, DomainError)
            else DomainError(code=ErrorCode.INVALID_REQUEST, message=str(failed.errors()[0]["msg"]))
        )
        context = {"scenes": scenes.scenes_of(session=session, actor=actor), "problem": error}
        return _page(request, "organiser.html", context, 422)
    return RedirectResponse(f"/organiser/scenes/{scene.slug}", status_code=SEE_OTHER)


@router.get("/organiser/scenes/{slug}", response_class=HTMLResponse)
def scene_dashboard(
    request: Request, slug: str, session: SessionDep, settings: SettingsDep, who: SignedIn
) -> Response:
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        board = scenes.dashboard(session=session, actor=actor, slug=slug)
    except DomainError as error:
        return problem_page(request, error)
    url = f"{settings.public_url.rstrip('/')}/s/{slug}"
    return _page(request, "organiser_scene.html", {"board": board, "url": url})


@router.get("/organiser/scenes/{slug}/participants.csv")
def participants(slug: str, session: SessionDep, who: SignedIn) -> Response:
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    text = scenes.participants_csv(session=session, actor=actor, slug=slug)
    headers = {"Content-Disposition": f'attachment; filename="{slug}-participants.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/organiser/scenes/{slug}/poster.{kind}")
def poster(
    slug: str, kind: Literal["png", "svg", "pdf"], session: SessionDep, settings: SettingsDep, who: SignedIn
) -> Response:
    """The scene's QR code as PNG or SVG, or a printable A4 poster (PDF)."""
    actor = signed_in_organiser(who)
    if actor is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    scene = scenes.organised_scene(session=session, actor=actor, slug=slug)
    url = f"{settings.public_url.rstrip('/')}/s/{slug}"
    if kind == "png":
        return Response(qr_png(url, scale=16), media_type="image/png")
    if kind == "svg":
        return Response(qr_svg(url), media_type="image/svg+xml")
    return Response(poster_pdf(name=scene.name, url=url, intro=scene.intro), media_type="application/pdf")


@router.get("/leaderboards", response_class=HTMLResponse)
@router.get("/leaderboards/{slug}", response_class=HTMLResponse)
def leaderboard(
    request: Request,
    session: SessionDep,
    slug: str | None = None,
    me: Annotated[str | None, Query(max_length=40)] = None,
    by: Literal["people", "organisations"] = "people",
) -> HTMLResponse:
    """Per scene, or across all, of people or of organisations: reductions first, offsets apart,
    and the asker's own rank."""
    try:
        if by == "organisations":
            groups = scenes.organisation_leaderboard(session=session, slug=slug)
            return _page(request, "leaderboard_organisations.html", {"board": groups})
        board = scenes.leaderboard(session=session, slug=slug, me=me)
    except DomainError as error:
        return problem_page(request, error)
    return _page(request, "leaderboard.html", {"board": board})
