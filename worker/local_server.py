"""Serving the local endpoint (`worker.local_endpoint`) with uvicorn.

- Standalone, blocking: `serve_local_endpoint(host, port, ...)` (the
  `export-gql worker` command).
- Inside another asyncio application (the API's lifespan): `LocalEndpoint(...)`,
  `await start()` / `await stop()` (or `async with`), then point a RunPod
  client at `.url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from clients.storage import StorageConfig
from worker.local_endpoint import create_local_endpoint
from worker.pool import DEFAULT_HANDLER


class LocalEndpoint:
    """The endpoint served by uvicorn as a task of the caller's event loop.

    `port=0` picks a free port; `.url` is known once `start()` returns. Signals
    are left to the host application (its own server handles Ctrl-C).
    """

    def __init__(
        self,
        *,
        storage_config: StorageConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        concurrency: int | None = None,
        api_key: str | None = None,
        execution_timeout_s: float = 600.0,
        endpoint_id: str = "local",
        handler: str = DEFAULT_HANDLER,
    ) -> None:
        self._host = host
        self._port = port
        self._endpoint_id = endpoint_id
        self.app = create_local_endpoint(
            storage_config=storage_config,
            concurrency=concurrency,
            api_key=api_key,
            execution_timeout_s=execution_timeout_s,
            endpoint_id=endpoint_id,
            handler=handler,
        )
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Base URL of the endpoint, e.g. http://127.0.0.1:8123/v2/local."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/v2/{self._endpoint_id}"

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the local endpoint is already running")
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=5
        )
        server = _EmbeddedServer(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="local-endpoint")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            ready.cancel()
            sock.close()
            serving.result()  # raises the startup error, if there was one
            raise RuntimeError("the local endpoint stopped during startup")
        self._server, self._task = server, serving

    async def stop(self) -> None:
        """Stop serving; running handlers are killed and queued jobs dropped."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._server = None
            self._task = None

    async def __aenter__(self) -> LocalEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def serve_local_endpoint(
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    storage_config: StorageConfig | None = None,
    concurrency: int | None = None,
    api_key: str | None = None,
    execution_timeout_s: float = 600.0,
    endpoint_id: str = "local",
    handler: str = DEFAULT_HANDLER,
) -> None:
    """Serve the endpoint until interrupted (storage from the environment by default)."""
    app = create_local_endpoint(
        storage_config=storage_config or StorageConfig.from_env(),
        concurrency=concurrency,
        api_key=api_key,
        execution_timeout_s=execution_timeout_s,
        endpoint_id=endpoint_id,
        handler=handler,
    )
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=5)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that reports readiness and leaves signal handling to the host."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit as error:
            # uvicorn exits the process when startup fails; the host must survive that.
            raise RuntimeError("the local endpoint failed to start") from error
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
