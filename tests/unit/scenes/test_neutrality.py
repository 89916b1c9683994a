"""Event neutrality rules: the registration list, everyone counted once, extrapolation and bounds,
which credits may offset an event, the deadline and its reminders, and the steps."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.scenes import neutrality as rules
from neutralize.scenes.neutrality import Basis, CreditOrigin, Instrument, SelfReport

D = Decimal
HEADER = "reference,origin,distance_km,mode,nights,hotel_country\n"


def test_a_registration_list_reads_flights_ground_trips_and_non_respondents() -> None:
    rows = rules.parse_registrations(HEADER + "A1,pek,,,2,\nA2,Chongqing,300,rail,1,CN\nA3,,,,0,\n")
    assert [(r.row, r.reference, r.origin, r.mode, r.nights) for r in rows] == [
        (2, "A1", "PEK", "flight", 2),
        (3, "A2", "CHONGQING", "rail", 1),
        (4, "A3", None, "flight", 0),
    ]
    flight = rules.registration_activities(rows[0], destination_airport="TFU", country="CN")
    assert flight == [
        {
            "type": "flight",
            "origin": "PEK",
            "destination": "TFU",
            "round_trip": True,
            "cabin": "economy",
            "ref": "A1",
        },
        {"type": "hotel", "country": "CN", "nights": 2, "ref": "A1"},
    ]
    rail = rules.registration_activities(rows[1], destination_airport="TFU", country="CN")
    assert rail[0] == {"type": "rail", "mode": "national_rail", "distance_km": "600", "ref": "A2"}
    assert rules.registration_activities(rows[2], destination_airport="TFU", country="CN") == []


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_kept() -> None:
    text = (
        HEADER + "A1,PEK,,,2,\nA1,PVG,,,1,\n,CAN,,,1,\nA4,Leshan,,rail,1,\nA5,XIY,,,many,\nA6,KMG,,boat,1,\n"
    )
    with pytest.raises(DomainError) as refused:
        rules.parse_registrations(text)
    found = [(p.row, p.code, p.field) for p in refused.value.problems]
    assert found == [
        (3, ErrorCode.DUPLICATE, "reference"),
        (4, ErrorCode.MISSING_FIELD, "reference"),
        (5, ErrorCode.OUT_OF_RANGE, "distance_km"),
        (6, ErrorCode.OUT_OF_RANGE, "nights"),
        (7, ErrorCode.UNKNOWN_VALUE, "mode"),
    ]
    with pytest.raises(DomainError) as no_columns:
        rules.parse_registrations("name,city\nA,B\n")
    assert no_columns.value.code is ErrorCode.MISSING_FIELD


def test_flights_need_the_events_airport() -> None:
    row = rules.parse_registrations(HEADER + "A1,PEK,,,1,\n")[0]
    with pytest.raises(DomainError) as refused:
        rules.registration_activities(row, destination_airport=None, country="CN")
    assert refused.value.code is ErrorCode.MISSING_FIELD


def test_a_self_report_replaces_its_registration_and_nobody_counts_twice() -> None:
    registrations = {"A1": D(500), "A2": D(300), "A3": None, "A4": None}
    reports = [
        SelfReport("par1", "A1", D(420)),
        SelfReport("par2", "A1", D(410)),  # the same guest again: the latest counts
        SelfReport("par3", "A3", D(100)),  # a non-respondent who reported after all
        SelfReport("par4", None, D(50)),  # a guest not on the list
    ]
    attendance = rules.count_attendees(registrations, reports)
    by_ref = {c.reference: (c.basis, c.kg) for c in attendance.counted}
    assert by_ref == {
        "A1": (Basis.SELF_REPORTED, D(410)),
        "A3": (Basis.SELF_REPORTED, D(100)),
        "par4": (Basis.SELF_REPORTED, D(50)),
        "A2": (Basis.REGISTRATION, D(300)),
    }
    assert attendance.non_respondents == 1  # A4 only
    assert attendance.measured_kg == D(860)


def test_non_respondents_are_the_mean_respondent_within_its_confidence_interval() -> None:
    result = rules.extrapolate([D(100), D(200), D(300)], 10)
    assert result is not None
    assert result.mean_kg == D(200) and result.central_kg == D(2000)
    # s = 100, half-width 1.96 × 100 / √3 = 113.16…
    assert D("3131") < result.high_kg < D("3132") and D("868") < result.low_kg < D("869")
    assert rules.extrapolate([D(100)], 3) is None  # one respondent draws no interval
    none_missing = rules.extrapolate([D(100)], 0)
    assert none_missing is not None and none_missing.high_kg == 0
    floor = rules.extrapolate([D(0), D(1000)], 1)
    assert floor is not None and floor.low_kg == 0  # never below zero


def test_bounds_add_extrapolation_and_the_published_uncertainty() -> None:
    attendance = rules.count_attendees({"A1": D(500), "A2": D(301), "A3": None}, [])
    extrapolation = rules.extrapolate(attendance.respondent_kg, attendance.non_respondents)
    assert extrapolation is not None
    items = [rules.ItemFigures(D(100), D(100), D(100)), rules.ItemFigures(D(60), D(55), D(70))]
    limits = rules.bounds(attendance, extrapolation, items)
    assert limits.central_kg == D(801) + D(160) + D("400.5")
    assert limits.low_kg == D(801) + D(155) + extrapolation.low_kg
    assert limits.high_kg == D(801) + D(160) + extrapolation.high_kg + D(10)
    assert limits.low_kg <= limits.central_kg <= limits.high_kg
    assert limits.upper_whole_kg == int(limits.high_kg) + 1  # rounded up


def origin(**change: object) -> CreditOrigin:
    fields: dict[str, object] = {
        "standard": "CCER",
        "project_type": "onshore wind",
        "credit_type": "avoidance",
        "nature_based": False,
        "country": "CN",
        "carbon_inclusive": False,
    }
    return CreditOrigin(**{**fields, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "instrument"),
    [
        ({}, Instrument.CCER),
        (
            {"project_type": "afforestation", "credit_type": "removal", "nature_based": True},
            Instrument.NEW_FORESTRY,
        ),
        ({"standard": "CDCER", "carbon_inclusive": True}, Instrument.CARBON_INCLUSIVE),
        ({"standard": "CDM"}, Instrument.CHINESE_CDM),
        (
            {"standard": "FFCER", "project_type": "林业碳汇", "credit_type": "removal", "nature_based": True},
            Instrument.NEW_FORESTRY,
        ),
    ],
)
def test_eligible_instruments(change: dict[str, object], instrument: Instrument) -> None:
    assert rules.instrument_of(origin(**change)) is instrument


@pytest.mark.parametrize(
    "change",
    [
        {"standard": "VCS"},
        {"standard": "GS"},
        {"standard": "CDM", "country": "IN"},
        {"standard": "VCS", "carbon_inclusive": True, "country": "DE"},
        {
            "standard": "VCS",
            "project_type": "afforestation",
            "credit_type": "removal",
            "nature_based": True,
            "country": "BR",
        },
    ],
)
def test_other_credits_are_not_eligible(change: dict[str, object]) -> None:
    with pytest.raises(DomainError) as refused:
        rules.instrument_of(origin(**change))
    assert refused.value.code is ErrorCode.INSTRUMENT_NOT_ELIGIBLE


def test_credits_from_the_events_own_boundary_are_refused() -> None:
    bundled = origin(standard="CDCER", carbon_inclusive=True, source_scenes=frozenset({"tianfu-forum-2026"}))
    with pytest.raises(DomainError) as refused:
        rules.check_offset_credit(bundled, ("scn_1", "tianfu-forum-2026"))
    assert refused.value.code is ErrorCode.OWN_BOUNDARY_CREDIT
    # the same credits may offset another event, and credits declaring no boundary any event
    assert rules.check_offset_credit(bundled, ("scn_2", "other-forum")) is Instrument.CARBON_INCLUSIVE
    rules.check_outside_boundary(origin(), ("scn_1", "tianfu-forum-2026"))


def test_the_deadline_is_months_after_the_last_day_or_the_months_last_day() -> None:
    assert rules.offset_deadline(date(2026, 11, 20), 12) == date(2027, 11, 20)
    assert rules.offset_deadline(date(2027, 3, 31), 1) == date(2027, 4, 30)
    assert rules.offset_deadline(date(2027, 12, 31), 2) == date(2028, 2, 29)


def test_reminders_90_30_and_7_days_before_each_once() -> None:
    deadline = date(2027, 11, 20)
    assert rules.due_reminder(deadline, date(2027, 8, 21), []) is None  # 91 days before
    assert rules.due_reminder(deadline, date(2027, 8, 22), []) == 90
    assert rules.due_reminder(deadline, date(2027, 8, 23), [90]) is None
    assert rules.due_reminder(deadline, date(2027, 10, 21), [90]) == 30
    assert rules.due_reminder(deadline, date(2027, 11, 13), [90, 30]) == 7
    assert rules.due_reminder(deadline, date(2027, 11, 20), [90, 30, 7]) is None
    # a process that was down sends the nearest one only, and never a farther one afterwards
    assert rules.due_reminder(deadline, date(2027, 11, 14), []) == 7
    assert rules.due_reminder(deadline, date(2027, 11, 15), [7]) is None
    assert rules.due_reminder(deadline, date(2027, 11, 21), []) is None  # past the deadline


def test_the_offset_step_needs_the_whole_upper_bound_and_a_complete_account() -> None:
    def offset(kg: int, required: int, ready: bool = True) -> bool:
        status = rules.steps(
            planned=True,
            measures=1,
            account_ready=ready,
            account_note="",
            offset_kg=kg,
            required_kg=required,
            evaluated=True,
        )
        return next(s.complete for s in status if s.step is rules.Step.OFFSET)

    assert offset(1_000, 1_000) and offset(1_001, 1_000)
    assert not offset(999, 1_000) and not offset(1_000, 1_000, ready=False) and not offset(0, 0)


def test_eu_member_states_follow_the_eu_rules() -> None:
    assert rules.jurisdiction_of("DE") == "EU" and rules.jurisdiction_of("NL") == "EU"
    assert rules.jurisdiction_of("CN") == "CN" and rules.jurisdiction_of("US") == "US"
