"""Helpers shared by the log pipeline tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tradeobs_agent


class Env:
    def __init__(self, agent: Any, log_dir: Path, logs: InMemoryLogRecordExporter, spans: InMemorySpanExporter) -> None:
        self.agent = agent
        self.dir = log_dir
        self.otlp = logs
        self.spans = spans

    @property
    def pipeline(self) -> Any:
        return self.agent.logs

    def flush(self) -> None:
        assert self.pipeline.flush(10.0)

    def lines(self, stream: str) -> list[dict[str, Any]]:
        path = self.dir / f"{stream}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]

    def otlp_records(self) -> list[Any]:
        return [r.log_record for r in self.otlp.get_finished_logs()]

    def counter(self, name: str, **attrs: Any) -> float:
        inst = self.agent.registry.get(name)
        if inst is None:
            return 0
        return sum(s.value for s in inst.series() if all(s.attributes.get(k) == v for k, v in attrs.items()))


class BlockingStream:
    """A console stream whose write() blocks until released: holds the worker so the queue fills."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.text: list[str] = []

    def write(self, s: str) -> int:
        self.entered.set()
        self.release.wait(30)
        self.text.append(s)
        return len(s)

    def flush(self) -> None:
        pass


def hold_worker(env: Env, stream: BlockingStream) -> None:
    """Make the worker block inside the console sink on the next record."""
    from tradeobs_agent.logs._sinks import ConsoleSink

    env.pipeline.console = ConsoleSink(env.pipeline._selfm.sink_errors.bind(sink="console"), stream)
    tradeobs_agent.get_logger("system").warning("hold")
    assert stream.entered.wait(10), "worker never reached the console sink"
