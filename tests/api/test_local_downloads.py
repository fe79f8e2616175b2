"""Local storage is served only through signed, unexpired URLs."""

from __future__ import annotations

import httpx

from clients.storage import LocalStorage
from tests.support.app_server import RunningApp
from tests.support.assets import SeededAssets


def signed_url(api: RunningApp, key: str, expires_in: int = 60) -> str:
    storage = LocalStorage(
        api.settings.storage.local_dir,
        signing_key=api.settings.local_signing_key(),
        base_url=api.url,
    )
    return storage.presigned_url(key, expires_in)


async def test_signed_url_downloads_the_object(api: RunningApp, assets: SeededAssets) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(signed_url(api, assets.working_key))
    assert response.status_code == 200
    assert response.content == f"video bytes of {assets.working_key}".encode()
    assert response.headers["content-type"] == "video/mp4"


async def test_tampered_expired_or_unsigned_urls_are_refused(
    api: RunningApp, assets: SeededAssets
) -> None:
    url = signed_url(api, assets.working_key)
    other_key = signed_url(api, assets.working_key).replace(assets.working_key, assets.source_key)
    async with httpx.AsyncClient() as http:
        forged = await http.get(url[:-4] + "0000")
        not_ascii = await http.get(url[:-4] + "éééé")
        moved = await http.get(other_key)
        expired = await http.get(signed_url(api, assets.working_key, expires_in=-1))
        unsigned = await http.get(f"{api.url}/files/{assets.working_key}")
        escape = await http.get(
            f"{api.url}/files/..%2F..%2Fetc%2Fpasswd?expires=9999999999&signature=x"
        )
    assert forged.status_code == 403
    assert not_ascii.status_code == 403
    assert moved.status_code == 403
    assert expired.status_code == 403
    assert unsigned.status_code == 422
    assert escape.status_code in (403, 404)
