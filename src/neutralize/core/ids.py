"""Identifiers: random, URL-safe, sortable by creation time."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

# Base32 with the RFC 4648 "extended hex" digits, spelt in Crockford's alphabet (no i, l, o, u), so
# that the characters sort as the numbers they stand for.
_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUV", "abcdefghjkmnpqrstvwxyz")
_RANDOM_BYTES = 10  # 80 bits: 16 characters, exactly two of base32's 40-bit groups


def new_id(prefix: str, at: datetime) -> str:
    """``prefix_`` + 10 time characters (the millisecond) + 16 random characters (80 bits, drawn at
    once): 130 bits, written 5 to a character, most significant first."""
    return new_ids(prefix, at, 1)[0]


def new_ids(prefix: str, at: datetime, count: int) -> list[str]:
    """``count`` identifiers as ``new_id`` makes them, at the same millisecond: the time characters
    written once, the random ones of all of them drawn and written in one go (80 bits are a whole
    number of base32 groups, so the encoding of the joined bytes is the joined encodings)."""
    millisecond = int(at.timestamp() * 1000) & (2**50 - 1)
    head = base64.b32hexencode((millisecond << 30).to_bytes(10, "big"))[:10]  # the top 50 of 80 bits
    drawn = base64.b32hexencode(secrets.token_bytes(_RANDOM_BYTES * count)).decode("ascii")
    start = f"{prefix}_{head.decode('ascii').translate(_CROCKFORD)}"
    digits = drawn.translate(_CROCKFORD)
    return [start + digits[i : i + 16] for i in range(0, len(digits), 16)]
