"""One attempt at delivering a body: signed, over a pooled HTTP client (aiohttp,
as the RunPod client, with a pool of its own so a slow receiver never takes
RunPod's connections), redirects not followed, the whole exchange within the
timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

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
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None

    async def send(self, webhook_id: str, body: str) -> Attempt:
        headers = self._signer.headers(webhook_id, body)
        started = time.monotonic()
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session().post(
                    self.url, data=body.encode(), headers=headers, allow_redirects=False
                ) as response,
            ):
                await response.read()
        except TimeoutError:
            return Attempt(status=None, error="timed out", seconds=time.monotonic() - started)
        except (aiohttp.ClientError, OSError) as error:
            cause = str(error) or type(error).__name__
            return Attempt(status=None, error=cause, seconds=time.monotonic() - started)
        seconds = time.monotonic() - started
        if 200 <= response.status < 300:
            return Attempt(status=response.status, error=None, seconds=seconds)
        return Attempt(
            status=response.status,
            error=f"HTTP {response.status}",
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
            seconds=seconds,
        )

    def _session(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop.
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers={"user-agent": USER_AGENT},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
