"""A job's message follows its status; client mistakes log at INFO, faults at ERROR."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError

from gql.graphql_schema import build_schema
from tests.servers.runpod_fake import RunningRunPodServer
from tests.support.app_server import RunningApp
from tests.support.assets import SeededAssets
from tests.support.exports import job_state, runpod_id_of, start_overlay, wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.queries import CANCEL


async def test_the_message_follows_the_status(
    client: GraphQLHTTP, assets: SeededAssets, runpod: RunningRunPodServer
) -> None:
    job_id = await start_overlay(client, assets.project_id)
    runpod_id = await runpod_id_of(runpod, job_id)

    queued = await wait_for_status(client, job_id, "QUEUED")
    runpod.control.progress(runpod_id, 10, "Rendering")
    processing = await wait_for_status(client, job_id, "PROCESSING")
    await client.execute(CANCEL, {"id": job_id})
    cancelled = await job_state(client, job_id)

    assert queued["message"] == "Queued, waiting for a worker"
    assert processing["message"] == "Rendering"
    assert (cancelled["status"], cancelled["message"]) == ("CANCELLED", "Cancelled")


@pytest.mark.parametrize(
    "document",
    [
        "{ exportJob(id: 1) { noSuchField } }",  # validation
        "{ exportJobs(first: 1000) { edges { cursor } } }",  # a public error from a resolver
        "{ exportJob(",  # syntax
    ],
)
async def test_client_errors_log_one_info_line_without_traceback(
    api: RunningApp, client: GraphQLHTTP, caplog: pytest.LogCaptureFixture, document: str
) -> None:
    caplog.set_level(logging.INFO)

    response = await client.post(document)

    assert response.json()["errors"]
    (record,) = [r for r in caplog.records if r.name == "gql.client_errors"]
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_server_faults_log_at_error_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        raise RuntimeError("the database went away")
    except RuntimeError as fault:
        error = GraphQLError("the database went away", original_error=fault)

    build_schema().process_errors([error])

    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
