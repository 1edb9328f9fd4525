"""What puts a log line on a trace besides the span current at the call.

>>> def job_span(job_id, current):            # the span context of the job's trace, or None
...     return JOBS[job_id].span_context if job_id in JOBS else None
>>> register_trace_resolver("job_id", job_span)                   # doctest: +SKIP
>>> with correlate(job_id="j-7"):                                 # doctest: +SKIP
...     log.info("step 3 done")   # trace_id/span_id of the job's trace, wherever the line is written

Three links, all followed on the log worker thread (the call that logs pays nothing for them):

* **A correlation id that names a trace.** :func:`register_trace_resolver` maps a correlation key
  (``order_id``: the trading layer registers it for the orders a ``TradingTelemetry`` knows) to a
  function ``resolver(value, current)``. For a record whose correlation ids have that key, it gets
  the value and the span context the record would carry otherwise (its current span's, or None)
  and returns the span context the record carries instead, or None to leave it. Resolving on the
  worker means the thing the id names may have been created *after* the log call (an order's span
  is made when the trading journal is applied): the resolver may do that work first.
* **More ids of the thing a correlation id names.** :func:`register_record_ids` maps a correlation key to a
  function ``ids_of(value, span_context)`` that returns more ids of what ``value`` names (a mapping of field
  name to id, or None), which the record carries too, as fields beside the correlation ids (its own
  correlation ids and ``extra`` win a clash). ``span_context`` is the record's after the resolvers above. The
  trading layer registers ``order_id``: a line of an order carries the venue's order id once ``acked()`` was
  given it, and the order's new client order id after a ``replaced()``, so a search by either finds the line.
* **The span an exception escaped from.** A server logs an unhandled request exception after the
  request's span has ended (uvicorn's ``Exception in ASGI application``). :func:`remember_span`
  notes on the exception the span it passed through (``instrument_app`` does this inside the
  request's span); a record of that exception with no span of its own carries it.

This module sits below the trading layer (it must not import it): the trading layer registers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from opentelemetry.trace import SpanContext

from . import _capture

__all__ = [
    "RecordIds",
    "TraceResolver",
    "exception_span",
    "on_log_worker",
    "register_record_ids",
    "register_trace_resolver",
    "remember_span",
    "unregister_record_ids",
    "unregister_trace_resolver",
]

TraceResolver: TypeAlias = Callable[[Any, "SpanContext | None"], "SpanContext | None"]
"""``resolver(value, current) -> SpanContext | None``: see the module docstring. Must not raise."""

RecordIds: TypeAlias = Callable[[Any, "SpanContext | None"], "Mapping[str, Any] | None"]
"""``ids_of(value, span_context) -> {field: id, ...} | None``: see the module docstring. Must not raise."""

# (key, resolver) and (key, ids_of) pairs; each replaced as a whole (the worker reads them without a lock).
resolvers: tuple[tuple[str, TraceResolver], ...] = ()
record_ids: tuple[tuple[str, RecordIds], ...] = ()
_lock = threading.Lock()

_ATTR = "__tradeobs_span_context__"
_CHAIN = 8  # how far down an exception's __cause__/__context__ chain a remembered span is looked for


def _added(pairs: tuple[tuple[str, Any], ...], key: str, fn: Any, what: str, fn_what: str) -> tuple[Any, ...]:
    """``pairs`` with ``(key, fn)`` added (once), the arguments checked; under ``_lock``."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what} key must be a non-empty string, got {key!r}")
    if not callable(fn):
        raise ValueError(f"{fn_what} for {key!r} must be callable, got {fn!r}")
    return pairs if (key, fn) in pairs else (*pairs, (key, fn))


def register_trace_resolver(key: str, resolver: TraceResolver) -> None:
    """Put records whose correlation id ``key`` names a trace on that trace (idempotent)."""
    global resolvers
    with _lock:
        resolvers = _added(resolvers, key, resolver, "trace resolver", "trace resolver")


def unregister_trace_resolver(key: str, resolver: TraceResolver) -> None:
    """Undo :func:`register_trace_resolver` (nothing if it was not registered)."""
    global resolvers
    with _lock:
        resolvers = tuple(r for r in resolvers if r != (key, resolver))


def register_record_ids(key: str, ids_of: RecordIds) -> None:
    """Give records whose correlation id ``key`` names something the ids ``ids_of`` returns for it (idempotent)."""
    global record_ids
    with _lock:
        record_ids = _added(record_ids, key, ids_of, "record ids", "record ids function")


def unregister_record_ids(key: str, ids_of: RecordIds) -> None:
    """Undo :func:`register_record_ids` (nothing if it was not registered)."""
    global record_ids
    with _lock:
        record_ids = tuple(r for r in record_ids if r != (key, ids_of))


def on_log_worker() -> bool:
    """True on the log pipeline's worker thread, where resolvers run: slow work there should offer the GIL."""
    q = _capture.active()
    return q is not None and q.worker_ident == threading.get_ident()


def remember_span(exc: BaseException, span_context: SpanContext) -> None:
    """Note on ``exc`` the span it escaped from (the innermost one: a span already noted is kept).

    Invalid span contexts are not noted. The note is an attribute of the exception object: it
    travels with it, is never printed, and goes when the exception goes.
    """
    if not span_context.is_valid:
        return
    try:
        if getattr(exc, _ATTR, None) is None:
            setattr(exc, _ATTR, span_context)
    except (AttributeError, TypeError):  # an exception type that takes no attributes: no note
        return


def exception_span(exc_info: Any) -> SpanContext | None:
    """The span remembered for the exception of ``exc_info`` (a ``(type, value, traceback)`` tuple), or one
    it was raised from (``__cause__``/``__context__``), else None."""
    if type(exc_info) is not tuple or len(exc_info) != 3:
        return None
    exc = exc_info[1]
    for _ in range(_CHAIN):
        if not isinstance(exc, BaseException):
            return None
        sc = getattr(exc, _ATTR, None)
        if isinstance(sc, SpanContext):
            return sc
        exc = exc.__cause__ or exc.__context__
    return None
