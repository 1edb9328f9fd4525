"""What ``init()`` tells the trading layer: the symbol allowlist and the agent's tracer provider.

>>> configure(symbol_allowlist=["AAPL", "MSFT"])
>>> symbol_label("AAPL"), symbol_label("TSLA")
('AAPL', 'other')
>>> configure()                       # back to the defaults: every symbol, the global tracer provider

The allowlist is a trading rule (it bounds the ``symbol`` label of the trading
instruments), so it lives here, not in the generic metric registry: an
instrument of your own with a ``symbol`` attribute keeps it as given. Spans and
live events always carry the real symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["OTHER", "configure", "symbol_label", "tracer_provider"]

OTHER = "other"
_allow: frozenset[str] = frozenset()
_provider: Callable[[], Any] | None = None


def configure(symbol_allowlist: Iterable[str] = (), tracer_provider: Callable[[], Any] | None = None) -> None:
    """Set (or reset, with no arguments) the trading layer's defaults; ``init()`` and ``shutdown()`` call this."""
    global _allow, _provider
    _allow = frozenset(symbol_allowlist)
    _provider = tracer_provider


def symbol_label(symbol: Any) -> Any:
    """``symbol`` if it may be a label value, else ``"other"`` (an allowlist is set and it is not on it)."""
    if not _allow:
        return symbol
    try:
        return symbol if symbol in _allow else OTHER
    except TypeError:  # unhashable: not on the list
        return OTHER


def tracer_provider() -> Any:
    """The agent's tracer provider, or ``None`` (then the global OpenTelemetry one)."""
    return _provider() if _provider is not None else None
