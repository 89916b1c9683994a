"""Every value of every vocabulary key resolves to a real factor in both DESNZ editions
(or, where DESNZ has none, to the documented non-DESNZ source)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from neutralize.footprint import service
from neutralize.footprint.factors import default_catalogue
from neutralize.footprint.vocabulary import ACTIVITIES, choices_for

DESNZ = ("DESNZ-2024", "DESNZ-2025")


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[dict[str, Any]] = []
    for cabin in choices_for("flight", "cabin"):
        for rf in (True, False):
            for a, b in (("LHR", "MAN"), ("LHR", "CDG"), ("LHR", "JFK"), ("PEK", "CTU")):
                cases.append(
                    {"type": "flight", "origin": a, "destination": b, "cabin": cabin, "radiative_forcing": rf}
                )
    for fuel, size in itertools.product(choices_for("car", "fuel"), choices_for("car", "size")):
        cases.append({"type": "car", "fuel": fuel, "size": size, "distance_km": 10})
    for size in choices_for("motorbike", "size"):
        cases.append({"type": "motorbike", "size": size, "distance_km": 10})
    cases += [
        {"type": "taxi", "basis": "vehicle", "distance_km": 5},
        {"type": "taxi", "basis": "passenger", "passengers": 2, "distance_km": 5},
    ]
    for kind in ("bus", "rail", "ferry"):
        cases += [{"type": kind, "mode": mode, "distance_km": 10} for mode in choices_for(kind, "mode")]
    for vehicle, load in itertools.product(choices_for("freight", "vehicle"), choices_for("freight", "load")):
        tonnes = {} if load == "empty" else {"tonnes": 5}
        cases.append({"type": "freight", "vehicle": vehicle, "load": load, "distance_km": 100, **tonnes})
    units = {
        "diesel": ("litres", "kg", "kwh"),
        "petrol": ("litres", "kg", "kwh"),
        "lpg": ("litres", "kg", "kwh"),
        "natural_gas": ("m3", "kg", "kwh"),
        "coal": ("kg", "kwh"),
    }
    for fuel in choices_for("fuel", "fuel"):
        for unit, blend in itertools.product(units[fuel], choices_for("fuel", "blend")):
            cases.append({"type": "fuel", "fuel": fuel, unit: 10, "blend": blend})
    cases.append({"type": "hotel", "country": "DE", "nights": 1})
    cases.append({"type": "electricity", "region": "GB", "kwh": 1})
    return [
        (f"{edition}-{i}", {**case, "factor_set": edition})
        for edition in DESNZ
        for i, case in enumerate(cases)
    ]


@pytest.mark.parametrize(("name", "activity"), _cases())
def test_every_desnz_vocabulary_value_resolves_to_a_published_row(
    name: str, activity: dict[str, Any]
) -> None:
    # given one value of one key, under one DESNZ edition; when computed
    [line] = service.calculate(activities=[activity]).lines
    # then it names a row that exists in that edition's catalogue
    factor = default_catalogue().get(activity["factor_set"], line.factor.id)
    assert factor.edition == activity["factor_set"].replace("-", " ")
    assert line.kg_co2e >= 0


def test_types_without_desnz_rows_resolve_to_their_documented_source() -> None:
    for diet in choices_for("meal", "diet"):
        [line] = service.calculate(activities=[{"type": "meal", "diet": diet, "count": 1}]).lines
        assert line.factor.factor_set == "SCARBOROUGH-2014"
        assert line.factor.id == f"diet:{diet}"
    for region in ("CN", "CN-BJ", "CN-SC", "CN-XZ"):
        [line] = service.calculate(activities=[{"type": "electricity", "region": region, "kwh": 1}]).lines
        assert line.factor.factor_set == "MEE-NBS"


def test_the_table_covers_every_activity_type() -> None:
    covered = {activity["type"] for _, activity in _cases()} | {"meal"}
    assert covered == set(ACTIVITIES)
