"""What every page shares for safety: the CSRF token of each browser (double-submit: an HttpOnly
cookie that forms repeat in a hidden field), the signed-in user from the session cookie, and the
client address that rate limits count by."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Form, Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from neutralize.access.domain import Actor
from neutralize.access.users import UserPublic, session_actor
from neutralize.api.deps import ClockDep, SessionDep
from neutralize.core.errors import DomainError, ErrorCode

CSRF_COOKIE = "nz_csrf"
SESSION_COOKIE = "nz_session"
_TOKEN_CHARS = 43  # secrets.token_urlsafe(32)


class CsrfCookieMiddleware(BaseHTTPMiddleware):
    """Give each browser a CSRF token (once) and make it available to the page being rendered."""

    def __init__(self, app: object, *, secure: bool) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._secure = secure

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        token = request.cookies.get(CSRF_COOKIE, "")
        fresh = len(token) != _TOKEN_CHARS
        if fresh:
            token = secrets.token_urlsafe(32)
        request.state.csrf_token = token
        response = await call_next(request)
        if fresh:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=self._secure)
        return response


def csrf_token(request: Request) -> str:
    """The token a form repeats in its hidden ``csrf_token`` field."""
    token: str = request.state.csrf_token
    return token


def check_csrf(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = "") -> None:
    """Refuse a form post whose token does not match the browser's cookie (``CSRF_FAILED``)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        raise DomainError(
            code=ErrorCode.CSRF_FAILED, message="the form has expired or came from elsewhere: reload the page"
        )


CsrfChecked = Depends(check_csrf)


def signed_in(request: Request, session: SessionDep, clock: ClockDep) -> tuple[Actor, UserPublic] | None:
    """The user of the session cookie, if any."""
    return session_actor(session=session, clock=clock, token=request.cookies.get(SESSION_COOKIE, ""))


SignedIn = Annotated[tuple[Actor, UserPublic] | None, Depends(signed_in)]


def client_address(request: Request) -> str:
    """Rate limits count by the client's address (behind a proxy, configure it to pass the real one)."""
    return request.client.host if request.client else "unknown"
