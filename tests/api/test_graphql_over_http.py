"""GraphQL over HTTP as its specification says: graphql-http's audit suite under Node,
and the media type each `Accept` header gets, with the status codes that go with it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app_server import RunningApp, sqlite_url
from tests.support.node import run_node_script


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Nothing here reaches the database past a lookup: SQLite is enough."""
    return sqlite_url(tmp_path)


@pytest.fixture
async def http(api: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        yield client


NEW = "application/graphql-response+json"
JSON = "application/json"
AUDIT_TIMEOUT_S = 60.0


async def test_graphql_http_server_audits_all_pass(api: RunningApp) -> None:
    status, stdout, stderr = await run_node_script(
        "audit.mjs", api.graphql_url, timeout_s=AUDIT_TIMEOUT_S
    )
    assert status == 0, stderr.decode()
    report = json.loads(stdout)

    assert report["failures"] == []
    assert (report["ok"], report["notice"], report["warn"], report["error"]) == (61, 0, 0, 0)


# Accept header → the media type of the answer (None: 406).
NEGOTIATION = [
    (None, JSON),
    ("", JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    (JSON, JSON),
    (f"{JSON}; charset=utf-8", JSON),
    (NEW, NEW),
    (f"{NEW}, {JSON}", NEW),
    (f"{JSON}, {NEW}", JSON),  # equal q: the first listed
    (f"{NEW};q=0.5, {JSON}", JSON),
    (f"{JSON};q=0.9, {NEW}", NEW),  # Apollo Client 4
    (f"{NEW}, {JSON};q=0.9", NEW),
    (f"{NEW}, */*;q=0.1", NEW),
    (f"*/*, {NEW}", NEW),  # the exact range is more specific than */*
    (f"{NEW};q=0, */*", JSON),
    (f"{JSON};q=0, {NEW};q=0.1", NEW),
    (f"{NEW}, application/graphql+json, {JSON}, text/event-stream, multipart/mixed", NEW),  # urql
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),  # a browser
    ("text/plain", None),
    ("application/xml", None),
    (f"{JSON};q=0, {NEW};q=0", None),
    ("*/*;q=0", None),
]


def headers_for(accept: str | None) -> dict[str, str]:
    return {} if accept is None else {"Accept": accept}


@pytest.mark.parametrize(("accept", "answered_in"), NEGOTIATION)
async def test_the_preferred_media_type_answers(
    http: httpx.AsyncClient, accept: str | None, answered_in: str | None
) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers=headers_for(accept)
    )

    if answered_in is None:
        assert response.status_code == 406
        return
    assert response.status_code == 200
    assert response.headers["content-type"] == answered_in
    assert response.json() == {"data": {"__typename": "Query"}}


# Requests that never reach execution, sent as JSON bodies.
REQUEST_ERRORS = {
    "document parsing": {"query": "{"},
    "document validation": {"query": "{ nope }"},
    "variable coercion": {"query": "query ($id: ID!) { exportJob(id: $id) { id } }"},
}


@pytest.mark.parametrize("failure", REQUEST_ERRORS)
async def test_request_errors_are_400s_without_data_in_the_new_media_type(
    http: httpx.AsyncClient, failure: str
) -> None:
    response = await http.post("/graphql", json=REQUEST_ERRORS[failure], headers={"Accept": NEW})

    assert (response.status_code, response.headers["content-type"]) == (400, NEW)
    body = response.json()
    assert "data" not in body
    assert body["errors"] and all("path" not in error for error in body["errors"])


@pytest.mark.parametrize("failure", REQUEST_ERRORS)
@pytest.mark.parametrize("accept", [None, JSON, f"{JSON}, {NEW}"])
async def test_request_errors_keep_their_200_in_application_json(
    http: httpx.AsyncClient, failure: str, accept: str | None
) -> None:
    response = await http.post(
        "/graphql", json=REQUEST_ERRORS[failure], headers=headers_for(accept)
    )

    assert (response.status_code, response.headers["content-type"]) == (200, JSON)
    body = response.json()
    assert body["data"] is None
    assert body["errors"]


async def test_a_body_that_is_no_json_is_a_400_in_either_media_type(
    http: httpx.AsyncClient,
) -> None:
    content_type = {"Content-Type": JSON}
    new = await http.post(
        "/graphql", content=b'{ "not a JSON', headers={"Accept": NEW, **content_type}
    )
    new_bare = await http.post("/graphql", content=b"null", headers={"Accept": NEW, **content_type})
    old = await http.post(
        "/graphql", content=b'{ "not a JSON', headers={"Accept": JSON, **content_type}
    )

    for response in (new, new_bare):
        assert (response.status_code, response.headers["content-type"]) == (400, NEW)
        assert response.json() == {"errors": [{"message": "Unable to parse request body as JSON"}]}
    assert (old.status_code, old.text) == (400, "Unable to parse request body as JSON")


async def test_a_field_error_that_nulls_data_is_still_a_200(http: httpx.AsyncClient) -> None:
    query = "{ exportJobs(first: 1000) { edges { cursor } } }"
    response = await http.post("/graphql", json={"query": query}, headers={"Accept": NEW})

    assert (response.status_code, response.headers["content-type"]) == (200, NEW)
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert [error["path"] for error in body["errors"]] == [["exportJobs"]]


@pytest.mark.parametrize("accept", [None, JSON, NEW, "text/event-stream"])
async def test_a_mutation_over_get_is_a_405(http: httpx.AsyncClient, accept: str | None) -> None:
    query = 'mutation { cancelExport(id: "1") { userErrors { code } } }'
    response = await http.get("/graphql", params={"query": query}, headers=headers_for(accept))

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_a_query_over_get_answers_in_the_preferred_media_type(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"Accept": NEW}
    )

    assert (response.status_code, response.headers["content-type"]) == (200, NEW)
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_graphiql_is_still_served_to_browsers(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_a_subscription_that_cannot_stream_is_a_400_in_the_new_media_type(
    http: httpx.AsyncClient,
) -> None:
    query = {"query": "subscription { exportJobs { id } }"}
    new = await http.post("/graphql", json=query, headers={"Accept": NEW})
    old = await http.post("/graphql", json=query, headers={"Accept": JSON})

    assert (new.status_code, new.headers["content-type"]) == (400, NEW)
    assert [error["extensions"]["code"] for error in new.json()["errors"]] == ["STREAMING_REQUIRED"]
    assert "data" not in new.json()
    assert (old.status_code, old.headers["content-type"]) == (200, JSON)
    assert old.json()["data"] is None
    assert old.json()["errors"][0]["extensions"]["code"] == "STREAMING_REQUIRED"
