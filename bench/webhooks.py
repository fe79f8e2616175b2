"""Outbound webhooks under a burst: 300 exports finishing at once, a receiver on loopback.

The API (SQLite, 1 s polling, webhooks through PUBLIC_URL, WEBHOOK_URL on a
receiver in this process that answers 204 at once) starts 300 exports on the
RunPod fake, which holds them; then the fake completes all 300 as fast as its
control route allows (about 1 to 2 s), each with its webhook.

- first_attempt_ms: from a change (the `timestamp` of its event, the moment the
  API wrote it) to the event's first request reaching the receiver, p50 / p99 /
  max, for the 300 `export.completed` events and for every event of the run;
- written_ms: from the change to its event's row being written (the job's own
  write, which the event shares), for the completions;
- outage: the receiver down for 60 s (quick: 10 s) while 100 exports complete,
  then back: completions lost (must be 0), and how long after its return the
  last one arrived, beside the longest retry delay it can have been waiting
  out (`one_step_s`);
- delivered: events received, each verified with the `standardwebhooks` library
  as a receiver would (signature, and the timestamp within its 5 minutes), and
  the completions missing (must be 0).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import Context, Processes, percentiles, rounded
from bench.stack import Api, Fake
from gql.config.settings import Settings
from gql.webhooks.setup import retry_policy
from tests.support.webhook_receiver import Received, WebhookReceiver, new_secret

EXPORTS = 300
OUTAGE_EXPORTS = 100
INTERVAL_S = 1.0
UNBOUND_BUDGET = {"runpod_status_rate": 20_000, "runpod_run_rate": 20_000}


def run(context: Context) -> dict[str, Any]:
    count = 100 if context.quick else EXPORTS
    result = _burst(context, count)
    result["outage"] = outage = _outage(context, OUTAGE_EXPORTS, 10 if context.quick else 60)
    return {
        "headline": {
            "webhook_first_attempt_p99_ms": result["first_attempt_ms"]["completed"]["p99"],
            "webhook_completions_lost": result["completions_missing"],
            "webhook_outage_lost": outage["completions_missing"],
            "webhook_outage_recovery_s": outage["recovered_in_s"],
        },
        "details": {"webhooks": result},
    }


def _outage(context: Context, count: int, outage_s: float) -> dict[str, Any]:
    folder = context.folder("webhooks-outage")
    secret = new_secret()
    context.say(f"webhooks: receiver down {outage_s:g} s while {count} exports complete")
    with Processes(folder) as processes, WebhookReceiver() as receiver:
        fake = Fake(processes)
        api = _hooked_api(processes, fake, folder, receiver, secret)
        job_ids = api.start_jobs(count)
        runpod_ids = _submitted(fake, job_ids)
        _wait(lambda: len(receiver.delivered()) >= 2 * count, 60)  # created, queued
        receiver.stop()
        for runpod_id in runpod_ids:
            fake.control.complete(runpod_id)
        time.sleep(outage_s)
        receiver.start()
        back = time.time()
        _wait(lambda: len(_completed(receiver.received)) >= count, outage_s + 180)
        received = receiver.received
        log = api.process.problems()
        attempts = _completed_attempts(api)
        api.close()
    completed = _completed(received)
    policy = retry_policy(Settings.model_validate({}))
    return {
        "exports": count,
        "outage_s": outage_s,
        "completions_missing": len(set(job_ids) - {r.event["data"]["id"] for r in completed}),
        "recovered_in_s": rounded(max((r.at for r in completed), default=back) - back, 1),
        "retry_delays_s": policy.schedule()[:6],
        "attempts_per_completion": {
            "min": min(attempts, default=None),
            "max": max(attempts, default=None),
        },
        # The longest delay before the attempt that delivered (nominal + 25 %).
        "one_step_s": rounded(policy.nominal(max(attempts, default=2) - 1) * 1.25, 1),
        "verified": sum(1 for request in received if request.verify(secret)),
        "requests": len(received),
        "server_log": log,
    }


def _hooked_api(
    processes: Processes, fake: Fake, folder: Path, receiver: WebhookReceiver, secret: str
) -> Api:
    """The API on `fake`, its webhooks going to `receiver`."""
    return Api(
        processes,
        fake,
        folder / "api",
        poll_interval_s=INTERVAL_S,
        settings={**UNBOUND_BUDGET, "webhook_url": receiver.url, "webhook_secret": secret},
    )


def _wait(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not done within {timeout:g} s")
        time.sleep(0.2)


def _burst(context: Context, count: int) -> dict[str, Any]:
    folder = context.folder("webhooks")
    secret = new_secret()
    context.say(f"webhooks: {count} exports finishing at once")
    with Processes(folder) as processes, WebhookReceiver() as receiver:
        fake = Fake(processes)
        api = _hooked_api(processes, fake, folder, receiver, secret)
        job_ids = api.start_jobs(count)
        runpod_ids = _submitted(fake, job_ids)
        began = time.monotonic()
        for runpod_id in runpod_ids:
            fake.control.complete(runpod_id)
        completing_s = time.monotonic() - began
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_completed(receiver.received)) < count:
            time.sleep(0.2)
        received = receiver.received
        log = api.process.problems()
        write_lags = _written_after_ms(api)
        api.close()

    verified = sum(1 for request in received if request.verify(secret))
    first: dict[str, float] = {}
    lags: dict[str, list[float]] = {"completed": [], "all": []}
    for request in received:
        if request.webhook_id in first:
            continue
        first[request.webhook_id] = request.at
        written = datetime.fromisoformat(request.event["timestamp"]).timestamp()
        lag_ms = (request.at - written) * 1000
        lags["all"].append(lag_ms)
        if request.type == "export.completed":
            lags["completed"].append(lag_ms)
    completed = {r.event["data"]["id"] for r in _completed(received)}
    return {
        "exports": count,
        "completions_sent_in_s": rounded(completing_s, 2),
        "requests": len(received),
        "verified": verified,
        "events": len(first),
        "completions_missing": len(set(job_ids) - completed),
        "first_attempt_ms": {name: percentiles(values) for name, values in lags.items()},
        "written_ms": percentiles(write_lags),
        "server_log": log,
    }


def _written_after_ms(api: Api) -> list[float]:
    """For each completed event: its change (the body's timestamp) to its row's commit."""
    path = api.settings.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as database:
        rows = database.execute(
            "SELECT payload, created_at FROM webhook_outbox WHERE type = 'export.completed'"
        ).fetchall()
    return [
        (created - datetime.fromisoformat(json.loads(payload)["timestamp"]).timestamp()) * 1000
        for payload, created in rows
    ]


def _completed_attempts(api: Api) -> list[int]:
    """How many attempts each delivered completion took, from the outbox."""
    path = api.settings.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as database:
        rows = database.execute(
            "SELECT attempts FROM webhook_outbox WHERE type = 'export.completed'"
        ).fetchall()
    return [attempts for (attempts,) in rows]


def _submitted(fake: Fake, job_ids: list[str], timeout: float = 60.0) -> list[str]:
    wanted = set(job_ids)
    deadline = time.monotonic() + timeout
    while True:
        runs = {str(run.input["job_id"]): run.id for run in fake.control.runs()}
        if wanted <= runs.keys():
            return [runs[job_id] for job_id in job_ids]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(wanted & runs.keys())} of {len(wanted)} submitted")
        time.sleep(0.1)


def _completed(records: list[Received]) -> list[Received]:
    return [r for r in records if r.ok and r.type == "export.completed"]
