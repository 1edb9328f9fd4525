"""What is logged while ``init()`` builds the agent, before its log pipeline runs: kept, then written to the JSON logs.

>>> early = EarlyRecords.attach()        # doctest: +SKIP
>>> ...                                  # doctest: +SKIP  (init() builds tracing, metrics, the log pipeline)
>>> early.hand_to(pipeline)              # doctest: +SKIP

A warning said before the pipeline starts (the Prometheus port in use, OpenTelemetry's own line about a bad
``OTEL_RESOURCE_ATTRIBUTES``) reached stderr through Python's last resort and never ``logs/system.jsonl``: someone
reading the JSON logs later did not see it. This handler sits on the root logger for that short while, keeps the
WARNING-and-up records (at most :data:`LIMIT`; more are counted as dropped when handed over), and the pipeline writes
them with their own time, marked as printed (the console sink does not print them twice).

Intentional divergence from a plain handler: a record that no other handler takes is still printed by
``logging.lastResort``, exactly as it was without this handler (a handler on the root would otherwise end that).
"""

from __future__ import annotations

import logging
from typing import Any

from .._errors import handlers_reached
from .._internal.otel_private import current_context_getter

__all__ = ["LIMIT", "EarlyRecords"]

LIMIT = 200
"""Records kept before the pipeline starts; init() says a handful."""

_get_context = current_context_getter()


class EarlyRecords(logging.Handler):
    stands_in_for_last_resort = True
    """For ``_errors.on_console``: a record only this handler takes is printed as by Python's last resort (a
    ``warn_once(console=True)`` that counted it as a handler printed its line a second time)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kept: list[tuple[logging.LogRecord, Any]] = []  # each with the OTel context current when it was logged
        self.dropped = 0

    @classmethod
    def attach(cls) -> EarlyRecords:
        handler = cls()
        logging.getLogger().addHandler(handler)
        return handler

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.kept) < LIMIT:
            self.kept.append((record, _get_context()))
        else:
            self.dropped += 1
        found = logging.Logger.manager.loggerDict.get(record.name)
        logger = found if isinstance(found, logging.Logger) else logging.getLogger()
        if any(h is not self for h in handlers_reached(logger)):
            return  # another handler prints it (or not), as Python would have found
        last = logging.lastResort
        if last is not None and record.levelno >= last.level:
            last.handle(record)

    def hand_to(self, pipeline: Any) -> None:
        """Off the root logger, and what it kept into ``pipeline`` (None: logs are off, nothing to write them to)."""
        self.detach()
        kept, dropped = self.kept, self.dropped
        self.kept, self.dropped = [], 0
        if pipeline is not None:
            pipeline.take_early(kept, dropped)
