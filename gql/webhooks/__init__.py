"""Outbound webhooks: every export's changes, signed (Standard Webhooks), pushed to
the operator's backend from a transactional outbox, retried, never lost."""
