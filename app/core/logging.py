"""Structured logs: one JSON object per line, with whatever fields the caller passes in `extra` and those of
the request or task being served (request id, job id, account id), never a key, a secret or a URL's token."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came from `extra=` and is logged as a field.
_STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "log_context",
}


# Customers' media URLs carry presigned tokens in their query strings (and fragments): logs keep the scheme,
# host and path, never the rest. Backslashes stay out of the match so JSON escapes survive.
_URL_SECRETS = re.compile(r"""(?i)\b(https?://)([^\s?#"'<>\\]*)[?#][^\s"'<>\\]*""")
_URL_USERINFO = re.compile(r"""(?i)\b(https?://)[^\s/@"'<>\\]*@""")
# An API key (`rdb_<prefix>_<secret>`: the prefix stays, it names the key without opening it), a webhook
# signing secret and a bearer token, wherever they turn up (an exception's text, a header dump).
_KEY_SECRET = re.compile(r"\b(rdb_[0-9a-f]+_)[A-Za-z0-9_-]+")
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"'\\]+")
REDACTED = "[redacted]"


def redact_urls(text: str) -> str:
    """`text` with every URL's query string, fragment and credentials replaced by a marker."""
    text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    return _URL_SECRETS.sub(rf"\1\2?{REDACTED}", text)


def redact(text: str) -> str:
    """`text` without URL tokens, API keys, webhook secrets or bearer tokens."""
    text = _KEY_SECRET.sub(rf"\1{REDACTED}", redact_urls(text))
    text = _WEBHOOK_SECRET.sub(f"whsec_{REDACTED}", text)
    return _BEARER.sub(rf"\1{REDACTED}", text)


# The fields of the request or task being served. A dict, mutated in place by `bind_log_fields`, so what a
# dependency learns (the account) reaches the request's later lines even from a copied context.
_context: ContextVar[dict[str, str] | None] = ContextVar("log_fields", default=None)


@contextmanager
def log_fields(**fields: str) -> Iterator[None]:
    """Every log record created inside the block carries `fields` (and those of an enclosing block)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_fields(**fields: str) -> None:
    """Add `fields` to the enclosing `log_fields` block (nothing outside one)."""
    current = _context.get()
    if current is not None:
        current.update(fields)


def _install_context_fields() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_log_fields", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        # One attribute, not one per field: `extra` may name the same field (a task logs its `job_id`), and
        # the logging module refuses an `extra` key the record already has.
        record.log_context = dict(_context.get() or {})
        return record

    factory.adds_log_fields = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            # The request's or task's fields; a field given in `extra` wins.
            **getattr(record, "log_context", {}),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _install_context_fields()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
