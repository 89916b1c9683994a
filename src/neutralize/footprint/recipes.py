"""Per activity type: the resolution keys and the amount a factor is applied to.

A recipe names, for the rows of one type, the three keys (``k1``, ``k2``, ``k3``) looked up in
the resolution table, the amount in the activity's own unit, the distance shown on the line and
the region the activity happened in (for the geography flag).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from neutralize.footprint.vocabulary import ACTIVITIES, FIELDS, MILES_TO_KM

EARTH_RADIUS_KM = 6371.0
UK = "GB"
HOTEL_SUBDIVISIONS = ("GB-LND",)  # subdivisions with hotel factors of their own
_MILES = float(MILES_TO_KM)
_NONE = pl.lit("")


@dataclass(frozen=True)
class Recipe:
    k1: pl.Expr
    amount: pl.Expr
    k2: pl.Expr | None = None
    k3: pl.Expr | None = None
    distance_km: pl.Expr | None = None
    region: pl.Expr | None = None  # default: the activity's country
    k1_alt: pl.Expr | None = None  # a second key to try (hotels: the stated fallback country)

    def columns(self) -> dict[str, pl.Expr]:
        """The columns a recipe adds: keys, amount, distance and region."""
        return {
            "k1": self.k1.fill_null(""),
            "k2": _NONE if self.k2 is None else self.k2.fill_null(""),
            "k3": _NONE if self.k3 is None else self.k3.fill_null(""),
            "k1_alt": pl.lit(None, dtype=pl.String) if self.k1_alt is None else self.k1_alt,
            "amount": self.amount,
            "distance_km": pl.lit(None, dtype=pl.Float64) if self.distance_km is None else self.distance_km,
            "activity_region": pl.col("country") if self.region is None else self.region,
        }


def defaults(activity_type: str) -> list[pl.Expr]:
    """The type's default values, filled in where the input gave none."""
    columns = []
    for name, value in ACTIVITIES[activity_type].defaults.items():
        kind = FIELDS[name].kind
        if kind in ("number", "integer"):
            literal = pl.lit(float(value))
        elif kind == "boolean":
            literal = pl.lit(value == "true")
        else:
            literal = pl.lit(value)
        columns.append(pl.col(name).fill_null(literal))
    return columns


def recipe(activity_type: str) -> Recipe:
    """The recipe of one activity type."""
    distance = pl.coalesce(pl.col("distance_km"), pl.col("distance_miles") * _MILES)
    passengers = pl.col("passengers")
    match activity_type:
        case "flight":
            legs = pl.when(pl.col("round_trip")).then(2.0).otherwise(1.0)
            flight_km = pl.col("_flight_km")
            return Recipe(
                k1=_haul(),
                k2=pl.col("cabin"),
                k3=_radiative_forcing(),
                amount=flight_km * passengers * legs,
                distance_km=flight_km,
                region=pl.lit(None, dtype=pl.String),
            )
        case "car":
            return Recipe(k1=pl.col("fuel"), k2=pl.col("size"), amount=distance, distance_km=distance)
        case "taxi":
            per_passenger = pl.col("basis") == "passenger"
            amount = distance * pl.when(per_passenger).then(passengers).otherwise(1.0)
            return Recipe(k1=pl.col("basis"), amount=amount, distance_km=distance)
        case "motorbike":
            return Recipe(k1=pl.col("size"), amount=distance, distance_km=distance)
        case "bus" | "rail" | "ferry":
            return Recipe(k1=pl.col("mode"), amount=distance * passengers, distance_km=distance)
        case "hotel":
            return Recipe(
                k1=_hotel_key(pl.col("country")),
                amount=pl.col("nights") * pl.col("rooms"),
                k1_alt=_hotel_key(pl.col("fallback_country")),
            )
        case "meal":
            return Recipe(k1=pl.col("diet"), amount=pl.col("count"))
        case "electricity":
            region = pl.col("region")
            return Recipe(
                k1=pl.when(region.str.starts_with(UK)).then(pl.lit(UK)).otherwise(region),
                k2=pl.col("year").cast(pl.Int32).cast(pl.String),
                amount=pl.col("kwh"),
                region=region,
            )
        case "fuel":
            unit = (
                pl.when(pl.col("litres").is_not_null())
                .then(pl.lit("litres"))
                .when(pl.col("kg").is_not_null())
                .then(pl.lit("kg"))
                .when(pl.col("m3").is_not_null())
                .then(pl.lit("m3"))
                .otherwise(pl.lit("kwh"))
            )
            return Recipe(
                k1=pl.col("fuel"),
                k2=unit,
                k3=pl.col("blend"),
                amount=pl.coalesce("litres", "kg", "m3", "kwh"),
            )
        case "freight":
            laden = pl.when(pl.col("load") == "empty").then(1.0).otherwise(pl.col("tonnes"))
            return Recipe(
                k1=pl.col("vehicle"), k2=pl.col("load"), amount=distance * laden, distance_km=distance
            )
    raise ValueError(f"no recipe for {activity_type!r}")


def great_circle_km() -> pl.Expr:
    """Haversine distance between the two airports, rounded to the metre."""
    lat1, lat2 = pl.col("_o_lat").radians(), pl.col("_d_lat").radians()
    dlat = lat2 - lat1
    dlon = (pl.col("_d_lon") - pl.col("_o_lon")).radians()
    a = (dlat / 2).sin().pow(2) + lat1.cos() * lat2.cos() * (dlon / 2).sin().pow(2)
    return (2 * EARTH_RADIUS_KM * a.sqrt().arcsin()).round(3)


def _haul() -> pl.Expr:
    """DESNZ tiers by where the flight starts and ends; EPA bands by distance in miles."""
    km = pl.col("_flight_km")
    miles = km / _MILES
    from_uk, to_uk = pl.col("_o_country") == UK, pl.col("_d_country") == UK
    return (
        pl.when(pl.col("factor_set") == "EPA-2025")
        .then(
            pl.when(miles < 300)
            .then(pl.lit("short_haul"))
            .when(miles < 2300)
            .then(pl.lit("medium_haul"))
            .otherwise(pl.lit("long_haul"))
        )
        .when(from_uk & to_uk)
        .then(pl.lit("domestic"))
        .when(from_uk | to_uk)
        .then(pl.when(km < 3700).then(pl.lit("short_haul")).otherwise(pl.lit("long_haul")))
        .otherwise(pl.lit("international"))
    )


def _radiative_forcing() -> pl.Expr:
    rf = pl.col("radiative_forcing")
    return pl.when(rf.is_null()).then(pl.lit("default")).when(rf).then(pl.lit("on")).otherwise(pl.lit("off"))


def _hotel_key(country: pl.Expr) -> pl.Expr:
    return pl.when(country.is_in(HOTEL_SUBDIVISIONS)).then(country).otherwise(country.str.slice(0, 2))
