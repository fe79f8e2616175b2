"""Two API processes on one PostgreSQL database, acting as one service.

Both run with production settings and 1 s polling against the RunPod fake;
jobs are started on the first (A), whose PUBLIC_URL their webhooks call.

- scale_polls_per_job_interval: 100 jobs held IN_PROGRESS, leases spread over
  A and B; /status calls per job per interval, mean over the jobs, over 5
  intervals (one follower per job: 1.0).
- scale_push_p99_ms_cross_process: 20 of those jobs go on (the others finish);
  each has one subscriber, on the process that does not follow it; the fake
  changes each job and fires its webhook (to A) once a second; latency from
  just before the change to receipt.
- scale_subscriptions_2proc: N subscriptions over the 20 jobs, half on each process,
  one change per job per second through webhooks: the largest N tried whose
  push p99 stays within 100 ms.
- failover_s: the fake changes a job every 50 ms; its follower is killed with
  SIGKILL; seconds from the kill to the first change a subscriber on the
  survivor receives that was made after the kill.

The database is BENCH_POSTGRES_URL (default: the local server's
`export_gql_bench`, created when missing, emptied first).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import asyncpg
from websockets.sync.client import connect as ws_connect

from bench.database import fresh_database
from bench.generators import LoadGenerators, merge_status
from bench.harness import Context, Processes, rounded, spread
from bench.push import measure_push
from bench.stack import QUERY, Api, Fake, Job, ws_target

INTERVAL_S = 1.0
POLL_JOBS = 100
CAPACITY_JOBS = 20
PUSH_P99_LIMIT_MS = 100.0
DATABASE_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/export_gql_bench"
)


def run(context: Context) -> dict[str, Any]:
    levels = [2_000, 5_000] if context.quick else [5_000, 10_000, 20_000]
    rounds = 5 if context.quick else 10
    folder = context.folder("scale")
    asyncio.run(fresh_database(DATABASE_URL))
    with Processes(folder) as processes, LoadGenerators(2) as generators:
        fake = Fake(processes)
        apis = [
            Api(
                processes,
                fake,
                folder / name,
                poll_interval_s=INTERVAL_S,
                name=name,
                database_url=DATABASE_URL,
            )
            for name in ("api-a", "api-b")
        ]
        a, b = apis
        backend = {"kind": "fake", "host": "127.0.0.1", "port": fake.port}

        context.say(f"scale: {POLL_JOBS} jobs over 2 processes")
        jobs = a.create_jobs(POLL_JOBS)
        owners = _wait_for_spread(jobs, apis)
        polls = _polls_per_job_interval(fake, jobs, intervals=5)

        # The rest run on 20 jobs, the others finished.
        for job in jobs[CAPACITY_JOBS:]:
            fake.control.complete(job.runpod_id)
        jobs = jobs[:CAPACITY_JOBS]
        _wait_for_spread(jobs, apis)

        context.say("scale: push across processes")
        push = _cross_process_push(generators, backend, apis, jobs, rounds=rounds)
        generators.everyone("close", 60)

        capacity: dict[str, Any] = {}
        for count in levels:
            context.say(f"scale: {count} subscriptions over 2 processes")
            capacity[str(count)] = _capacity(
                generators, backend, apis, jobs, count=count, rounds=rounds
            )
            if (capacity[str(count)]["p99_ms"] or 1e9) > PUSH_P99_LIMIT_MS:
                break
        held = [int(n) for n, r in capacity.items() if (r["p99_ms"] or 1e9) <= PUSH_P99_LIMIT_MS]

        context.say("scale: failover")
        failover = _failover(a, b, fake)
        logs = {api.process.name: api.process.problems() for api in apis}
        nofile = processes.nofile | generators.nofile()
        for api in apis:
            api.close()
    return {
        "headline": {
            "scale_polls_per_job_interval": polls["mean"],
            "scale_push_p99_ms_cross_process": push["p99_ms"],
            "failover_s": failover["seconds"],
            "scale_subscriptions_2proc": max(held, default=0),
        },
        "details": {
            "scale": {
                "interval_s": INTERVAL_S,
                "database": DATABASE_URL.rsplit("/", 1)[-1],
                "leases": dict(owners),
                "polls": polls,
                "push_cross_process": push,
                "capacity": capacity,
                "capacity_jobs": CAPACITY_JOBS,
                "failover": failover,
                "server_logs": logs,
                "nofile": nofile,
            }
        },
    }


async def _lease_owners(job_ids: list[str]) -> dict[str, str | None]:
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await connection.fetch(
            "SELECT id, lease_owner FROM export_jobs WHERE id = ANY($1::text[])", job_ids
        )
    finally:
        await connection.close()
    return {row["id"]: row["lease_owner"] for row in rows}


def _wait_for_spread(jobs: list[Job], apis: list[Api], timeout: float = 30.0) -> dict[str, int]:
    """Until every job is leased, to both processes (neither more than 60 %); returns
    jobs per process."""
    names = {api.process_id(): api.process.name for api in apis}
    deadline = time.monotonic() + timeout
    while True:
        owners = asyncio.run(_lease_owners([job.id for job in jobs]))
        counts = {name: 0 for name in names.values()}
        for owner in owners.values():
            if owner in names:
                counts[names[owner]] += 1
        leased = sum(counts.values()) == len(jobs)
        if leased and min(counts.values()) > 0 and max(counts.values()) <= 0.6 * len(jobs):
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"leases did not spread: {counts}")
        time.sleep(0.2)


def _polls_per_job_interval(fake: Fake, jobs: list[Job], *, intervals: int) -> dict[str, Any]:
    fake.control.reset_counts()
    time.sleep(intervals * INTERVAL_S)
    counts = fake.control.counts()
    per_job = [counts.job(job.runpod_id) / intervals for job in jobs]
    return {
        "mean": round(sum(per_job) / len(per_job), 3),
        "max": round(max(per_job), 2),
        "min": round(min(per_job), 2),
        "intervals": intervals,
    }


def _cross_process_push(
    generators: LoadGenerators,
    backend: dict[str, Any],
    apis: list[Api],
    jobs: list[Job],
    *,
    rounds: int,
) -> dict[str, Any]:
    """One subscriber per job, on the process that does not follow it."""
    ids = {api.process_id(): index for index, api in enumerate(apis)}
    # A lease being handed over (shares evening out) is briefly nobody's.
    deadline = time.monotonic() + 30.0
    while True:
        leases = asyncio.run(_lease_owners([job.id for job in jobs]))
        if all(leases[job.id] in ids for job in jobs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    on = [[0] * len(jobs) for _ in apis]
    for position, job in enumerate(jobs):
        follower = ids[leases[job.id] or ""]
        on[1 - follower][position] = 1
    for api, counts in zip(apis, on, strict=True):
        generators.subscribe(ws_target(api.ws_url, api.token), [j.id for j in jobs], counts)
    return measure_push(
        generators,
        backend,
        jobs,
        [1] * len(jobs),
        prefix="x",
        webhook=True,
        period=INTERVAL_S,
        jitter=0.0,
        rounds=rounds,
        grace=0.5,
    )


def _capacity(
    generators: LoadGenerators,
    backend: dict[str, Any],
    apis: list[Api],
    jobs: list[Job],
    *,
    count: int,
    rounds: int,
) -> dict[str, Any]:
    driven = jobs
    counts = spread(count, len(driven))
    subscribed = []
    for index, api in enumerate(apis):
        share = [per_job // 2 + (per_job % 2 if index == 0 else 0) for per_job in counts]
        subscribed.append(
            generators.subscribe(ws_target(api.ws_url, api.token), [j.id for j in driven], share)
        )
    result = measure_push(
        generators,
        backend,
        driven,
        counts,
        prefix=f"c{count}-",
        webhook=True,
        period=INTERVAL_S,
        jitter=0.0,
        rounds=rounds,
        grace=1.0,
    )
    result["subscribed"] = subscribed
    result["at_end"] = merge_status(generators.everyone("close", 120))
    return result


def _failover(a: Api, b: Api, fake: Fake) -> dict[str, Any]:
    (job,) = a.create_jobs(1)
    owner = asyncio.run(_lease_owners([job.id]))[job.id]
    follower, survivor = (a, b) if owner == a.process_id() else (b, a)
    received: list[tuple[str, float]] = []
    listening = threading.Event()
    stop = threading.Event()

    def subscriber() -> None:
        with ws_connect(survivor.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            ws.send(json.dumps({"type": "connection_init", "payload": {"token": a.token}}))
            ws.recv(10)
            ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": QUERY, "variables": {"id": job.id}},
                    }
                )
            )
            while not stop.is_set():
                try:
                    message = json.loads(ws.recv(0.5))
                except TimeoutError:
                    continue
                if message.get("type") == "next":
                    listening.set()
                    state = message["payload"]["data"]["exportJob"]
                    received.append((state["message"] or "", time.time()))

    thread = threading.Thread(target=subscriber, daemon=True)
    thread.start()
    listening.wait(10)
    changed_at: dict[str, float] = {}
    killed_at: float | None = None
    seconds: float | None = None
    step = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        step += 1
        token = f"f{step}"
        changed_at[token] = time.time()
        fake.control.progress(job.runpod_id, min(99, 2 + step // 10), token)
        if killed_at is None and step == 40:
            killed_at = time.time()
            follower.process.popen.kill()
        if killed_at is not None:
            after = [at for token, at in received if changed_at.get(token, 0) > killed_at]
            if after:
                seconds = after[0] - killed_at
                break
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    return {
        "seconds": rounded(seconds, 2),
        "killed": follower.process.name,
        "survivor": survivor.process.name,
        "lease_ttl_s": a.settings.job_lease_ttl_s,
        "goal_s": 3 * INTERVAL_S + 2,
    }
