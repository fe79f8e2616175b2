"""Subscriptions over HTTP, read the way SSE and multipart clients read them (httpx)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Transport = Literal["sse", "multipart"]
TRANSPORTS: tuple[Transport, ...] = ("sse", "multipart")

ACCEPT = {
    "sse": "text/event-stream",
    # What Apollo Client sends for a subscription.
    "multipart": 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json',
}


@dataclass(frozen=True)
class Frame:
    """One message of a stream: `next` (with its payload), `complete` or `heartbeat`."""

    kind: Literal["next", "complete", "heartbeat"]
    payload: dict[str, Any] | None = None
    id: str | None = None
    """An SSE event's `id`."""


class HTTPSubscription:
    """One subscription request; iterate `frames()` while the response is open."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        transport: Transport,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        method: Literal["GET", "POST"] = "POST",
        last_event_id: str | None = None,
    ) -> None:
        headers = {"Accept": ACCEPT[transport]}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if method == "GET":
            params = {"query": query, "variables": json.dumps(variables or {})}
            self._request = http.build_request("GET", url, params=params, headers=headers)
        else:
            body = {"query": query, "variables": variables}
            self._request = http.build_request("POST", url, json=body, headers=headers)
        self._http = http
        self.transport = transport
        self.response: httpx.Response | None = None

    async def open(self) -> httpx.Response:
        self.response = await self._http.send(self._request, stream=True)
        return self.response

    async def frames(self) -> AsyncIterator[Frame]:
        response = self.response or await self.open()
        assert response.status_code == 200, (await response.aread()).decode()
        parse = _sse_frames if self.transport == "sse" else _multipart_frames
        async for frame in parse(response):
            yield frame

    async def results(self) -> AsyncIterator[dict[str, Any]]:
        """Each `next` payload, up to `complete`; heartbeats are skipped."""
        async for frame in self.frames():
            if frame.kind == "complete":
                return
            if frame.kind == "next":
                assert frame.payload is not None
                yield frame.payload

    async def close(self) -> None:
        if self.response is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self.response.aclose()


async def _sse_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    event, data, event_id = None, [], None
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Frame("heartbeat")
        elif line.startswith("id:"):
            event_id = line.removeprefix("id:").strip()
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and event is not None:
            if event == "next":
                yield Frame("next", json.loads("\n".join(data)), event_id)
            elif event == "complete":
                yield Frame("complete")
                return
            event, data, event_id = None, [], None


async def _multipart_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    boundary = "\r\n--graphql"
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while (end := buffer.find(boundary)) >= 0:
            part, buffer = buffer[:end], buffer[end + len(boundary) :]
            if buffer.startswith("--"):
                if part.strip():
                    yield _multipart_part(part)
                yield Frame("complete")
                return
            if part.strip():
                yield _multipart_part(part)


def _multipart_part(part: str) -> Frame:
    _, _, body = part.partition("\r\n\r\n")
    message = json.loads(body)
    if "payload" not in message:
        return Frame("heartbeat")
    return Frame("next", message["payload"])
