"""The `export-gql` command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from gql.cli import main
from tests.support.app_server import free_port
from tests.support.queries import GET_JOB, START_FRAMING
from tests.support.tokens import JWT_SECRET
from tests.support.video_checks import decode


def test_token_prints_a_jwt_for_the_user(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
    assert main(["token", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, JWT_SECRET, algorithms=["HS256"])["sub"] == "alice"


def test_token_without_a_secret_explains_why_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    assert main(["token", "alice"]) == 2
    assert "AUTH_JWT_SECRET is not set" in capsys.readouterr().err


def test_seed_demo_prints_ids_and_is_safe_to_run_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["seed-demo", "--user", "alice"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["seed-demo", "--user", "alice"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert set(first) == {"projectId", "gameId"}
    stored = sorted(p.relative_to(tmp_path / "storage").as_posix() for p in tmp_path.rglob("*.mp4"))
    assert stored == [
        "games/demo_game_alice.mp4",
        "raw_clips/demo_source_alice.mp4",
        "working_videos/demo_working_alice.mp4",
    ]


class Command:
    """`export-gql ARGS` as a real process, stopped with SIGTERM at the end."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gql.cli", *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for(self, url: str, timeout: float = 30.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1]
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(url, timeout=2)
            time.sleep(0.05)
        raise AssertionError(f"{url} did not answer within {timeout} s")

    def stop(self) -> str:
        """Stops the process; returns what it logged."""
        self.process.send_signal(signal.SIGTERM)
        _, logged = self.process.communicate(timeout=20)
        assert self.process.returncode in (0, -signal.SIGTERM), logged
        return logged


@pytest.fixture
def own_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Only this test's settings: no endpoint, secret or database from the machine."""
    for name in ("RUNPOD_ENDPOINT_URL", "RUNPOD_API_KEY", "AUTH_JWT_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return {"DATA_DIR": str(tmp_path / "data"), "POLL_INTERVAL_S": "0.1"}


def test_serve_embeds_the_local_worker_and_says_so(own_settings: dict[str, str]) -> None:
    port = free_port()
    serve = Command("serve", "--port", str(port), env=own_settings)
    try:
        health = serve.wait_for(f"http://127.0.0.1:{port}/healthz")
    finally:
        logged = serve.stop()

    assert health.status_code == 200
    assert health.json()["checks"]["runpod"]["ok"] is True
    assert "exports run on the embedded local worker at http://127.0.0.1:" in logged


def test_serve_exports_through_a_standalone_worker(
    own_settings: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed-demo"]) == 0
    project_id = json.loads(capsys.readouterr().out)["projectId"]
    api_port, worker_port = free_port(), free_port()
    shared = {**own_settings, "RUNPOD_API_KEY": "worker-key"}
    worker = Command("worker", "--port", str(worker_port), env=shared)
    endpoint = {"RUNPOD_ENDPOINT_URL": f"http://127.0.0.1:{worker_port}/v2/local"}
    serve = Command("serve", "--port", str(api_port), env={**shared, **endpoint})
    try:
        worker.wait_for(f"http://127.0.0.1:{worker_port}/v2/local/health")
        graphql = f"http://127.0.0.1:{api_port}/graphql"
        serve.wait_for(f"http://127.0.0.1:{api_port}/healthz")
        crop = [{"time": 0, "x": 0, "y": 0, "width": 320, "height": 180}]
        started = httpx.post(
            graphql,
            json={
                "query": START_FRAMING,
                "variables": {"input": {"projectId": project_id, "cropKeyframes": crop}},
            },
        ).json()["data"]["startFramingExport"]
        assert started["userErrors"] == []
        job_id = started["job"]["id"]
        deadline = time.monotonic() + 60
        while True:
            job = httpx.post(graphql, json={"query": GET_JOB, "variables": {"id": job_id}})
            final = job.json()["data"]["exportJob"]
            if final["status"] in ("COMPLETE", "ERROR", "CANCELLED"):
                break
            assert time.monotonic() < deadline, final
            time.sleep(0.1)
        download = httpx.get(final["downloadUrl"])
    finally:
        serve.stop()
        worker.stop()

    assert final["status"] == "COMPLETE", final
    assert download.status_code == 200
    (tmp_path / "out.mp4").write_bytes(download.content)
    assert decode(tmp_path / "out.mp4").frames[0].shape == (180, 320)
