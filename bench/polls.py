"""RunPod /status calls per unfinished job per poll interval, against the number of watchers.

One API; one job per watcher count N (and one with no watcher), all held
IN_PROGRESS on the fake; N subscriptions to each job at once. The fake counts
/status calls per job over a few intervals. Baseline, same run, API stopped: N
watchers each poll a REST route that asks RunPod every time
(bench/poll_baseline.py), once per interval, one N after the other.
"""

from __future__ import annotations

import time
from typing import Any

from bench.generators import LoadGenerators, merge_status, split
from bench.harness import PYTHON, Context, Processes, free_port, rounded
from bench.stack import Api, Fake, ws_target

INTERVAL_S = 1.0


def run(context: Context) -> dict[str, Any]:
    levels = [1, 100, 1000] if context.quick else [1, 100, 1000, 10_000]
    intervals = 2.5 if context.quick else 5.0
    baseline_intervals = 2 if context.quick else 5
    folder = context.folder("polls")
    with Processes(folder) as processes, LoadGenerators(2) as generators:
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=INTERVAL_S)
        watchers = [0, *levels]
        jobs = api.create_jobs(len(watchers))
        context.say(f"polls: {sum(levels)} subscriptions over {len(levels)} jobs")
        subscribed = generators.subscribe(
            ws_target(api.ws_url, api.token), [job.id for job in jobs], watchers
        )
        time.sleep(INTERVAL_S / 2)
        timeline = _timeline(fake, [job.runpod_id for job in jobs], intervals * INTERVAL_S)
        state = merge_status(generators.everyone("status", 30))
        ours = {
            str(count): _per_interval([(at, calls[index]) for at, calls in timeline])
            for index, count in enumerate(watchers)
        }
        generators.everyone("close", 60)
        api_log = api.process.problems()
        api.close()
        processes.stop(api.process)

        context.say("polls: baseline (REST route polling RunPod per call)")
        port = free_port()
        baseline = processes.start(
            "poll-baseline",
            [PYTHON, "-m", "bench.poll_baseline", "--port", str(port), "--runpod-url", fake.url],
        )
        baseline.wait_http(f"http://127.0.0.1:{port}/healthz", 30)
        theirs: dict[str, Any] = {}
        # Small counts together; each large one alone, so none takes CPU from another.
        for group in [
            [count for count in levels if count <= 100],
            *[[count] for count in levels if count > 100],
        ]:
            watched = {count: fake.create_job() for count in group}
            theirs |= _baseline(
                generators,
                fake,
                url=f"http://127.0.0.1:{port}",
                watched=watched,
                intervals=baseline_intervals,
            )
        baseline_log = baseline.problems()
        nofile = processes.nofile | generators.nofile()
    headline = ours[str(levels[-1])]
    return {
        "headline": {"polls_per_job_interval": headline},
        "details": {
            "polls": {
                "interval_s": INTERVAL_S,
                "nofile": nofile,
                "intervals_measured": {"api": intervals, "baseline": baseline_intervals},
                "api": {
                    "status_calls_per_job_interval": ours,
                    "subscriptions": subscribed,
                    "at_end": state,
                    "server_log": api_log,
                },
                "baseline_rest_polling": {
                    "status_calls_per_job_interval": {
                        k: v["per_interval"] for k, v in theirs.items()
                    },
                    "runs": theirs,
                    "server_log": baseline_log,
                },
                "note": "key = watchers of the job; the API's figure should be ~1 whatever the "
                "watchers, the baseline's ~N (less where it saturates: see 'late')",
            }
        },
    }


def _timeline(fake: Fake, job_ids: list[str], seconds: float) -> list[tuple[float, list[int]]]:
    """Each job's /status call count on the fake, read every 20 ms for `seconds`."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        counts = fake.control.counts()
        samples.append((time.monotonic(), [counts.job(job_id) for job_id in job_ids]))
        time.sleep(0.02)
    return samples


def _per_interval(samples: list[tuple[float, int]]) -> float | None:
    """Calls per interval, from the times the count went up: calls after the first rise
    over the time from the first rise to the last. A plain count over a window of a few
    intervals would be off by one call whenever the window catches an extra poll."""
    rises = [
        (at, count)
        for (at, count), (_, before) in zip(samples[1:], samples, strict=False)
        if count > before
    ]
    if len(rises) < 2:
        return None
    (first_at, first), (last_at, last) = rises[0], rises[-1]
    return rounded((last - first) / (last_at - first_at) * INTERVAL_S, 2)


def _baseline(
    generators: LoadGenerators,
    fake: Fake,
    *,
    url: str,
    watched: dict[int, str],
    intervals: int,
) -> dict[str, Any]:
    """`count` watchers polling the baseline for each (count, fake job id) of `watched`."""
    warm_up = INTERVAL_S
    duration = warm_up + intervals * INTERVAL_S + 0.5
    paths = [f"/status/{job_id}" for job_id in watched.values()]
    parts = split(list(watched), len(generators))
    active = [index for index, part in enumerate(parts) if sum(part)]
    for index in active:
        generators.send(
            index,
            "poll",
            url=url,
            paths=paths,
            counts=parts[index],
            interval=INTERVAL_S,
            duration=duration,
        )
    time.sleep(warm_up)
    fake.control.reset_counts()
    started = time.monotonic()
    time.sleep(intervals * INTERVAL_S)
    counts = fake.control.counts()
    elapsed = (time.monotonic() - started) / INTERVAL_S
    outcomes: dict[str, dict[str, int]] = {path: {} for path in paths}
    for index in active:
        for path, outcome in generators.receive(index, duration + 60).items():
            for key, value in outcome.items():
                outcomes[path][key] = outcomes[path].get(key, 0) + value
    results = {}
    for (count, job_id), path in zip(watched.items(), paths, strict=True):
        # Late watchers mean the server could not keep up: then RunPod gets fewer than N calls.
        results[str(count)] = {
            "watchers": count,
            "per_interval": rounded(counts.job(job_id) / elapsed, 1),
            "saturated": bool(set(outcomes[path]) - {"ok"}),
            "requests": outcomes[path],
        }
    return results
