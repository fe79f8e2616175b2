"""Subscriptions over websockets: shared executions (hub), protocol handlers, send queues."""
