"""The real API under uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import uvicorn

from gql.app import create_app
from gql.config.settings import Settings
from tests.support.lifecycle import Service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Tests start many exports and connections as one user; those about the
# per-user limits set their own.
NO_USER_LIMITS = {
    "max_active_exports_per_user": 100_000,
    "max_starts_per_minute_per_user": 100_000,
    "max_connections_per_user": 100_000,
}
# Tests poll the RunPod stand-in up to twenty times faster than production's
# interval, so its budget is scaled up the same way; those about the budget set
# RunPod's own numbers.
FAST_RUNPOD_BUDGET = {
    "runpod_run_rate": 100_000,
    "runpod_status_rate": 100_000,
    "runpod_cancel_rate": 100_000,
    "runpod_cancel_concurrency": 400,
}
TEST_DEFAULTS = {**NO_USER_LIMITS, **FAST_RUNPOD_BUDGET}


def sqlite_url(tmp_path: Path) -> str:
    """The database of a test's API under its tmp_path."""
    return f"sqlite:///{tmp_path / 'data' / 'export-gql.db'}"


def make_settings(**values: Any) -> Settings:
    """Settings from the given values only: the machine's environment is ignored.

    Jobs nobody watches are polled as often as watched ones unless a test says
    otherwise: most tests wait for a state through queries, not subscriptions."""
    values.setdefault("port", free_port())
    values.setdefault("poll_interval_s", 0.05)
    values.setdefault("poll_interval_unwatched_s", values["poll_interval_s"])
    return Settings.model_validate({**TEST_DEFAULTS, **values})


class RunningApp(Service):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        self.graphql_url = f"{self.url}/graphql"
        self.ws_url = f"ws://127.0.0.1:{settings.port}/graphql"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> Self:
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.settings.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
            ws_ping_interval=self.settings.ws_ping_interval_s,
            ws_ping_timeout=self.settings.ws_ping_timeout_s,
            ws_per_message_deflate=self.settings.ws_per_message_deflate,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None

    def restart(self) -> Self:
        self.stop()
        return self.start()


StartApi = Callable[..., RunningApp]
"""The `start_api` fixture: keyword arguments override the API's settings."""

StartLocal = Callable[..., RunningApp]
"""The `start_local` fixture: the API on its embedded local worker; keyword
arguments override its settings."""
