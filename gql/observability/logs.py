"""Structured logs: a fixed message plus the record's `extra` fields.

`text` (the default) appends them as key=value; `json` (`LOG_FORMAT=json`) writes
one JSON object per line, with the fields as keys (a job's id under `job`), for
log pipelines.

uvicorn's access log goes through `AccessLogFilter`: credentials in a URL's query
are masked, and successful machine traffic (RunPod's webhooks, health probes,
metrics scrapes) is left out.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

# uvicorn adds a copy of each message with terminal colours.
_NOT_FIELDS = {"message", "asctime", "color_message", "taskName"}
_STANDARD = set(vars(logging.makeLogRecord({}))) | _NOT_FIELDS


# Query parameters that are credentials: a webhook's token, a download's signature.
_CREDENTIALS = re.compile(r"([?&](?:token|signature)=)[^&]*")
# Machine traffic, one line per job or per few seconds per replica: logged only
# when it fails (its successes are counted in /metrics).
QUIET_WHEN_OK = frozenset({"/webhooks/runpod", "/healthz", "/metrics"})


class AccessLogFilter(logging.Filter):
    """uvicorn's access log without credentials and without routine machine traffic."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's arguments: client, method, path with query, HTTP version, status.
        if not (isinstance(record.args, tuple) and len(record.args) == 5):
            return True
        client, method, target, version, status = record.args
        if not isinstance(target, str):
            return True
        path, has_query, _ = target.partition("?")
        if path in QUIET_WHEN_OK and isinstance(status, int) and status < 400:
            return False
        if has_query:
            redacted = _CREDENTIALS.sub(r"\1[redacted]", target)
            record.args = (client, method, redacted, version, status)
        return True


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
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter())
