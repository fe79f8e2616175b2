"""Who is calling: JWT bearer tokens, from our own secret or an identity provider.

- HS256 tokens signed with `AUTH_JWT_SECRET` (what `export-gql token` issues).
- RS256/ES256 tokens from an identity provider (Auth0, Clerk, Supabase,
  Cognito, Keycloak…), verified against its `AUTH_JWKS_URL`, with `iss` and `aud`
  checked against `AUTH_ISSUER` and `AUTH_AUDIENCE` when set.

Either way `exp` is required and the user id is the `AUTH_USER_CLAIM` claim
(default `sub`). Any other algorithm, `none` included, is refused. With neither
a secret nor a JWKS URL (the embedded default, bound to 127.0.0.1) there is one
user, `local`, and no token is needed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt

from gql.auth.jwks import JWKSKeys, JWKSUnavailable
from gql.clock import utcnow
from gql.config.settings import Settings

LOCAL_USER = "local"
ALGORITHM = "HS256"
PROVIDER_ALGORITHMS = frozenset({"RS256", "ES256"})
MAX_USER_ID = 200


class AuthError(Exception):
    """The bearer token is missing, malformed, expired or not signed by a trusted key."""


class Authenticator:
    def __init__(
        self,
        secret: str | None = None,
        *,
        jwks: JWKSKeys | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        user_claim: str = "sub",
    ) -> None:
        self._secret = secret
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._user_claim = user_claim

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        jwks = JWKSKeys(settings.auth_jwks_url) if settings.auth_jwks_url else None
        return cls(
            settings.auth_jwt_secret,
            jwks=jwks,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            user_claim=settings.auth_user_claim,
        )

    @property
    def required(self) -> bool:
        return self._secret is not None or self._jwks is not None

    async def user_from_authorization(self, header: object) -> str | None:
        """The user of an `Authorization: Bearer …` value; None when absent."""
        if not self.required:
            return LOCAL_USER
        if header is None or header == "":
            return None
        if not isinstance(header, str):
            raise AuthError("The authorization value must be a string")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Use 'Authorization: Bearer <token>'")
        return await self.user_from_token(token.strip())

    async def user_from_token(self, token: str) -> str:
        if not self.required:
            return LOCAL_USER
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthError(f"Invalid token: {error}") from None
        algorithm = header.get("alg")
        if algorithm == ALGORITHM and self._secret is not None:
            claims = self._decode(token, self._secret, algorithm)
        elif algorithm in PROVIDER_ALGORITHMS and self._jwks is not None:
            claims = self._decode(token, await self._provider_key(header), algorithm, checks=True)
        else:
            raise AuthError(f"Invalid token: the algorithm {algorithm!r} is not accepted")
        user_id = claims[self._user_claim]
        if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID:
            raise AuthError(f"Invalid token: bad {self._user_claim} claim")
        return user_id

    def issue(self, user_id: str, *, ttl: timedelta = timedelta(days=30)) -> str:
        if self._secret is None:
            raise AuthError("AUTH_JWT_SECRET is not set: there is no key to sign tokens with")
        now = utcnow()
        claims = {"sub": user_id, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    async def _provider_key(self, header: dict[str, Any]) -> jwt.PyJWK:
        assert self._jwks is not None
        kid = header.get("kid")
        try:
            key = await self._jwks.key(kid if isinstance(kid, str) else None)
        except JWKSUnavailable:
            raise AuthError("The identity provider's signing keys are unavailable") from None
        if key is None:
            raise AuthError("Invalid token: unknown signing key")
        if key.algorithm_name != header["alg"]:
            raise AuthError("Invalid token: the signing key is for another algorithm")
        return key

    def _decode(
        self, token: str, key: str | jwt.PyJWK, algorithm: str, *, checks: bool = False
    ) -> dict[str, Any]:
        """Verified claims; `checks` adds the provider's issuer and audience."""
        issuer = self._issuer if checks else None
        audience = self._audience if checks else None
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=issuer,
                audience=audience,
                options={
                    "require": ["exp", self._user_claim],
                    "verify_aud": audience is not None,
                },
            )
        except jwt.PyJWTError as error:
            raise AuthError(f"Invalid token: {error}") from None
