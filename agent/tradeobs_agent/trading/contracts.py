"""Contract multipliers: what one unit of ``qty`` of a symbol is worth per point of its price.

>>> from tradeobs_agent import trading
>>> trading.instrument("ESZ6", multiplier=50)     # E-mini S&P 500: 50 USD per index point
>>> trading.instrument("CLF7", multiplier=1000)   # crude oil: 1,000 barrels per contract
>>> trading.multiplier("ESZ6"), trading.multiplier("AAPL")
(50.0, 1.0)

A futures or options desk reports ``qty`` in contracts and ``price`` per index point, barrel or share, as its
venue quotes them; the money is ``qty * price * multiplier``. Every figure tradeobs derives from a quantity and a
price uses it: ``trading.position.notional`` (and so ``trading.exposure.gross``, ``trading.exposure.net``, the
live view's desk totals, the merged endpoint of a worker group and the fleet gateway, which add notionals up) and
``trading.fills.notional``. Prices, quantities, slippage (basis points of a price) and the P&L your code reports
are unchanged: P&L is your books', in money already.

The table is the process's, one for every :class:`~tradeobs_agent.trading.TradingTelemetry` (a contract's size is
the contract's, not a strategy's), and a symbol never declared has a multiplier of 1 (a share, a coin, a currency
unit). Declare a contract once at start-up, before its first position (a worker group's workers run your start-up
code each, so each declares it too; members that disagree on a symbol's multiplier are counted and said once by the
group: ``_internal/workers/store.py``). Declaring it again with the same multiplier does nothing; with another one, or a
multiplier that is not a finite number > 0, raises :class:`~tradeobs_agent.exceptions.TradeObsConfigError` naming
the symbol, the value and what is allowed: a declaration is configuration, and a wrong one would misstate every
notional of the contract. ``TradingTelemetry.instrument()`` is the same call, and the ``contract_multipliers``
setting (``TRADEOBS_CONTRACT_MULTIPLIERS=ESZ6=50,CLF7=1000``, ``[metrics]`` in the config file,
``MetricsOptions(contract_multipliers=...)``) declares its entries at ``init()``: one variable for every process of
a deployment.

The readers look a symbol up in one dict, and only once something is declared (``_MULTIPLIERS`` empty: no lookup).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..exceptions import TradeObsConfigError

__all__ = ["instrument", "multiplier", "multipliers"]

_MULTIPLIERS: dict[str, float] = {}
"""symbol -> multiplier (> 1 or < 1; a declared 1 is kept too, to tell a conflicting redeclaration)."""
_LOCK = threading.Lock()
_VERSION = 0
"""Bumped by each change of the table (a new declaration, a reset): a worker group member rebuilds what it publishes
of the table (``agent._group_meta``) only then, not at each snapshot."""

_ALLOWED = (
    "a finite number > 0: the value of one unit of qty per point of price (50 for ES, 20 for NQ, 1000 for CL, "
    "100 for an equity option; 1 for a share)"
)


def _multiplier_value(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) and f > 0.0 else None


def instrument(symbol: str, *, multiplier: float) -> None:
    """Declare ``symbol``'s contract ``multiplier`` (see the module's doc): its notionals are
    ``qty * price * multiplier`` from the next report on."""
    global _VERSION
    if type(symbol) is not str:
        if isinstance(symbol, str):  # numpy's str_: the same text
            symbol = str(symbol)
        else:
            raise TradeObsConfigError("instrument symbol", symbol, "a symbol's text, as tt.position() is given it")
    if not symbol:
        raise TradeObsConfigError("instrument symbol", symbol, "a symbol's text, as tt.position() is given it")
    m = _multiplier_value(multiplier)
    if m is None:
        raise TradeObsConfigError(f"multiplier of {symbol}", multiplier, _ALLOWED)
    with _LOCK:
        known = _MULTIPLIERS.get(symbol)
        if known is not None and known != m:
            raise TradeObsConfigError(
                f"multiplier of {symbol}",
                multiplier,
                f"{known:g}, as declared before (a contract's multiplier does not change: a new contract, a roll's "
                "next month, is a new symbol)",
            )
        if known is None:
            _MULTIPLIERS[symbol] = m
            _VERSION += 1


def multiplier(symbol: Any) -> float:
    """``symbol``'s declared multiplier; 1 for a symbol never declared."""
    if not _MULTIPLIERS:
        return 1.0
    try:
        return _MULTIPLIERS.get(symbol, 1.0)
    except TypeError:  # unhashable: never declared
        return 1.0


def configure(declared: Mapping[str, float], setting: str = "contract_multipliers") -> None:
    """Declare the multipliers of the ``contract_multipliers`` setting (``init()`` calls this before it builds
    anything). One that conflicts with a symbol's declared multiplier raises, naming the setting; none is declared
    then."""
    with _LOCK:
        for symbol, m in declared.items():
            known = _MULTIPLIERS.get(symbol)
            if known is not None and known != m:
                raise TradeObsConfigError(
                    setting,
                    dict(declared),
                    f"{symbol}={known:g}, as declared before (trading.instrument, or an earlier init()): a contract's "
                    "multiplier does not change",
                )
    for symbol, m in declared.items():
        instrument(symbol, multiplier=m)


def reset() -> None:
    """Forget every declaration (``tradeobs_agent.testing.reset()`` calls this between tests)."""
    global _VERSION
    with _LOCK:
        _MULTIPLIERS.clear()
        _VERSION += 1


def multipliers() -> dict[str, float]:
    """A copy of the declared multipliers."""
    with _LOCK:
        return dict(_MULTIPLIERS)


def version() -> int:
    """A number that changes whenever the declared multipliers do (:func:`multipliers` would differ)."""
    return _VERSION
