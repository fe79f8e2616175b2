"""The API's subscription, fan-out and start-mutation benchmarks, each beside a baseline.

    python bench/run.py [--quick] [--json] [--only NAME [--only NAME ...]]

Every bench runs the real API (`python -m gql.cli serve`: uvicorn, production
settings, SQLite in a fresh DATA_DIR, RUNPOD_ENDPOINT_URL on the RunPod fake of
tests/servers, webhooks through PUBLIC_URL) and the fake as their own
processes, and drives them from two load-generator processes (asyncio,
graphql-transport-ws over plain websockets, one subscription per connection):

- polls:     RunPod /status calls per unfinished job per poll interval with
             N = 1, 100, 1 000, 10 000 subscriptions to the job; baseline: N
             watchers polling a REST route that asks RunPod each time.
- push:      change -> subscriber latency (p50/p99), by polling and after a
             webhook, N = 1, 1 000, 10 000 subscribers over 10 jobs.
- rss:       server RSS growth per idle subscription, up to 10 000.
- fanout:    messages/s delivered to N sockets, closed loop on job updates,
             over a minimal `websockets` broadcast server's rate.
- mutations: start-export mutations/s (and p50/p99) with 1, 10, 100 clients,
             over a minimal FastAPI REST route doing the same work.
- cpu:       server CPU ms per 1 000 subscriber updates, N subscribers, one
             update per job per second; beside the raw broadcast server's.
- jobs:      per-job cost: J running exports with one subscriber each (J = 100,
             300, 1 000): server CPU per /status poll carrying a change, webhook
             answer time and COMPLETE push latency as 300 exports finish at once.
- scale:     two API processes on one PostgreSQL database: polls per job per
             interval, webhook -> subscriber latency across processes, failover
             after `kill -9` of a follower, subscriptions held with push p99 <= 100 ms
             (BENCH_POSTGRES_URL; see bench/scale.py).
- budget:    RunPod's documented limits enforced by the stand-in, 1 000 exports
             on 150 workers, 60 watched, 60 cancelled: 429s, /status requests,
             progress seen, starts seen, COMPLETE pushes (one process, and two on
             BENCH_POSTGRES_URL; BENCH_BASELINE_ROOT adds an earlier checkout's API).
- eta:       queue positions and estimates as subscribers receive them, against
             when the stand-in really started and finished each export.
- uploads:   10 concurrent 100 MB bodies from async httpx over the 1 MiB limit:
             413s, the server's peak RSS growth, plain queries answered meanwhile.
- webhooks:  300 exports finishing at once with WEBHOOK_URL on a loopback
             receiver: change -> first attempt p99, every event verified with
             `standardwebhooks`, no completion lost; the receiver down for 60 s,
             then back: none lost, and how soon they all arrive.
- resume:    three API processes on BENCH_POSTGRES_URL, one `kill -9`ed and
             restarted every 5 s for a minute while 60 exports run; one SSE
             client resuming with Last-Event-ID: final states seen, states gone
             backwards, cursors gone back, repeats, reconnects, the longest gap.

`--quick` runs small sizes (largest N 1 000) in about a minute; the full run
takes several minutes. Prints one JSON object: the headline figures (at the
largest N run), `details` per bench, `goals`, `machine`, `commit`, `quick` and
`date`. Progress goes to stderr unless --json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCHES = (
    "polls",
    "push",
    "rss",
    "fanout",
    "mutations",
    "cpu",
    "jobs",
    "scale",
    "budget",
    "eta",
    "uploads",
    "webhooks",
    "resume",
)
HEADLINES = {
    "polls": ["polls_per_job_interval"],
    "push": ["push_p50_ms", "push_p99_ms", "push_p50_ms_webhook", "push_p99_ms_webhook"],
    "rss": ["rss_kb_per_subscription"],
    "fanout": ["fanout_ratio_vs_raw_ws"],
    "mutations": ["mutation_ratio_vs_rest"],
    "cpu": ["cpu_ms_per_1k_updates"],
    "jobs": ["cpu_ms_per_job_poll", "webhook_answer_p99_ms", "complete_push_p99_ms_many_jobs"],
    "scale": [
        "scale_polls_per_job_interval",
        "scale_push_p99_ms_cross_process",
        "failover_s",
        "scale_subscriptions_2proc",
    ],
    "budget": [
        "budget_throttled",
        "budget_status_requests",
        "budget_progress_steps_median",
        "budget_complete_push_p99_ms",
        "budget_start_seen_p50_s",
        "budget_start_seen_max_s",
    ],
    "eta": [
        "eta_position_exact",
        "eta_error_median_waiting",
        "eta_error_median_running",
        "eta_interval_coverage",
    ],
    "uploads": ["uploads_413", "uploads_rss_growth_kb"],
    "webhooks": [
        "webhook_first_attempt_p99_ms",
        "webhook_completions_lost",
        "webhook_outage_lost",
        "webhook_outage_recovery_s",
    ],
    "resume": [
        "resume_final_seen",
        "resume_backwards",
        "resume_cursor_regressions",
        "resume_duplicates",
        "resume_reconnects",
        "resume_longest_gap_ms",
        "resume_log_errors",
    ],
}
# (headline, comparison, target); the polling p50 target is interval/2 + 10 ms (1 s interval).
GOALS = [
    ("polls_per_job_interval", "<=", 1.0),
    ("push_p50_ms", "<=", 510.0),
    ("push_p99_ms_webhook", "<=", 100.0),
    ("rss_kb_per_subscription", "<=", 30.0),
    ("fanout_ratio_vs_raw_ws", ">=", 0.5),
    ("mutation_ratio_vs_rest", ">=", 0.5),
    ("cpu_ms_per_1k_updates", "<=", 146.0),
    # 1 000 running exports polled every second on one core.
    ("cpu_ms_per_job_poll", "<=", 1.0),
    ("webhook_answer_p99_ms", "<=", 50.0),
    ("complete_push_p99_ms_many_jobs", "<=", 100.0),
    ("scale_polls_per_job_interval", "<=", 1.1),
    ("scale_push_p99_ms_cross_process", "<=", 50.0),
    # 3 poll intervals + 2 s.
    ("failover_s", "<=", 5.0),
    # Hasura's published figure: 20 000 live queries on 4 vCPU.
    ("scale_subscriptions_2proc", ">=", 20_000.0),
    # RunPod's limits: no 429, a third of the /status requests measured before.
    ("budget_throttled", "<=", 0.0),
    ("budget_status_requests", "<=", 14_000 / 3),
    ("budget_progress_steps_median", ">=", 6.0),
    ("budget_complete_push_p99_ms", "<=", 100.0),
    ("budget_start_seen_p50_s", "<=", 1.0),
    ("budget_start_seen_max_s", "<=", 2.0),
    # Queue positions right at every frame; estimates within 25 % / 15 % of the
    # time left (median), the actual end inside the interval 80 % of the time.
    ("eta_position_exact", ">=", 1.0),
    ("eta_error_median_waiting", "<=", 0.25),
    ("eta_error_median_running", "<=", 0.15),
    ("eta_interval_coverage", ">=", 0.8),
    # 10 concurrent 100 MB uploads from async httpx: every one a 413, memory flat.
    ("uploads_413", ">=", 10.0),
    ("uploads_rss_growth_kb", "<=", 10_240.0),
    # Outbound webhooks: a change reaches the receiver within 200 ms, none lost.
    ("webhook_first_attempt_p99_ms", "<=", 200.0),
    ("webhook_completions_lost", "<=", 0.0),
    ("webhook_outage_lost", "<=", 0.0),
    # Rolling `kill -9` of one of three processes: a client resuming with its last
    # event id sees every export's final state, nothing backwards, no cursor older
    # than one it had.
    ("resume_final_seen", ">=", 1.0),
    ("resume_backwards", "<=", 0.0),
    ("resume_cursor_regressions", "<=", 0.0),
]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _goals(report: dict[str, Any]) -> dict[str, Any]:
    goals = {}
    for key, comparison, target in GOALS:
        if key not in report:
            continue
        value = report[key]
        met = None
        if isinstance(value, int | float):
            met = value <= target if comparison == "<=" else value >= target
        goals[key] = {"goal": f"{comparison} {target:g}", "value": value, "met": met}
    return goals


def _commit() -> str | None:
    """The checkout measured: HEAD, with `+dirty` when the server's code has local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "gql", "clients", "worker"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if changes else head


def _runs(selected: list[str]) -> list[tuple[str, Any]]:
    """(name, run function) of each bench to run, in order; fanout and cpu share one."""
    from bench import (
        broadcast,
        budget,
        eta,
        jobs,
        mutations,
        polls,
        push,
        resume,
        rss,
        scale,
        uploads,
        webhooks,
    )

    runs: list[tuple[str, Any]] = [
        (name, module.run)
        for name, module in (("polls", polls), ("push", push), ("rss", rss))
        if name in selected
    ]
    if "fanout" in selected or "cpu" in selected:
        wanted: set[str] = {name for name in ("fanout", "cpu") if name in selected}
        runs.append(("+".join(sorted(wanted)), lambda c: broadcast.run(c, wanted)))
    runs += [
        (name, module.run)
        for name, module in (
            ("mutations", mutations),
            ("jobs", jobs),
            ("scale", scale),
            ("budget", budget),
            ("eta", eta),
            ("uploads", uploads),
            ("webhooks", webhooks),
            ("resume", resume),
        )
        if name in selected
    ]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--json", action="store_true", help="print the JSON only")
    parser.add_argument("--only", action="append", choices=BENCHES, metavar="NAME")
    args = parser.parse_args()
    selected = [name for name in BENCHES if not args.only or name in args.only]

    from bench.harness import Context, machine, raise_nofile

    # Ctrl-C and SIGTERM unwind the bench, which cleans up on the way out (even when
    # started with SIGINT ignored, as background jobs of a script are).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    raise_nofile()

    def say(text: str) -> None:
        if not args.json:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    report: dict[str, Any] = {key: None for name in selected for key in HEADLINES[name]}
    details: dict[str, Any] = {}
    commit = _commit()
    # Other work on the machine skews every figure: the load before and after shows it.
    load_before = [round(load, 2) for load in os.getloadavg()]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="export-gql-bench-") as workdir:
        context = Context(quick=args.quick, workdir=Path(workdir), say=say)
        runs = _runs(selected)
        for name, bench in runs:
            say(f"{name}: starting")
            began = time.monotonic()
            try:
                result = bench(context)
            except Exception as error:
                say(f"{name}: failed: {error!r}")
                for part in name.split("+"):
                    details[part] = {
                        "error": f"{type(error).__name__}: {error}",
                        "traceback": traceback.format_exc().splitlines()[-8:],
                        "elapsed_s": round(time.monotonic() - began, 1),
                    }
                continue
            report.update(result["headline"])
            for key, value in result["details"].items():
                details[key] = value
                details[key]["elapsed_s"] = round(time.monotonic() - began, 1)
            say(f"{name}: {json.dumps(result['headline'])}")
    report["details"] = details
    report["goals"] = _goals(report)
    report["machine"] = machine() | {
        "load_average_before": load_before,
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
    }
    report["commit"] = commit
    report["quick"] = args.quick
    report["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Every process and the scratch folder were cleaned up on the way out.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
