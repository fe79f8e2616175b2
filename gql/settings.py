"""Configuration, read once from the environment (or a `.env` file) by `Settings()`."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clients.storage import StorageConfig

DEFAULT_DATA_DIR = Path("./data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    # The address RunPod (webhooks) and browsers (local download URLs) reach this API at.
    public_url: str | None = None

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""

    runpod_endpoint_url: str | None = None
    runpod_api_key: str | None = None
    poll_interval_s: float = Field(default=1.0, gt=0)
    # Most concurrent RunPod requests the tracker makes at once.
    runpod_max_concurrency: int = Field(default=50, ge=1)
    runpod_retry_attempts: int = Field(default=4, ge=1)

    # With no RUNPOD_ENDPOINT_URL, `serve` runs exports on an embedded local worker.
    local_worker: bool = True
    local_worker_concurrency: int | None = Field(default=None, ge=1)
    local_worker_timeout_s: float = Field(default=600.0, gt=0)
    # The handler the local worker runs ("module:function", RunPod's `handler(job)` shape).
    local_worker_handler: str = "worker.handler:handler"

    auth_jwt_secret: str | None = None
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

    max_query_depth: int = 10
    max_aliases: int = 15
    max_query_tokens: int = 2000
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

    @field_validator("runpod_endpoint_url", "public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'export-gql.db'}"
        if self.storage_dir is None:
            self.storage_dir = self.data_dir / "storage"
        if self.environment == "production" and not (self.auth_jwt_secret or self.auth_jwks_url):
            raise ValueError("AUTH_JWT_SECRET or AUTH_JWKS_URL must be set in production")
        if self.auth_jwt_secret is not None and len(self.auth_jwt_secret) < 32:
            raise ValueError("AUTH_JWT_SECRET must be at least 32 characters")
        return self

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
