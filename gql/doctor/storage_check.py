"""The storage check: a small object written, read back and deleted, as exports will.

On R2 it is read through a presigned URL with a plain HTTP GET, as browsers
download exports.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import httpx

from clients.storage import ObjectStorage, StorageConfig, open_storage
from gql.config.settings import Settings
from gql.doctor.outcome import Outcome, Status
from gql.startup.os_errors import exception_chain, os_error_cause

PRESIGNED_URL_TTL_S = 60
_ACCESS_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


async def check_storage(settings: Settings) -> Outcome:
    config = settings.storage
    if config.uses_r2:
        return await asyncio.to_thread(_check_bucket, config)
    outcome = await asyncio.to_thread(_check_folder, config)
    if outcome.status is Status.PASS and settings.runpod_endpoint_url:
        return Outcome.warned(
            f"{outcome.detail}; but RunPod is remote: its workers write their outputs "
            "here only if they share this folder (set R2_* otherwise)"
        )
    return outcome


def _check_bucket(config: StorageConfig) -> Outcome:
    where = f"R2 bucket {config.r2_bucket!r} at {config.r2_endpoint_url}"
    storage = open_storage(config)
    key, content = _probe()
    try:
        _put(storage, key, content)
    except Exception as error:
        return Outcome.failed(f"{where}: cannot write: {_s3_cause(error)}")
    problem = _read_through_presigned_url(storage, key, content)
    try:
        storage.delete(key)
    except Exception as error:
        problem = problem or f"cannot delete: {_s3_cause(error)}"
    if problem:
        return Outcome.failed(f"{where}: {problem}")
    return Outcome.passed(f"{where}: object written, read through a presigned URL, deleted")


def _check_folder(config: StorageConfig) -> Outcome:
    where = f"local folder {config.local_dir.resolve()}"
    storage = open_storage(config)
    key, content = _probe()
    try:
        _put(storage, key, content)
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "copy"
            storage.get_file(key, copy)
            same = copy.read_bytes() == content
        storage.delete(key)
    except OSError as error:
        return Outcome.failed(f"{where} is not writable: {os_error_cause(error) or error}")
    if not same:
        return Outcome.failed(f"{where}: an object read back differs from what was written")
    return Outcome.passed(f"{where}: object written, read back, deleted")


def _probe() -> tuple[str, bytes]:
    # At the top level, so that no folder is left behind in local storage.
    key = f"doctor-probe-{uuid.uuid4().hex}.txt"
    return key, f"export-gql doctor {key}\n".encode()


def _put(storage: ObjectStorage, key: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.txt"
        path.write_bytes(content)
        storage.put_file(key, path)


def _read_through_presigned_url(storage: ObjectStorage, key: str, content: bytes) -> str | None:
    """What went wrong reading the object as a browser would; None when nothing did."""
    url = storage.presigned_url(key, PRESIGNED_URL_TTL_S)
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError as error:
        return f"cannot GET the presigned URL: {os_error_cause(error) or error}"
    if response.status_code != httpx.codes.OK:
        return f"the presigned URL answered HTTP {response.status_code}"
    if response.content != content:
        return "the presigned URL returned other content than was written"
    return None


def _s3_cause(error: Exception) -> str:
    from botocore.exceptions import ClientError

    # boto3's upload wraps the ClientError that says what S3 answered.
    chain = exception_chain(error)
    client_error = next((link for link in chain if isinstance(link, ClientError)), None)
    if client_error is None:
        return os_error_cause(error) or str(error)
    code = client_error.response.get("Error", {}).get("Code", "")
    if code == "NoSuchBucket":
        return "the bucket does not exist"
    if code in _ACCESS_DENIED:
        return f"access denied ({code}): check R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
    return str(client_error)
