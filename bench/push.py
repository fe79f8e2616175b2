"""Latency from a job's change on RunPod (the fake) to each subscriber's receipt.

N subscribers over 10 jobs (N = 1: one subscriber, one job). A driver in the
first load generator changes each job's progress and message on the fake,
recording time.time() just before; subscribers record time.time() as the
message's bytes arrive (one machine, one clock).

- polling: the change alone; the API sees it at its next /status poll. A job
  changes every interval * (1 + 1/rounds), so its changes fall at evenly spread
  points of its poll cycle: p50 should be about interval/2.
- webhook: the change, then the fake fires the job's webhook, which makes the
  API poll at once.
"""

from __future__ import annotations

import time
from typing import Any

from bench.generators import LoadGenerators, merge_status
from bench.harness import Context, Processes, percentile, rounded, spread
from bench.stack import Api, Fake, Job, ws_target

INTERVAL_S = 1.0
JOBS = 10


def run(context: Context) -> dict[str, Any]:
    levels = [1, 1000] if context.quick else [1, 1000, 10_000]
    polling_rounds = 3 if context.quick else 10
    webhook_rounds = 5 if context.quick else 15
    # One change per job per second at 10 000 subscribers; quick runs go faster.
    webhook_period = 0.5 if context.quick else 1.0
    folder = context.folder("push")
    results: dict[str, dict[str, Any]] = {"polling": {}, "webhook": {}}
    subscriptions: dict[str, Any] = {}
    with Processes(folder) as processes, LoadGenerators(2) as generators:
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=INTERVAL_S)
        jobs = api.create_jobs(JOBS)
        backend = {"kind": "fake", "host": "127.0.0.1", "port": fake.port}
        for count in levels:
            counts = [count] + [0] * (JOBS - 1) if count < JOBS else spread(count, JOBS)
            context.say(f"push: {count} subscribers")
            subscriptions[str(count)] = generators.subscribe(
                ws_target(api.ws_url, api.token), [job.id for job in jobs], counts
            )
            driven = [job for job, watchers in zip(jobs, counts, strict=True) if watchers]
            results["polling"][str(count)] = measure_push(
                generators,
                backend,
                driven,
                counts,
                prefix=f"p{count}-",
                webhook=False,
                # Each job's changes step evenly through the poll cycle from a random
                # start, so the median settles with few samples.
                period=INTERVAL_S * (1 + 1 / polling_rounds),
                jitter=0.0,
                rounds=polling_rounds,
                grace=INTERVAL_S + 0.3,
            )
            results["webhook"][str(count)] = measure_push(
                generators,
                backend,
                driven,
                counts,
                prefix=f"w{count}-",
                webhook=True,
                period=webhook_period,
                jitter=0.0,
                rounds=webhook_rounds,
                grace=0.5,
            )
            subscriptions[str(count)]["at_end"] = merge_status(generators.everyone("close", 60))
        api_log = api.process.problems()
        nofile = processes.nofile | generators.nofile()
        api.close()
    top = str(levels[-1])
    return {
        "headline": {
            "push_p50_ms": results["polling"][top]["p50_ms"],
            "push_p99_ms": results["polling"][top]["p99_ms"],
            "push_p50_ms_webhook": results["webhook"][top]["p50_ms"],
            "push_p99_ms_webhook": results["webhook"][top]["p99_ms"],
        },
        "details": {
            "push": {
                "interval_s": INTERVAL_S,
                "nofile": nofile,
                "jobs": JOBS,
                "polling": results["polling"],
                "webhook": results["webhook"],
                "webhook_period_s": webhook_period,
                "subscriptions": subscriptions,
                "server_log": api_log,
                "note": "key = subscribers; latency from just before the fake's change to "
                "receipt; 'missing' = receipts expected but not seen (coalesced or lost)",
            }
        },
    }


def measure_push(
    generators: LoadGenerators,
    backend: dict[str, Any],
    jobs: list[Job],
    counts: list[int],
    *,
    prefix: str,
    webhook: bool,
    period: float,
    jitter: float,
    rounds: int,
    grace: float,
) -> dict[str, Any]:
    generators.everyone("record", 30, mode="latency")
    drive_timeout = rounds * (period + jitter) + 60
    driven = generators.call(
        0,
        "drive",
        drive_timeout,
        backend=backend,
        jobs=[job.as_dict() for job in jobs],
        prefix=prefix,
        mode="paced",
        webhook=webhook,
        period=period,
        jitter=jitter,
        rounds=rounds,
    )
    time.sleep(grace)
    answers = generators.everyone("results", 60)
    changes: dict[str, float] = driven["changes"]
    latencies = [
        (received - changes[token]) * 1000
        for answer in answers
        for token, received in answer["samples"]
        if token in changes
    ]
    # Tokens are "<prefix><job index>.<step>".
    expected = sum(counts[int(token[len(prefix) :].split(".")[0])] for token in changes)
    return {
        "p50_ms": rounded(percentile(latencies, 50)),
        "p90_ms": rounded(percentile(latencies, 90)),
        "p99_ms": rounded(percentile(latencies, 99)),
        "max_ms": rounded(max(latencies, default=None)),
        "min_ms": rounded(min(latencies, default=None)),
        "samples": len(latencies),
        "changes": len(changes),
        "missing": expected - len(latencies),
        "driver_failures": driven["failures"],
        "subscriptions": merge_status(answers),
    }
