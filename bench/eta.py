"""Waiting made visible: how right queue positions and estimates are, observed live.

The RunPod stand-in runs each export for 0.5 s per second of video it
processes, times a lognormal noise (sigma 0.15, seeded), in 10 progress steps.
Annotate exports of 20 to 80 s of clips (10 to 40 s of work) are started through
the API (1 s polls, webhooks): first WARM_UP of them on as many workers, for a
history; then BURST at once on WORKERS workers, each with a subscriber asking
for its status, progress, queue position and estimate. Every frame is recorded
as it arrives; the stand-in says when each export really started and finished.

- position_exact: observations whose position equals 1 + the exports ahead of
  it still waiting at that moment (the API's view may lag the stand-in by one
  poll and one refresh of the line: a position right for any moment of the
  `STALENESS_S` before the frame counts), and whether any position ever rose;
- completion error: |estimated - actual end| / actual time left, median, for
  frames received while the export waited and while it ran;
- interval coverage: frames whose interval held the actual end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import websockets

from bench.harness import Context, Processes, rounded
from bench.stack import Api, Fake

WORKERS = 4
SECONDS_PER_INPUT_S = 0.5
NOISE = 0.15
STEPS = 10
INTERVAL_S = 1.0
STALENESS_S = 2.5
MAX_LAG_S = 10.0
START = """
mutation Start($input: AnnotateExportInput!) {
  startAnnotateExport(input: $input) { job { id } userErrors { code message } }
}
"""
WATCH = """
subscription ($id: ID!) {
  exportJob(id: $id) {
    status progress queuePosition
    eta { startsAt completesAt completesAtLow completesAtHigh basis }
  }
}
"""


def run(context: Context) -> dict[str, Any]:
    warm_up, burst = (12, 16) if context.quick else (16, 32)
    folder = context.folder("eta")
    context.say(f"eta: {warm_up} exports of history, then {burst} on {WORKERS} workers")
    with Processes(folder) as running:
        fake = Fake(running)
        fake.control.set_behaviour(
            "auto",
            steps=STEPS,
            queue_delay=0.0,
            seconds_per_input_second=SECONDS_PER_INPUT_S,
            noise=NOISE,
            seed=7,
        )
        api = Api(running, fake, folder / "api", poll_interval_s=INTERVAL_S)
        try:
            lengths = random.Random(11)
            fake.control.set_workers(warm_up)
            history = [api_start(api, lengths.uniform(20, 80)) for _ in range(warm_up)]
            _wait_finished(fake, len(history))
            fake.control.set_workers(WORKERS)
            fake.control.reset_counts()
            result = asyncio.run(_burst(api, fake, [lengths.uniform(20, 80) for _ in range(burst)]))
            counts = fake.control.counts()
            result["requests"] = {route: counts.route(route) for route in ("status", "health")}
        finally:
            api.close()
        result["server_log"] = api.process.problems()
    return {
        "headline": {
            "eta_position_exact": result["positions"]["exact_share"],
            "eta_error_median_waiting": result["completion_error"]["waiting"]["median"],
            "eta_error_median_running": result["completion_error"]["running"]["median"],
            "eta_interval_coverage": result["interval_coverage"]["share"],
        },
        "details": {"eta": result},
    }


def api_start(api: Api, clip_seconds: float) -> str:
    clip = {"startTime": 0.0, "endTime": round(clip_seconds, 2), "name": "clip"}
    data = api.graphql(START, {"input": {"gameId": api.game_id, "clips": [clip]}})
    answer = data["startAnnotateExport"]
    if answer["userErrors"]:
        raise RuntimeError(f"start refused: {answer['userErrors']}")
    return str(answer["job"]["id"])


def _wait_finished(fake: Fake, count: int, within_s: float = 300.0) -> None:
    deadline = time.monotonic() + within_s
    while sum(1 for job in fake.control.jobs() if job.finished_at) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("eta: the history did not finish")
        time.sleep(0.5)


async def _burst(api: Api, fake: Fake, lengths: list[float]) -> dict[str, Any]:
    frames: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    order: list[str] = []
    watchers = []
    for seconds in lengths:
        job_id = await asyncio.to_thread(api_start, api, seconds)
        order.append(job_id)
        watchers.append(asyncio.create_task(_watch(api, job_id, frames[job_id])))
    await asyncio.wait(watchers, timeout=600)
    for watcher in watchers:
        watcher.cancel()
    truth = {
        str(job.input.get("job_id")): (job.started_at, job.finished_at)
        for job in fake.control.jobs()
    }
    return _score(order, frames, truth)


async def _watch(api: Api, job_id: str, seen: list[tuple[float, dict[str, Any]]]) -> None:
    async with websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": {"token": api.token}}))
        await socket.recv()
        payload = {"query": WATCH, "variables": {"id": job_id}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        async for raw in socket:
            received = time.time()
            frame = json.loads(raw)
            if frame["type"] == "next":
                seen.append((received, frame["payload"]["data"]["exportJob"]))
            elif frame["type"] in ("complete", "error"):
                return


def _score(
    order: list[str],
    frames: dict[str, list[tuple[float, dict[str, Any]]]],
    truth: dict[str, tuple[float | None, float | None]],
) -> dict[str, Any]:
    position_checks, rises = [], 0
    miss_lags: list[float | None] = []
    errors: dict[str, list[float]] = {"waiting": [], "running": []}
    inside = 0
    estimates = 0
    for index, job_id in enumerate(order):
        ahead = order[:index]
        finished = truth[job_id][1]
        shown: list[int] = []
        for received, job in frames[job_id]:
            position = job["queuePosition"]
            if position is not None and job["status"] in ("PENDING", "QUEUED"):
                shown.append(position)
                right = {
                    1 + sum(1 for other in ahead if _waiting(truth[other][0], moment))
                    for moment in _moments(received)
                }
                position_checks.append(position in right)
                if position not in right:
                    miss_lags.append(_lag(position, ahead, truth, received))
            eta = job["eta"]
            if eta is None or finished is None or finished <= received:
                continue
            left = finished - received
            end = _epoch(eta["completesAt"])
            phase = "running" if job["status"] == "PROCESSING" else "waiting"
            errors[phase].append(abs(end - finished) / left)
            estimates += 1
            low, high = _epoch(eta["completesAtLow"]), _epoch(eta["completesAtHigh"])
            inside += low <= finished <= high
        rises += sum(1 for before, after in itertools.pairwise(shown) if after > before)
    return {
        "exports": len(order),
        "workers": WORKERS,
        "frames": sum(len(seen) for seen in frames.values()),
        "positions": {
            "observations": len(position_checks),
            "exact_share": rounded(sum(position_checks) / len(position_checks), 3)
            if position_checks
            else None,
            "rises": rises,
            "staleness_s": STALENESS_S,
            # How far back each miss was right (None: not within MAX_LAG_S).
            "miss_lags_s": miss_lags,
        },
        "completion_error": {
            phase: {
                "median": rounded(statistics.median(values), 3) if values else None,
                "observations": len(values),
            }
            for phase, values in errors.items()
        },
        "interval_coverage": {
            "share": rounded(inside / estimates, 3) if estimates else None,
            "observations": estimates,
        },
    }


def _waiting(started: float | None, moment: float) -> bool:
    return started is None or started > moment


def _lag(
    position: int,
    ahead: list[str],
    truth: dict[str, tuple[float | None, float | None]],
    received: float,
) -> float | None:
    for tenths in range(int(MAX_LAG_S * 10) + 1):
        moment = received - tenths / 10
        if position == 1 + sum(1 for other in ahead if _waiting(truth[other][0], moment)):
            return tenths / 10
    return None


def _moments(received: float) -> list[float]:
    steps = 10
    return [received - STALENESS_S * step / steps for step in range(steps + 1)]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()
