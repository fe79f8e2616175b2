"""Connecting to the database at start, waiting for it when it is late.

On a container platform the database often answers a few seconds after the API
starts, so network failures are retried with backoff for a while; a refusal
that waiting cannot fix (authentication, a missing database, an unwritable SQLite
path) ends the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from urllib.parse import urlsplit

import asyncpg
import stamina

from gql.config.errors import StartupError
from gql.db.database import Database, sqlite_path
from gql.startup.os_errors import os_error_cause

logger = logging.getLogger(__name__)

# One connection attempt; the total wait is the caller's.
ATTEMPT_TIMEOUT_S = 10.0

_POSTGRES_NOT_READY = (
    OSError,  # refused, unknown host (DNS not there yet), reset
    TimeoutError,
    asyncpg.CannotConnectNowError,  # "the database system is starting up"
    asyncpg.TooManyConnectionsError,
)


class DatabaseUnreachable(StartupError):
    def __init__(self, url: str, cause: Exception) -> None:
        verb = "open" if url.startswith("sqlite") else "reach"
        super().__init__(f"cannot {verb} {database_location(url)}: {_describe(cause)}")
        self.transient = not url.startswith("sqlite") and isinstance(cause, _POSTGRES_NOT_READY)


def database_location(url: str) -> str:
    """'PostgreSQL at host:port' or 'SQLite at path', with no credentials."""
    if url.startswith("sqlite"):
        return f"SQLite at {sqlite_path(url)}"
    parts = urlsplit(url)
    return f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}"


async def open_database(url: str, *, migrate: bool) -> Database:
    """One attempt at connecting; DatabaseUnreachable says why it failed."""
    database = Database(url)
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
            await database.connect(migrate=migrate)
    except Exception as error:
        with contextlib.suppress(Exception):  # whatever part of it did connect
            await database.disconnect()
        raise DatabaseUnreachable(url, error) from error
    return database


async def wait_for_database(url: str, timeout_s: float) -> None:
    """Return once the database accepts a connection; DatabaseUnreachable when it
    still does not after `timeout_s` seconds, or cannot by waiting."""
    async for attempt in stamina.retry_context(
        on=_worth_waiting,
        attempts=None if timeout_s > 0 else 1,
        timeout=timeout_s or None,
        wait_initial=0.5,
        wait_max=5.0,
        wait_jitter=0.5,
    ):
        with attempt:
            try:
                database = await open_database(url, migrate=False)
            except DatabaseUnreachable as error:
                if error.transient:
                    logger.warning(
                        "attempt %d to connect to the database failed: %s",
                        attempt.num,
                        error,
                        extra={"action": "database_wait"},
                    )
                raise
            await database.disconnect()


def _worth_waiting(error: Exception) -> bool:
    return isinstance(error, DatabaseUnreachable) and error.transient


def _describe(error: Exception) -> str:
    if isinstance(error, asyncpg.PostgresError | sqlite3.Error):
        return str(error)  # the server's own words: role "x" does not exist, ...
    return os_error_cause(error) or f"{type(error).__name__}: {error}"
