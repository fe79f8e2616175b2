"""Text frames handed straight to uvicorn's websocket connection.

Through ASGI, every frame costs a chain of coroutines (Starlette's state check,
uvicorn's `send` and its flow-control wait) around what, on an open connection
whose buffer has room, is two synchronous calls: the websockets protocol frames
the text and the transport takes the bytes. A change pushed to thousands of
subscribers pays that chain per subscriber, so frames make the two calls
themselves when the connection is uvicorn's `websockets-sansio` one (its
default since 0.35) and ready to take them, exactly as its `send` would.

This reads uvicorn's connection attributes, which are not a public interface:
when the server is not uvicorn, or its websocket implementation is another or
has changed, `connection_of` finds nothing and frames go through ASGI.
`tests/test_direct_frames.py` fails if the installed uvicorn stops taking
this path.
"""

from __future__ import annotations

import enum
from typing import Any

from websockets.exceptions import WebSocketException

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import (
        WebSocketsSansIOProtocol as _Connection,
    )
except ImportError:  # another server, or a uvicorn without it
    _Connection = None  # type: ignore[assignment,misc]

_EXPECTED_ATTRIBUTES = ("conn", "transport", "writable", "close_sent", "disconnected")


class Sent(enum.Enum):
    SENT = "sent"
    # The transport's buffer is full: send through ASGI, which waits for room.
    USE_ASGI = "use_asgi"
    GONE = "gone"


def connection_of(asgi_send: object) -> Any | None:
    """uvicorn's connection behind an ASGI `send`, when frames can go to it directly."""
    connection = getattr(asgi_send, "__self__", None)
    if _Connection is None or type(connection) is not _Connection:
        return None
    if getattr(asgi_send, "__func__", None) is not _Connection.send:
        return None
    if not all(hasattr(connection, name) for name in _EXPECTED_ATTRIBUTES):
        return None
    return connection


def send_text(connection: Any, frame: str) -> Sent:
    """What uvicorn's `send` does with a `websocket.send`, when it would not wait."""
    if connection.disconnected or connection.close_sent:
        return Sent.GONE
    if not connection.writable.is_set():
        return Sent.USE_ASGI
    protocol = connection.conn
    try:
        protocol.send_text(frame.encode())
    except WebSocketException:  # the client's close is under way
        return Sent.GONE
    connection.transport.write(b"".join(protocol.data_to_send()))
    return Sent.SENT
