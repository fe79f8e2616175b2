"""The live API processes: each registers under a unique id and renews its entry."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from gql.db import Database


def new_process_id() -> str:
    """Unique per process start; readable in the database (`lease_owner`) by operators."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class ClusterSize:
    processes: int
    """Live API processes, this one included."""
    jobs: int
    """Jobs that need a follower (unfinished, or owing RunPod a cancel)."""


class ProcessRegistry:
    def __init__(self, database: Database, process_id: str, *, ttl_s: float) -> None:
        self._db = database
        self.process_id = process_id
        self._ttl_s = ttl_s

    async def heartbeat(self) -> ClusterSize:
        """Say this process is alive for another `ttl_s`; returns the cluster's size."""
        await self._db.execute("heartbeat", id=self.process_id, ttl=self._ttl_s)
        row = await self._db.fetch_one("cluster_size")
        assert row is not None
        return ClusterSize(processes=max(1, int(row["processes"])), jobs=int(row["jobs"]))

    async def leave(self) -> None:
        await self._db.execute("forget_process", id=self.process_id)
