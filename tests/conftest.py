"""Shared fixtures: the database under test, the fake RunPod endpoint, the real API and
the source video the exports read."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gql.db.database import Database
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunningRunPodServer, RunPodServerProcess, StartRunPodServer
from tests.servers.s3 import MotoS3Server
from tests.support.api_process import ApiProcess, StartServer
from tests.support.app_server import (
    RunningApp,
    StartApi,
    StartLocal,
    free_port,
    make_settings,
    sqlite_url,
)
from tests.support.assets import SeededAssets, seed_assets
from tests.support.graphql import GraphQLHTTP
from tests.support.held_exports import HELD_EXPORT_HANDLER, HELD_EXPORTS_DIR, HeldExports
from tests.support.lifecycle import starter
from tests.support.source_video import write_source_video

pytest_plugins = ["tests.servers.fixtures"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`) the fault suite runs on one worker, one
    test after another: its processes are killed, starved and timed, and must not
    also share a CPU with another fault test. The rest spreads over the workers."""
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(pytest.mark.xdist_group("faults"))


# Several checkouts on one machine each set their own database, so their runs never
# meet; with pytest-xdist each worker has a database of its own too (test_gw0, …).
_SHARED_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
POSTGRES_URL = f"{_SHARED_URL}_{_WORKER}" if _WORKER else _SHARED_URL
_TABLES = (
    "export_jobs, working_videos, projects, games, api_processes, media_durations, "
    "runpod_health, webhook_outbox, webhook_endpoints, schema_migrations"
)


def _postgres_reachable() -> bool:
    """Whether PostgreSQL answers; creates this worker's database when missing."""
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(_SHARED_URL, timeout=3)
        try:
            name = POSTGRES_URL.rsplit("/", 1)[1]
            if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    try:
        asyncio.run(probe())
    except Exception:
        return False
    return True


_POSTGRES = _postgres_reachable()


async def _reset_postgres() -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {_TABLES} CASCADE")
    finally:
        await connection.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite, then on PostgreSQL when one is reachable."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return await _empty_postgres()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A connected, migrated database: SQLite, then PostgreSQL when one is reachable."""
    db = Database(database_url)
    await db.connect()
    yield db
    await db.disconnect()


@pytest.fixture
async def postgres_url() -> str:
    """The test PostgreSQL database, without tables; skips when none is reachable."""
    return await _empty_postgres()


async def _empty_postgres() -> str:
    if not _POSTGRES:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    await _reset_postgres()
    return POSTGRES_URL


@pytest.fixture
def runpod(start_runpod_server: StartRunPodServer, tmp_path: Path) -> RunningRunPodServer:
    """A fake RunPod endpoint (manual jobs) writing outputs into the API's local storage."""
    from clients.storage import StorageConfig

    return start_runpod_server(storage=StorageConfig(local_dir=tmp_path / "data" / "storage"))


@pytest.fixture
def auto_runpod(runpod: RunningRunPodServer) -> RunningRunPodServer:
    runpod.control.set_behaviour("auto", step=0.05)
    return runpod


@pytest.fixture(scope="module")
def runpod_process() -> Iterator[RunPodServerProcess]:
    """One fake RunPod process per module (manual jobs); `control` resets it per test."""
    with RunPodServerProcess() as process:
        yield process


@pytest.fixture
def control(runpod_process: RunPodServerProcess) -> RunPodControl:
    assert runpod_process.control is not None
    runpod_process.control.reset()
    return runpod_process.control


@pytest.fixture
def start_server(runpod_process: RunPodServerProcess, tmp_path: Path) -> Iterator[StartServer]:
    """Start `export-gql serve` on SQLite in `tmp_path`.

    Keyword arguments are env values; `webhooks=True` sets PUBLIC_URL to the server
    itself, so each `/run` carries a webhook URL the fake RunPod can call.
    """

    def server(*, webhooks: bool = False, **env: str) -> ApiProcess:
        port = free_port()
        values = {
            "DATA_DIR": str(tmp_path / "data"),
            "RUNPOD_ENDPOINT_URL": runpod_process.url,
            "POLL_INTERVAL_S": "0.2",
            **({"PUBLIC_URL": f"http://127.0.0.1:{port}"} if webhooks else {}),
            **env,
        }
        return ApiProcess(values, port=port)

    with starter(server) as start:
        yield start


@pytest.fixture
def start_api(database_url: str, runpod: RunningRunPodServer, tmp_path: Path) -> Iterator[StartApi]:
    """Start the real API; keyword arguments override its settings."""

    def app(**overrides: Any) -> RunningApp:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "runpod_endpoint_url": runpod.url,
            "runpod_retry_attempts": 2,
        }
        values.update(overrides)
        return RunningApp(make_settings(**values))

    with starter(app) as start:
        yield start


@pytest.fixture
def start_local(tmp_path: Path, held: HeldExports) -> Iterator[StartLocal]:
    """Start the API with no RunPod endpoint: the embedded worker does the exports,
    each held at its first progress until released (`held`)."""

    def app(**overrides: Any) -> RunningApp:
        values = {
            "data_dir": tmp_path / "data",
            "local_worker_concurrency": 2,
            "local_worker_handler": HELD_EXPORT_HANDLER,
            **overrides,
        }
        return RunningApp(make_settings(**values))

    with starter(app) as start:
        yield start


@pytest.fixture(params=["local", "r2"])
def storage_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """No storage settings (the local folder), or R2 settings for a fresh bucket."""
    if request.param == "local":
        return {}
    s3_server: MotoS3Server = request.getfixturevalue("s3_server")
    config = s3_server.new_bucket(tmp_path / "unused-local-storage")
    return {k: v for k, v in dataclasses.asdict(config).items() if k.startswith("r2_")}


@pytest.fixture
def api(start_api: StartApi) -> RunningApp:
    return start_api()


@pytest.fixture
async def client(api: RunningApp) -> AsyncIterator[GraphQLHTTP]:
    async with GraphQLHTTP(api.graphql_url) as http:
        yield http


@pytest.fixture
async def assets(api: RunningApp) -> SeededAssets:
    """A project (source clip + working video) and a game for the local user."""
    return await seed_assets(api.settings, "local")


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HeldExports:
    """Exports run by `held_export` wait part-way until the test releases them."""
    folder = tmp_path / "released"
    folder.mkdir()
    # Read by the handler processes, which inherit this process's environment.
    monkeypatch.setenv(HELD_EXPORTS_DIR, str(folder))
    return HeldExports(folder)


@pytest.fixture(scope="session")
def source_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x180, 2 s at 25 fps, with a moving disc, frame counter and a tone."""
    return write_source_video(tmp_path_factory.mktemp("media") / "game.mp4")
