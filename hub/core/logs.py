"""The hub's logs: one JSON object a line (production) or plain text (development).

`HUB_LOG_FORMAT=json|text` chooses (default: json when `HUB_ENVIRONMENT=production`). The
configuration (`logging_config`) covers the hub's loggers and uvicorn's alike, and is handed
to `uvicorn.run`, so every worker process logs the same way.

A JSON line carries `ts` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`,
`request_id` when the record was made while serving a request (`RequestIdMiddleware` sets
`REQUEST_ID`; background work has none, and names its job or payment in its own fields),
and any structured field the call site passed with `extra=`.

Personal data: call sites log pseudonyms (`Gateway.pseudonym`), never personal IDs. Two
nets behind that policy, in both formats:

- a record's exception is written as its type and its stack frames only (`exc_type`,
  `stack`): an exception's message may quote the person asked about or upstream's answer;
- any 12-digit run (the shape of a personal ID) in the message, the fields or the stack is
  replaced by `[redacted]`. Hex identifiers of 16 characters or more (request ids,
  pseudonyms, job and payment ids) are left whole, so a digit run inside one is not cut.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Literal

LogFormat = Literal["json", "text"]

#: The id of the request being served, set by `RequestIdMiddleware` for the request's time.
REQUEST_ID: ContextVar[str | None] = ContextVar("hub_request_id", default=None)

REDACTED = "[redacted]"
_PERSONAL_ID = re.compile(
    r"(?P<keep>(?<![0-9A-Za-z])[0-9a-f]{16,}(?![0-9A-Za-z]))|(?<!\d)\d{12}(?!\d)"
)

#: LogRecord attributes that are not fields a call site passed (`color_message`: uvicorn's).
_RECORD_ATTRIBUTES = frozenset(
    [
        *logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "taskName",
        "request_id",
        "color_message",
    ]
)


def _keep_or_redact(match: re.Match[str]) -> str:
    return match[0] if match["keep"] else REDACTED


def redact(text: str) -> str:
    """Replace every 12-digit run (a personal ID's shape) by `[redacted]`: a net under the
    policy of never logging personal data, not the policy itself."""
    return _PERSONAL_ID.sub(_keep_or_redact, text)


class RequestIdFilter(logging.Filter):
    """Note on each record the request being served when it was made (none outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def _exception(
    exc_info: tuple[type[BaseException] | None, BaseException | None, TracebackType | None],
) -> tuple[str, str] | None:
    """An exception's type and its frames, with those of its causes: never a message."""
    exc_type, exc, tb = exc_info
    if exc_type is None:
        return None
    stack = "".join(traceback.format_tb(tb)).rstrip()
    seen = {id(exc)}
    cause = None if exc is None else _cause_of(exc)
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        frames = "".join(traceback.format_tb(cause.__traceback__)).rstrip()
        stack += f"\nfrom {type(cause).__name__}:\n{frames}"
        cause = _cause_of(cause)
    return exc_type.__name__, redact(stack)


def _cause_of(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, request_id, the call site's
    `extra=` fields, and for an exception its type and frames (never its message)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = redact(str(request_id))
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            found = _exception(record.exc_info)
            if found is not None:
                line["exc_type"], line["stack"] = found
        if record.stack_info:
            line["stack_info"] = redact(record.stack_info)
        return json.dumps(line, default=lambda value: redact(str(value)))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message` for people reading a terminal, with the same nets."""

    def format(self, record: logging.LogRecord) -> str:
        text = (
            f"{self.formatTime(record)} {record.levelname} {record.name} "
            f"{redact(record.getMessage())}"
        )
        if record.exc_info:
            found = _exception(record.exc_info)
            if found is not None:
                text += f"\n{found[0]} (message not logged)\n{found[1]}"
        if record.stack_info:
            text += "\n" + redact(record.stack_info)
        return text


FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


def stream_handler(log_format: LogFormat = "text") -> logging.Handler:
    """The hub's handler: standard error, in the format chosen, with the request id filter.
    Python's warnings go through logging too, so that nothing else reaches the output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    handler.addFilter(RequestIdFilter())
    logging.captureWarnings(True)
    return handler


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the hub's loggers and uvicorn's, one handler for
    all; also what `uvicorn.run(log_config=...)` takes, applied in every worker process."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):  # uvicorn's `trace`, or a name logging does not know
        number = 5 if level.lower() == "trace" else logging.INFO
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"hub": {"()": "hub.core.logs.stream_handler", "log_format": log_format}},
        "root": {"level": number, "handlers": ["hub"]},
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
            },
            "alembic.runtime.plugins": {"level": logging.WARNING},  # a line per plugin loaded
        },
    }
