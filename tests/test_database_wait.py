"""At start, commands wait for a late database, and say in one line why one cannot be
reached: exit status 2, no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.app_server import free_port
from tests.support.cli import isolated_environ, run_export_gql
from tests.support.tcp_proxy import TcpProxy

FIRST_ATTEMPT_FAILED = "attempt 1 to connect to the database failed: "


def _postgres_url_on(url: str, *, port: int | None = None, user: str | None = None) -> str:
    parts = urlsplit(url)
    host = f"{user or parts.username}@{parts.hostname}:{port or parts.port or 5432}"
    return parts._replace(netloc=host).geturl()


@pytest.mark.parametrize("command", ["serve", "seed-demo"])
def test_an_unreachable_database_ends_in_one_line(command: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/exports",
        "DATABASE_CONNECT_TIMEOUT_S": "0",  # one attempt
    }
    result = run_export_gql(command, env=env, cwd=tmp_path)

    cause = f"cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused"
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == cause
    attempts = [line for line in result.stderr.splitlines() if FIRST_ATTEMPT_FAILED in line]
    assert len(attempts) == 1
    assert FIRST_ATTEMPT_FAILED + cause in attempts[0]
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("user", "database", "cause"),
    [
        ("postgres", "export_gql_missing", 'database "export_gql_missing" does not exist'),
        ("export_gql_nobody", None, 'role "export_gql_nobody" does not exist'),
    ],
    ids=["missing-database", "unknown-role"],
)
def test_a_refusal_that_waiting_cannot_fix_ends_at_once(
    postgres_url: str, user: str, database: str | None, cause: str, tmp_path: Path
) -> None:
    url = _postgres_url_on(postgres_url, user=user)
    if database is not None:
        url = urlsplit(url)._replace(path=f"/{database}").geturl()
    parts = urlsplit(postgres_url)
    # The default wait is 30 s; these are not retried at all.
    result = run_export_gql(
        "serve", env={"DATA_DIR": str(tmp_path), "DATABASE_URL": url}, cwd=tmp_path, timeout=20
    )

    assert result.returncode == 2
    assert result.stderr == f"cannot reach PostgreSQL at {parts.hostname}:{parts.port}: {cause}\n"


def test_an_unusable_sqlite_path_ends_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path / "a-file" / "data" / "export-gql.db"
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{path}"}
    result = run_export_gql("serve", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == f"cannot open SQLite at {path}: not a directory\n"


@pytest.mark.postgres
def test_serve_waits_for_a_database_that_comes_up_late(postgres_url: str, tmp_path: Path) -> None:
    proxy_port, api_port = free_port(), free_port()
    parts = urlsplit(postgres_url)
    env = {
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": _postgres_url_on(postgres_url, port=proxy_port),
        "DATABASE_CONNECT_TIMEOUT_S": "60",
        "LOCAL_WORKER": "false",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "gql.cli", "serve", "--port", str(api_port)],
        env={**isolated_environ(), **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert serve.stderr is not None
    logged: list[str] = []
    try:
        # The database appears only once serve has found it missing.
        while FIRST_ATTEMPT_FAILED not in (line := serve.stderr.readline()):
            assert line, f"serve ended before trying the database: {logged}"
            logged.append(line)
        first_attempt = line
        threading.Thread(target=lambda: logged.extend(serve.stderr or ()), daemon=True).start()
        with TcpProxy(proxy_port, (parts.hostname or "127.0.0.1", parts.port or 5432)):
            health = _wait_for_health(f"http://127.0.0.1:{api_port}/healthz", serve)
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=20)
    finally:
        serve.kill()
        serve.wait()

    assert health.status_code == 200
    assert health.json()["checks"]["database"] == {"ok": True, "dialect": "postgresql"}
    cause = f"cannot reach PostgreSQL at 127.0.0.1:{proxy_port}: connection refused"
    assert FIRST_ATTEMPT_FAILED + cause in first_attempt
    assert "Traceback" not in "".join(logged)


def _wait_for_health(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited"
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer in time")
