"""Secrets out of the records a web server prints itself: uvicorn's and gunicorn's access and error logs.

>>> ServerLogScrub.install()        # the log pipeline does this; .uninstall() at shutdown   # doctest: +SKIP

Those loggers print through their own handlers to the process's stdout/stderr,
outside the agent's pipeline: the access log line holds the request's query
string (``GET /orders?api_key=... HTTP/1.1``) and the error log the traceback of
an unhandled exception, whose message may hold a secret. This filter scrubs the
record in place (message, arguments, and the traceback text, which it formats
once and stores in ``record.exc_text``, where every ``logging.Formatter`` takes it
from) before any handler sees it, with the rules of the agent's own logs
(``tradeobs_agent.redaction``). It runs on the server's thread, once per access
line (about a microsecond for a path without a secret) and once per error.

Intentional divergence: the server's output changes where it held a secret
(``[REDACTED]``); nothing else in it does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._errors import internal_error
from ..redaction import default_redactor

__all__ = ["SCRUBBED_LOGGERS", "ServerLogScrub"]

SCRUBBED_LOGGERS = ("uvicorn.access", "uvicorn.error", "gunicorn.access", "gunicorn.error")
_formatter = logging.Formatter()


def _scrub_args(args: Any) -> Any:
    text = default_redactor().text
    if isinstance(args, tuple):
        return tuple(text(a) if type(a) is str else a for a in args)
    if isinstance(args, Mapping):  # gunicorn's access log: one dict of atoms
        return {k: text(v) if type(v) is str else v for k, v in args.items()}
    return args


class ServerLogScrub(logging.Filter):
    """A filter on each of :data:`SCRUBBED_LOGGERS` that scrubs records before the server's handlers print them."""

    def __init__(self) -> None:
        super().__init__()
        self.loggers = [logging.getLogger(n) for n in SCRUBBED_LOGGERS]

    def install(self) -> ServerLogScrub:
        for lg in self.loggers:
            for old in [f for f in lg.filters if isinstance(f, ServerLogScrub) and f is not self]:
                lg.removeFilter(old)
            lg.addFilter(self)
        return self

    def uninstall(self) -> None:
        for lg in self.loggers:
            lg.removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            red = default_redactor()
            if type(record.msg) is str:
                record.msg = red.text(record.msg)
            if record.args:
                record.args = _scrub_args(record.args)
            if record.exc_info and not record.exc_text:
                record.exc_text = red.text(_formatter.formatException(record.exc_info))
        except Exception as exc:  # a bug of ours: never into the server's logging call
            internal_error("logs.server_log_scrub", exc)
        return True
