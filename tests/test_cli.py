"""The `export-gql` command."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from gql.cli import main
from tests.support.tokens import JWT_SECRET


def test_token_prints_a_jwt_for_the_user(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
    assert main(["token", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, JWT_SECRET, algorithms=["HS256"])["sub"] == "alice"


def test_token_without_a_secret_explains_why_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    assert main(["token", "alice"]) == 2
    assert "AUTH_JWT_SECRET is not set" in capsys.readouterr().err


def test_seed_demo_prints_ids_and_is_safe_to_run_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["seed-demo", "--user", "alice"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["seed-demo", "--user", "alice"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert set(first) == {"projectId", "gameId"}
    stored = sorted(p.relative_to(tmp_path / "storage").as_posix() for p in tmp_path.rglob("*.mp4"))
    assert stored == [
        "games/demo_game_alice.mp4",
        "raw_clips/demo_source_alice.mp4",
        "working_videos/demo_working_alice.mp4",
    ]
