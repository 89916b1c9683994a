"""A cap on request bodies, enforced while they stream in."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neutralize.api.errors import PageProblem, answers_json
from neutralize.core.errors import DomainError, ErrorCode


class BodyTooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse a body above the limit for its path with 413 and code ``payload_too_large``: a JSON
    problem for the API, and for a page (when ``page_problem`` is given) the page it renders."""

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[str], int], page_problem: PageProblem | None = None
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.page_problem = page_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = DomainError(
            code=ErrorCode.PAYLOAD_TOO_LARGE, message=f"the request body is over {limit} bytes"
        )
        request = Request(scope)
        response: Response
        if self.page_problem is not None and not answers_json(request):
            response = self.page_problem(request, error, 413)
        else:
            response = JSONResponse(status_code=413, content=error.as_dict())
        await response(scope, receive, send)
