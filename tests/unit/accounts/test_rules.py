"""Validation and plausibility rules: every refusal keeps its code, on both crediting paths."""

from __future__ import annotations

import pytest

from neutralize.accounts.domain import overlapping

from .helpers import batch, codes, record, reference


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"partner": None}, "missing_field"),
        ({"account_ref": "a" * 65}, "out_of_range"),
        ({"account_ref": "Zhang San 138 0000 0000"}, "invalid_text"),
        ({"behaviour": "teleport"}, "unknown_value"),
        ({"mode": "rocket"}, "unknown_value"),
        ({"mode": "walking"}, "unknown_value"),  # a real mode, not one of public transport
        ({"start_time": "2026-03-02 08:00"}, "wrong_type"),
        ({"start_time": "2026-03-02T08:00:00"}, "wrong_type"),  # no offset: ambiguous
        ({"end_time": "2026-02-30T09:00:00+08:00"}, "wrong_type"),
        ({"distance_km": "ten"}, "wrong_type"),
        ({"distance_km": "nan"}, "not_finite"),
        ({"distance_km": -3}, "out_of_range"),
        ({"distance_km": 0}, "out_of_range"),
        ({"distance_km": 2_000.5}, "out_of_range"),
        ({"distance_km": None}, "missing_field"),
        ({"end_time": "2026-03-02T07:00:00+08:00"}, "conflicting_fields"),
        ({"end_time": "2026-03-12T07:00:00+08:00"}, "out_of_range"),
        ({"origin_lat": 22.5}, "missing_field"),
        ({"origin_lat": 91, "origin_lon": 0, "destination_lat": 0, "destination_lon": 0}, "out_of_range"),
        ({"colour": "green"}, "unknown_field"),
    ],
)
def test_invalid_records_are_refused_with_their_code(fields: dict[str, object], code: str) -> None:
    assert codes([record(**fields)]) == [code]


def test_freight_needs_a_known_truck_class() -> None:
    assert codes([record("freight_matching", truck_class="road_train")]) == ["unknown_value"]
    assert codes([record("freight_matching", truck_class=None)]) == ["missing_field"]


def test_nev_needs_a_region_the_grid_factors_cover() -> None:
    assert codes([record("nev_driving", region="Guangdong")]) == ["unknown_region"]
    assert codes([record("nev_driving", region="CN-QQ")]) == ["unknown_region"]


def test_a_line_that_is_not_an_object_is_malformed_and_the_others_count() -> None:
    assert codes([[1, 2], record()]) == ["malformed_row", None]


def test_the_same_external_id_twice_is_credited_once() -> None:
    assert codes([record(), record(distance_km=20)]) == [None, "duplicate_record"]


def test_the_same_external_id_from_another_partner_is_another_record() -> None:
    other = record(
        partner="bus-app", start_time="2026-03-02T10:00:00+08:00", end_time="2026-03-02T11:00:00+08:00"
    )
    assert codes([record(), other]) == [None, None]


def test_a_1970_date_is_before_the_epoch_of_the_scheme() -> None:
    trip = record(start_time="1970-01-01T08:00:00+08:00", end_time="1970-01-01T09:00:00+08:00")
    assert codes([trip]) == ["time_before_epoch"]


def test_a_trip_next_year_is_in_the_future() -> None:
    trip = record(start_time="2027-03-02T08:00:00+08:00", end_time="2027-03-02T09:00:00+08:00")
    assert codes([trip]) == ["time_in_future"]


@pytest.mark.parametrize(
    ("behaviour", "fields"),
    [
        ("public_transport", {"distance_km": 130}),  # 130 km/h on a metro
        ("active_travel", {"distance_km": 16}),  # 16 km/h walking
        ("active_travel", {"mode": "cycling", "distance_km": 46}),
        ("freight_matching", {"loaded_km": 90, "empty_km": 11}),  # 101 km/h
        ("nev_driving", {"distance_km": 131}),
        ("public_transport", {"end_time": "2026-03-02T08:00:00+08:00"}),  # 10 km in no time
    ],
)
def test_faster_than_the_mode_allows_is_implausible(behaviour: str, fields: dict[str, object]) -> None:
    assert codes([record(behaviour, **fields)]) == ["speed_implausible"]


def test_exactly_at_the_speed_limit_is_plausible() -> None:
    assert codes([record(distance_km=60, end_time="2026-03-02T08:30:00+08:00")]) == [None]  # 120 km/h


def test_stated_distance_must_fit_the_stated_route() -> None:
    # Shenzhen: Futian (22.5431, 114.0579) to Luohu (22.5484, 114.1315): about 7.58 km straight
    route = {
        "origin_lat": 22.5431,
        "origin_lon": 114.0579,
        "destination_lat": 22.5484,
        "destination_lon": 114.1315,
    }
    assert codes([record(distance_km=9.1, **route)]) == [None]
    assert codes([record(distance_km=6.0, **route)]) == [
        "route_distance_implausible"
    ]  # shorter than the line
    assert codes([record(distance_km=30, **route)]) == ["route_distance_implausible"]  # over 3x + 2 km


def test_linked_partners_reporting_the_same_ride_credit_it_once() -> None:
    first = record(person="p-42")
    second = record(partner="wallet-app", account_ref="w-9", external_id="w-1", person="p-42",
                    start_time="2026-03-02T08:30:00+08:00", end_time="2026-03-02T09:30:00+08:00")  # fmt: skip
    assert codes([second, first]) == ["overlapping_behaviour", None]


def test_back_to_back_rides_do_not_overlap() -> None:
    later = record(
        external_id="trip-2", start_time="2026-03-02T09:00:00+08:00", end_time="2026-03-02T10:00:00+08:00"
    )
    assert codes([record(), later]) == [None, None]


def test_overlap_is_a_pure_function_over_spans_with_a_person_key() -> None:
    spans = [
        ("p", "public_transport", 0, 100, 1),
        ("p", "public_transport", 50, 150, 2),  # overlaps the first
        ("p", "public_transport", 120, 200, 3),  # overlaps the second, though it is refused
        ("p", "active_travel", 50, 60, 4),  # another behaviour
        ("q", "public_transport", 50, 60, 5),  # another person
        ("q", "public_transport", 50, 60, 6),  # the same span again: the later row is refused
    ]
    assert overlapping(spans) == {2, 3, 6}


def test_walking_is_capped_per_day_at_the_published_ant_forest_cap() -> None:
    # 108 g/pkm x 2 km = 216 g a walk; the cap is 296 g per day (China Standard Time)
    walks = [
        record("active_travel", external_id=f"w{i}", start_time=f"2026-03-02T{8 + i:02d}:00:00+08:00",
               end_time=f"2026-03-02T{8 + i:02d}:30:00+08:00")
        for i in range(3)
    ]  # fmt: skip
    next_day = record("active_travel", external_id="w9", start_time="2026-03-03T00:10:00+08:00",
                      end_time="2026-03-03T00:40:00+08:00")  # fmt: skip
    credits = reference([*walks, next_day])
    assert [(c.reduction_g, c.credited_g) for c in credits] == [(216, 216), (216, 80), (216, 0), (216, 216)]
    assert codes([*walks, next_day]) == [None, "daily_cap_reached", "daily_cap_reached", None]
    assert [c["credited_g"] for c in batch([*walks, next_day])] == [216, 80, 0, 216]


def test_walking_and_cycling_have_their_own_caps() -> None:
    walk = record("active_travel", distance_km=3)  # 324 g, capped at 296
    ride = record("active_travel", external_id="r", mode="cycling", distance_km=5,
                  start_time="2026-03-02T10:00:00+08:00", end_time="2026-03-02T11:00:00+08:00")  # fmt: skip
    assert [c.credited_g for c in reference([walk, ride])] == [296, 540]
