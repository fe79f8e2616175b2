"""The retry schedule: exponential with jitter over about a day, `Retry-After` first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gql.config.settings import Settings
from gql.webhooks.retry import RetryPolicy, retry_after_seconds
from gql.webhooks.setup import retry_policy

POLICY = RetryPolicy(base_s=5, max_s=3600, max_attempts=6)


def test_the_default_schedule_spans_about_a_day() -> None:
    schedule = retry_policy(Settings.model_validate({})).schedule()
    assert schedule[:3] == [5, 10, 20]
    assert 20 * 3600 <= sum(schedule) <= 28 * 3600


def test_delays_double_up_to_the_cap_within_a_quarter_either_way() -> None:
    for failures, nominal in enumerate([5, 10, 20, 40, 80], start=1):
        assert POLICY.delay(failures, rand=lambda: 0.0) == nominal * 0.75
        assert POLICY.delay(failures, rand=lambda: 1.0) == nominal * 1.25
    assert RetryPolicy(base_s=5, max_s=30, max_attempts=99).nominal(40) == 30


def test_the_last_attempt_gives_up() -> None:
    assert POLICY.delay(5) is not None
    assert POLICY.delay(6) is None


def test_retry_after_replaces_the_backoff_within_the_cap() -> None:
    assert POLICY.delay(1, retry_after_s=120) == 120
    assert POLICY.delay(1, retry_after_s=10**9) == 3600
    assert POLICY.delay(1, retry_after_s=-5) == 0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(minutes=2), usegmt=True)
    assert retry_after_seconds(header, now) == 120
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
