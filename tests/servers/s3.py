"""moto's S3 server on 127.0.0.1, standing in for Cloudflare R2 in tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Self

import boto3
from moto.server import ThreadedMotoServer

from clients.storage import StorageConfig
from tests.support.lifecycle import Service

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"


class MotoS3Server(Service):
    """An S3-protocol server on a free port; `new_bucket` makes an empty bucket."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> Self:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> S3Client:
        """A boto3 client of this server, to look into buckets."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def new_bucket(self, local_dir: Path, name: str | None = None) -> StorageConfig:
        """Create a bucket (a fresh random name by default) and the config that uses it;
        `local_dir` only fills the config's required field, R2 settings take precedence."""
        bucket = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return StorageConfig(
            local_dir=local_dir,
            r2_endpoint_url=self.endpoint_url,
            r2_bucket=bucket,
            r2_access_key_id=ACCESS_KEY_ID,
            r2_secret_access_key=SECRET_ACCESS_KEY,
            r2_region=REGION,
        )
