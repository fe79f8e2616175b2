"""Fan-out throughput and CPU per update: the API beside a minimal websockets server.

Both targets get the same N subscribers over 10 jobs, from the same load
generators, in the same run: the API, then bench/raw_ws_server.py, then the API
again, for three rounds (each round subscribes anew; the target not measured
has no subscribers). A driver in the first load generator moves the jobs:
on the API through the fake (new progress and message, then the job's
webhook), on the raw server through its control socket.

- fanout: closed loop; a job's next change goes out as soon as the first load
  generator's subscribers of that job have all received the last one (10 jobs
  in flight). Figure: the median over the rounds of messages/s received by
  both load generators over the window, API / raw server; each round's own
  ratio is in the details.
- cpu: one change per job per second (jobs spread over the second), in the
  first round. Figure: server CPU (utime + stime, /proc/PID/stat) over the
  window per 1 000 messages received.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.generators import (
    LoadGenerators,
    bucket_boundary,
    merge_status,
    received_between,
)
from bench.harness import (
    PYTHON,
    Context,
    Process,
    Processes,
    cpu_seconds,
    rounded,
    spread,
)
from bench.stack import Api, Fake, Job, ws_target

JOBS = 10


# Rounds of (API window, raw server window): the machine's speed drifts from
# minute to minute (the raw server's own rate moved between 55 k and 85 k
# messages/s from run to run), so each figure is a median over alternating
# windows rather than one window of each taken apart.
ROUNDS = 3


@dataclass(frozen=True)
class _Server:
    name: str
    process: Process
    target: dict[str, Any]
    backend: dict[str, Any]
    others: dict[str, int]


def run(context: Context, wanted: set[str]) -> dict[str, Any]:
    fanout_levels = ([1000] if context.quick else [1000, 10_000]) if "fanout" in wanted else []
    cpu_level = (1000 if context.quick else 10_000) if "cpu" in wanted else None
    windows = {
        "closed": 2.5 if context.quick else 8.0,
        "paced": 3.0 if context.quick else 10.0,
        "warm_up": 0.5 if context.quick else 1.0,
    }
    # The paced (cpu) window is taken in the first round only.
    plans = [
        {
            level: [
                mode
                for mode, wanted_here in (
                    ("closed", level in fanout_levels),
                    ("paced", level == cpu_level and round_index == 0),
                )
                if wanted_here
            ]
            for level in sorted({*fanout_levels, *([cpu_level] if cpu_level else [])})
        }
        for round_index in range(ROUNDS if fanout_levels else 1)
    ]
    folder = context.folder("broadcast")
    with Processes(folder) as processes, LoadGenerators(2) as generators:
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=1.0)
        jobs = api.create_jobs(JOBS)
        raw = processes.start("raw-ws", [PYTHON, "-m", "bench.raw_ws_server", "--port", "0"])
        raw_url = raw.wait_for_line("listening on ", 30).split()[-1]
        servers = [
            _Server(
                "api",
                api.process,
                ws_target(api.ws_url, api.token),
                {"kind": "fake", "host": "127.0.0.1", "port": fake.port},
                {"fake": fake.process.pid},
            ),
            _Server(
                "raw_ws",
                raw,
                ws_target(f"{raw_url}/graphql", None),
                {"kind": "raw", "host": "127.0.0.1", "port": int(raw_url.rsplit(":", 1)[1])},
                {},
            ),
        ]
        rounds: dict[str, list[dict[str, Any]]] = {server.name: [] for server in servers}
        for round_index, plan in enumerate(plans):
            for server in servers:
                context.say(f"broadcast: round {round_index + 1}, {server.name}, {plan}")
                rounds[server.name].append(
                    _measure(
                        context,
                        generators,
                        server,
                        jobs=jobs,
                        plan=plan,
                        windows=windows,
                        round_index=round_index,
                    )
                )
        logs = {server.name: server.process.problems() for server in servers}
        api.close()
        nofile = processes.nofile | generators.nofile()

    ours, theirs = rounds["api"], rounds["raw_ws"]
    headline: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if fanout_levels:
        per_level = {}
        for level in fanout_levels:
            api_windows = [done[str(level)]["closed"] for done in ours]
            raw_windows = [done[str(level)]["closed"] for done in theirs]
            api_rate = statistics.median(window["messages_per_s"] for window in api_windows)
            raw_rate = statistics.median(window["messages_per_s"] for window in raw_windows)
            per_level[str(level)] = {
                "ratio": rounded(api_rate / raw_rate, 3) if raw_rate else None,
                "api_median_messages_per_s": api_rate,
                "raw_ws_median_messages_per_s": raw_rate,
                "ratio_by_round": [
                    rounded(a["messages_per_s"] / r["messages_per_s"], 3)
                    if r["messages_per_s"]
                    else None
                    for a, r in zip(api_windows, raw_windows, strict=True)
                ],
                "api": api_windows,
                "raw_ws": raw_windows,
            }
        headline["fanout_ratio_vs_raw_ws"] = per_level[str(fanout_levels[-1])]["ratio"]
        details["fanout"] = {
            "jobs": JOBS,
            "window_s": windows["closed"],
            "rounds": len(plans),
            "sockets": per_level,
        }
    if cpu_level is not None:
        api_cpu = ours[0][str(cpu_level)]["paced"]
        raw_cpu = theirs[0][str(cpu_level)]["paced"]
        headline["cpu_ms_per_1k_updates"] = api_cpu["cpu_ms_per_1k"]
        details["cpu"] = {
            "subscribers": cpu_level,
            "jobs": JOBS,
            "window_s": windows["paced"],
            "api": api_cpu,
            "raw_ws": raw_cpu,
            "ratio_to_raw_ws": rounded(api_cpu["cpu_ms_per_1k"] / raw_cpu["cpu_ms_per_1k"], 2)
            if api_cpu["cpu_ms_per_1k"] and raw_cpu["cpu_ms_per_1k"]
            else None,
        }
    for section in details.values():
        section["subscriptions"] = {
            name: [done["subscriptions"] for done in done_rounds]
            for name, done_rounds in rounds.items()
        }
        section["server_log"] = logs
        section["nofile"] = nofile
    return {"headline": headline, "details": details}


def _measure(
    context: Context,
    generators: LoadGenerators,
    server: _Server,
    *,
    jobs: list[Job],
    plan: dict[int, list[str]],
    windows: dict[str, float],
    round_index: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {"subscriptions": {}}
    for level, modes in plan.items():
        if not modes:
            continue
        job_ids = [job.id for job in jobs]
        subscribed = generators.subscribe(server.target, job_ids, spread(level, JOBS))
        results["subscriptions"][str(level)] = subscribed
        results[str(level)] = {
            mode: _window(
                generators,
                server.process,
                backend=server.backend,
                jobs=jobs,
                mode=mode,
                window=windows[mode],
                warm_up=windows["warm_up"],
                prefix=f"{server.name}{round_index}-{mode}{level}-",
                others=server.others,
            )
            for mode in modes
        }
        results["subscriptions"][str(level)]["at_end"] = merge_status(
            generators.everyone("close", 60)
        )
        context.say(f"broadcast: {server.name} {level}: {results[str(level)]}")
    return results


def _window(
    generators: LoadGenerators,
    server: Process,
    *,
    backend: dict[str, Any],
    jobs: list[Job],
    mode: str,
    window: float,
    warm_up: float,
    prefix: str,
    others: dict[str, int],
) -> dict[str, Any]:
    generators.everyone("record", 30, mode="count")
    duration = warm_up + window + 0.5
    generators.send(
        0,
        "drive",
        backend=backend,
        jobs=[job.as_dict() for job in jobs],
        prefix=prefix,
        mode=mode,
        webhook=True,
        period=1.0,
        duration=duration,
    )
    start = bucket_boundary(time.time() + warm_up)
    server_cpu, clients_cpu = server.cpu_seconds(), _clients_cpu(generators)
    others_cpu = {name: cpu_seconds(pid) for name, pid in others.items()}
    end = bucket_boundary(start + window)
    server_cpu = server.cpu_seconds() - server_cpu
    clients_cpu = _clients_cpu(generators) - clients_cpu
    others_cpu = {name: cpu_seconds(others[name]) - used for name, used in others_cpu.items()}
    driven = generators.receive(0, duration + 60)
    answers = generators.everyone("results", 60)
    received = received_between(answers, start, end)
    seconds = end - start
    return {
        "messages": received,
        "messages_per_s": rounded(received / seconds),
        "changes": len(driven["changes"]),
        "server_cpu_share": rounded(server_cpu / seconds, 2),
        "clients_cpu_share": rounded(clients_cpu / seconds, 2),
        **{f"{name}_cpu_share": rounded(used / seconds, 2) for name, used in others_cpu.items()},
        "cpu_ms_per_1k": rounded(server_cpu * 1000 / (received / 1000), 1) if received else None,
        "driver_timeouts": driven["timeouts"],
        "driver_failures": driven["failures"],
        "subscriptions": merge_status(answers),
    }


def _clients_cpu(generators: LoadGenerators) -> float:
    return sum(cpu_seconds(pid) for pid in generators.pids)
