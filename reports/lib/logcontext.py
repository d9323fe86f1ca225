"""Request ids on log records, and a one-line JSON log format. Django-free.

A request id is set per request (reports.middleware.RequestIdMiddleware) and per task (from the
message header that the enqueueing request put there, hotline/celery.py), in a context variable,
so every record logged while handling it carries `request_id` — with either formatter.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("hotline_request_id", default="")

# What we accept from a client or proxy: short, and nothing a log viewer could mistake for markup or
# a new line. Anything else is replaced by an id of our own.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def sane_request_id(candidate: str | None) -> str:
    """`candidate` if it is a plausible id (8-64 letters, digits, `.`, `_`, `:`, `-`), else a new one."""
    if candidate and _SANE_ID.match(candidate):
        return candidate
    return new_request_id()


def new_request_id() -> str:
    return secrets.token_hex(16)


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "") on every record, for both formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            # django.request logs a failed response after the middleware has returned (and reset the
            # context), but passes the request along: take the id from there.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", "") or request_id_var.get()
        return True


# LogRecord's own attributes: everything else on a record came from `extra=` and is logged as a field.
# Except `request` (Django's, whose text form holds the query string) and `server_time` (runserver's).
_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName", "request", "server_time"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, the
    fields passed with `extra=`, and the formatted exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "") or getattr(getattr(record, "request", None), "request_id", "")
        request_id = request_id or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
