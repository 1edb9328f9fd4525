"""The soak's peer (``soak.py``): the demo's trading engine, its telemetry hand-written on the raw OpenTelemetry SDK
(``_raw_otel.py``), in its own process until SIGTERM.

    python benchmarks/_soak_raw_service.py --otlp 127.0.0.1:4317 --prom-port 9464 --control-port 8001 \\
        --logdir DIR --symbols 10 --tick-hz 100 --orders-hz 20

The same ``TradingEngine`` as the demo, with the same load, in an asyncio loop. Unlike the demo service it serves
no web app and no live stream (the raw SDK has neither): its RSS holds less to begin with, so compare growth and
slope, not sizes. A control server (plain ``http.server``, as in ``tests/faults/demo_service.py``) answers
``GET /state`` (orders, ticks) and ``POST /orders?hz=N``. At SIGTERM the engine stops and the three providers shut
down (their batch processors flush).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _raw_otel


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--otlp", required=True, help="host:port of the collector's OTLP/gRPC receiver")
    p.add_argument("--prom-port", type=int, required=True)
    p.add_argument("--control-port", type=int, required=True)
    p.add_argument("--logdir", required=True)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--tick-hz", type=float, default=10.0)
    p.add_argument("--orders-hz", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    from tradeobs_agent.demo import DemoConfig, TradingEngine

    os.makedirs(args.logdir, exist_ok=True)
    # Metrics every second, as the demo service exports them in the soak (TRADEOBS_METRIC_EXPORT_INTERVAL=1).
    telemetry = _raw_otel.start(args.otlp, args.prom_port, args.logdir, metric_interval_ms=1000)
    config = DemoConfig(symbols=args.symbols, tick_hz=args.tick_hz, orders_hz=args.orders_hz, seed=args.seed)
    engine = TradingEngine(config, telemetry=telemetry)  # type: ignore[arg-type]

    class Control(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if urllib.parse.urlsplit(self.path).path == "/state":
                self._reply({"orders": engine.orders, "ticks": engine.ticks, "time": time.time()})
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/orders":
                engine.config.orders_hz = float(dict(urllib.parse.parse_qsl(url.query))["hz"])
                self._reply({"orders": engine.orders})
            else:
                self.send_error(404)

    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), Control)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, name="soak-control", daemon=True).start()

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        engine.start()
        print(f"PEER ready pid={os.getpid()} control={args.control_port}", flush=True)
        await stop.wait()
        await engine.stop()

    asyncio.run(run())
    telemetry.shutdown()
    control.shutdown()
    print(f"PEER stopped after {engine.orders} orders", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
