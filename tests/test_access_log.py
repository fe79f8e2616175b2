"""The access log of `export-gql serve`: no credential in it, and no routine machine traffic."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from gql.observability.logs import AccessLogFilter
from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_models import WebhookDelivery
from tests.support.api_process import StartServer
from tests.support.assets import seed_assets
from tests.support.exports import runs_for, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.waiting import eventually


def access_line(target: str, status: int) -> str | None:
    """The line uvicorn would log for a request, after the filter; None if left out."""
    client, method, version = "127.0.0.1:5000", "POST", "1.1"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        0,
        '%s - "%s %s HTTP/%s" %d',
        (client, method, target, version, status),
        None,
    )
    return record.getMessage() if AccessLogFilter().filter(record) else None


@pytest.mark.parametrize(
    ("target", "status", "logged"),
    [
        ("/webhooks/runpod?job=j1&token=s3cret", 200, None),
        (
            "/webhooks/runpod?job=j1&token=s3cret",
            401,
            '127.0.0.1:5000 - "POST /webhooks/runpod?job=j1&token=[redacted] HTTP/1.1" 401',
        ),
        (
            "/files/out/a.mp4?expires=99&signature=abc123",
            200,
            '127.0.0.1:5000 - "POST /files/out/a.mp4?expires=99&signature=[redacted] HTTP/1.1" 200',
        ),
        ("/healthz", 200, None),
        ("/healthz", 503, '127.0.0.1:5000 - "POST /healthz HTTP/1.1" 503'),
        ("/metrics", 200, None),
        ("/graphql", 200, '127.0.0.1:5000 - "POST /graphql HTTP/1.1" 200'),
        (
            "/graphql?query={a}&tokens=1",
            200,
            '127.0.0.1:5000 - "POST /graphql?query={a}&tokens=1 HTTP/1.1" 200',
        ),
    ],
)
def test_the_filter_masks_credentials_and_drops_successful_machine_traffic(
    target: str, status: int, logged: str | None
) -> None:
    assert access_line(target, status) == logged


async def test_a_served_api_never_logs_a_webhook_token_or_a_download_signature(
    start_server: StartServer, control: RunPodControl
) -> None:
    server = start_server(webhooks=True)
    assets = await seed_assets(server.settings, "local")
    client = GraphQLHTTP(server.graphql_url)
    job_id = await start_overlay(client, assets.project_id)
    (runpod_id,) = await eventually(lambda: runs_for(control, job_id))
    await asyncio.to_thread(control.complete, runpod_id, {"output_key": "outputs/done.mp4"})
    finished = await wait_for_status(client, job_id, "COMPLETE")

    async def delivered() -> list[WebhookDelivery] | None:
        deliveries = await asyncio.to_thread(control.webhook_deliveries)
        return deliveries if deliveries and deliveries[0].status_code is not None else None

    (delivery,) = await eventually(delivered)
    async with httpx.AsyncClient(timeout=10) as http:
        download = await http.get(finished["downloadUrl"])
        forged = await http.post(f"{server.url}/webhooks/runpod?job={job_id}&token=forged-token")
        health = await http.get(f"{server.url}/healthz")
    await client.aclose()
    server.stop()

    log = server.log()
    webhook_token = delivery.url.split("token=", 1)[1]
    signature = finished["downloadUrl"].split("signature=", 1)[1]
    assert (delivery.status_code, download.status_code, forged.status_code) == (200, 404, 401)
    assert health.status_code == 200
    assert webhook_token not in log
    assert signature not in log
    assert "forged-token" not in log
    assert f'"POST /webhooks/runpod?job={job_id}&token=[redacted] HTTP/1.1" 401' in log
    assert '&signature=[redacted] HTTP/1.1" 404' in log
    assert '"GET /healthz' not in log
    assert log.count("POST /webhooks/runpod") == 1
