"""Structured logging that never blocks trading.

>>> import tradeobs_agent
>>> log = tradeobs_agent.get_logger("execution")        # a logging.Logger
>>> with tradeobs_agent.correlate(order_id="o-1"):
...     log.info("order %s filled", "o-1", extra={"symbol": "AAPL", "qty": 100})

Six streams: five named ones (``market_data``, ``strategy``, ``risk``,
``execution``, ``system``), each a stdlib logger with its own level, and
``service`` for every other ``logging.getLogger(...)``, which is captured too. The caller only appends to a
bounded queue; a worker thread formats, redacts and writes JSON lines,
OTLP and (in development) the console. See ``docs/logging.md``.
"""

from __future__ import annotations

from ..redaction import Redactor
from ._capture import STREAMS, StreamLogger, get_logger
from .bridges import StructlogProcessor, loguru_sink, structlog_processor
from .context import correlate, current_correlation
from .pipeline import LogPipeline, install_logging

__all__ = [
    "STREAMS",
    "LogPipeline",
    "Redactor",
    "StreamLogger",
    "StructlogProcessor",
    "correlate",
    "current_correlation",
    "get_logger",
    "install_logging",
    "loguru_sink",
    "structlog_processor",
]
