"""Object storage: Cloudflare R2 (any S3-protocol server) or a local folder.

Both backends expose the same small, synchronous interface. boto3 is blocking,
so async callers run these methods in a thread (`asyncio.to_thread`).

Uploads are atomic: an object appears under its key complete or not at all,
so a crashed export never leaves a partial output behind.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class StorageError(Exception):
    """Object storage failed."""


class ObjectNotFound(StorageError):
    """No object is stored under that key."""


class InvalidKey(StorageError):
    """Object keys are relative paths without '..' segments."""


class ObjectStorage(Protocol):
    def put_file(self, key: str, path: Path) -> None: ...

    def get_file(self, key: str, path: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def presigned_url(self, key: str, expires_in: int) -> str:
        """Signed here with the configured keys, without a network call: cheap
        enough to run on the event loop (unlike the transfers)."""
        ...


def content_type(key: str) -> str:
    """The media type an object is served with, from its key's suffix."""
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or ".." in parts or "\\" in key:
        raise InvalidKey(key)
    return key


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    """Where objects live. R2 when `r2_bucket` is set, else `local_dir`."""

    local_dir: Path
    r2_endpoint_url: str | None = None
    r2_bucket: str | None = None
    r2_access_key_id: str | None = None
    r2_secret_access_key: str | None = None
    r2_region: str = "auto"

    @property
    def uses_r2(self) -> bool:
        return bool(self.r2_bucket)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StorageConfig:
        """Read the same variables the API's settings read (for the worker)."""
        env = dict(os.environ if environ is None else environ)
        return cls(
            local_dir=Path(env.get("STORAGE_DIR", "./data/storage")),
            r2_endpoint_url=env.get("R2_ENDPOINT_URL") or None,
            r2_bucket=env.get("R2_BUCKET") or None,
            r2_access_key_id=env.get("R2_ACCESS_KEY_ID") or None,
            r2_secret_access_key=env.get("R2_SECRET_ACCESS_KEY") or None,
            r2_region=env.get("R2_REGION") or "auto",
        )


def open_storage(
    config: StorageConfig, *, signing_key: bytes = b"", base_url: str = ""
) -> ObjectStorage:
    """Build the backend the config names; local URLs need a key and a base URL."""
    if config.uses_r2:
        assert config.r2_bucket is not None
        return S3Storage(
            bucket=config.r2_bucket,
            endpoint_url=config.r2_endpoint_url,
            access_key_id=config.r2_access_key_id,
            secret_access_key=config.r2_secret_access_key,
            region=config.r2_region,
        )
    return LocalStorage(config.local_dir, signing_key=signing_key, base_url=base_url)


class S3Storage:
    """R2 or any S3-protocol server, through boto3."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        region: str = "auto",
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def put_file(self, key: str, path: Path) -> None:
        # S3 PUTs are atomic: readers see the old object or the whole new one.
        # The type is stored with the object, so a presigned URL serves it as such.
        self._client.upload_file(
            str(path), self.bucket, check_key(key), ExtraArgs={"ContentType": content_type(key)}
        )

    def get_file(self, key: str, path: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.download_file(self.bucket, check_key(key), str(path))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                raise ObjectNotFound(key) from None
            raise StorageError(f"download of {key!r} failed") from error

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return False
            raise StorageError(f"lookup of {key!r} failed") from error
        return True

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def presigned_url(self, key: str, expires_in: int) -> str:
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": check_key(key)},
            ExpiresIn=expires_in,
        )


class LocalStorage:
    """A folder on this machine; the API serves it at `/files/{key}` with signed URLs."""

    route_prefix = "/files/"

    def __init__(self, root: Path, *, signing_key: bytes = b"", base_url: str = "") -> None:
        self.root = root.resolve()
        self._signing_key = signing_key
        self._base_url = base_url.rstrip("/")

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path) -> None:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy beside the target, then rename: the rename is atomic.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as tmp, path.open("rb") as source:
                shutil.copyfileobj(source, tmp)
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def get_file(self, key: str, path: Path) -> None:
        source = self.path_of(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, expires_in: int) -> str:
        if not self._signing_key:
            raise StorageError("local storage has no signing key")
        expires = int(time.time()) + expires_in
        query = urlencode({"expires": expires, "signature": self._sign(key, expires)})
        return f"{self._base_url}{self.route_prefix}{quote(check_key(key))}?{query}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        """True when the signature is ours for this key and has not expired."""
        if not self._signing_key or expires < time.time():
            return False
        # Bytes: `compare_digest` raises on non-ASCII text, which a URL can carry.
        return hmac.compare_digest(self._sign(key, expires).encode(), signature.encode())

    def _sign(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()
