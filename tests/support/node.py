"""What the JavaScript client and browser tests need beyond Python: Node with web/'s
packages, and Chromium. Missing, their tests are skipped, except in CI where they fail."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
CHROMIUM = "/usr/bin/chromium"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


def require_node_modules() -> None:
    if shutil.which("node") is None:
        _missing("Node is not installed")
    if not (WEB_DIR / "node_modules" / ".package-lock.json").exists():
        _missing("web/node_modules is missing: run scripts/web install")


def require_chromium() -> str:
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing: apt-get install chromium")
    return CHROMIUM


async def run_node_script(script: str, *args: str, timeout_s: float) -> tuple[int, bytes, bytes]:
    """Runs web/test/`script` under Node to its end: (exit status, stdout, stderr)."""
    require_node_modules()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(WEB_DIR / "test" / script),
        *args,
        cwd=WEB_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, stdout, stderr
