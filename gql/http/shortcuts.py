"""ASGI middleware handing the API's hottest paths straight to their handlers.

They skip FastAPI's own layers (exception handlers, routing, dependencies);
the middleware outside this one (the request size limit, CORS, Starlette's
server-error handler) still applies to them.

- `/graphql` websockets: a subscription's connection lives for hours, and every
  layer it passes through keeps a coroutine frame alive for all that time:
  skipping them saves memory on every idle subscriber.
- `POST /webhooks/runpod`: a burst of completions brings one webhook per job,
  and those layers cost about twice the CPU of the handler itself
  (docs/benchmarks.md). The route stays registered for everything else (a
  `GET` gets its 405 there).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gql.http.runpod_webhook import WEBHOOK_PATH, runpod_webhook


class Shortcuts:
    def __init__(self, app: ASGIApp, *, graphql: ASGIApp, graphql_path: str) -> None:
        self._app = app
        self._graphql = graphql
        self._graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == self._graphql_path:
            await self._graphql(scope, receive, send)
        elif (
            scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST"
        ):
            response = await runpod_webhook(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self._app(scope, receive, send)
