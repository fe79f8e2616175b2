"""Validation limits and error masking, as schema extensions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from gql.schema.errors import is_public


def limit_extensions(
    *, max_depth: int, max_aliases: int, max_tokens: int
) -> list[Callable[[], SchemaExtension]]:
    """Factories, so that each operation gets extension instances of its own."""
    return [
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(QueryDepthLimiter, max_depth=max_depth),
        partial(MaxAliasesLimiter, max_alias_count=max_aliases),
        # Unexpected errors reach the logs in full and the client as "Unexpected error.".
        partial(MaskErrors, should_mask_error=lambda error: not is_public(error)),
    ]
