"""A RunPod-compatible serverless endpoint for tests and benchmarks, on loopback.

It serves RunPod's queue API under `/v2/{endpoint_id}` (`/run`, `/status/{id}`,
`/cancel/{id}`, `/health`, `/purge-queue`; see `runpod_app`) and a control API under
`/_control/` (driven by `RunPodControl`) to move jobs, script them, inject faults,
count requests and fire webhooks.

Run it in this process with `RunningRunPodServer`, or as its own process::

    python -m tests.servers.runpod_fake --port 9000 [--api-key K] [--behaviour auto --step 0.1]
        [--runpod-limits] [--limits JSON] [--workers N]

With `--port 0` it picks a free port; its first line on stdout is always
`listening on <endpoint url>`. The benches add `--bench`: no per-request access
log and httptools, since the fake shares the machine's CPUs with the server under
test and at thousands of /status calls a second its own logging would take a
visible share of them.

By default it has no rate limits and no worker pool (every scripted job runs at
once). `--runpod-limits` applies RunPod's documented per-endpoint limits (429 past
them), `--limits` a table of one's own (`Limits` JSON, over the preset when both
are given), `--workers N` a pool of N workers scripted jobs queue for. All three
can be changed while it runs (`RunPodControl.set_limits`, `set_workers`), and
`reset()` restores what it was started with.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from clients.storage import StorageConfig
from tests.servers.runpod_app import create_app
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_models import Behaviour, Limits, LimitsLike
from tests.support.lifecycle import Service

DEFAULT_ENDPOINT_ID = "test-endpoint"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _uvicorn(app: ASGIApp, log_level: str, *, bench: bool = False) -> uvicorn.Server:
    """On h11 with an access log; for the benches on httptools, without one, and with
    room for thousands of connections waiting to be accepted."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        http="httptools" if bench else "h11",
        access_log=not bench,
        backlog=4096 if bench else 2048,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


class RunningRunPodServer(Service):
    """The fake on 127.0.0.1 with a free port, served by uvicorn in a background thread."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        behaviour: Behaviour | None = None,
        storage: StorageConfig | None = None,
        endpoint_id: str = DEFAULT_ENDPOINT_ID,
        limits: LimitsLike = None,
        workers: int | None = None,
    ) -> None:
        app = create_app(
            api_key=api_key,
            behaviour=behaviour,
            storage=storage,
            limits=Limits.of(limits),
            workers=workers,
        )
        self._server = _uvicorn(app, "warning")
        self._socket = _listen("127.0.0.1", 0)
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/v2/{endpoint_id}"
        """The endpoint base URL to give a RunPodClient."""
        self.control = RunPodControl(self.base_url)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake RunPod server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.control.close()
        self._socket.close()


class RunPodServerProcess(Service):
    """The fake as a child process. `kill` makes RunPod really unreachable (connection
    refused, unlike `set_down`); `start` again reopens the same port with no jobs.

    `options` are command-line flags (see `main`); `behaviour`, `limits` and `workers`
    are turned into flags placed before them."""

    def __init__(
        self,
        *options: str,
        port: int = 0,
        behaviour: Behaviour | None = None,
        limits: LimitsLike = None,
        workers: int | None = None,
    ) -> None:
        self._options = (*_flags(behaviour, limits, workers), *options)
        self.port = port
        self.url = self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self.control: RunPodControl | None = None

    def start(self, timeout: float = 20.0) -> Self:
        command = [sys.executable, "-m", __name__, "--port", str(self.port), *self._options]
        self._process = subprocess.Popen(
            command, cwd=_PROJECT_ROOT, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        first_line = self._process.stdout.readline()
        if not first_line.startswith("listening on "):
            self.kill()
            raise RuntimeError("the fake RunPod process did not start")
        # Keep reading its output (access log): a full pipe would block the server.
        threading.Thread(target=self._process.stdout.read, daemon=True).start()
        self.url = first_line.split()[-1]
        self.base_url = self.url.split("/v2/")[0]
        self.port = int(self.base_url.rsplit(":", 1)[1])
        if self.control is None:
            self.control = RunPodControl(self.base_url)
        self.control.wait_ready(timeout)
        return self

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
        if self.control is not None:
            self.control.close()


def _flags(behaviour: Behaviour | None, limits: LimitsLike, workers: int | None) -> list[str]:
    flags: list[str] = []
    if behaviour is not None:
        flags += ["--behaviour-json", behaviour.model_dump_json()]
    if limits == "runpod":
        flags.append("--runpod-limits")
    elif limits is not None:
        flags += ["--limits", Limits.of(limits).model_dump_json()]
    if workers is not None:
        flags += ["--workers", str(workers)]
    return flags


StartRunPodServer = Callable[..., RunningRunPodServer]
"""The `start_runpod_server` fixture: keyword arguments of RunningRunPodServer."""


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    storage = StorageConfig.from_env() if args.storage_env else None
    if args.storage_dir is not None:
        storage = StorageConfig(local_dir=args.storage_dir)
    sock = _listen(args.host, args.port)
    port = sock.getsockname()[1]
    # The first line tells a parent process where to connect.
    print(f"listening on http://{args.host}:{port}/v2/{args.endpoint_id}", flush=True)
    app = create_app(
        api_key=args.api_key,
        behaviour=_behaviour(args),
        storage=storage,
        limits=_limits(args),
        workers=args.workers,
    )
    _uvicorn(app, "warning" if args.bench else "info", bench=args.bench).run(sockets=[sock])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.runpod_fake")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--endpoint-id", default=DEFAULT_ENDPOINT_ID)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--behaviour", choices=["manual", "auto"], default="manual")
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--outcome", choices=["COMPLETED", "FAILED", "TIMED_OUT"])
    parser.add_argument("--steps", type=int, help="progress updates per scripted run")
    parser.add_argument("--queue-delay", type=float, help="seconds queued before a worker")
    parser.add_argument(
        "--seconds-per-input-second", type=float, help="run length per input_seconds"
    )
    parser.add_argument("--noise", type=float, default=0.0, help="lognormal sigma of run lengths")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument(
        "--behaviour-json", help="a whole Behaviour as JSON (the flags above are then ignored)"
    )
    parser.add_argument(
        "--runpod-limits", action="store_true", help="RunPod's documented rate limits"
    )
    parser.add_argument("--limits", help="rate limits as Limits JSON (over --runpod-limits)")
    parser.add_argument("--workers", type=int, help="worker pool size (default: no pool)")
    parser.add_argument("--storage-dir", type=Path, help="store outputs in this folder")
    parser.add_argument("--storage-env", action="store_true", help="StorageConfig.from_env()")
    parser.add_argument(
        "--bench", action="store_true", help="no access log, httptools (for the benches)"
    )
    return parser


def _behaviour(args: argparse.Namespace) -> Behaviour:
    if args.behaviour_json is not None:
        return Behaviour.model_validate_json(args.behaviour_json)
    return Behaviour(
        mode=args.behaviour,
        step=args.step,
        outcome=args.outcome or "COMPLETED",
        steps=args.steps,
        queue_delay=args.queue_delay,
        seconds_per_input_second=args.seconds_per_input_second,
        noise=args.noise,
        seed=args.seed,
    )


def _limits(args: argparse.Namespace) -> Limits:
    limits = Limits.of("runpod" if args.runpod_limits else None)
    if args.limits is not None:
        limits.routes.update(Limits.model_validate_json(args.limits).routes)
    return limits


if __name__ == "__main__":
    main(sys.argv[1:])
