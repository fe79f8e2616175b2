"""The narrow database interface: named queries over `databases`, on SQLite or PostgreSQL.

SQLite allows one writer at a time. Rather than let concurrent requests collide
on "database is locked", the SQLite backend holds one connection (WAL mode) and
every statement queues on it; PostgreSQL uses asyncpg's connection pool.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, cast

import databases

from gql.clock import format_time, utcnow

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]

_ADVISORY_LOCK = "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:key, 0))"

_NAME_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)

Dialect = Literal["sqlite", "postgresql"]

# What the placeholders of `sql/queries.sql` stand for on each database.
_PLACEHOLDERS: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "{now}": "((julianday('now') - 2440587.5) * 86400.0)",
        "{skip_locked}": "",
    },
    "postgresql": {
        "{now}": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
        "{skip_locked}": "FOR UPDATE SKIP LOCKED",
    },
}


@dataclass(frozen=True)
class Statement:
    """A named query of `sql/queries.sql` and its values, to run later."""

    name: str
    values: Mapping[str, Any]


@cache
def load_queries(dialect: Dialect) -> dict[str, str]:
    """Parse `sql/queries.sql` once per dialect into {name: statement}."""
    text = resources.files("gql.db.sql").joinpath("queries.sql").read_text()
    for placeholder, sql in _PLACEHOLDERS[dialect].items():
        text = text.replace(placeholder, sql)
    parts = _NAME_HEADER.split(text)[1:]
    return {
        name: _strip_comments(body).rstrip().rstrip(";")
        for name, body in zip(parts[::2], parts[1::2], strict=True)
    }


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = _normalise_url(url)
        self.dialect: Dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        options: dict[str, Any] = {}
        if self.dialect == "postgresql":
            options = {"min_size": 1, "max_size": pool_size}
        self._database = databases.Database(self.url, **options)
        self._sqlite_connection: databases.core.Connection | None = None
        self._queries = load_queries(self.dialect)

    async def connect(self, *, migrate: bool = True) -> None:
        if self.dialect == "sqlite":
            sqlite_path(self.url).parent.mkdir(parents=True, exist_ok=True)
        await self._database.connect()
        if self.dialect == "sqlite":
            connection = self._database.connection()
            await connection.__aenter__()
            self._sqlite_connection = connection
            for pragma in (
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA foreign_keys = ON",
            ):
                await connection.execute(pragma)
            # Rows read by column name, as asyncpg's records are.
            connection.raw_connection.row_factory = sqlite3.Row
        if migrate:
            await self._migrate()

    async def disconnect(self) -> None:
        if self._sqlite_connection is not None:
            await self._sqlite_connection.__aexit__(None, None, None)
            self._sqlite_connection = None
        await self._database.disconnect()

    @property
    def _target(self) -> Any:
        return self._sqlite_connection or self._database

    @asynccontextmanager
    async def serialized(self, *keys: str) -> AsyncIterator[None]:
        """Run the block's statements one holder of each of `keys` at a time, across
        processes (callers name shared keys in the same order).

        PostgreSQL: a transaction holding a transaction-level advisory lock on
        each key; each statement in it sees what the previous holder committed.
        SQLite: nothing to take. It serves one process, whose single connection
        runs one statement at a time, so a block of one statement is atomic.
        """
        if self.dialect == "sqlite":
            yield
            return
        async with self._database.transaction():
            for key in keys:
                # Through the driver, like every statement: `databases` would compile it.
                await self.fetch_all_sql(_ADVISORY_LOCK, {"key": key})
            yield

    async def fetch_one(self, name: str, /, **values: Any) -> Row | None:
        return await self.fetch_one_sql(self._queries[name], values)

    async def fetch_all(self, name: str, /, **values: Any) -> list[Row]:
        return await self.fetch_all_sql(self._queries[name], values)

    async def execute(self, name: str, /, **values: Any) -> None:
        await self.fetch_all_sql(self._queries[name], values)

    async def fetch_one_then(
        self, name: str, values: Mapping[str, Any], then: Sequence[Statement]
    ) -> Row | None:
        """Run the named query; when it returns a row, run `then` in the same
        transaction (what the change it made owes, such as an outbox row).
        Returns the first row, or None (and nothing is written by `then`)."""
        if not then:
            return await self.fetch_one(name, **values)
        if self._sqlite_connection is not None:
            sqlite = self._sqlite_connection.raw_connection
            steps = [(self._queries[step.name], step.values) for step in then]
            # One trip to aiosqlite's thread, so no other statement runs in between.
            return cast(
                Row | None,
                await sqlite._execute(_together, sqlite._conn, self._queries[name], values, steps),
            )
        async with self._database.transaction():
            row = await self.fetch_one_sql(self._queries[name], values)
            if row is not None:
                for step in then:
                    await self.fetch_all_sql(self._queries[step.name], step.values)
        return row

    async def fetch_one_sql(self, sql: str, values: Mapping[str, Any]) -> Row | None:
        rows = await self.fetch_all_sql(sql, values)
        return rows[0] if rows else None

    async def fetch_all_sql(self, sql: str, values: Mapping[str, Any]) -> list[Row]:
        """The statement's rows, through the driver itself.

        `databases` would rebuild and recompile each statement with SQLAlchemy
        before running it, which costs more than running it; named parameters go
        to the driver as they are instead (sqlite3 takes `:name`; asyncpg gets
        `$n`, translated once per statement and then prepared and cached by it).
        """
        if self._sqlite_connection is not None:
            sqlite = self._sqlite_connection.raw_connection
            # One trip to aiosqlite's thread: run and fetch together.
            return cast(list[Row], await sqlite.execute_fetchall(sql, values))
        positional, names = _positional(sql)
        async with self._database.connection() as connection:
            asyncpg = connection.raw_connection
            return cast(list[Row], await asyncpg.fetch(positional, *(values[n] for n in names)))

    async def _migrate(self) -> None:
        """Apply the numbered files in `sql/migrations/` that have not run yet."""
        if self.dialect == "postgresql":
            # Serialise concurrent start-ups of several API processes (creating the
            # bookkeeping table included: IF NOT EXISTS does not survive a race).
            async with self._database.transaction():
                await self._database.execute("SELECT pg_advisory_xact_lock(7426001)")
                await self._apply_migrations()
        else:
            await self._apply_migrations()

    async def applied_migrations(self) -> set[int]:
        """Versions recorded in `schema_migrations` (none before the first start)."""
        table_exists = (
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            if self.dialect == "sqlite"
            else "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
        )
        if await self._target.fetch_one(table_exists) is None:
            return set()
        rows = await self._target.fetch_all("SELECT version FROM schema_migrations")
        return {row._mapping["version"] for row in rows}

    async def _apply_migrations(self) -> None:
        await self._target.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        applied = await self.applied_migrations()
        serial_pk = (
            "INTEGER PRIMARY KEY AUTOINCREMENT"
            if self.dialect == "sqlite"
            else "SERIAL PRIMARY KEY"
        )
        for version, entry in migration_scripts().items():
            if version in applied:
                continue
            script = _strip_comments(entry.read_text()).replace("{serial_pk}", serial_pk)
            for statement in filter(None, (part.strip() for part in script.split(";"))):
                await self._target.execute(statement)
            await self._target.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :now)",
                {"version": version, "now": format_time(utcnow())},
            )
            logger.info("migration applied", extra={"action": "migrate", "version": version})


def _together(
    connection: sqlite3.Connection,
    sql: str,
    values: Mapping[str, Any],
    then: list[tuple[str, Mapping[str, Any]]],
) -> Row | None:
    """`Database.fetch_one_then` on SQLite, in aiosqlite's thread, as one transaction."""
    connection.execute("SAVEPOINT together")
    try:
        rows = connection.execute(sql, values).fetchall()
        if rows:
            for statement, statement_values in then:
                connection.execute(statement, statement_values).fetchall()
    except BaseException:
        connection.execute("ROLLBACK TO together")
        connection.execute("RELEASE together")
        raise
    connection.execute("RELEASE together")
    return cast(Row, rows[0]) if rows else None


_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=1024)
def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with `:name` parameters as asyncpg's `$1, $2, ...`, and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match[1]
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED_PARAMETER.sub(number, sql), tuple(names)


def _normalise_url(url: str) -> str:
    """Accept the usual spellings (`postgres://`, `sqlite:///relative/path`)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    return url


def sqlite_path(url: str) -> Path:
    return Path(url.split(":///", 1)[1].split("?", 1)[0])


def migration_scripts() -> dict[int, Traversable]:
    """The numbered files of `sql/migrations/`, by version, in order."""
    folder = resources.files("gql.db.sql").joinpath("migrations")
    entries = sorted(folder.iterdir(), key=lambda item: item.name)
    return {int(e.name.split("_", 1)[0]): e for e in entries if e.name.endswith(".sql")}
