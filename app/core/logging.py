"""Structured logs: one JSON object per line, with whatever fields the caller passes in `extra`."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came from `extra=` and is logged as a field.
_STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


# Customers' media URLs carry presigned tokens in their query strings (and fragments): logs keep the scheme,
# host and path, never the rest. Backslashes stay out of the match so JSON escapes survive.
_URL_SECRETS = re.compile(r"""(?i)\b(https?://)([^\s?#"'<>\\]*)[?#][^\s"'<>\\]*""")
_URL_USERINFO = re.compile(r"""(?i)\b(https?://)[^\s/@"'<>\\]*@""")
REDACTED = "[redacted]"


def redact_urls(text: str) -> str:
    """`text` with every URL's query string, fragment and credentials replaced by a marker."""
    text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    return _URL_SECRETS.sub(rf"\1\2?{REDACTED}", text)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_urls(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact_urls(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Imported here: the request id belongs to the API, but the field is harmless in a worker.
    from app.core.request_id import install_log_field

    install_log_field()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
