"""Which media type answers a request to `/graphql`, from its `Accept` header.

Ranges are weighed as RFC 9110 §12.5.1 says: a media type takes the q-value of
the most specific range that matches it (`application/json` over
`application/*` over `*/*`), q=0 means "not acceptable", and among equals the
range listed first wins. A client that ranks `application/graphql-response+json`
above `application/json` (graphql-http's client, Apollo Client 4, urql) gets it,
with the GraphQL-over-HTTP specification's status codes; a client that asks for
no type, `*/*` or `application/json` keeps getting `application/json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
EVENT_STREAM = "text/event-stream"
MULTIPART_MIXED = "multipart/mixed"

# Offered for a single GraphQL result; the first wins a tie (the legacy type).
JSON_RESULT_TYPES = (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON)
# Everything `/graphql` can answer with (GraphiQL's HTML apart).
GRAPHQL_TYPES = (*JSON_RESULT_TYPES, EVENT_STREAM, MULTIPART_MIXED)


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    position: int

    def specificity(self, media_type: str) -> int | None:
        """2 for an exact match, 1 for `type/*`, 0 for `*/*`; None if it does not match."""
        type_, _, subtype = media_type.partition("/")
        if self.type == "*":
            return 0
        if self.type != type_:
            return None
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == subtype else None


@lru_cache(maxsize=256)  # clients send the same few headers over and over
def parse_accept(header: str) -> tuple[MediaRange, ...]:
    ranges = []
    for position, part in enumerate(header.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        type_, slash, subtype = media.lower().partition("/")
        if not slash or not type_ or not subtype:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(MediaRange(type_, subtype, q, position))
    return tuple(ranges)


def _rank(ranges: Sequence[MediaRange], media_type: str) -> tuple[float, int, int] | None:
    """(q, specificity, -position) of the most specific range matching the type."""
    best: tuple[int, MediaRange] | None = None
    for media_range in ranges:
        specificity = media_range.specificity(media_type)
        if specificity is not None and (best is None or specificity > best[0]):
            best = (specificity, media_range)
    if best is None or best[1].q == 0:
        return None
    specificity, media_range = best
    return (media_range.q, specificity, -media_range.position)


def preferred(accept: str | None, offered: Sequence[str]) -> str | None:
    """The offered type the client prefers; the first offered when it states no
    preference; None when it accepts none of them (a 406)."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = parse_accept(accept)
    chosen: tuple[tuple[float, int, int], str] | None = None
    for media_type in offered:
        rank = _rank(ranges, media_type)
        if rank is not None and (chosen is None or rank > chosen[0]):
            chosen = (rank, media_type)
    return None if chosen is None else chosen[1]


def json_result_type(accept: str | None) -> str | None:
    """`application/graphql-response+json` or `application/json` for a single result."""
    return preferred(accept, JSON_RESULT_TYPES)


def accepts_any(accept: str | None, offered: Sequence[str] = GRAPHQL_TYPES) -> bool:
    return preferred(accept, offered) is not None
