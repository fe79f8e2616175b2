"""A configuration mistake is one line naming the variable, from every command: exit
status 2, no traceback."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import annotated_types
import pytest

from gql.config.errors import SettingsError, load_settings
from gql.config.settings import Settings
from tests.support.cli import run_export_gql

POLL_INTERVAL_MISTAKE = "POLL_INTERVAL_S must be > 0, got -1"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

MISTAKES = [
    pytest.param(
        {"DATABASE_URL": "mysql://exports:hunter2@db.internal/exports"},
        ["DATABASE_URL must start with sqlite:/// or postgresql://, got mysql://…"],
        id="database-scheme",
    ),
    pytest.param(
        {"DATABASE_URL": "sqlite://export-gql.db"},
        ["DATABASE_URL must start with sqlite:/// or postgresql://, got sqlite://export-gql.db"],
        id="sqlite-without-path",
    ),
    pytest.param(
        {"RUNPOD_ENDPOINT_URL": "notaurl"},
        ["RUNPOD_ENDPOINT_URL must be an http(s) URL ending in /v2/<endpoint id>, got notaurl"],
        id="endpoint-not-a-url",
    ),
    pytest.param(
        {"RUNPOD_ENDPOINT_URL": "https://api.runpod.ai/abc123"},
        [
            "RUNPOD_ENDPOINT_URL must be an http(s) URL ending in /v2/<endpoint id>, "
            "got https://api.runpod.ai/abc123"
        ],
        id="endpoint-without-v2",
    ),
    pytest.param(
        {"RUNPOD_ENDPOINT_URL": "ftp://api.runpod.ai/v2/abc123"},
        [
            "RUNPOD_ENDPOINT_URL must be an http(s) URL ending in /v2/<endpoint id>, "
            "got ftp://api.runpod.ai/v2/abc123"
        ],
        id="endpoint-scheme",
    ),
    pytest.param(
        {"R2_BUCKET": "exports"},
        [
            "R2 settings incomplete: missing R2_ENDPOINT_URL, R2_ACCESS_KEY_ID, "
            "R2_SECRET_ACCESS_KEY (given: R2_BUCKET); set all four R2_* variables, "
            "or none for local storage"
        ],
        id="r2-bucket-only",
    ),
    pytest.param(
        {"R2_BUCKET": "exports", "R2_ACCESS_KEY_ID": "id", "R2_SECRET_ACCESS_KEY": "s3cr3t"},
        [
            "R2 settings incomplete: missing R2_ENDPOINT_URL (given: R2_BUCKET, "
            "R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY); set all four R2_* variables, "
            "or none for local storage"
        ],
        id="r2-no-endpoint",
    ),
    pytest.param(
        {"PUBLIC_URL": "api.example.com"},
        ["PUBLIC_URL must be an absolute http(s) URL, got api.example.com"],
        id="public-url-relative",
    ),
    pytest.param({"POLL_INTERVAL_S": "-1"}, [POLL_INTERVAL_MISTAKE], id="poll-interval"),
    pytest.param(
        {"POLL_INTERVAL_S": "often"},
        ["POLL_INTERVAL_S must be a number, got often"],
        id="poll-interval-not-a-number",
    ),
    pytest.param({"PORT": "70000"}, ["PORT must be <= 65535, got 70000"], id="port"),
    pytest.param(
        {"DOWNLOAD_URL_TTL_S": "10"}, ["DOWNLOAD_URL_TTL_S must be >= 60, got 10"], id="url-ttl"
    ),
    pytest.param(
        {"LOCAL_WORKER": "maybe"}, ["LOCAL_WORKER must be true or false, got maybe"], id="flag"
    ),
    pytest.param(
        {"ENVIRONMENT": "staging"},
        ["ENVIRONMENT must be 'development' or 'production', got staging"],
        id="environment",
    ),
    pytest.param(
        {"AUTH_JWT_SECRET": "too-short-secret"},
        ["AUTH_JWT_SECRET must be at least 32 characters"],
        id="short-secret",
    ),
    pytest.param(
        {"ENVIRONMENT": "production"},
        ["AUTH_JWT_SECRET or AUTH_JWKS_URL must be set in production"],
        id="production-without-secret",
    ),
    pytest.param(
        {"POLL_INTERVAL_S": "-1", "WS_PING_TIMEOUT_S": "0"},
        [POLL_INTERVAL_MISTAKE, "WS_PING_TIMEOUT_S must be > 0, got 0"],
        id="two-mistakes",
    ),
    pytest.param(
        {"WEBHOOK_URL": "https://hooks.example.com/exports"},
        ["WEBHOOK_SECRET must be set when WEBHOOK_URL is (whsec_…)"],
        id="webhook-without-secret",
    ),
    pytest.param(
        {"WEBHOOK_SECRET": "hunter2-not-a-webhook-secret"},
        ["WEBHOOK_SECRET must start with whsec_"],
        id="webhook-secret-prefix",
    ),
    pytest.param(
        {"WEBHOOK_SECRET": "whsec_c2hvcnQ="},
        ["WEBHOOK_SECRET must encode 24 to 64 bytes, got 5"],
        id="webhook-secret-short",
    ),
    pytest.param(
        {"WEBHOOK_SECRET": f"{WEBHOOK_SECRET},{WEBHOOK_SECRET},{WEBHOOK_SECRET}"},
        ["WEBHOOK_SECRET takes at most two secrets, the new one first, during a rotation"],
        id="webhook-three-secrets",
    ),
    pytest.param(
        {"WEBHOOK_EVENTS": "export.completed,export.finished"},
        [
            "WEBHOOK_EVENTS must be a comma-separated list of export.cancelled, "
            "export.completed, export.created, export.failed, export.progress, "
            "export.queued, export.started; got export.finished"
        ],
        id="webhook-unknown-event",
    ),
    pytest.param(
        {"WEBHOOK_URL": "hooks.example.com", "WEBHOOK_SECRET": WEBHOOK_SECRET},
        ["WEBHOOK_URL must be an absolute http(s) URL, got hooks.example.com"],
        id="webhook-url",
    ),
]


@pytest.mark.parametrize(("env", "lines"), MISTAKES)
def test_serve_refuses_a_mistake_in_one_line(
    env: dict[str, str], lines: list[str], tmp_path: Path
) -> None:
    result = run_export_gql("serve", env={"DATA_DIR": str(tmp_path), **env}, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == lines
    assert result.stdout == ""
    # Secrets and passwords are never repeated back.
    for secret in ("hunter2", "s3cr3t", "too-short-secret"):
        assert secret not in result.stderr


@pytest.mark.parametrize(
    "command",
    [["serve"], ["worker"], ["token", "alice"], ["seed-demo"], ["doctor"], ["doctor", "--json"]],
    ids=" ".join,
)
def test_every_command_says_the_same(command: list[str], tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "POLL_INTERVAL_S": "-1"}
    result = run_export_gql(*command, env=env, cwd=tmp_path)

    assert (result.returncode, result.stderr, result.stdout) == (
        2,
        POLL_INTERVAL_MISTAKE + "\n",
        "",
    )


@pytest.fixture
def no_settings_in_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file


def _numeric_settings() -> Iterator[tuple[str, Any]]:
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        if annotation in (int, float):
            yield name, field


def test_every_numeric_setting_has_a_lower_bound() -> None:
    unbounded = [
        name
        for name, field in _numeric_settings()
        if not any(isinstance(m, annotated_types.Gt | annotated_types.Ge) for m in field.metadata)
    ]
    assert unbounded == []


def _bound_violations() -> Iterator[Any]:
    """For every bound of every numeric setting: a value just past it and the line."""
    operators = {
        annotated_types.Gt: (">", 0),
        annotated_types.Ge: (">=", -1),
        annotated_types.Lt: ("<", 0),
        annotated_types.Le: ("<=", 1),
    }
    for name, field in _numeric_settings():
        for constraint in field.metadata:
            if type(constraint) not in operators:
                continue
            operator, step = operators[type(constraint)]
            bound = getattr(constraint, type(constraint).__name__.lower())
            value = bound + step
            line = f"{name.upper()} must be {operator} {bound}, got {value}"
            yield pytest.param(name, str(value), line, id=f"{name}{operator}{bound}")


@pytest.mark.usefixtures("no_settings_in_environment")
@pytest.mark.parametrize(("name", "value", "line"), list(_bound_violations()))
def test_each_bound_names_its_variable(name: str, value: str, line: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(Settings, **{name: value})
    assert refused.value.lines == [line]


@pytest.mark.usefixtures("no_settings_in_environment")
def test_valid_urls_are_accepted() -> None:
    settings = load_settings(
        Settings,
        database_url="postgres://exports@db.internal:5433/exports",
        runpod_endpoint_url="https://api.runpod.ai/v2/abc123/",
        public_url="https://exports.example.com/",
    )
    assert settings.runpod_endpoint_url == "https://api.runpod.ai/v2/abc123"
    assert settings.public_url == "https://exports.example.com"
