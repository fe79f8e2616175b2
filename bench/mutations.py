"""Start-export throughput and latency: the API's mutation beside a plain REST route.

C = 1, 10, 100 concurrent clients, each on its own keep-alive connection, send
start requests back to back for a window: to the API the `startOverlayExport`
mutation, then (API stopped) to bench/rest_baseline.py, which does the same
validation, reads, insert and RunPod `/run` call inline. Both use the same
seeded project (each its own SQLite file) and the same fake.

The API answers before it calls `/run` (its tracker submits in the background),
so its throughput counts a job only once its `/run` reached the fake: jobs /
(time from the first request to the last answer or last `/run`, whichever is
later). POLL_INTERVAL_S is 300 here so that no /status poll of the accumulating
jobs falls inside the bench (they stay queued on the fake; no webhook fires).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.generators import LoadGenerators
from bench.harness import PYTHON, Context, Processes, free_port, percentile, rounded, spread
from bench.stack import SECRET, USER, Api, Fake
from gql.config.settings import Settings
from tests.support.assets import seed_assets
from tests.support.queries import overlay_input

LEVELS = [1, 10, 100]


def run(context: Context) -> dict[str, Any]:
    window = 1.2 if context.quick else 5.0
    folder = context.folder("mutations")
    with Processes(folder) as processes, LoadGenerators(2) as generators:
        fake = Fake(processes)
        api = Api(processes, fake, folder / "api", poll_interval_s=300.0)
        ours = {}
        for clients in LEVELS:
            context.say(f"mutations: API, {clients} clients")
            ours[str(clients)] = _load(
                generators,
                fake,
                url=api.url,
                path="/graphql",
                body=api.start_body(),
                token=api.token,
                clients=clients,
                window=window,
            )
        ours["server_log"] = api.process.problems()
        api.close()
        processes.stop(api.process)

        data_dir = folder / "rest"
        settings = Settings.model_validate({"data_dir": str(data_dir)})
        project_id = asyncio.run(seed_assets(settings, USER)).project_id
        port = free_port()
        rest = processes.start(
            "rest-baseline",
            [
                *(PYTHON, "-m", "bench.rest_baseline", "--port", str(port)),
                *("--database-url", settings.database_url, "--runpod-url", fake.url),
                *("--secret", SECRET),
            ],
        )
        rest_url = f"http://127.0.0.1:{port}"
        rest.wait_http(f"{rest_url}/healthz", 30)
        body = json.dumps(overlay_input(project_id)).encode()
        theirs = {}
        for clients in LEVELS:
            context.say(f"mutations: REST baseline, {clients} clients")
            theirs[str(clients)] = _load(
                generators,
                fake,
                url=rest_url,
                path="/exports",
                body=body,
                token=api.token,
                clients=clients,
                window=window,
            )
        theirs["server_log"] = rest.problems()
        nofile = processes.nofile | generators.nofile()

    ratios = {
        str(clients): rounded(ours[str(clients)]["per_s"] / theirs[str(clients)]["per_s"], 3)
        if theirs[str(clients)]["per_s"]
        else None
        for clients in LEVELS
    }
    return {
        "headline": {"mutation_ratio_vs_rest": ratios[str(LEVELS[-1])]},
        "details": {
            "mutations": {
                "window_s": window,
                "nofile": nofile,
                "ratio": ratios,
                "api": ours,
                "rest_baseline": theirs,
                "note": "key = concurrent clients; per_s counts jobs whose /run reached RunPod",
            }
        },
    }


def _load(
    generators: LoadGenerators,
    fake: Fake,
    *,
    url: str,
    path: str,
    body: bytes,
    token: str,
    clients: int,
    window: float,
) -> dict[str, Any]:
    runs_before = fake.control.counts().route("run")
    shares = spread(clients, len(generators))
    active = [index for index, share in enumerate(shares) if share]
    for index in active:
        generators.send(
            index,
            "mutate",
            url=url,
            path=path,
            body=body,
            token=token,
            clients=shares[index],
            duration=window,
            kind="rest" if path == "/exports" else "graphql",
        )
    answers = [generators.receive(index, window + 90) for index in active]
    outcome: dict[str, int] = {}
    for answer in answers:
        for key, value in answer["outcome"].items():
            outcome[key] = outcome.get(key, 0) + value
    accepted = outcome.get("ok", 0)
    start = min(answer["start"] for answer in answers)
    end = answered = max(answer["end"] for answer in answers)
    deadline = time.monotonic() + 60
    runs = fake.control.counts().route("run") - runs_before
    while runs < accepted and time.monotonic() < deadline:
        time.sleep(0.02)
        runs = fake.control.counts().route("run") - runs_before
        end = max(end, time.time())
    latencies = [latency for answer in answers for latency in answer["latencies_ms"]]
    submitted = min(accepted, runs)
    return {
        "per_s": rounded(submitted / (end - start)) if end > start else None,
        "answered_per_s": rounded(accepted / (answered - start)) if answered > start else None,
        "p50_ms": rounded(percentile(latencies, 50)),
        "p99_ms": rounded(percentile(latencies, 99)),
        "requests": outcome,
        "runs_seen": runs,
    }
