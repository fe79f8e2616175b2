"""Domain errors and their stable codes; the GraphQL `UserError.code` mirrors these.

ExportError     a request the caller can correct; carries one FieldError per problem
JobConflict     the row moved under us (a lost compare-and-set)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    TOO_MANY = "TOO_MANY"
    TOO_LONG = "TOO_LONG"
    INVALID_TIME_RANGE = "INVALID_TIME_RANGE"
    NOT_SORTED = "NOT_SORTED"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    GAME_NOT_FOUND = "GAME_NOT_FOUND"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    NO_SOURCE_CLIP = "NO_SOURCE_CLIP"
    NO_WORKING_VIDEO = "NO_WORKING_VIDEO"
    NO_GAME_VIDEO = "NO_GAME_VIDEO"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    NOT_RETRYABLE = "NOT_RETRYABLE"
    RUNPOD_NOT_CONFIGURED = "RUNPOD_NOT_CONFIGURED"
    TOO_MANY_ACTIVE_EXPORTS = "TOO_MANY_ACTIVE_EXPORTS"
    RATE_LIMITED = "RATE_LIMITED"


@dataclass(frozen=True)
class FieldError:
    code: ErrorCode
    message: str
    field: tuple[str, ...] | None = None
    retry_after_s: int | None = None
    """For RATE_LIMITED: seconds until the request would be accepted."""


class ExportError(Exception):
    """The request cannot be carried out as asked."""

    def __init__(self, *errors: FieldError) -> None:
        self.errors: Sequence[FieldError] = errors
        super().__init__("; ".join(error.message for error in errors) or self.__doc__)

    @classmethod
    def single(
        cls, code: ErrorCode, message: str, field: tuple[str, ...] | None = None
    ) -> ExportError:
        return cls(FieldError(code, message, field))


class JobConflict(Exception):
    """The job changed concurrently; reload it and decide again."""
