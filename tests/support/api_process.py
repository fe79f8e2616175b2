"""The API as a real `export-gql serve` process, for tests that kill or starve it."""

from __future__ import annotations

import contextlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import httpx

from gql.config.settings import Settings
from tests.support.app_server import TEST_DEFAULTS, free_port
from tests.support.cli import isolated_environ
from tests.support.lifecycle import Service

PROJECT_ROOT = Path(__file__).resolve().parents[2]


TEST_DEFAULTS_ENV = {name.upper(): str(value) for name, value in TEST_DEFAULTS.items()}


def with_test_defaults(env: dict[str, str]) -> dict[str, str]:
    """The test defaults under `env`; unwatched jobs are polled as often as watched ones
    unless `env` says otherwise (see `make_settings`)."""
    unwatched = env.get("POLL_INTERVAL_S", "1.0")
    return {**TEST_DEFAULTS_ENV, "POLL_INTERVAL_UNWATCHED_S": unwatched, **env}


class ApiProcess(Service):
    """`python -m gql.cli serve` with exactly the given settings (as env values)."""

    def __init__(self, env: dict[str, str], *, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.graphql_url = f"{self.url}/graphql"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.log_path = Path(env["DATA_DIR"]) / f"server-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def settings(self) -> Settings:
        """The server's settings, for seeding its database from the test."""
        values = {key.lower(): value for key, value in self.env.items()}
        return Settings.model_validate(values)

    def start(self, timeout: float = 30.0) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gql.cli", "serve", "--port", str(self.port)],
                cwd=PROJECT_ROOT,
                env={**isolated_environ(), **with_test_defaults(self.env)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the API exited at start-up:\n{self.log()}")
            # uvicorn listens once start-up is complete.
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the API did not start within {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def load(self) -> dict[str, int]:
        """Live subscription groups, subscribers and asyncio tasks, from /healthz."""
        return dict(httpx.get(f"{self.url}/healthz", timeout=5).json()["load"])

    def rss_kb(self) -> int:
        return self._status_kb("VmRSS")

    def hwm_kb(self) -> int:
        """The process's peak RSS so far."""
        return self._status_kb("VmHWM")

    def _status_kb(self, field: str) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
        return int(line.split()[1])


def read_only(server: ApiProcess) -> sqlite3.Connection:
    """The server's SQLite database, opened read-only from the test."""
    path = server.settings.database_url.removeprefix("sqlite:///")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


StartServer = Callable[..., ApiProcess]
"""The `start_server` fixture: keyword arguments are the server's env values."""
