"""With R2 settings, outputs are read from an S3-protocol server and URLs are presigned there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from clients.storage import StorageConfig
from tests.servers.runpod_fake import StartRunPodServer
from tests.support.app_server import StartApi
from tests.support.assets import seed_assets
from tests.support.exports import start_overlay
from tests.support.graphql import GraphQLHTTP, GraphQLWebSocket, collect
from tests.support.queries import WATCH_JOB


async def test_download_url_is_presigned_by_the_s3_server(
    start_api: StartApi,
    start_runpod_server: StartRunPodServer,
    s3_storage_config: StorageConfig,
    tmp_path: Path,
) -> None:
    runpod = start_runpod_server(storage=s3_storage_config)
    runpod.control.set_behaviour("auto", step=0.02)
    r2 = dataclasses.asdict(s3_storage_config)
    api = start_api(
        runpod_endpoint_url=runpod.url,
        r2_endpoint_url=r2["r2_endpoint_url"],
        r2_bucket=r2["r2_bucket"],
        r2_access_key_id=r2["r2_access_key_id"],
        r2_secret_access_key=r2["r2_secret_access_key"],
        r2_region=r2["r2_region"],
    )
    assets = await seed_assets(api.settings, "local", content=b"working video in the bucket")
    client = GraphQLHTTP(api.graphql_url)
    job_id = await start_overlay(client, assets.project_id)

    socket = await GraphQLWebSocket.connect(api.ws_url)
    final = (await collect(socket.subscribe(WATCH_JOB, {"id": job_id})))[-1]["exportJob"]
    await socket.close()
    await client.aclose()

    assert final["status"] == "COMPLETE"
    url = final["downloadUrl"]
    assert url.startswith(str(r2["r2_endpoint_url"]))
    assert "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as http:
        download = await http.get(url)
        assert download.status_code == 200
        assert download.content == b"working video in the bucket"
    assert not (tmp_path / "data" / "storage" / "final_videos").exists()
