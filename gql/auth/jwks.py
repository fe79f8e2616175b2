"""An identity provider's signing keys, read from its JWKS URL.

Keys are cached for `max_age_s`. A token signed with a key id the cache does
not know triggers a refetch, so a provider's key rotation is picked up at once;
refetches are spaced by at least `min_refetch_s` (callers wait for the next one
rather than each hitting the provider), so tokens with made-up key ids cannot
flood it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import jwt

logger = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 5.0


class JWKSUnavailable(Exception):
    """The key set could not be fetched or read."""


class JWKSKeys:
    def __init__(
        self,
        url: str,
        *,
        max_age_s: float = 600.0,
        min_refetch_s: float = 1.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self._max_age_s = max_age_s
        self._min_refetch_s = min_refetch_s
        self._http = http or httpx.AsyncClient(timeout=FETCH_TIMEOUT_S)
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._fetching = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The signing key `kid` names (or the only key, for tokens without one); None
        when the provider has no such key. Raises JWKSUnavailable when no keys can be had."""
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._max_age_s
        if stale or self._find(kid) is None:
            await self._refresh(requested_at=now)
        return self._find(kid)

    async def fetch_now(self) -> int:
        """Read the key set at once (`export-gql doctor`); returns how many signing
        keys it holds. Raises JWKSUnavailable."""
        await self._refresh(requested_at=time.monotonic())
        return len(self._keys)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self, *, requested_at: float) -> None:
        async with self._fetching:
            if self._fetched_at is not None and self._fetched_at >= requested_at:
                return  # fetched while this caller waited for the lock
            if self._fetched_at is not None:
                wait = self._fetched_at + self._min_refetch_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                self._keys = await self._fetch()
            finally:
                # Failed attempts count too: an unreachable provider is retried
                # no more often than a reachable one.
                self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        try:
            response = await self._http.get(self.url)
            response.raise_for_status()
            key_set = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
            logger.warning(
                "could not read the JWKS",
                extra={"action": "jwks_fetch_failed", "url": self.url, "error": repr(error)},
            )
            if self._keys:
                return self._keys  # keep verifying with the keys we have
            raise JWKSUnavailable(str(error)) from None
        keys = {key.key_id: key for key in key_set.keys if key.public_key_use in (None, "sig")}
        logger.info("JWKS fetched", extra={"action": "jwks_fetched", "keys": len(keys)})
        return keys
