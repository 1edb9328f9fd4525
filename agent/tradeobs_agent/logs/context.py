"""Correlation ids (order id, request id, ...) carried by ``contextvars``.

>>> with correlate(order_id="o-1"):
...     with correlate(request_id="r-9"):
...         dict(current_correlation())
{'order_id': 'o-1', 'request_id': 'r-9'}

Every log record captured inside the block carries these ids as top-level
fields. The mapping is immutable and stored in a ``ContextVar``, so it follows
``asyncio`` tasks (each task starts with a copy of its creator's context) and
never leaks between threads. Nested blocks merge; the inner value wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any

__all__ = ["correlate", "current_correlation"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CORRELATION: ContextVar[Mapping[str, Any]] = ContextVar("tradeobs_correlation", default=_EMPTY)

# The capture path reads this directly (one C call).
get_correlation = _CORRELATION.get


def current_correlation() -> Mapping[str, Any]:
    """The correlation ids in effect here (read-only)."""
    return _CORRELATION.get()


class correlate:
    """Attach correlation ids to every log record in the block (and tasks started in it).

    Also works as a decorator. Values should be short strings or numbers.
    """

    __slots__ = ("_ids", "_tokens")

    def __init__(self, **ids: Any) -> None:
        self._ids = ids
        self._tokens: list[Token[Mapping[str, Any]]] = []

    def __enter__(self) -> correlate:
        merged = MappingProxyType({**_CORRELATION.get(), **self._ids})
        self._tokens.append(_CORRELATION.set(merged))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _CORRELATION.reset(self._tokens.pop())

    def __call__(self, func: Any) -> Any:
        import functools
        import inspect

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with correlate(**self._ids):
                    return await func(*args, **kwargs)

            return awrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with correlate(**self._ids):
                return func(*args, **kwargs)

        return wrapper
