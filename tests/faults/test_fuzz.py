"""Generated queries and mutations against the real server in production mode.

Every answer is a well-formed GraphQL response: never an HTTP 500, never a stack
trace or SQL text, and an operation that was rejected changed nothing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from tests.faults.conftest import StartServer
from tests.support.api_process import ApiProcess
from tests.support.assets import seed_assets
from tests.support.tokens import JWT_SECRET, token_for

pytestmark = pytest.mark.faults

FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "10000"))
SDL = (Path(__file__).parents[2] / "schema.graphql").read_text()
LEAKS = (
    "Traceback",
    'File "',
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "sqlite",
    "asyncpg",
    "syntax error",
)

documents = st.one_of(
    from_schema(SDL, mode=Mode.POSITIVE),
    from_schema(SDL, mode=Mode.NEGATIVE),
)


@pytest.fixture
def server(start_server: StartServer) -> ApiProcess:
    return start_server(ENVIRONMENT="production", AUTH_JWT_SECRET=JWT_SECRET)


@pytest.fixture
def http(server: ApiProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token_for('fuzzer')}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def job_rows(server: ApiProcess) -> Iterator[sqlite3.Connection]:
    path = server.settings.database_url.removeprefix("sqlite:///")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield connection
    connection.close()


@pytest.mark.timeout(600)
async def test_generated_operations_never_fail_badly(
    server: ApiProcess, http: httpx.Client, job_rows: sqlite3.Connection
) -> None:
    # Something to find for documents that guess an id right.
    await seed_assets(server.settings, "fuzzer")
    seen: list[int] = []

    @settings(
        max_examples=FUZZ_CASES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(document=documents)
    def send(document: object) -> None:
        before = _count(job_rows)
        response = http.post("/graphql", json={"query": str(document)})
        seen.append(response.status_code)
        assert response.status_code != 500, response.text
        assert not any(leak in response.text for leak in LEAKS), response.text
        if _rejected(response):
            assert _count(job_rows) == before, response.text

    send()
    assert len(seen) >= FUZZ_CASES
    assert 500 not in seen


def _count(rows: sqlite3.Connection) -> int:
    return int(rows.execute("SELECT count(*) FROM export_jobs").fetchone()[0])


def _rejected(response: httpx.Response) -> bool:
    """The whole operation was refused, or every mutation in it answered userErrors."""
    try:
        body: Any = response.json()
    except ValueError:
        return True
    data = body.get("data") if isinstance(body, dict) else None
    if not data:
        return True
    payloads = [value for value in data.values() if isinstance(value, dict)]
    return bool(payloads) and all(payload.get("userErrors") for payload in payloads)
