"""Refuses HTTP request bodies over a size limit, before anything reads them whole.

A declared `Content-Length` over the limit is answered at once, without reading
the body; a body streamed in chunks is counted as it arrives and refused the
moment it passes the limit. Either way the answer is a 413 with a one-line JSON
error, and the server never holds more than the limit of any request. The rest
of the body is then read and discarded (`gql.http.lingering`), so that clients
which send their whole body before reading get the 413 rather than a reset.
Websocket messages have their own bound (uvicorn's `ws_max_size`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def declared_length(headers: Mapping[bytes, bytes]) -> int | None:
    """The request's Content-Length, when it gives a plain number."""
    length = headers.get(b"content-length")
    return int(length) if length is not None and length.isdigit() else None


class RequestTooLarge(Exception):
    pass


class RequestSizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._refusal = json.dumps(
            {
                "errors": [
                    {
                        "message": f"The request body is over {max_bytes} bytes.",
                        "extensions": {"code": "REQUEST_TOO_LARGE"},
                    }
                ]
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(dict(scope["headers"]))
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # "Connection: close": the rest of the body is drained only up to a bound,
        # so the connection cannot carry another request.
        response = Response(
            self._refusal,
            status_code=413,
            media_type="application/json",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
