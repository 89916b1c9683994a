"""Scenes without I/O: the scene types, the calculator each one shows, and how its form becomes
activities of the footprint vocabulary (docs/activities.md).

A form field's value is passed to the footprint engine as typed, so every bad value gets the
engine's own error code and hint; this module only decides which activities a filled form means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from neutralize.core.errors import DomainError, ErrorCode

WEEKS_A_YEAR = 46  # commuting weeks in a year (a working year less holidays): an assumption
MEALS_A_YEAR = 2 * 365  # two main meals a day: an assumption
DIETS = ("vegan", "vegetarian", "fish", "low_meat", "medium_meat", "high_meat")
TRAVEL_MODES = ("flight", "rail", "car", "bus")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{2,59}$")


class SceneType(StrEnum):
    CONFERENCE = "conference"
    SCENIC_SPOT = "scenic_spot"
    HOTEL = "hotel"
    RESTAURANT = "restaurant"
    LIFE = "life"


@dataclass(frozen=True, slots=True)
class Template:
    """Which sections a scene's calculator shows (the page renders them in this order)."""

    sections: tuple[str, ...]
    intro: str


TEMPLATES: Mapping[SceneType, Template] = {
    SceneType.CONFERENCE: Template(
        ("travel", "hotel", "meals"), "Your trip to the event, your nights and meals."
    ),
    SceneType.SCENIC_SPOT: Template(
        ("travel", "onsite", "meals"), "Your trip to the spot, transport on site, and meals."
    ),
    SceneType.HOTEL: Template(("hotel",), "Your nights at the hotel."),
    SceneType.RESTAURANT: Template(("meals_by_diet",), "Your meals, by diet."),
    SceneType.LIFE: Template(
        ("home", "commute", "flights", "diet"), "A year of your life: home, commute, flights, food."
    ),
}
# Supermarket baskets are left out: the shipped factor editions have no per-category food factors.


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message="a scene's short name is 3-60 lower-case letters, digits and dashes (tianfu-forum-2026)",
        )
    return slug


def _given(form: Mapping[str, str], *names: str) -> bool:
    return any(form.get(name, "").strip() for name in names)


def _value(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "").strip()


def activities_from_form(
    scene_type: SceneType, form: Mapping[str, str], *, country: str, region: str | None
) -> list[dict[str, Any]]:
    """The activities a filled-in scene calculator stands for (empty sections are skipped)."""
    activities: list[dict[str, Any]] = []
    for section in TEMPLATES[scene_type].sections:
        activities += _SECTIONS[section](form, country, region)
    if not activities:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="fill in at least one part of the form")
    return activities


def _travel(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    mode = _value(form, "travel_mode") or "flight"
    if mode not in TRAVEL_MODES:
        raise DomainError(code=ErrorCode.UNKNOWN_VALUE, message=f"travel by {', '.join(TRAVEL_MODES)}")
    round_trip = form.get("round_trip", "") in ("true", "on", "1")
    if mode == "flight":
        if not _given(form, "origin", "destination"):
            return []
        return [
            {
                "type": "flight",
                "origin": _value(form, "origin").upper(),
                "destination": _value(form, "destination").upper(),
                "round_trip": round_trip,
                "cabin": _value(form, "cabin") or "economy",
            }
        ]
    if not _given(form, "distance_km"):
        return []
    factor = 2 if round_trip else 1
    kind = {
        "rail": ("rail", {"mode": "national_rail"}),
        "car": ("car", {}),
        "bus": ("bus", {"mode": "coach"}),
    }
    activity_type, extra = kind[mode]
    return [{"type": activity_type, **extra, "distance_km": _times(_value(form, "distance_km"), factor)}]


def _times(value: str, factor: int) -> str:
    """A typed number times a whole factor, kept as text for the engine to check (or the text as typed)."""
    try:
        return str(float(value) * factor) if factor != 1 else value
    except ValueError:
        return value


def _hotel(form: Mapping[str, str], country: str, _region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "nights"):
        return []
    return [
        {
            "type": "hotel",
            "country": _value(form, "hotel_country").upper() or country,
            "nights": _value(form, "nights"),
        }
    ]


def _meals(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "meals"):
        return []
    return [{"type": "meal", "diet": _value(form, "diet") or "medium_meat", "count": _value(form, "meals")}]


def _meals_by_diet(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    return [
        {"type": "meal", "diet": diet, "count": _value(form, f"meals_{diet}")}
        for diet in DIETS
        if _given(form, f"meals_{diet}")
    ]


def _onsite(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "onsite_km"):
        return []
    return [{"type": "bus", "mode": "local_bus", "distance_km": _value(form, "onsite_km")}]


def _home(form: Mapping[str, str], _country: str, region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "kwh_per_year"):
        return []
    return [
        {
            "type": "electricity",
            "region": _value(form, "home_region").upper() or region,
            "kwh": _value(form, "kwh_per_year"),
        }
    ]


def _commute(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "commute_km_per_week"):
        return []
    mode = _value(form, "commute_mode") or "car"
    kinds = {
        "car": {"type": "car"},
        "bus": {"type": "bus", "mode": "local_bus"},
        "metro": {"type": "rail", "mode": "metro"},
    }
    if mode not in kinds:
        raise DomainError(code=ErrorCode.UNKNOWN_VALUE, message=f"commute by {', '.join(kinds)}")
    return [{**kinds[mode], "distance_km": _times(_value(form, "commute_km_per_week"), WEEKS_A_YEAR)}]


def _flights(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "flights_per_year"):
        return []
    # Each return flight of the year along the typical route: passengers counts the trips.
    return [
        {
            "type": "flight",
            "origin": _value(form, "flight_origin").upper(),
            "destination": _value(form, "flight_destination").upper(),
            "round_trip": True,
            "cabin": "economy",
            "passengers": _value(form, "flights_per_year"),
        }
    ]


def _diet(form: Mapping[str, str], _country: str, _region: str | None) -> list[dict[str, Any]]:
    if not _given(form, "year_diet"):
        return []
    return [{"type": "meal", "diet": _value(form, "year_diet"), "count": str(MEALS_A_YEAR)}]


_SECTIONS = {
    "travel": _travel,
    "hotel": _hotel,
    "meals": _meals,
    "meals_by_diet": _meals_by_diet,
    "onsite": _onsite,
    "home": _home,
    "commute": _commute,
    "flights": _flights,
    "diet": _diet,
}

# How dashboards group a footprint's lines.
CATEGORY_OF_TYPE = {
    "flight": "travel",
    "rail": "travel",
    "car": "travel",
    "bus": "travel",
    "taxi": "travel",
    "motorbike": "travel",
    "ferry": "travel",
    "hotel": "stay",
    "meal": "meals",
    "electricity": "energy",
    "fuel": "energy",
    "freight": "freight",
}


def mask_name(name: str) -> str:
    """A name shown without consent: its first character and a star (张伟 → 张*, Anna → A*)."""
    name = name.strip()
    return f"{name[0]}*" if name else "*"
