"""Canonical JSON: the one byte form of data that the platform hashes and signs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

MAX_CANONICAL_DEPTH = 64


def canonical_json(obj: Any) -> bytes:
    """The one byte form of ``obj`` that the platform hashes and signs.

    Rules, so that anyone can rebuild the bytes from the same data:

    - UTF-8, no byte order mark; no whitespace outside strings; separators ``,`` and ``:``.
    - Object keys must be strings; they are sorted by their UTF-16 code units (as RFC 8785, JCS).
    - Strings are written as they are, not Unicode-normalised: non-ASCII characters appear as
      themselves; only ``"``, ``\\`` and control characters are escaped (``\\n``, ``\\u001f``...).
    - ``int`` and ``bool`` and ``None`` as JSON numbers, ``true``/``false`` and ``null``.
    - ``Decimal`` as a JSON *string* in plain notation keeping its scale: ``Decimal("1.10")`` is
      ``"1.10"``, ``Decimal("1E+2")`` is ``"100"``. Quantize first when equal
      amounts must give equal bytes. NaN and infinities are refused.
    - ``float`` is refused, NaN included: binary floats have no one text form that every language
      agrees on, and the platform never uses them for quantities.
    - ``datetime`` must be timezone-aware; it is written as an ISO 8601 string in UTC with ``Z``
      (``2026-01-02T03:04:05Z``, or ``...05.123456Z`` when there are microseconds). A ``date`` is
      ``YYYY-MM-DD``.
    - Lists and tuples as arrays, in order. Anything else (sets, bytes, objects) is refused.

    For data made only of strings, integers, booleans, null, arrays and objects the output is the
    RFC 8785 (JCS) form. Raises ``TypeError`` for an unsupported value and ``ValueError`` for a
    naive datetime, a non-finite Decimal or nesting deeper than ``MAX_CANONICAL_DEPTH``.
    """
    text = json.dumps(_canonical_value(obj, 0), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def utc_iso(at: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with a ``Z`` suffix."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime has no place in signed data")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _canonical_value(obj: Any, depth: int) -> Any:
    if depth > MAX_CANONICAL_DEPTH:
        raise ValueError(f"canonical JSON nests at most {MAX_CANONICAL_DEPTH} levels")
    # bool before int (a subclass); str covers StrEnum members.
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        raise TypeError("floats have no canonical form: use Decimal or int")
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"{obj} has no canonical form")
        return format(obj, "f")
    if isinstance(obj, datetime):
        return utc_iso(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, list | tuple):
        return [_canonical_value(item, depth + 1) for item in obj]
    if isinstance(obj, dict):
        return _canonical_object(obj, depth)
    raise TypeError(f"{type(obj).__name__} has no canonical JSON form")


def _canonical_object(obj: dict[Any, Any], depth: int) -> dict[str, Any]:
    if not all(isinstance(k, str) for k in obj):
        raise TypeError("canonical JSON object keys must be strings")
    ordered = sorted(obj, key=lambda k: k.encode("utf-16-be"))
    # json.dumps keeps insertion order, which is now the canonical order.
    return {k: _canonical_value(obj[k], depth + 1) for k in ordered}
