"""`export-gql doctor` against real servers: the RunPod-compatible fake, moto's S3
server and PostgreSQL (or SQLite)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from clients.storage import StorageConfig
from gql.config.settings import Settings
from gql.db.database import migration_scripts
from gql.doctor import Outcome, Status, run_checks
from gql.startup.database_wait import open_database
from tests.servers.jwks import IdentityProvider
from tests.servers.runpod_fake import RunningRunPodServer, StartRunPodServer
from tests.servers.s3 import MotoS3Server
from tests.support.app_server import free_port
from tests.support.cli import run_export_gql
from tests.support.tokens import JWT_SECRET

API_KEY = "doctor-test-key"
PUBLIC_URL = "https://exports.example.com"
CHECK_NAMES = ["settings", "database", "runpod", "storage", "webhooks", "backend", "auth"]


@pytest.fixture
def runpod_with_key(start_runpod_server: StartRunPodServer) -> RunningRunPodServer:
    return start_runpod_server(api_key=API_KEY)


def _r2_env(config: StorageConfig) -> dict[str, str]:
    values = dataclasses.asdict(config)
    names = ("r2_endpoint_url", "r2_bucket", "r2_access_key_id", "r2_secret_access_key")
    return {name.upper(): str(values[name]) for name in (*names, "r2_region")}


@pytest.fixture
def deployment(
    postgres_url: str,
    runpod_with_key: RunningRunPodServer,
    s3_storage_config: StorageConfig,
    tmp_path: Path,
) -> dict[str, str]:
    """The settings (as env values) of a deployment where every check passes."""
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": postgres_url,
        "RUNPOD_ENDPOINT_URL": runpod_with_key.url,
        "RUNPOD_API_KEY": API_KEY,
        "PUBLIC_URL": PUBLIC_URL,
        "AUTH_JWT_SECRET": JWT_SECRET,
        **_r2_env(s3_storage_config),
    }


async def _outcomes(env: dict[str, str]) -> dict[str, Outcome]:
    settings = Settings.model_validate({key.lower(): value for key, value in env.items()})
    return {result.name: result.outcome for result in await run_checks(settings)}


def _doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    result = run_export_gql("doctor", *args, env=env, cwd=cwd)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout


def _pending_migrations() -> str:
    names = (entry.name.removesuffix(".sql") for entry in migration_scripts().values())
    return f"pending migrations: {', '.join(names)}"


@pytest.mark.postgres
def test_a_working_deployment_passes_every_check(
    deployment: dict[str, str],
    runpod_with_key: RunningRunPodServer,
    s3_server: MotoS3Server,
    tmp_path: Path,
) -> None:
    status, output = _doctor(deployment, tmp_path, "--json")

    report = json.loads(output)
    assert status == 0
    assert report["ok"] is True
    checks = {check["name"]: check for check in report["checks"]}
    assert list(checks) == CHECK_NAMES
    assert {check["status"] for check in checks.values()} == {"pass"}
    endpoint, bucket = deployment["R2_ENDPOINT_URL"], deployment["R2_BUCKET"]
    assert checks["settings"]["detail"] == (
        f"valid: development; PostgreSQL at 127.0.0.1:5432; "
        f"RunPod endpoint {runpod_with_key.url}; R2 bucket '{bucket}'"
    )
    assert checks["database"]["detail"] == (
        f"PostgreSQL at 127.0.0.1:5432: reachable; {_pending_migrations()} "
        "(serve applies them at start)"
    )
    assert checks["runpod"]["detail"] == (
        f"{runpod_with_key.url}/health answered with the API key; workers: idle 2, ready 2"
    )
    assert checks["storage"]["detail"] == (
        f"R2 bucket '{bucket}' at {endpoint}: object written, read through a presigned URL, deleted"
    )
    assert checks["webhooks"]["detail"] == f"RunPod calls back at {PUBLIC_URL}/webhooks/runpod"
    assert checks["auth"]["detail"] == (
        "HS256 tokens signed with AUTH_JWT_SECRET are issued and verified"
    )
    # The probe object is gone again.
    assert s3_server.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.postgres
def test_the_table_marks_each_check(deployment: dict[str, str], tmp_path: Path) -> None:
    status, output = _doctor(deployment, tmp_path)

    lines = output.splitlines()
    assert status == 0
    assert [line.split()[:2] for line in lines[:-1]] == [["✓", name] for name in CHECK_NAMES]
    assert lines[-1] == "every check passed"


@pytest.mark.postgres
def test_a_wrong_api_key_fails_the_run(
    deployment: dict[str, str], runpod_with_key: RunningRunPodServer, tmp_path: Path
) -> None:
    status, output = _doctor({**deployment, "RUNPOD_API_KEY": "not-the-key"}, tmp_path)

    lines = output.splitlines()
    assert status == 1
    assert lines[2] == (
        f"✗ runpod    authentication failed: RUNPOD_API_KEY refused "
        f"(HTTP 401 from {runpod_with_key.url}/health)"
    )
    assert [line[0] for line in lines[:-1]] == ["✓", "✓", "✗", "✓", "✓", "✓", "✓"]
    assert lines[-1] == "1 of 7 checks failed"


@pytest.mark.postgres
async def test_a_missing_api_key_is_named(
    deployment: dict[str, str], runpod_with_key: RunningRunPodServer
) -> None:
    del deployment["RUNPOD_API_KEY"]
    runpod = (await _outcomes(deployment))["runpod"]

    assert runpod == Outcome.failed(
        "authentication failed: RUNPOD_API_KEY not set "
        f"(HTTP 401 from {runpod_with_key.url}/health)"
    )


@pytest.mark.postgres
async def test_a_stopped_runpod_server_is_unreachable(
    deployment: dict[str, str], runpod_with_key: RunningRunPodServer
) -> None:
    runpod_with_key.stop()
    outcomes = await _outcomes(deployment)

    assert outcomes["runpod"] == Outcome.failed(
        f"cannot reach {runpod_with_key.url}: connection refused"
    )
    assert [name for name, outcome in outcomes.items() if outcome.status is not Status.PASS] == [
        "runpod"
    ]


@pytest.mark.postgres
async def test_a_missing_bucket_fails_storage(deployment: dict[str, str]) -> None:
    outcomes = await _outcomes({**deployment, "R2_BUCKET": "export-gql-no-such-bucket"})

    assert outcomes["storage"] == Outcome.failed(
        f"R2 bucket 'export-gql-no-such-bucket' at {deployment['R2_ENDPOINT_URL']}: "
        "cannot write: the bucket does not exist"
    )


@pytest.mark.postgres
async def test_an_unreachable_database_fails(deployment: dict[str, str]) -> None:
    port = free_port()  # nothing listens there
    outcomes = await _outcomes(
        {**deployment, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/exports"}
    )

    assert outcomes["database"] == Outcome.failed(
        f"cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused"
    )


@pytest.mark.postgres
async def test_migrations_applied_are_reported(
    deployment: dict[str, str], postgres_url: str
) -> None:
    database = await open_database(postgres_url, migrate=True)
    await database.disconnect()

    outcome = (await _outcomes(deployment))["database"]

    count = len(migration_scripts())
    assert outcome == Outcome.passed(
        f"PostgreSQL at 127.0.0.1:5432: reachable; migrations up to date ({count} applied)"
    )


@pytest.mark.postgres
async def test_warnings_do_not_fail_the_run(deployment: dict[str, str], tmp_path: Path) -> None:
    del deployment["PUBLIC_URL"]
    status, output = _doctor({**deployment, "POLL_INTERVAL_S": "2.5"}, tmp_path, "--json")

    checks = {check["name"]: check for check in json.loads(output)["checks"]}
    assert status == 0
    assert checks["webhooks"] == {
        "name": "webhooks",
        "status": "warn",
        "detail": "PUBLIC_URL is not set: webhooks are off; jobs are followed by polling "
        "every 2.5 s",
    }


# Without PostgreSQL, R2 or a remote endpoint: the embedded defaults on SQLite.


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path / "data")}


async def test_the_embedded_defaults_pass(local_env: dict[str, str], tmp_path: Path) -> None:
    outcomes = await _outcomes(local_env)

    data = tmp_path / "data"
    assert outcomes == {
        "settings": Outcome.passed(
            f"valid: development; SQLite at {data / 'export-gql.db'}; embedded local worker; "
            f"local storage in {data / 'storage'}"
        ),
        "database": Outcome.passed(
            f"SQLite at {data / 'export-gql.db'}: not created yet; serve creates it"
        ),
        "runpod": Outcome.passed("no RUNPOD_ENDPOINT_URL: serve runs exports on its local worker"),
        "storage": Outcome.passed(
            f"local folder {data / 'storage'}: object written, read back, deleted"
        ),
        "webhooks": Outcome.passed("the embedded local worker calls back over loopback"),
        "backend": Outcome.passed("WEBHOOK_URL is not set: no events are sent to a backend"),
        "auth": Outcome.passed(
            "neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set: every caller is the local user "
            "(the API listens on loopback only)"
        ),
    }
    assert list((data / "storage").iterdir()) == []  # the probe is gone


async def test_migrations_unknown_to_this_version_fail(
    local_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "data" / "export-gql.db"
    database = await open_database(f"sqlite:///{path}", migrate=True)
    await database.disconnect()
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'later')"
        )

    outcome = (await _outcomes(local_env))["database"]

    assert outcome == Outcome.failed(
        f"SQLite at {path}: migrations [9999] are unknown to this version of export-gql"
    )


async def test_an_unwritable_storage_folder_fails(
    local_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "storage"

    outcome = (await _outcomes({**local_env, "STORAGE_DIR": str(folder)}))["storage"]

    assert outcome == Outcome.failed(f"local folder {folder} is not writable: not a directory")


@pytest.mark.parametrize(
    ("settings", "check", "detail"),
    [
        (
            {"RUNPOD_ENDPOINT_URL": "http://127.0.0.1:1/v2/gpu", "PUBLIC_URL": "http://127.0.0.1"},
            "webhooks",
            "PUBLIC_URL http://127.0.0.1 is a loopback address: a remote RunPod cannot call back",
        ),
        (
            {"HOST": "0.0.0.0"},
            "auth",
            "neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set: every caller is the local user, "
            "and the API listens on 0.0.0.0",
        ),
    ],
    ids=["loopback-public-url", "open-without-auth"],
)
async def test_warnings(
    local_env: dict[str, str], settings: dict[str, str], check: str, detail: str
) -> None:
    assert (await _outcomes({**local_env, **settings}))[check] == Outcome.warned(detail)


async def test_remote_runpod_with_local_storage_is_a_warning(
    local_env: dict[str, str], runpod_with_key: RunningRunPodServer, tmp_path: Path
) -> None:
    env = {**local_env, "RUNPOD_ENDPOINT_URL": runpod_with_key.url, "RUNPOD_API_KEY": API_KEY}
    outcome = (await _outcomes(env))["storage"]

    assert outcome == Outcome.warned(
        f"local folder {tmp_path / 'data' / 'storage'}: object written, read back, deleted; "
        "but RunPod is remote: its workers write their outputs here only if they share "
        "this folder (set R2_* otherwise)"
    )


def test_no_endpoint_and_no_local_worker_fails(local_env: dict[str, str], tmp_path: Path) -> None:
    status, output = _doctor({**local_env, "LOCAL_WORKER": "false"}, tmp_path, "--json")

    report: dict[str, Any] = json.loads(output)
    assert status == 1
    assert report["ok"] is False
    assert [check for check in report["checks"] if check["status"] != "pass"] == [
        {
            "name": "runpod",
            "status": "fail",
            "detail": "no RUNPOD_ENDPOINT_URL and LOCAL_WORKER=false: exports are refused",
        }
    ]


async def test_an_identity_providers_keys_are_read(local_env: dict[str, str]) -> None:
    provider = IdentityProvider("RS256", "ES256").start()
    try:
        outcomes = await _outcomes({**local_env, "AUTH_JWKS_URL": provider.jwks_url})
    finally:
        provider.stop()

    assert outcomes["auth"] == Outcome.passed(f"2 signing key(s) read from {provider.jwks_url}")


async def test_an_unreachable_identity_provider_fails(local_env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"  # nothing listens there

    outcomes = await _outcomes({**local_env, "AUTH_JWKS_URL": url})

    assert outcomes["auth"].status is Status.FAIL
    assert outcomes["auth"].detail.startswith(f"cannot read the identity provider's keys at {url}:")
