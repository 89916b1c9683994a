"""Explicit mentions of another programme's project id in free text, e.g. "also registered as VCS 1340".

A reference is written ``"<programme>:<id>"``: ``VCS:1340``, ``GS:2429``, ``CDM:1234``. Serial strings
never count (``…-VCS-VCU-…``, ``GS1-1-…``, ``GS11236-16-…``): an id must not run on into ``-``.
"""

from __future__ import annotations

import re

MAX_TEXT_CHARS = 10_000

_OPTIONAL_WORDS = r"(?:\s+(?:project|projects|id|no\.?|number|ref\.?|reference))*"
_SEPARATOR = r"\s*[-#:]?\s*"
_ID = r"(\d{1,6})\b(?!-)"
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("VCS", re.compile(rf"\b(?:VCS|Verra){_OPTIONAL_WORDS}{_SEPARATOR}{_ID}", re.IGNORECASE)),
    ("GS", re.compile(rf"\bGold\s+Standard{_OPTIONAL_WORDS}{_SEPARATOR}(?:GS)?{_ID}", re.IGNORECASE)),
    ("GS", re.compile(rf"\bGS{_SEPARATOR}(\d{{2,6}})\b(?!-)", re.IGNORECASE)),
    ("CDM", re.compile(rf"\b(?:CDM|UNFCCC){_OPTIONAL_WORDS}{_SEPARATOR}{_ID}", re.IGNORECASE)),
)


def cross_references(text: str | None) -> tuple[str, ...]:
    """Every programme-qualified project id ``text`` names, in order of first mention."""
    if not text:
        return ()
    text = text[:MAX_TEXT_CHARS]
    found: list[tuple[int, str]] = []
    for programme, pattern in PATTERNS:
        found += [(match.start(), f"{programme}:{int(match[1])}") for match in pattern.finditer(text)]
    return tuple(dict.fromkeys(reference for _, reference in sorted(found)))
