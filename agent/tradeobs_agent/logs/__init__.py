"""Structured, non-blocking logging. (Minimal first version; the full pipeline is issue 5.)

>>> log = get_logger("execution")          # a plain logging.Logger
>>> log.info("order %s filled", "o-1")     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from typing import Any

STREAMS = ("market_data", "strategy", "risk", "execution", "system")

__all__ = ["STREAMS", "get_logger", "install_logging"]


def get_logger(stream: str) -> logging.Logger:
    """The stdlib logger for one of the five streams (any other name works too)."""
    return logging.getLogger(f"tradeobs.{stream}" if stream in STREAMS else stream)


class LogPipeline:
    def __init__(self, agent: Any) -> None:
        from opentelemetry.sdk._logs import LoggingHandler

        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(agent.settings.log_queue_size)
        self._handler = logging.handlers.QueueHandler(self._queue)
        self._otel = LoggingHandler(logger_provider=agent.logger_provider)
        self._listener = logging.handlers.QueueListener(self._queue, self._otel, respect_handler_level=False)
        self._listener.start()
        root = logging.getLogger()
        root.addHandler(self._handler)
        if root.level == logging.WARNING or root.level == logging.NOTSET:
            root.setLevel(agent.settings.log_level)

    def flush(self, timeout: float) -> None:
        self._otel.flush()

    def shutdown(self, timeout: float) -> None:
        logging.getLogger().removeHandler(self._handler)
        self._listener.stop()


def install_logging(agent: Any) -> LogPipeline:
    return LogPipeline(agent)
