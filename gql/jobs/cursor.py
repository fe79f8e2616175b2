"""Change cursors: where a client is in the one sequence of job changes.

A cursor is opaque to clients (base64url of a tagged change number) so its form
may change; `CursorError` says why one cannot be resumed from.
"""

from __future__ import annotations

import base64
import binascii
import re

_TAG = "chg:"
_NUMBER = re.compile(r"[0-9]{1,18}")


class CursorError(Exception):
    """The cursor cannot be resumed from: re-read the list, then subscribe without it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


BAD_CURSOR = "BAD_CURSOR"
UNKNOWN_CURSOR = "UNKNOWN_CURSOR"

_RE_READ = "re-read the list (query exportJobs) and subscribe again without `since`."


def encode_cursor(change_seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_TAG}{change_seq}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    """The change number of a cursor handed out here; CursorError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    number = raw.removeprefix(_TAG)
    if not raw.startswith(_TAG) or not _NUMBER.fullmatch(number):
        raise CursorError(BAD_CURSOR, f"This is not a change cursor: {_RE_READ}")
    return int(number)


def unknown_cursor() -> CursorError:
    """A well-formed cursor past anything this database holds: it came from a
    database since restored or replaced, and what it pointed at is gone."""
    return CursorError(UNKNOWN_CURSOR, f"This change cursor is unknown here: {_RE_READ}")
