"""The execution policy each /run carries: a timeout from the kind and the input's length."""

from __future__ import annotations

import pytest

from gql.jobs.models import ExportKind
from gql.tracking.policy import ExecutionPolicy
from tests.support.job_models import job

POLICY = ExecutionPolicy(
    base_s=60, per_input_second_s=4, floor_s=90, ceiling_s=1800, job_ttl_s=86_400
)


@pytest.mark.parametrize(
    ("kind", "input_seconds", "timeout_s"),
    [
        (ExportKind.FRAMING, 30.0, 60 + 4 * 30),
        (ExportKind.OVERLAY, 30.0, 60 + 4 * 30),
        (ExportKind.ANNOTATE, 30.0, 60 + 4 * 1.5 * 30),  # cut, captioned, joined
        (ExportKind.OVERLAY, 2.0, 90),  # the floor
        (ExportKind.FRAMING, 3600.0, 1800),  # the ceiling
        (ExportKind.OVERLAY, None, 1800),  # length unknown: the ceiling
    ],
)
def test_the_timeout_grows_with_the_input_between_floor_and_ceiling(
    kind: ExportKind, input_seconds: float | None, timeout_s: float
) -> None:
    assert POLICY.timeout_s(kind, input_seconds) == timeout_s


def test_the_policy_is_in_milliseconds_and_its_ttl_leaves_room_for_a_whole_run() -> None:
    short = job(kind=ExportKind.FRAMING).evolve(input_seconds=30.0)
    assert POLICY.for_job(short) == {"executionTimeout": 180_000, "ttl": 86_400_000}
    brief_ttl = ExecutionPolicy(
        base_s=60, per_input_second_s=4, floor_s=90, ceiling_s=1800, job_ttl_s=60
    )
    # RunPod counts the TTL from submission: it must outlast the run after a wait.
    assert brief_ttl.for_job(short)["ttl"] == (180 + 600) * 1000
