"""The operator's page: alerts (shares waiting too long for a home retirement, stuck orders), the
tonnes to retire at home, reconciliation and settlements.

An admin user's session opens it; so does an admin API key given at ``/admin/login``, kept in an
HttpOnly, SameSite=Strict cookie scoped to ``/admin`` (for operators without an account).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from neutralize.access.domain import Actor, Role
from neutralize.access.service import authenticate, require
from neutralize.api.deps import ClockDep, SessionDep, SettingsDep
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market import service
from neutralize.web.pages import templates
from neutralize.web.security import CsrfChecked, SignedIn

router = APIRouter(prefix="/admin", include_in_schema=False)
COOKIE = "nz_admin_key"
SEE_OTHER = 303


def _admin(request: Request, session: SessionDep, who: SignedIn) -> Actor | None:
    if who is not None and who[0].is_admin:
        return who[0]
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    try:
        return require(authenticate(session=session, token=token), Role.ADMIN)
    except DomainError:
        return None


@router.get("", response_class=HTMLResponse)
def admin_page(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, who: SignedIn
) -> HTMLResponse:
    if _admin(request, session, who) is None:  # the sign-in form, with the code of why it shows
        needed = DomainError(ErrorCode.UNAUTHENTICATED, "sign in as an admin or with an admin key")
        return templates.TemplateResponse(request, "admin_login.html", {"problem": needed}, status_code=401)
    context = {
        "alerts": service.alerts(session=session, clock=clock, settings=settings),
        "pending": service.retire_pending(session=session, clock=clock, settings=settings),
        "reconciliation": service.reconcile(session=session),
        "settlements": service.settlements(session=session),
        "alert_days": settings.pending_share_alert_days,
    }
    return templates.TemplateResponse(request, "admin.html", context)


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        require(authenticate(session=session, token=api_key.strip()), Role.ADMIN)
    except DomainError as error:
        return templates.TemplateResponse(request, "admin_login.html", {"problem": error}, status_code=403)
    response = RedirectResponse("/admin", status_code=SEE_OTHER)
    response.set_cookie(
        COOKIE,
        api_key.strip(),
        httponly=True,
        samesite="strict",
        secure=settings.public_url.startswith("https://"),
        path="/admin",
        max_age=8 * 3600,
    )
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout() -> Response:
    response = RedirectResponse("/admin", status_code=SEE_OTHER)
    response.delete_cookie(COOKIE, path="/admin")
    return response
