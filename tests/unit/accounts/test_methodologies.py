"""Each shipped methodology against grams worked out by hand from its published figures."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from neutralize.accounts.catalogue import load_book, packaged_parameters, parameter_set
from neutralize.accounts.methodologies import ASSUMPTION, PUBLISHED, Parameter
from neutralize.accounts.methodologies.formulas import METHODOLOGIES, Measures, methodology
from neutralize.accounts.records import Behaviour
from neutralize.core.errors import DomainError, ErrorCode

from .helpers import batch, record, reference


def grams(records: list[dict[str, object]], **kwargs: object) -> list[int]:
    """Reduction grams per record; the batch engine must give the same."""
    ref = [c.reduction_g for c in reference(records, **kwargs)]
    assert [c["reduction_g"] for c in batch(records, **kwargs)] == ref
    return ref


def test_shenzhen_metro_and_electric_bus_use_the_published_factors() -> None:
    # 46.7 g/pkm x 12.345 km = 576.51 g -> 576; 26.9 g/pkm x 10 km = 269 g
    trips = [
        record(distance_km=12.345),
        record(external_id="t2", mode="electric_bus", distance_km=10, start_time="2026-03-02T10:00:00+08:00",
               end_time="2026-03-02T11:00:00+08:00"),
    ]  # fmt: skip
    assert grams(trips) == [576, 269]


def test_city_average_variant_subtracts_the_mode_factor_from_the_baseline() -> None:
    book = load_book(choice={Behaviour.PUBLIC_TRANSPORT: "public_transport_city_average@1.0.0"})
    # (108 - 62) g/pkm x 10 km = 460 g; (108 - 82) x 5 km = 130 g
    trips = [
        record(distance_km=10),
        record(external_id="t2", mode="electric_bus", distance_km=5, start_time="2026-03-02T10:00:00+08:00",
               end_time="2026-03-02T11:00:00+08:00"),
    ]  # fmt: skip
    assert grams(trips, book=book) == [460, 130]


def test_walking_and_cycling_credit_the_whole_baseline() -> None:
    # 108 g/pkm x 2.5 km = 270 g walking; 108 x 7.5 km = 810 g cycling (zero project emissions)
    trips = [
        record("active_travel", distance_km=2.5),
        record("active_travel", external_id="t2", mode="cycling", distance_km=7.5,
               start_time="2026-03-02T10:00:00+08:00", end_time="2026-03-02T11:00:00+08:00"),
    ]  # fmt: skip
    assert grams(trips) == [270, 810]


def test_freight_matching_credits_the_empty_running_avoided() -> None:
    # heavy 9.6 m: r_BL 0.38, 20 L/100 km empty; 300 loaded km, 60 empty km
    # E_BL = 300 x 0.38 / 0.62 = 183.8710 km; E_PJ = 300 x (60/360) / (300/360) = 60 km
    # fuel = 123.8710 km x 0.20 L/km = 24.7742 L; x 3.1863 kg/kg x 0.84 kg/L = 66,307.3 g
    assert grams([record("freight_matching", end_time="2026-03-02T14:00:00+08:00")]) == [66_307]


def test_freight_running_emptier_than_the_baseline_earns_nothing() -> None:
    # light 4.2 m: r_BL 0.40; 100 loaded km and 100 empty km is a rate of 0.5
    trip = record("freight_matching", truck_class="light_4_2m", loaded_km=100, empty_km=100,
                  end_time="2026-03-02T14:00:00+08:00")  # fmt: skip
    assert grams([trip]) == [0]


def test_diesel_factor_is_the_ipcc_default_times_the_assumed_density() -> None:
    parameters = parameter_set("freight_matching@1.0.0")
    assert parameters.value("diesel_co2_kg_per_kg") == Fraction("3.1863")  # 74,100 kg/TJ x 43.0 TJ/Gg
    density = next(p for p in parameters.parameters if p.name == "diesel_density_kg_per_l")
    assert density.status == ASSUMPTION


def test_nev_uses_the_regional_grid_factor_of_the_footprint_engine() -> None:
    # petrol: 100 km x 6.0 L/100 km x 0.745 kg/L x 3.06999 kg/kg = 13,722.86 g
    # grid: Guangdong 2023 (MEE/NBS) 0.4419 kg/kWh x 15 kWh = 6,628.5 g -> 7,094 g
    # Sichuan 2023 0.1564 kg/kWh x 15 kWh = 2,346 g -> 11,376 g
    trips = [
        record("nev_driving", start_time="2023-07-01T08:00:00+08:00", end_time="2023-07-01T10:00:00+08:00"),
        record("nev_driving", external_id="t2", region="CN-SC", start_time="2023-07-01T11:00:00+08:00",
               end_time="2023-07-01T13:00:00+08:00"),
    ]  # fmt: skip
    assert grams(trips) == [7_094, 11_376]


def test_nev_year_without_a_factor_takes_the_nearest_and_says_so() -> None:
    parameters = parameter_set("nev_driving@1.0.0")
    row = next(p for p in parameters.parameters if p.key == "CN-GD:2026")
    assert row.value == Decimal("0.4419")
    assert "nearest year (2023)" in row.notes


def test_a_province_without_its_own_factor_falls_back_to_its_regional_grid() -> None:
    parameters = parameter_set("nev_driving@1.0.0")
    row = next(p for p in parameters.parameters if p.key == "CN-XZ:2023")
    assert "CN-GRID" in row.notes


def test_a_car_dirtier_than_petrol_earns_nothing() -> None:
    trip = record("nev_driving", region="CN-TJ", distance_km=10, kwh=100)
    assert grams([trip]) == [0]


def test_every_result_names_methodology_version_and_parameter_hash() -> None:
    credits = reference([record()])
    assert credits[0].methodology == "public_transport_shenzhen@1.0.0"
    assert credits[0].parameters_sha256 == parameter_set("public_transport_shenzhen@1.0.0").sha256


def test_overriding_a_truck_class_changes_the_grams_and_the_hash() -> None:
    measured = Parameter("baseline_empty_rate", "heavy_9_6m", Decimal("0.45"), "empty km / total km",
                         ASSUMPTION, "partner's own measurement, 2025")  # fmt: skip
    book = load_book(overrides={"freight_matching@1.0.0": [measured]})
    default = parameter_set("freight_matching@1.0.0")
    _, overridden = book.methodologies[Behaviour.FREIGHT_MATCHING]
    assert overridden.sha256 != default.sha256
    trip = record("freight_matching", end_time="2026-03-02T14:00:00+08:00")
    # E_BL = 300 x 0.45 / 0.55 = 245.4545 km; (245.4545 - 60) x 0.20 x 2676.492 = 99,273.8 g
    assert grams([trip], book=book) == [99_273]


def test_an_override_of_a_parameter_the_set_lacks_is_refused() -> None:
    stray = Parameter("baseline_empty_rate", "rocket", Decimal("0.1"), "", ASSUMPTION, "x")
    with pytest.raises(DomainError) as caught:
        load_book(overrides={"freight_matching@1.0.0": [stray]})
    assert caught.value.code == ErrorCode.METHODOLOGY_PARAMETERS_INVALID


def test_a_rate_of_one_or_more_is_refused() -> None:
    bad = Parameter("baseline_empty_rate", "heavy_9_6m", Decimal("1"), "", ASSUMPTION, "x")
    with pytest.raises(DomainError) as caught:
        load_book(overrides={"freight_matching@1.0.0": [bad]})
    assert caught.value.code == ErrorCode.METHODOLOGY_PARAMETERS_INVALID


def test_a_packaged_diesel_factor_that_differs_from_ipcc_is_refused() -> None:
    packaged = packaged_parameters()
    rows = [
        Parameter(p.name, p.key, Decimal("3.2"), p.unit, p.status, p.source)
        if p.name == "diesel_co2_kg_per_kg"
        else p
        for p in packaged["freight_matching@1.0.0"]
    ]
    with pytest.raises(DomainError) as caught:
        parameter_set("freight_matching@1.0.0", packaged={"freight_matching@1.0.0": rows})
    assert caught.value.code == ErrorCode.METHODOLOGY_PARAMETERS_INVALID


def test_a_value_too_fine_for_exact_integer_arithmetic_is_refused() -> None:
    value = Decimal("46.70000000000000001")
    fine = Parameter("reduction_factor_g_per_pkm", "metro", value, "g CO2 per passenger-km", ASSUMPTION, "x")
    with pytest.raises(DomainError) as caught:
        load_book(overrides={"public_transport_shenzhen@1.0.0": [fine]})
    assert caught.value.code == ErrorCode.METHODOLOGY_PARAMETERS_INVALID


def test_an_unknown_methodology_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        methodology("public_transport_shenzhen@9.9.9")
    assert caught.value.code == ErrorCode.UNKNOWN_METHODOLOGY


def test_assumptions_are_never_presented_as_published() -> None:
    for ref, rows in packaged_parameters().items():
        for row in rows:
            assert row.status in (PUBLISHED, ASSUMPTION), (ref, row.name)
            if row.source.startswith(("this project", "derived here")) or "not an IPCC value" in row.source:
                assert row.status == ASSUMPTION, (ref, row.name, row.key)
            if row.status == PUBLISHED:
                assert row.source_url, (ref, row.name, row.key)


def test_reference_and_coefficients_agree_for_every_key() -> None:
    book = load_book()
    samples = [Measures(distance_m=d, loaded_m=d, empty_m=e, energy_wh=w)
               for d, e, w in ((1, 0, 0), (12_345, 678, 9_999), (1_999_999, 4_999_999, 499_999))]  # fmt: skip
    for found in METHODOLOGIES:
        parameters = parameter_set(found.ref)
        for key in found.keys(parameters)[:40]:
            for sample in samples:
                assert found.reference(sample, parameters, key) == found.coefficients(parameters, key).grams(
                    sample
                )
    assert book.rules.ref == "plausibility@1.0.0"
