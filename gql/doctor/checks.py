"""The checks, in the order they are shown; each looks at one part of a deployment."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from clients.runpod import (
    RunPodClient,
    RunPodError,
    RunPodRejected,
    RunPodUnavailable,
    make_http_client,
)
from gql.auth.jwks import JWKSKeys, JWKSUnavailable
from gql.auth.tokens import Authenticator, AuthError
from gql.config.settings import Settings
from gql.db.database import migration_scripts, sqlite_path
from gql.doctor.outcome import CheckResult, Outcome
from gql.doctor.storage_check import check_storage
from gql.startup.database_wait import DatabaseUnreachable, database_location, open_database
from gql.startup.os_errors import os_error_cause
from gql.webhooks.events import new_webhook_id, test_body
from gql.webhooks.setup import webhook_sender

Check = Callable[[Settings], Awaitable[Outcome]]


async def check_settings(settings: Settings) -> Outcome:
    """Invalid settings never get here (every command refuses them); this says what
    the valid ones amount to."""
    if settings.runpod_endpoint_url:
        runpod = f"RunPod endpoint {settings.runpod_endpoint_url}"
    elif settings.local_worker:
        runpod = "embedded local worker"
    else:
        runpod = "no RunPod endpoint"
    storage = (
        f"R2 bucket {settings.r2_bucket!r}"
        if settings.storage.uses_r2
        else f"local storage in {settings.storage_dir}"
    )
    where = database_location(settings.database_url)
    return Outcome.passed(f"valid: {settings.environment}; {where}; {runpod}; {storage}")


async def check_database(settings: Settings) -> Outcome:
    url = settings.database_url
    where = database_location(url)
    if url.startswith("sqlite") and not sqlite_path(url).exists():
        return Outcome.passed(f"{where}: not created yet; serve creates it")
    try:
        database = await open_database(url, migrate=False)
    except DatabaseUnreachable as error:
        return Outcome.failed(str(error))
    try:
        applied = await database.applied_migrations()
    finally:
        await database.disconnect()
    known = migration_scripts()
    unknown = sorted(applied - known.keys())
    if unknown:
        return Outcome.failed(
            f"{where}: migrations {unknown} are unknown to this version of export-gql"
        )
    pending = [
        entry.name.removesuffix(".sql")
        for version, entry in known.items()
        if version not in applied
    ]
    if pending:
        return Outcome.passed(
            f"{where}: reachable; pending migrations: {', '.join(pending)} "
            "(serve applies them at start)"
        )
    return Outcome.passed(f"{where}: reachable; migrations up to date ({len(known)} applied)")


async def check_runpod(settings: Settings) -> Outcome:
    url = settings.runpod_endpoint_url
    if url is None:
        if settings.local_worker:
            return Outcome.passed("no RUNPOD_ENDPOINT_URL: serve runs exports on its local worker")
        return Outcome.failed("no RUNPOD_ENDPOINT_URL and LOCAL_WORKER=false: exports are refused")
    async with make_http_client() as http:
        try:
            health = await RunPodClient(http, url, settings.runpod_api_key, attempts=1).health()
        except RunPodRejected as error:
            if error.status_code in {401, 403}:
                key = "refused" if settings.runpod_api_key else "not set"
                return Outcome.failed(
                    f"authentication failed: RUNPOD_API_KEY {key} "
                    f"(HTTP {error.status_code} from {url}/health)"
                )
            return Outcome.failed(f"{url} rejected the request: {error}")
        except RunPodUnavailable as error:
            return Outcome.failed(f"cannot reach {url}: {os_error_cause(error) or error}")
        except RunPodError as error:
            return Outcome.failed(f"{url}/health: {error}")
    return Outcome.passed(f"{url}/health answered with the API key; workers: {_counts(health)}")


async def check_webhooks(settings: Settings) -> Outcome:
    if settings.runpod_endpoint_url is None:
        return Outcome.passed(
            "the embedded local worker calls back over loopback"
            if settings.embeds_local_worker
            else "no RunPod endpoint to call back"
        )
    public_url = settings.public_url
    if public_url is None:
        return Outcome.warned(
            "PUBLIC_URL is not set: webhooks are off; jobs are followed by polling "
            f"every {settings.poll_interval_s:g} s"
        )
    if _is_loopback(urlsplit(public_url).hostname or ""):
        return Outcome.warned(
            f"PUBLIC_URL {public_url} is a loopback address: a remote RunPod cannot call back"
        )
    return Outcome.passed(f"RunPod calls back at {settings.webhook_base_url}")


async def check_backend(settings: Settings) -> Outcome:
    """Outbound webhooks: a signed `webhook.test` event, and the receiver's answer."""
    url = settings.webhook_url
    if url is None:
        return Outcome.passed("WEBHOOK_URL is not set: no events are sent to a backend")
    sender = webhook_sender(settings)
    try:
        attempt = await sender.send(new_webhook_id(), test_body(datetime.now(UTC)))
    finally:
        await sender.aclose()
    if attempt.delivered:
        return Outcome.passed(f"{url} answered {attempt.status} to a signed webhook.test event")
    if attempt.status is None:
        return Outcome.failed(f"cannot reach {url}: {attempt.error}")
    return Outcome.failed(f"{url} answered {attempt.status} to a signed webhook.test event")


async def check_auth(settings: Settings) -> Outcome:
    secret, jwks_url = settings.auth_jwt_secret, settings.auth_jwks_url
    if secret is None and jwks_url is None:
        detail = "neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set: every caller is the local user"
        if _is_loopback(settings.host):
            return Outcome.passed(f"{detail} (the API listens on loopback only)")
        return Outcome.warned(f"{detail}, and the API listens on {settings.host}")
    details = []
    if secret is not None:
        authenticator = Authenticator(secret)
        try:
            token = authenticator.issue("doctor", ttl=timedelta(minutes=1))
            user = await authenticator.user_from_token(token)
        except AuthError as error:
            return Outcome.failed(f"JWT round trip failed: {error}")
        if user != "doctor":
            return Outcome.failed(f"JWT round trip returned the user {user!r}")
        details.append("HS256 tokens signed with AUTH_JWT_SECRET are issued and verified")
    if jwks_url is not None:
        keys = JWKSKeys(jwks_url)
        try:
            count = await keys.fetch_now()
        except JWKSUnavailable as error:
            return Outcome.failed(
                f"cannot read the identity provider's keys at {jwks_url}: {error}"
            )
        finally:
            await keys.aclose()
        if count == 0:
            return Outcome.failed(f"{jwks_url} publishes no signing keys")
        details.append(f"{count} signing key(s) read from {jwks_url}")
    return Outcome.passed("; ".join(details))


CHECKS: tuple[tuple[str, Check], ...] = (
    ("settings", check_settings),
    ("database", check_database),
    ("runpod", check_runpod),
    ("storage", check_storage),
    ("webhooks", check_webhooks),
    ("backend", check_backend),
    ("auth", check_auth),
)


async def run_checks(settings: Settings) -> list[CheckResult]:
    """Every check, at the same time; results in the order of CHECKS."""
    outcomes = await asyncio.gather(*(_guarded(check, settings) for _, check in CHECKS))
    return [CheckResult(name, outcome) for (name, _), outcome in zip(CHECKS, outcomes, strict=True)]


async def _guarded(check: Check, settings: Settings) -> Outcome:
    # A check that breaks is reported as failed, never as a traceback.
    try:
        return await check(settings)
    except Exception as error:
        return Outcome.failed(f"the check itself failed: {type(error).__name__}: {error}")


def _counts(health: dict[str, Any]) -> str:
    workers = health.get("workers")
    if not isinstance(workers, dict):
        return "not reported"
    up = [f"{state} {count}" for state, count in workers.items() if count]
    return ", ".join(up) or "none up"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
