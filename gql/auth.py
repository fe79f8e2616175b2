"""Who is calling: HS256 JWT bearer tokens whose `sub` is the user id.

With no secret configured (the embedded default, bound to 127.0.0.1) there is
one user, `local`, and no token is needed.
"""

from __future__ import annotations

from datetime import timedelta

import jwt

from gql.jobs.models import utcnow

LOCAL_USER = "local"
ALGORITHM = "HS256"
MAX_USER_ID = 200


class AuthError(Exception):
    """The bearer token is missing, malformed, expired or not signed by us."""


class Authenticator:
    def __init__(self, secret: str | None) -> None:
        self._secret = secret

    @property
    def required(self) -> bool:
        return self._secret is not None

    def user_from_authorization(self, header: object) -> str | None:
        """The user of an `Authorization: Bearer …` value; None when absent."""
        if self._secret is None:
            return LOCAL_USER
        if header is None or header == "":
            return None
        if not isinstance(header, str):
            raise AuthError("The authorization value must be a string")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Use 'Authorization: Bearer <token>'")
        return self.user_from_token(token.strip())

    def user_from_token(self, token: str) -> str:
        if self._secret is None:
            return LOCAL_USER
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub"]}
            )
        except jwt.PyJWTError as error:
            raise AuthError(f"Invalid token: {error}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_USER_ID:
            raise AuthError("Invalid token: bad subject")
        return subject

    def issue(self, user_id: str, *, ttl: timedelta = timedelta(days=30)) -> str:
        if self._secret is None:
            raise AuthError("AUTH_JWT_SECRET is not set; every caller is the local user")
        now = utcnow()
        claims = {"sub": user_id, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)
