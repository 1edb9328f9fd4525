"""The demo service for the fault tests: ``tradeobs demo`` plus a measuring harness, in its own process.

    python tests/faults/demo_service.py --port 8000 --control-port 8001 --orders-hz 50 --symbols 10

It is the real service: the agent set up by ``tradeobs_agent.init()`` from the environment (exactly as a deployed
service: ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``TRADEOBS_SERVICE_NAME``, ``TRADEOBS_LOG_DIR``, ...), the demo's FastAPI
app (``tradeobs_agent.demo.create_app``: the trading engine, request traces, the live stream) served by uvicorn
through the same ``_serve.serve`` as ``tradeobs demo``, until SIGTERM. What the harness adds, and nothing else:

- the trading loop's own latency: every ``TradingEngine.step()`` (one market-data step for every symbol and the
  orders it places, all their telemetry calls included) is timed with ``perf_counter``, and a task sleeping 5 ms
  records how late the event loop wakes it (its lag: the GIL held by the agent's threads, GC, a blocked loop);
- a control server on ``--control-port`` (plain ``http.server`` in a thread, not instrumented: it adds no span
  and no log record to what is counted), answering JSON:

      GET  /samples?since=T&until=T   [epoch time, seconds] of each step and loop lag between two epoch times
      GET  /state                     orders placed, steps, RSS, threads, the event bus's sequence and
                                      evictions, the agent's self-metrics and log worker's counts now
      POST /orders?hz=N               set the order rate (0: stop placing orders; in-flight ones complete)
      POST /flush?timeout=S           agent.force_flush(S) -> {"ok": bool, "seconds": float}

- at exit (SIGTERM): the app stops (engine, live stream), then this script calls ``tradeobs_agent.shutdown()``
  itself, times it, and writes ``final.json`` in the working directory: the shutdown's result and duration,
  orders placed, the self-metrics read after the shutdown (what it counted as dropped at the end) and the log
  worker's counts (every record it handed to the sinks).

The agent is initialised before ``create_app()``, so the app does not own it and the shutdown is this script's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LAG_INTERVAL = 0.005
SELF_METRICS = (
    "tradeobs.agent.items.exported",
    "tradeobs.agent.items.dropped",
    "tradeobs.agent.exports.failed",
    "tradeobs.agent.exports.succeeded",
    "tradeobs.agent.queue.size",
    "tradeobs.agent.queue.capacity",
    "tradeobs.agent.logs.dropped",
    "tradeobs.agent.sink.errors",
    "tradeobs.agent.internal_errors",
    "tradeobs.live.clients",
    "tradeobs.live.clients.timed_out",
    "tradeobs.live.frames.sent",
    "tradeobs.live.frames.coalesced",
)


def self_metrics() -> dict[str, dict[str, float]]:
    """``{instrument: {"k=v,k2=v2": value}}`` for the counters and gauges above (the agent's own account)."""
    from tradeobs_agent.metrics import get_registry

    out: dict[str, dict[str, float]] = {}
    for fam in get_registry().snapshot(SELF_METRICS).families:
        out[fam.name] = {
            ",".join(f"{k}={v}" for k, v in sorted(p.attributes.items())): float(p.value)
            for p in fam.points  # type: ignore[union-attr]
        }
    return out


_snapshots: list[Any] = []


def tracemalloc_diff(top: int) -> dict[str, Any]:
    """What grew since the previous call (``--tracemalloc``): the ``top`` allocation tracebacks by size added,
    each ``{"kib": added, "count": blocks added, "traceback": [innermost frame last]}``; the first call compares
    with nothing."""
    import gc
    import tracemalloc

    if not tracemalloc.is_tracing():
        return {"error": "start the service with --tracemalloc FRAMES"}
    gc.collect()
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    prev = _snapshots[-1] if _snapshots else None
    _snapshots[:] = [snap]
    stats = snap.compare_to(prev, "traceback") if prev is not None else []
    return {
        "traced_kib": tracemalloc.get_traced_memory()[0] / 1024,
        "top": [
            {"kib": st.size_diff / 1024, "count": st.count_diff, "traceback": st.traceback.format()}
            for st in stats[:top]
        ],
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Samples:
    """Timestamped samples, bounded (400,000 each: 33 minutes of lag samples at 200/s). They are the harness's
    memory in the service's process: the soak keeps none (``--keep-samples 0``), or a filling buffer would show
    as the service's RSS growth."""

    def __init__(self, maxlen: int = 400_000) -> None:
        self.step: deque[tuple[float, float]] = deque(maxlen=maxlen)
        self.lag: deque[tuple[float, float]] = deque(maxlen=maxlen)

    @staticmethod
    def window(d: deque[tuple[float, float]], since: float, until: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in list(d) if since <= t < until]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--control-port", type=int, required=True)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--tick-hz", type=float, default=10.0)
    p.add_argument("--orders-hz", type=float, default=50.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--keep-samples", type=int, default=400_000,
        help="step and lag samples kept (each); 0 keeps none, so the harness adds no memory (the soak)",
    )  # fmt: skip
    p.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                   help="trace allocations with FRAMES frames each (GET /tracemalloc: what grew); 0: off")  # fmt: skip
    args = p.parse_args(argv)
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(args.tracemalloc)

    import tradeobs_agent
    from tradeobs_agent._serve import bind, serve
    from tradeobs_agent.demo import DemoConfig, create_app
    from tradeobs_agent.events import get_bus

    sock = bind("127.0.0.1", args.port)
    agent = tradeobs_agent.init()
    config = DemoConfig(symbols=args.symbols, tick_hz=args.tick_hz, orders_hz=args.orders_hz, seed=args.seed)
    app = create_app(config)
    engine = app.state.engine
    bus = get_bus()
    samples = Samples(args.keep_samples)
    step = engine.step

    def log_pipeline() -> dict[str, Any]:
        """The log worker's counts (``LogPipeline.stats()``: records ``processed``, i.e. handed to every sink)."""
        return dict(agent.logs.stats()) if agent.logs is not None else {}

    lag_task: list[asyncio.Task[None]] = []

    async def lag_monitor() -> None:
        while True:  # perf_counter: uvloop's loop.time() has millisecond resolution
            t0 = time.perf_counter()
            await asyncio.sleep(LAG_INTERVAL)
            samples.lag.append((time.time(), max(0.0, time.perf_counter() - t0 - LAG_INTERVAL)))

    def timed_step() -> None:
        if not lag_task:
            lag_task.append(asyncio.get_running_loop().create_task(lag_monitor()))
        t0 = time.perf_counter()
        step()
        samples.step.append((time.time(), time.perf_counter() - t0))

    engine.step = timed_step

    class Control(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:  # quiet: the service's output is checked for noise
            pass

        def _reply(self, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/samples":
                since, until = float(q.get("since", 0)), float(q.get("until", time.time() + 1))
                self._reply(
                    {
                        "step": Samples.window(samples.step, since, until),
                        "lag": Samples.window(samples.lag, since, until),
                    }
                )
            elif url.path == "/state":
                self._reply(
                    {
                        "orders": engine.orders,
                        "steps": len(samples.step),
                        "ticks": engine.ticks,
                        "rss": rss_bytes(),
                        "threads": threading.active_count(),
                        "self_metrics": self_metrics(),
                        "log_pipeline": log_pipeline(),
                        # The event bus's ring (bounded): once it evicts, it is full (the soak's warm-up waits).
                        "bus_seq": bus.last_seq,
                        "bus_evicted": bus.evicted,
                        "prometheus_url": agent.prometheus_url,
                        "time": time.time(),
                    }
                )
            elif url.path == "/tracemalloc":
                self._reply(tracemalloc_diff(int(q.get("top", 25))))
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/orders":
                engine.config.orders_hz = float(q["hz"])
                self._reply({"orders": engine.orders})
            elif url.path == "/flush":
                t0 = time.monotonic()
                ok = agent.force_flush(float(q.get("timeout", 30)))
                self._reply({"ok": ok, "seconds": time.monotonic() - t0})
            else:
                self.send_error(404)

    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), Control)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, name="faults-control", daemon=True).start()
    print(f"SERVICE ready pid={os.getpid()} port={args.port} control={args.control_port}", flush=True)
    with sock:
        serve(app, sock, lifespan="on")
    orders = engine.orders
    t0 = time.monotonic()
    ok = tradeobs_agent.shutdown()
    seconds = time.monotonic() - t0
    final = {
        "shutdown_ok": ok,
        "shutdown_seconds": seconds,
        "shutdown_timeout": agent.settings.shutdown_timeout,
        "orders": orders,
        "self_metrics": self_metrics(),
        "log_pipeline": log_pipeline(),
    }
    with open("final.json", "w") as f:
        json.dump(final, f)
    control.shutdown()
    print("SERVICE final " + json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
