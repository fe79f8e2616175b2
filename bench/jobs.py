"""Per-job cost: many running exports, one subscriber each, on one process.

J exports (J = 100, 300, 1 000; quick: 100, 300) are started through the API
(SQLite, 1 s polling, webhooks through PUBLIC_URL) on the RunPod fake, which
runs each on its own: a progress change every 0.9 s (so every poll carries one),
then COMPLETED with a webhook. Each export has one subscriber.

- cpu_ms_per_job_poll: over a 10 s window while all J run, the API's CPU time
  divided by the /status polls the fake answered (each carrying a change that
  is written and pushed to its subscriber). The fake's and the load
  generators' CPU are reported beside it: they must not be the bottleneck.
- webhook_answer_p99_ms: the completions arrive within about the time the
  starts took (1 to 2 s at J = 300); how long the API took to answer each
  completion webhook, as the fake timed it.
- complete_push_p99_ms_many_jobs: from the fake marking a job COMPLETED to its
  subscriber receiving COMPLETE.

The headline figures are those at J = 300. With BENCH_JOBS_WEBHOOKS=1 the API
also sends its outbound webhooks (default events) to a receiver on loopback, to
see what they cost the rest.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Any

from bench.generators import LoadGenerators, merge_status
from bench.harness import Context, Processes, cpu_seconds, percentiles, rounded
from bench.stack import Api, Fake, ws_target
from tests.support.webhook_receiver import WebhookReceiver, new_secret

INTERVAL_S = 1.0
CHANGE_EVERY_S = 0.9
WINDOW_S = 10.0
HEADLINE_JOBS = 300
# This bench measures what a poll costs with every job polled each second: as if
# RunPod had raised the endpoint's limits (the `budget` bench keeps RunPod's own).
UNBOUND_BUDGET = {"runpod_status_rate": 20_000, "runpod_run_rate": 20_000}


def run(context: Context) -> dict[str, Any]:
    levels = [100, 300] if context.quick else [100, 300, 1000]
    results = {str(count): _level(context, count) for count in levels}
    top = results[str(HEADLINE_JOBS)]
    return {
        "headline": {
            "cpu_ms_per_job_poll": top["cpu_ms_per_job_poll"],
            "webhook_answer_p99_ms": top["webhook_answer_ms"]["p99"],
            "complete_push_p99_ms_many_jobs": top["complete_push_ms"]["p99"],
        },
        "details": {"jobs": {"interval_s": INTERVAL_S, "levels": results}},
    }


def _level(context: Context, count: int) -> dict[str, Any]:
    folder = context.folder(f"jobs-{count}")
    context.say(f"jobs: {count} running exports, one subscriber each")
    with (
        Processes(folder) as processes,
        LoadGenerators(2) as generators,
        contextlib.ExitStack() as extras,
    ):
        settings: dict[str, Any] = dict(UNBOUND_BUDGET)
        if os.environ.get("BENCH_JOBS_WEBHOOKS"):
            receiver = extras.enter_context(WebhookReceiver())
            settings |= {"webhook_url": receiver.url, "webhook_secret": new_secret()}
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=INTERVAL_S, settings=settings)
        # Long enough to start them all (slower as more run), subscribe and
        # measure while all still run; then they all end.
        starting_s = count / 40 + 5
        steps = math.ceil((starting_s + WINDOW_S + 5) / CHANGE_EVERY_S)
        fake.control.set_behaviour("auto", step=CHANGE_EVERY_S, steps=steps)
        began = time.monotonic()
        job_ids = api.start_jobs(count)
        started_s = time.monotonic() - began
        subscribed = generators.subscribe(ws_target(api.ws_url, api.token), job_ids, [1] * count)
        generators.everyone("record", 30, mode="complete")

        fake.control.reset_counts()
        used = _cpu(api, fake, generators)
        time.sleep(WINDOW_S)
        used = {name: after - used[name] for name, after in _cpu(api, fake, generators).items()}
        polls = fake.control.counts().route("status")

        context.say(f"jobs: {count}: waiting for the completions")
        deadline = time.monotonic() + steps * CHANGE_EVERY_S + 60
        while time.monotonic() < deadline:
            finished = [job for job in fake.control.jobs() if job.finished_at is not None]
            if len(finished) == count:
                break
            time.sleep(0.5)
        time.sleep(2.0)
        answers = generators.everyone("results", 60)
        completed_at = {job.input["job_id"]: job.finished_at for job in fake.control.jobs()}
        pushes = [
            (received - completed_at[job_id]) * 1000
            for answer in answers
            for job_id, received in answer["samples"]
            if completed_at.get(job_id) is not None
        ]
        webhooks = [
            delivery.seconds * 1000
            for delivery in fake.control.webhook_deliveries()
            if delivery.seconds is not None
        ]
        completions = sorted(t for t in completed_at.values() if t is not None)
        spread_s = completions[-1] - completions[0] if completions else None
        state = merge_status(generators.everyone("close", 60))
        log = api.process.problems()
        api.close()
    return {
        "jobs": count,
        "started_in_s": round(started_s, 2),
        "subscribed": subscribed,
        "polls_in_window": polls,
        "polls_per_job_interval": rounded(polls / count / (WINDOW_S / INTERVAL_S), 3),
        "cpu_ms_per_job_poll": rounded(used["api"] * 1000 / polls, 3) if polls else None,
        "cpu_share": {name: rounded(seconds / WINDOW_S, 2) for name, seconds in used.items()},
        "completions_within_s": rounded(spread_s, 2),
        "webhook_answer_ms": percentiles(webhooks),
        "complete_push_ms": percentiles(pushes),
        "subscriptions_at_end": state,
        "server_log": log,
    }


def _cpu(api: Api, fake: Fake, generators: LoadGenerators) -> dict[str, float]:
    return {
        "api": api.process.cpu_seconds(),
        "fake": fake.process.cpu_seconds(),
        "load_generators": sum(cpu_seconds(pid) for pid in generators.pids),
    }
