"""The caller's side of the log pipeline: capture a record into a bounded queue, nothing else.

>>> log = get_logger("execution")                                 # doctest: +SKIP
>>> log.info("order %s filled", oid, extra={"symbol": "AAPL"})   # doctest: +SKIP

Intentional divergences from the standard library, and why:

* **Late formatting.** ``logging.handlers.QueueHandler`` formats the message on
  the calling thread (``record.getMessage()``) so that mutable arguments are
  frozen when the call is made. We do not: the message is %-formatted and
  redacted on the worker thread, because formatting and regex redaction are
  most of the cost and trading code logs on its hot path. The arguments are
  kept by reference: pass immutable values (strings, numbers, tuples, frozen
  dataclasses), or a copy, if the object changes right after the call.
* **A fast path that skips ``LogRecord``.** For the stream loggers returned by
  :func:`get_logger`, when our queue is the only destination the record would
  reach (no other handler or filter on the way to the root logger), the call
  does not build a ``logging.LogRecord`` or look up the caller's frame: it
  appends one :class:`Captured` record (time, level, logger name, message, args,
  extra, exc_info, OTel context, correlation ids, thread) to the queue. Those records carry no
  ``code.*`` source location. As soon as anything else would see the record
  (a handler of yours, a filter, ``stack_info=True``), the standard path runs
  unchanged, so your handlers see exactly what they always saw.
* **No exception for bad ``extra``.** ``extra={"message": ...}`` makes the
  standard ``Logger.makeRecord`` raise ``KeyError``; stream loggers rename the
  key to ``extra.message`` instead, because logging must never raise into
  trading code. An ``extra`` that is not a dict is copied into one (or, when
  even that fails, kept as the attribute ``extra``, its text).
* **Keyword arguments are attributes.** ``log.info("login", user=u,
  password=p)`` raises ``TypeError`` on a standard ``Logger``; on a stream
  logger every keyword other than ``exc_info``, ``extra``, ``stack_info`` and
  ``stacklevel`` becomes an attribute of the record, as if passed in ``extra``
  (so ``password`` is masked like any secret-named attribute). ``msg``,
  ``level`` and ``args`` are keywords like any other (the logging methods take
  their own arguments positionally).

The queue is a ``collections.deque`` (``append``/``popleft`` are atomic) with a
length check for the bound; the worker polls it, so producers never signal or
take a lock on the normal path.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, TypeAlias

from .._errors import handlers_reached, internal_error
from .._internal.otel_private import current_context_getter, handler_logger_provider
from .context import get_correlation

__all__ = [
    "EXPORTED",
    "PRINTED",
    "SERVER_LOGGERS",
    "STREAMS",
    "CaptureHandler",
    "Captured",
    "LogQueue",
    "ServerLogCapture",
    "StreamLogger",
    "get_logger",
]

STREAMS = ("market_data", "strategy", "risk", "execution", "system")
SERVER_LOGGERS = ("uvicorn.error", "gunicorn.error")
"""Servers' error loggers that print through their own handlers and do not propagate to the root logger
(uvicorn's and gunicorn's default logging set-up): :class:`ServerLogCapture` captures them."""

_time_ns = time.time_ns
_get_ident = threading.get_ident
_get_context = current_context_getter()  # one C call with the SDK's contextvars runtime
# The calling thread's Thread object in one C call (``threading.current_thread()`` is a Python function):
# its name is read on the worker, right even if the thread has ended by then and its id was reused.
_thread_of = threading._active.get  # type: ignore[attr-defined]
_new = tuple.__new__


class Captured(NamedTuple):
    """One log call, as the caller's thread captured it (formatting and everything else happen on the worker).

    The hot producers (:class:`StreamLogger`, :class:`CaptureHandler`) append a plain :data:`RawCapture`
    tuple in this field order instead: building a ``NamedTuple`` costs another ~0.15 us per call
    (``benchmarks/logging_hotpath.py``), and the worker names the fields once, by unpacking.
    """

    ts_ns: int  # 0 when ``record`` carries the time
    levelno: int
    logger: str
    msg: object
    args: Any
    extra: Mapping[str, object] | None
    exc_info: Any
    context: Any  # the OTel Context current at the call
    correlation: Mapping[str, Any] | None
    thread_id: int
    thread: threading.Thread | None  # the Thread object of ``thread_id`` when it is a Python thread
    record: logging.LogRecord | None  # a stdlib record captured by the root handler (its fields win)
    # For a ``record`` entry, ``extra`` is None, or :data:`PRINTED` when the logger's own handlers print the record.


RawCapture: TypeAlias = tuple[
    int,
    int,
    str,
    object,
    Any,
    Mapping[str, object] | None,
    Any,
    Any,
    Mapping[str, Any] | None,
    int,
    threading.Thread | None,
    logging.LogRecord | None,
]
"""A :class:`Captured` as a plain tuple, in the same field order (what the hot producers append)."""


def capture(
    ts_ns: int,
    levelno: int,
    logger: str,
    msg: object,
    args: Any = (),
    extra: Mapping[str, object] | None = None,
    exc_info: Any = None,
) -> Captured:
    """A :class:`Captured` for the calling thread, now (the bridges and the pipeline's own notices use this)."""
    tid = _get_ident()
    return _new(  # type: ignore[no-any-return]
        Captured,
        (
            ts_ns,
            levelno,
            logger,
            msg,
            args,
            extra,
            exc_info,
            _get_context(),
            get_correlation(),
            tid,
            _thread_of(tid),
            None,
        ),
    )


PRINTED: Mapping[str, object] = MappingProxyType({})
"""The ``extra`` of a ``record`` entry whose logger prints it itself (the console sink skips it)."""

EXPORTED: Mapping[str, object] = MappingProxyType({})
"""The ``extra`` of a ``record`` entry that an OpenTelemetry ``logging`` handler of the application's sends to the
agent's logger provider itself (the OTLP sink skips it: it would be exported twice)."""

# The active queue, or None. Module global so the hot path reads it with one lookup.
_active: LogQueue | None = None


class LogQueue:
    """A bounded deque of captured entries, with the full-queue policy and drop counting."""

    def __init__(self, capacity: int, policy: str, block_timeout: float, dropped: Any) -> None:
        self.dq: deque[Any] = deque()
        self.capacity = capacity
        self.policy = policy
        self.block_timeout = block_timeout
        self.handler: CaptureHandler | None = None
        self.worker_ident: int | None = None
        self.high_water = max(1, capacity // 2)
        self.wake: Any = None  # set by the pipeline: wakes the worker early when the queue passes high_water
        self._dropped = dropped  # Counter tradeobs.agent.logs.dropped
        self._drop_full = dropped.bind(reason="queue_full")
        self._drop_timeout = dropped.bind(reason="block_timeout")
        self._drop_oldest = dropped.bind(reason="queue_full_oldest")
        self.total_dropped = 0
        self._lock = threading.Lock()

    def put(self, entry: RawCapture | Any) -> None:
        """Append ``entry``; a full queue applies the policy. (``StreamLogger._log`` inlines this.)"""
        dq = self.dq
        n = len(dq)
        if n < self.capacity:
            dq.append(entry)
            if n == self.high_water and self.wake is not None:
                self.wake()  # a burst: do not wait for the worker's next poll
        else:
            self.full(entry)

    def full(self, entry: RawCapture | Any) -> None:
        """The queue is full: apply the policy. Only this rare path takes a lock."""
        policy = self.policy
        if policy == "drop_oldest":
            try:
                self.dq.popleft()
            except IndexError:
                pass
            self.dq.append(entry)
            self._count(self._drop_oldest)
            return
        if policy == "block" and _get_ident() != self.worker_ident:
            deadline = time.monotonic() + self.block_timeout
            delay = 0.0002
            while time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.005)
                if len(self.dq) < self.capacity:
                    self.dq.append(entry)
                    return
            self._count(self._drop_timeout)
            return
        self._count(self._drop_full)

    def _count(self, bound: Any) -> None:
        bound.add(1)
        with self._lock:
            self.total_dropped += 1

    def after_fork(self) -> None:
        self.dq = deque()
        self._lock = threading.Lock()


class CaptureHandler(logging.Handler):
    """Root handler: captures any ``logging`` record (all loggers) into the queue.

    ``handle()`` is overridden so the per-record handler lock of ``logging.Handler``
    is not taken: appending to the deque is atomic on its own.
    """

    def __init__(self, queue: LogQueue) -> None:
        super().__init__(logging.NOTSET)
        self.queue = queue
        # What prints a WARNING-and-up record that no other handler takes (the pipeline's, redacted); None while the
        # agent's own console sink prints every record
        self.last_resort: Callable[[logging.LogRecord], None] | None = None
        # The agent's logger provider while an OpenTelemetry logging handler of the application's emits to it (the
        # pipeline looks when it starts and once a second); None otherwise, and then nothing is looked up per record
        self.bridged: Any = None
        # While bridged: per logger name, whether its records are exported by such a handler (_Decision), and the
        # provider those decisions were made for
        self._decisions: dict[str, _Decision] = {}
        self._decided_for: Any = None
        # Called when something closes this handler while it captures (a logging configuration closes every handler)
        self.on_close: Callable[[], None] | None = None

    def close(self) -> None:
        super().close()
        on_close = self.on_close
        if on_close is not None and _active is self.queue:
            on_close()

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        try:
            if self.filters and not self.filter(record):
                return False
            bridged = self.bridged
            marker = None if bridged is None or not self._exported(record, bridged) else EXPORTED
            entry: RawCapture = (0, record.levelno, record.name, None, None, marker, None, _get_context(),
                                 get_correlation(), 0, None, record)  # fmt: skip
            self.queue.put(entry)
            if record.levelno >= logging.WARNING and self.last_resort is not None:
                self._last_resort(record, self.last_resort)
        except Exception as exc:  # a filter of yours may raise; anything else is a bug. Never into the caller.
            internal_error("logs.capture_handler", exc)
        return True

    def _exported(self, record: logging.LogRecord, provider: Any) -> bool:
        """:func:`_exported_by`, decided once per logger and checked against what it was decided from at each record
        (:class:`_Decision`): walking the handlers and asking each for its provider cost about 1.5 us a record."""
        decisions = self._decisions
        if self._decided_for is not provider:
            decisions = self._decisions = {}
            self._decided_for = provider
        name = record.name
        found = logging.Logger.manager.loggerDict.get(name)
        d = decisions.get(name)
        if d is None or d.logger is not found or not d.holds():
            d = _Decision(found, provider)
            if len(decisions) >= _MAX_DECISIONS:
                decisions.clear()  # names made on the fly: bounded, decided again
            decisions[name] = d
        return record.levelno >= d.level

    def _last_resort(self, record: logging.LogRecord, echo: Callable[[logging.LogRecord], None]) -> None:
        """What Python does for a record no handler takes: ``logging.lastResort`` prints WARNING and up on stderr.
        This handler on the root would otherwise end that: an application with no logging set-up of its own lost
        its warnings and errors from the console once ``init()`` ran (they were only in the JSON files). ``echo``
        prints it as lastResort would, with secrets masked."""
        lr = logging.lastResort
        if lr is None or record.levelno < lr.level:
            return
        name = record.name
        if name.startswith("tradeobs") and (len(name) == 8 or name[8] == "."):
            # the agent's own: it prints on stderr itself what must be seen there (_errors.on_console); and the
            # stream loggers (get_logger("strategy")), whose records go to their own files: echoed here, a desk's
            # per-order warnings flooded the terminal (431 lines in a minute of the demo during a collector outage)
            return
        if any(h is not self for h in handlers_of(name)):
            return  # another handler takes it, as Python would have found
        echo(record)

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


def emits_to(handler: logging.Handler, provider: Any) -> bool:
    """True when ``handler`` is an OpenTelemetry logging handler that emits to ``provider``."""
    return provider is not None and handler_logger_provider(handler) is provider


def handlers_of(name: str) -> Iterator[logging.Handler]:
    """The handlers a record of logger ``name`` reaches (the root's for a name no logger was made for, or a
    placeholder's), as ``Logger.callHandlers`` walks them."""
    lg = logging.Logger.manager.loggerDict.get(name)
    return handlers_reached(lg if isinstance(lg, logging.Logger) else logging.root)


def _exported_by(record: logging.LogRecord, provider: Any) -> bool:
    """True when an OpenTelemetry logging handler of the application's on the record's way to the root logger (the
    SDK's ``LoggingHandler``, or ``opentelemetry-instrument``'s) emits ``record`` to ``provider`` itself. A handler
    with filters is not asked again (a filter may count or change what it sees): its records are exported by the
    agent too."""
    return any(record.levelno >= h.level and not h.filters and emits_to(h, provider) for h in handlers_of(record.name))


_MAX_DECISIONS = 4096


class _Decision:
    """Whether an OpenTelemetry logging handler of the application's exports a logger's records to ``provider``
    (:func:`_exported_by`, as the least record level it exports), with what that was decided from, so a change is
    seen at the next record: each logger on the way up (its handlers, as a list copy: ``addHandler``,
    ``removeHandler`` and a new list all differ from it; ``propagate``; ``parent``, which changes when a logger
    between is made) and each handler there that emits to ``provider`` (its level and filters). Checking is a few
    identity and list comparisons per logger on the way, where deciding asked each handler for its provider."""

    __slots__ = ("chain", "level", "logger", "watched")

    def __init__(self, found: Any, provider: Any) -> None:
        self.logger = found
        start = found if isinstance(found, logging.Logger) else logging.root
        chain = []
        watched = []
        level: float = math.inf
        c: logging.Logger | None = start
        while c is not None:
            handlers = list(c.handlers)
            chain.append((c, handlers, c.propagate, c.parent))
            for h in handlers:
                if emits_to(h, provider):
                    watched.append((h, h.level, list(h.filters)))
                    if not h.filters and h.level < level:
                        level = h.level
            if not c.propagate:
                break
            c = c.parent
        self.chain = tuple(chain)
        self.watched = tuple(watched)
        self.level = level

    def holds(self) -> bool:
        for c, handlers, propagate, parent in self.chain:
            if c.handlers != handlers or c.propagate != propagate or c.parent is not parent:
                return False
        for h, level, filters in self.watched:
            if h.level != level or h.filters != filters:
                break
        else:
            return True
        return False


class ServerLogCapture(logging.Filter):
    """On a server's error logger (:data:`SERVER_LOGGERS`): captures its records when the root handler will not.

    uvicorn and gunicorn give ``uvicorn.error`` and ``gunicorn.error`` their own stderr handlers and
    ``propagate = False``, so an unhandled request exception's traceback would only reach stderr. A
    filter, not a handler: the servers replace these loggers' handlers after we start (uvicorn's
    ``dictConfig``, ``UvicornWorker``), but keep their filters. Each record is captured once: by this
    filter when it would not reach :class:`CaptureHandler` on the root logger (checked per record, so
    a later ``propagate = True`` is followed), else by that handler. The record is still printed by the
    logger's own handlers, exactly as before; our console sink does not print it again (:data:`PRINTED`).
    """

    def __init__(self, queue: LogQueue, logger: logging.Logger) -> None:
        super().__init__()
        self.queue = queue
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if not _reaches(self.logger, self.queue.handler):
                entry: RawCapture = (0, record.levelno, record.name, None, None, PRINTED, None, _get_context(),
                                     get_correlation(), 0, None, record)  # fmt: skip
                self.queue.put(entry)
        except Exception as exc:  # a bug: never into the server's logging call
            internal_error("logs.server_log_capture", exc)
        return True


def _reaches(logger: logging.Logger, handler: CaptureHandler | None) -> bool:
    """True when a record logged on ``logger`` propagates to the root logger and ``handler`` is there."""
    c: Any = logger
    while c.parent is not None:
        if not c.propagate:
            return False
        c = c.parent
    return handler is not None and handler in c.handlers


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _plain_extra(extra: Any) -> dict[str, Any]:
    """A dict copy of an ``extra`` that is not a dict; never raises (bad input is kept as text, not raised)."""
    if isinstance(extra, Mapping):
        try:
            return dict(extra)
        except Exception:  # a mapping whose iteration raises: bad input, kept whole (formatted as its text)
            return {"extra": extra}
    return {"extra": extra}


def _truthy(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:  # an object whose __bool__ raises: hostile input, taken as "yes"
        return True


class StreamLogger(logging.Logger):
    """A ``logging.Logger`` with the capture fast path described in the module docstring.

    The level methods take ``msg`` (and ``level``) positionally so that any keyword is an attribute; each
    calls :meth:`_log` directly, so on the standard path the caller is found 2 frames up (``stacklevel + 2``).
    """

    def debug(self, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(10):
            self._log(10, msg, args, **kwargs)

    def info(self, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(20):
            self._log(20, msg, args, **kwargs)

    def warning(self, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(30):
            self._log(30, msg, args, **kwargs)

    def warn(self, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(30):  # the stdlib's deprecated alias, without its DeprecationWarning
            self._log(30, msg, args, **kwargs)

    def error(self, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(40):
            self._log(40, msg, args, **kwargs)

    def exception(self, msg: object, /, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(40):
            self._log(40, msg, args, exc_info=exc_info, **kwargs)

    def critical(self, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.isEnabledFor(50):
            self._log(50, msg, args, **kwargs)

    fatal = critical  # type: ignore[assignment]

    def log(self, level: int, msg: object, /, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if not isinstance(level, int):
            if logging.raiseExceptions:
                raise TypeError("level must be an integer")  # the stdlib's error: a programmer error
            return
        if self.isEnabledFor(level):
            self._log(level, msg, args, **kwargs)

    def _log(  # type: ignore[override]
        self,
        level: int,
        msg: object,
        args: Any,
        /,
        exc_info: Any = None,
        extra: Mapping[str, object] | None = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **attributes: Any,
    ) -> None:
        if extra is not None and type(extra) is not dict:
            extra = _plain_extra(extra)
        if attributes:
            extra = {**extra, **attributes} if extra else attributes
        q = _active
        if exc_info is not None and exc_info is not False:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif type(exc_info) is not tuple:
                exc_info = sys.exc_info() if exc_info is True or _truthy(exc_info) else None
                if exc_info is not None and exc_info[0] is None:
                    exc_info = None
        if stack_info is not False:
            stack_info = _truthy(stack_info)  # a hostile __bool__ would raise inside the stdlib's findCaller
            if stack_info:
                q = None
        if q is None or not _sole_route(self, q.handler):
            if type(stacklevel) is not int:
                stacklevel = 1
            super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 2)
            return
        tid = _get_ident()
        entry: RawCapture = (_time_ns(), level, self.name, msg, args, extra, exc_info, _get_context(),
                             get_correlation(), tid, _thread_of(tid), None)  # fmt: skip
        # LogQueue.put, inlined: this is the hottest call of the agent (one Python frame less per log line).
        dq = q.dq
        n = len(dq)
        if n < q.capacity:
            dq.append(entry)
            if n == q.high_water and q.wake is not None:
                q.wake()
        else:
            q.full(entry)

    def makeRecord(
        self,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        if extra is not None and not _RESERVED.isdisjoint(extra):
            extra = {(f"extra.{k}" if k in _RESERVED else k): v for k, v in extra.items()}
        return super().makeRecord(name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)


def _sole_route(logger: logging.Logger, handler: CaptureHandler | None) -> bool:
    """True when ``handler`` on the root logger is the only thing this logger's records would reach."""
    if logger.disabled or logger.filters:
        return False
    c: Any = logger
    hs = c.handlers
    while not hs:
        if not c.propagate:
            return False
        c = c.parent
        if c is None:
            return False
        hs = c.handlers
    return c.parent is None and len(hs) == 1 and hs[0] is handler and not handler.filters  # type: ignore[union-attr]


def get_logger(stream: str) -> logging.Logger:
    """The stdlib logger for ``stream``: one of :data:`STREAMS` (logger ``tradeobs.<stream>``) or any name.

    >>> get_logger("execution").name
    'tradeobs.execution'

    Each stream has its own level (``get_logger("market_data").setLevel("WARNING")``).
    The returned logger is a :class:`StreamLogger` (a ``logging.Logger``) unless
    the application installed its own logger class for that name.
    """
    name = f"tradeobs.{stream}" if stream in STREAMS else stream
    logger = logging.getLogger(name)
    if type(logger) is logging.Logger and name:
        logger.__class__ = StreamLogger
    return logger


def set_active(queue: LogQueue | None) -> None:
    global _active
    _active = queue


def active() -> LogQueue | None:
    return _active
