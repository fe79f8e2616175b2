"""One attempt at delivering a body: signed, over a pooled HTTP client, redirects
not followed, the whole exchange within the timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from gql.webhooks.retry import retry_after_seconds
from gql.webhooks.signing import Signer

USER_AGENT = "export-gql-webhooks"


@dataclass(frozen=True, kw_only=True)
class Attempt:
    status: int | None
    """The receiver's HTTP status; None when it never answered."""
    error: str | None
    """Why it failed, one line (None on success)."""
    retry_after_s: float | None = None
    seconds: float = 0.0

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410: the receiver asks to be sent nothing more."""
        return self.status == 410

    @property
    def outcome(self) -> str:
        """The metrics label of the attempt."""
        if self.status is None:
            return "timeout" if self.error == "timed out" else "unreachable"
        if self.delivered:
            return "ok"
        if self.gone:
            return "gone"
        return {3: "redirect", 4: "rejected"}.get(self.status // 100, "server_error")


class WebhookSender:
    def __init__(self, url: str, signer: Signer, *, timeout_s: float, max_connections: int) -> None:
        self.url = url
        self._signer = signer
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"user-agent": USER_AGENT},
        )

    async def send(self, webhook_id: str, body: str) -> Attempt:
        headers = self._signer.headers(webhook_id, body)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(self.url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(status=None, error="timed out", seconds=time.monotonic() - started)
        except httpx.HTTPError as error:
            cause = str(error) or type(error).__name__
            return Attempt(status=None, error=cause, seconds=time.monotonic() - started)
        seconds = time.monotonic() - started
        if 200 <= response.status_code < 300:
            return Attempt(status=response.status_code, error=None, seconds=seconds)
        return Attempt(
            status=response.status_code,
            error=f"HTTP {response.status_code}",
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
            seconds=seconds,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
