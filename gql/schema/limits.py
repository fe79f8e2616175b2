"""Validation limits, caches and error masking, as schema extensions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
    query_depth_limiter,
)
from strawberry.extensions import max_aliases as alias_limits

from gql.schema.errors import is_public

# Distinct documents a frontend sends are few; the caches are bounded anyway so
# unique query texts cannot grow memory.
DOCUMENT_CACHE_SIZE = 256


def limit_extensions(
    *, max_depth: int, max_aliases: int, max_tokens: int
) -> list[Callable[[], SchemaExtension]]:
    """Factories, so that each operation gets extension instances of its own.

    The depth and alias rules are built once, not per operation, so that the
    validation cache (keyed by document and rules) hits for repeated documents.
    """
    rules: list[type[ASTValidationRule]] = [
        query_depth_limiter.create_validator(max_depth, None, None),
        alias_limits.create_validator(max_aliases),
    ]
    return [
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(ParserCache, maxsize=DOCUMENT_CACHE_SIZE),
        partial(AddValidationRules, rules),
        partial(ValidationCache, maxsize=DOCUMENT_CACHE_SIZE),
        # Unexpected errors reach the logs in full and the client as "Unexpected error.".
        partial(_MaskErrors, should_mask_error=lambda error: not is_public(error)),
    ]


class _MaskErrors(MaskErrors):
    """MaskErrors, minus its check of every subscription result against a runtime
    protocol (tens of microseconds each) when the result has no errors to mask."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)
