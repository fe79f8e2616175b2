"""A TCP forwarder on loopback: a server that appears on a port when a test says so."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading

from tests.support.lifecycle import ThreadedServer


class TcpProxy(ThreadedServer):
    """While started, forwards every connection to `127.0.0.1:port` on to `target`."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        super().__init__(_ForwardingServer(("127.0.0.1", port), target))


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
