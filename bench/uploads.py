"""Oversized uploads: 10 clients at once each POST 100 MB to /graphql with async
httpx (a Content-Length, the whole body sent before the response is read), against
the default 1 MiB limit, while another client sends plain queries.

Figures: uploads answered 413 (not a reset), the server's peak RSS growth over the
run (VmHWM), how long the 10 uploads took, and the plain queries answered meanwhile
(each with its latency).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from bench.harness import Context, Processes, rounded
from bench.stack import Api, Fake

UPLOADS = 10
BODY_BYTES = 100 << 20
CHUNK = b" " * (256 << 10)


async def _chunks() -> Any:
    for _ in range(BODY_BYTES // len(CHUNK)):
        yield CHUNK


async def _upload(http: httpx.AsyncClient, url: str) -> int | str:
    headers = {"Content-Type": "application/json", "Content-Length": str(BODY_BYTES)}
    try:
        return (await http.post(url, content=_chunks(), headers=headers)).status_code
    except httpx.HTTPError as error:
        return type(error).__name__


async def _measure(url: str, token: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=120, headers=auth) as http:
        began = time.monotonic()
        uploads = [asyncio.ensure_future(_upload(http, url)) for _ in range(UPLOADS)]
        plain: list[tuple[int, float]] = []
        while not all(upload.done() for upload in uploads):
            sent = time.monotonic()
            response = await http.post(url, json={"query": "{ __typename }"})
            plain.append((response.status_code, time.monotonic() - sent))
        statuses = [upload.result() for upload in uploads]
        elapsed = time.monotonic() - began
    latencies = [seconds * 1000 for status, seconds in plain if status == 200]
    return {
        "statuses": statuses,
        "seconds": rounded(elapsed, 2),
        "plain_requests": len(plain),
        "plain_answered_200": len(latencies),
        "plain_p50_ms": rounded(statistics.median(latencies), 1) if latencies else None,
        "plain_max_ms": rounded(max(latencies), 1) if latencies else None,
    }


def run(context: Context) -> dict[str, Any]:
    folder = context.folder("uploads")
    with Processes(folder) as processes:
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=1.0)
        url = f"{api.url}/graphql"
        api.graphql("{ __typename }", {})  # warm-up
        before_kb = api.process.hwm_kb()
        context.say(f"uploads: {UPLOADS} x {BODY_BYTES >> 20} MB at once")
        measured = asyncio.run(_measure(url, api.token))
        growth_kb = api.process.hwm_kb() - before_kb
        api_log = api.process.problems()
        api.close()
    refused = sum(status == 413 for status in measured["statuses"])
    return {
        "headline": {"uploads_413": refused, "uploads_rss_growth_kb": growth_kb},
        "details": {
            "uploads": {**measured, "peak_rss_before_kb": before_kb, "server_log": api_log}
        },
    }
