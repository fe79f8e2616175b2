"""The live API processes: each registers under a unique id and renews its entry.

A process's registration is also the lifetime of its job leases: renewing it
renews them all in one write, however many jobs it follows; when the process
dies, its registration and its leases run out together.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from gql.db.database import Database


def new_process_id() -> str:
    """Unique per process start; readable in the database (`lease_owner`) by operators."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class ClusterSize:
    processes: int
    """Live API processes, this one included."""
    jobs: int
    """Jobs that need a follower (unfinished, or owing RunPod a cancel)."""


@dataclass(frozen=True)
class Heartbeat:
    size: ClusterSize
    lapsed: bool
    """This process's registration had run out before this heartbeat: other
    processes may have claimed its jobs meanwhile."""


class ProcessRegistry:
    def __init__(self, database: Database, process_id: str, *, ttl_s: float) -> None:
        self._db = database
        self.process_id = process_id
        self._ttl_s = ttl_s

    async def heartbeat(self) -> Heartbeat:
        """Say this process (and its leases) lives another `ttl_s`."""
        beat = await self._db.fetch_one("heartbeat", id=self.process_id, ttl=self._ttl_s)
        row = await self._db.fetch_one("cluster_size")
        assert beat is not None and row is not None
        size = ClusterSize(processes=max(1, int(row["processes"])), jobs=int(row["jobs"]))
        return Heartbeat(size=size, lapsed=bool(beat["lapsed"]))

    async def leave(self) -> None:
        await self._db.execute("forget_process", id=self.process_id)
