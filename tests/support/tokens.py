from __future__ import annotations

from gql.auth.tokens import Authenticator

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"


def token_for(user_id: str) -> str:
    return Authenticator(JWT_SECRET).issue(user_id)
