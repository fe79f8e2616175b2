"""Turns away JSON request bodies to `/graphql` that are not a JSON object or array.

strawberry parses a JSON body and then reads it as an object (or a list, for
batches): a bare `null`, number, string or boolean, or bytes that are no text at
all, would fail there with an unexpected exception and a 500. They get the 400
of any unparsable body instead, before strawberry sees them.
"""

from __future__ import annotations

import json

from cross_web import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http.parse_content_type import parse_content_type

from gql.http.media_types import json_result_type
from gql.http.request_errors import error_response

_JSON_WHITESPACE = " \t\n\r"
UNPARSABLE_BODY = HTTPException(400, "Unable to parse request body as JSON")


class JsonBodyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not _object_or_array(body):
            accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
            response = error_response(UNPARSABLE_BODY, json_result_type(accept))
            await response(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)


def _is_json(scope: Scope) -> bool:
    header = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    mime_type, _ = parse_content_type(header)
    return "application/json" in mime_type


def _object_or_array(body: bytes) -> bool:
    """Whether the body can decode to an object or array (its syntax is checked later)."""
    try:
        # How `json.loads` reads bytes: UTF-8, -16 or -32, told apart by the first bytes.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        return False
    return text.lstrip(_JSON_WHITESPACE)[:1] in ("{", "[")


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
