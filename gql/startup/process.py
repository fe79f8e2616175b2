"""Process-level tuning for a server holding many long-lived connections."""

from __future__ import annotations

import gc
from typing import Any

from gql.config.settings import Settings

# Each websocket keeps ~200 tracked objects alive for hours; with Python's
# default thresholds, full collections rescan all of them often and stall the
# event loop (about 1 s at 10 000 connections). Collect young objects in larger
# batches and the oldest generation ten times less often.
GC_THRESHOLDS = (10_000, 10, 100)


def tune_garbage_collector() -> None:
    """Call once the application is built, before serving."""
    # Modules, the schema and settings live as long as the process: never rescan them.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the API, one process or several."""
    return {
        "host": settings.host,
        "port": settings.port,
        # Logging is configured by the app (plain or JSON lines), not by uvicorn.
        "log_config": None,
        "ws_max_size": 1 << 20,
        "ws_ping_interval": settings.ws_ping_interval_s,
        "ws_ping_timeout": settings.ws_ping_timeout_s,
        "ws_per_message_deflate": settings.ws_per_message_deflate,
    }
