"""Configuration, read once from the environment (or a `.env` file) by `Settings()`."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from clients.storage import StorageConfig
from gql.config.webhook_values import ALL_EVENTS, DEFAULT_EVENTS, secret_problem

DEFAULT_DATA_DIR = Path("./data")
# A dead process's jobs are taken over within about 5/4 of the lease's lifetime.
MAX_DEFAULT_LEASE_TTL_S = 3.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    log_format: Literal["text", "json"] = "text"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The address RunPod (webhooks) and browsers (local download URLs) reach this API at.
    public_url: str | None = None

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    # How long commands wait at start for the database to accept a connection.
    database_connect_timeout_s: float = Field(default=30.0, ge=0)

    runpod_endpoint_url: str | None = None
    runpod_api_key: str | None = None
    # Watched jobs are polled this often; jobs nobody watches every
    # POLL_INTERVAL_UNWATCHED_S (RunPod's webhook ends them at once when it can
    # reach PUBLIC_URL).
    poll_interval_s: float = Field(default=1.0, gt=0)
    poll_interval_unwatched_s: float = Field(default=10.0, gt=0)
    # Most concurrent RunPod requests this process makes at once (its connection pool).
    runpod_max_concurrency: int = Field(default=50, ge=1)
    runpod_retry_attempts: int = Field(default=4, ge=1)
    # RunPod's limits per endpoint, for the whole cluster (its "rate limits"
    # table): requests per RUNPOD_RATE_WINDOW_S and requests in flight, per route.
    # Each process spends its share, less RUNPOD_BUDGET_MARGIN. Raise them when
    # RunPod raises an endpoint's limits.
    runpod_run_rate: int = Field(default=1000, ge=1)
    runpod_run_concurrency: int = Field(default=200, ge=1)
    runpod_status_rate: int = Field(default=2000, ge=1)
    runpod_status_concurrency: int = Field(default=400, ge=1)
    runpod_cancel_rate: int = Field(default=100, ge=1)
    runpod_cancel_concurrency: int = Field(default=20, ge=1)
    runpod_rate_window_s: float = Field(default=10.0, gt=0)
    runpod_budget_margin: float = Field(default=0.1, ge=0, lt=1)
    # One process asks RunPod's /health this often, for the whole cluster.
    runpod_health_interval_s: float = Field(default=3.0, gt=0)
    # Each /run's execution policy (see gql/tracking/policy.py): the execution
    # timeout grows with the seconds of video an export processes, between a
    # floor and a ceiling; the TTL covers time in RunPod's queue too.
    runpod_execution_timeout_base_s: float = Field(default=60.0, ge=0)
    runpod_execution_s_per_input_s: float = Field(default=4.0, ge=0)
    runpod_execution_timeout_min_s: float = Field(default=60.0, ge=5)
    runpod_execution_timeout_max_s: float = Field(default=3600.0, ge=5, le=7 * 24 * 3600)
    runpod_job_ttl_s: float = Field(default=24 * 3600.0, ge=10, le=7 * 24 * 3600)
    # How long a process's registration, and with it its claim on the jobs it
    # follows, lasts unless renewed (a quarter of it apart); a dead process's jobs
    # are taken over once it runs out.
    # Default: 2 poll intervals + 1 s, at most 3 s.
    lease_ttl_s: float | None = Field(default=None, gt=0)

    # With no RUNPOD_ENDPOINT_URL, `serve` runs exports on an embedded local worker.
    local_worker: bool = True
    local_worker_concurrency: int | None = Field(default=None, ge=1)
    local_worker_timeout_s: float = Field(default=600.0, gt=0)
    # The handler the local worker runs ("module:function", RunPod's `handler(job)` shape).
    local_worker_handler: str = "worker.handler:handler"

    auth_jwt_secret: str | None = Field(default=None, min_length=32)
    # An identity provider's RS256/ES256 tokens, verified against its published keys.
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # The claim holding the user id, as in Hasura's JWT mode.
    auth_user_claim: str = "sub"

    storage_dir: Path | None = None
    storage_signing_key: str | None = None
    download_url_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    r2_endpoint_url: str | None = None
    r2_bucket: str | None = None
    r2_access_key_id: str | None = None
    r2_secret_access_key: str | None = None
    r2_region: str = "auto"

    max_query_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=15, ge=1)
    max_query_tokens: int = Field(default=2000, ge=1)
    # Request bodies beyond this are refused (413) as they stream in, before parsing.
    max_request_bytes: int = Field(default=1 << 20, ge=1024)
    # After an answer given before the body was read (a 413, a 401), the rest of the
    # body is read and discarded, up to this much and this long, before closing:
    # clients that send their whole body before reading then get the answer.
    # 0 turns it off.
    linger_max_bytes: int = Field(default=128 << 20, ge=0)
    linger_max_s: float = Field(default=30.0, ge=0)
    # Origins (scheme://host[:port]) whose pages may call the API from a browser.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Per user: unfinished exports, exports started in any minute, and open
    # subscription connections (websocket or HTTP stream) on each process.
    max_active_exports_per_user: int = Field(default=10, ge=1)
    max_starts_per_minute_per_user: int = Field(default=60, ge=1)
    max_connections_per_user: int = Field(default=100, ge=1)
    # A websocket that has not sent `connection_init` by then is closed (4408).
    ws_connection_init_timeout_s: float = Field(default=10.0, gt=0)
    # Keepalive pings; a client that does not answer in time is dropped.
    ws_ping_interval_s: float = Field(default=20.0, gt=0)
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)
    # Job updates are a few hundred bytes: compressing them costs a zlib context
    # per connection and CPU per message for little gain.
    ws_per_message_deflate: bool = False
    # Heartbeats of subscriptions streamed over HTTP; unset: 15 s for SSE, 5 s for multipart.
    http_stream_heartbeat_s: float | None = Field(default=None, gt=0)

    # Outbound webhooks to the operator's backend (gql/webhooks): where, signed
    # with which secrets (Standard Webhooks; a second one during a rotation), which
    # events, progress at most once per interval per job.
    webhook_url: str | None = None
    webhook_secret: Annotated[list[str], NoDecode] = []
    webhook_events: Annotated[list[str], NoDecode] = sorted(DEFAULT_EVENTS)
    webhook_progress_interval_s: float = Field(default=1.0, ge=0)
    webhook_timeout_s: float = Field(default=15.0, gt=0)
    # Retries: the first after WEBHOOK_RETRY_BASE_S, doubling up to
    # WEBHOOK_RETRY_MAX_S, ±25 %; abandoned after WEBHOOK_MAX_ATTEMPTS (about a day).
    webhook_retry_base_s: float = Field(default=5.0, gt=0)
    webhook_retry_max_s: float = Field(default=3 * 3600.0, gt=0)
    webhook_max_attempts: int = Field(default=18, ge=1, le=100)
    # How often each process reads the outbox for events written by others or due again.
    webhook_poll_interval_s: float = Field(default=1.0, gt=0)
    webhook_max_concurrency: int = Field(default=32, ge=1)
    # Delivered and abandoned events are kept this long after they ended (for
    # `export-gql webhooks list` and replays), then deleted.
    webhook_retention_s: float = Field(default=7 * 86400.0, gt=0)

    @field_validator("runpod_endpoint_url", "public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    # The validators below say what a value "must be"; the variable's name is put in
    # front of it when the error is shown (gql.config.errors).

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value or value.startswith(_DATABASE_URL_PREFIXES):
            return value
        shown = value
        if "://" in value and not value.startswith("sqlite"):
            shown = value.partition("://")[0] + "://…"  # the rest may hold a password
        raise ValueError(f"must start with sqlite:/// or postgresql://, got {shown}")

    @field_validator("runpod_endpoint_url")
    @classmethod
    def _endpoint_shape(cls, value: str | None) -> str | None:
        if value is None or (_is_http_url(value) and _ENDPOINT_PATH.search(urlsplit(value).path)):
            return value
        raise ValueError(f"must be an http(s) URL ending in /v2/<endpoint id>, got {value}")

    @field_validator("public_url", "r2_endpoint_url", "auth_jwks_url", "webhook_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None or _is_http_url(value):
            return value
        raise ValueError(f"must be an absolute http(s) URL, got {value}")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and not (_is_http_url(origin) and parts.path in ("", "/")):
                raise ValueError(
                    f"must be comma-separated origins like https://app.example.com, got {origin}"
                )
        return value

    @field_validator("webhook_secret", "webhook_events", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        if len(value) > 2:
            raise ValueError("takes at most two secrets, the new one first, during a rotation")
        for secret in value:
            if (problem := secret_problem(secret)) is not None:
                raise ValueError(problem)
        return value

    @field_validator("webhook_events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in ALL_EVENTS]
        if unknown or not value:
            raise ValueError(
                f"must be a comma-separated list of {', '.join(sorted(ALL_EVENTS))}; "
                f"got {', '.join(unknown) or 'none'}"
            )
        return value

    @model_validator(mode="after")
    def _webhook_secret_given(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET must be set when WEBHOOK_URL is (whsec_…)")
        return self

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'export-gql.db'}"
        if self.storage_dir is None:
            self.storage_dir = self.data_dir / "storage"
        if self.environment == "production" and not (self.auth_jwt_secret or self.auth_jwks_url):
            raise ValueError("AUTH_JWT_SECRET or AUTH_JWKS_URL must be set in production")
        return self

    @model_validator(mode="after")
    def _r2_all_or_nothing(self) -> Settings:
        # Half an R2 configuration would silently mean local storage here while a
        # worker on RunPod writes to R2.
        given = {name.upper(): getattr(self, name) for name in _R2_REQUIRED}
        missing = [name for name, value in given.items() if not value]
        if missing and len(missing) < len(given):
            present = [name for name in given if name not in missing]
            raise ValueError(
                f"R2 settings incomplete: missing {', '.join(missing)} "
                f"(given: {', '.join(present)}); set all four R2_* variables, "
                "or none for local storage"
            )
        return self

    @model_validator(mode="after")
    def _timeout_bounds(self) -> Settings:
        if self.runpod_execution_timeout_min_s > self.runpod_execution_timeout_max_s:
            raise ValueError(
                "RUNPOD_EXECUTION_TIMEOUT_MIN_S must not be over RUNPOD_EXECUTION_TIMEOUT_MAX_S "
                f"({self.runpod_execution_timeout_min_s:g} > "
                f"{self.runpod_execution_timeout_max_s:g})"
            )
        return self

    @property
    def job_lease_ttl_s(self) -> float:
        return self.lease_ttl_s or min(MAX_DEFAULT_LEASE_TTL_S, 2 * self.poll_interval_s + 1.0)

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def embeds_local_worker(self) -> bool:
        return self.runpod_endpoint_url is None and self.local_worker

    @property
    def webhook_base_url(self) -> str | None:
        """Webhooks are only asked for when the endpoint can reach us.

        RunPod can when PUBLIC_URL is set; the embedded local worker always can,
        over loopback.
        """
        if self.public_url:
            return f"{self.public_url}/webhooks/runpod"
        if self.embeds_local_worker:
            loopback = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.host, self.host)
            if ":" in loopback and not loopback.startswith("["):
                loopback = f"[{loopback}]"
            return f"http://{loopback}:{self.port}/webhooks/runpod"
        return None

    @property
    def storage(self) -> StorageConfig:
        assert self.storage_dir is not None
        return StorageConfig(
            local_dir=self.storage_dir,
            r2_endpoint_url=self.r2_endpoint_url,
            r2_bucket=self.r2_bucket,
            r2_access_key_id=self.r2_access_key_id,
            r2_secret_access_key=self.r2_secret_access_key,
            r2_region=self.r2_region,
        )

    def local_signing_key(self) -> bytes:
        """The key for local download URLs, kept on disk so URLs survive a restart."""
        if self.storage_signing_key:
            return self.storage_signing_key.encode()
        key_file = self.data_dir / ".storage-signing-key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip().encode()


_DATABASE_URL_PREFIXES = (
    "sqlite:///",
    "sqlite+aiosqlite:///",
    "postgresql://",
    "postgres://",
    "postgresql+asyncpg://",
)
_ENDPOINT_PATH = re.compile(r"/v2/[^/]+$")
_R2_REQUIRED = ("r2_endpoint_url", "r2_bucket", "r2_access_key_id", "r2_secret_access_key")


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
