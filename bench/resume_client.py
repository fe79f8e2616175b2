"""A client that follows `exportJobs` over SSE and resumes with `Last-Event-ID`, and
what it saw: states gone backwards, repeats, the final states it reached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.stack import Api
from gql.jobs.cursor import decode_cursor
from tests.support.http_streams import HTTPSubscription

QUERY = "subscription { exportJobs { id status progress changeCursor } }"
RANK = {"PENDING": 0, "QUEUED": 1, "PROCESSING": 2, "COMPLETE": 3, "ERROR": 3, "CANCELLED": 3}
FINAL = 3
# After a round in which no process answered: all of them restarting at once.
ROUND_PAUSE_S = 0.1


@dataclass(frozen=True)
class Event:
    job: str
    status: str
    progress: int
    cursor: str
    """The payload's changeCursor."""
    id: str | None
    """The SSE event's id (the same cursor)."""
    at: float
    """time.monotonic() on receipt."""
    stream: int
    """The stream (`Follower.connections`) it came on."""


@dataclass
class Follower:
    """One SSE client that, whenever its stream breaks, reconnects to the next process
    with the last event id it received, and never re-reads the list."""

    apis: Sequence[Api]
    events: list[Event] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    """Each stream opened: the process, and the events it carried."""
    gaps_ms: list[float] = field(default_factory=list)
    """From each stream breaking to the next one answering 200 (ms)."""
    refused: list[str] = field(default_factory=list)
    """Attempts a process answered with something other than a stream."""
    stream_errors: list[Any] = field(default_factory=list)
    """GraphQL errors in the stream (BAD_CURSOR, UNKNOWN_CURSOR, ...)."""
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_id(self) -> str | None:
        return self.events[-1].id if self.events else None

    async def follow(self) -> None:
        """Until cancelled."""
        broke_at: float | None = None
        turn = 0
        timeout = httpx.Timeout(10.0, read=None)
        async with httpx.AsyncClient(timeout=timeout) as http:
            while True:
                api = self.apis[turn % len(self.apis)]
                turn += 1
                opened = await self._stream(http, api, broke_at)
                if opened:
                    broke_at = time.monotonic()
                elif turn % len(self.apis) == 0:
                    await asyncio.sleep(ROUND_PAUSE_S)

    async def _stream(self, http: httpx.AsyncClient, api: Api, broke_at: float | None) -> bool:
        """One stream from `api` until it breaks; whether it opened."""
        stream = HTTPSubscription(
            http,
            f"{api.url}/graphql",
            "sse",
            QUERY,
            {},
            token=api.token,
            last_event_id=self.last_id,
        )
        try:
            try:
                response = await stream.open()
            except httpx.HTTPError:
                return False
            if response.status_code != 200:
                self.refused.append(f"{api.process.name}: {response.status_code}")
                return False
            if broke_at is not None:
                self.gaps_ms.append((time.monotonic() - broke_at) * 1000)
            connection = {"process": api.process.name, "since": self.last_id, "events": 0}
            self.connections.append(connection)
            self.connected.set()
            try:
                async for frame in stream.frames():
                    if frame.kind != "next" or frame.payload is None:
                        continue
                    if frame.payload.get("errors"):
                        self.stream_errors.append(frame.payload["errors"])
                        continue
                    job = frame.payload["data"]["exportJobs"]
                    self.events.append(
                        Event(
                            job["id"],
                            job["status"],
                            job["progress"],
                            job["changeCursor"],
                            frame.id,
                            time.monotonic(),
                            len(self.connections) - 1,
                        )
                    )
                    connection["events"] += 1
            except httpx.HTTPError:
                pass
            return True
        finally:
            await stream.close()

    def last_states(self) -> dict[str, tuple[str, int]]:
        return {event.job: (event.status, event.progress) for event in self.events}


def analyse(events: Sequence[Event], finals: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """What the client saw of each export, against the final states the API holds."""
    last: dict[str, tuple[str, int]] = {}
    streams: dict[str, int] = {}
    cursors: set[str] = set()
    backwards: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    repeated_cursors = 0
    # Opaque to clients; the bench reads them to check that they never go back.
    newest, regressions = 0, []
    for event in events:
        repeated = event.cursor in cursors
        repeated_cursors += repeated
        cursors.add(event.cursor)
        number = decode_cursor(event.cursor)
        if number < newest:
            regressions.append({"job": event.job, "cursor": number, "after": newest})
        newest = max(newest, number)
        state = (event.status, event.progress)
        before = last.get(event.job)
        last[event.job] = state
        stream_before = streams.get(event.job)
        streams[event.job] = event.stream
        if before is None:
            continue
        change = {
            "job": event.job,
            "from": before,
            "to": state,
            "cursor": event.cursor,
            "new_cursor": not repeated,
            "streams": (stream_before, event.stream),
        }
        if state == before:
            duplicates.append(change)
        elif (
            RANK[before[0]] == FINAL
            or RANK[event.status] < RANK[before[0]]
            or event.progress < before[1]
        ):
            backwards.append(change)
    resent = [change for change in duplicates if change["new_cursor"]]
    seen = [job for job, final in finals.items() if last.get(job) == final]
    return {
        "final_seen": len(seen),
        "exports": len(finals),
        "missed": sorted(set(finals) - set(seen))[:10],
        "backwards": len(backwards),
        "backwards_first": backwards[:5],
        "duplicates": len(duplicates),
        "duplicates_on_a_new_stream": sum(1 for d in duplicates if len(set(d["streams"])) > 1),
        "duplicates_with_new_cursor": len(resent),
        "duplicates_with_new_cursor_first": resent[:5],
        "cursor_regressions": len(regressions),
        "cursor_regressions_first": regressions[:5],
        "duplicates_first": duplicates[:5],
        "repeated_cursors": repeated_cursors,
        "id_is_cursor": all(event.id == event.cursor for event in events),
        "events": len(events),
    }
