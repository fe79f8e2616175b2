"""A backend receiving our outbound webhooks on loopback: it records every request
and answers as the test instructs (a status, headers, a delay), or is down."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks.webhooks import Webhook

from tests.support.app_server import free_port
from tests.support.lifecycle import Service


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Wait this long before answering (a receiver slower than the timeout)."""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float
    """time.time() when it arrived."""
    answered: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        decoded = json.loads(self.body)
        assert isinstance(decoded, dict)
        return decoded

    @property
    def type(self) -> str:
        return str(self.event["type"])

    @property
    def ok(self) -> bool:
        return 200 <= self.answered < 300

    def verify(self, secret: str) -> dict[str, Any]:
        """As a receiver would: raises WebhookVerificationError unless signed with `secret`."""
        verified = Webhook(secret).verify(self.body, self.headers)
        assert isinstance(verified, dict)
        return verified


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections under a burst, and
    # their SYN retries (1 s, 3 s…) would be timed as the sender's latency.
    request_queue_size = 1024


class WebhookReceiver(Service):
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._lock = threading.Lock()
        self._answers: deque[Answer] = deque()
        self._default = Answer()
        self._received: list[Received] = []
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real backend

            def do_POST(self) -> None:
                if receiver._server is None:
                    # Down: a connection kept alive from before is cut, not answered.
                    self.close_connection = True
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                answer = receiver._next_answer()
                receiver._record(self, body, answer.status)
                if answer.delay_s:
                    receiver._released.wait(answer.delay_s)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: connections are refused until `start` again (same port, same records)."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._released = threading.Event()

    def answer(self, *answers: Answer) -> None:
        """The next requests are answered these ways, in order; then the default."""
        with self._lock:
            self._answers.extend(answers)

    def answer_always(self, answer: Answer) -> None:
        with self._lock:
            self._default = answer

    def release(self) -> None:
        """Answer the requests held by a delay now."""
        self._released.set()

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def delivered(self) -> list[Received]:
        """Requests answered 2xx, each webhook id once, in order of arrival."""
        seen: set[str] = set()
        result = []
        for request in self.received:
            if request.ok and request.webhook_id not in seen:
                seen.add(request.webhook_id)
                result.append(request)
        return result

    def delivered_for(self, job_id: str) -> list[str]:
        """The event types delivered for a job, in order."""
        return [r.type for r in self.delivered() if r.event["data"].get("id") == job_id]

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._answers.popleft() if self._answers else self._default

    def _record(self, handler: BaseHTTPRequestHandler, body: str, status: int) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = Received(handler.path, headers, body, time.time(), status)
        with self._lock:
            self._received.append(request)
