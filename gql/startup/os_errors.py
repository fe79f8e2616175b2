"""Why a connection or file operation failed, in a few words, whichever library wrapped it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator


def os_error_cause(error: BaseException) -> str | None:
    """'connection refused', 'unknown host', 'timed out'... from the exception or the
    errors it was raised from; None when no OS error is among them."""
    for link in exception_chain(error):
        if isinstance(link, socket.gaierror):
            return "unknown host"
        if isinstance(link, TimeoutError):
            return "timed out"
        if isinstance(link, OSError) and link.errno:
            return os.strerror(link.errno).lower()
    return None


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """The exception, then the one it was raised from (or during), and so on."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__
