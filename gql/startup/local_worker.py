"""The embedded local worker: a RunPod-compatible endpoint inside `serve`.

This is the only place the API touches the `worker` package, and it imports it
lazily so an API deployed against real RunPod never loads PyAV.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from gql.config.settings import Settings

if TYPE_CHECKING:
    from worker.local_server import LocalEndpoint


class EmbeddedWorker:
    """A local endpoint on a free loopback port, guarded by a per-process API key."""

    def __init__(self, settings: Settings) -> None:
        from worker.local_server import LocalEndpoint

        self.api_key = secrets.token_urlsafe(32)
        self._endpoint: LocalEndpoint = LocalEndpoint(
            storage_config=settings.storage,
            concurrency=settings.local_worker_concurrency,
            api_key=self.api_key,
            execution_timeout_s=settings.local_worker_timeout_s,
            handler=settings.local_worker_handler,
        )

    @property
    def url(self) -> str:
        return self._endpoint.url

    async def start(self) -> None:
        await self._endpoint.start()

    async def stop(self) -> None:
        await self._endpoint.stop()
