"""Structured logs: a fixed message plus the record's `extra` fields.

`text` (the default) appends them as key=value; `json` (`LOG_FORMAT=json`) writes
one JSON object per line, with the fields as keys (a job's id under `job`), for
log pipelines.
"""

from __future__ import annotations

import logging
from typing import Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

# uvicorn adds a copy of each message with terminal colours.
_NOT_FIELDS = {"message", "asctime", "color_message", "taskName"}
_STANDARD = set(vars(logging.makeLogRecord({}))) | _NOT_FIELDS


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        return line


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, *_NOT_FIELDS],
        json_default=str,
    )


def configure_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per RunPod poll would drown everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
