"""Tokens from an identity provider (RS256/ES256 against its JWKS), over every transport."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.servers.jwks import AUDIENCE, ISSUER, IdentityProvider, SigningKey, claims_for
from tests.support.app_server import RunningApp, StartApi, sqlite_url
from tests.support.assets import seed_assets
from tests.support.exports import start_overlay
from tests.support.graphql import PROTOCOLS, GraphQLHTTP, GraphQLWebSocket, SubscriptionError
from tests.support.http_streams import HTTPSubscription
from tests.support.tokens import JWT_SECRET, token_for

Transport = Literal["http", "sse", "graphql-transport-ws", "graphql-ws"]
TRANSPORTS: tuple[Transport, ...] = ("http", "sse", *PROTOCOLS)
# Authenticated callers are told the job is not theirs; others never get that far.
PROBE = 'query { exportJob(id: "missing") { id } }'
PROBE_SUBSCRIPTION = 'subscription { exportJob(id: "missing") { id } }'


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Authentication does not touch the database: SQLite is enough."""
    return sqlite_url(tmp_path)


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider("RS256").start()
    yield idp
    idp.stop()


@pytest.fixture
def api(start_api: StartApi, provider: IdentityProvider) -> RunningApp:
    return start_api(
        auth_jwt_secret=JWT_SECRET,
        auth_jwks_url=provider.jwks_url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )


async def accepted(api: RunningApp, token: str, transport: Transport) -> bool:
    """Whether the server lets the token's bearer in over `transport`."""
    if transport in PROTOCOLS:
        try:
            socket = await GraphQLWebSocket.connect(
                api.ws_url,
                transport,
                {"authorization": f"Bearer {token}"},  # type: ignore[arg-type]
            )
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403
            return False
        except SubscriptionError:
            assert transport == "graphql-ws"  # the legacy protocol's `connection_error`
            return False
        await socket.close()
        return True
    async with httpx.AsyncClient(timeout=10) as http:
        if transport == "http":
            response = await http.post(
                api.graphql_url, json={"query": PROBE}, headers={"Authorization": f"Bearer {token}"}
            )
        else:
            stream = HTTPSubscription(http, api.graphql_url, "sse", PROBE_SUBSCRIPTION, token=token)
            response = await stream.open()
            await stream.close()
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def accepted_everywhere(api: RunningApp, token: str) -> list[bool]:
    return [await accepted(api, token, transport) for transport in TRANSPORTS]


ALL = [True] * len(TRANSPORTS)
NONE = [False] * len(TRANSPORTS)


async def test_provider_tokens_work_and_a_rotated_key_is_picked_up_at_once(
    api: RunningApp, provider: IdentityProvider
) -> None:
    before = provider.token("alice")
    assert await accepted_everywhere(api, before) == ALL
    fetches = provider.fetches

    provider.rotate()
    after = provider.token("alice")

    assert await accepted_everywhere(api, after) == ALL
    assert provider.fetches == fetches + 1  # one refetch, for the unknown key id
    assert await accepted_everywhere(api, before) == NONE  # its key is no longer published
    assert await accepted_everywhere(api, token_for("alice")) == ALL  # our own HS256 still works


def _forged(provider: IdentityProvider) -> str:
    impostor = SigningKey("RS256")
    impostor.kid = provider.key.kid  # claims the provider's key id
    return impostor.sign(claims_for("alice"))


def _unsigned(provider: IdentityProvider) -> str:
    return jwt.encode(
        claims_for("alice"), None, algorithm="none", headers={"kid": provider.key.kid}
    )


def _hs256_with_the_public_key(provider: IdentityProvider) -> str:
    """The algorithm-confusion attack: the provider's public key as an HMAC secret
    (signed by hand: PyJWT refuses to make such a token)."""
    public = provider.key.private.public_key().public_bytes(  # type: ignore[union-attr]
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    claims = {**claims_for("alice"), "exp": int(datetime.now(UTC).timestamp()) + 600}
    claims.pop("iat")
    signing_input = ".".join(
        _b64(json.dumps(part).encode()) for part in ({"alg": "HS256", "typ": "JWT"}, claims)
    )
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


BAD_TOKENS: dict[str, Any] = {
    "bad signature": _forged,
    "wrong issuer": lambda idp: idp.token("alice", iss="https://elsewhere.example/"),
    "wrong audience": lambda idp: idp.token("alice", aud="another-api"),
    "expired": lambda idp: idp.token("alice", exp=datetime.now(UTC) - timedelta(minutes=5)),
    "no expiry": lambda idp: idp.token("alice", exp=None),
    "no subject": lambda idp: idp.token("alice", sub=None),
    "alg none": _unsigned,
    "HS256 with the public key": _hs256_with_the_public_key,
    "unknown key id": lambda idp: SigningKey("RS256").sign(claims_for("alice")),
}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_bad_tokens_are_refused_over_every_transport(
    api: RunningApp, provider: IdentityProvider, case: str
) -> None:
    token = BAD_TOKENS[case](provider)

    assert await accepted_everywhere(api, token) == NONE


async def test_hs256_tokens_need_an_expiry_too(api: RunningApp) -> None:
    token = jwt.encode({"sub": "alice"}, JWT_SECRET, algorithm="HS256")

    assert await accepted_everywhere(api, token) == NONE


async def test_es256_keys_and_a_custom_user_claim(start_api: StartApi) -> None:
    provider = IdentityProvider("ES256").start()
    try:
        api = start_api(auth_jwks_url=provider.jwks_url, auth_user_claim="user_id")
        assets = await seed_assets(api.settings, "alice")
        token = provider.token("someone-else", user_id="alice")
        alice = GraphQLHTTP(api.graphql_url, token)
        job_id = await start_overlay(alice, assets.project_id)
        page = await alice.execute("{ exportJobs { edges { node { id } } } }")
        await alice.aclose()

        assert [edge["node"]["id"] for edge in page["exportJobs"]["edges"]] == [job_id]
        assert await accepted_everywhere(api, provider.token("alice")) == NONE  # no user_id
    finally:
        provider.stop()
