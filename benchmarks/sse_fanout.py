"""SSE fan-out benchmark: the tradeobs live stream vs a naive per-client sse-starlette generator, same run.

    python benchmarks/sse_fanout.py [--clients 1000,2000,4000] [--baseline 250,500,1000,2000] [--duration 12]

The measurement is ``tradeobs loadtest`` (``tradeobs_agent/live/loadtest.py``: raw asyncio SSE clients in
separate processes, delivery = frames sent in the steady-state window and received / clients x hz x window, latency =
receipt - the server's timestamp in the frame). This adds the peer: what the seed design would do with
sse-starlette, one ``EventSourceResponse`` per client whose generator sleeps ``1/hz``, then serializes the
(shared) state with ``json.dumps`` itself. Results: docs/live.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

from tradeobs_agent.live import loadtest


def _baseline_app(hz: float) -> Any:
    """The naive design: one sse-starlette generator per client, each serializing its own JSON every tick."""
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.routing import Route

    from tradeobs_agent.live.frames import FrameBuilder
    from tradeobs_agent.metrics import get_registry

    builder = FrameBuilder(get_registry())
    shared: dict[str, Any] = {"state": builder.build()}

    def refresh() -> None:  # the state is shared; only serialization is per client
        while True:
            time.sleep(1.0 / hz)
            shared["state"] = builder.build()

    threading.Thread(target=refresh, daemon=True).start()

    async def stream(request: Any) -> EventSourceResponse:
        async def gen() -> Any:
            loop = asyncio.get_running_loop()
            period = 1.0 / hz
            n = 0
            next_t = (loop.time() // period + 1) * period
            while True:  # wake on the global tick grid without drift, as a shared producer would
                await asyncio.sleep(max(0.0, next_t - loop.time()))
                next_t = max(next_t + period, (loop.time() // period) * period)
                n += 1
                data = json.dumps({"type": "full", "seq": n, "ts": round(time.time(), 4), **shared["state"]})
                yield {"id": str(n), "event": "frame", "data": data}

        return EventSourceResponse(gen(), send_timeout=10, sep="\n")

    return Starlette(routes=[Route("/stream", stream)])


def _serve_baseline(argv: list[str]) -> int:
    import uvicorn

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hz", type=float, default=10.0)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--max-clients", type=int, default=10000)
    args = p.parse_args(argv)
    loadtest.raise_nofile()
    stop = threading.Event()
    threading.Thread(target=loadtest.feed, args=(args.symbols, args.hz, stop), daemon=True).start()
    config = uvicorn.Config(
        _baseline_app(args.hz),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        lifespan="off",
        loop="asyncio",
        backlog=8192,
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run()
    stop.set()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve-baseline"]:
        return _serve_baseline(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    loadtest.add_arguments(p)
    p.add_argument("--baseline", default="250,500,1000,2000", help="baseline client counts ('' to skip)")
    args = p.parse_args(argv)
    loadtest.raise_nofile()
    # uvloop starves accept() under the baseline's per-client tasks (half the clients were never accepted at
    # 1,000); the stdlib loop serves the baseline better, so it gets that.
    baseline_cmd = [sys.executable, os.path.abspath(__file__), "serve-baseline"]
    plan = [("baseline", int(n)) for n in args.baseline.split(",") if n] + [
        ("tradeobs", int(n)) for n in args.clients.split(",") if n
    ]
    rows = []
    for impl, n in plan:
        print(f"... {impl} with {n:,} clients", file=sys.stderr, flush=True)
        server = baseline_cmd if impl == "baseline" else None
        rows.append(loadtest.run(impl, n, args, server=server))
    print(
        f"\nSSE fan-out, {args.symbols}-symbol frame at {args.hz:g} Hz, {args.duration:g} s steady state, "
        f"server + {args.procs} load-generator process(es) on this machine ({os.cpu_count()} CPUs), "
        f"tradeobs loop={loadtest.event_loop()}, baseline loop=asyncio"
    )
    print(loadtest.table(rows))
    b = loadtest.sustained(rows, "baseline", args.p99_ms, args.min_pct)
    t = loadtest.sustained(rows, "tradeobs", args.p99_ms, args.min_pct)
    ratio = f"{t / b:.1f}x" if b else "n/a (baseline sustained none of its runs)"
    print(
        f"Sustained (>= {args.min_pct:g}% delivered, p99 <= {args.p99_ms:g} ms): tradeobs {t:,} clients, "
        f"baseline {b:,} clients (of the counts run); ratio {ratio}."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
