"""Object storage: the local folder backend, and the S3 backend against moto's server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clients.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    StorageConfig,
    StorageError,
    open_storage,
)

pytest_plugins = ["tests.servers.fixtures"]

SIGNING_KEY = b"test-signing-key"


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage", signing_key=SIGNING_KEY, base_url="http://api.test/")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.mp4"
    path.write_bytes(b"\x00\x01 video bytes \xff")
    return path


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def signature_of(url: str) -> tuple[int, str]:
    query = parse_qs(urlsplit(url).query)
    return int(query["expires"][0]), query["signature"][0]


# --- LocalStorage ---


def test_local_round_trip(local: LocalStorage, source: Path, tmp_path: Path) -> None:
    local.put_file("exports/u1/out.mp4", source)
    copy = tmp_path / "copy.mp4"

    local.get_file("exports/u1/out.mp4", copy)

    assert copy.read_bytes() == source.read_bytes()
    assert local.exists("exports/u1/out.mp4")


def test_local_delete_removes_the_object(local: LocalStorage, source: Path, tmp_path: Path) -> None:
    local.put_file("a/b.mp4", source)

    local.delete("a/b.mp4")
    local.delete("a/b.mp4")  # deleting twice is not an error

    assert not local.exists("a/b.mp4")
    with pytest.raises(ObjectNotFound):
        local.get_file("a/b.mp4", tmp_path / "copy")


def test_local_put_leaves_only_the_object(local: LocalStorage, source: Path) -> None:
    local.put_file("a/b.mp4", source)
    local.put_file("a/b.mp4", source)

    assert files_under(local.root) == ["a/b.mp4"]


def test_local_put_replaces_an_existing_object(
    local: LocalStorage, source: Path, tmp_path: Path
) -> None:
    local.put_file("a/b.mp4", source)
    newer = tmp_path / "newer.mp4"
    newer.write_bytes(b"newer")

    local.put_file("a/b.mp4", newer)

    assert local.path_of("a/b.mp4").read_bytes() == b"newer"


def test_a_failed_local_put_leaves_no_object_and_no_temporary_file(
    local: LocalStorage, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        local.put_file("a/b.mp4", tmp_path / "missing.mp4")

    assert files_under(local.root) == []


def test_local_signed_url_verifies(local: LocalStorage) -> None:
    url = local.presigned_url("exports/my clip.mp4", expires_in=60)

    assert url.startswith("http://api.test/files/exports/my%20clip.mp4?")
    expires, signature = signature_of(url)
    assert local.verify("exports/my clip.mp4", expires, signature)


def test_local_signed_url_is_refused_for_another_key_or_a_changed_signature(
    local: LocalStorage,
) -> None:
    expires, signature = signature_of(local.presigned_url("a.mp4", expires_in=60))

    assert not local.verify("b.mp4", expires, signature)
    assert not local.verify("a.mp4", expires + 1, signature)
    altered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert not local.verify("a.mp4", expires, altered)


def test_local_signed_url_expires(local: LocalStorage) -> None:
    expires, signature = signature_of(local.presigned_url("a.mp4", expires_in=-1))

    assert not local.verify("a.mp4", expires, signature)


def test_local_storage_without_signing_key_signs_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(StorageError):
        storage.presigned_url("a.mp4", expires_in=60)
    assert not storage.verify("a.mp4", 2**40, "0" * 64)


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "", "a\\..\\b"])
def test_keys_that_could_leave_the_folder_are_refused(
    local: LocalStorage, source: Path, key: str
) -> None:
    with pytest.raises(InvalidKey):
        local.put_file(key, source)
    with pytest.raises(InvalidKey):
        local.exists(key)
    with pytest.raises(InvalidKey):
        local.presigned_url(key, expires_in=60)
    assert files_under(local.root.parent) == ["source.mp4"]


def test_open_storage_picks_the_backend_from_the_config(
    tmp_path: Path, s3_storage_config: StorageConfig
) -> None:
    assert isinstance(open_storage(StorageConfig(local_dir=tmp_path)), LocalStorage)
    assert isinstance(open_storage(s3_storage_config), S3Storage)


# --- S3Storage on moto ---


@pytest.fixture
def s3(s3_storage_config: StorageConfig) -> S3Storage:
    storage = open_storage(s3_storage_config)
    assert isinstance(storage, S3Storage)
    return storage


def test_s3_round_trip(s3: S3Storage, source: Path, tmp_path: Path) -> None:
    s3.put_file("exports/u1/out.mp4", source)
    copy = tmp_path / "copy.mp4"

    s3.get_file("exports/u1/out.mp4", copy)

    assert copy.read_bytes() == source.read_bytes()
    assert s3.exists("exports/u1/out.mp4")
    assert not s3.exists("exports/u1/other.mp4")


def test_s3_delete_then_get_raises_object_not_found(
    s3: S3Storage, source: Path, tmp_path: Path
) -> None:
    s3.put_file("a.mp4", source)

    s3.delete("a.mp4")

    assert not s3.exists("a.mp4")
    with pytest.raises(ObjectNotFound):
        s3.get_file("a.mp4", tmp_path / "copy")


def test_s3_buckets_are_fresh_for_each_test(s3: S3Storage) -> None:
    assert not s3.exists("exports/u1/out.mp4")


def test_s3_presigned_url_serves_the_bytes(s3: S3Storage, source: Path) -> None:
    s3.put_file("exports/clip.mp4", source)

    response = httpx.get(s3.presigned_url("exports/clip.mp4", expires_in=60))

    assert response.status_code == 200
    assert response.content == source.read_bytes()


def test_s3_refuses_invalid_keys(s3: S3Storage, source: Path) -> None:
    with pytest.raises(InvalidKey):
        s3.put_file("../escape.mp4", source)
