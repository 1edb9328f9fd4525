"""The current OTel ``Context`` in one C call, for hot paths.

>>> current_context() is not None
True

With the SDK's default contextvars runtime context (``ContextVarsRuntimeContext``)
this is its ``ContextVar.get`` itself, instead of ``context.get_current()``'s
three Python calls; with any other runtime context, ``get_current``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as _otel_context

__all__ = ["current_context"]


def _getter() -> Callable[[], Any]:
    rc = getattr(_otel_context, "_RUNTIME_CONTEXT", None)
    cv = getattr(rc, "_current_context", None)
    if type(rc).__name__ == "ContextVarsRuntimeContext" and cv is not None and hasattr(cv, "get"):
        return cv.get  # type: ignore[no-any-return]
    return _otel_context.get_current


current_context: Callable[[], Any] = _getter()
