"""Query depth, alias and token limits, also for documents served from the caches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.app_server import RunningApp, StartApi
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, SubscriptionError

# Three levels deep; the API under test allows two (the default, 10, is deeper
# than any path through this schema: introspection fields are not counted).
TOO_DEEP = "{ exportJobs { edges { node { id } } } }"
DEEP_ENOUGH = "{ exportJobs { pageInfo { hasNextPage } } }"
TOO_MANY_ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }"
ENOUGH_ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(15)) + " }"
TOO_MANY_TOKENS = "{ " + " ".join(["__typename"] * 2100) + " }"


@pytest.fixture
async def client(start_api: StartApi) -> AsyncIterator[GraphQLHTTP]:
    api = start_api(max_query_depth=2)
    client = GraphQLHTTP(api.graphql_url)
    yield client
    await client.aclose()


async def errors_of(client: GraphQLHTTP, query: str) -> list[str]:
    response = await client.post(query)
    assert response.status_code == 200, response.text
    return [error["message"] for error in response.json().get("errors", [])]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (TOO_DEEP, "exceeds maximum operation depth of 2"),
        (TOO_MANY_ALIASES, "16 aliases found. Allowed: 15"),
        (TOO_MANY_TOKENS, "Document contains more than 2000 tokens. Parsing aborted."),
    ],
    ids=["depth", "aliases", "tokens"],
)
async def test_documents_over_a_limit_are_refused_every_time(
    client: GraphQLHTTP, query: str, message: str
) -> None:
    # The second time, the parse and validation caches answer: the limit still holds.
    for _ in range(2):
        errors = await errors_of(client, query)
        assert len(errors) == 1
        assert message in errors[0]


@pytest.mark.parametrize("query", [DEEP_ENOUGH, ENOUGH_ALIASES], ids=["depth", "aliases"])
async def test_documents_at_a_limit_run(client: GraphQLHTTP, query: str) -> None:
    for _ in range(2):
        assert await errors_of(client, query) == []


async def test_subscriptions_are_held_to_the_same_limits(api: RunningApp) -> None:
    socket = await GraphQLWebSocket.connect(api.ws_url)
    aliases = " ".join(f"a{i}: id" for i in range(16))
    document = f'subscription {{ exportJob(id: "1") {{ {aliases} }} }}'

    with pytest.raises(SubscriptionError, match="16 aliases found"):
        await anext(socket.subscribe(document))
    await socket.close()
