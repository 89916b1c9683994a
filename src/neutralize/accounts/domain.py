"""Crediting, one record at a time: the reference the column-wise engine must match to the gram.

The steps, in order, each keeping the reason a record is not (fully) credited:

1. validation (``records.parse_record``): the row's first problem;
2. duplicates: the same (partner, external id) again — the first row wins (``duplicate_record``);
3. plausibility: start before the sane epoch (``time_before_epoch``), end after ``now``
   (``time_in_future``), faster than the mode allows (``speed_implausible``), stated distance
   incompatible with the stated route (``route_distance_implausible``);
4. methodology: the mode, truck class or region must be one the methodology covers
   (``unknown_value`` / ``unknown_region``); the reduction in whole grams, rounded down;
5. overlap: the same behaviour by the same person at overlapping times — from two linked partners,
   or twice from one — is credited once (``overlapping_behaviour``, see ``overlapping``); records
   with the same start and end are taken in row order;
6. daily caps per person, behaviour cap key and day in China Standard Time: a record past the cap
   is credited what is left (``daily_cap_reached``, possibly 0 g).

Pure: ``now`` is given, never read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from neutralize.accounts.methodologies import ParameterSet
from neutralize.accounts.methodologies.formulas import Measures, Methodology, daily_cap
from neutralize.accounts.records import Behaviour, Record
from neutralize.core.errors import ErrorCode, Problem

CHINA_OFFSET_S = 8 * 3600  # daily caps and grid years follow the calendar in UTC+8
DAY_S = 86_400
EARTH_RADIUS_KM = 6371.0
RULES_REF = "plausibility@1.0.0"


@dataclass(frozen=True)
class Book:
    """The methodology (and its parameters) that credits each behaviour, and the rule parameters."""

    methodologies: Mapping[Behaviour, tuple[Methodology, ParameterSet]]
    rules: ParameterSet


@dataclass(frozen=True, slots=True)
class Credit:
    """What became of one row: its reduction, what was credited, and why not more."""

    row: int
    code: ErrorCode | None
    partner: str | None = None
    account_ref: str | None = None
    external_id: str | None = None
    methodology: str | None = None
    parameters_sha256: str | None = None
    reduction_g: int = 0
    credited_g: int = 0


@dataclass(frozen=True)
class Outcome:
    """Every row's credit (in row order) and the grams credited per (partner, account reference)."""

    credits: list[Credit]
    totals: dict[tuple[str, str], int]


def local_year(epoch_s: int) -> int:
    return datetime.fromtimestamp(epoch_s + CHINA_OFFSET_S, UTC).year


def record_key(record: Record) -> str:
    """The key a methodology's parameters are looked up by: mode, truck class or region:year."""
    if record.behaviour is Behaviour.FREIGHT_MATCHING:
        assert record.truck_class is not None  # validated
        return record.truck_class.value
    if record.behaviour is Behaviour.NEV_DRIVING:
        return f"{record.region}:{local_year(record.start_s)}"
    return record.mode_or_default


def measures(record: Record) -> Measures:
    return Measures(
        distance_m=record.metres("distance_km"),
        loaded_m=record.metres("loaded_km"),
        empty_m=record.metres("empty_km"),
        energy_wh=record.energy_wh,
    )


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> int:
    """Haversine distance in whole metres (half up)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return math.floor(2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h)) * 1000 + 0.5)


def plausibility_problem(record: Record, rules: ParameterSet, now_s: int) -> ErrorCode | None:
    """The first plausibility rule ``record`` breaks, or None."""
    if record.start_s < rules.value("earliest_start_s"):
        return ErrorCode.TIME_BEFORE_EPOCH
    if record.end_s > now_s:
        return ErrorCode.TIME_IN_FUTURE
    m = measures(record)
    freight = record.behaviour is Behaviour.FREIGHT_MATCHING
    travelled_m = m.loaded_m + m.empty_m if freight else m.distance_m
    limit_kmh = rules.value("max_speed_kmh", record.mode_or_default)
    if travelled_m * 3600 > limit_kmh * 1000 * (record.end_s - record.start_s):
        return ErrorCode.SPEED_IMPLAUSIBLE
    if record.has_route:
        assert record.origin_lat is not None and record.origin_lon is not None  # all four or none
        assert record.destination_lat is not None and record.destination_lon is not None
        straight_m = great_circle_m(
            record.origin_lat, record.origin_lon, record.destination_lat, record.destination_lon
        )
        stated_m = m.loaded_m if freight else m.distance_m
        low = rules.value("route_min_ratio") * straight_m
        high = rules.value("route_max_ratio") * straight_m + rules.value("route_slack_km") * 1000
        if not low <= stated_m <= high:
            return ErrorCode.ROUTE_DISTANCE_IMPLAUSIBLE
    return None


def overlapping(spans: Iterable[tuple[str, str, int, int, int]]) -> set[int]:
    """Which rows overlap an earlier record of the same person and behaviour.

    ``spans`` are (person, behaviour, start_s, end_s, row). Within one person and behaviour,
    records are taken by (start, end, row); a record is refused when it starts before the latest
    end seen so far, so a chain of overlaps is credited once, at its first record. Spans that only
    touch (one ends when the next starts) do not overlap.
    """
    refused: set[int] = set()
    latest_end: dict[tuple[str, str], int] = {}
    for person, behaviour, start_s, end_s, row in sorted(spans):
        group = (person, behaviour)
        seen = latest_end.get(group)
        if seen is not None and start_s < seen:
            refused.add(row)
        latest_end[group] = end_s if seen is None else max(seen, end_s)
    return refused


def credit(rows: Sequence[tuple[int, Record | Problem]], book: Book, *, now_s: int) -> Outcome:
    """Credit every row, one at a time (the reference for ``accounts.batch``)."""
    out: dict[int, Credit] = {}
    accepted: list[tuple[int, Record]] = []
    seen_ids: set[tuple[str, str]] = set()
    for number, parsed in sorted(rows, key=lambda item: item[0]):
        if isinstance(parsed, Problem):
            out[number] = Credit(row=number, code=parsed.code)
            continue
        ids = (parsed.partner, parsed.external_id)
        if ids in seen_ids:
            out[number] = _refused(number, parsed, ErrorCode.DUPLICATE_RECORD)
            continue
        seen_ids.add(ids)
        accepted.append((number, parsed))
    priced: list[tuple[int, Record, int]] = []
    for number, record in accepted:
        code = plausibility_problem(record, book.rules, now_s)
        methodology, parameters = book.methodologies[record.behaviour]
        key = record_key(record)
        if code is None and key not in methodology.keys(parameters):
            code = (
                ErrorCode.UNKNOWN_REGION
                if record.behaviour is Behaviour.NEV_DRIVING
                else ErrorCode.UNKNOWN_VALUE
            )
        if code is not None:
            out[number] = _refused(number, record, code)
            continue
        priced.append((number, record, methodology.reference(measures(record), parameters, key)))
    refused = overlapping((r.person_key, r.behaviour.value, r.start_s, r.end_s, n) for n, r, _ in priced)
    capped = [(n, r, g) for n, r, g in priced if n not in refused]
    for number, record, _ in priced:
        if number in refused:
            out[number] = _refused(number, record, ErrorCode.OVERLAPPING_BEHAVIOUR)
    out.update(_apply_caps(capped, book))
    credits = [out[number] for number in sorted(out)]
    totals: dict[tuple[str, str], int] = {}
    for c in credits:
        if c.partner is not None and c.account_ref is not None and c.credited_g > 0:
            account = (c.partner, c.account_ref)
            totals[account] = totals.get(account, 0) + c.credited_g
    return Outcome(credits=credits, totals=totals)


def _refused(number: int, record: Record, code: ErrorCode) -> Credit:
    return Credit(
        row=number,
        code=code,
        partner=record.partner,
        account_ref=record.account_ref,
        external_id=record.external_id,
    )


def _apply_caps(priced: list[tuple[int, Record, int]], book: Book) -> dict[int, Credit]:
    """Credit in (person, behaviour, cap key, day, start, end, row) order up to each cap."""

    def order(item: tuple[int, Record, int]) -> tuple[object, ...]:
        number, r, _ = item
        cap_key, _ = daily_cap(book.methodologies[r.behaviour][1], r.mode_or_default)
        day = (r.start_s + CHINA_OFFSET_S) // DAY_S
        return (r.person_key, r.behaviour.value, cap_key, day, r.start_s, r.end_s, number)

    out: dict[int, Credit] = {}
    used: dict[tuple[object, ...], int] = {}
    for item in sorted(priced, key=order):
        number, record, grams = item
        methodology, parameters = book.methodologies[record.behaviour]
        _, cap = daily_cap(parameters, record.mode_or_default)
        group = order(item)[:4]
        before = used.get(group, 0)
        credited = min(grams, max(0, cap - before))
        used[group] = before + grams
        out[number] = Credit(
            row=number,
            code=None if credited == grams else ErrorCode.DAILY_CAP_REACHED,
            partner=record.partner,
            account_ref=record.account_ref,
            external_id=record.external_id,
            methodology=methodology.ref,
            parameters_sha256=parameters.sha256,
            reduction_g=grams,
            credited_g=credited,
        )
    return out
