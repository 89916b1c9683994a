"""The shipped methodologies: reduction = baseline emissions - project emissions, in whole grams.

Each methodology has two faces that must agree exactly:

* ``reference``: the formula as its source writes it, in exact fractions, for one record;
* ``coefficients``: the same formula multiplied out into grams per metre (or watt-hour) of each
  measure, which the column-wise engine turns into integer arithmetic.

Both round down (conservative) and never go below zero. Measures are whole metres and
watt-hours (see ``accounts.records.whole_units``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from neutralize.accounts.methodologies import ParameterSet, parameters_invalid
from neutralize.accounts.records import Behaviour, TruckClass
from neutralize.core.errors import DomainError, ErrorCode

KM = Fraction(1000)  # metres per km, and watt-hours per kWh
GRID_EF = "grid_ef_kg_per_kwh"
DAILY_CAP = "daily_cap_g"


@dataclass(frozen=True, slots=True)
class Measures:
    """A record's measures in whole units; zero where the behaviour has none."""

    distance_m: int = 0
    loaded_m: int = 0
    empty_m: int = 0
    energy_wh: int = 0


@dataclass(frozen=True, slots=True)
class Coefficients:
    """Grams of reduction per unit of each measure: reduction = floor(max(0, sum of products))."""

    distance_m: Fraction = Fraction(0)
    loaded_m: Fraction = Fraction(0)
    empty_m: Fraction = Fraction(0)
    energy_wh: Fraction = Fraction(0)

    def grams(self, measures: Measures) -> int:
        total = (
            self.distance_m * measures.distance_m
            + self.loaded_m * measures.loaded_m
            + self.empty_m * measures.empty_m
            + self.energy_wh * measures.energy_wh
        )
        return max(0, math.floor(total))


@dataclass(frozen=True)
class Methodology:
    """A versioned methodology: which behaviour it credits, its keys and its two formula faces."""

    id: str
    version: str
    behaviour: Behaviour
    key_parameter: str  # the parameter whose keys are the modes, classes or regions it covers
    reference: Callable[[Measures, ParameterSet, str], int]
    coefficients: Callable[[ParameterSet, str], Coefficients]
    check: Callable[[ParameterSet], None]

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def keys(self, parameters: ParameterSet) -> tuple[str, ...]:
        return parameters.keys(self.key_parameter)


def daily_cap(parameters: ParameterSet, mode: str) -> tuple[str, int]:
    """The cap that applies to ``mode``: its own if the set has one, else the behaviour's."""
    own = parameters.find(DAILY_CAP, mode)
    key = mode if own is not None else ""
    return key, int(parameters.value(DAILY_CAP, key))


def _floor_positive(grams: Fraction) -> int:
    return max(0, math.floor(grams))


def _require(parameters: ParameterSet, condition: bool, message: str) -> None:
    if not condition:
        raise parameters_invalid(f"{parameters.ref}: {message}")


def _check_caps(parameters: ParameterSet) -> None:
    for key in parameters.keys(DAILY_CAP):
        cap = parameters.value(DAILY_CAP, key)
        _require(
            parameters, cap >= 0 and cap.denominator == 1, f"{DAILY_CAP}[{key}] must be whole grams >= 0"
        )


# --- public transport, Shenzhen published reduction factors -----------------------------------

RF = "reduction_factor_g_per_pkm"


def _shenzhen(measures: Measures, parameters: ParameterSet, mode: str) -> int:
    # ER = RF_m x distance (Shenzhen low-carbon public transport methodology, 2021)
    return _floor_positive(parameters.value(RF, mode) * Fraction(measures.distance_m) / KM)


def _shenzhen_coefficients(parameters: ParameterSet, mode: str) -> Coefficients:
    return Coefficients(distance_m=parameters.value(RF, mode) / KM)


def _check_shenzhen(parameters: ParameterSet) -> None:
    for mode in ("metro", "electric_bus"):
        _require(parameters, parameters.value(RF, mode) >= 0, f"{RF}[{mode}] must be >= 0")
    _check_caps(parameters)


# --- city-average baseline (public transport variant, walking and cycling) ----------------------

BASELINE_EF = "baseline_ef_g_per_pkm"
PROJECT_EF = "project_ef_g_per_pkm"


def _city_average(measures: Measures, parameters: ParameterSet, mode: str) -> int:
    # RF_m = EF_BL - EF_m; ER = RF_m x distance (urban green travel index white paper, 4.2)
    factor = parameters.value(BASELINE_EF) - parameters.value(PROJECT_EF, mode)
    return _floor_positive(factor * Fraction(measures.distance_m) / KM)


def _city_average_coefficients(parameters: ParameterSet, mode: str) -> Coefficients:
    return Coefficients(distance_m=(parameters.value(BASELINE_EF) - parameters.value(PROJECT_EF, mode)) / KM)


def _check_city_average(modes: tuple[str, ...]) -> Callable[[ParameterSet], None]:
    def check(parameters: ParameterSet) -> None:
        _require(parameters, parameters.value(BASELINE_EF) >= 0, f"{BASELINE_EF} must be >= 0")
        for mode in modes:
            _require(
                parameters, parameters.value(PROJECT_EF, mode) >= 0, f"{PROJECT_EF}[{mode}] must be >= 0"
            )
        _check_caps(parameters)

    return check


# --- digital freight matching: less empty running ------------------------------------------------

EMPTY_RATE = "baseline_empty_rate"
FUEL_EMPTY = "fuel_empty_l_per_100km"
DIESEL_CO2 = "diesel_co2_kg_per_kg"
DIESEL_DENSITY = "diesel_density_kg_per_l"


def _diesel_g_per_litre(parameters: ParameterSet) -> Fraction:
    return parameters.value(DIESEL_CO2) * parameters.value(DIESEL_DENSITY) * 1000


def _freight(measures: Measures, parameters: ParameterSet, truck_class: str) -> int:
    # E_BL = D_L r_BL / (1 - r_BL); E_PJ = D_L r_PJ / (1 - r_PJ); fuel = (E_BL - E_PJ) FC_empty / 100;
    # ER = fuel x EF_diesel per litre.
    loaded_km = Fraction(measures.loaded_m) / KM
    empty_km = Fraction(measures.empty_m) / KM
    rate_baseline = parameters.value(EMPTY_RATE, truck_class)
    rate_project = empty_km / (loaded_km + empty_km)
    empty_baseline_km = loaded_km * rate_baseline / (1 - rate_baseline)
    empty_project_km = loaded_km * rate_project / (1 - rate_project)
    fuel_saved_l = (empty_baseline_km - empty_project_km) * parameters.value(FUEL_EMPTY, truck_class) / 100
    return _floor_positive(fuel_saved_l * _diesel_g_per_litre(parameters))


def _freight_coefficients(parameters: ParameterSet, truck_class: str) -> Coefficients:
    # E_PJ reduces to the empty km driven, so the formula is linear in loaded and empty metres.
    rate = parameters.value(EMPTY_RATE, truck_class)
    grams_per_empty_m = parameters.value(FUEL_EMPTY, truck_class) / 100 / KM * _diesel_g_per_litre(parameters)
    return Coefficients(loaded_m=rate / (1 - rate) * grams_per_empty_m, empty_m=-grams_per_empty_m)


def _check_freight(parameters: ParameterSet) -> None:
    for truck_class in TruckClass:
        rate = parameters.value(EMPTY_RATE, truck_class.value)
        _require(parameters, 0 <= rate < 1, f"{EMPTY_RATE}[{truck_class}] must be in [0, 1)")
        _require(
            parameters, parameters.value(FUEL_EMPTY, truck_class.value) >= 0, f"{FUEL_EMPTY} must be >= 0"
        )
    _require(parameters, _diesel_g_per_litre(parameters) > 0, "the diesel factor must be > 0")
    _check_caps(parameters)


# --- new-energy vehicles versus a petrol car, regional grid electricity -------------------------

PETROL_USE = "baseline_petrol_l_per_100km"
PETROL_CO2 = "petrol_co2_kg_per_kg"
PETROL_DENSITY = "petrol_density_kg_per_l"


def _nev(measures: Measures, parameters: ParameterSet, region_year: str) -> int:
    # BE = distance x FC_petrol / 100 x EF_petrol per litre; PE = kWh x EF_grid(region, year)
    petrol_g_per_l = parameters.value(PETROL_CO2) * parameters.value(PETROL_DENSITY) * 1000
    baseline_g = Fraction(measures.distance_m) / KM * parameters.value(PETROL_USE) / 100 * petrol_g_per_l
    project_g = Fraction(measures.energy_wh) / KM * parameters.value(GRID_EF, region_year) * 1000
    return _floor_positive(baseline_g - project_g)


def _nev_coefficients(parameters: ParameterSet, region_year: str) -> Coefficients:
    petrol_g_per_l = parameters.value(PETROL_CO2) * parameters.value(PETROL_DENSITY) * 1000
    return Coefficients(
        distance_m=parameters.value(PETROL_USE) / 100 / KM * petrol_g_per_l,
        energy_wh=-parameters.value(GRID_EF, region_year),  # kg per kWh = g per Wh
    )


def _check_nev(parameters: ParameterSet) -> None:
    for name in (PETROL_USE, PETROL_CO2, PETROL_DENSITY):
        _require(parameters, parameters.value(name) > 0, f"{name} must be > 0")
    _require(parameters, bool(parameters.keys(GRID_EF)), "no grid factors")
    _check_caps(parameters)


METHODOLOGIES: tuple[Methodology, ...] = (
    Methodology(
        "public_transport_shenzhen",
        "1.0.0",
        Behaviour.PUBLIC_TRANSPORT,
        RF,
        _shenzhen,
        _shenzhen_coefficients,
        _check_shenzhen,
    ),
    Methodology(
        "public_transport_city_average",
        "1.0.0",
        Behaviour.PUBLIC_TRANSPORT,
        PROJECT_EF,
        _city_average,
        _city_average_coefficients,
        _check_city_average(("metro", "electric_bus")),
    ),
    Methodology(
        "active_travel",
        "1.0.0",
        Behaviour.ACTIVE_TRAVEL,
        PROJECT_EF,
        _city_average,
        _city_average_coefficients,
        _check_city_average(("walking", "cycling")),
    ),
    Methodology(
        "freight_matching",
        "1.0.0",
        Behaviour.FREIGHT_MATCHING,
        EMPTY_RATE,
        _freight,
        _freight_coefficients,
        _check_freight,
    ),
    Methodology("nev_driving", "1.0.0", Behaviour.NEV_DRIVING, GRID_EF, _nev, _nev_coefficients, _check_nev),
)
DEFAULT_FOR: dict[Behaviour, str] = {
    Behaviour.PUBLIC_TRANSPORT: "public_transport_shenzhen@1.0.0",
    Behaviour.ACTIVE_TRAVEL: "active_travel@1.0.0",
    Behaviour.FREIGHT_MATCHING: "freight_matching@1.0.0",
    Behaviour.NEV_DRIVING: "nev_driving@1.0.0",
}


def methodology(ref: str) -> Methodology:
    """The methodology named ``id@version``."""
    for candidate in METHODOLOGIES:
        if candidate.ref == ref:
            return candidate
    known = ", ".join(m.ref for m in METHODOLOGIES)
    raise DomainError(code=ErrorCode.UNKNOWN_METHODOLOGY, message=f"no methodology {ref!r}; known: {known}")
