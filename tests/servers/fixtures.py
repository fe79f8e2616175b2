"""pytest fixtures for the test servers; conftest loads them through `pytest_plugins`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.storage import StorageConfig
from tests.servers.runpod_fake import RunningRunPodServer, StartRunPodServer
from tests.servers.s3 import MotoS3Server
from tests.support.lifecycle import starter


@pytest.fixture
def runpod_server() -> Iterator[RunningRunPodServer]:
    """A fresh fake RunPod endpoint: manual jobs, no API key, no storage."""
    with RunningRunPodServer() as server:
        yield server


@pytest.fixture
def start_runpod_server() -> Iterator[StartRunPodServer]:
    """Start fake endpoints with options (api_key, behaviour, storage); all stop at teardown.

    Accepts the keyword arguments of `RunningRunPodServer`.
    """
    with starter(RunningRunPodServer) as start:
        yield start


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


@pytest.fixture
def s3_storage_config(s3_server: MotoS3Server, tmp_path: Path) -> StorageConfig:
    """R2 settings for a new, empty bucket on the session's S3 server."""
    return s3_server.new_bucket(tmp_path / "unused-local-storage")
