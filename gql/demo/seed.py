"""`seed-demo`: a demo project (source clip + working video) and a demo game for one user.

The three videos are one generated clip, stored three times: long enough that an
export shows its progress for several seconds, quick to make. Running it again
reuses what exists and only regenerates missing files.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from clients.storage import ObjectStorage, open_storage
from gql.assets.repository import AssetRepository, game_video_key, raw_clip_key, working_video_key
from gql.config.settings import Settings
from gql.db.database import Database
from gql.demo.media import make_video

DEMO_PROJECT = "Demo project"
DEMO_GAME = "Demo game"
# About 5 s of work per export on two cores, generated in about 3 s.
DEMO_SECONDS = 30.0


async def seed_demo(
    settings: Settings, user_id: str, *, seconds: float = DEMO_SECONDS
) -> dict[str, int]:
    storage = open_storage(settings.storage)
    database = Database(settings.database_url)
    await database.connect()
    try:
        assets = AssetRepository(database)
        slug = "".join(c if c.isalnum() else "-" for c in user_id)[:40]
        source = f"demo_source_{slug}.mp4"
        working = f"demo_working_{slug}.mp4"
        game_video = f"demo_game_{slug}.mp4"
        keys = [raw_clip_key(source), working_video_key(working), game_video_key(game_video)]
        await _ensure_videos(storage, keys, seconds=seconds)

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


async def _ensure_videos(storage: ObjectStorage, keys: list[str], *, seconds: float) -> None:
    missing = [key for key in keys if not await asyncio.to_thread(storage.exists, key)]
    if not missing:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.mp4"
        await asyncio.to_thread(make_video, path, width=640, height=360, seconds=seconds)
        for key in missing:
            await asyncio.to_thread(storage.put_file, key, path)
