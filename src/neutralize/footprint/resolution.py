"""Which published factor answers which activity: the resolution table.

Every (requested factor set, activity type, key1, key2, key3) the vocabulary can produce maps to
one factor (or to a stated error), with the multiplier that turns the activity's amount into the
factor's unit and the assumptions taken on the way. The table is data built once from the
catalogue; the engine only joins against it. Fallbacks live here, so they are stated the same way
for every line that takes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint.factors import DESNZ_HOTELS, Factor, FactorCatalogue, default_catalogue
from neutralize.footprint.vocabulary import FACTOR_SETS, MILES_TO_KM, choices_for

DEFAULT_SET = ""  # the key used when a line names no factor set
YEARS = range(1990, 2101)
NO_YEAR = ""

DESNZ_SETS = ("DESNZ-2025", "DESNZ-2024")


FLIGHT_HAULS = ("domestic", "short_haul", "long_haul", "international")
EPA_HAULS = ("short_haul", "medium_haul", "long_haul")
RF_KEYS = ("on", "off", "default")
_HAUL_LABEL = {
    "domestic": "Domestic, to/from UK",
    "short_haul": "Short-haul, to/from UK",
    "long_haul": "Long-haul, to/from UK",
    "international": "International, to/from non-UK",
}
_CABIN_LABEL = {
    "average": "Average passenger",
    "economy": "Economy class",
    "premium_economy": "Premium economy class",
    "business": "Business class",
    "first": "First class",
}
_CAR_FUEL = {
    "petrol": "Petrol",
    "diesel": "Diesel",
    "hybrid": "Hybrid",
    "plugin_hybrid": "Plug-in Hybrid Electric Vehicle",
    "bev": "Battery Electric Vehicle",
    "unknown": "Unknown",
}
_SIZE = {"small": "Small", "medium": "Medium", "large": "Large", "average": "Average"}
_RAIL = {
    "national_rail": "National rail",
    "international_rail": "International rail",
    "light_rail_tram": "Light rail and tram",
    "metro": "London Underground",
}
_FERRY = {"foot_passenger": "Foot", "car_passenger": "Car", "average": "Average"}
_HGV = {"hgv_diesel": "All HGVs", "hgv_rigid": "All rigids", "hgv_artic": "All artics"}
_VAN = {"van_diesel": "Diesel", "van_petrol": "Petrol", "van_bev": "Battery Electric Vehicle"}
_LOAD = {"empty": "0% Laden", "half": "50% Laden", "full": "100% Laden", "average_laden": "Average laden"}
_FUEL_UNIT = {"litres": "litres", "kg": "tonnes", "m3": "cubic metres", "kwh": "kWh (Gross CV)"}
_IPCC_FUEL = {
    "diesel": "gas_diesel_oil",
    "petrol": "motor_gasoline",
    "lpg": "liquefied_petroleum_gases",
    "natural_gas": "natural_gas",
    "coal": "other_bituminous_coal",
}


@dataclass(frozen=True)
class Resolution:
    """One row of the resolution table."""

    requested_set: str
    type: str
    k1: str
    k2: str = ""
    k3: str = ""
    factor_set: str | None = None
    factor_id: str | None = None
    multiplier: Fraction = Fraction(1)  # activity amount -> factor unit
    amount_unit: str = ""
    notes: tuple[str, ...] = ()
    factor_region: str | None = None
    factor_year: int | None = None
    error_code: ErrorCode | None = None
    error_message: str | None = None
    error_hint: str | None = None


class _Lookup:
    """Find DESNZ rows by their label path, once per edition."""

    def __init__(self, catalogue: FactorCatalogue, factor_set: str) -> None:
        self.factor_set = factor_set
        self._rows: dict[tuple[str, str], Factor] = {}
        for factor in catalogue.in_set(factor_set):
            self._rows[(factor.activity, factor.unit)] = factor

    def path(self, *labels: str, unit: str) -> Factor:
        suffix = " > ".join(labels)
        found = [f for (a, u), f in self._rows.items() if u == unit and a.endswith(" > " + suffix)]
        if len(found) != 1:
            raise LookupError(f"{self.factor_set}: {len(found)} rows for {suffix!r} [{unit}]")
        return found[0]

    def by_id(self, factor_id: str) -> Factor:
        for factor in self._rows.values():
            if factor.factor_id == factor_id:
                return factor
        raise LookupError(f"{self.factor_set}: no row {factor_id}")


def _use(
    factor: Factor, requested_set: str, type_: str, keys: tuple[str, ...], *notes: str, **extra: object
) -> Resolution:
    k = (*keys, "", "", "")[:3]
    extra.setdefault("factor_region", factor.region)
    return Resolution(
        requested_set=requested_set,
        type=type_,
        k1=k[0],
        k2=k[1],
        k3=k[2],
        factor_set=factor.factor_set,
        factor_id=factor.factor_id,
        notes=tuple(n for n in notes if n),
        factor_year=factor.year,
        **extra,  # type: ignore[arg-type]
    )


def _refuse(
    requested_set: str, type_: str, keys: tuple[str, ...], code: ErrorCode, message: str, hint: str
) -> Resolution:
    k = (*keys, "", "", "")[:3]
    return Resolution(
        requested_set, type_, k[0], k[1], k[2], error_code=code, error_message=message, error_hint=hint
    )


def _desnz(cat: FactorCatalogue, fs: str) -> Iterator[Resolution]:
    look = _Lookup(cat, fs)
    yield from _desnz_flights(look)
    yield from _desnz_road(look)
    yield from _desnz_hotels(look)
    yield from _desnz_fuels(look)
    yield from _desnz_freight(look)
    uk = look.by_id("7_400_4000_5_1")
    for year_key in (NO_YEAR, *map(str, YEARS)):
        yield _use(uk, fs, "electricity", ("GB", year_key), amount_unit="kWh")


def _desnz_flights(look: _Lookup) -> Iterator[Resolution]:
    fs = look.factor_set
    for haul in FLIGHT_HAULS:
        for cabin, cabin_label in _CABIN_LABEL.items():
            for rf in RF_KEYS:
                rf_label = "Without RF" if rf == "off" else "With RF"
                notes = []
                try:
                    factor = look.path(
                        "Business travel- air",
                        "Flights",
                        _HAUL_LABEL[haul],
                        cabin_label,
                        rf_label,
                        unit="passenger.km",
                    )
                except LookupError:
                    factor = look.path(
                        "Business travel- air",
                        "Flights",
                        _HAUL_LABEL[haul],
                        "Average passenger",
                        rf_label,
                        unit="passenger.km",
                    )
                    notes.append(
                        f"{fs} has no {cabin_label.lower()} row for {_HAUL_LABEL[haul]} "
                        "flights: the average-passenger factor is used"
                    )
                if rf == "default":
                    notes.append("radiative forcing included (default)")
                yield _use(factor, fs, "flight", (haul, cabin, rf), *notes, amount_unit="passenger.km")


def _desnz_road(look: _Lookup) -> Iterator[Resolution]:
    fs = look.factor_set
    for fuel, fuel_label in _CAR_FUEL.items():
        for size in _SIZE:
            size_label = "Average car" if size == "average" else f"{_SIZE[size]} car"
            factor = look.path("Business travel- land", "Cars (by size)", size_label, fuel_label, unit="km")
            yield _use(factor, fs, "car", (fuel, size), amount_unit="vehicle.km")
    for size, label in _SIZE.items():
        yield _use(
            look.path("Business travel- land", "Motorbike", label, unit="km"),
            fs,
            "motorbike",
            (size,),
            amount_unit="vehicle.km",
        )
    yield _use(
        look.path("Business travel- land", "Taxis", "Regular taxi", unit="km"),
        fs,
        "taxi",
        ("vehicle",),
        amount_unit="vehicle.km",
    )
    yield _use(
        look.path("Business travel- land", "Taxis", "Regular taxi", unit="passenger.km"),
        fs,
        "taxi",
        ("passenger",),
        amount_unit="passenger.km",
    )
    yield _use(
        look.path("Business travel- land", "Bus", "Average local bus", unit="passenger.km"),
        fs,
        "bus",
        ("local_bus",),
        amount_unit="passenger.km",
    )
    yield _use(
        look.path("Business travel- land", "Bus", "Coach", unit="passenger.km"),
        fs,
        "bus",
        ("coach",),
        amount_unit="passenger.km",
    )
    for mode, label in _RAIL.items():
        note = "DESNZ's only metro factor is the London Underground's" if mode == "metro" else ""
        factor = look.path("Business travel- land", "Rail", label, unit="passenger.km")
        yield _use(factor, fs, "rail", (mode,), note, amount_unit="passenger.km")
    for mode, label in _FERRY.items():
        yield _use(
            look.path("Business travel- sea", "Ferry", label, unit="passenger.km"),
            fs,
            "ferry",
            (mode,),
            amount_unit="passenger.km",
        )


def _desnz_hotels(look: _Lookup) -> Iterator[Resolution]:
    for country, stem in DESNZ_HOTELS.items():
        factor = look.by_id(f"29_600_{stem}_13_1")
        yield _use(
            factor, look.factor_set, "hotel", (country,), amount_unit="room.night", factor_region=country
        )


def _desnz_fuels(look: _Lookup) -> Iterator[Resolution]:
    fs = look.factor_set
    rows = {
        "diesel": ("Liquid fuels", "Diesel (average biofuel blend)", "Diesel (100% mineral diesel)"),
        "petrol": ("Liquid fuels", "Petrol (average biofuel blend)", "Petrol (100% mineral petrol)"),
        "lpg": ("Gaseous fuels", "LPG", None),
        "natural_gas": ("Gaseous fuels", "Natural gas", "Natural gas (100% mineral blend)"),
        "coal": ("Solid fuels", "Coal (industrial)", None),
    }
    for fuel, (group, average, mineral) in rows.items():
        for blend in ("average", "mineral"):
            label = mineral if blend == "mineral" and mineral else average
            notes = []
            if blend == "mineral" and mineral is None:
                notes.append(f"DESNZ publishes no separate mineral blend for {average}")
            if fuel == "coal":
                notes.append("coal is taken as DESNZ 'Coal (industrial)'")
            for unit_key, unit in _FUEL_UNIT.items():
                multiplier = Fraction(1, 1000) if unit_key == "kg" else Fraction(1)
                try:
                    factor = look.path("Fuels", group, label, unit=unit)
                except LookupError:
                    yield _refuse(
                        fs,
                        "fuel",
                        (fuel, unit_key, blend),
                        ErrorCode.UNIT_NOT_COVERED,
                        f"{fs} has no factor for {fuel} in {unit_key}",
                        _unit_hint(look, group, label),
                    )
                    continue
                extra = "gross calorific value basis" if unit_key == "kwh" else ""
                yield _use(
                    factor,
                    fs,
                    "fuel",
                    (fuel, unit_key, blend),
                    *notes,
                    extra,
                    multiplier=multiplier,
                    amount_unit=unit_key,
                )


def _unit_hint(look: _Lookup, group: str, label: str) -> str:
    units = []
    for unit_key, unit in _FUEL_UNIT.items():
        try:
            look.path("Fuels", group, label, unit=unit)
            units.append(unit_key)
        except LookupError:
            continue
    return "give the amount in one of: " + ", ".join(units)


def _desnz_freight(look: _Lookup) -> Iterator[Resolution]:
    fs = look.factor_set
    for vehicle, label in _HGV.items():
        for load, load_label in _LOAD.items():
            unit = "km" if load == "empty" else "tonne.km"
            factor = look.path("Freighting goods", "HGV (all diesel)", label, load_label, unit=unit)
            yield _use(
                factor, fs, "freight", (vehicle, load), amount_unit="vehicle.km" if load == "empty" else unit
            )
    for vehicle, fuel_label in _VAN.items():
        for load in _LOAD:
            unit = "km" if load == "empty" else "tonne.km"
            factor = look.path(
                "Freighting goods", "Vans", "Average (up to 3.5 tonnes)", fuel_label, unit=unit
            )
            note = ""
            if load == "empty":
                note = "DESNZ has no empty-van row: the van's average vehicle-km factor is used"
            elif load != "average_laden":
                note = "DESNZ van factors are for average loads only"
            yield _use(
                factor,
                fs,
                "freight",
                (vehicle, load),
                note,
                amount_unit="vehicle.km" if load == "empty" else unit,
            )


def _epa(cat: FactorCatalogue) -> Iterator[Resolution]:
    fs = "EPA-2025"

    def row(key: str) -> Factor:
        return cat.get(fs, f"table10:{key}")

    per_mile = Fraction(1) / Fraction(MILES_TO_KM)
    for haul in EPA_HAULS:
        for cabin in _CABIN_LABEL:
            cabin_note = "" if cabin == "average" else "EPA air factors do not distinguish cabin classes"
            for rf in RF_KEYS:
                if rf == "on":
                    yield _refuse(
                        fs,
                        "flight",
                        (haul, cabin, rf),
                        ErrorCode.RADIATIVE_FORCING_UNAVAILABLE,
                        "EPA-2025 air factors exclude radiative forcing",
                        "set radiative_forcing to false, or use DESNZ-2025",
                    )
                    continue
                notes = [cabin_note]
                if rf == "default":
                    notes.append("EPA air factors exclude radiative forcing (non-CO2 effects)")
                yield _use(
                    row(f"air_{haul}"),
                    fs,
                    "flight",
                    (haul, cabin, rf),
                    *notes,
                    multiplier=per_mile,
                    amount_unit="passenger.km",
                )
    for fuel in choices_for("car", "fuel"):
        for size in _SIZE:
            note = (
                ""
                if (fuel, size) == ("unknown", "average")
                else "EPA passenger-car factor: fuel and size not distinguished"
            )
            yield _use(
                row("passenger_car"),
                fs,
                "car",
                (fuel, size),
                note,
                multiplier=per_mile,
                amount_unit="vehicle.km",
            )
    for size in _SIZE:
        note = "" if size == "average" else "EPA motorcycle factor: size not distinguished"
        yield _use(
            row("motorcycle"), fs, "motorbike", (size,), note, multiplier=per_mile, amount_unit="vehicle.km"
        )
    for mode in ("local_bus", "coach"):
        yield _use(
            row("bus"),
            fs,
            "bus",
            (mode,),
            "EPA bus factor: local bus and coach not distinguished",
            multiplier=per_mile,
            amount_unit="passenger.km",
        )
    rail = {
        "national_rail": "intercity_rail_national_average",
        "light_rail_tram": "transit_rail",
        "metro": "transit_rail",
    }
    for mode, key in rail.items():
        yield _use(row(key), fs, "rail", (mode,), multiplier=per_mile, amount_unit="passenger.km")


def _ipcc(cat: FactorCatalogue) -> Iterator[Resolution]:
    fs = "IPCC-2006"
    kwh_in_tj = Fraction(36, 10_000_000)  # 1 kWh = 3.6 MJ
    for fuel, key in _IPCC_FUEL.items():
        factor = cat.get(fs, f"{key}:co2_per_tj")
        ncv = Fraction(cat.ipcc_ncv_tj_per_gg[key])
        notes = ["CO2 only, default factor with carbon oxidation factor 1"]
        if fuel == "coal":
            notes.append("coal is taken as IPCC 'Other bituminous coal'")
        for blend in ("average", "mineral"):
            blend_note = (
                "IPCC defaults are for fossil fuel: the blend is not applied" if blend == "average" else ""
            )
            yield _use(
                factor,
                fs,
                "fuel",
                (fuel, "kg", blend),
                *notes,
                blend_note,
                f"net calorific value {cat.ipcc_ncv_tj_per_gg[key]} TJ/Gg (IPCC 2006 Table 1.2)",
                multiplier=ncv / 1_000_000,
                amount_unit="kg",
            )
            yield _use(
                factor,
                fs,
                "fuel",
                (fuel, "kwh", blend),
                *notes,
                blend_note,
                "kWh on a net calorific value basis",
                multiplier=kwh_in_tj,
                amount_unit="kwh",
            )
            for unit_key in ("litres", "m3"):
                yield _refuse(
                    fs,
                    "fuel",
                    (fuel, unit_key, blend),
                    ErrorCode.UNIT_NOT_COVERED,
                    f"IPCC-2006 gives no densities, so no factor per {unit_key}",
                    "give the amount in kg or kwh, or use DESNZ-2025",
                )


def _diets(cat: FactorCatalogue) -> Iterator[Resolution]:
    for diet in choices_for("meal", "diet"):
        factor = cat.get("SCARBOROUGH-2014", f"diet:{diet}")
        yield _use(
            factor,
            factor.factor_set,
            "meal",
            (diet,),
            "one meal is taken as a third of a day's diet (2,000 kcal/day)",
            multiplier=Fraction(1, 3),
            amount_unit="meal",
        )


def _cn_electricity(cat: FactorCatalogue, fs: str) -> Iterator[Resolution]:
    kind = "ets_reporting" if fs == "MEE-ETS-2022" else "statistical_average"
    by_region_year = {(f.region, f.year): f for f in cat.in_set(fs) if f.factor_id.endswith(":" + kind)}
    years = sorted({year for (_, year) in by_region_year if year is not None})
    regions = ["CN", *sorted(cat.province_grid)]
    for region in regions:
        grid = cat.province_grid.get(region)
        for year in (None, *YEARS):
            wanted = years[-1] if year is None else year
            candidates = sorted(years, key=lambda y: (abs(y - wanted), y))
            for candidate in candidates:
                chain = [region, grid, "CN"] if region != "CN" else ["CN"]
                found = next(
                    (by_region_year[(r, candidate)] for r in chain if (r, candidate) in by_region_year), None
                )
                if found is not None:
                    break
            assert found is not None
            notes = []
            if year is None:
                notes.append(f"no year given: the latest published year ({found.year}) is used")
            if found.region != region:
                level = "regional grid" if found.region != "CN" else "national"
                notes.append(
                    f"no {found.year} factor for {region}: the {level} factor ({found.region}) is used"
                )
            if year is not None and found.year != year:
                notes.append(f"no {year} factor: the nearest year ({found.year}) is used")
            if kind == "ets_reporting":
                notes.append("MEE emissions-trading reporting factor (national), not the statistical average")
            year_key = NO_YEAR if year is None else str(year)
            yield _use(found, fs, "electricity", (region, year_key), *notes, amount_unit="kWh")


def _defaults(rows: list[Resolution]) -> Iterator[Resolution]:
    """Rows for lines that name no set: the newest covering edition, by type (and region)."""
    default_for = {
        "meal": "SCARBOROUGH-2014",
        "electricity": None,  # by region, below
    }
    for row in rows:
        wanted = default_for.get(row.type, "DESNZ-2025")
        if row.type == "electricity":
            wanted = "MEE-NBS" if row.k1.startswith("CN") else "DESNZ-2025"
        if row.requested_set == wanted:
            yield replace(row, requested_set=DEFAULT_SET)


def build_resolutions(cat: FactorCatalogue) -> list[Resolution]:
    """Every row of the resolution table, for every factor set and the default.

    A factor the vocabulary needs but the shipped data lacks is a data error, found at start-up.
    """
    try:
        return _build(cat)
    except (LookupError, DomainError) as error:
        raise DomainError(
            code=ErrorCode.FACTOR_DATA_INVALID,
            message=f"the factor data lacks a row the vocabulary needs: {error}",
        ) from error


def _build(cat: FactorCatalogue) -> list[Resolution]:
    rows: list[Resolution] = []
    for fs in DESNZ_SETS:
        rows += _desnz(cat, fs)
    rows += _epa(cat)
    rows += _ipcc(cat)
    rows += _diets(cat)
    rows += _cn_electricity(cat, "MEE-NBS")
    rows += _cn_electricity(cat, "MEE-ETS-2022")
    rows += _defaults(rows)
    return rows


def sets_covering(cat: FactorCatalogue | None = None) -> dict[str, tuple[str, ...]]:
    """For each activity type, the factor sets that have factors for it."""
    covering: dict[str, set[str]] = {}
    for row in default_resolutions(cat):
        if row.requested_set != DEFAULT_SET:
            covering.setdefault(row.type, set()).add(row.requested_set)
    return {t: tuple(s for s in FACTOR_SETS if s in sets) for t, sets in covering.items()}


@lru_cache(maxsize=4)
def default_resolutions(cat: FactorCatalogue | None = None) -> list[Resolution]:
    return build_resolutions(cat or default_catalogue())
