"""What the PDF-signature libraries log about a hostile input, made safe to write.

pyHanko logs a warning, with the exception's traceback, when a signer's certificate does not
validate, quoting the certificate's subject — text whoever made the certificate chose (line
breaks that would forge log lines, bidi controls). :func:`install` puts a filter on the
libraries' loggers that turns such a record into one escaped line without the traceback (the
connector reports the same failure itself, with its reason code). This module only filters
log records; it must not change what the libraries decide.
"""

from __future__ import annotations

import logging

from connector.printable import printable

LIBRARIES = ("pyhanko", "pyhanko_certvalidator")
MAX_LINE = 1000


class OneEscapedLine(logging.Filter):
    """Formats the record now, escaped and bounded, and drops its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        record.msg, record.args = printable(text, MAX_LINE), ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_FILTER = OneEscapedLine()


def install() -> None:
    """Filter every logger of the libraries created so far (call after importing them)."""
    names = [n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in LIBRARIES]
    for name in (*LIBRARIES, *names):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
