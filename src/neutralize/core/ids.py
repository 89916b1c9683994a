"""Identifiers: random, URL-safe, sortable by creation time."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

# Base32 with the RFC 4648 "extended hex" digits, spelt in Crockford's alphabet (no i, l, o, u), so
# that the characters sort as the numbers they stand for.
_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUV", "abcdefghjkmnpqrstvwxyz")


def new_id(prefix: str, at: datetime) -> str:
    """``prefix_`` + 10 time characters (the millisecond) + 16 random characters (80 bits, drawn at
    once): 130 bits, written 5 to a character, most significant first."""
    value = (int(at.timestamp() * 1000) & (2**50 - 1)) << 80 | secrets.randbits(80)
    digits = base64.b32hexencode((value << 6).to_bytes(17, "big"))[:26]  # 136 bits: 130 + 6 spare
    return f"{prefix}_{digits.decode('ascii').translate(_CROCKFORD)}"
