"""The local trace file: order traces as OTLP/JSON lines, written and rotated like the JSON logs.

>>> tf = TraceFile.for_settings(settings, "not_configured", selfm)   # doctest: +SKIP
>>> tf.exporter          # a span exporter for a batch processor; tf.close() at shutdown

``traces_file`` (``TRADEOBS_TRACES_FILE``): ``auto`` (the default) writes
``<log_dir>/traces.jsonl`` when no collector is used (OTLP off or not
configured) and nothing when traces go to a collector; a path writes there
always; empty turns it off. See ``_internal/tracefile.py`` for the format.
"""

from __future__ import annotations

import os

from .._internal import otel_private
from .._internal.tracefile import TraceFileExporter
from ..config import Settings
from ..metrics import SelfMetrics
from ._sinks import FileSink

__all__ = ["TraceFile"]


class TraceFile:
    """A :class:`TraceFileExporter` writing through its own rotated file sink."""

    def __init__(self, path: str, settings: Settings, selfm: SelfMetrics) -> None:
        directory, name = os.path.split(os.path.abspath(path))
        stream = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
        self.path = os.path.join(directory, stream + ".jsonl")
        self.sink = FileSink(
            directory,
            settings.log_max_bytes,
            settings.log_rotate_seconds,
            settings.log_backup_count,
            selfm.sink_errors.bind(sink="traces_file"),
            selfm.sink_errors.bind(sink="traces_file_gzip"),
            "traces_file_gzip",
        )
        self.sink.start()
        self.exporter = TraceFileExporter(lambda lines: self.sink.write(stream, lines))
        self._dropped = selfm.items_dropped.bind(signal="traces", reason="shutdown")

    @classmethod
    def for_settings(cls, settings: Settings, otlp_mode: str, selfm: SelfMetrics) -> TraceFile | None:
        path = settings.traces_file
        if path == "auto":
            if otlp_mode == "on" or not settings.log_dir:
                return None
            path = os.path.join(settings.log_dir, "traces.jsonl")
        return cls(path, settings, selfm) if path else None

    def abandon(self) -> int:
        """The agent's shutdown ran out of its bound (the process exits next): the spans still queued for the file
        are counted as dropped (``reason="shutdown"``); how many."""
        batch = self.exporter.batch
        n = otel_private.batch_abandon(batch) if batch is not None else 0
        if n:
            self._dropped.add(n)
        return n

    def close(self, timeout: float = 1.0) -> None:
        self.sink.close(timeout)

    def after_fork(self) -> None:
        self.sink.after_fork()
