"""The editor's media the exports read and write: projects, working videos and games.

Object keys follow the editor's storage layout: `raw_clips/`, `working_videos/`, `games/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gql.clock import format_time, utcnow
from gql.db.database import Database


def raw_clip_key(filename: str) -> str:
    return f"raw_clips/{filename}"


def working_video_key(filename: str) -> str:
    return f"working_videos/{filename}"


def game_video_key(filename: str) -> str:
    return f"games/{filename}"


@dataclass(frozen=True, kw_only=True)
class Project:
    id: int
    user_id: str
    name: str
    source_filename: str | None
    working_filename: str | None = None
    """Its newest working video, if it has one."""


@dataclass(frozen=True, kw_only=True)
class Game:
    id: int
    user_id: str
    name: str
    video_filename: str | None


class AssetRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def project_for_user(self, project_id: int, user_id: str) -> Project | None:
        row = await self._db.fetch_one("get_user_project", id=project_id, user_id=user_id)
        return None if row is None else _project(row)

    async def game_for_user(self, game_id: int, user_id: str) -> Game | None:
        row = await self._db.fetch_one("get_user_game", id=game_id, user_id=user_id)
        return None if row is None else _game(row)

    async def projects_for_user(self, user_id: str, *, limit: int) -> list[Project]:
        rows = await self._db.fetch_all("list_user_projects", user_id=user_id, limit=limit)
        return [_project(row) for row in rows]

    async def games_for_user(self, user_id: str, *, limit: int) -> list[Game]:
        rows = await self._db.fetch_all("list_user_games", user_id=user_id, limit=limit)
        return [_game(row) for row in rows]

    async def newest_working_video(self, project_id: int) -> str | None:
        """The filename of the project's newest working video, if it has one."""
        row = await self._db.fetch_one("newest_working_video", project_id=project_id)
        return None if row is None else str(row["filename"])

    async def add_working_video(self, project_id: int, filename: str) -> None:
        """Append a version; adding the same filename again is a no-op."""
        await self._db.execute(
            "add_working_video",
            project_id=project_id,
            filename=filename,
            created_at=format_time(utcnow()),
        )

    async def duration_of(self, key: str) -> float | None:
        """How long the video stored under `key` lasts, if known."""
        row = await self._db.fetch_one("media_duration", storage_key=key)
        return None if row is None else float(row["seconds"])

    async def record_duration(self, key: str, seconds: float) -> None:
        await self._db.execute("record_media_duration", storage_key=key, seconds=seconds)

    async def create_project(self, user_id: str, name: str, source_filename: str) -> int:
        row = await self._db.fetch_one(
            "insert_project",
            user_id=user_id,
            name=name,
            source_filename=source_filename,
            created_at=format_time(utcnow()),
        )
        assert row is not None
        return int(row["id"])

    async def create_game(self, user_id: str, name: str, video_filename: str) -> int:
        row = await self._db.fetch_one(
            "insert_game",
            user_id=user_id,
            name=name,
            video_filename=video_filename,
            created_at=format_time(utcnow()),
        )
        assert row is not None
        return int(row["id"])

    async def find_project(self, user_id: str, name: str) -> int | None:
        row = await self._db.fetch_one("find_user_project_by_name", user_id=user_id, name=name)
        return None if row is None else int(row["id"])

    async def find_game(self, user_id: str, name: str) -> int | None:
        row = await self._db.fetch_one("find_user_game_by_name", user_id=user_id, name=name)
        return None if row is None else int(row["id"])


def _project(row: Mapping[str, Any]) -> Project:
    return Project(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        source_filename=row["source_filename"],
        working_filename=row["working_filename"],
    )


def _game(row: Mapping[str, Any]) -> Game:
    return Game(
        id=row["id"], user_id=row["user_id"], name=row["name"], video_filename=row["video_filename"]
    )
