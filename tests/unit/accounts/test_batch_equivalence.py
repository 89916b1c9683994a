"""The column-wise engine gives exactly the reference's codes and grams, row by row and per account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from neutralize.accounts.batch import credit_frame
from neutralize.accounts.catalogue import default_book
from neutralize.accounts.domain import credit
from neutralize.accounts.ingest import records_frame, text_row
from neutralize.accounts.records import parse_record
from neutralize.core.errors import ErrorCode, Problem

from .helpers import NOW_S

START = datetime(2026, 5, 28, tzinfo=UTC)
CHINA = timezone(timedelta(hours=8))
MODES = {
    "public_transport": ["metro", "electric_bus"],
    "active_travel": ["walking", "cycling"],
    "freight_matching": [None, "truck"],
    "nev_driving": [None, "car"],
}
ODD_NUMBERS = ["-1", "0", "nan", "inf", "abc", "1e9", "", " 7.5 ", "0.0005", "1.005"]


def number(low: float, high: float) -> st.SearchStrategy[Any]:
    """Mostly exact decimals in range, sometimes any float, odd text or nothing."""
    exact = st.decimals(min_value=low, max_value=high, places=3).map(float)
    return st.one_of(
        exact,
        exact,
        exact,
        exact,
        st.floats(min_value=low, max_value=high),
        st.sampled_from(ODD_NUMBERS),
        st.none(),
    )


def mostly(valid: list[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(valid * 6 + odd)


def moment(draw: st.DrawFn) -> tuple[str, str]:
    start = START + timedelta(minutes=draw(st.integers(0, 2 * 24 * 6)) * 10)
    if draw(st.integers(0, 30)) == 0:
        start = draw(st.sampled_from([datetime(1970, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)]))
    end = start + timedelta(minutes=draw(mostly([10, 30, 60, 240, 600], [-5, 0, 1, 20_000])))
    zone = draw(st.sampled_from([UTC, CHINA]))

    def text(t: datetime) -> str:
        return t.astimezone(zone).isoformat().replace("+00:00", "Z")

    return text(start), text(end)


@st.composite
def records(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 40)) == 0:
        return draw(st.sampled_from([[1], "text", 3]))
    behaviour = draw(mostly(list(MODES), ["teleport"]))
    start, end = moment(draw)
    out: dict[str, Any] = {
        "partner": draw(st.sampled_from(["metro", "freight", "wallet"])),
        "account_ref": draw(mostly(["a1", "a2", "a3"], ["bad ref", None, "", " a1"])),
        "external_id": draw(st.sampled_from([f"r{i}" for i in range(12)])),
        "person": draw(st.sampled_from([None, None, "p1", "p2"])),
        "behaviour": behaviour,
        "mode": draw(mostly(MODES.get(behaviour, [None]), ["walking", "rocket", " metro", ""])),
        "start_time": start,
        "end_time": end,
    }
    if behaviour == "freight_matching":
        out["truck_class"] = draw(
            st.sampled_from(["light_4_2m", "medium_6_8m", "heavy_9_6m", "tractor_13m", "x"])
        )
        out["loaded_km"] = draw(number(0, 800))
        out["empty_km"] = draw(number(0, 400))
    else:
        out["distance_km"] = draw(number(0, 150))
    if behaviour == "nev_driving":
        out["kwh"] = draw(number(0, 80))
        out["region"] = draw(mostly(["CN-GD", "CN-SC", "CN", "CN-XZ"], ["CN-QQ", "GD"]))
    if draw(st.integers(0, 4)) == 0:
        out |= {
            "origin_lat": draw(st.floats(22.4, 22.8)),
            "origin_lon": draw(st.floats(113.8, 114.4)),
            "destination_lat": draw(st.floats(22.4, 22.8)),
            "destination_lon": draw(st.floats(113.8, 114.4)),
        }
    if draw(st.integers(0, 30)) == 0:
        out["colour"] = "green"
    return {k: v for k, v in out.items() if v is not None}


def reference_rows(batch_records: list[object]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], int]]:
    rows: list[tuple[int, Any]] = []
    for number, raw in enumerate(batch_records, start=1):
        if isinstance(raw, dict):
            rows.append((number, parse_record(text_row(raw), number=number)))
        else:
            rows.append((number, Problem(ErrorCode.MALFORMED_ROW, "not a JSON object", row=number)))
    outcome = credit(rows, default_book(), now_s=NOW_S)
    credits = [
        {
            "row": c.row,
            "code": c.code.value if c.code else None,
            "partner": c.partner,
            "account_ref": c.account_ref,
            "external_id": c.external_id,
            "methodology": c.methodology,
            "parameters_sha256": c.parameters_sha256,
            "reduction_g": c.reduction_g,
            "credited_g": c.credited_g,
        }
        for c in outcome.credits
    ]
    return credits, outcome.totals


@given(st.lists(records(), max_size=40))
def test_batch_engine_equals_the_reference(batch_records: list[object]) -> None:
    expected, expected_totals = reference_rows(batch_records)
    result = credit_frame(records_frame(batch_records), default_book(), now_s=NOW_S)
    assert result.credits.to_dicts() == expected
    totals = {(r["partner"], r["account_ref"]): r["credited_g"] for r in result.totals.iter_rows(named=True)}
    assert totals == expected_totals


@st.composite
def plausible_records(draw: st.DrawFn) -> dict[str, Any]:
    """Valid, plausible records of few people over a few hours: overlaps and caps are common."""
    behaviour = draw(st.sampled_from(["public_transport", "active_travel", "freight_matching"]))
    start = START + timedelta(minutes=draw(st.integers(0, 36)) * 10)
    end = start + timedelta(minutes=draw(st.sampled_from([60, 120, 180])))
    out: dict[str, Any] = {
        "partner": draw(st.sampled_from(["metro", "wallet"])),
        "account_ref": draw(st.sampled_from(["a1", "a2"])),
        "external_id": draw(st.sampled_from([f"r{i}" for i in range(30)])),
        "person": draw(st.sampled_from([None, "p1"])),
        "behaviour": behaviour,
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
    }
    if behaviour == "freight_matching":
        out |= {
            "truck_class": "tractor_13m",
            "loaded_km": draw(st.integers(1, 90)),
            "empty_km": draw(st.integers(0, 9)),
        }
    else:
        out |= {"mode": draw(st.sampled_from(MODES[behaviour])), "distance_km": draw(st.integers(1, 15)) / 4}
    return {k: v for k, v in out.items() if v is not None}


@given(st.lists(plausible_records(), max_size=40))
def test_overlaps_and_caps_agree_with_the_reference(batch_records: list[dict[str, Any]]) -> None:
    # Small slices: the cross-row steps must see across the row-by-row slices. And Polars' default
    # (streaming) engine, which runs batches larger than these (the test above runs the in-memory one).
    expected, expected_totals = reference_rows(list(batch_records))
    result = credit_frame(
        records_frame(batch_records), default_book(), now_s=NOW_S, chunk_rows=7, part_rows=5, in_memory_rows=0
    )
    assert result.credits.to_dicts() == expected
    totals = {(r["partner"], r["account_ref"]): r["credited_g"] for r in result.totals.iter_rows(named=True)}
    assert totals == expected_totals
