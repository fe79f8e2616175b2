"""An empty PostgreSQL database for a bench that runs several API processes."""

from __future__ import annotations

import contextlib

import asyncpg


async def fresh_database(url: str) -> None:
    """Create the database `url` names when missing, and empty its public schema."""
    name = url.rsplit("/", 1)[-1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(url)
    try:
        with contextlib.suppress(asyncpg.PostgresError):
            await connection.execute("DROP SCHEMA public CASCADE")
        await connection.execute("CREATE SCHEMA IF NOT EXISTS public")
    finally:
        await connection.close()
