"""Accounts in the browser: sign up, sign in and out, reset a password, the orders an account keeps,
and its API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from neutralize.access import users
from neutralize.access.domain import Actor
from neutralize.api.deps import ClockDep, SessionDep, SettingsDep
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market import owners
from neutralize.web.pages import page
from neutralize.web.security import SESSION_COOKIE, CsrfChecked, SignedIn, client_address

router = APIRouter(include_in_schema=False)
SEE_OTHER = 303
Text = Annotated[str, Form(max_length=300)]


def _status(error: DomainError) -> int:
    return {ErrorCode.RATE_LIMITED: 429, ErrorCode.UNAUTHENTICATED: 401}.get(error.code, 422)


@router.get("/signup", response_class=HTMLResponse)
def signup_form(request: Request) -> HTMLResponse:
    return page(request, "signup.html", {"problem": None, "form": {}})


@router.post("/signup", dependencies=[CsrfChecked])
def signup(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    email: Text,
    password: Text,
    display_name: Text,
) -> Response:
    form = {"email": email, "display_name": display_name}
    try:
        users.rate_limit(
            session=session,
            clock=clock,
            bucket=f"signup:{client_address(request)}",
            limit=settings.signups_per_hour,
            window_seconds=3600,
        )
        cmd = users.SignUp(email=email, password=password, display_name=display_name)
        users.sign_up(session=session, clock=clock, cmd=cmd)
        token = users.log_in(session=session, clock=clock, settings=settings, email=email, password=password)
    except ValidationError as invalid:
        error = DomainError(code=ErrorCode.INVALID_REQUEST, message=invalid.errors()[0]["msg"])
        return page(request, "signup.html", {"problem": error, "form": form}, 422)
    except DomainError as error:
        return page(request, "signup.html", {"problem": error, "form": form}, _status(error))
    return _signed_in(RedirectResponse("/account", status_code=SEE_OTHER), token, settings)


def _signed_in(response: Response, token: str, settings: Any) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
        max_age=settings.session_hours * 3600,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html", {"problem": None, "email": ""})


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, email: Text, password: Text
) -> Response:
    try:
        per_email = settings.logins_per_quarter_hour
        for bucket, limit in (
            (f"login:{client_address(request)}", 10 * per_email),
            (f"login:{email.strip().lower()}", per_email),
        ):
            users.rate_limit(session=session, clock=clock, bucket=bucket, limit=limit, window_seconds=900)
        token = users.log_in(session=session, clock=clock, settings=settings, email=email, password=password)
    except DomainError as error:
        return page(request, "login.html", {"problem": error, "email": email}, _status(error))
    return _signed_in(RedirectResponse("/account", status_code=SEE_OTHER), token, settings)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: SessionDep) -> Response:
    users.log_out(session=session, token=request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/", status_code=SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, session: SessionDep, who: SignedIn) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    return _account_page(request, session, who)


def _account_page(
    request: Request,
    session: SessionDep,
    who: tuple[Actor, users.UserPublic],
    *,
    new_token: str | None = None,
    problem: DomainError | None = None,
) -> HTMLResponse:
    """The account page: who you are, the orders and certificates you keep, your API keys."""
    actor, user = who
    context = {
        "user": user,
        "orders": owners.orders_of(session=session, user_id=user.id),
        "keys": users.user_keys(session=session, actor=actor),
        "new_token": new_token,
        "problem": problem,
    }
    return page(request, "account.html", context, 422 if problem else 200)


@router.post("/account/keys", dependencies=[CsrfChecked])
def create_key(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    who: SignedIn,
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        issued = users.create_user_key(session=session, clock=clock, actor=who[0], label=label)
    except DomainError as error:  # e.g. a role that needs an organisation the account lacks
        return _account_page(request, session, who, problem=error)
    return _account_page(request, session, who, new_token=issued.token)


@router.post("/account/keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(key_id: str, session: SessionDep, clock: ClockDep, who: SignedIn) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    users.revoke_user_key(session=session, clock=clock, actor=who[0], key_id=key_id)
    return RedirectResponse("/account", status_code=SEE_OTHER)


@router.get("/password-reset", response_class=HTMLResponse)
def reset_request_form(request: Request) -> HTMLResponse:
    return page(request, "password_reset.html", {"sent": False, "token": None, "problem": None})


@router.post("/password-reset", dependencies=[CsrfChecked])
def reset_request(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, email: Text
) -> HTMLResponse:
    try:
        users.rate_limit(
            session=session,
            clock=clock,
            bucket=f"reset:{client_address(request)}",
            limit=settings.signups_per_hour,
            window_seconds=3600,
        )
    except DomainError as error:
        return page(request, "password_reset.html", {"sent": False, "token": None, "problem": error}, 429)
    users.request_password_reset(
        session=session, clock=clock, settings=settings, email=email, base_url=settings.public_url
    )
    return page(request, "password_reset.html", {"sent": True, "token": None, "problem": None})


@router.get("/password-reset/{token}", response_class=HTMLResponse)
def reset_form(request: Request, token: str) -> HTMLResponse:
    return page(request, "password_reset.html", {"sent": False, "token": token, "problem": None})


@router.post("/password-reset/{token}", dependencies=[CsrfChecked])
def reset(
    request: Request, token: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, password: Text
) -> Response:
    try:
        users.reset_password(session=session, clock=clock, settings=settings, token=token, password=password)
    except DomainError as error:
        return page(request, "password_reset.html", {"sent": False, "token": token, "problem": error}, 422)
    return RedirectResponse("/login", status_code=SEE_OTHER)
