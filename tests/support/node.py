"""The web/ folder's Node packages, which the JavaScript client and browser tests use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[2] / "web"


def require_node_modules() -> None:
    """Skip when Node or `web/node_modules` is missing (`scripts/test` installs them)."""
    if shutil.which("node") is None:
        pytest.skip("Node is not installed")
    if not (WEB_DIR / "node_modules" / ".package-lock.json").exists():
        pytest.skip("web/node_modules is missing: run 'npm ci --prefix web'")
