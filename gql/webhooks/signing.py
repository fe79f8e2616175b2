"""Standard Webhooks signatures (`webhook-signature: v1,<base64 HMAC-SHA256>`), one
per secret: during a rotation both the new and the old secret sign."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


class Signer:
    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = [Webhook(secret) for secret in secrets]

    def headers(self, webhook_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
        """The Standard Webhooks headers of one attempt at sending `body`."""
        moment = (at or datetime.now(UTC)).replace(microsecond=0)
        signatures = " ".join(key.sign(webhook_id, moment, body) for key in self._keys)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signatures,
            "content-type": "application/json",
        }
