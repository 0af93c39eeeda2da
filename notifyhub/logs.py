"""What every log line carries and how it is written.

Each line names the request (or Celery task) it belongs to: `request_id` is a context variable
the request middleware and Celery's task signals set, and `RequestIdLogFilter` copies it onto
every record. Lines are plain text, or one JSON object per line with NOTIFYHUB_LOG_FORMAT=json.
"""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# The attributes every LogRecord has; anything else on a record came from `extra=` and is
# written as a field of its own in the JSON format.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "request", "server_time"}
)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record: the request's or task's, else `-`."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = request_id.get()
        if value == "-":
            # Django logs a request's error response (django.request, django.security) once the
            # middleware has returned and the context variable is reset; the request it passes
            # along still carries the id the middleware gave it.
            value = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = value
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message, the `extra=` fields
    (ids such as event_id, delivery_id) and, for an unexpected error, its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str | int | float | bool | None):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
