"""The activity vocabulary: every type, every key, every allowed value and bound.

This table is the single source for validation (column-wise, in the engine), for the API schema
and for ``docs/activities.md``. Bounds are deliberately generous for one activity line and
reject numbers no real activity has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

FieldKind = Literal["text", "number", "integer", "boolean", "choice", "airport", "region", "country"]

MILES_TO_KM = Decimal("1.609344")

# The factor sets the catalogue ships, newest edition of each source first.
FACTOR_SETS: tuple[str, ...] = (
    "DESNZ-2025",
    "DESNZ-2024",
    "MEE-NBS",
    "MEE-ETS-2022",
    "IPCC-2006",
    "EPA-2025",
    "SCARBOROUGH-2014",
)


@dataclass(frozen=True)
class FieldSpec:
    """One key an activity may carry."""

    name: str
    kind: FieldKind
    doc: str
    choices: tuple[str, ...] = ()
    minimum: Decimal | None = None  # exclusive lower bound for numbers (0 = must be positive)
    maximum: Decimal | None = None  # inclusive upper bound
    min_inclusive: bool = False

    def bounds_text(self) -> str:
        low = "" if self.minimum is None else (">= " if self.min_inclusive else "> ") + str(self.minimum)
        high = "" if self.maximum is None else f"<= {self.maximum}"
        return " and ".join(part for part in (low, high) if part)


@dataclass(frozen=True)
class ActivitySpec:
    """The keys of one activity type: required, optional, and groups of which exactly one is given."""

    type: str
    doc: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> tuple[str, ...]:
        grouped = tuple(name for group in self.one_of for name in group)
        return ("type", *self.required, *grouped, *self.optional, *COMMON)


ZERO = Decimal(0)


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("type", "choice", "activity type", choices=()),  # filled from ACTIVITIES below
        FieldSpec("factor_set", "text", "factor set to use (default: the newest that covers the activity)"),
        FieldSpec("ref", "text", "the caller's own reference for this line, echoed back"),
        FieldSpec(
            "year",
            "integer",
            "year the activity happened",
            minimum=Decimal(1990),
            maximum=Decimal(2100),
            min_inclusive=True,
        ),
        FieldSpec("country", "country", "ISO 3166-1 alpha-2 country where the activity happened"),
        FieldSpec("origin", "airport", "IATA code of the departure airport"),
        FieldSpec("destination", "airport", "IATA code of the arrival airport"),
        FieldSpec("round_trip", "boolean", "true for a return journey (counts the distance twice)"),
        FieldSpec(
            "cabin",
            "choice",
            "cabin class",
            choices=("economy", "premium_economy", "business", "first", "average"),
        ),
        FieldSpec(
            "radiative_forcing",
            "boolean",
            "include non-CO2 effects of aviation (default on where the factor set has them)",
        ),
        FieldSpec("passengers", "integer", "number of travellers", minimum=ZERO, maximum=Decimal("1000")),
        FieldSpec("distance_km", "number", "distance in kilometres", minimum=ZERO, maximum=Decimal("50000")),
        FieldSpec(
            "distance_miles", "number", "distance in statute miles", minimum=ZERO, maximum=Decimal("31000")
        ),
        FieldSpec(
            "fuel",
            "choice",
            "car fuel or fuel burned",
            choices=(
                "petrol",
                "diesel",
                "hybrid",
                "plugin_hybrid",
                "bev",
                "unknown",
                "lpg",
                "natural_gas",
                "coal",
            ),
        ),
        FieldSpec("size", "choice", "vehicle size", choices=("small", "medium", "large", "average")),
        FieldSpec("basis", "choice", "taxi factor basis", choices=("vehicle", "passenger")),
        FieldSpec(
            "mode",
            "choice",
            "bus, rail or ferry mode",
            choices=(
                "local_bus",
                "coach",
                "national_rail",
                "international_rail",
                "light_rail_tram",
                "metro",
                "foot_passenger",
                "car_passenger",
                "average",
            ),
        ),
        FieldSpec(
            "vehicle",
            "choice",
            "freight vehicle",
            choices=("hgv_diesel", "hgv_rigid", "hgv_artic", "van_diesel", "van_petrol", "van_bev"),
        ),
        FieldSpec(
            "load",
            "choice",
            "how laden the freight vehicle is",
            choices=("empty", "half", "full", "average_laden"),
        ),
        FieldSpec("tonnes", "number", "tonnes of goods carried", minimum=ZERO, maximum=Decimal("100")),
        FieldSpec("nights", "integer", "nights stayed", minimum=ZERO, maximum=Decimal("366")),
        FieldSpec("rooms", "integer", "rooms booked", minimum=ZERO, maximum=Decimal("1000")),
        FieldSpec(
            "fallback_country",
            "country",
            "country whose hotel factor to use when the hotel's country has none",
        ),
        FieldSpec("region", "region", "ISO 3166-2 region (e.g. CN-SC) or ISO 3166-1 country (CN, GB)"),
        FieldSpec("kwh", "number", "kilowatt-hours", minimum=ZERO, maximum=Decimal("100000000")),
        FieldSpec("litres", "number", "litres of fuel", minimum=ZERO, maximum=Decimal("10000000")),
        FieldSpec("kg", "number", "kilograms of fuel", minimum=ZERO, maximum=Decimal("10000000")),
        FieldSpec("m3", "number", "cubic metres of gas", minimum=ZERO, maximum=Decimal("10000000")),
        FieldSpec("blend", "choice", "fuel blend (DESNZ fuels)", choices=("average", "mineral")),
        FieldSpec(
            "diet",
            "choice",
            "diet of the meals",
            choices=("vegan", "vegetarian", "fish", "low_meat", "medium_meat", "high_meat"),
        ),
        FieldSpec("count", "integer", "number of meals", minimum=ZERO, maximum=Decimal("100000")),
    )
}

COMMON = ("factor_set", "ref", "year")
_DISTANCE = ("distance_km", "distance_miles")

ACTIVITIES: dict[str, ActivitySpec] = {
    spec.type: spec
    for spec in (
        ActivitySpec(
            "flight",
            "a flight between two airports (great-circle distance)",
            required=("origin", "destination"),
            optional=("round_trip", "cabin", "passengers", "radiative_forcing"),
            defaults={"round_trip": "false", "cabin": "average", "passengers": "1"},
        ),
        ActivitySpec(
            "car",
            "a car journey (per vehicle, not per passenger)",
            required=(),
            one_of=(_DISTANCE,),
            optional=("fuel", "size", "country"),
            defaults={"fuel": "unknown", "size": "average"},
        ),
        ActivitySpec(
            "taxi",
            "a taxi journey",
            required=(),
            one_of=(_DISTANCE,),
            optional=("basis", "passengers", "country"),
            defaults={"basis": "vehicle", "passengers": "1"},
        ),
        ActivitySpec(
            "motorbike",
            "a motorbike journey",
            required=(),
            one_of=(_DISTANCE,),
            optional=("size", "country"),
            defaults={"size": "average"},
        ),
        ActivitySpec(
            "bus",
            "a bus or coach journey",
            required=("mode",),
            one_of=(_DISTANCE,),
            optional=("passengers", "country"),
            defaults={"passengers": "1"},
        ),
        ActivitySpec(
            "rail",
            "a train, tram or metro journey",
            required=("mode",),
            one_of=(_DISTANCE,),
            optional=("passengers", "country"),
            defaults={"passengers": "1"},
        ),
        ActivitySpec(
            "ferry",
            "a ferry crossing",
            required=(),
            one_of=(_DISTANCE,),
            optional=("mode", "passengers", "country"),
            defaults={"mode": "average", "passengers": "1"},
        ),
        ActivitySpec(
            "hotel",
            "hotel nights",
            required=("country", "nights"),
            optional=("rooms", "fallback_country"),
            defaults={"rooms": "1"},
        ),
        ActivitySpec(
            "meal",
            "meals (one meal = a third of a day's diet)",
            required=("diet", "count"),
            optional=("country",),
        ),
        ActivitySpec("electricity", "grid electricity used", required=("region", "kwh")),
        ActivitySpec(
            "fuel",
            "fuel burned",
            required=("fuel",),
            one_of=(("litres", "kg", "m3", "kwh"),),
            optional=("blend", "country"),
            defaults={"blend": "average"},
        ),
        ActivitySpec(
            "freight",
            "goods carried by road",
            required=("vehicle",),
            one_of=(_DISTANCE,),
            optional=("load", "tonnes", "country"),
            defaults={"load": "average_laden"},
        ),
    )
}

# Which values of a shared key each type accepts (the rest of FIELDS[...].choices belong to others).
CHOICES_BY_TYPE: dict[tuple[str, str], tuple[str, ...]] = {
    ("car", "fuel"): ("petrol", "diesel", "hybrid", "plugin_hybrid", "bev", "unknown"),
    ("fuel", "fuel"): ("diesel", "petrol", "lpg", "natural_gas", "coal"),
    ("bus", "mode"): ("local_bus", "coach"),
    ("rail", "mode"): ("national_rail", "international_rail", "light_rail_tram", "metro"),
    ("ferry", "mode"): ("foot_passenger", "car_passenger", "average"),
}

ACTIVITY_TYPES: tuple[str, ...] = tuple(ACTIVITIES)
FIELDS["type"] = FieldSpec("type", "choice", "activity type", choices=ACTIVITY_TYPES)
FIELD_NAMES: tuple[str, ...] = tuple(FIELDS)


def choices_for(activity_type: str, name: str) -> tuple[str, ...]:
    """The values ``name`` may take on an activity of ``activity_type``."""
    return CHOICES_BY_TYPE.get((activity_type, name), FIELDS[name].choices)
