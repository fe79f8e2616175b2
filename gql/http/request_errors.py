"""Requests `/graphql` refuses, answered in the media type the client negotiated.

A *request error* (the GraphQL-over-HTTP specification's term) is a request that
never reached execution: a body that is no JSON, a document that does not parse
or validate, variables that do not coerce. A client preferring
`application/graphql-response+json` gets those as a 400 whose body has no `data`
entry, so it can tell a broken request from a field error; an
`application/json` client keeps today's answers (a 200 with `"data": null` for
the GraphQL errors, a plain-text 400 for the rest).
"""

from __future__ import annotations

import json

from cross_web import HTTPException
from starlette.responses import PlainTextResponse, Response
from strawberry.types import ExecutionResult

from gql.http.media_types import GRAPHQL_RESPONSE_JSON

NOT_ACCEPTABLE = (
    "Not acceptable: /graphql answers with application/graphql-response+json, "
    "application/json, text/event-stream or multipart/mixed."
)

MUTATION_OVER_GET = "Mutations are sent with POST, not GET."


class MethodNotAllowed(HTTPException):
    """A mutation sent with GET: it must be a POST."""

    allow = "POST"

    def __init__(self, reason: str) -> None:
        super().__init__(405, reason)


def is_request_error(result: ExecutionResult) -> bool:
    """Execution never began: no data, and no error belongs to a field (has a path).
    A field error that nulls the whole `data` keeps its path, and its 200."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


def error_response(error: HTTPException, media_type: str | None) -> Response:
    headers = {"Allow": error.allow} if isinstance(error, MethodNotAllowed) else None
    if media_type != GRAPHQL_RESPONSE_JSON:
        return PlainTextResponse(error.reason, status_code=error.status_code, headers=headers)
    body = json.dumps({"errors": [{"message": error.reason}]}, separators=(",", ":"))
    return Response(
        body, status_code=error.status_code, media_type=GRAPHQL_RESPONSE_JSON, headers=headers
    )
