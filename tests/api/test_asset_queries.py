"""`projects` and `games`: each user sees their own, newest first."""

from __future__ import annotations

from tests.support.app_server import StartApi
from tests.support.assets import seed_assets
from tests.support.graphql import GraphQLHTTP
from tests.support.tokens import JWT_SECRET, token_for

ASSETS = "{ projects { id name } games { id name } }"


async def test_each_user_lists_only_their_own_projects_and_games(start_api: StartApi) -> None:
    api = start_api(auth_jwt_secret=JWT_SECRET)
    first = await seed_assets(api.settings, "alice")
    second = await seed_assets(api.settings, "alice")
    await seed_assets(api.settings, "bob")
    alice = GraphQLHTTP(api.graphql_url, token_for("alice"))

    data = await alice.execute(ASSETS)
    await alice.aclose()

    assert [p["id"] for p in data["projects"]] == [second.project_id, first.project_id]
    assert [g["id"] for g in data["games"]] == [second.game_id, first.game_id]
