"""`seed-demo`: a demo project (source clip + working video) and a demo game for one user.

Running it again reuses what exists and only regenerates missing files.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from clients.storage import ObjectStorage, open_storage
from gql.assets import AssetRepository, game_video_key, raw_clip_key, working_video_key
from gql.db import Database
from gql.demo_media import make_video
from gql.settings import Settings

DEMO_PROJECT = "Demo project"
DEMO_GAME = "Demo game"


async def seed_demo(settings: Settings, user_id: str) -> dict[str, int]:
    storage = open_storage(settings.storage)
    database = Database(settings.database_url)
    await database.connect()
    try:
        assets = AssetRepository(database)
        slug = "".join(c if c.isalnum() else "-" for c in user_id)[:40]
        source = f"demo_source_{slug}.mp4"
        working = f"demo_working_{slug}.mp4"
        game_video = f"demo_game_{slug}.mp4"
        await _ensure_video(storage, raw_clip_key(source), seconds=4.0)
        await _ensure_video(storage, working_video_key(working), seconds=4.0)
        await _ensure_video(storage, game_video_key(game_video), seconds=12.0)

        project_id = await assets.find_project(user_id, DEMO_PROJECT)
        if project_id is None:
            project_id = await assets.create_project(user_id, DEMO_PROJECT, source)
        await assets.add_working_video(project_id, working)
        game_id = await assets.find_game(user_id, DEMO_GAME)
        if game_id is None:
            game_id = await assets.create_game(user_id, DEMO_GAME, game_video)
    finally:
        await database.disconnect()
    return {"projectId": project_id, "gameId": game_id}


async def _ensure_video(storage: ObjectStorage, key: str, *, seconds: float) -> None:
    if await asyncio.to_thread(storage.exists, key):
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.mp4"
        await asyncio.to_thread(make_video, path, width=640, height=360, seconds=seconds)
        await asyncio.to_thread(storage.put_file, key, path)
