"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from neutralize.core.errors import DomainError, ErrorCode, Problem

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

# Pydantic's error types, as our codes.
_PYDANTIC_CODES: dict[str, ErrorCode] = {
    "missing": ErrorCode.MISSING_FIELD,
    "extra_forbidden": ErrorCode.UNKNOWN_FIELD,
    "too_long": ErrorCode.TOO_MANY_ACTIVITIES,
    "too_short": ErrorCode.INVALID_REQUEST,
    "json_invalid": ErrorCode.INVALID_REQUEST,
    "greater_than": ErrorCode.OUT_OF_RANGE,
    "greater_than_equal": ErrorCode.OUT_OF_RANGE,
    "less_than": ErrorCode.OUT_OF_RANGE,
    "less_than_equal": ErrorCode.OUT_OF_RANGE,
    "string_too_long": ErrorCode.OUT_OF_RANGE,
    "string_too_short": ErrorCode.OUT_OF_RANGE,
    "literal_error": ErrorCode.UNKNOWN_VALUE,
    "enum": ErrorCode.UNKNOWN_VALUE,
    "value_error": ErrorCode.INVALID_REQUEST,
}


# The routing's own refusals (no route matches the path, or not with this method), as our codes.
_ROUTING_CODES: dict[int, ErrorCode] = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.INVALID_REQUEST}
API_PREFIXES = ("/api/", "/.well-known/")


def status_for(code: ErrorCode) -> int:
    return _STATUS.get(code, 422)


def error_response(error: DomainError) -> JSONResponse:
    return JSONResponse(status_code=status_for(error.code), content=error.as_dict())


def _validation_problem(detail: dict[str, Any]) -> Problem:
    field = ""
    for part in detail.get("loc", ()):
        if part == "body":
            continue
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    code = _PYDANTIC_CODES.get(str(detail.get("type")), ErrorCode.WRONG_TYPE)
    return Problem(code=code, message=str(detail.get("msg", "invalid value")), field=field or None)


def install_error_handlers(app: FastAPI) -> None:
    """Map ``DomainError`` and request-validation failures to JSON with a stable ``code``."""

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, error: DomainError) -> JSONResponse:
        if status_for(error.code) >= 500:
            logger.error("server-side data error: %s", error.as_dict())
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_validation_problem(dict(detail)) for detail in error.errors()][:100]
        return error_response(DomainError.from_problems(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _routing_error(request: Request, error: StarletteHTTPException) -> Response:
        """A path no JSON route matches (or a method it does not take) answers a problem like any other;
        pages keep the framework's answer."""
        if not request.url.path.startswith(API_PREFIXES):
            return await http_exception_handler(request, error)
        code = _ROUTING_CODES.get(error.status_code, ErrorCode.INVALID_REQUEST)
        message = "no such route" if error.status_code == 404 else str(error.detail)
        body = DomainError(code=code, message=message).as_dict()
        return JSONResponse(status_code=error.status_code, content=body, headers=error.headers)
