"""Rows and stored objects the exports read, created straight in the database."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from clients.storage import open_storage
from gql.assets.repository import AssetRepository, game_video_key, raw_clip_key, working_video_key
from gql.config.settings import Settings
from gql.db.database import Database


@dataclass(frozen=True)
class SeededAssets:
    project_id: int
    game_id: int
    source_key: str
    working_key: str
    game_key: str


async def seed_assets(settings: Settings, user_id: str, *, content: bytes = b"") -> SeededAssets:
    suffix = uuid.uuid4().hex[:8]
    source, working, game = (f"{name}_{suffix}.mp4" for name in ("source", "working", "game"))
    storage = open_storage(settings.storage)
    with tempfile.TemporaryDirectory() as folder:
        for key in (raw_clip_key(source), working_video_key(working), game_video_key(game)):
            path = Path(folder) / "object"
            path.write_bytes(content or f"video bytes of {key}".encode())
            await asyncio.to_thread(storage.put_file, key, path)
    database = Database(settings.database_url)
    await database.connect()
    try:
        assets = AssetRepository(database)
        project_id = await assets.create_project(user_id, f"project {suffix}", source)
        await assets.add_working_video(project_id, working)
        game_id = await assets.create_game(user_id, f"game {suffix}", game)
    finally:
        await database.disconnect()
    return SeededAssets(
        project_id=project_id,
        game_id=game_id,
        source_key=raw_clip_key(source),
        working_key=working_video_key(working),
        game_key=game_video_key(game),
    )
