"""A scalar, exact reference implementation of the footprint rules, for testing the engine.

This module is deliberately independent of the engine: it reads the shipped CSV files itself,
finds DESNZ rows by their full label path, computes with ``fractions.Fraction`` and rounds once,
half to even, to 6 decimal places. It imports nothing from the footprint package but the
vocabulary's unit constant. One activity in, one answer out; no tables, no columns.

The only float in here is the great-circle distance (the rule is defined on floats: haversine,
R = 6371 km), which is rounded half to even to 3 decimals before any other arithmetic.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path

import airportsdata

from neutralize.footprint import vocabulary

DATA_DIR = Path(vocabulary.__file__).parent / "data"
KM_PER_MILE = Fraction(vocabulary.MILES_TO_KM)
EARTH_RADIUS_KM = 6371.0
MICRO = Decimal("0.000001")
UK = "GB"

DESNZ_EDITIONS = {"DESNZ-2025": "desnz_2025.csv", "DESNZ-2024": "desnz_2024.csv"}
EPA = "EPA-2025"
IPCC = "IPCC-2006"
DIETS = "SCARBOROUGH-2014"
MEE_NBS = "MEE-NBS"
MEE_ETS = "MEE-ETS-2022"


class OracleError(Exception):
    """The activity is valid but no factor answers it; ``code`` is the error code expected."""

    def __init__(self, code: str, why: str) -> None:
        super().__init__(f"{code}: {why}")
        self.code = code


@dataclass(frozen=True)
class Answer:
    """The factor chosen for an activity and the exact quantities behind the kg figure."""

    factor_set: str
    factor_id: str
    factor_value: Fraction  # as published, in the factor's own unit
    amount: Fraction  # the activity amount (km, passenger.km, kWh, litres, kg, nights ...)
    multiplier: Fraction  # activity amount -> the factor's unit

    @property
    def kg_exact(self) -> Fraction:
        return self.amount * self.multiplier * self.factor_value

    @property
    def kg(self) -> Decimal:
        return round_micro(self.kg_exact)


def round_micro(value: Fraction) -> Decimal:
    """``value`` rounded half to even to 6 decimal places (``round`` on a Fraction is half-even)."""
    micro = round(value * 1_000_000)
    return (Decimal(micro) / 1_000_000).quantize(MICRO)


# --- reading the shipped data ----------------------------------------------------------------


def _read(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def _desnz_rows(factor_set: str) -> dict[tuple[tuple[str, ...], str], list[dict[str, str]]]:
    """DESNZ kg CO2e rows keyed by (non-empty labels level_1..column_text, unit)."""
    rows: dict[tuple[tuple[str, ...], str], list[dict[str, str]]] = {}
    for row in _read(DESNZ_EDITIONS[factor_set]):
        if row["ghg_unit"] != "kg CO2e":
            continue
        labels = tuple(row[k] for k in ("level_1", "level_2", "level_3", "level_4", "column_text") if row[k])
        rows.setdefault((labels, row["unit"]), []).append(row)
    return rows


def desnz_row(factor_set: str, unit: str, *labels: str) -> dict[str, str] | None:
    """The one DESNZ row with exactly this label path and unit, or None if there is none."""
    found = _desnz_rows(factor_set).get((labels, unit), [])
    if len(found) > 1:
        raise AssertionError(f"{factor_set}: {len(found)} rows for {labels} [{unit}]")
    return found[0] if found else None


def _desnz(
    factor_set: str, unit: str, labels: tuple[str, ...], amount: Fraction, multiplier: Fraction = Fraction(1)
) -> Answer:
    row = desnz_row(factor_set, unit, *labels)
    if row is None:
        raise AssertionError(f"{factor_set} has no row {labels} [{unit}]")
    return Answer(factor_set, row["factor_id"], Fraction(row["value"]), amount, multiplier)


@cache
def _epa_rows() -> dict[str, dict[str, str]]:
    return {row["mode_key"]: row for row in _read("epa_hub_2025_business_travel.csv")}


def _epa(mode_key: str, amount_km: Fraction) -> Answer:
    # EPA factors are per mile: the amount in km is divided by km per mile.
    row = _epa_rows()[mode_key]
    value = Fraction(row["co2e_kg_per_unit_ar5_derived"])
    return Answer(EPA, f"table10:{mode_key}", value, amount_km, 1 / KM_PER_MILE)


@cache
def _ipcc_rows() -> dict[str, dict[str, str]]:
    return {row["fuel_key"]: row for row in _read("ipcc_2006_fuels.csv")}


@cache
def _diet_rows() -> dict[str, dict[str, str]]:
    return {row["diet"]: row for row in _read("diets_scarborough_2014.csv")}


@cache
def _cn_factors() -> dict[tuple[str, int, str], Fraction]:
    rows = _read("cn_grid_electricity.csv")
    return {(r["region_code"], int(r["year"]), r["kind"]): Fraction(r["value_kg_co2_per_kwh"]) for r in rows}


@cache
def _cn_grid_of() -> dict[str, str]:
    return {row["region_code"]: row["grid_code"] for row in _read("cn_province_grid.csv")}


@cache
def _airports() -> dict[str, dict[str, object]]:
    return airportsdata.load("IATA")  # type: ignore[no-any-return]


# --- inputs -----------------------------------------------------------------------------------


def _number(value: object) -> Fraction:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return Fraction(Decimal(str(value)))


def _flag(value: object, default: bool | None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _text(activity: dict[str, object], key: str, default: str | None = None) -> str | None:
    value = activity.get(key)
    return default if value is None else str(value).strip()


def _distance_km(activity: dict[str, object]) -> Fraction:
    if activity.get("distance_km") is not None:
        return _number(activity["distance_km"])
    return _number(activity["distance_miles"]) * KM_PER_MILE


def _passengers(activity: dict[str, object]) -> Fraction:
    return _number(activity.get("passengers", 1))


def great_circle_km(origin: str, destination: str) -> Fraction:
    """Haversine distance (R = 6371 km) in float, rounded half to even to 3 decimals, exactly."""
    a, b = _airports()[origin], _airports()[destination]
    lat1, lat2 = math.radians(float(a["lat"])), math.radians(float(b["lat"]))  # type: ignore[arg-type]
    dlat = lat2 - lat1
    dlon = math.radians(float(b["lon"]) - float(a["lon"]))  # type: ignore[arg-type]
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
    return Fraction(Decimal(km).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))


def default_factor_set(activity: dict[str, object]) -> str:
    kind = activity["type"]
    if kind == "meal":
        return DIETS
    if kind == "electricity":
        region = (_text(activity, "region") or "").upper()
        return MEE_NBS if region.startswith("CN") else "DESNZ-2025"
    return "DESNZ-2025"


# --- the rules, one function per activity type ------------------------------------------------

_CABIN = {
    "average": "Average passenger",
    "economy": "Economy class",
    "premium_economy": "Premium economy class",
    "business": "Business class",
    "first": "First class",
}


def _flight(activity: dict[str, object], fs: str) -> Answer:
    origin = str(activity["origin"]).strip().upper()
    destination = str(activity["destination"]).strip().upper()
    km = great_circle_km(origin, destination)
    trips = 2 if _flag(activity.get("round_trip"), False) else 1
    amount = km * _passengers(activity) * trips
    rf = _flag(activity.get("radiative_forcing"), None)
    cabin = _text(activity, "cabin", "average")
    assert cabin is not None
    if fs == EPA:
        if rf is True:
            raise OracleError("radiative_forcing_unavailable", "EPA has no radiative forcing rows")
        miles = km / KM_PER_MILE
        band = "air_short_haul" if miles < 300 else "air_medium_haul" if miles < 2300 else "air_long_haul"
        return _epa(band, amount)
    if fs not in DESNZ_EDITIONS:
        raise OracleError("factor_set_not_applicable", f"{fs} has no flights")
    countries = (_airports()[origin]["country"], _airports()[destination]["country"])
    uk_ends = countries.count(UK)
    if uk_ends == 2:
        haul = "Domestic, to/from UK"
    elif uk_ends == 1:
        haul = "Short-haul, to/from UK" if km < 3700 else "Long-haul, to/from UK"
    else:
        haul = "International, to/from non-UK"
    rf_label = "Without RF" if rf is False else "With RF"  # radiative forcing is on unless refused
    cabin_label = _CABIN[cabin]
    if desnz_row(fs, "passenger.km", "Business travel- air", "Flights", haul, cabin_label, rf_label) is None:
        cabin_label = "Average passenger"
    return _desnz(
        fs, "passenger.km", ("Business travel- air", "Flights", haul, cabin_label, rf_label), amount
    )


_CAR_FUEL = {
    "petrol": "Petrol",
    "diesel": "Diesel",
    "hybrid": "Hybrid",
    "plugin_hybrid": "Plug-in Hybrid Electric Vehicle",
    "bev": "Battery Electric Vehicle",
    "unknown": "Unknown",
}
_CAR_SIZE = {"small": "Small car", "medium": "Medium car", "large": "Large car", "average": "Average car"}
_BIKE_SIZE = {"small": "Small", "medium": "Medium", "large": "Large", "average": "Average"}


def _car(activity: dict[str, object], fs: str) -> Answer:
    km = _distance_km(activity)
    if fs == EPA:
        return _epa("passenger_car", km)
    _only_desnz(fs, "car")
    fuel = _CAR_FUEL[_text(activity, "fuel", "unknown") or ""]
    size = _CAR_SIZE[_text(activity, "size", "average") or ""]
    return _desnz(fs, "km", ("Business travel- land", "Cars (by size)", size, fuel), km)


def _motorbike(activity: dict[str, object], fs: str) -> Answer:
    km = _distance_km(activity)
    if fs == EPA:
        return _epa("motorcycle", km)
    _only_desnz(fs, "motorbike")
    size = _BIKE_SIZE[_text(activity, "size", "average") or ""]
    return _desnz(fs, "km", ("Business travel- land", "Motorbike", size), km)


def _taxi(activity: dict[str, object], fs: str) -> Answer:
    _only_desnz(fs, "taxi")
    km = _distance_km(activity)
    labels = ("Business travel- land", "Taxis", "Regular taxi")
    if _text(activity, "basis", "vehicle") == "passenger":
        return _desnz(fs, "passenger.km", labels, km * _passengers(activity))
    return _desnz(fs, "km", labels, km)


def _bus(activity: dict[str, object], fs: str) -> Answer:
    pkm = _distance_km(activity) * _passengers(activity)
    if fs == EPA:
        return _epa("bus", pkm)
    _only_desnz(fs, "bus")
    label = {"local_bus": "Average local bus", "coach": "Coach"}[_text(activity, "mode") or ""]
    return _desnz(fs, "passenger.km", ("Business travel- land", "Bus", label), pkm)


_RAIL = {
    "national_rail": "National rail",
    "international_rail": "International rail",
    "light_rail_tram": "Light rail and tram",
    "metro": "London Underground",
}
_EPA_RAIL = {
    "national_rail": "intercity_rail_national_average",
    "light_rail_tram": "transit_rail",
    "metro": "transit_rail",
}


def _rail(activity: dict[str, object], fs: str) -> Answer:
    mode = _text(activity, "mode") or ""
    pkm = _distance_km(activity) * _passengers(activity)
    if fs == EPA:
        if mode not in _EPA_RAIL:
            raise OracleError("factor_set_not_applicable", f"EPA has no {mode} factor")
        return _epa(_EPA_RAIL[mode], pkm)
    _only_desnz(fs, "rail")
    return _desnz(fs, "passenger.km", ("Business travel- land", "Rail", _RAIL[mode]), pkm)


def _ferry(activity: dict[str, object], fs: str) -> Answer:
    _only_desnz(fs, "ferry")
    label = {"foot_passenger": "Foot", "car_passenger": "Car", "average": "Average"}[
        _text(activity, "mode", "average") or ""
    ]
    pkm = _distance_km(activity) * _passengers(activity)
    return _desnz(fs, "passenger.km", ("Business travel- sea", "Ferry", label), pkm)


# DESNZ hotel rows by their country label (both shipped editions use these labels).
HOTEL_LABELS = {
    "GB": "UK",
    "GB-LND": "UK (London)",
    "AU": "Australia",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CL": "Chile",
    "CN": "China",
    "CO": "Colombia",
    "CR": "Costa Rica",
    "EG": "Egypt",
    "FR": "France",
    "DE": "Germany",
    "HK": "Hong Kong, China",
    "IN": "India",
    "ID": "Indonesia",
    "IT": "Italy",
    "JP": "Japan",
    "JO": "Jordan",
    "KR": "Korea",
    "MY": "Malaysia",
    "MV": "Maldives",
    "MX": "Mexico",
    "NL": "Netherlands",
    "OM": "Oman",
    "PH": "Philippines",
    "PT": "Portugal",
    "QA": "Qatar",
    "RU": "Russia",
    "SA": "Saudi Arabia",
    "SG": "Singapore",
    "ZA": "South Africa",
    "ES": "Spain",
    "CH": "Switzerland",
    "TH": "Thailand",
    "TR": "Turkey",
    "AE": "United Arab Emirates",
    "US": "United States",
    "VN": "Vietnam",
}


def hotel_key(code: str) -> str:
    """London has its own hotel row; any other subdivision counts as its country."""
    code = code.strip().upper()
    return code if code == "GB-LND" else code[:2]


def _hotel(activity: dict[str, object], fs: str) -> Answer:
    _only_desnz(fs, "hotel")
    room_nights = _number(activity["nights"]) * _number(activity.get("rooms", 1))
    for key in ("country", "fallback_country"):
        code = _text(activity, key)
        if code is not None and hotel_key(code) in HOTEL_LABELS:
            label = HOTEL_LABELS[hotel_key(code)]
            return _desnz(fs, "Room per night", ("Hotel stay", "Hotel stay", label), room_nights)
    raise OracleError("region_not_covered", f"no hotel factor for {activity.get('country')}")


def _meal(activity: dict[str, object], fs: str) -> Answer:
    if fs != DIETS:
        raise OracleError("factor_set_not_applicable", f"{fs} has no diets")
    diet = _text(activity, "diet") or ""
    per_day = Fraction(_diet_rows()[diet]["kg_co2e_per_day"])
    # One meal is a third of a day's diet.
    return Answer(DIETS, f"diet:{diet}", per_day, _number(activity["count"]), Fraction(1, 3))


def _electricity(activity: dict[str, object], fs: str) -> Answer:
    region = (_text(activity, "region") or "").upper()
    kwh = _number(activity["kwh"])
    if fs in DESNZ_EDITIONS:
        if not region.startswith(UK):
            raise OracleError("region_not_covered", f"DESNZ has no grid factor for {region}")
        return _desnz(fs, "kWh", ("UK electricity", "Electricity generated", "Electricity: UK", "kWh"), kwh)
    if fs not in (MEE_NBS, MEE_ETS):
        raise OracleError("factor_set_not_applicable", f"{fs} has no electricity")
    if region != "CN" and region not in _cn_grid_of():
        raise OracleError("region_not_covered", f"no Chinese grid factor for {region}")
    year = activity.get("year")
    region_code, year_used, value = _cn_factor(region, None if year is None else int(_number(year)), fs)
    kind = "ets_reporting" if fs == MEE_ETS else "statistical_average"
    return Answer(fs, f"{region_code}:{year_used}:{kind}", value, kwh, Fraction(1))


def _cn_factor(region: str, year: int | None, fs: str) -> tuple[str, int, Fraction]:
    """Province, then its regional grid, then the nation; the nearest year (earlier on a tie)."""
    kind = "ets_reporting" if fs == MEE_ETS else "statistical_average"
    published = {(code, y): v for (code, y, k), v in _cn_factors().items() if k == kind}
    years = sorted({y for (_, y) in published})
    wanted = years[-1] if year is None else year
    places = [region] if region == "CN" else [region, _cn_grid_of()[region], "CN"]
    for candidate in sorted(years, key=lambda y: (abs(y - wanted), y)):
        for place in places:
            if (place, candidate) in published:
                return place, candidate, published[(place, candidate)]
    raise AssertionError(f"no factor at all for {region}")


_DESNZ_FUEL = {  # group, average-blend label, mineral label (None: DESNZ has only one)
    "diesel": ("Liquid fuels", "Diesel (average biofuel blend)", "Diesel (100% mineral diesel)"),
    "petrol": ("Liquid fuels", "Petrol (average biofuel blend)", "Petrol (100% mineral petrol)"),
    "lpg": ("Gaseous fuels", "LPG", None),
    "natural_gas": ("Gaseous fuels", "Natural gas", "Natural gas (100% mineral blend)"),
    "coal": ("Solid fuels", "Coal (industrial)", None),
}
_DESNZ_FUEL_UNIT = {
    "litres": ("litres", Fraction(1)),
    "kg": ("tonnes", Fraction(1, 1000)),
    "m3": ("cubic metres", Fraction(1)),
    "kwh": ("kWh (Gross CV)", Fraction(1)),
}
_IPCC_FUEL = {
    "diesel": "gas_diesel_oil",
    "petrol": "motor_gasoline",
    "lpg": "liquefied_petroleum_gases",
    "natural_gas": "natural_gas",
    "coal": "other_bituminous_coal",
}


def fuel_amount_key(activity: dict[str, object]) -> str:
    return next(key for key in ("litres", "kg", "m3", "kwh") if activity.get(key) is not None)


def _fuel(activity: dict[str, object], fs: str) -> Answer:
    fuel = _text(activity, "fuel") or ""
    key = fuel_amount_key(activity)
    amount = _number(activity[key])
    if fs == IPCC:
        row = _ipcc_rows()[_IPCC_FUEL[fuel]]
        if key == "kg":
            # TJ per kg = NCV (TJ/Gg) / 1e6 kg per Gg
            multiplier = Fraction(row["ncv_tj_per_gg"]) / 1_000_000
        elif key == "kwh":
            multiplier = Fraction(36, 10_000_000)  # TJ per kWh (3.6 MJ)
        else:
            raise OracleError("unit_not_covered", f"IPCC has no densities for {key}")
        return Answer(
            IPCC, f"{row['fuel_key']}:co2_per_tj", Fraction(row["co2_kg_per_tj"]), amount, multiplier
        )
    _only_desnz(fs, "fuel")
    group, average, mineral = _DESNZ_FUEL[fuel]
    label = mineral if _text(activity, "blend", "average") == "mineral" and mineral else average
    unit, multiplier = _DESNZ_FUEL_UNIT[key]
    if desnz_row(fs, unit, "Fuels", group, label) is None:
        raise OracleError("unit_not_covered", f"{fs} has no {label} in {unit}")
    return _desnz(fs, unit, ("Fuels", group, label), amount, multiplier)


_HGV = {"hgv_diesel": "All HGVs", "hgv_rigid": "All rigids", "hgv_artic": "All artics"}
_VAN = {"van_diesel": "Diesel", "van_petrol": "Petrol", "van_bev": "Battery Electric Vehicle"}
_LOAD = {"empty": "0% Laden", "half": "50% Laden", "full": "100% Laden", "average_laden": "Average laden"}


def _freight(activity: dict[str, object], fs: str) -> Answer:
    _only_desnz(fs, "freight")
    vehicle = _text(activity, "vehicle") or ""
    load = _text(activity, "load", "average_laden") or ""
    km = _distance_km(activity)
    # An empty vehicle is charged per vehicle-km; a laden one per tonne-km.
    unit, amount = ("km", km) if load == "empty" else ("tonne.km", km * _number(activity["tonnes"]))
    if vehicle in _HGV:
        labels = ("Freighting goods", "HGV (all diesel)", _HGV[vehicle], _LOAD[load])
    else:  # vans: DESNZ gives the average load only
        labels = ("Freighting goods", "Vans", "Average (up to 3.5 tonnes)", _VAN[vehicle])
    return _desnz(fs, unit, labels, amount)


def _only_desnz(fs: str, kind: str) -> None:
    if fs not in DESNZ_EDITIONS:
        raise OracleError("factor_set_not_applicable", f"{fs} has no {kind} factor")


_RULES = {
    "flight": _flight,
    "car": _car,
    "taxi": _taxi,
    "motorbike": _motorbike,
    "bus": _bus,
    "rail": _rail,
    "ferry": _ferry,
    "hotel": _hotel,
    "meal": _meal,
    "electricity": _electricity,
    "fuel": _fuel,
    "freight": _freight,
}


def oracle_answer(activity: dict[str, object]) -> Answer:
    """The factor and exact amounts for a valid activity; raises ``OracleError`` if none applies."""
    requested = activity.get("factor_set")
    fs = default_factor_set(activity) if requested is None else str(requested).strip().upper()
    return _RULES[str(activity["type"])](activity, fs)


def oracle_kg(activity: dict[str, object]) -> Decimal:
    """kg CO2e of one valid activity, exact and rounded half to even to 6 decimal places."""
    return oracle_answer(activity).kg


def oracle_factor_id(activity: dict[str, object]) -> tuple[str, str]:
    """(factor set, factor id) of the factor the rules pick for ``activity``."""
    answer = oracle_answer(activity)
    return answer.factor_set, answer.factor_id
