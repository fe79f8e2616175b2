"""Limits that protect the server and the GPU bill, against real server processes.

Request bodies are refused as they stream in, browsers from other origins are
let in only when listed, and each user's starts and connections are capped,
exactly, however many requests race and on however many processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
import websockets

from tests.support.api_process import ApiProcess, StartServer
from tests.support.assets import seed_assets
from tests.support.graphql import PROTOCOLS, GraphQLHTTP, GraphQLWebSocket, Protocol
from tests.support.queries import CANCEL, RETRY, overlay_input

pytestmark = pytest.mark.faults

MB = 1 << 20


def post_raw(port: int, body_size: int, *, declared: bool) -> int:
    """POST `body_size` bytes to /graphql over a raw socket, with a Content-Length or
    chunked; returns the status the server answered with. The server may answer and
    close before the body is sent: what it answered is read all the same."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        framing = f"Content-Length: {body_size}" if declared else "Transfer-Encoding: chunked"
        sock.sendall(
            f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n".encode()
        )
        chunk = b" " * (256 * 1024)
        piece = chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk)
        with contextlib.suppress(OSError):  # the server stopped reading and closed
            for _ in range(body_size // len(chunk)):
                sock.sendall(piece)
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


async def test_large_bodies_are_refused_as_they_arrive_and_memory_stays_flat(
    start_server: StartServer,
) -> None:
    server = start_server()
    peak_before = server.hwm_kb()
    client = GraphQLHTTP(server.graphql_url)

    async def meanwhile() -> list[int]:
        """Another client's small requests, answered all along."""
        codes = []
        for _ in range(20):
            codes.append(
                (await client.post("{ exportJobs(first: 1) { edges { cursor } } }")).status_code
            )
            await asyncio.sleep(0.05)
        return codes

    loop = asyncio.get_running_loop()
    began = loop.time()
    with ThreadPoolExecutor(max_workers=10) as threads:
        uploads = [
            loop.run_in_executor(threads, partial(post_raw, server.port, 100 * MB, declared=even))
            for even in [True, False] * 5
        ]
        *statuses, others = await asyncio.gather(*uploads, meanwhile())
    await client.aclose()
    growth_kb = server.hwm_kb() - peak_before
    print(f"10 x 100 MB refused in {loop.time() - began:.2f} s; peak RSS grew {growth_kb} KB")

    assert statuses == [413] * 10
    assert others == [200] * 20
    assert growth_kb < 50 * 1024


async def test_a_body_over_the_limit_gets_a_one_line_json_error(
    start_server: StartServer,
) -> None:
    server = start_server(MAX_REQUEST_BYTES="4096")
    async with httpx.AsyncClient() as http:
        refused = await http.post(server.graphql_url, json={"query": "{ a }", "pad": "x" * 5000})
        accepted = await http.post(server.graphql_url, json={"query": "{ __typename }"})

    assert refused.status_code == 413
    assert "\n" not in refused.text
    assert refused.json() == {
        "errors": [
            {
                "message": "The request body is over 4096 bytes.",
                "extensions": {"code": "REQUEST_TOO_LARGE"},
            }
        ]
    }
    assert accepted.status_code == 200


async def test_cors_lets_listed_origins_in_and_no_other(start_server: StartServer) -> None:
    server = start_server(CORS_ORIGINS="https://app.example.com, http://localhost:5173")
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with httpx.AsyncClient() as http:
        allowed = await http.options(
            server.graphql_url, headers={"Origin": "https://app.example.com", **preflight}
        )
        refused = await http.options(
            server.graphql_url, headers={"Origin": "https://evil.example", **preflight}
        )
        request = await http.post(
            server.graphql_url,
            json={"query": "{ __typename }"},
            headers={"Origin": "http://localhost:5173"},
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert request.status_code == 200
    assert request.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_without_cors_origins_a_browser_preflight_is_turned_away(
    start_server: StartServer,
) -> None:
    server = start_server()
    async with httpx.AsyncClient() as http:
        preflight = await http.options(
            server.graphql_url,
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )

    assert "access-control-allow-origin" not in preflight.headers


START = """
mutation Start($input: OverlayExportInput!) {
  startOverlayExport(input: $input) {
    job { id status }
    userErrors { field message code retryAfterSeconds }
  }
}
"""


async def start_many(servers: list[ApiProcess], count: int, **extra: Any) -> list[dict[str, Any]]:
    """`count` start mutations at once, shared over the servers; their payloads."""
    assets = await seed_assets(servers[0].settings, "local")
    clients = [GraphQLHTTP(server.graphql_url) for server in servers]
    variables = {"input": overlay_input(assets.project_id, **extra)}
    answers = await asyncio.gather(
        *(clients[index % len(clients)].execute(START, variables) for index in range(count))
    )
    for client in clients:
        await client.aclose()
    return [answer["startOverlayExport"] for answer in answers]


def outcomes(payloads: list[dict[str, Any]]) -> Counter[str]:
    return Counter(
        "created" if payload["job"] else payload["userErrors"][0]["code"] for payload in payloads
    )


ACTIVE_LIMIT_5 = {"MAX_ACTIVE_EXPORTS_PER_USER": "5", "MAX_STARTS_PER_MINUTE_PER_USER": "1000"}


async def test_two_hundred_racing_starts_create_exactly_the_active_limit_on_sqlite(
    start_server: StartServer,
) -> None:
    server = start_server(**ACTIVE_LIMIT_5)

    payloads = await start_many([server], 200)

    assert outcomes(payloads) == {"created": 5, "TOO_MANY_ACTIVE_EXPORTS": 195}


@pytest.mark.postgres
async def test_two_hundred_racing_starts_create_exactly_the_active_limit_on_postgres(
    start_server: StartServer, postgres_url: str
) -> None:
    server = start_server(DATABASE_URL=postgres_url, **ACTIVE_LIMIT_5)

    payloads = await start_many([server], 200)

    assert outcomes(payloads) == {"created": 5, "TOO_MANY_ACTIVE_EXPORTS": 195}


@pytest.mark.postgres
async def test_the_active_limit_holds_across_two_processes(
    start_server: StartServer, postgres_url: str
) -> None:
    servers = [start_server(DATABASE_URL=postgres_url, **ACTIVE_LIMIT_5) for _ in range(2)]

    payloads = await start_many(servers, 200)

    assert outcomes(payloads) == {"created": 5, "TOO_MANY_ACTIVE_EXPORTS": 195}


async def test_a_burst_past_the_rate_limit_is_told_when_to_retry(
    start_server: StartServer,
) -> None:
    server = start_server(MAX_ACTIVE_EXPORTS_PER_USER="1000", MAX_STARTS_PER_MINUTE_PER_USER="5")

    payloads = await start_many([server], 50)

    assert outcomes(payloads) == {"created": 5, "RATE_LIMITED": 45}
    refusals = [payload["userErrors"][0] for payload in payloads if not payload["job"]]
    for refusal in refusals:
        assert 1 <= refusal["retryAfterSeconds"] <= 60
        assert refusal["message"].startswith("At most 5 exports may be started per minute;")


async def test_an_idempotent_replay_never_counts_twice(start_server: StartServer) -> None:
    server = start_server(MAX_ACTIVE_EXPORTS_PER_USER="1")

    replays = await start_many([server], 20, idempotencyKey="the-one-export")
    another = await start_many([server], 1, idempotencyKey="another-export")

    assert outcomes(replays) == {"created": 20}
    assert len({payload["job"]["id"] for payload in replays}) == 1
    assert outcomes(another) == {"TOO_MANY_ACTIVE_EXPORTS": 1}


async def test_a_retry_counts_as_a_start(start_server: StartServer) -> None:
    server = start_server(MAX_ACTIVE_EXPORTS_PER_USER="1")
    (first,) = await start_many([server], 1)
    client = GraphQLHTTP(server.graphql_url)
    await client.execute(CANCEL, {"id": first["job"]["id"]})

    retried = (await client.execute(RETRY, {"id": first["job"]["id"]}))["retryExport"]
    again = (await client.execute(RETRY, {"id": first["job"]["id"]}))["retryExport"]
    await client.aclose()

    assert retried["userErrors"] == [] and retried["job"]["status"] in ("PENDING", "QUEUED")
    assert [error["code"] for error in again["userErrors"]] == ["TOO_MANY_ACTIVE_EXPORTS"]


async def refused_with(url: str, protocol: Protocol) -> int | None:
    """The close code of a connection the server ends right after `connection_init`."""
    async with websockets.connect(url, subprotocols=[protocol]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        try:
            async for _ in socket:
                pass
        except websockets.ConnectionClosed:
            pass
        return socket.close_code


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connections_past_the_per_user_cap_are_closed_4429(
    start_server: StartServer, protocol: Protocol
) -> None:
    server = start_server(MAX_CONNECTIONS_PER_USER="3")
    held = [await GraphQLWebSocket.connect(server.ws_url, protocol) for _ in range(3)]

    assert await refused_with(server.ws_url, protocol) == 4429
    await held.pop().close()
    # A slot was freed: the next connection is let in.
    held.append(await GraphQLWebSocket.connect(server.ws_url, protocol))
    assert await refused_with(server.ws_url, protocol) == 4429
    for connection in held:
        await connection.close()
