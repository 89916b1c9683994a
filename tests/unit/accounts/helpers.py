"""Records for the carbon-account tests, and both crediting paths run side by side."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from neutralize.accounts.batch import credit_frame
from neutralize.accounts.catalogue import default_book
from neutralize.accounts.domain import Book, Credit, credit
from neutralize.accounts.ingest import records_frame, text_row
from neutralize.accounts.records import parse_record
from neutralize.core.errors import ErrorCode, Problem

NOW_S = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
BASE: dict[str, dict[str, Any]] = {
    "public_transport": {"mode": "metro", "distance_km": 10},
    "active_travel": {"mode": "walking", "distance_km": 2},
    "freight_matching": {"truck_class": "heavy_9_6m", "loaded_km": 300, "empty_km": 60},
    "nev_driving": {"distance_km": 100, "kwh": 15, "region": "CN-GD"},
}


def record(behaviour: str = "public_transport", **fields: Any) -> dict[str, Any]:
    """A valid record of ``behaviour`` (one hour on 2026-03-02, UTC+8) with ``fields`` replaced."""
    out: dict[str, Any] = {
        "partner": "metro-app",
        "account_ref": "acct-1",
        "external_id": "trip-1",
        "behaviour": behaviour,
        "start_time": "2026-03-02T08:00:00+08:00",
        "end_time": "2026-03-02T09:00:00+08:00",
        **BASE.get(behaviour, BASE["public_transport"]),
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def reference(records: Sequence[object], book: Book | None = None, now_s: int = NOW_S) -> list[Credit]:
    rows = [
        (n, parse_record(text_row(r), number=n) if isinstance(r, dict) else _malformed(n))
        for n, r in enumerate(records, start=1)
    ]
    return credit(rows, book or default_book(), now_s=now_s).credits


def batch(records: Sequence[object], book: Book | None = None, now_s: int = NOW_S) -> list[dict[str, Any]]:
    result = credit_frame(records_frame(records), book or default_book(), now_s=now_s)
    return result.credits.to_dicts()


def codes(records: Sequence[object], **kwargs: Any) -> list[str | None]:
    """Each row's code; fails unless the reference and the batch engine agree."""
    ref = [c.code.value if c.code else None for c in reference(records, **kwargs)]
    assert [c["code"] for c in batch(records, **kwargs)] == ref
    return ref


def _malformed(number: int) -> Problem:
    return Problem(ErrorCode.MALFORMED_ROW, "not a JSON object", row=number)
