"""Text no database can keep, refused at the door of every JSON route.

A NUL character cannot be stored in a PostgreSQL text column, and a lone UTF-16 surrogate (which
JSON's ``\\ud800`` escape can spell) cannot be encoded as UTF-8 for either database. Both arrive
legally through percent-escapes in the path and query or escapes in a JSON body; left to the
database they would fail the request as a server error on one backend and not the other. No field
of the API has a use for them, so any string that holds one, wherever it sits in the request, is
refused with ``INVALID_TEXT`` and the field that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from typing import Any

from fastapi import Request

from neutralize.core.errors import DomainError, ErrorCode, Problem

MAX_DEPTH = 64  # deeper than any body the schemas admit; what lies below is refused by them anyway
# JSON text can hold a NUL or a surrogate only as an escape (\u0000, \ud800-\udfff; raw control
# characters are not JSON): a body without one is clean. A match (an emoji's surrogate pair, say) is
# then decided by walking the parsed body.
_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF][0-9a-fA-F]{2})")


def storable(text: str) -> bool:
    """Whether ``text`` is free of NUL and of lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: Any, where: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every string of a JSON value, keys included, with where it sits (``records[3].note``)."""
    if isinstance(value, str):
        yield where, value
    elif depth < MAX_DEPTH and isinstance(value, dict):
        for key, inner in value.items():
            inner_where = f"{where}.{key}" if where else str(key)
            yield inner_where, str(key)
            yield from _strings(inner, inner_where, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _strings(inner, f"{where}[{index}]", depth + 1)


def _is_json(request: Request) -> bool:
    """The framework's own test for a body it parsed as JSON (no Content-Type counts as JSON)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _json(request: Request) -> Any:
    """The body as the route parsed it (the request keeps it: this is not a second parse), or
    ``None`` where the route took it as something else."""
    try:
        return await request.json()
    except ValueError:  # not JSON (nor UTF-8): the route refuses it, or reads it as a form
        return None


async def refuse_unstorable_text(request: Request) -> None:
    """Refuse a request whose path, query or JSON body holds text no database can keep."""
    places: list[tuple[str, str]] = list(request.path_params.items())
    for name, value in request.query_params.multi_items():
        places += [(name, name), (name, value)]
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is not None and _is_json(request):
        body = await request.body()
        if _ESCAPES.search(body):  # only an escape spells either in JSON: other bodies need no walk
            places += _strings(await _json(request), "")
    for where, text in places:
        if not storable(text):
            message = f"{where or 'the body'} holds a NUL character or a lone surrogate"
            raise DomainError(
                code=ErrorCode.INVALID_TEXT,
                message=message,
                problems=[Problem(code=ErrorCode.INVALID_TEXT, message=message, field=where or None)],
            )
