"""Identifiers: random, URL-safe, sortable by creation time."""

from __future__ import annotations

import secrets
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str, at: datetime) -> str:
    """``prefix_`` + 10 time characters + 16 random characters (Crockford base32)."""
    millis = int(at.timestamp() * 1000)
    time_part = "".join(_ALPHABET[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return f"{prefix}_{time_part}{random_part}"
