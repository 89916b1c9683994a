"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from neutralize.core.errors import DomainError, ErrorCode, validation_problems

logger = logging.getLogger(__name__)

_STATUS: dict[ErrorCode, int] = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.ALREADY_ISSUED: 409,
    ErrorCode.ALREADY_CLAIMED: 409,
    ErrorCode.INSUFFICIENT_POINTS: 409,
    ErrorCode.BENEFIT_UNAVAILABLE: 409,
    ErrorCode.INSUFFICIENT_UNITS: 409,
    ErrorCode.UNITS_NOT_AVAILABLE: 409,
    ErrorCode.DUPLICATE: 409,
    ErrorCode.CONSERVATION_BROKEN: 500,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.TOO_MANY_ACTIVITIES: 413,
    ErrorCode.TOO_MANY_RECORDS: 413,
    ErrorCode.UNSUPPORTED_FORMAT: 415,
    ErrorCode.FACTOR_DATA_INVALID: 500,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CSRF_FAILED: 403,
}

# The framework's own refusals (no route matches the path, or not with this method, or a body it cannot
# parse), as our codes; any other 4xx it raises is an invalid request.
_FRAMEWORK_CODES: dict[int, ErrorCode] = {404: ErrorCode.NOT_FOUND, 413: ErrorCode.PAYLOAD_TOO_LARGE}
API_PREFIXES = ("/api/", "/.well-known/")
JSON_PATHS = ("/healthz", "/openapi.json")  # machine-read answers outside the prefixes

# How a page shows a problem: (request, error, HTTP status) -> an HTML response (web/ supplies it).
PageProblem = Callable[[Request, DomainError, int], Response]


def answers_json(request: Request) -> bool:
    """Whether ``request`` is the JSON API's (a problem is JSON) or a page's (a problem is a page)."""
    path = request.url.path
    return path.startswith(API_PREFIXES) or path in JSON_PATHS


def status_for(code: ErrorCode) -> int:
    return _STATUS.get(code, 422)


def error_response(error: DomainError) -> JSONResponse:
    return JSONResponse(status_code=status_for(error.code), content=error.as_dict())


def install_error_handlers(app: FastAPI, *, page_problem: PageProblem | None = None) -> None:
    """Map ``DomainError``, request-validation failures and the routing's own refusals to a problem with
    a stable ``code``: JSON for the API, and for pages (when ``page_problem`` is given) the page that
    ``page_problem`` renders, with the code in its ``data-code``. A browser never gets bare JSON."""

    def answer(
        request: Request, error: DomainError, status: int, headers: Mapping[str, str] | None = None
    ) -> Response:
        if page_problem is None or answers_json(request):
            return JSONResponse(status_code=status, content=error.as_dict(), headers=dict(headers or {}))
        response = page_problem(request, error, status)
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, error: DomainError) -> Response:
        if status_for(error.code) >= 500:
            logger.error("server-side data error: %s", error.as_dict())
        return answer(request, error, status_for(error.code))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
        failed = DomainError.from_problems(validation_problems(error.errors()))
        return answer(request, failed, status_for(failed.code))

    @app.exception_handler(StarletteHTTPException)
    async def _routing_error(request: Request, error: StarletteHTTPException) -> Response:
        """A path no route matches, a method it does not take or a body the framework cannot parse (a
        multipart form without its boundary) answers a problem like any other; a server error the
        framework raises keeps its own answer."""
        if error.status_code >= 500:
            return await http_exception_handler(request, error)
        code = _FRAMEWORK_CODES.get(error.status_code, ErrorCode.INVALID_REQUEST)
        missing = "no such route" if answers_json(request) else "no such page"
        message = missing if error.status_code == 404 else str(error.detail)
        failed = DomainError(code=code, message=message)
        return answer(request, failed, error.status_code, error.headers)
