"""`export-gql` as a real process that sees only the settings a test gives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gql.config.settings import Settings


def isolated_environ() -> dict[str, str]:
    """This process's environment without the variables Settings reads, so settings
    on the machine never leak into a test's command."""
    names = {name.upper() for name in Settings.model_fields}
    return {key: value for key, value in os.environ.items() if key.upper() not in names}


def run_export_gql(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; `cwd` keeps a stray `.env` file out of it."""
    return subprocess.run(
        [sys.executable, "-m", "gql.cli", *args],
        env={**isolated_environ(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
