"""Signatures a Standard Webhooks receiver verifies, one per secret during a rotation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gql.config.webhook_values import secret_problem
from gql.webhooks.signing import Signer
from tests.support.webhook_receiver import new_secret

BODY = '{"type":"export.created","timestamp":"2026-01-01T00:00:00+00:00","data":{}}'


def test_a_receiver_verifies_the_signature_and_refuses_another_secret() -> None:
    secret = new_secret()
    headers = Signer([secret]).headers("msg_1", BODY)
    assert Webhook(secret).verify(BODY, headers)["type"] == "export.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("created", "deleted"), headers)


def test_both_secrets_sign_during_a_rotation() -> None:
    new, old = new_secret(), new_secret()
    headers = Signer([new, old]).headers("msg_1", BODY)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (new, old):
        Webhook(secret).verify(BODY, headers)


def test_the_signature_covers_id_timestamp_and_body() -> None:
    secret = new_secret()
    at = datetime(2026, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    headers = Signer([secret]).headers("msg_1", BODY, at)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    expected = Webhook(secret).sign("msg_1", at.replace(microsecond=0), BODY)
    assert headers["webhook-signature"] == expected


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", None),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_"),
        ("whsec_not base64!", "must be whsec_ followed by base64"),
        ("whsec_c2hvcnQ=", "must encode 24 to 64 bytes, got 5"),
    ],
)
def test_secret_form(secret: str, problem: str | None) -> None:
    assert secret_problem(secret) == problem
