"""The behaviour record a partner pushes, and its validation one record at a time.

A record names the partner's pseudonymous account reference (no names or phone numbers are
needed), the partner's own record id, the behaviour, when it happened and its measures. Values are
taken as given, never trimmed: " metro" is not a mode. Measures arrive as decimal kilometres and
kWh; the methodologies work on whole metres and watt-hours, truncated (never rounded up) by
``whole_units``. That conversion is the only float arithmetic on the way to grams, and the
column-wise engine (``accounts.batch``) does exactly the same operations, so both paths see the
same integers. Cargo tonnes and fuel litres are kept as the partner states them (bounded).

``parse_record`` is the reference validation: the batch engine must accept and reject the same
rows with the same first code. Checks run in ``FIELD_ORDER`` and then the cross-field checks of
``Record._behaviour_fields``, in that order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from neutralize.core.errors import ErrorCode, Problem


class Behaviour(StrEnum):
    """What the person did instead of the baseline behaviour."""

    PUBLIC_TRANSPORT = "public_transport"
    ACTIVE_TRAVEL = "active_travel"
    FREIGHT_MATCHING = "freight_matching"
    NEV_DRIVING = "nev_driving"


class TruckClass(StrEnum):
    """Truck classes by body length, as freight platforms quote them."""

    LIGHT_4_2M = "light_4_2m"
    MEDIUM_6_8M = "medium_6_8m"
    HEAVY_9_6M = "heavy_9_6m"
    TRACTOR_13M = "tractor_13m"


# The modes each behaviour accepts; the first is the default where a behaviour has only one.
MODES: dict[Behaviour, tuple[str, ...]] = {
    Behaviour.PUBLIC_TRANSPORT: ("metro", "electric_bus"),
    Behaviour.ACTIVE_TRAVEL: ("walking", "cycling"),
    Behaviour.FREIGHT_MATCHING: ("truck",),
    Behaviour.NEV_DRIVING: ("car",),
}
ALL_MODES: tuple[str, ...] = tuple(mode for modes in MODES.values() for mode in modes)

# Measures each behaviour needs (besides the mode, which single-mode behaviours may leave out).
REQUIRED: dict[Behaviour, tuple[str, ...]] = {
    Behaviour.PUBLIC_TRANSPORT: ("mode", "distance_km"),
    Behaviour.ACTIVE_TRAVEL: ("mode", "distance_km"),
    Behaviour.FREIGHT_MATCHING: ("truck_class", "loaded_km", "empty_km"),
    Behaviour.NEV_DRIVING: ("distance_km", "kwh", "region"),
}
ROUTE_FIELDS = ("origin_lat", "origin_lon", "destination_lat", "destination_lon")

# Bounds: anything beyond them is a data error, not a behaviour (a trip of 3,000 km on a metro).
MAX_TEXT = 64
MAX_EXTERNAL_ID = 128
MAX_TRIP_KM = 2_000.0
MAX_LEG_KM = 5_000.0
MAX_CARGO_TONNES = 100.0
MAX_FUEL_LITRES = 5_000.0
MAX_KWH = 500.0
MAX_DURATION = timedelta(days=7)
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
REGION_PATTERN = r"^CN(-[A-Z]{2})?$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# Bounds of each number field: (minimum, minimum is allowed, maximum). A trip is at least a metre.
NUMBER_BOUNDS: dict[str, tuple[float, bool, float]] = {
    "distance_km": (0.001, True, MAX_TRIP_KM),
    "loaded_km": (0.001, True, MAX_LEG_KM),
    "empty_km": (0.0, True, MAX_LEG_KM),
    "cargo_tonnes": (0.0, True, MAX_CARGO_TONNES),
    "fuel_litres": (0.0, True, MAX_FUEL_LITRES),
    "kwh": (0.0, True, MAX_KWH),
    "origin_lat": (-90.0, True, 90.0),
    "origin_lon": (-180.0, True, 180.0),
    "destination_lat": (-90.0, True, 90.0),
    "destination_lon": (-180.0, True, 180.0),
}
TEXT_BOUNDS: dict[str, tuple[int, str]] = {
    "partner": (MAX_TEXT, REFERENCE_PATTERN),
    "account_ref": (MAX_TEXT, REFERENCE_PATTERN),
    "external_id": (MAX_EXTERNAL_ID, REFERENCE_PATTERN),
    "person": (MAX_TEXT, REFERENCE_PATTERN),
}
# The order in which fields are checked; the first failing check names the row's code.
FIELD_ORDER: tuple[str, ...] = (
    "partner",
    "account_ref",
    "external_id",
    "person",
    "behaviour",
    "mode",
    "start_time",
    "end_time",
    "distance_km",
    "loaded_km",
    "empty_km",
    "cargo_tonnes",
    "fuel_litres",
    "truck_class",
    "kwh",
    "region",
    *ROUTE_FIELDS,
)
ALWAYS_REQUIRED = ("partner", "account_ref", "external_id", "behaviour", "start_time", "end_time")
# Allowance for binary floating point when truncating: 1.005 km is stored as 1.00499999... km.
UNIT_EPSILON = 1e-6

_PYDANTIC_CODES = {
    "missing": ErrorCode.MISSING_FIELD,
    "extra_forbidden": ErrorCode.UNKNOWN_FIELD,
    "finite_number": ErrorCode.NOT_FINITE,
    "greater_than": ErrorCode.OUT_OF_RANGE,
    "greater_than_equal": ErrorCode.OUT_OF_RANGE,
    "less_than_equal": ErrorCode.OUT_OF_RANGE,
    "string_too_long": ErrorCode.OUT_OF_RANGE,
    "string_too_short": ErrorCode.MISSING_FIELD,
    "enum": ErrorCode.UNKNOWN_VALUE,
    "string_pattern_mismatch": ErrorCode.INVALID_TEXT,
}
_CODE_VALUES = frozenset(code.value for code in ErrorCode)
_CROSS_FIELD = "__cross__"


def whole_units(value: float, per_unit: int) -> int:
    """``value`` in units ``per_unit`` times smaller, truncated: 12.3456 km -> 12345 m."""
    return math.floor(value * per_unit + UNIT_EPSILON)


def _number(minimum: float, inclusive: bool, maximum: float) -> Any:
    bound = {"ge": minimum} if inclusive else {"gt": minimum}
    return Annotated[float, Field(le=maximum, allow_inf_nan=False, **bound)]  # type: ignore[call-overload]


def _text(max_length: int) -> Any:
    return Annotated[str, Field(min_length=1, max_length=max_length, pattern=REFERENCE_PATTERN)]


class Record(BaseModel):
    """One behaviour a partner reports, validated; measures in the units the partner uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partner: _text(MAX_TEXT)  # type: ignore[valid-type]
    account_ref: _text(MAX_TEXT)  # type: ignore[valid-type]
    external_id: _text(MAX_EXTERNAL_ID)  # type: ignore[valid-type]
    person: _text(MAX_TEXT) | None = None  # type: ignore[valid-type]
    behaviour: Behaviour
    mode: str | None = None
    start_time: AwareDatetime
    end_time: AwareDatetime
    distance_km: _number(*NUMBER_BOUNDS["distance_km"]) | None = None  # type: ignore[valid-type]
    loaded_km: _number(*NUMBER_BOUNDS["loaded_km"]) | None = None  # type: ignore[valid-type]
    empty_km: _number(*NUMBER_BOUNDS["empty_km"]) | None = None  # type: ignore[valid-type]
    cargo_tonnes: _number(*NUMBER_BOUNDS["cargo_tonnes"]) | None = None  # type: ignore[valid-type]
    fuel_litres: _number(*NUMBER_BOUNDS["fuel_litres"]) | None = None  # type: ignore[valid-type]
    truck_class: TruckClass | None = None
    kwh: _number(*NUMBER_BOUNDS["kwh"]) | None = None  # type: ignore[valid-type]
    region: str | None = None
    origin_lat: _number(*NUMBER_BOUNDS["origin_lat"]) | None = None  # type: ignore[valid-type]
    origin_lon: _number(*NUMBER_BOUNDS["origin_lon"]) | None = None  # type: ignore[valid-type]
    destination_lat: _number(*NUMBER_BOUNDS["destination_lat"]) | None = None  # type: ignore[valid-type]
    destination_lon: _number(*NUMBER_BOUNDS["destination_lon"]) | None = None  # type: ignore[valid-type]

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        # Only RFC 3339 text with an offset: epoch numbers and naive times are ambiguous.
        if isinstance(value, str) and re.fullmatch(TIME_PATTERN, value):
            return value
        if isinstance(value, datetime):
            return value
        raise PydanticCustomError(ErrorCode.WRONG_TYPE.value, "give a time like 2026-03-01T08:30:00+08:00")

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value in ALL_MODES):
            return value
        raise PydanticCustomError(
            ErrorCode.UNKNOWN_VALUE.value, "mode must be one of " + ", ".join(ALL_MODES)
        )

    @field_validator("region", mode="before")
    @classmethod
    def _region_code(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and re.fullmatch(REGION_PATTERN, value)):
            return value
        raise PydanticCustomError(
            ErrorCode.UNKNOWN_REGION.value, "region must be CN or an ISO 3166-2 code like CN-GD"
        )

    @model_validator(mode="after")
    def _behaviour_fields(self) -> Record:
        problem = cross_field_problem(self)
        if problem is not None:
            raise PydanticCustomError(problem.code.value, problem.message, {"field": problem.field})
        return self

    @property
    def mode_or_default(self) -> str:
        return self.mode if self.mode is not None else MODES[self.behaviour][0]

    @property
    def person_key(self) -> str:
        """Who did it: the linked person, or else this partner's account."""
        return self.person if self.person is not None else f"{self.partner}/{self.account_ref}"

    @property
    def has_route(self) -> bool:
        return self.origin_lat is not None

    def metres(self, name: str) -> int:
        value = getattr(self, name)
        return 0 if value is None else whole_units(value, 1000)

    @property
    def energy_wh(self) -> int:
        return 0 if self.kwh is None else whole_units(self.kwh, 1000)

    @property
    def start_s(self) -> int:
        return _epoch_s(self.start_time)

    @property
    def end_s(self) -> int:
        return _epoch_s(self.end_time)


def _epoch_s(moment: datetime) -> int:
    """Whole seconds since 1970-01-01 UTC, sub-seconds dropped."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)


def cross_field_problem(record: Record) -> Problem | None:
    """The first problem that needs several fields to see, in the batch engine's order."""
    for name in REQUIRED[record.behaviour]:
        if getattr(record, name) is None and not (name == "mode" and len(MODES[record.behaviour]) == 1):
            return Problem(ErrorCode.MISSING_FIELD, f"{record.behaviour} needs {name}", field=name)
    if record.mode is not None and record.mode not in MODES[record.behaviour]:
        allowed = ", ".join(MODES[record.behaviour])
        return Problem(ErrorCode.UNKNOWN_VALUE, f"{record.behaviour} takes mode {allowed}", field="mode")
    if record.end_s < record.start_s:
        return Problem(ErrorCode.CONFLICTING_FIELDS, "end_time is before start_time", field="end_time")
    if record.end_s - record.start_s > MAX_DURATION // timedelta(seconds=1):
        return Problem(ErrorCode.OUT_OF_RANGE, "a record may last at most 7 days", field="end_time")
    given = [getattr(record, name) is not None for name in ROUTE_FIELDS]
    if any(given) and not all(given):
        return Problem(
            ErrorCode.MISSING_FIELD,
            "give all four route coordinates or none",
            field=ROUTE_FIELDS[given.index(False)],
        )
    return None


def parse_record(row: Mapping[str, object], *, number: int) -> Record | Problem:
    """Validate one row (values as JSON or CSV text give them); the first problem if it is bad."""
    try:
        return Record.model_validate(dict(row))
    except ValidationError as error:
        return _first_problem(error, number)


def _first_problem(error: ValidationError, number: int) -> Problem:
    order = {name: index for index, name in enumerate(FIELD_ORDER)}
    found: list[tuple[int, Problem]] = []
    for detail in error.errors():
        location = [str(part) for part in detail["loc"]]
        field = location[0] if location else _CROSS_FIELD
        context = detail.get("ctx") or {}
        if field == _CROSS_FIELD or not location:
            field = str(context.get("field", _CROSS_FIELD))
            rank = len(FIELD_ORDER)  # cross-field checks run after every field check
        else:
            rank = order.get(field, -1)  # unknown fields come first
        code = _PYDANTIC_CODES.get(detail["type"])
        if code is None:
            known = detail["type"] in _CODE_VALUES
            code = ErrorCode(detail["type"]) if known else ErrorCode.WRONG_TYPE
        found.append((rank, Problem(code, detail["msg"], field=field, row=number)))
    return min(found, key=lambda item: item[0])[1]
