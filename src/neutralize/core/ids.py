"""Identifiers: random, URL-safe, sortable by creation time."""

from __future__ import annotations

import secrets
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str, at: datetime) -> str:
    """``prefix_`` + 10 time characters + 16 random characters (Crockford base32): 80 random bits,
    drawn at once (one read of the system's random source per id, not one per character)."""
    return f"{prefix}_{_base32(int(at.timestamp() * 1000), 10)}{_base32(secrets.randbits(80), 16)}"


def _base32(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value``, most significant first."""
    return "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(length)))
