"""Values that spoil requests, shared by the bad-input tests of the API and of the pages: text no
field should accept or no database can keep, junk path segments and query values, and how many
examples each route gets (5 by default, 250 under the stress profile's 5,000)."""

from __future__ import annotations

from hypothesis import settings

from neutralize.core.errors import ErrorCode

CODES = {code.value for code in ErrorCode}
EXAMPLES = max(5, settings.default.max_examples // 20)

LONG = "x" * 5_000
ODD_TEXT = [
    "",
    " ",
    LONG,
    "王芳💥 é",
    "\x00",
    "a\x01b\x1fc\x7f",
    "\u202eevil",
    "\ud800",  # a lone surrogate: valid JSON escape, not encodable as UTF-8
    "..",
    "../../etc/passwd",
    "' OR 1=1 --",
    "NaN",
    "-1",
    "1e400",
]
PATH_JUNK = [
    "nope",
    "0",
    "-1",
    "x" * 3_000,
    "..",
    "%2e%2e",
    "%2F",
    "a%2Fb",
    "%00",
    "%ff%fe",
    "%C0%AF",
    "%",
    "%zz",
    "%E7%8E%8B",
    "a%20b",
    "%0d%0aX-Injected:%201",
    "9" * 40,
]
QUERY_JUNK = [
    "",
    "-1",
    "0",
    "1.5",
    "99999999999999999999999",
    "x" * 3_000,
    "%ff",
    "%00",
    "王",
    "true",
    "null",
]
