"""The public registry explorer: projects, their issuances and retirements, and a serial search."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from neutralize.api.deps import SessionDep
from neutralize.core.errors import DomainError
from neutralize.market import service as market
from neutralize.registry import mirror, service
from neutralize.web.pages import templates
from neutralize.web.security import SignedIn

router = APIRouter(prefix="/registry", include_in_schema=False)
PAGE_ROWS = 200
SEARCH_ROWS = 50  # serials found per page, each shown with the blocks inside or around it
PageNumber = Annotated[int, Query(ge=1, le=10_000)]


@router.get("", response_class=HTMLResponse)
def projects(request: Request, session: SessionDep, page: PageNumber = 1) -> HTMLResponse:
    listed = partial(service.list_projects, session=session, public=True)
    shown, pager = _page(request, listed, "page", page)
    return templates.TemplateResponse(request, "registry_projects.html", {"projects": shown, "pager": pager})


@router.get("/projects/{code}", response_class=HTMLResponse)
def project(
    request: Request,
    code: str,
    session: SessionDep,
    who: SignedIn,
    page: PageNumber = 1,
    retirements_page: PageNumber = 1,
) -> Response:
    """A project's page; a draft only for its owner organisation and admins (``not_found`` to others).
    Its retirements (native) or home blocks and home retirements (mirrored) come ``PAGE_ROWS`` to a page.
    Codes are upper case: a code written otherwise is sent to its page."""
    if code != code.upper():
        url = request.url.replace(path=f"/registry/projects/{code.upper()}")
        return RedirectResponse(f"{url.path}?{url.query}" if url.query else url.path, status_code=308)
    actor = who[0] if who is not None else None
    shown = service.visible_project(session=session, code=code, actor=actor)
    context: dict[str, object] = {
        "p": shown,
        "sales": market.project_sales(session=session, project_code=code),
    }
    if shown.native:
        context["issuances"] = service.issuances_of(session=session, project_code=code)
        retirements = partial(service.retirements_of, session=session, project_code=code)
        context["retirements"], context["pager"] = _page(request, retirements, "page", page)
    else:
        blocks = partial(mirror.mirrored_blocks_of, session=session, project_code=code)
        context["home_blocks"], context["pager"] = _page(request, blocks, "page", page)
        at_home = partial(mirror.home_retirements_of, session=session, project_code=code)
        context["home_retirements"], context["retirements_pager"] = _page(
            request, at_home, "retirements_page", retirements_page
        )
    return templates.TemplateResponse(request, "registry_project.html", context)


def _page(
    request: Request, fetch: Callable[..., list[Any]], param: str, page: int, size: int = PAGE_ROWS
) -> tuple[list[Any], dict[str, object]]:
    """Page ``page`` of ``size`` rows, and links to the pages before and after it (the query parameter
    ``param`` changed, the others kept)."""
    rows = fetch(page=page, page_size=size)
    more = bool(fetch(page=page * size + 1, page_size=1))  # a row after this page

    def link(number: int) -> str:
        url = request.url.include_query_params(**{param: number})
        return f"{url.path}?{url.query}"

    return rows, {
        "page": page,
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if more else None,
    }


@router.get("/serials", response_class=HTMLResponse)
def serials(
    request: Request,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=120)] = None,
    page: PageNumber = 1,
) -> HTMLResponse:
    context: dict[str, object] = {"q": q, "blocks": [], "mirrored": [], "problems": [], "beneficiaries": {}}
    status = 200
    if q and not q.strip().upper().startswith("NZ-"):
        try:
            found = partial(mirror.find_home_serial, session=session, text=q)
            context["mirrored"], context["pager"] = _page(request, found, "page", page, SEARCH_ROWS)
        except DomainError as error:
            context["problems"], status = [error], 422
    elif q:
        try:
            where = partial(service.where_did_it_go, session=session, text=q, clip=True)
            blocks, context["pager"] = _page(request, where, "page", page)
            context["blocks"] = blocks
            context["beneficiaries"] = service.beneficiaries(
                session=session, retirement_ids=[b.retirement_id for b in blocks if b.retirement_id]
            )
        except DomainError as error:
            context["problems"], status = [error], 422 if error.code != "not_found" else 404
    return templates.TemplateResponse(request, "registry_serials.html", context, status_code=status)
