"""The base of the servers tests start, and a `start` for fixtures that stops them all."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import ParamSpec, Self, TypeVar


class Service(ABC):
    """A server a test starts and stops, by hand or with `with`."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedServer(Service):
    """A `socketserver` server, serving from a daemon thread while started."""

    def __init__(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


P = ParamSpec("P")
S = TypeVar("S", bound=Service)


@contextlib.contextmanager
def starter(make: Callable[P, S]) -> Iterator[Callable[P, S]]:
    """A `start(...)` that starts what `make(...)` builds; all it started stop on leaving."""
    with contextlib.ExitStack() as running:

        def start(*args: P.args, **kwargs: P.kwargs) -> S:
            service = make(*args, **kwargs)
            running.enter_context(service)
            return service

        yield start
