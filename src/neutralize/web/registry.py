"""The public registry explorer: projects, their issuances and retirements, and a serial search."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from neutralize.api.deps import SessionDep
from neutralize.core.errors import DomainError
from neutralize.market import service as market
from neutralize.registry import mirror, service
from neutralize.web.pages import templates
from neutralize.web.security import SignedIn

router = APIRouter(prefix="/registry", include_in_schema=False)
PAGE_ROWS = 200


@router.get("", response_class=HTMLResponse)
def projects(request: Request, session: SessionDep) -> HTMLResponse:
    shown = service.list_projects(session=session, public=True, page_size=200)
    return templates.TemplateResponse(request, "registry_projects.html", {"projects": shown})


@router.get("/projects/{code}", response_class=HTMLResponse)
def project(
    request: Request,
    code: str,
    session: SessionDep,
    who: SignedIn,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """A project's page; a draft only for its owner organisation and admins (``not_found`` to others).
    Its retirements (native) or home blocks (mirrored) come ``PAGE_ROWS`` to a page."""
    actor = who[0] if who is not None else None
    shown = service.visible_project(session=session, code=code, actor=actor)
    context: dict[str, object] = {
        "p": shown,
        "sales": market.project_sales(session=session, project_code=code),
    }
    if shown.native:
        context["issuances"] = service.issuances_of(session=session, project_code=code)
        rows = partial(service.retirements_of, session=session, project_code=code)
        context["retirements"], more = _page(rows, page)
    else:
        blocks = partial(mirror.mirrored_blocks_of, session=session, project_code=code)
        context["home_blocks"], more = _page(blocks, page)
        context["home_retirements"] = mirror.home_retirements_of(session=session, project_code=code)
    context["page"], context["more"] = page, more
    return templates.TemplateResponse(request, "registry_project.html", context)


def _page(fetch: Callable[..., list[Any]], page: int) -> tuple[list[Any], bool]:
    """Page ``page`` of ``PAGE_ROWS`` rows, and whether a row follows it."""
    rows = fetch(page=page, page_size=PAGE_ROWS)
    return rows, len(rows) == PAGE_ROWS and bool(fetch(page=page * PAGE_ROWS + 1, page_size=1))


@router.get("/serials", response_class=HTMLResponse)
def serials(
    request: Request, session: SessionDep, q: Annotated[str | None, Query(max_length=120)] = None
) -> HTMLResponse:
    context: dict[str, object] = {"q": q, "blocks": [], "mirrored": [], "problems": [], "beneficiaries": {}}
    status = 200
    if q and not q.strip().upper().startswith("NZ-"):
        try:
            context["mirrored"] = mirror.find_home_serial(session=session, text=q)
        except DomainError as error:
            context["problems"], status = [error], 422
    elif q:
        try:
            blocks = service.where_did_it_go(session=session, text=q)
            context["blocks"] = blocks
            context["beneficiaries"] = service.beneficiaries(
                session=session, retirement_ids=[b.retirement_id for b in blocks if b.retirement_id]
            )
        except DomainError as error:
            context["problems"], status = [error], 422 if error.code != "not_found" else 404
    return templates.TemplateResponse(request, "registry_serials.html", context, status_code=status)
