"""Stored params stay JSON text until read, and leave as the same text."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from gql.cluster.feed import decode_message, job_message
from gql.cluster.pg_feed import MAX_PAYLOAD_BYTES
from gql.jobs.models import ExportJob, StoredParams, params_json
from gql.jobs.repository import row_values
from tests.support.job_models import job as new_job


def framing_params(keyframes: int) -> dict[str, Any]:
    crop = [
        {"time": i, "x": 100 + i, "y": 50, "width": 320, "height": 180} for i in range(keyframes)
    ]
    return {"cropKeyframes": crop, "outputWidth": 640, "outputHeight": 360}


def stored_row(keyframes: int) -> dict[str, Any]:
    return row_values(new_job(params=framing_params(keyframes)))


def test_stored_params_read_as_the_mapping_they_were_stored_from() -> None:
    params = framing_params(3)
    stored = StoredParams(json.dumps(params))
    assert stored == params and params == stored
    assert dict(stored) == params
    assert stored["cropKeyframes"][2]["x"] == 102
    assert len(stored) == 3 and set(stored) == set(params)
    assert stored != {**params, "outputWidth": 1}


def test_a_job_read_back_is_written_again_with_its_params_text_untouched() -> None:
    row = stored_row(5)
    job = ExportJob.from_row(row)
    assert isinstance(job.params, StoredParams)
    assert params_json(job.params) is row["params"]
    assert row_values(job) == row
    assert params_json(framing_params(5)) == row["params"]


def test_a_change_message_carries_small_params_and_only_ids_past_the_limit() -> None:
    small = ExportJob.from_row(stored_row(10))
    received = decode_message(job_message("a", small, max_bytes=MAX_PAYLOAD_BYTES))
    assert received is not None
    job = received.job()
    assert job is not None and job.params == framing_params(10)

    large = replace(small, params=StoredParams(json.dumps(framing_params(300))))
    received = decode_message(job_message("a", large, max_bytes=MAX_PAYLOAD_BYTES))
    assert received is not None and received.row is None
    assert (received.job_id, received.user_id) == (large.id, large.user_id)
