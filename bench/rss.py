"""Server memory per idle subscription: VmRSS growth of the API process.

A fresh API with 10 jobs held IN_PROGRESS (nothing changes during the bench).
After one warm-up subscription per job (imports, caches, first allocations),
subscriptions are added in steps, one per connection, spread over the jobs;
after each step settles, RSS is read from /proc/PID/status. Figure: (RSS at the
step - RSS after warm-up) / subscriptions ready.
"""

from __future__ import annotations

import time
from typing import Any

from bench.generators import LoadGenerators, merge_status
from bench.harness import Context, Processes, rounded, spread
from bench.stack import Api, Fake, ws_target

JOBS = 10
SETTLE_S = 1.5


def run(context: Context) -> dict[str, Any]:
    steps = [500, 1000] if context.quick else [1000, 5000, 10_000]
    folder = context.folder("rss")
    readings: list[dict[str, Any]] = []
    with Processes(folder) as processes, LoadGenerators(2) as generators:
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=1.0)
        jobs = api.create_jobs(JOBS)
        target = ws_target(api.ws_url, api.token)
        job_ids = [job.id for job in jobs]
        warm = generators.subscribe(target, job_ids, [1] * JOBS)
        time.sleep(SETTLE_S)
        base_kb = api.process.rss_kb()
        held = 0
        failed: dict[str, int] = {}
        for step in steps:
            context.say(f"rss: {step} idle subscriptions")
            added = generators.subscribe(target, job_ids, spread(step - held, JOBS))
            held += added["ready"]
            for kind, count in added["failed"].items():
                failed[kind] = failed.get(kind, 0) + count
            time.sleep(SETTLE_S)
            rss_kb = api.process.rss_kb()
            readings.append(
                {
                    "subscriptions": held,
                    "rss_kb": rss_kb,
                    "kb_per_subscription": rounded((rss_kb - base_kb) / max(1, held), 2),
                    "connect_seconds": added["seconds"],
                }
            )
        state = merge_status(generators.everyone("status", 30))
        peak_kb = api.process.hwm_kb()
        api_log = api.process.problems()
        nofile = processes.nofile | generators.nofile()
        generators.everyone("close", 60)
        api.close()
    return {
        "headline": {"rss_kb_per_subscription": readings[-1]["kb_per_subscription"]},
        "details": {
            "rss": {
                "baseline_rss_kb": base_kb,
                "nofile": nofile,
                "warm_up_subscriptions": warm["ready"],
                "steps": readings,
                "peak_rss_kb": peak_kb,
                "failed": failed,
                "at_end": state,
                "server_log": api_log,
            }
        },
    }
