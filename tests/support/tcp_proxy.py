"""A TCP forwarder on loopback: a server that appears on a port when a test says so."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from types import TracebackType
from typing import Self


class TcpProxy:
    """While entered, forwards every connection to `127.0.0.1:port` on to `target`."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self._server = _ForwardingServer(("127.0.0.1", port), target)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Forward(socketserver.BaseRequestHandler):
    server: _ForwardingServer

    def handle(self) -> None:
        with socket.create_connection(self.server.target) as upstream:
            back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            back.start()
            _pump(self.request, upstream)
            back.join()


class _ForwardingServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(address, _Forward)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    # Pass the end of the stream on, so the other direction ends too.
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
