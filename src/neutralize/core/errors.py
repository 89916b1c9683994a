"""Domain errors with stable, machine-readable codes.

Codes never change meaning once published; clients match on them. Interfaces map a
``DomainError`` to their own protocol (HTTP status, CLI exit code) in exactly one place each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Every error code the platform returns, grouped by the kind of failure."""

    # The request itself is malformed.
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    TOO_MANY_ACTIVITIES = "too_many_activities"
    UNSUPPORTED_FORMAT = "unsupported_format"
    # A field of an activity is missing, mistyped or out of range.
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    CONFLICTING_FIELDS = "conflicting_fields"
    UNKNOWN_ACTIVITY_TYPE = "unknown_activity_type"
    UNKNOWN_VALUE = "unknown_value"
    UNKNOWN_AIRPORT = "unknown_airport"
    SAME_AIRPORT = "same_airport"
    UNKNOWN_REGION = "unknown_region"
    # The request is well formed but no published factor answers it.
    UNKNOWN_FACTOR_SET = "unknown_factor_set"
    FACTOR_SET_NOT_APPLICABLE = "factor_set_not_applicable"
    RADIATIVE_FORCING_UNAVAILABLE = "radiative_forcing_unavailable"
    REGION_NOT_COVERED = "region_not_covered"
    UNIT_NOT_COVERED = "unit_not_covered"
    # Lookups.
    NOT_FOUND = "not_found"
    # Access.
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    # Registry: the request conflicts with the ledger's state or rules.
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    INVALID_TRANSITION = "invalid_transition"
    PROJECT_NOT_REGISTERED = "project_not_registered"
    NOT_VERIFIED = "not_verified"
    PERIOD_NOT_ENDED = "period_not_ended"
    ALREADY_ISSUED = "already_issued"
    ALREADY_CLAIMED = "already_claimed"
    INSUFFICIENT_UNITS = "insufficient_units"
    UNITS_NOT_AVAILABLE = "units_not_available"
    INVALID_SERIAL = "invalid_serial"
    DUPLICATE = "duplicate"
    CONSERVATION_BROKEN = "conservation_broken"
    # Reference data shipped with the package failed validation.
    FACTOR_DATA_INVALID = "factor_data_invalid"
    # Registry imports.
    INVALID_IMPORT = "invalid_import"
    # Market: listings, quotes, orders and payments.
    LISTING_EXCLUDED = "listing_excluded"
    NO_ELIGIBLE_LISTING = "no_eligible_listing"
    QUOTE_EXPIRED = "quote_expired"
    CURRENCY_MISMATCH = "currency_mismatch"
    PAYMENT_DECLINED = "payment_declined"
    WEBHOOK_SIGNATURE_INVALID = "webhook_signature_invalid"
    UNKNOWN_GATEWAY = "unknown_gateway"
    INVALID_TEXT = "invalid_text"
    # Certificates.
    CERTIFICATE_SIGNATURE_INVALID = "certificate_signature_invalid"
    CERTIFICATE_UNREADABLE = "certificate_unreadable"
    FONT_MISSING = "font_missing"
    CLAIM_NOT_SUPPORTED = "claim_not_supported"
    # Event neutrality: credits an event may not be offset with.
    INSTRUMENT_NOT_ELIGIBLE = "instrument_not_eligible"
    OWN_BOUNDARY_CREDIT = "own_boundary_credit"
    # User accounts.
    RATE_LIMITED = "rate_limited"
    CSRF_FAILED = "csrf_failed"
    WEAK_PASSWORD = "weak_password"
    TOKEN_INVALID = "token_invalid"
    # Carbon accounts: points and partners' benefits.
    INSUFFICIENT_POINTS = "insufficient_points"
    BENEFIT_UNAVAILABLE = "benefit_unavailable"
    # Signing keys.
    SIGNING_KEY_INVALID = "signing_key_invalid"
    SIGNING_KEY_UNSAFE = "signing_key_unsafe"
    # Carbon accounts: behaviour records, methodologies and the plausibility rules before crediting.
    MALFORMED_ROW = "malformed_row"
    TOO_MANY_RECORDS = "too_many_records"
    UNKNOWN_METHODOLOGY = "unknown_methodology"
    METHODOLOGY_PARAMETERS_INVALID = "methodology_parameters_invalid"
    DUPLICATE_RECORD = "duplicate_record"
    OVERLAPPING_BEHAVIOUR = "overlapping_behaviour"
    TIME_IN_FUTURE = "time_in_future"
    TIME_BEFORE_EPOCH = "time_before_epoch"
    SPEED_IMPLAUSIBLE = "speed_implausible"
    ROUTE_DISTANCE_IMPLAUSIBLE = "route_distance_implausible"
    DAILY_CAP_REACHED = "daily_cap_reached"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: what, where, and how to fix it."""

    code: ErrorCode
    message: str
    field: str | None = None
    hint: str | None = None
    row: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code.value, "message": self.message}
        for key in ("field", "hint", "row"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class DomainError(Exception):
    """A failure the caller can fix; carries one or more problems."""

    code: ErrorCode
    message: str
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> DomainError:
        first = problems[0]
        return cls(code=first.code, message=first.message, problems=problems)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.problems:
            out["problems"] = [p.as_dict() for p in self.problems]
        return out


class NotFoundError(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    def __init__(self, message: str) -> None:
        super().__init__(code=ErrorCode.NOT_FOUND, message=message)


# Pydantic's error types, as our codes; any other is a wrong type.
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
    # Raised by our own validators (``PydanticCustomError``) under our codes' names.
    "unknown_value": ErrorCode.UNKNOWN_VALUE,
    "conflicting_fields": ErrorCode.CONFLICTING_FIELDS,
}

MAX_PROBLEMS = 100  # a body with more problems than this is answered with the first ones


def validation_problems(details: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Pydantic's error details (``ValidationError.errors()``) as problems with our codes and dotted
    field paths (``units.quantity_kg``, ``activities[2].kg``), so that the API and the command line
    refuse the same input the same way."""
    return [_validation_problem(detail) for detail in details][:MAX_PROBLEMS]


def _validation_problem(detail: Mapping[str, Any]) -> Problem:
    field = ""
    for part in detail.get("loc", ()):
        if part == "body":
            continue
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    code = _PYDANTIC_CODES.get(str(detail.get("type")), ErrorCode.WRONG_TYPE)
    return Problem(code=code, message=str(detail.get("msg", "invalid value")), field=field or None)
