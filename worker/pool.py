"""Running one job's handler in a process of its own.

Video work is CPU-bound and PyAV can crash the interpreter, so each job gets a
fresh process (spawn context: no state inherited from the server). The child
sends `("progress", payload)` messages and finally `("output", dict)` or
`("error", line)` over a pipe. The parent waits on the pipe and on the process
sentinel with event-loop readers, so the server's loop never blocks; a child
that dies without a final message is reported as a crash with its exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import multiprocessing
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from clients.storage import StorageConfig
from worker.errors import one_line
from worker.runtime import WorkerRuntime, install_runtime

logger = logging.getLogger(__name__)

DEFAULT_HANDLER = "worker.handler:handler"

_CONTEXT = multiprocessing.get_context("spawn")

Handler = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, kw_only=True)
class HandlerResult:
    output: Any = None
    error: str | None = None
    """Set when the handler raised or its process died."""


def check_handler_path(path: str) -> None:
    """Fail early on a handler path ("package.module:function") that cannot be found."""
    module, _, name = path.partition(":")
    if not module or not name or importlib.util.find_spec(module) is None:
        raise ValueError(f"handler {path!r} is not an importable 'module:function'")


def load_handler(path: str) -> Handler:
    module, _, name = path.partition(":")
    handler = getattr(importlib.import_module(module), name)
    if not callable(handler):
        raise TypeError(f"{path} is not callable")
    return handler  # type: ignore[no-any-return]


class HandlerProcess:
    """One run of `handler(job)` in a child process; `kill()` stops it at once."""

    def __init__(
        self,
        *,
        handler: str,
        job: Mapping[str, Any],
        storage_config: StorageConfig,
        on_progress: Callable[[Any], None],
    ) -> None:
        self._handler = handler
        self._job = dict(job)
        self._storage_config = storage_config
        self._on_progress = on_progress
        self._process: multiprocessing.process.BaseProcess | None = None

    def kill(self) -> None:
        process = self._process
        if process is None:
            return
        try:
            if process.pid is not None and process.exitcode is None:
                process.kill()
        except ValueError:
            pass  # already reaped and closed

    async def run(self) -> HandlerResult:
        loop = asyncio.get_running_loop()
        receiver, sender = _CONTEXT.Pipe(duplex=False)
        process = _CONTEXT.Process(
            target=_child_main,
            args=(self._handler, self._job, self._storage_config, sender),
            name=f"export-job-{self._job.get('id')}",
            daemon=True,
        )
        self._process = process
        final: list[HandlerResult] = []
        exited: asyncio.Future[None] = loop.create_future()
        exit_code: int | None = None

        def read_messages() -> None:
            try:
                while receiver.poll():
                    kind, payload = receiver.recv()
                    if kind == "progress":
                        self._on_progress(payload)
                    elif kind == "output":
                        final.append(HandlerResult(output=payload))
                    else:
                        final.append(HandlerResult(error=str(payload)))
            except (EOFError, OSError):
                # The child closed its end; its exit is reported by the sentinel.
                loop.remove_reader(receiver.fileno())

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        try:
            process.start()
            sender.close()
            loop.add_reader(receiver.fileno(), read_messages)
            loop.add_reader(process.sentinel, on_exit)
            await exited
            read_messages()
            # The sentinel fires as the child closes its files, a moment before it
            # can be reaped; its exit code is only known after that.
            await asyncio.to_thread(process.join, 5)
        finally:
            if not receiver.closed:
                loop.remove_reader(receiver.fileno())
                receiver.close()
            if process.pid is not None:
                loop.remove_reader(process.sentinel)
                exit_code = process.exitcode
                _stop(process, loop)
        if final:
            return final[-1]
        reason = _exit_reason(exit_code)
        return HandlerResult(error=f"worker process exited unexpectedly ({reason})")


def _exit_reason(exit_code: int | None) -> str:
    # multiprocessing reports death by signal N as exit code -N.
    if exit_code is not None and exit_code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exit_code).name}"
    return f"exit code {exit_code}"


def _stop(process: multiprocessing.process.BaseProcess, loop: asyncio.AbstractEventLoop) -> None:
    """Kill the process if it still runs, and reap it once it has exited."""
    if process.exitcode is None:
        process.kill()

    def reap() -> None:
        loop.remove_reader(process.sentinel)
        process.join()
        process.close()

    if process.exitcode is not None:
        process.close()
    else:
        # The sentinel turns readable when the killed process is gone; join then returns at once.
        loop.add_reader(process.sentinel, reap)


class _PipeProgress:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def __call__(self, job: Mapping[str, Any], payload: dict[str, Any]) -> None:
        self._connection.send(("progress", payload))


def _child_main(
    handler_path: str, job: dict[str, Any], storage_config: StorageConfig, connection: Connection
) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the server decides
    # when jobs stop, so the child ignores it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    install_runtime(
        WorkerRuntime(storage_config=storage_config, progress_update=_PipeProgress(connection))
    )
    try:
        message: tuple[str, Any] = ("output", load_handler(handler_path)(job))
    except Exception as error:
        logger.info(
            "handler failed",
            extra={"action": "handler_failed", "job": job.get("id")},
            exc_info=True,
        )
        message = ("error", one_line(error))
    try:
        connection.send(message)
    except Exception as error:
        connection.send(("error", f"handler output could not be sent: {one_line(error)}"))
    connection.close()
