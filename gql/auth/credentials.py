"""Where a request's credentials are: the `Authorization` header over HTTP, the
`connection_init` payload over a websocket.

Websocket clients send the token as Apollo's and urql's `connectionParams`:
`{"authorization": "Bearer <token>"}`, `{"Authorization": ...}`, `{"token": ...}` or
`{"headers": {"Authorization": ...}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gql.auth.tokens import Authenticator


def authorization_from(params: Mapping[str, Any]) -> object:
    """The `Authorization` value a `connection_init` payload carries, if any."""
    for key in ("authorization", "Authorization"):
        if key in params:
            return params[key]
    if "token" in params:
        token = params["token"]
        return f"Bearer {token}" if isinstance(token, str) else token
    headers = params.get("headers")
    if isinstance(headers, Mapping):
        return headers.get("Authorization") or headers.get("authorization")
    return None


async def connection_user(authenticator: Authenticator, params: object) -> str | None:
    """The user a websocket's `connection_init` payload authenticates; raises AuthError
    for a bad token."""
    payload = params if isinstance(params, Mapping) else {}
    return await authenticator.user_from_authorization(authorization_from(payload))
