"""`serve` serves the panel's committed bundle at `/`; GraphiQL stays at `/graphql`."""

from __future__ import annotations

import httpx

from tests.support.app_server import RunningApp


async def test_the_panel_is_served_at_the_root_and_graphiql_at_graphql(api: RunningApp) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        page = await http.get("/")
        script = await http.get("/panel/panel.js")
        missing = await http.get("/panel/nothing.js")
        graphiql = await http.get("/graphql", headers={"Accept": "text/html"})

    assert page.status_code == 200
    assert '<script type="module" src="/panel/panel.js">' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"
    assert missing.status_code == 404
    assert graphiql.status_code == 200
    assert "graphiql" in graphiql.text.lower()
