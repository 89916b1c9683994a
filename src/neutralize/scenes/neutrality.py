"""Event carbon neutrality without I/O: the steps of the MEE large-event guidelines (plan, reduce,
account, offset, report and evaluate), the registration list, who is counted once, extrapolation,
the footprint's bounds, which credits may offset an event, and the offset deadline's reminders.

The rules and their basis are described in docs/scenes.md ("Event carbon neutrality").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any

from neutralize.core.errors import DomainError, ErrorCode, Problem

MAX_REGISTRATIONS = 5_000
MAX_NIGHTS = 60
MAX_DISTANCE_KM = Decimal(40_000)
REGISTRATION_COLUMNS = ("reference", "origin", "distance_km", "mode", "nights", "hotel_country")
GROUND_MODES = {"rail": {"type": "rail", "mode": "national_rail"}, "car": {"type": "car"},
                "bus": {"type": "bus", "mode": "coach"}}  # fmt: skip
REMINDER_DAYS = (90, 30, 7)  # reminders before the offset deadline, each sent once
Z95 = Decimal("1.96")  # the normal distribution's two-sided 95 % quantile
_IATA = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REFERENCE = re.compile(r"^[\w.\-/]{1,60}$")
# Member states of the EU: neutrality wording follows the EU's rules there (claims.json "EU").
EU_MEMBERS = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)


class Step(StrEnum):
    PLAN = "plan"
    REDUCE = "reduce"
    ACCOUNT = "account"
    OFFSET = "offset"
    EVALUATE = "evaluate"  # report and evaluate


class Instrument(StrEnum):
    """What may offset an event under the MEE guidelines (and nothing else)."""

    CCER = "ccer"
    CARBON_INCLUSIVE = "carbon_inclusive"
    NEW_FORESTRY = "new_forestry"
    CHINESE_CDM = "chinese_cdm"
    ALLOWANCE = "allowance"  # cancelled elsewhere, recorded here as evidence


class EvaluationKind(StrEnum):
    SELF_DECLARED = "self_declared"
    THIRD_PARTY = "third_party"


# --- the registration list -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """One row of the organiser's registration list. Without an origin the attendee is a
    non-respondent: their travel and stay are extrapolated."""

    row: int  # the CSV's line number (the header is line 1)
    reference: str
    origin: str | None
    distance_km: Decimal | None
    mode: str  # flight, rail, car, bus
    nights: int
    hotel_country: str | None


def parse_registrations(text: str) -> list[Registration]:
    """The registration list from CSV text (columns: reference, origin, distance_km, mode, nights,
    hotel_country); every bad row is reported with its line number, and nothing is kept if any is bad."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in ("reference", "origin", "nights") if c not in (reader.fieldnames or [])]
    if missing:
        raise DomainError(
            code=ErrorCode.MISSING_FIELD,
            message=f"the registration list needs the columns {', '.join(REGISTRATION_COLUMNS)}; "
            f"missing: {', '.join(missing)}",
        )
    rows: list[Registration] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, raw in enumerate(reader, start=2):
        if len(rows) + len(problems) >= MAX_REGISTRATIONS:
            raise DomainError(
                code=ErrorCode.TOO_MANY_ACTIVITIES,
                message=f"a registration list has at most {MAX_REGISTRATIONS:,} rows",
            )
        try:
            row = _registration(number, {k: (v or "").strip() for k, v in raw.items() if k})
        except DomainError as bad:
            problems.append(
                Problem(code=bad.code, message=bad.message, field=bad.problems[0].field, row=number)
            )
            continue
        if row.reference in seen:
            problems.append(
                Problem(
                    ErrorCode.DUPLICATE, f"reference {row.reference!r} appears twice", "reference", row=number
                )
            )
            continue
        seen.add(row.reference)
        rows.append(row)
    if problems:
        raise DomainError(
            code=problems[0].code,
            message=f"{len(problems)} rows of the registration list need fixing; nothing was imported",
            problems=problems,
        )
    if not rows:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="the registration list has no rows")
    return rows


def _bad(code: ErrorCode, message: str, column: str) -> DomainError:
    return DomainError(code=code, message=message, problems=[Problem(code, message, column)])


def _registration(number: int, raw: Mapping[str, str]) -> Registration:
    reference = raw.get("reference", "")
    if not _REFERENCE.match(reference):
        raise _bad(ErrorCode.MISSING_FIELD, "a reference of 1-60 letters, digits and . - / _", "reference")
    origin = raw.get("origin", "").upper() or None
    mode = raw.get("mode", "").lower() or ("flight" if origin and _IATA.match(origin) else "")
    distance = _decimal(raw.get("distance_km", ""), "distance_km")
    if origin is not None:
        if mode == "flight" and not _IATA.match(origin):
            raise _bad(ErrorCode.UNKNOWN_AIRPORT, "a flight's origin is a three-letter IATA code", "origin")
        if mode not in ("flight", *GROUND_MODES):
            raise _bad(ErrorCode.UNKNOWN_VALUE, "mode is flight, rail, car or bus", "mode")
        if mode != "flight" and (distance is None or not 0 < distance <= MAX_DISTANCE_KM):
            raise _bad(
                ErrorCode.OUT_OF_RANGE, "by rail, car or bus give distance_km (one way, > 0)", "distance_km"
            )
    nights_text = raw.get("nights", "") or "0"
    if not nights_text.isdigit() or int(nights_text) > MAX_NIGHTS:
        raise _bad(ErrorCode.OUT_OF_RANGE, f"nights is a whole number from 0 to {MAX_NIGHTS}", "nights")
    country = raw.get("hotel_country", "").upper() or None
    if country is not None and not _COUNTRY.match(country):
        raise _bad(ErrorCode.UNKNOWN_VALUE, "hotel_country is a two-letter country code", "hotel_country")
    return Registration(number, reference, origin, distance, mode or "flight", int(nights_text), country)


def _decimal(text: str, column: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise _bad(ErrorCode.WRONG_TYPE, f"{column} is a number", column) from None
    if not value.is_finite():
        raise _bad(ErrorCode.NOT_FINITE, f"{column} is a finite number", column)
    return value


def registration_activities(
    row: Registration, *, destination_airport: str | None, country: str
) -> list[dict[str, Any]]:
    """The activities a registration stands for: the trip there and back, and the hotel nights
    (in the hotel's country, else the event's). A non-respondent has none."""
    if row.origin is None:
        return []
    activities: list[dict[str, Any]] = []
    if row.mode == "flight":
        if destination_airport is None:
            raise _bad(
                ErrorCode.MISSING_FIELD, "the plan names no airport for the event: flights need one", "origin"
            )
        activities.append({"type": "flight", "origin": row.origin, "destination": destination_airport,
                           "round_trip": True, "cabin": "economy", "ref": row.reference})  # fmt: skip
    else:
        assert row.distance_km is not None
        trip = {**GROUND_MODES[row.mode], "distance_km": str(row.distance_km * 2)}
        activities.append({**trip, "ref": row.reference})
    if row.nights:
        stay = {"type": "hotel", "country": row.hotel_country or country, "nights": row.nights}
        activities.append({**stay, "ref": row.reference})
    return activities


# --- who is counted, and how ---------------------------------------------------------------------


class Basis(StrEnum):
    SELF_REPORTED = "self_reported"  # the guest's own QR calculator answers
    REGISTRATION = "registration"  # estimated from the registration list
    EXTRAPOLATED = "extrapolated"  # a non-respondent, from the respondents' mean


@dataclass(frozen=True, slots=True)
class SelfReport:
    """A guest's travel and stay from the QR calculator (meals are the caterer's: see items)."""

    participation_id: str
    reference: str | None  # the registration reference the guest gave, if any
    kg: Decimal


@dataclass(frozen=True, slots=True)
class Counted:
    reference: str  # the registration reference, or the participation for a guest without one
    basis: Basis
    kg: Decimal


@dataclass(frozen=True, slots=True)
class Attendance:
    counted: list[Counted]  # everyone with figures of their own, once each
    non_respondents: int

    @property
    def respondent_kg(self) -> list[Decimal]:
        return [c.kg for c in self.counted]

    @property
    def measured_kg(self) -> Decimal:
        return sum((c.kg for c in self.counted), Decimal(0))


def count_attendees(registrations: Mapping[str, Decimal | None], reports: Sequence[SelfReport]) -> Attendance:
    """Everyone once. ``registrations`` maps each reference to its estimate (None: no origin given).
    A self-report that names a registration replaces that registration's estimate (the latest report
    of a reference counts; earlier ones were the same guest again); a self-report without a known
    reference is a guest not on the list. The rest without an estimate are non-respondents."""
    latest: dict[str, SelfReport] = {}
    for report in reports:  # oldest first: the latest wins
        latest[report.reference or report.participation_id] = report
    counted = [Counted(key, Basis.SELF_REPORTED, r.kg) for key, r in latest.items()]
    non_respondents = 0
    for reference, estimate in registrations.items():
        if reference in latest:
            continue
        if estimate is None:
            non_respondents += 1
        else:
            counted.append(Counted(reference, Basis.REGISTRATION, estimate))
    return Attendance(counted=counted, non_respondents=non_respondents)


@dataclass(frozen=True, slots=True)
class Extrapolation:
    """Non-respondents × the respondents' mean, with the 95 % confidence interval of that mean."""

    non_respondents: int
    respondents: int
    mean_kg: Decimal
    low_kg: Decimal
    central_kg: Decimal
    high_kg: Decimal


def extrapolate(respondent_kg: Sequence[Decimal], non_respondents: int) -> Extrapolation | None:
    """Each non-respondent counts as the mean respondent; the bounds are the mean's 95 % confidence
    interval (mean ± 1.96 × s / √k, not below zero) times the non-respondents. None when there are
    non-respondents but fewer than two respondents: no interval can be drawn, and the account is not
    complete until more attendees report."""
    k = len(respondent_kg)
    if non_respondents == 0:
        zero = Decimal(0)
        mean = sum(respondent_kg, zero) / k if k else zero
        return Extrapolation(0, k, mean, zero, zero, zero)
    if k < 2:
        return None
    mean = sum(respondent_kg, Decimal(0)) / k
    variance = sum(((x - mean) ** 2 for x in respondent_kg), Decimal(0)) / (k - 1)
    half = Z95 * variance.sqrt() / Decimal(k).sqrt()
    n = Decimal(non_respondents)
    return Extrapolation(
        non_respondents, k, mean, max(mean - half, Decimal(0)) * n, mean * n, (mean + half) * n
    )


# --- bounds ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemFigures:
    """An organiser-entered item's emissions, with the factor's published interval where it has one."""

    kg: Decimal
    low_kg: Decimal
    high_kg: Decimal


@dataclass(frozen=True, slots=True)
class Bounds:
    low_kg: Decimal
    central_kg: Decimal
    high_kg: Decimal

    @property
    def upper_whole_kg(self) -> int:
        """What must be offset: the upper bound, rounded up to the whole kilogram."""
        return int(self.high_kg.to_integral_value(rounding=ROUND_CEILING))


def bounds(attendance: Attendance, extrapolation: Extrapolation, items: Iterable[ItemFigures]) -> Bounds:
    """lower = measured (each item at its factor's lower limit where one is published) + the
    extrapolation's lower limit; upper = measured + the extrapolation's upper limit + the uncertainty
    margin (each item's published upper limit above its central value)."""
    items = list(items)
    measured = attendance.measured_kg + sum((i.kg for i in items), Decimal(0))
    low = attendance.measured_kg + sum((i.low_kg for i in items), Decimal(0)) + extrapolation.low_kg
    margin = sum((i.high_kg - i.kg for i in items), Decimal(0))
    return Bounds(low, measured + extrapolation.central_kg, measured + extrapolation.high_kg + margin)


# --- offsets: which credits, and the deadline ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditOrigin:
    """What a credit's project (or, for bundled carbon-account credits, its issuance) declares."""

    standard: str
    project_type: str
    credit_type: str | None  # None: a mirrored project's home registry does not say
    nature_based: bool | None
    country: str
    carbon_inclusive: bool
    source_scenes: frozenset[str] = field(default_factory=frozenset)  # boundaries its reductions came from


_FORESTRY = re.compile(r"forest|afforest|reforest|林", re.IGNORECASE)


def instrument_of(origin: CreditOrigin) -> Instrument:
    """The eligible instrument a credit is (CCER, approved carbon-inclusive credits, new-forestry
    sinks, CERs of Chinese CDM projects), or ``instrument_not_eligible``."""
    domestic = origin.country == "CN"
    forestry = (
        origin.credit_type == "removal"
        and origin.nature_based
        and bool(_FORESTRY.search(origin.project_type))
    )
    if origin.standard.upper() == "CCER":
        return Instrument.NEW_FORESTRY if forestry else Instrument.CCER
    if origin.carbon_inclusive and domestic:
        return Instrument.CARBON_INCLUSIVE
    if origin.standard.upper() == "CDM" and domestic:
        return Instrument.CHINESE_CDM
    if forestry and domestic:
        return Instrument.NEW_FORESTRY
    raise DomainError(
        code=ErrorCode.INSTRUMENT_NOT_ELIGIBLE,
        message=f"{origin.standard} credits ({origin.project_type}, {origin.country}) may not offset "
        "an event: use CCER, approved carbon-inclusive credits, new-forestry sinks or CERs of "
        "Chinese CDM projects",
    )


def check_outside_boundary(origin: CreditOrigin, event: Iterable[str]) -> None:
    """Refuse credits made from reductions inside the event's own boundary (its attendees' low-carbon
    travel to it): they are already in the event's lower footprint, so they would count twice.
    ``event`` holds the names the event is known by (its id and short name)."""
    inside = origin.source_scenes & set(event)
    if inside:
        raise DomainError(
            code=ErrorCode.OWN_BOUNDARY_CREDIT,
            message="these credits come from reductions inside this event's own boundary "
            f"({', '.join(sorted(inside))}) and cannot offset it",
        )


def check_offset_credit(origin: CreditOrigin, event: Iterable[str]) -> Instrument:
    """Both rules: an eligible instrument, from outside the event's boundary."""
    instrument = instrument_of(origin)
    check_outside_boundary(origin, event)
    return instrument


def offset_deadline(ends_on: date, months: int) -> date:
    """The day the offset is due: ``months`` after the event's last day (the month's last day when
    that day does not exist, e.g. 31 March + 1 month → 30 April)."""
    month0 = ends_on.month - 1 + months
    year, month = ends_on.year + month0 // 12, month0 % 12 + 1
    following = date(year + month // 12, month % 12 + 1, 1)
    return min(date(year, month, 1) + timedelta(days=ends_on.day - 1), following - timedelta(days=1))


def due_reminder(
    deadline: date, today: date, sent: Iterable[int], schedule: Sequence[int] = REMINDER_DAYS
) -> int | None:
    """The reminder to send today, if any: the nearest threshold (days before the deadline) that has
    been reached and not yet sent. Once a nearer one is sent, farther ones missed meanwhile are not
    sent late. None after the deadline."""
    left = (deadline - today).days
    if left < 0:
        return None
    done = set(sent)
    reached = [d for d in schedule if left <= d]
    if not reached:
        return None
    nearest = min(reached)
    if nearest in done or any(d in done for d in reached if d < nearest):
        return None
    return nearest


# --- the steps and the claim ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepStatus:
    step: Step
    complete: bool
    note: str  # what is done, or what is missing


def steps(
    *,
    planned: bool,
    measures: int,
    account_ready: bool,
    account_note: str,
    offset_kg: int,
    required_kg: int,
    evaluated: bool,
) -> list[StepStatus]:
    """Where the event stands on each step; the offset is complete at 100 % of the upper bound."""
    return [
        StepStatus(Step.PLAN, planned, "plan recorded" if planned else "no plan yet"),
        StepStatus(Step.REDUCE, measures > 0, f"measures with evidence: {measures}"),
        StepStatus(Step.ACCOUNT, account_ready, account_note),
        StepStatus(
            Step.OFFSET,
            account_ready and required_kg > 0 and offset_kg >= required_kg,
            f"{offset_kg:,} of {required_kg:,} kg",
        ),
        StepStatus(Step.EVALUATE, evaluated, "evaluated" if evaluated else "not evaluated yet"),
    ]


def jurisdiction_of(country: str) -> str:
    """The claims policy's jurisdiction for a country: CN, EU (any member state), or the country."""
    return "EU" if country in EU_MEMBERS else country
