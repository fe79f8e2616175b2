"""RunPod's limits under a burst: 1 000 exports on an endpoint with 150 workers.

The RunPod stand-in enforces RunPod's documented limits (`/run` 1 000, `/status`
2 000, `/cancel` 100 per 10 s, with their concurrency caps; 429 past them) and
runs each job on one of 150 workers, the rest waiting IN_QUEUE first in, first
out: 8 progress steps 1 s apart, then COMPLETED with a webhook. The API (1 s
polls, webhooks through PUBLIC_URL, RunPod's default budget) gets 1 000 start
mutations at once; 30 of the first exports to run and 30 that wait in RunPod's
queue are watched over websockets; once every export is submitted, 60 queued
ones (unwatched) are cancelled at once.

- throttled: 429s the stand-in answered, per route; busiest_10s: the most
  requests it accepted in any 10 s, per route, beside the documented limit;
- status_requests: every `/status` request of the run;
- progress_steps_seen: distinct progress values a watched export's subscriber
  saw while it ran (of 8), median;
- complete_push_ms: a watched export's COMPLETE reaching its subscriber after
  the stand-in sent its webhook, p50 / p99 (and webhook_answer_ms: how long the
  API took to answer those webhooks);
- start_seen_s: a watched queued export's PROCESSING reaching its subscriber
  after the stand-in gave it a worker, p50 / max;
- every export ends and every cancel reaches RunPod.

With BENCH_RUNPOD_LATENCY_S every answer of the stand-in comes that late, as
RunPod's do across the Internet (the state changes when the request arrives).
With BENCH_POSTGRES_URL the same runs on two API processes sharing PostgreSQL
(the budget is the cluster's); with BENCH_BASELINE_ROOT (a checkout of an earlier
commit, with its own .venv) the same runs against that commit's API too, in the
same bench run, for a side-by-side figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.database import fresh_database
from bench.harness import ROOT, Context, Processes, percentile, rounded
from bench.stack import Api, Fake, start_apis
from tests.support.queries import CANCEL, overlay_input

EXPORTS = 1000
WORKERS = 150
STEPS = 8
STEP_S = 1.0
INTERVAL_S = 1.0
WATCHED = 30
CANCELS = 60
LIMITS = {"run": 1000, "status": 2000, "cancel": 100}
# BENCH_RUNPOD_LATENCY_S: how late every RunPod answer comes (0: on loopback at once).
LATENCY_S = float(os.environ.get("BENCH_RUNPOD_LATENCY_S", "0"))
# The figures the issue measured before this budget, with the same scenario.
EARLIER = {"throttled_status": 3765, "status_requests": 14000, "start_seen_s": (1.3, 2.2)}
START = """
mutation Start($input: OverlayExportInput!) {
  startOverlayExport(input: $input) { job { id } userErrors { code } }
}
"""
WATCH = "subscription ($id: ID!) { exportJob(id: $id) { status progress } }"
LIST = """
query List($after: String) {
  exportJobs(first: 100, after: $after) {
    edges { node { id status } } pageInfo { hasNextPage endCursor }
  }
}
"""
TERMINAL = {"COMPLETE", "ERROR", "CANCELLED"}


def run(context: Context) -> dict[str, Any]:
    scenarios = {"one_process": _scenario(context, "one-process", processes=1)}
    postgres = os.environ.get("BENCH_POSTGRES_URL")
    if postgres:
        scenarios["two_processes"] = _scenario(
            context, "two-processes", processes=2, database_url=postgres
        )
    baseline = os.environ.get("BENCH_BASELINE_ROOT")
    if baseline:
        scenarios["baseline"] = _scenario(
            context, "baseline", processes=1, root=Path(baseline).resolve()
        )
    top = scenarios["one_process"]
    return {
        "headline": {
            "budget_throttled": sum(top["throttled"].values()),
            "budget_status_requests": top["status_requests"],
            "budget_progress_steps_median": top["progress_steps_seen"]["median"],
            "budget_complete_push_p99_ms": top["complete_push_ms"]["p99"],
            "budget_start_seen_p50_s": top["start_seen_s"]["p50"],
            "budget_start_seen_max_s": top["start_seen_s"]["max"],
        },
        "details": {"budget": {"earlier": EARLIER, **scenarios}},
    }


def _scenario(
    context: Context,
    name: str,
    *,
    processes: int,
    database_url: str | None = None,
    root: Path = ROOT,
) -> dict[str, Any]:
    folder = context.folder(f"budget-{name}")
    context.say(f"budget: {name}: {EXPORTS} exports on {WORKERS} workers, RunPod's limits")
    if database_url is not None:
        asyncio.run(fresh_database(database_url))
    with Processes(folder) as running:
        fake = Fake(running)
        fake.control.set_limits("runpod")
        fake.run_by_itself(workers=WORKERS, steps=STEPS, step_s=STEP_S)
        if LATENCY_S:
            # Every answer comes this late, as across the Internet from RunPod.
            fake.control.inject("late", count=10**9, delay=LATENCY_S)
        apis = start_apis(
            running,
            fake,
            folder,
            processes,
            poll_interval_s=INTERVAL_S,
            database_url=database_url,
            root=root,
        )
        try:
            result = asyncio.run(_drive(context, fake, apis))
        finally:
            for api in apis:
                api.close()
        counts = fake.control.counts()
        result["throttled"] = {route: counts.throttled_count(route) for route in LIMITS}
        result["busiest_10s"] = {
            route: {"requests": fake.control.busiest_window(route, 10.0), "limit": limit}
            for route, limit in LIMITS.items()
        }
        result["status_requests"] = counts.route("status")
        result["requests"] = {route: counts.route(route) for route in (*LIMITS, "health")}
        result["server_logs"] = {api.process.name: api.process.problems() for api in apis}
        result["cpu_s"] = {api.process.name: round(api.process.cpu_seconds(), 1) for api in apis}
    return result


async def _drive(context: Context, fake: Fake, apis: list[Api]) -> dict[str, Any]:
    began = time.time()
    updates: dict[str, list[tuple[float, str, int]]] = defaultdict(list)
    watchers: list[asyncio.Task[None]] = []
    # The first exports to start run at once; those half-way wait in RunPod's queue.
    watched = {*range(WATCHED), *range(EXPORTS // 2, EXPORTS // 2 + WATCHED)}

    def started(position: int, job_id: str) -> None:
        if position in watched:  # subscribed as soon as it exists, as the panel does
            api = apis[position % len(apis)]
            watchers.append(asyncio.create_task(_watch(api, job_id, updates[job_id])))

    job_ids = await _start_all(apis, started)
    context.say(f"budget: {len(job_ids)} started in {time.time() - began:.1f} s")
    running, queued = job_ids[:WATCHED], job_ids[EXPORTS // 2 : EXPORTS // 2 + WATCHED]
    await _until(lambda: fake.control.counts().route("run") >= EXPORTS, within_s=120)
    submitted_s = time.time() - began
    cancelled = job_ids[-CANCELS:]
    await asyncio.gather(*(_cancel(apis[i % len(apis)], j) for i, j in enumerate(cancelled)))
    context.say(f"budget: all submitted after {submitted_s:.1f} s; {CANCELS} cancelled")
    await _until(lambda: _unfinished(fake) == 0, within_s=600)
    ended = await _until_all_ended(apis[0], len(job_ids), within_s=120)
    await asyncio.wait(watchers, timeout=30)
    for watcher in watchers:
        watcher.cancel()
    by_job = {str(job.input.get("job_id")): job for job in fake.control.jobs()}
    webhooks = {
        str(delivery.body.get("input", {}).get("job_id")): delivery
        for delivery in fake.control.webhook_deliveries()
    }
    cancels_reached = sum(1 for j in cancelled if by_job[j].status == "CANCELLED")
    steps_seen, pushes, starts = [], [], []
    slowest: list[tuple[int, float]] = []
    for job_id in running + queued:
        seen = updates[job_id]
        job = by_job[job_id]
        progress = {p for _, status, p in seen if status == "PROCESSING" and 0 < p < 100}
        steps_seen.append(len(progress | ({100} if _completed(seen) else set())))
        done = [t for t, status, _ in seen if status == "COMPLETE"]
        webhook = webhooks.get(job_id)
        if done and webhook is not None and webhook.sent_at is not None:
            pushes.append((done[0] - webhook.sent_at) * 1000)
            slowest.append((round(pushes[-1]), round(webhook.sent_at - began, 1)))
        if job_id in queued and job.started_at is not None:
            start = [t for t, status, _ in seen if status in ("PROCESSING", *TERMINAL)]
            if start:
                starts.append(start[0] - job.started_at)
    answers = [d.seconds * 1000 for d in webhooks.values() if d.seconds is not None]
    return {
        "exports": EXPORTS,
        "workers": WORKERS,
        "submitted_in_s": round(submitted_s, 1),
        "ran_in_s": round(time.time() - began, 1),
        "ended_in_api": ended,
        "cancels_reaching_runpod": f"{cancels_reached}/{CANCELS}",
        "progress_steps_seen": {
            "median": statistics.median(steps_seen) if steps_seen else None,
            "min": min(steps_seen, default=None),
            "of": STEPS,
        },
        "complete_push_ms": {
            "p50": rounded(percentile(pushes, 50)),
            "p99": rounded(percentile(pushes, 99)),
            "samples": len(pushes),
            "slowest": sorted(slowest, reverse=True)[:5],
        },
        "webhook_answer_ms": {
            "p50": rounded(percentile(answers, 50)),
            "p99": rounded(percentile(answers, 99)),
            "samples": len(answers),
        },
        "start_seen_s": {
            "p50": rounded(percentile(starts, 50), 2),
            "max": rounded(max(starts, default=None), 2),
            "samples": len(starts),
        },
    }


async def _start_all(apis: list[Api], started: Callable[[int, str], None]) -> list[str]:
    """EXPORTS start mutations from 20 concurrent clients; ids in the order answered,
    each told to `started` with its position as it comes."""
    ids: list[str] = []
    counter = iter(range(EXPORTS))

    async def client(api: Api) -> None:
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=60
        ) as http:
            for _ in counter:
                body = {"query": START, "variables": {"input": overlay_input(api.project_id)}}
                answer = (await http.post("/graphql", json=body)).json()
                result = answer["data"]["startOverlayExport"]
                if result["userErrors"]:
                    raise RuntimeError(f"start refused: {result['userErrors']}")
                ids.append(result["job"]["id"])
                started(len(ids) - 1, ids[-1])

    await asyncio.gather(*(client(apis[index % len(apis)]) for index in range(20)))
    return ids


async def _watch(api: Api, job_id: str, seen: list[tuple[float, str, int]]) -> None:
    """One websocket subscriber (graphql-transport-ws), recording each update's arrival."""
    async with websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {"token": api.token}}))
        await socket.recv()
        message = {"id": "1", "type": "subscribe", "payload": {"query": WATCH}}
        message["payload"]["variables"] = {"id": job_id}  # type: ignore[index]
        await socket.send(json.dumps(message))
        async for raw in socket:
            received = time.time()
            frame = json.loads(raw)
            if frame["type"] == "next":
                job = frame["payload"]["data"]["exportJob"]
                seen.append((received, job["status"], job["progress"]))
            elif frame["type"] in ("complete", "error"):
                return


async def _cancel(api: Api, job_id: str) -> None:
    async with httpx.AsyncClient(
        base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=60
    ) as http:
        await http.post("/graphql", json={"query": CANCEL, "variables": {"id": job_id}})


async def _until_all_ended(api: Api, count: int, *, within_s: float) -> int:
    """How many of the API's exports are final, once all are or after `within_s`."""
    deadline = time.monotonic() + within_s
    ended = 0
    while time.monotonic() < deadline:
        ended = await asyncio.to_thread(_count_ended, api)
        if ended >= count:
            break
        await asyncio.sleep(1.0)
    return ended


def _count_ended(api: Api) -> int:
    ended, after = 0, None
    while True:
        page = api.graphql(LIST, {"after": after})["exportJobs"]
        ended += sum(1 for edge in page["edges"] if edge["node"]["status"] in TERMINAL)
        if not page["pageInfo"]["hasNextPage"]:
            return ended
        after = page["pageInfo"]["endCursor"]


def _completed(seen: list[tuple[float, str, int]]) -> bool:
    return any(status == "COMPLETE" for _, status, _ in seen)


def _unfinished(fake: Fake) -> int:
    """Jobs the stand-in has queued or running, from its /health (cheap to ask)."""
    jobs = httpx.get(f"{fake.url}/health", timeout=10).json()["jobs"]
    return int(jobs["inQueue"]) + int(jobs["inProgress"])


async def _until(condition: Any, *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise RuntimeError("budget: timed out waiting")
        await asyncio.sleep(0.5)
