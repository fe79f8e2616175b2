"""Processes, ports and /proc readings shared by the benches (Linux only).

Every child process gets the hard RLIMIT_NOFILE and is told by the kernel to
stop when the bench process dies (PR_SET_PDEATHSIG), so a killed bench leaves
no server behind; `Processes` stops them all on the way out as well.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def raise_nofile() -> tuple[int, int]:
    """Lift this process's open-files limit to the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def child_setup() -> None:
    """Run in each child: the open-files limit, and SIGTERM when the bench dies."""
    raise_nofile()
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Context:
    """What every bench gets from run.py."""

    quick: bool
    workdir: Path
    say: Callable[[str], None]
    """Progress for a human (stderr), or nothing with --json."""

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class StartError(RuntimeError):
    pass


class Process:
    """A child process whose stdout and stderr go to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The bench starts no threads, so running Python after fork is safe.
                preexec_fn=child_setup,  # noqa: PLW1509
                # Out of the terminal's process group: Ctrl-C reaches the bench alone,
                # which then stops the servers in order.
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The first line of output that starts with `prefix`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
            if not self.alive():
                break
            time.sleep(0.02)
        raise StartError(f"{self.name} did not start:\n{self.log_tail()}")

    def wait_http(self, url: str, timeout: float) -> None:
        """Until GET `url` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise StartError(f"{self.name} did not answer {url}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def problems(self, limit: int = 5) -> dict[str, Any]:
        """Errors, warnings and tracebacks in the output: counts and the first few lines."""
        counts = {"error": 0, "warning": 0, "traceback": 0}
        first: list[str] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            kind = (
                "traceback"
                if line.startswith("Traceback")
                else "error"
                if " ERROR " in line or line.startswith("ERROR")
                else "warning"
                if " WARNING " in line or line.startswith("WARNING")
                else None
            )
            if kind is not None:
                counts[kind] += 1
                if len(first) < limit:
                    first.append(line[:300])
        return {**counts, "first": first} if first else counts

    def rss_kb(self) -> int:
        return _status_kb(self.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return _status_kb(self.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def nofile(self) -> int | None:
        return nofile_of(self.pid)

    def stop(self, timeout: float = 5.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (/proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def nofile_of(pid: int) -> int | None:
    """A process's open-files limit (/proc/PID/limits), None if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class Processes:
    """Started processes, stopped in reverse order on exit, whatever happened."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: list[Process] = []
        self.nofile: dict[str, int | None] = {}
        """Each started process's open-files limit, read once it runs."""

    def start(self, name: str, argv: Sequence[str], **options: Any) -> Process:
        process = Process(name, argv, log_dir=self.log_dir, **options)
        self._started.append(process)
        # Popen returns once the child has exec'd, with the limit child_setup set.
        self.nofile[name] = process.nofile()
        return process

    def stop(self, process: Process) -> None:
        process.stop()
        if process in self._started:
            self._started.remove(process)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._started:
            with contextlib.suppress(Exception):
                self._started.pop().stop()


def spread(total: int, parts: int) -> list[int]:
    """`total` shared out as evenly as possible over `parts`, the first ones larger."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def percentiles(values: Sequence[float]) -> dict[str, Any]:
    """p50, p99 and max of a sample, and its size."""
    return {
        "p50": rounded(percentile(values, 50)),
        "p99": rounded(percentile(values, 99)),
        "max": rounded(max(values, default=None)),
        "samples": len(values),
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "ram_gib": round(ram_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nofile": {"soft": soft, "hard": hard},
    }
