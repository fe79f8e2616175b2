"""A body over the limit gets its 413 whatever the client: the server answers at once,
then reads and discards the rest of the body before closing (a lingering close), so
clients that send their whole body before reading see the answer, not a reset.

Every client sends 100 MB against the default 1 MiB limit, to a real server process.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.support.api_process import ApiProcess, StartServer
from tests.support.node import run_node_script

pytestmark = pytest.mark.faults

MB = 1 << 20
BODY_BYTES = 100 * MB
JSON_TYPE = {"Content-Type": "application/json"}
REFUSAL = {
    "errors": [
        {
            "message": "The request body is over 1048576 bytes.",
            "extensions": {"code": "REQUEST_TOO_LARGE"},
        }
    ]
}
# Far longer than any drain takes, so no assertion depends on the machine's speed.
GENEROUS_LINGER_S = "120"
CLIENT_TIMEOUT_S = 120.0


@pytest.fixture
def server(start_server: StartServer) -> ApiProcess:
    return start_server(LINGER_MAX_S=GENEROUS_LINGER_S)


async def chunks(
    total: int, *, paused_halfway: asyncio.Event | None = None
) -> AsyncIterator[bytes]:
    """`total` bytes of spaces in 256 KiB chunks; halfway, waits for `paused_halfway`."""
    chunk = b" " * (256 * 1024)
    for sent in range(0, total, len(chunk)):
        if paused_halfway is not None and sent == total // 2:
            await paused_halfway.wait()
        yield chunk


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_async_httpx_reads_the_413(server: ApiProcess, framing: str) -> None:
    headers = {**JSON_TYPE}
    if framing == "content-length":
        headers["Content-Length"] = str(BODY_BYTES)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as http:
        response = await http.post(server.graphql_url, content=chunks(BODY_BYTES), headers=headers)

    assert response.status_code == 413
    assert response.json() == REFUSAL


async def test_aiohttp_reads_the_413(server: ApiProcess) -> None:
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(server.graphql_url, data=b" " * BODY_BYTES, headers=JSON_TYPE) as response,
    ):
        assert response.status == 413
        assert await response.json() == REFUSAL


async def test_node_fetch_reads_the_413(server: ApiProcess) -> None:
    status, stdout, stderr = await run_node_script(
        "upload.mjs", server.graphql_url, str(BODY_BYTES // MB), timeout_s=CLIENT_TIMEOUT_S
    )

    assert status == 0, (stdout + stderr).decode()
    assert json.loads(stdout) == {"status": 413, "body": REFUSAL}


# Without `Expect:` curl sends the whole body first, as the other clients do; with its
# default `Expect: 100-continue` it waits for the answer before sending any of it.
@pytest.mark.parametrize("expect", [[], ["-H", "Expect:"]], ids=["100-continue", "no-expect"])
async def test_curl_reads_the_413(server: ApiProcess, tmp_path: Path, expect: list[str]) -> None:
    body = tmp_path / "body"
    with body.open("wb") as file:
        file.truncate(BODY_BYTES)
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
        *expect,
        "--data-binary",
        f"@{body}",
        server.graphql_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_S)

    assert process.returncode == 0, stderr.decode()
    answer, status = stdout.decode().rsplit("\n", 1)
    assert (status, json.loads(answer)) == ("413", REFUSAL)


# A body sent in chunks is read up to the limit (1 MiB) before it is refused; one
# with a Content-Length over it is refused before any of it is read.
@pytest.mark.parametrize(("framing", "held_kb"), [("content-length", 0), ("chunked", 10 * 1024)])
async def test_ten_uploads_at_once_get_413s_memory_stays_flat_and_others_are_served(
    server: ApiProcess, framing: str, held_kb: int
) -> None:
    headers = {**JSON_TYPE}
    if framing == "content-length":
        headers["Content-Length"] = str(BODY_BYTES)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as http:
        query = {"query": "{ __typename }"}
        assert (await http.post(server.graphql_url, json=query)).status_code == 200  # warm-up
        peak_before = server.hwm_kb()
        halfway = asyncio.Event()
        # The uploads pause halfway until the plain request is answered: it is
        # answered while all ten are being drained.
        uploads = [
            asyncio.ensure_future(
                http.post(
                    server.graphql_url,
                    content=chunks(BODY_BYTES, paused_halfway=halfway),
                    headers=headers,
                )
            )
            for _ in range(10)
        ]
        try:
            plain = await http.post(server.graphql_url, json=query)
        finally:
            halfway.set()
        responses = await asyncio.gather(*uploads)
    growth_kb = server.hwm_kb() - peak_before
    print(f"10 x 100 MB ({framing}) answered 413; the server's peak RSS grew {growth_kb} KB")

    assert plain.status_code == 200
    assert [response.status_code for response in responses] == [413] * 10
    assert growth_kb <= 10 * 1024 + held_kb


def test_a_client_that_stops_sending_is_let_go_after_the_linger_time(
    start_server: StartServer,
) -> None:
    server = start_server(LINGER_MAX_S="0.5")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % BODY_BYTES
        )
        sock.sendall(b" " * MB)  # then nothing more
        answer = b""
        while chunk := sock.recv(65536):  # the server closes once it stops lingering
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == REFUSAL


def test_a_body_declared_past_the_linger_bound_is_not_drained(
    start_server: StartServer,
) -> None:
    server = start_server(LINGER_MAX_BYTES=str(MB), LINGER_MAX_S=GENEROUS_LINGER_S)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % BODY_BYTES
        )
        answer = b""
        while chunk := sock.recv(65536):  # closed at once, with no wait for the body
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 413 ")
