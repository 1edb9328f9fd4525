"""Trading telemetry: order-lifecycle traces and the trading instruments.

>>> from tradeobs_agent import trading
>>> tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
>>> o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5)
>>> o.submitted(); o.acked(); o.fill(100, 189.51)
>>> trading.instrument("ESZ6", multiplier=50)  # a future: notional = qty * price * 50 (contracts.py)

See ``docs/metrics.md`` for every instrument, its attributes and its Prometheus name.
"""

from __future__ import annotations

from ._scope import OrderScope
from .contracts import instrument, multiplier, multipliers
from .instruments import SPECS, InstrumentSpec, TradingInstruments
from .orders import OrderBook, OrderDesk, OrderTrace
from .telemetry import TradingTelemetry

__all__ = [
    "SPECS",
    "InstrumentSpec",
    "OrderBook",
    "OrderDesk",
    "OrderScope",
    "OrderTrace",
    "TradingInstruments",
    "TradingTelemetry",
    "instrument",
    "multiplier",
    "multipliers",
]
