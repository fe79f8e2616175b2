"""The bench's side of the load generators: start them, command them, merge their answers.

Every answer is waited for with a timeout; an answer that comes after its
timeout is recognised by its sequence number and dropped.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import time
from collections import Counter
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Self

from bench.harness import nofile_of
from bench.loadgen import BUCKETS_PER_S, serve


class LoadGenError(RuntimeError):
    pass


class LoadGenerators:
    """`count` load-generator processes."""

    def __init__(self, count: int = 2) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes: list[Any] = []
        self._sequence = itertools.count(1)
        self._pending: dict[int, int] = {}
        for index in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=serve, args=(theirs,), name=f"loadgen-{index}", daemon=True
            )
            process.start()
            theirs.close()
            self._pipes.append(ours)
            self._processes.append(process)

    def __len__(self) -> int:
        return len(self._pipes)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def nofile(self) -> dict[str, int | None]:
        """The processes' open-files limits (each raises its own as it starts)."""
        return {f"loadgen-{index}": nofile_of(pid) for index, pid in enumerate(self.pids)}

    def send(self, index: int, op: str, **arguments: Any) -> None:
        sequence = next(self._sequence)
        self._pending[index] = sequence
        self._pipes[index].send((sequence, op, arguments))

    def receive(self, index: int, timeout: float) -> Any:
        """The answer to the last command sent to `index`; older answers are dropped."""
        deadline = time.monotonic() + timeout
        pipe = self._pipes[index]
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not pipe.poll(left):
                raise LoadGenError(f"load generator {index}: no answer within {timeout:.0f} s")
            sequence, ok, result = pipe.recv()
            if sequence != self._pending.get(index):
                continue
            if not ok:
                raise LoadGenError(f"load generator {index}: {result}")
            return result

    def call(self, index: int, op: str, timeout: float, **arguments: Any) -> Any:
        self.send(index, op, **arguments)
        return self.receive(index, timeout)

    def call_all(self, op: str, timeout: float, arguments: list[dict[str, Any]]) -> list[Any]:
        """The same command to the first len(arguments) processes at once."""
        for index, kwargs in enumerate(arguments):
            self.send(index, op, **kwargs)
        deadline = time.monotonic() + timeout
        return [
            self.receive(index, max(0.1, deadline - time.monotonic()))
            for index in range(len(arguments))
        ]

    def subscribe(
        self,
        target: dict[str, Any],
        jobs: list[str],
        counts: list[int],
        *,
        concurrency: int = 100,
    ) -> dict[str, Any]:
        """counts[i] subscriptions to jobs[i], shared out over the processes; waits for all
        of them (each has 30 s to get its first message, the batch 30 s + 10 ms each)."""
        timeout = 30.0 + sum(counts) / 100
        parts = split(counts, len(self))
        active = [index for index, part in enumerate(parts) if sum(part)]
        for index in active:
            self.send(
                index,
                "connect",
                **target,
                jobs=jobs,
                counts=parts[index],
                concurrency=concurrency,
                batch_timeout_s=timeout,
            )
        answers = [self.receive(index, timeout + 30) for index in active]
        failed: Counter[str] = Counter()
        for answer in answers:
            failed.update(answer["failed"])
        return {
            "requested": sum(counts),
            "ready": sum(answer["ready"] for answer in answers),
            "failed": dict(failed),
            "seconds": max((answer["seconds"] for answer in answers), default=0.0),
        }

    def everyone(self, op: str, timeout: float, **arguments: Any) -> list[Any]:
        return self.call_all(op, timeout, [arguments] * len(self))

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(Exception):
                pipe.send((0, "exit", {}))
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)
        for pipe in self._pipes:
            pipe.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def split(counts: list[int], parts: int) -> list[list[int]]:
    """Share each count out over `parts` processes, the first ones taking the remainder."""
    return [
        [count // parts + (1 if part < count % parts else 0) for count in counts]
        for part in range(parts)
    ]


def merge_status(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The subscriptions' state summed over processes (from `status` or `results`)."""
    closed: Counter[str] = Counter()
    for answer in answers:
        closed.update(answer["closed"])
    return {
        "open": sum(answer["open"] for answer in answers),
        "closed": dict(closed),
        "errors": sum(answer["errors"] for answer in answers),
        "completed": sum(answer["completed"] for answer in answers),
    }


def received_between(answers: list[dict[str, Any]], start: float, end: float) -> int:
    """Messages received from `start` to `end` (time.time() on bucket boundaries, see
    `bucket_boundary`), from `results` in count mode."""
    first, last = round(start * BUCKETS_PER_S), round(end * BUCKETS_PER_S)
    return sum(
        count
        for answer in answers
        for bucket, count in answer["buckets"].items()
        if first <= bucket < last
    )


def bucket_boundary(after: float) -> float:
    """Sleep until the first receipt-bucket boundary after `after` (time.time()); return it."""
    boundary = math.ceil(after * BUCKETS_PER_S) / BUCKETS_PER_S
    time.sleep(max(0.0, boundary - time.time()))
    return boundary
