"""Problems an operator must fix before a command can run."""

from __future__ import annotations


class StartupError(Exception):
    """A configuration or environment problem; its text is shown as is, without a
    traceback, and the command exits with status 2."""
