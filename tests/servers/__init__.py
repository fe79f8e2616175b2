"""Servers the test-suite runs on loopback: a fake RunPod endpoint and S3."""
