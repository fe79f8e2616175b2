"""Generated requests for every query and mutation, against the real server in production mode.

FUZZ_CASES requests (10 000 unless set; see `fuzz_inputs` for what they are) go
one after another over one keep-alive connection. Every answer is well formed:
never a 5xx, never a stack trace or SQL text, never a masked unexpected error;
a request that started no job left the data exactly as it was (every job write
bumps the job's version), and nobody else's job was reached.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import httpx
import pytest

from tests.faults.fuzz_inputs import JSON, FuzzRequest, draw_bucket, planned
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess, read_only
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import start_overlay
from tests.support.graphql import GraphQLHTTP
from tests.support.tokens import JWT_SECRET, token_for

pytestmark = pytest.mark.faults

FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "10000"))
LEAKS = ("Traceback", 'File "', "SELECT", "INSERT", "sqlite", "asyncpg", "syntax error")
MASKED = "Unexpected error."


@pytest.fixture(scope="module")
def server(
    runpod_process: RunPodServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    env = {
        "ENVIRONMENT": "production",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "DATA_DIR": str(tmp_path_factory.mktemp("fuzz")),
        "RUNPOD_ENDPOINT_URL": runpod_process.url,
        # The fake RunPod is manual: a submitted job then stays queued, and a poll
        # that finds nothing new writes nothing.
        "POLL_INTERVAL_S": "60",
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
def rows(server: ApiProcess) -> Iterator[sqlite3.Connection]:
    connection = read_only(server)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
async def assets(server: ApiProcess) -> SeededAssets:
    return await seed_assets(server.settings, "fuzzer")


@pytest.fixture(scope="module")
async def strangers_job(server: ApiProcess, rows: sqlite3.Connection) -> str:
    """Another user's job: whatever the fuzzer sends must miss it."""
    stranger = await seed_assets(server.settings, "stranger")
    client = GraphQLHTTP(server.graphql_url, token_for("stranger"))
    job_id = await start_overlay(client, stranger.project_id)
    await client.aclose()
    wait_until(lambda: submitted(rows, [job_id]))
    return job_id


def data_version(rows: sqlite3.Connection) -> tuple[int | None, ...]:
    """Moves on any write to the data (every job write bumps its version); the
    server's own bookkeeping (its heartbeat, lease renewals) leaves it alone."""
    return tuple(
        rows.execute(
            "SELECT (SELECT count(*) FROM export_jobs), (SELECT sum(version) FROM export_jobs),"
            " (SELECT count(*) FROM projects), (SELECT count(*) FROM games),"
            " (SELECT count(*) FROM working_videos)"
        ).fetchone()
    )


def started_jobs(response: httpx.Response) -> list[str]:
    """Ids of the jobs mutations in this answer returned without userErrors."""
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return []
    payloads = data.values() if isinstance(data, dict) else []
    return [
        payload["job"]["id"]
        for payload in payloads
        if isinstance(payload, dict)
        and not payload.get("userErrors")
        and isinstance(payload.get("job"), dict)
        and "id" in payload["job"]
    ]


def submitted(rows: sqlite3.Connection, job_ids: list[str]) -> bool:
    """The tracker is done writing these jobs: RunPod has them, queued for good."""
    marks = ",".join("?" * len(set(job_ids)))
    query = f"SELECT count(*) FROM export_jobs WHERE id IN ({marks}) AND runpod_job_id IS NOT NULL"
    return bool(rows.execute(query, list(set(job_ids))).fetchone()[0] == len(set(job_ids)))


def wait_until(probe: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "the tracker did not submit a started job"
        time.sleep(0.005)


def send(http: httpx.Client, request: FuzzRequest) -> httpx.Response:
    if request.method == "GET":
        return http.get("/graphql", params=list(request.params))
    return http.post(
        "/graphql", content=request.body, headers={"content-type": request.content_type}
    )


def check(request: FuzzRequest, response: httpx.Response) -> None:
    """A well-formed answer that gives nothing of the server away."""
    text = response.text
    assert response.status_code < 500, f"{request}\n{text}"
    leaked = [leak for leak in LEAKS if leak in text and leak not in str(request)]
    assert leaked == [], f"{request}\n{text}"
    assert MASKED not in text, f"{request}\n{text}"


@pytest.mark.timeout(600)
def test_generated_requests_never_fail_badly_and_rejected_ones_change_nothing(
    server: ApiProcess, rows: sqlite3.Connection, assets: SeededAssets, strangers_job: str
) -> None:
    arguments = (FUZZ_CASES, assets.project_id, assets.game_id, strangers_job)
    plan = planned(*arguments)
    headers = {"Authorization": f"Bearer {token_for('fuzzer')}"}
    seen: Counter[str] = Counter()
    codes: Counter[int] = Counter()
    started: set[str] = set()
    began = time.monotonic()
    # Another process draws the next cases while these are sent: no GIL shared.
    generator = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    buckets = [generator.submit(draw_bucket, *arguments, i) for i in range(len(plan))]
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            for (label, _, _), bucket in zip(plan, buckets, strict=True):
                for request in bucket.result():
                    before = data_version(rows)
                    response = send(http, request)
                    seen[label] += 1
                    codes[response.status_code] += 1
                    check(request, response)
                    if job_ids := started_jobs(response):
                        started.update(job_ids)
                        wait_until(lambda job_ids=job_ids: submitted(rows, job_ids))
                    else:
                        changed = data_version(rows) != before
                        assert not changed, f"the database changed: {request}\n{response.text}"
    finally:
        generator.shutdown(cancel_futures=True)
    elapsed = time.monotonic() - began

    print(
        f"{sum(seen.values())} cases in {elapsed:.1f} s; {len(started)} jobs started;"
        f" answers {dict(codes)}"
    )
    assert sum(seen.values()) == FUZZ_CASES
    assert set(seen) == {label for label, _, _ in plan}
    owners = Counter(user for (user,) in rows.execute("SELECT user_id FROM export_jobs"))
    assert owners == Counter({"fuzzer": len(started), "stranger": 1})
    strangers = rows.execute("SELECT status FROM export_jobs WHERE id = ?", [strangers_job])
    assert strangers.fetchall() == [("queued",)]
    assert "Exception in ASGI application" not in server.log()


@pytest.mark.parametrize(
    "body", [b"null", b"0", b"-1.5e300", b'"query"', b"true", b"\xb3", b"{\xff}", b""]
)
def test_a_json_body_that_is_no_object_is_a_bad_request(server: ApiProcess, body: bytes) -> None:
    headers = {"Authorization": f"Bearer {token_for('fuzzer')}", "content-type": JSON}
    response = httpx.post(server.graphql_url, content=body, headers=headers)

    assert (response.status_code, response.text) == (400, "Unable to parse request body as JSON")
