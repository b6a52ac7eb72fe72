"""How the connector's processes log: one call to set up, one context for per-package fields.

* Timestamps are ISO 8601 in Vietnam time with the offset (``2027-02-05T09:30:01.250+07:00``),
  the time the operator's CLI shows, never a zone-less UTC.
* ``text`` (default) is one readable line per event; ``json`` is one JSON object per line
  (python-json-logger) for log shippers, with ``package_id``, ``document_id`` (the edXML
  DocumentId), ``record_id`` (the local record) and ``stage`` as fields of their own (null
  outside a package's processing).
* ``log_context(...)`` sets those fields for every line logged inside it (contextvars, so
  threads do not mix them up).
* Known third-party deprecation noise (pyHanko importing cryptography's deprecated DSA
  types, printed by every command) is filtered; other warnings still show.

This module configures logging only; it must not decide what is logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from connector.printable import printable
from connector.timeutil import VN_TZ

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CONTEXT_FIELDS = ("package_id", "document_id", "record_id", "stage")
_NOISY_LIBRARIES = ("httpx", "httpcore", "amqp", "kombu", "pyhanko", "signxml")
# (message regex, module regex) of warnings that say nothing to an operator.
_KNOWN_NOISE = (
    (r"DSA is deprecated", r"pyhanko(\.|$)"),
)

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "connector_log_context", default=None
)


def quiet_known_warnings() -> None:
    """Hide third-party deprecation warnings an operator can do nothing about."""
    for message, module in _KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, module=module)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``package_id`` / ``document_id`` / ``record_id`` / ``stage`` to the lines inside."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    merged = dict(_context.get() or {})
    # A DocumentId or record id is what a package or record says about itself: one line,
    # escaped and bounded, so it can never forge a log line.
    merged.update({k: printable(str(v), 200) for k, v in fields.items() if v is not None})
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Stamps each record with the current package context (None where there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _context.get() or {}
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, current.get(name))
        return True


def iso_time(created: float) -> str:
    """ISO 8601 with milliseconds and the +07:00 offset."""
    return dt.datetime.fromtimestamp(created, VN_TZ).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(threadName)s]%(where)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record.created)

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class JsonLineFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "threadName", "process", "message", *CONTEXT_FIELDS],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger",
                           "threadName": "thread"},
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record.created)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.pop("where", None)  # the text format's helper, if a handler shared the record


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLineFormatter()
    if log_format == "text":
        return TextFormatter()
    raise ValueError(f"log format {log_format!r}: one of {', '.join(LOG_FORMATS)}")


def setup_logging(
    level: str = "INFO", log_format: str = "text", stream: TextIO | None = None
) -> None:
    """Configure the root logger of this process (replacing earlier handlers)."""
    quiet_known_warnings()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for noisy in _NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
