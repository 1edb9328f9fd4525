"""The capture handler decides once per logger whether an OpenTelemetry logging handler of the application's exports
its records (then the agent's OTLP sink leaves them out), and sees every change to what that was decided from.

Before, each record walked its logger's handlers up to the root and asked each for its logger provider: 0.8-1.0 us a
record (benchmarks/capture_decision.py, min of 25 rounds on 2 shared cores), 0.5-0.55 us with the decision cached and
checked. Real parts: the SDK's LoggingHandler and LoggerProvider, the stdlib logging tree, the agent's CaptureHandler
and LogQueue.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider

from tradeobs_agent.logs import _capture
from tradeobs_agent.metrics import Registry

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from opentelemetry.sdk._logs import LoggingHandler


class _Watched(LoggingHandler):
    """The SDK's LoggingHandler, counting how often its provider is asked for (the decision's walk)."""

    asked = 0

    @property
    def _logger_provider(self) -> Any:
        type(self).asked += 1
        return self.__dict__["_provider"]

    @_logger_provider.setter
    def _logger_provider(self, value: Any) -> None:
        self.__dict__["_provider"] = value


@pytest.fixture
def setup() -> Iterator[tuple[_capture.CaptureHandler, Any, str]]:
    root = logging.getLogger()
    before = list(root.handlers)
    provider = LoggerProvider()
    cap = _capture.CaptureHandler(_capture.LogQueue(1000, "drop_newest", 0.0, Registry().counter("t.d", "1", "d")))
    cap.bridged = provider
    base = f"capdec{uuid.uuid4().hex[:8]}"
    try:
        yield cap, provider, base
    finally:
        root.handlers[:] = before
        for name in list(logging.Logger.manager.loggerDict):
            if name.startswith(base):
                lg = logging.Logger.manager.loggerDict[name]
                if isinstance(lg, logging.Logger):
                    lg.handlers.clear()
                    lg.propagate = True


def _exported(cap: _capture.CaptureHandler, name: str, level: int = logging.INFO) -> bool:
    """What the OTLP sink is told of a record of ``name``: exported by the application's handler already."""
    cap.queue.dq.clear()
    record = logging.LogRecord(name, level, __file__, 1, "order %s filled", ("c-1",), None)
    cap.handle(record)
    (entry,) = cap.queue.dq
    decided = entry[5] is _capture.EXPORTED
    assert decided == _capture._exported_by(record, cap.bridged), "the cached decision differs from the walk"
    return decided


def test_the_decision_is_made_once_per_logger_not_per_record(setup: Any) -> None:
    cap, provider, base = setup
    logging.getLogger().addHandler(_Watched(logger_provider=provider))
    name = f"{base}.execution"
    logging.getLogger(name)
    _Watched.asked = 0
    for _ in range(100):
        cap.queue.dq.clear()
        cap.handle(logging.LogRecord(name, logging.INFO, __file__, 1, "m", (), None))
        assert cap.queue.dq[0][5] is _capture.EXPORTED
    assert _Watched.asked == 1  # the old code asked at every record: 100


def test_every_change_to_the_handlers_on_the_way_is_seen_at_the_next_record(setup: Any) -> None:
    cap, provider, base = setup
    root = logging.getLogger()
    app = logging.getLogger(base)
    name = f"{base}.orders.exec"
    logging.getLogger(name)
    otel = LoggingHandler(logger_provider=provider)
    assert not _exported(cap, name)

    root.addHandler(otel)  # added: exported
    assert _exported(cap, name)
    root.removeHandler(otel)  # removed: the agent exports it again (else lost)
    assert not _exported(cap, name)
    app.addHandler(otel)  # on a logger on the way
    assert _exported(cap, name) and not _exported(cap, f"{base}x.other")
    app.removeHandler(otel)
    root.handlers = [*root.handlers, otel]  # a new list, as a set-up may assign
    assert _exported(cap, name)

    otel.setLevel(logging.WARNING)  # its level: only what it takes is left out
    assert not _exported(cap, name) and _exported(cap, name, logging.ERROR)
    otel.setLevel(logging.NOTSET)
    assert _exported(cap, name)

    only_some = logging.Filter("nothing.here")
    otel.addFilter(only_some)  # a filter: not asked again, the agent exports
    assert not _exported(cap, name)
    otel.removeFilter(only_some)
    assert _exported(cap, name)

    app.propagate = False  # the record no longer reaches the root's handler
    assert not _exported(cap, name)
    app.propagate = True
    assert _exported(cap, name)

    between = logging.getLogger(f"{base}.orders")  # a logger made between: the record's parent changes
    between.propagate = False
    assert not _exported(cap, name)
    between.propagate = True
    assert _exported(cap, name)

    other = LoggerProvider()  # the handler stays, the agent's provider is another: nothing is left out
    cap.bridged = other
    assert not _exported(cap, name)
