"""The export panel: the browser app built from `web/` into `gql/web/`, served at `/`.

The bundle is committed, so serving it needs no Node; `scripts/web` rebuilds it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUNDLE_DIR = Path(__file__).parents[1] / "web"
# Revalidated on every load (cheap, with ETags): a new release shows at once.
NO_CACHE = {"Cache-Control": "no-cache"}


class _Bundle(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(NO_CACHE)
        return response


async def _index(request: Request) -> FileResponse:
    return FileResponse(BUNDLE_DIR / "index.html", headers=NO_CACHE)


def mount_panel(app: FastAPI) -> None:
    app.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    app.mount("/panel", _Bundle(directory=BUNDLE_DIR), name="panel")
