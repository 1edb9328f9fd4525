"""_internal/otel_private: every private OpenTelemetry name is fenced there, and its assumptions are pinned.

Three checks fail loudly in CI when an OpenTelemetry release changes what the agent relies on:

* every :data:`~tradeobs_agent._internal.otel_private.ASSUMPTIONS` check holds;
* the SDK source each assumption mirrors is unchanged (``otel_private_snapshot.json``: the SDK version and a
  hash per function); after reviewing a change, ``UPDATE_OTEL_SNAPSHOT=1 pytest`` this file rewrites it;
* no module outside the fence imports an underscore name of ``opentelemetry.*`` or reads a private attribute
  that tradeobs itself does not define.

``scripts/otel-canary.sh`` runs the suite against the newest OpenTelemetry release and prints what broke.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

import tradeobs_agent
from tradeobs_agent import _errors
from tradeobs_agent._internal import fastpath, otel_private
from tradeobs_agent.testing import capture

PACKAGE = Path(tradeobs_agent.__file__).parent
FENCE = PACKAGE / "_internal" / "otel_private.py"
SNAPSHOT = Path(__file__).with_name("otel_private_snapshot.json")
# Private names of the standard library the package reads, each for a stated reason.
STDLIB_PRIVATE = {
    "_active": "threading._active.get: the calling thread's Thread object in one C call (logs/_capture.py)",
    "_replace": "NamedTuple._replace: the documented copy of a named tuple with some fields changed (snapshots)",
    "_current_frames": "sys._current_frames: the main thread's stack, where a gunicorn worker runs "
    "Arbiter.spawn_worker (_internal/workers/detect.py)",
}


def _source_hash(target: str) -> str:
    return hashlib.sha256(inspect.getsource(otel_private.resolve_source_target(target)).encode()).hexdigest()


def _current_snapshot() -> dict[str, Any]:
    sources = sorted({src for a in (*otel_private.ASSUMPTIONS, *otel_private.DEGRADING) for src in a.sources})
    return {"sdk": otel_private.sdk_version(), "sources": {s: _source_hash(s) for s in sources}}


def test_every_assumption_holds_on_this_sdk() -> None:
    assert otel_private.broken_assumptions() == ()
    for a in (*otel_private.ASSUMPTIONS, *otel_private.DEGRADING):
        assert a.check(), a.name


def test_the_degrading_assumptions_hold_in_behaviour_too(caplog: pytest.LogCaptureFixture) -> None:
    """What each of ``DEGRADING`` reads, seen on the real objects (the checks read their source)."""
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler

    app = FastAPI()
    assert not otel_private.fastapi_app_instrumented(app)
    FastAPIInstrumentor.instrument_app(app)
    assert otel_private.fastapi_app_instrumented(app)
    FastAPIInstrumentor.uninstrument_app(app)
    assert not otel_private.fastapi_app_instrumented(app)

    provider = LoggerProvider()
    assert otel_private.handler_logger_provider(LoggingHandler(logger_provider=provider)) is provider
    assert otel_private.handler_logger_provider(logging.StreamHandler()) is None

    from opentelemetry import trace

    with caplog.at_level(logging.WARNING):
        trace.set_tracer_provider(trace.NoOpTracerProvider())  # the first set (the globals are reset per test) ...
        trace.set_tracer_provider(trace.NoOpTracerProvider())  # ... and a second one, refused
    refused = [r for r in caplog.records if r.name in otel_private.PROVIDER_OVERRIDE_LOGGERS]
    assert refused
    assert refused[-1].getMessage() == otel_private.PROVIDER_OVERRIDE_MESSAGE.format("TracerProvider")
    assert otel_private.PROVIDER_OVERRIDE_LOGGERS[refused[-1].name] == "TracerProvider"


async def test_the_asgi_assumptions_of_instrument_app_hold_in_behaviour() -> None:
    """``skip_server_spans`` finds ``FastAPIInstrumentor``'s middleware in a built stack (through ``.app``), and a
    FastAPI app leaves its own telemetry out of a request whose scope ``fastapi_native_telemetry_off`` marked."""
    import httpx
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry={"tracer_provider": provider, "metrics": False, "logs": False})

    @app.get("/x")
    async def x() -> dict[str, str]:
        return {}

    async def get(asgi: Any, scope_extra: dict[str, Any] | None = None) -> None:
        async def with_scope(scope: Any, receive: Any, send: Any) -> None:
            scope.update(scope_extra or {})
            await asgi(scope, receive, send)

        transport = httpx.ASGITransport(app=with_scope)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/x")).status_code == 200

    await get(app)
    assert [s.name for s in exporter.get_finished_spans()][-1] == "GET /x"  # FastAPI's own, on
    exporter.clear()
    marked: dict[str, Any] = {}
    otel_private.fastapi_native_telemetry_off(marked)
    await get(app, marked)
    assert exporter.get_finished_spans() == ()

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    stack = app.build_middleware_stack()
    assert otel_private.skip_server_spans(stack, lambda scope: True) is stack  # found inside, replaced in place
    app.middleware_stack = stack
    await get(app)
    assert exporter.get_finished_spans() == ()  # skipped: no span
    FastAPIInstrumentor.uninstrument_app(app)


def test_the_sdk_source_the_fast_paths_mirror_is_unchanged() -> None:
    current = _current_snapshot()
    if os.environ.get("UPDATE_OTEL_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    changed = sorted(k for k in current["sources"] if pinned["sources"].get(k) != current["sources"][k])
    assert not changed, (
        f"OpenTelemetry {current['sdk']} changed code the agent's fast paths reproduce (pinned on "
        f"{pinned['sdk']}): {changed}. Review each against the assumption that names it in "
        "agent/tradeobs_agent/_internal/otel_private.py, then update the snapshot "
        "(see docs/upgrading-opentelemetry.md)."
    )
    assert current["sdk"].startswith(otel_private.TESTED_SDK + ".")


def test_pyproject_caps_opentelemetry_at_the_tested_minor() -> None:
    import tomllib

    deps = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())["project"]["dependencies"]
    otel = [d for d in deps if d.startswith("opentelemetry-")]
    assert otel and all("<" in d for d in otel), otel
    major, minor = otel_private.TESTED_SDK.split(".")
    assert f"opentelemetry-sdk>={major}.{minor},<{major}.{int(minor) + 1}" in deps


def _package_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_private_names() -> set[str]:
    """Every single-underscore name tradeobs itself defines: attributes it assigns, slots, functions, classes,
    module globals, NamedTuple fields. A private attribute read anywhere else must be one of these."""
    names: set[str] = set()
    for path in _package_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[-1])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
                names.add(node.value)  # __slots__ entries
    return {n for n in names if _private(n)}


def test_no_module_outside_the_fence_touches_a_private_opentelemetry_name() -> None:
    ours = _defined_private_names()
    offences: list[str] = []
    for path in _package_sources():
        if path == FENCE:
            continue
        rel = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opentelemetry"):
                parts = (node.module or "").split(".")
                bad = [p for p in parts if _private(p)] + [a.name for a in node.names if _private(a.name)]
                if bad:
                    offences.append(f"{rel}:{node.lineno} imports {node.module}: {bad}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("opentelemetry") and any(_private(p) for p in a.name.split(".")):
                        offences.append(f"{rel}:{node.lineno} imports {a.name}")
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Load)
                and _private(node.attr)
                and node.attr not in ours
                and node.attr not in STDLIB_PRIVATE
            ):
                offences.append(f"{rel}:{node.lineno} reads .{node.attr}, which tradeobs does not define")
    assert not offences, "\n".join(offences)


# --------------------------------------------------------------------------- runtime: a broken assumption


def test_a_broken_assumption_sends_every_signal_down_the_sdk_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As on another SDK version: spans, logs and the encoder take the SDK's own path, said once and counted;
    the exported data is still right."""
    monkeypatch.setattr(otel_private, "_BROKEN", ("opentelemetry-sdk 9.9.9 is not the tested 1.45.x",))
    with caplog.at_level(logging.INFO, logger="tradeobs"), capture() as cap:
        tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
        o = tt.order_signal("o-1", "AAPL", "buy", 1, price=1.0)
        o.submitted()
        o.fill(1, 1.0)
        assert tt._steps is None  # the SDK's span path
        names = sorted(s.name for s in cap.spans())
        assert names == ["fill", "order", "submit"]
        fallbacks = cap.agent.registry.self_metrics.fast_path_fallbacks
        assert fallbacks.bind(signal="traces", reason="sdk_assumptions").value >= 1
        tt.close()
    said = [r for r in caplog.records if "not the one the agent's fast paths were verified on" in r.getMessage()]
    assert {r.getMessage().split("; ")[-1].split()[0] for r in said} == {"logs", "traces"}  # once per signal
    assert len(said) == 2 and all(r.levelno == logging.WARNING for r in said)


def test_the_apis_own_tracer_and_logger_are_decided_without_evaluating_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agent off (``TradingTelemetry`` without ``init()``: the API's proxy or no-op tracer and logger) has no fast
    path whatever the SDK is: said as before (``tracer_type``, ``logger_type``), and the SDK assumptions are not
    evaluated for it (that imported the OTLP and Prometheus exporters and parsed SDK sources: 110-160 ms of CPU on
    the journal's applier at the agent-off service's first order)."""
    from opentelemetry import trace
    from opentelemetry._logs import NoOpLogger, NoOpLoggerProvider

    evaluated: list[int] = []
    monkeypatch.setattr(otel_private, "_BROKEN", None)
    monkeypatch.setattr(otel_private, "_remembered", lambda: evaluated.append(1) or ())
    for tracer in (trace.NoOpTracer(), trace.ProxyTracer("t")):
        assert fastpath.decide("traces", tracer) == fastpath.Plan(False, False, "tracer_type")
    for logger in (NoOpLogger("l"), NoOpLoggerProvider().get_logger("l")):
        assert fastpath.decide("logs", logger) == fastpath.Plan(False, False, "logger_type")
    assert evaluated == []
    with capture() as cap:  # the SDK's own tracer: evaluated, and exact, as before
        assert cap.agent.tracer_provider is not None
        assert fastpath.decide("traces", cap.agent.tracer_provider.get_tracer("t")).exact
    assert evaluated == [1]
    _errors.reset()


def test_a_processor_of_your_own_takes_the_sdk_path_for_spans_only(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import SpanProcessor

    class Mine(SpanProcessor):
        def __init__(self) -> None:
            self.ended: list[str] = []

        def on_end(self, span: Any) -> None:
            self.ended.append(span.name)

    mine = Mine()
    with caplog.at_level(logging.INFO, logger="tradeobs"), capture() as cap:
        assert cap.agent.tracer_provider is not None
        cap.agent.tracer_provider.add_span_processor(mine)
        tt = tradeobs_agent.TradingTelemetry()
        tt.order_signal("o-1", "AAPL", "buy", 1).done()
        tt.flush()
        assert mine.ended == ["order"]  # your processor sees every span
        plan = fastpath.decide("traces", tt._tracer())
        assert not plan.exact and plan.reason == "processor_type"
        tt.close()
    assert any("take the OpenTelemetry SDK's own path here (processor_type)" in r.getMessage() for r in caplog.records)
    _errors.reset()


class _HeldExporter:
    """A span exporter whose first export waits for ``gate`` (a collector that hangs)."""

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()
        self.batches: list[int] = []

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.batches.append(len(spans))
        self.gate.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@pytest.mark.parametrize("exporting", [False, True], ids=["idle", "export-in-flight"])
def test_batch_abandon_takes_the_queue_and_no_batch_follows(exporting: bool) -> None:
    """What ``give_up_all`` counts as dropped at a shutdown out of time is never exported after all."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tests._util import ended_spans, wait_for

    exp = _HeldExporter()
    proc = BatchSpanProcessor(exp, max_queue_size=64, max_export_batch_size=8, schedule_delay_millis=60_000)  # type: ignore[arg-type]
    bp = otel_private.batch_processor(proc)
    for s in ended_spans(20 if exporting else 5):
        proc.on_end(s)
    if exporting:  # 20 >= the batch size woke the worker: 8 are being exported, the export hangs
        wait_for(lambda: exp.batches == [8], "the first batch in flight")
    assert otel_private.batch_abandon(bp) == (12 if exporting else 5)
    exp.gate.set()
    if exporting:
        proc.shutdown()  # the worker took no batch after the one in flight
        assert exp.batches == [8]
        return
    for s in ended_spans(3):  # the worker was idle: what comes later is exported (and counted) as before
        proc.on_end(s)
    proc.shutdown()
    assert exp.batches == [3]


def test_batch_put_waits_for_room_the_worker_makes_and_says_when_there_was_none() -> None:
    """``batch_put``'s assumptions: a full queue's worker, woken, exports while the queue holds a batch or more, so
    items put with a wait all arrive; with no wait, or a worker that does not drain, the oldest goes (False)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tests._util import ended_spans

    exp = _HeldExporter()
    exp.gate.set()  # exports at once
    proc = BatchSpanProcessor(exp, max_queue_size=8, max_export_batch_size=4, schedule_delay_millis=60_000)  # type: ignore[arg-type]
    bp = otel_private.batch_processor(proc)
    assert all(otel_private.batch_put(bp, s, 5.0) for s in ended_spans(200))
    proc.shutdown()
    assert sum(exp.batches) == 200
    held = _HeldExporter()  # the worker's first export hangs: nothing drains
    proc = BatchSpanProcessor(held, max_queue_size=8, max_export_batch_size=4, schedule_delay_millis=60_000)  # type: ignore[arg-type]
    bp = otel_private.batch_processor(proc)
    kept = [otel_private.batch_put(bp, s, 0.05) for s in ended_spans(40)]
    assert kept.count(False) >= 40 - 8 - 4  # at most a queue and one batch in flight were taken
    held.gate.set()
    proc.shutdown()
    assert sum(held.batches) + kept.count(False) == 40


def test_batch_put_with_room_is_emit_without_a_getpid_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """``batch_put`` with room does what ``BatchProcessor.emit`` does (append on the left, wake the worker at a batch)
    without its ``os.getpid()`` per item, a system call; a processor reset in a forked child, shut down, or whose pid
    is not this process's still goes through ``emit``."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests._util import ended_spans, wait_for

    exp = InMemorySpanExporter()
    proc = BatchSpanProcessor(exp, max_queue_size=64, max_export_batch_size=4, schedule_delay_millis=60_000)
    bp = otel_private.batch_processor(proc)
    spans = ended_spans(11)
    real, calls = os.getpid, []
    monkeypatch.setattr(os, "getpid", lambda: calls.append(1) or real())
    assert all(otel_private.batch_put(bp, s, 0.0) for s in spans[:3])
    assert list(bp._queue) == spans[2::-1]  # the newest on the left, as emit puts them
    assert not bp._worker_awaken.is_set() and calls == []
    assert otel_private.batch_put(bp, spans[3], 0.0)  # a batch: the worker is woken and exports it
    assert calls == []
    wait_for(lambda: len(exp.get_finished_spans()) == 4, "the batch the fourth span completed")
    bp._pid = -1  # a processor of another process's (inherited without the at-fork reset): the SDK's emit resets it
    assert otel_private.batch_put(bp, spans[4], 0.0)
    assert calls and bp._pid == real()
    proc.shutdown()
    assert otel_private.batch_put(bp, spans[5], 0.0)  # shut down: emit ignores it, as before
    assert [s.name for s in exp.get_finished_spans()] == ["s0", "s1", "s2", "s3", "s4"]


def test_batch_put_in_a_forked_child_uses_the_childs_reset_processor() -> None:
    """The pid ``batch_put`` compares with is the child's after ``fork()`` (``os.register_at_fork``, as the SDK's own
    reset): an item put in the child reaches the child's new worker and exporter."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests._util import ended_spans

    exp = InMemorySpanExporter()
    proc = BatchSpanProcessor(exp, max_queue_size=64, max_export_batch_size=2, schedule_delay_millis=60_000)
    bp = otel_private.batch_processor(proc)
    spans = ended_spans(2)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if the two spans were exported here
        ok = False
        try:
            ok = bp._pid == os.getpid() and all(otel_private.batch_put(bp, s, 0.0) for s in spans)
            ok = ok and proc.force_flush(5_000) and len(exp.get_finished_spans()) == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert exp.get_finished_spans() == ()  # nothing in the parent
    proc.shutdown()


_WORKER = """
import sys, tradeobs_agent
tradeobs_agent.init(service_name="w", otlp=False, live=False, logs=tradeobs_agent.LogOptions(dir=""),
                    prometheus=tradeobs_agent.PrometheusOptions(port=0))
print("opentelemetry.exporter.otlp.proto.grpc.exporter" in sys.modules)
tradeobs_agent.shutdown()
"""


def test_a_new_worker_reuses_the_evaluation_an_earlier_process_stored(tmp_path: Path) -> None:
    """Each new worker of a recycling gunicorn evaluated every assumption again: it imported the OTLP/gRPC exporter
    (unused with OTLP off) and parsed SDK sources, most of ``init()``. Now the first process stores the result under
    the installed packages' key and later ones read it; a stored file that does not read is evaluated again."""
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))},
        "TRADEOBS_MULTIPROCESS": "on",
        "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path),
    }

    def worker() -> str:
        argv = [sys.executable, "-c", _WORKER]
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=120).stdout.strip()

    assert worker() == "True"  # the first evaluates
    (stored,) = tmp_path.glob("tradeobs-*/assumptions-*.json")
    assert json.loads(stored.read_text()) == []
    assert worker() == "False"  # the next one reads it: no gRPC exporter imported (nor SDK sources parsed)
    stored.write_text("{not json")
    assert worker() == "True" and json.loads(stored.read_text()) == []
    # a single process (no worker group) evaluates and writes nothing: no file of tradeobs' own (issue 11)
    env["TRADEOBS_MULTIPROCESS"] = "off"
    single = tmp_path / "single"
    env["TRADEOBS_MULTIPROCESS_DIR"] = str(single)
    assert worker() == "True" and not single.exists()
