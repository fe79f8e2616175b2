"""A resuming stream under rolling `kill -9`: three API processes, one SSE client.

Three API processes share BENCH_POSTGRES_URL (the case is skipped without it);
the RunPod stand-in runs each export by itself on a pool of WORKERS (STEPS
progress steps STEP_S apart, then COMPLETED with its webhook). Over DURATION_S,
N exports are started one by one, each on the next process (on another, with the
same idempotency key, when that one is down); every KILL_EVERY_S one process, in
turn, is killed with SIGKILL and started again. One client follows
`exportJobs { id status progress changeCursor }` over SSE
(bench/resume_client.py): whenever its stream breaks it reconnects to the next
process that answers with `Last-Event-ID` = the last event id it received, and
never reads the list.

Once the stand-in has ended every export (and the API, read by the bench, holds
each one's final state), and the client has caught up or 30 s passed:

- final_seen: exports whose final state (status and progress, as the API holds
  it) is the last the client saw of them, over the exports (goal: all);
- backwards: events where a job's status went back (PENDING < QUEUED <
  PROCESSING < final), its progress decreased, or anything came after its final
  state (goal 0);
- cursor_regressions: events whose change cursor is older than one received
  before, on this stream or an earlier one: something from before the point the
  client resumed from, sent again or out of order (goal 0);
- duplicates: events repeating a job's previous status and progress, those on a
  new stream, and those with a cursor never seen before (a change to a field not
  selected, such as the message); the others carry no change: a refresh of a
  job's queue position or estimate, which a new stream sends once for a job the
  client already had from an earlier one;
- reconnects, and gap_ms: from a stream breaking to the next one answering 200;
- server_logs: errors, warnings and tracebacks of every process's every life
  (log_errors: errors and tracebacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from bench.database import fresh_database
from bench.harness import Context, Processes, percentiles, rounded
from bench.resume_client import Follower, analyse
from bench.stack import START_MUTATION, Api, Fake, start_apis
from tests.support.queries import overlay_input

PROCESSES = 3
EXPORTS = 60
DURATION_S = 60.0
KILL_EVERY_S = 5.0
WORKERS = 8
STEPS = 8
STEP_S = 1.0
INTERVAL_S = 1.0
CATCH_UP_S = 30.0
ENDED_WITHIN_S = 180.0
TERMINAL = {"COMPLETE", "ERROR", "CANCELLED"}
STATE = "query State($id: ID!) { exportJob(id: $id) { status progress } }"
SKIPPED = "BENCH_POSTGRES_URL is unset: the resume bench needs PostgreSQL for three processes"


def run(context: Context) -> dict[str, Any]:
    headline: dict[str, Any] = {
        "resume_final_seen": None,
        "resume_backwards": None,
        "resume_cursor_regressions": None,
        "resume_duplicates": None,
        "resume_reconnects": None,
        "resume_longest_gap_ms": None,
        "resume_log_errors": None,
    }
    url = os.environ.get("BENCH_POSTGRES_URL")
    if not url:
        context.say(f"resume: skipped: {SKIPPED}")
        return {"headline": headline, "details": {"resume": {"skipped": SKIPPED}}}
    exports, duration_s = (20, 20.0) if context.quick else (EXPORTS, DURATION_S)
    folder = context.folder("resume")
    asyncio.run(fresh_database(url))
    with Processes(folder) as running:
        fake = Fake(running)
        fake.run_by_itself(workers=WORKERS, steps=STEPS, step_s=STEP_S)
        apis = start_apis(
            running, fake, folder, PROCESSES, poll_interval_s=INTERVAL_S, database_url=url
        )
        context.say(
            f"resume: {exports} exports over {duration_s:g} s on {PROCESSES} processes, "
            f"one killed every {KILL_EVERY_S:g} s"
        )
        try:
            result = asyncio.run(_drive(context, fake, apis, exports, duration_s))
        finally:
            for api in apis:
                api.close()
        logs = {life.name: life.problems() for api in apis for life in api.lives}
    result["server_logs"] = logs
    result["log_errors"] = sum(log["error"] + log["traceback"] for log in logs.values())
    seen = result["seen"]
    headline.update(
        resume_final_seen=rounded(seen["final_seen"] / max(1, result["exports"]), 3),
        resume_backwards=seen["backwards"],
        resume_cursor_regressions=seen["cursor_regressions"],
        resume_duplicates=seen["duplicates"],
        resume_reconnects=result["reconnects"],
        resume_longest_gap_ms=result["gap_ms"]["max"],
        resume_log_errors=result["log_errors"],
    )
    return {"headline": headline, "details": {"resume": result}}


async def _drive(
    context: Context, fake: Fake, apis: list[Api], count: int, duration_s: float
) -> dict[str, Any]:
    follower = Follower(apis)
    following = asyncio.create_task(follower.follow())
    await asyncio.wait_for(follower.connected.wait(), 30)
    began = time.monotonic()
    kills: list[dict[str, Any]] = []
    starting = asyncio.create_task(_start_exports(apis, count, duration_s))
    rolling = asyncio.create_task(_roll(apis, began + duration_s, kills))
    job_ids, start_retries = await starting
    await rolling
    context.say(f"resume: {len(kills)} kills; waiting for the exports to end")
    await _until(lambda: _ended_on_stand_in(fake, job_ids) >= len(job_ids), ENDED_WITHIN_S)
    ended_s = time.monotonic() - began
    finals = await _finals(apis[0], job_ids)
    caught_up = await _until(
        lambda: (
            sum(1 for j, s in follower.last_states().items() if finals.get(j) == s) >= len(finals)
        ),
        CATCH_UP_S,
    )
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    return {
        "exports": count,
        "duration_s": duration_s,
        "kill_every_s": KILL_EVERY_S,
        "workers": WORKERS,
        "steps": STEPS,
        "ended_in_api": len(finals),
        "ended_after_s": round(ended_s, 1),
        "client_caught_up": caught_up,
        "seen": analyse(follower.events, finals),
        "reconnects": len(follower.gaps_ms),
        "gap_ms": percentiles(follower.gaps_ms),
        "streams": follower.connections,
        "refused": follower.refused[:10],
        "stream_errors": follower.stream_errors[:5],
        "kills": kills,
        "start_retries": start_retries,
    }


async def _start_exports(
    apis: Sequence[Api], count: int, duration_s: float
) -> tuple[list[str], int]:
    """`count` exports, one every duration_s / count seconds, each on the next process
    that answers (the same idempotency key on a retry); their ids, and the retries."""
    ids: list[str] = []
    retries = 0
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as http:
        for index in range(count):
            await asyncio.sleep(max(0.0, began + index * duration_s / count - time.monotonic()))
            variables = {
                "input": overlay_input(apis[0].project_id, idempotencyKey=f"resume-{index}")
            }
            for attempt in range(100):
                api = apis[(index + attempt) % len(apis)]
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                    answer = await http.post(
                        f"{api.url}/graphql",
                        json={"query": START_MUTATION, "variables": variables},
                        headers={"Authorization": f"Bearer {api.token}"},
                    )
                    result = answer.json()["data"]["startOverlayExport"]
                    if result["userErrors"]:
                        raise RuntimeError(f"start refused: {result['userErrors']}")
                    ids.append(str(result["job"]["id"]))
                    break
                retries += 1
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"export {index}: no process answered its start")
    return ids, retries


async def _roll(apis: Sequence[Api], until: float, kills: list[dict[str, Any]]) -> None:
    """Every KILL_EVERY_S until `until`, `kill -9` the next process and start it again."""
    turn = 0
    began = time.monotonic()
    while (due := began + (turn + 1) * KILL_EVERY_S) <= until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        api = apis[turn % len(apis)]
        turn += 1
        killed = time.monotonic()
        await asyncio.to_thread(api.kill)
        await asyncio.to_thread(api.restart)
        kills.append(
            {
                "at_s": round(killed - began, 1),
                "restarted_as": api.process.name,
                "back_after_s": round(time.monotonic() - killed, 2),
            }
        )


def _ended_on_stand_in(fake: Fake, job_ids: list[str]) -> int:
    wanted = set(job_ids)
    ended = {
        str(job.input.get("job_id"))
        for job in fake.control.jobs()
        if job.input.get("job_id") in wanted and job.finished_at is not None
    }
    return len(ended)


async def _finals(api: Api, job_ids: list[str]) -> dict[str, tuple[str, int]]:
    """Each export's final state as the API holds it, once all are final (or after
    ENDED_WITHIN_S): the bench's own reading, not the client's."""
    states: dict[str, tuple[str, int]] = {}

    def read() -> bool:
        for job_id in job_ids:
            if job_id not in states:
                job = api.graphql(STATE, {"id": job_id})["exportJob"]
                if job["status"] in TERMINAL:
                    states[job_id] = (job["status"], job["progress"])
        return len(states) == len(job_ids)

    await _until(read, ENDED_WITHIN_S)
    return states


async def _until(condition: Callable[[], bool], within_s: float) -> bool:
    """Whether `condition` (run in a thread) held within `within_s`."""
    deadline = time.monotonic() + within_s
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)
    return True
