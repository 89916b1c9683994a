"""Text no database can keep, refused at the door of every route, JSON and page alike.

A NUL character cannot be stored in a PostgreSQL text column, and a lone UTF-16 surrogate (which
JSON's ``\\ud800`` escape can spell, and so can a multipart form in UTF-7) cannot be encoded as UTF-8
for either database. Both arrive legally through percent-escapes in the path and query, escapes in a
JSON body or a form's fields; left to the database they would fail the request as a server error on
one backend and not the other. No field of the API or of a page has a use for them, so any string
that holds one, wherever it sits in the request (a form's field names and file names included), is
refused with ``INVALID_TEXT`` and the field that holds it. Pages check who may call them inside the
route, so for a page this check comes first: it depends on nothing but the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from email.message import Message
from typing import Any

from fastapi import Request
from fastapi.params import Form
from starlette.datastructures import FormData, UploadFile

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


def form_strings(form: FormData) -> Iterator[tuple[str, str]]:
    """Every string of a parsed form: each field's name and value, and each file's name."""
    for name, value in form.multi_items():
        yield name, name
        if isinstance(value, UploadFile):
            yield name, value.filename or ""
        else:
            yield name, value


def refuse_unstorable(places: Iterable[tuple[str, str]]) -> None:
    """Refuse with ``INVALID_TEXT`` the first (where, text) whose text no database can keep."""
    for where, text in places:
        if not storable(text):
            message = f"{where or 'the body'} holds a NUL character or a lone surrogate"
            raise DomainError(
                code=ErrorCode.INVALID_TEXT,
                message=message,
                problems=[Problem(code=ErrorCode.INVALID_TEXT, message=message, field=where or None)],
            )


async def refuse_unstorable_text(request: Request) -> None:
    """Refuse a request whose path, query, JSON body or form holds text no database can keep."""
    places: list[tuple[str, str]] = list(request.path_params.items())
    for name, value in request.query_params.multi_items():
        places += [(name, name), (name, value)]
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is not None and isinstance(body_field.field_info, Form):
        # the route parsed its form before its dependencies ran: this reads the parsed one again (a
        # page's CSRF check declares a form field, so every page form is parsed and checked here)
        places += form_strings(await request.form())
    elif body_field is not None and _is_json(request):
        body = await request.body()
        if _ESCAPES.search(body):  # only an escape spells either in JSON: other bodies need no walk
            places += _strings(await _json(request), "")
    refuse_unstorable(places)
