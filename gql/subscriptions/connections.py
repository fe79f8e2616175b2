"""A cap on each user's open subscription connections, on this process.

A connection (websocket, or an HTTP subscription stream) holds memory and a file
descriptor for as long as it stays open: the cap keeps one user, or one runaway
frontend, from taking a server's share of them. It counts per process, which is
where those resources are; behind a load balancer a user may hold the cap on
each process.
"""

from __future__ import annotations

from collections import Counter


class ConnectionLimitReached(Exception):
    """Too many open subscription connections for this user."""


class UserConnections:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, user_id: str) -> None:
        """Count a new connection of the user's; raises ConnectionLimitReached instead
        when the user has `limit` open already."""
        if self._open[user_id] >= self.limit:
            raise ConnectionLimitReached(f"At most {self.limit} open connections per user")
        self._open[user_id] += 1

    def release(self, user_id: str) -> None:
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]

    def open_for(self, user_id: str) -> int:
        return self._open[user_id]
