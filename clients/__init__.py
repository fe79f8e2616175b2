"""Adapters for the services the API talks to: RunPod and object storage."""
