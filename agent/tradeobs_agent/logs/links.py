"""What puts a log line on a trace besides the span current at the call.

>>> def job_span(job_id, current):            # the span context of the job's trace, or None
...     return JOBS[job_id].span_context if job_id in JOBS else None
>>> register_trace_resolver("job_id", job_span)                   # doctest: +SKIP
>>> with correlate(job_id="j-7"):                                 # doctest: +SKIP
...     log.info("step 3 done")   # trace_id/span_id of the job's trace, wherever the line is written

Two links, both followed on the log worker thread (the call that logs pays nothing for them):

* **A correlation id that names a trace.** :func:`register_trace_resolver` maps a correlation key
  (``order_id``: the trading layer registers it for the orders a ``TradingTelemetry`` knows) to a
  function ``resolver(value, current)``. For a record whose correlation ids have that key, it gets
  the value and the span context the record would carry otherwise (its current span's, or None)
  and returns the span context the record carries instead, or None to leave it. Resolving on the
  worker means the thing the id names may have been created *after* the log call (an order's span
  is made when the trading journal is applied): the resolver may do that work first.
* **The span an exception escaped from.** A server logs an unhandled request exception after the
  request's span has ended (uvicorn's ``Exception in ASGI application``). :func:`remember_span`
  notes on the exception the span it passed through (``instrument_app`` does this inside the
  request's span); a record of that exception with no span of its own carries it.

This module sits below the trading layer (it must not import it): the trading layer registers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeAlias

from opentelemetry.trace import SpanContext

from . import _capture

__all__ = [
    "TraceResolver",
    "exception_span",
    "on_log_worker",
    "register_trace_resolver",
    "remember_span",
    "unregister_trace_resolver",
]

TraceResolver: TypeAlias = Callable[[Any, "SpanContext | None"], "SpanContext | None"]
"""``resolver(value, current) -> SpanContext | None``: see the module docstring. Must not raise."""

# (key, resolver) pairs; replaced as a whole (the worker reads it without a lock).
resolvers: tuple[tuple[str, TraceResolver], ...] = ()
_lock = threading.Lock()

_ATTR = "__tradeobs_span_context__"
_CHAIN = 8  # how far down an exception's __cause__/__context__ chain a remembered span is looked for


def register_trace_resolver(key: str, resolver: TraceResolver) -> None:
    """Put records whose correlation id ``key`` names a trace on that trace (idempotent)."""
    global resolvers
    if not isinstance(key, str) or not key:
        raise ValueError(f"trace resolver key must be a non-empty string, got {key!r}")
    if not callable(resolver):
        raise ValueError(f"trace resolver for {key!r} must be callable, got {resolver!r}")
    with _lock:
        if (key, resolver) not in resolvers:
            resolvers = (*resolvers, (key, resolver))


def unregister_trace_resolver(key: str, resolver: TraceResolver) -> None:
    """Undo :func:`register_trace_resolver` (nothing if it was not registered)."""
    global resolvers
    with _lock:
        resolvers = tuple(r for r in resolvers if r != (key, resolver))


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
