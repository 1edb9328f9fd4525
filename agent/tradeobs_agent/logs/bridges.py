"""Route Loguru and structlog output into the same pipeline (same queue, correlation and redaction).

>>> from loguru import logger
>>> from tradeobs_agent.logs import loguru_sink
>>> logger.add(loguru_sink, serialize=False)                          # doctest: +SKIP
>>> logger.bind(stream="execution").info("order {} filled", "o-1")    # doctest: +SKIP

>>> import structlog
>>> from tradeobs_agent.logs import structlog_processor
>>> structlog.configure(processors=[structlog.processors.add_log_level, structlog_processor])  # doctest: +SKIP

Both run on the caller's thread and only capture, like the stdlib fast path.
Use Loguru without ``enqueue=True``: our queue is already asynchronous, and
Loguru's own queue runs sinks on its thread, where ``correlate()`` ids and the
current span are no longer visible. A ``stream`` key (``bind(stream=...)`` or
an event-dict key) picks the stream; otherwise Loguru records go to
``service`` with the module as logger name, structlog ones likewise.
Records are dropped silently while no pipeline is running.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import MutableMapping
from types import FrameType
from typing import Any

from .._errors import internal_error, warn_once
from . import _capture
from ._capture import capture

__all__ = ["StructlogProcessor", "loguru_sink", "structlog_processor"]

_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "success": 25,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "msg": logging.INFO,
    "log": logging.INFO,
}


def loguru_sink(message: Any) -> None:
    """A Loguru sink: ``logger.add(loguru_sink)``. Never raises."""
    q = _capture.active()
    if q is None:
        return
    try:
        forwarded = _forwarded_from_stdlib(q)
        if forwarded is not None:
            # loguru's InterceptHandler recipe (a handler on the root logger that logs each stdlib record again
            # through loguru): the capture on the root logger takes that record itself. Before, it was captured
            # twice, the second time under the logger name loguru gave it ("__main__")
            _say_intercepted(q, forwarded)
            return
        rec = message.record
        exc = rec.get("exception")
        exc_info = (exc.type, exc.value, exc.traceback) if exc is not None and exc.type is not None else None
        extra = dict(rec["extra"])
        t = rec.get("time")
        ts = int(t.timestamp() * 1e9) if t is not None else time.time_ns()
        name = rec.get("name") or "loguru"
        q.put(capture(ts, int(rec["level"].no), name, rec["message"], (), extra, exc_info))
    except Exception as exc:  # never raise into the caller; Loguru hands well-formed records, so a bug of ours
        internal_error("logs.loguru_sink", exc)


_said_intercepted = threading.Event()


def _say_intercepted(q: Any, name: str) -> None:
    """Said once, straight into the pipeline (the system log): logged through the standard library from inside a
    loguru sink, the line would go back into loguru through the same handler, which loguru refuses (re-entrant)."""
    if _said_intercepted.is_set():
        return
    _said_intercepted.set()
    text = (
        "tradeobs: loguru_sink receives the standard library's records through loguru (a handler such as loguru's "
        f"InterceptHandler recipe, on logger {name!r}'s way): tradeobs captures those records on the root logger "
        "already, so the sink leaves them out (each line once). Your loguru sinks still get them"
    )
    q.put(capture(time.time_ns(), logging.INFO, "tradeobs", text, (), None, None))


_CALL_HANDLERS = logging.Logger.callHandlers.__code__
# How far up the calling thread's stack a stdlib Logger.callHandlers is looked for: 5 frames above the sink's caller
# with the recipe (loguru's own, the handler's emit, Handler.handle), some more for a handler of another shape. Every
# loguru line pays this walk, so it stays short.
_FRAMES_UP = 12


def _forwarded_from_stdlib(q: Any) -> str | None:
    """The name of the stdlib logger whose record is being handled up this thread's stack, when that record also
    reaches the capture handler (so loguru got it from a handler of the application's, such as the InterceptHandler
    recipe); else None."""
    here = inspect.currentframe()
    frame: FrameType | None = here.f_back if here is not None else None  # loguru_sink, then loguru and its caller
    for _ in range(_FRAMES_UP):
        if frame is None:
            return None
        if frame.f_code is _CALL_HANDLERS:
            record = frame.f_locals.get("record")
            if isinstance(record, logging.LogRecord):
                stdlib = logging.getLogger(record.name)
                return record.name if _capture._reaches(stdlib, q.handler) else None
            return None
        frame = frame.f_back
    return None


class StructlogProcessor:
    """A structlog processor that hands the event dict to the pipeline.

    >>> StructlogProcessor(drop=False)    # keep the event for later processors / your renderer
    StructlogProcessor(drop=False)

    With ``drop=True`` (the default, :data:`structlog_processor`) it raises
    ``structlog.DropEvent`` so structlog does not also print it; put it last.
    """

    def __init__(self, drop: bool = True) -> None:
        self.drop = drop

    def __repr__(self) -> str:
        return f"StructlogProcessor(drop={self.drop})"

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        q = _capture.active()
        if q is not None and isinstance(logger, logging.Logger) and _capture._reaches(logger, q.handler):
            # structlog configured to log through the standard library (logger_factory=structlog.stdlib.
            # LoggerFactory()): the record it makes reaches the capture on the root logger, as it reaches the
            # application's own handlers. Before, this processor captured the event too (drop=False: each line twice
            # in the JSON files and over OTLP) or dropped it (the default: the application's handlers, its log file,
            # no longer got any structlog line)
            warn_once(
                "logs:structlog_stdlib",
                "tradeobs: structlog_processor is in a structlog set-up that logs through the standard library "
                "(logger %r): its lines reach tradeobs through the root logger, as they reach your handlers, so the "
                "processor passes them on unchanged (capturing them too made each line twice; dropping them took "
                "them from your handlers). Remove it from structlog's processors",
                logger.name,
                level=logging.INFO,
            )
            return event_dict
        if q is not None:
            try:
                extra = dict(event_dict)
                msg = extra.pop("event", "")
                level = extra.pop("level", None) or method_name
                levelno = _LEVELS.get(str(level).lower(), logging.INFO)
                name = extra.pop("logger", None) or extra.pop("logger_name", None) or "structlog"
                extra.pop("timestamp", None)  # ours is the capture time
                exc_info = extra.pop("exc_info", None)
                if exc_info is True:
                    import sys

                    exc_info = sys.exc_info()
                elif isinstance(exc_info, BaseException):
                    exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
                elif not isinstance(exc_info, tuple):
                    exc_info = None
                q.put(capture(time.time_ns(), levelno, str(name), msg, (), extra, exc_info))
            except Exception as exc:  # never raise into the caller; a bug of ours (bad values are formatted later)
                internal_error("logs.structlog_processor", exc)
        if self.drop:
            import structlog

            raise structlog.DropEvent
        return event_dict


structlog_processor = StructlogProcessor()
