"""Which subscriptions share one execution: a stream resumed from a cursor runs on its
own; one whose `since` is left null is a plain live stream and may be shared."""

from __future__ import annotations

import pytest

from gql.subscriptions.operations import shared_operation

JOBS = "subscription ($since: String) { exportJobs(since: $since) { id changeCursor } }"


@pytest.mark.parametrize(
    ("query", "variables", "private"),
    [
        (JOBS, {}, False),
        (JOBS, {"since": None}, False),
        (JOBS, {"since": "Y3Vyc29yOjQy"}, True),
        ('subscription { exportJobs(since: "Y3Vyc29yOjQy") { id } }', {}, True),
        ("subscription { exportJobs(since: null) { id } }", {}, False),
        ("subscription { exportJobs { id } }", {}, False),
    ],
)
def test_only_a_stream_resumed_from_a_cursor_runs_on_its_own(
    query: str, variables: dict[str, object], private: bool
) -> None:
    first = shared_operation("user-1", query, variables, None)
    second = shared_operation("user-1", query, variables, None)
    assert first is not None and second is not None
    assert first.private is private
    assert (first.key == second.key) is not private
