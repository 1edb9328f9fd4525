"""``@timed`` / ``with timed(...)``: a block's duration into a seconds histogram, optionally in a span."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any

from ._registry import get_registry

__all__ = ["timed"]


class timed(ContextDecorator):
    """Time a block or function into a seconds histogram, optionally inside a span.

    >>> @timed("strategy.decision.duration", strategy="momentum")
    ... def decide(): return 42
    >>> decide()
    42
    >>> with timed("risk.check.duration", span=True):
    ...     pass

    The histogram is recorded even if the block raises; with ``span=True`` the
    span records the exception and gets an error status, and the measurement
    carries the span as its exemplar.
    """

    def __init__(self, name: str, *, span: bool | str = False, description: str = "", **attributes: Any) -> None:
        self._hist = get_registry().histogram(name, unit="s", description=description or f"Duration of {name}")
        self._bound = self._hist.bind(**attributes)
        self._span_name = (span if isinstance(span, str) else name) if span else None
        self._local = threading.local()

    def _start(self) -> tuple[float, Any, Any]:
        cm = span = None
        if self._span_name is not None:
            from opentelemetry import trace

            cm = trace.get_tracer("tradeobs").start_as_current_span(self._span_name)
            span = cm.__enter__()
        return time.perf_counter(), cm, span

    def _stop(self, token: tuple[float, Any, Any], exc: Any) -> None:
        start, cm, span = token
        self._bound.record(time.perf_counter() - start, span)
        if cm is not None:
            cm.__exit__(*exc)

    def __enter__(self) -> timed:
        self._local.__dict__.setdefault("stack", []).append(self._start())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop(self._local.stack.pop(), exc)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[override]
        import functools
        import inspect

        if inspect.iscoroutinefunction(func):
            # Coroutines interleave on one thread, so each call keeps its own token.
            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                token = self._start()
                exc: tuple[Any, Any, Any] = (None, None, None)
                try:
                    return await func(*args, **kwargs)
                except BaseException as e:
                    exc = (type(e), e, e.__traceback__)
                    raise
                finally:
                    self._stop(token, exc)

            return wrapper
        return super().__call__(func)
