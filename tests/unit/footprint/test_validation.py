"""Bad input gets a stable code, the field path and a hint; nothing is computed from it."""

from __future__ import annotations

from typing import Any

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint import service

CASES: list[tuple[dict[str, Any] | Any, ErrorCode, str | None]] = [
    ({"distance_km": 3}, ErrorCode.MISSING_FIELD, "type"),
    ({"type": "spaceship"}, ErrorCode.UNKNOWN_ACTIVITY_TYPE, "type"),
    ({"type": "car", "distance_km": 3, "colour": "red"}, ErrorCode.UNKNOWN_FIELD, "colour"),
    ({"type": "car", "distance_km": 3, "nights": 2}, ErrorCode.UNKNOWN_FIELD, "nights"),
    ({"type": "car"}, ErrorCode.MISSING_FIELD, "distance_km"),
    ({"type": "car", "distance_km": 3, "distance_miles": 2}, ErrorCode.CONFLICTING_FIELDS, "distance_miles"),
    ({"type": "car", "distance_km": "far"}, ErrorCode.WRONG_TYPE, "distance_km"),
    ({"type": "car", "distance_km": True}, ErrorCode.WRONG_TYPE, "distance_km"),
    ({"type": "car", "distance_km": [1]}, ErrorCode.WRONG_TYPE, "distance_km"),
    ({"type": "car", "distance_km": float("nan")}, ErrorCode.NOT_FINITE, "distance_km"),
    ({"type": "car", "distance_km": float("inf")}, ErrorCode.NOT_FINITE, "distance_km"),
    ({"type": "car", "distance_km": -5}, ErrorCode.OUT_OF_RANGE, "distance_km"),
    ({"type": "car", "distance_km": 0}, ErrorCode.OUT_OF_RANGE, "distance_km"),
    ({"type": "car", "distance_km": 1e9}, ErrorCode.OUT_OF_RANGE, "distance_km"),
    ({"type": "hotel", "country": "DE", "nights": 1.5}, ErrorCode.WRONG_TYPE, "nights"),
    ({"type": "hotel", "country": "DE", "nights": 400}, ErrorCode.OUT_OF_RANGE, "nights"),
    ({"type": "car", "fuel": "steam", "distance_km": 3}, ErrorCode.UNKNOWN_VALUE, "fuel"),
    ({"type": "car", "fuel": "coal", "distance_km": 3}, ErrorCode.UNKNOWN_VALUE, "fuel"),
    ({"type": "flight", "origin": "PEK", "destination": "XQX"}, ErrorCode.UNKNOWN_AIRPORT, "destination"),
    ({"type": "flight", "origin": "PEKING", "destination": "CTU"}, ErrorCode.UNKNOWN_AIRPORT, "origin"),
    ({"type": "flight", "origin": "PEK", "destination": "pek"}, ErrorCode.SAME_AIRPORT, "destination"),
    (
        {"type": "flight", "origin": "PEK", "destination": "CTU", "round_trip": "maybe"},
        ErrorCode.WRONG_TYPE,
        "round_trip",
    ),
    ({"type": "electricity", "region": "Sichuan", "kwh": 1}, ErrorCode.UNKNOWN_REGION, "region"),
    ({"type": "electricity", "region": "US-CA", "kwh": 1}, ErrorCode.REGION_NOT_COVERED, "region"),
    ({"type": "electricity", "region": "CN-HK", "kwh": 1}, ErrorCode.REGION_NOT_COVERED, "region"),
    (
        {"type": "car", "distance_km": 3, "factor_set": "DEFRA-1999"},
        ErrorCode.UNKNOWN_FACTOR_SET,
        "factor_set",
    ),
    (
        {"type": "hotel", "country": "CN", "nights": 1, "factor_set": "MEE-NBS"},
        ErrorCode.FACTOR_SET_NOT_APPLICABLE,
        "factor_set",
    ),
    ({"type": "fuel", "fuel": "lpg", "m3": 3}, ErrorCode.UNIT_NOT_COVERED, None),
    (
        {"type": "fuel", "fuel": "diesel", "litres": 3, "factor_set": "IPCC-2006"},
        ErrorCode.UNIT_NOT_COVERED,
        None,
    ),
    ({"type": "taxi", "distance_km": 3, "passengers": 2}, ErrorCode.CONFLICTING_FIELDS, "passengers"),
    ({"type": "freight", "vehicle": "hgv_diesel", "distance_km": 10}, ErrorCode.MISSING_FIELD, "tonnes"),
    (
        {"type": "freight", "vehicle": "hgv_diesel", "load": "empty", "tonnes": 3, "distance_km": 10},
        ErrorCode.CONFLICTING_FIELDS,
        "tonnes",
    ),
    ("not an object", ErrorCode.INVALID_REQUEST, None),
    ({"type": "car", "distance_km": 3, "country": "XX"}, ErrorCode.UNKNOWN_REGION, "country"),
    ({"type": "electricity", "region": "CN-ZZ", "kwh": 1}, ErrorCode.UNKNOWN_REGION, "region"),
    ({"type": "fuel", "fuel": "diesel", "litres": 3, "m3": 2}, ErrorCode.CONFLICTING_FIELDS, "m3"),
]


@pytest.mark.parametrize(("activity", "code", "field"), CASES)
def test_bad_activity_gets_its_code_and_field(activity: Any, code: ErrorCode, field: str | None) -> None:
    # given one good activity and one bad one
    good = {"type": "hotel", "country": "DE", "nights": 1}
    # when computed together, then the request fails naming only the bad one
    with pytest.raises(DomainError) as caught:
        service.calculate(activities=[good, activity])
    [problem] = caught.value.problems
    assert problem.code == code
    assert problem.row == 1
    expected = "activities[1]" + (f".{field}" if field else "")
    assert problem.field == expected


def test_unknown_airport_hint_lists_the_nearest_codes() -> None:
    with pytest.raises(DomainError) as caught:
        service.calculate(activities=[{"type": "flight", "origin": "CTV", "destination": "PEK"}])
    hint = caught.value.problems[0].hint
    assert hint is not None and hint.startswith("did you mean") and "CTU" in hint


def test_errors_follow_a_fixed_order_of_precedence() -> None:
    # given an activity wrong in three ways: unknown key, missing field, negative number
    activity = {"type": "hotel", "colour": "red", "nights": -1}
    # then the structural fault is reported first
    with pytest.raises(DomainError) as caught:
        service.calculate(activities=[activity])
    assert caught.value.problems[0].code == ErrorCode.UNKNOWN_FIELD


def test_an_empty_request_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        service.calculate(activities=[])
    assert caught.value.code == ErrorCode.INVALID_REQUEST
