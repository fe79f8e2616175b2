"""What operators see: Prometheus metrics, JSON log lines and the health report."""

from __future__ import annotations

import json
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.api_process import StartServer
from tests.support.app_server import RunningApp
from tests.support.assets import SeededAssets, seed_assets
from tests.support.exports import runpod_id_of, runs_for, start_overlay
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.queries import WATCH_JOB
from tests.support.waiting import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(api: RunningApp) -> Samples:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{api.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_a_jobs_requests_transitions_and_pushes(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    before = await scrape(api)
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)
    socket = await GraphQLWebSocket.connect(api.ws_url)
    stream = socket.subscribe(WATCH_JOB, {"id": job_id})
    await anext(stream)
    during = await scrape(api)
    runpod.control.progress(runpod_id, 50)
    assert (await anext(stream))["exportJob"]["progress"] == 50
    runpod.control.complete(runpod_id)
    await collect(stream)
    await socket.close()
    after = await scrape(api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(during, "export_gql_subscriptions") == 1
    assert value(during, "export_gql_subscription_groups") == 1
    assert value(during, "export_gql_jobs_followed") == 1
    assert value(during, "export_gql_leases_held") == 1
    assert value(during, "export_gql_feed_connected") == 1
    assert grew("export_gql_job_transitions_total", kind="overlay", status="complete") == 1
    assert grew("export_gql_runpod_requests_total", route="run", outcome="ok") == 1
    assert grew("export_gql_runpod_requests_total", route="status", outcome="ok") >= 2
    assert grew("export_gql_runpod_request_seconds_count", route="status") >= 2
    # The processing and complete changes, each pushed to the subscriber.
    assert grew("export_gql_push_latency_seconds_count") == 2


async def test_health_reports_the_feed_and_the_leases(
    api: RunningApp, client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    await start_overlay(client, assets.project_id)

    async with httpx.AsyncClient() as http:
        checks = (await http.get(f"{api.url}/healthz")).json()["checks"]

    assert checks["feed"]["ok"] is True
    on_sqlite = api.settings.database_url.startswith("sqlite")
    assert checks["feed"]["kind"] == ("local" if on_sqlite else "postgresql")
    leases = checks["leases"]
    assert (leases["ok"], leases["leases_held"], leases["processes"]) == (True, 1, 1)


async def test_json_logs_carry_the_job_id(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server(LOG_FORMAT="json")
    assets = await seed_assets(server.settings, "local")
    client = GraphQLHTTP(server.graphql_url)
    job_id = await start_overlay(client, assets.project_id)
    await client.aclose()
    await eventually(lambda: runs_for(control, job_id))
    server.stop()

    lines: list[dict[str, Any]] = [json.loads(line) for line in server.log().splitlines()]
    created = [line for line in lines if line.get("action") == "create"]
    assert [(line["level"], line["message"], line["job"]) for line in created] == [
        ("INFO", "job created", job_id)
    ]
    assert {"time", "level", "logger", "message"} <= set(created[0])
