"""Regression: with the collector down and the SDK's OTLP log queue full, each record went through
the SDK's "Queue full" warning path (about 40% of the log worker's time in a profile) and the
drops were under-counted (1 counted where ~490 were dropped). Now every drop is counted in
tradeobs.agent.items.dropped{signal="logs",reason="queue_full"} and the oldest record is dropped,
as the SDK does, without a warning per record."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import tradeobs_agent
from tests._util import dead_endpoint
from tradeobs_agent import LogOptions, OtlpOptions


class _Count(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.queue_full = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Queue full"):
            self.queue_full += 1
        return True


@pytest.mark.faults
def test_full_otlp_log_queue_is_counted_not_warned_per_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "8")
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "8")
    counter = _Count()
    sdk_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
    sdk_logger.addFilter(counter)
    try:
        agent = tradeobs_agent.init(
            otlp=OtlpOptions(endpoint=dead_endpoint(), timeout=2.0),
            prometheus=False,
            live=False,
            logs=LogOptions(dir=str(tmp_path)),
        )
        log = tradeobs_agent.get_logger("execution")
        for i in range(500):
            log.info("order %s filled", i)
        assert agent.logs is not None
        agent.logs.flush(10.0)
        # Every record still reached the file sink.
        lines = (tmp_path / "execution.jsonl").read_text().splitlines()
        assert len(lines) == 500
    finally:
        sdk_logger.removeFilter(counter)
        tradeobs_agent.shutdown(timeout=1.0)
    dropped = tradeobs_agent.get_registry().get("tradeobs.agent.items.dropped")
    assert dropped is not None
    by_reason = {s.attributes["reason"]: s.value for s in dropped.series() if s.attributes.get("signal") == "logs"}
    # Nothing can be exported. A full queue (8) waits a moment for its worker to move records on to the retry
    # buffer, where they wait until shutdown; what is dropped on the way (the queue still full) or then is counted.
    assert set(by_reason) <= {"queue_full", "shutdown", "retry_buffer_full", "expired", "export_failed"}, by_reason
    # The 500 are counted, and so may be the warnings about the outage that were logged in time for OTLP.
    written = sum(len(f.read_text().splitlines()) for f in tmp_path.glob("*.jsonl"))
    assert 500 <= sum(by_reason.values()) <= written, f"every dropped record is counted: {by_reason}, {written} written"
    assert counter.queue_full == 0, "no per-record 'Queue full' warning is built"
