"""A minimal keep-alive HTTP/1.1 client on asyncio streams.

httpx costs far more CPU per request than the servers under test spend
answering it; on a 2-CPU machine that would leave the servers less CPU than
they would have in production. This client writes one request and reads one
`Content-Length` or chunked answer, reconnecting when the server has closed an
idle connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class HTTPError(Exception):
    pass


class HTTPConnection:
    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._fixed = f"Host: {host}:{port}\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, timeout_s: float = 10.0
    ) -> tuple[int, bytes]:
        """(status, body). Retries once on a connection the server closed while idle."""
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode() + (body or b"")
        reused = self._writer is not None and not self._writer.is_closing()
        try:
            return await asyncio.wait_for(self._exchange(data), timeout_s)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            self.close()
            # The server may close a kept-alive connection between two requests; then
            # nothing of the answer arrived and sending again is safe.
            unanswered = not isinstance(error, asyncio.IncompleteReadError) or not error.partial
            if not (reused and unanswered):
                raise HTTPError(f"{method} {path}: {error!r}") from None
        except TimeoutError:
            self.close()
            raise
        try:
            return await asyncio.wait_for(self._exchange(data), timeout_s)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            self.close()
            raise HTTPError(f"{method} {path}: {error!r}") from None
        except TimeoutError:
            self.close()
            raise

    async def json(self, method: str, path: str, value: Any = None) -> tuple[int, Any]:
        body = None if value is None else json.dumps(value).encode()
        status, answer = await self.request(method, path, body)
        return status, json.loads(answer) if answer else None

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        reader, writer = await self._open()
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.read()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
