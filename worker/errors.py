"""Why an export failed. The message (one line) becomes the job's error.

ExportError
├── InvalidParams       bad type or params, times outside the video, empty crop
├── InputNotFound       no object under input_key
├── InputUnreadable     the input is not a video PyAV can decode
└── RenderFailed        decoding or encoding broke mid-way
"""

from __future__ import annotations


class ExportError(Exception):
    """The export failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidParams(ExportError):
    """The export parameters are invalid."""


class InputNotFound(ExportError):
    """The input video does not exist in storage."""


class InputUnreadable(ExportError):
    """The input video could not be read."""


class RenderFailed(ExportError):
    """Rendering the output video failed."""


def one_line(error: BaseException) -> str:
    """The error as a single line for a job's `error` field."""
    text = " ".join(str(error).split())
    if isinstance(error, ExportError):
        return text or "The export failed"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
