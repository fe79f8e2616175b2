"""How many subscription groups and subscribers a running API holds, from its /healthz."""

from __future__ import annotations

import httpx

from tests.support.app_server import RunningApp


async def load(api: RunningApp) -> dict[str, int]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{api.url}/healthz")
    return dict(response.json()["load"])


async def sharing(api: RunningApp, *, groups: int, subscribers: int) -> bool:
    current = await load(api)
    return (current["subscription_groups"], current["subscribers"]) == (groups, subscribers)
