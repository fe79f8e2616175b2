"""Load-generator processes, commanded by the bench over a pipe.

Each process runs one asyncio loop (uvloop when installed) holding websocket
subscriptions, REST pollers or mutation clients, and optionally the driver that
moves jobs on the fake (or on the raw websocket server). Receipts are timed with
`time.time()` as their bytes arrive; the bench runs on one machine, so those
times compare with the driver's and the bench's.

The bench starts and commands them through `bench.generators.LoadGenerators`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from bench.harness import child_setup
from bench.httpclient import HTTPConnection, HTTPError
from bench.wsclient import Subscription, TextChannel, WebSocketError, connect

BUCKETS_PER_S = 20
"""Receipt counts are kept per 1/20 s, to sum them over any window afterwards."""
CONNECT_TIMEOUT_S = 15.0
READY_TIMEOUT_S = 30.0


def _error_kind(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError):
        return f"os error {error.errno}"
    return str(error)[:120] or type(error).__name__


# --- the process ---


@dataclass
class _Waiter:
    left: int
    done: asyncio.Future[None]


class Recorder:
    """What arrives on the subscriptions: (message, time) pairs, per-bucket counts, or
    (job id, time) of each COMPLETE.

    The driver writes a unique `message` with every change, so a receipt names
    the change it shows. `expect` lets the closed-loop driver wait until this
    process's subscribers have all seen one.
    """

    def __init__(self) -> None:
        self.mode = "off"
        self.samples: list[tuple[str, float]] = []
        self.buckets: Counter[int] = Counter()
        self.received = 0
        self._waiters: dict[str, _Waiter] = {}

    def reset(self, mode: str) -> None:
        self.mode = mode
        self.samples = []
        self.buckets = Counter()
        self.received = 0

    def on_next(self, _sub: Subscription, payload: dict[str, Any], now: float) -> None:
        job = (payload.get("data") or {}).get("exportJob") or {}
        token = job.get("message") or ""
        self.received += 1
        if self.mode == "latency":
            self.samples.append((token, now))
        elif self.mode == "complete":
            if job.get("status") == "COMPLETE":
                self.samples.append((job.get("id") or "", now))
        elif self.mode == "count":
            self.buckets[int(now * BUCKETS_PER_S)] += 1
        waiter = self._waiters.get(token)
        if waiter is not None:
            waiter.left -= 1
            if waiter.left <= 0 and not waiter.done.done():
                waiter.done.set_result(None)

    def expect(self, token: str, count: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if count <= 0:
            future.set_result(None)
        else:
            self._waiters[token] = _Waiter(count, future)
        return future

    def forget(self, token: str) -> None:
        self._waiters.pop(token, None)


class _FakeBackend:
    """Moves a job on the RunPod fake: PATCH its output and (maybe) fire its webhook."""

    def __init__(self, host: str, port: int) -> None:
        self._connection = HTTPConnection(host, port)

    async def change(self, job: dict[str, Any], progress: int, token: str, webhook: bool) -> None:
        path = f"/_control/jobs/{job['runpod_id']}"
        output = {"progress": progress, "message": token}
        body = {"status": "IN_PROGRESS", "output": output, "webhook": False, "notify": webhook}
        status, _ = await self._connection.json("PATCH", path, body)
        if status != 200:
            raise HTTPError(f"PATCH job: {status}")

    def close(self) -> None:
        self._connection.close()


class _RawBackend:
    """Asks the raw websocket server to broadcast a job's new state."""

    def __init__(self, channel: TextChannel) -> None:
        self._channel = channel

    @classmethod
    async def open(cls, host: str, port: int) -> _RawBackend:
        channel = await connect(lambda: TextChannel(host, port, "/control"), host, port)
        await asyncio.wait_for(channel.opened, CONNECT_TIMEOUT_S)
        return cls(channel)

    async def change(self, job: dict[str, Any], progress: int, token: str, webhook: bool) -> None:
        command = json.dumps({"job": job["id"], "progress": progress, "message": token})
        await self._channel.ask(command, 10.0)

    def close(self) -> None:
        self._channel.close()


Backend = _FakeBackend | _RawBackend


class LoadGenerator:
    def __init__(self) -> None:
        self.subs: list[Subscription] = []
        self.recorder = Recorder()

    # --- subscriptions ---

    async def connect(
        self,
        *,
        url: str,
        token: str | None,
        query: str,
        jobs: list[str],
        counts: list[int],
        concurrency: int,
        batch_timeout_s: float,
    ) -> dict[str, Any]:
        """Open sum(counts) connections, counts[i] subscribed to jobs[i]; wait until each
        has its first message (or failed, or `batch_timeout_s` passed for them all)."""
        parts = urlsplit(url)
        host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
        init = {"authorization": f"Bearer {token}"} if token else {}
        gate = asyncio.Semaphore(concurrency)
        failures: Counter[str] = Counter()
        started = time.perf_counter()

        def on_next(sub: Subscription, payload: dict[str, Any], now: float) -> None:
            self.recorder.on_next(sub, payload, now)

        async def one(index: int, job_id: str) -> bool:
            async with gate:

                def factory() -> Subscription:
                    return Subscription(
                        host,
                        port,
                        path,
                        init_payload=init,
                        query=query,
                        variables={"id": job_id},
                        on_next=on_next,
                        tag=index,
                    )

                try:
                    sub = await asyncio.wait_for(connect(factory, host, port), CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError) as error:
                    failures[f"connect: {_error_kind(error)}"] += 1
                    return False
                try:
                    await asyncio.wait_for(asyncio.shield(sub.ready), READY_TIMEOUT_S)
                except (TimeoutError, WebSocketError) as error:
                    failures[f"subscribe: {_error_kind(error)}"] += 1
                    sub.abort()
                    return False
                self.subs.append(sub)
                return True

        tasks = [
            asyncio.ensure_future(one(index, job_id))
            for index, (job_id, count) in enumerate(zip(jobs, counts, strict=True))
            for _ in range(count)
        ]
        ready = 0
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=batch_timeout_s)
            ready = sum(1 for task in done if not task.cancelled() and task.result())
            for task in pending:
                task.cancel()
            if pending:
                failures["batch timeout"] += len(pending)
                await asyncio.gather(*pending, return_exceptions=True)
        return {
            "ready": ready,
            "failed": dict(failures),
            "seconds": round(time.perf_counter() - started, 2),
        }

    def _alive(self) -> list[Subscription]:
        return [sub for sub in self.subs if not sub.closed.done()]

    def status(self) -> dict[str, Any]:
        closed: Counter[str] = Counter()
        for sub in self.subs:
            if sub.closed.done():
                closed[_error_kind(sub.closed.result() or Exception("closed"))] += 1
        errors = sum(len(sub.errors) for sub in self.subs)
        return {
            "open": len(self.subs) - sum(closed.values()),
            "closed": dict(closed),
            "errors": errors,
            "completed": sum(1 for sub in self.subs if sub.completed),
        }

    async def close(self) -> dict[str, Any]:
        status = self.status()
        for sub in self.subs:
            sub.close()
        if self.subs:
            await asyncio.wait([sub.closed for sub in self.subs], timeout=10)
        for sub in self.subs:
            sub.abort()
        self.subs = []
        self.recorder.reset("off")
        return status

    def record(self, mode: str) -> None:
        self.recorder.reset(mode)

    def results(self) -> dict[str, Any]:
        recorder = self.recorder
        return {
            "samples": recorder.samples,
            "buckets": dict(recorder.buckets),
            "received": recorder.received,
            **self.status(),
        }

    # --- the driver ---

    async def drive(
        self,
        *,
        backend: dict[str, Any],
        jobs: list[dict[str, Any]],
        prefix: str,
        mode: str,
        webhook: bool,
        period: float = 1.0,
        jitter: float = 0.0,
        rounds: int | None = None,
        duration: float | None = None,
        wait_timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Change each job `rounds` times (or for `duration` s), with a unique message each
        time, and return when each change was made (time.time() just before it).

        `paced`: one change per job every `period` (+ up to `jitter`) s, jobs spread
        over the period. `closed`: each job's next change as soon as this process's
        subscribers of that job have all received the last one.
        """
        changes: dict[str, float] = {}
        failures: Counter[str] = Counter()
        timeouts = 0
        per_job = Counter(sub.tag for sub in self._alive())
        deadline = time.time() + duration if duration is not None else None
        start = time.time() + 0.05

        async def run(job: dict[str, Any]) -> None:
            nonlocal timeouts
            if backend["kind"] == "raw":
                mover: Backend = await _RawBackend.open(backend["host"], backend["port"])
            else:
                mover = _FakeBackend(backend["host"], backend["port"])
            at = start + job["index"] * period / max(1, len(jobs))
            try:
                for step in itertools.count():
                    if rounds is not None and step >= rounds:
                        return
                    if mode == "paced":
                        await asyncio.sleep(max(0.0, at - time.time()))
                        at += period + random.uniform(0, jitter)
                    if deadline is not None and time.time() >= deadline:
                        return
                    token = f"{prefix}{job['index']}.{step}"
                    arrived = self.recorder.expect(token, per_job[job["index"]])
                    changed_at = time.time()
                    try:
                        await mover.change(job, min(99, 2 + step), token, webhook)
                    except (OSError, HTTPError, TimeoutError, WebSocketError) as error:
                        failures[_error_kind(error)] += 1
                        self.recorder.forget(token)
                        await asyncio.sleep(0.05)
                        continue
                    changes[token] = changed_at
                    if mode == "closed":
                        try:
                            await asyncio.wait_for(arrived, wait_timeout)
                        except TimeoutError:
                            timeouts += 1
                    self.recorder.forget(token)
            finally:
                mover.close()

        await asyncio.gather(*(run(job) for job in jobs))
        return {"changes": changes, "failures": dict(failures), "timeouts": timeouts}

    # --- HTTP clients ---

    async def poll(
        self, *, url: str, paths: list[str], counts: list[int], interval: float, duration: float
    ) -> dict[str, Any]:
        """counts[i] watchers each GET paths[i] once per `interval` (own connection each),
        for `duration` s; a watcher whose answer comes late asks again at once. Returns
        the outcomes (ok, late, errors) counted per path."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        deadline = time.time() + duration
        outcomes: dict[str, Counter[str]] = {path: Counter() for path in paths}

        async def watcher(path: str) -> None:
            outcome = outcomes[path]
            connection = HTTPConnection(host, port)
            at = time.time() + random.uniform(0, interval)
            try:
                while True:
                    await asyncio.sleep(max(0.0, at - time.time()))
                    if time.time() >= deadline:
                        return
                    try:
                        status, _ = await connection.request("GET", path, timeout_s=interval * 5)
                        outcome["ok" if status == 200 else f"status {status}"] += 1
                    except (OSError, HTTPError, TimeoutError) as error:
                        outcome[_error_kind(error)] += 1
                        await asyncio.sleep(0.1)
                    at += interval
                    if at < time.time():
                        outcome["late"] += 1
                        at = time.time()
            finally:
                connection.close()

        await asyncio.gather(
            *(
                watcher(path)
                for path, count in zip(paths, counts, strict=True)
                for _ in range(count)
            )
        )
        return {path: dict(outcome) for path, outcome in outcomes.items()}

    async def mutate(
        self,
        *,
        url: str,
        path: str,
        body: bytes,
        token: str,
        clients: int,
        duration: float,
        kind: str,
    ) -> dict[str, Any]:
        """`clients` concurrent clients each POST `body` back to back for `duration` s."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        headers = {"Authorization": f"Bearer {token}"}
        latencies: list[float] = []
        outcome: Counter[str] = Counter()
        started = time.time()
        deadline = started + duration
        ended = started

        def accepted(status: int, answer: bytes) -> bool:
            if status != 200:
                return False
            if kind == "rest":
                return True
            result = (json.loads(answer).get("data") or {}).get("startOverlayExport") or {}
            return bool(result.get("job")) and not result.get("userErrors")

        async def client() -> None:
            nonlocal ended
            connection = HTTPConnection(host, port, headers)
            try:
                while time.time() < deadline:
                    sent = time.perf_counter()
                    try:
                        status, answer = await connection.request("POST", path, body, timeout_s=30)
                    except (OSError, HTTPError, TimeoutError) as error:
                        outcome[_error_kind(error)] += 1
                        continue
                    latencies.append((time.perf_counter() - sent) * 1000)
                    outcome["ok" if accepted(status, answer) else f"refused {status}"] += 1
                    ended = max(ended, time.time())
            finally:
                connection.close()

        await asyncio.gather(*(client() for _ in range(clients)))
        return {"latencies_ms": latencies, "outcome": dict(outcome), "start": started, "end": ended}


async def _serve(pipe: Connection) -> None:
    generator = LoadGenerator()
    loop = asyncio.get_running_loop()
    commands: dict[str, Callable[..., Awaitable[Any] | Any]] = {
        "connect": generator.connect,
        "record": generator.record,
        "results": generator.results,
        "status": generator.status,
        "drive": generator.drive,
        "poll": generator.poll,
        "mutate": generator.mutate,
        "close": generator.close,
    }
    while True:
        try:
            sequence, op, arguments = await loop.run_in_executor(None, pipe.recv)
        except (EOFError, OSError):
            break
        if op == "exit":
            break
        try:
            result = commands[op](**arguments)
            if asyncio.iscoroutine(result):
                result = await result
            pipe.send((sequence, True, result))
        except Exception as error:
            pipe.send((sequence, False, f"{type(error).__name__}: {error}"))
    with contextlib.suppress(Exception):
        await generator.close()


def serve(pipe: Connection) -> None:
    """The load generator's process: commands from `pipe` until `exit` or EOF."""
    child_setup()
    # Ctrl-C goes to the bench, which stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(pipe))
    else:
        uvloop.run(_serve(pipe))
