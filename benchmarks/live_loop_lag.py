"""What a watched live view does to the event loop it shares with the trading code, at 1,000 symbols.

    python benchmarks/live_loop_lag.py [--symbols 1000] [--seconds 10] [--rounds 3] [--hz 10]

In a service the live endpoint runs on the same asyncio loop as the trading code (a FastAPI app that trades).
Each mode runs in a fresh process: an asyncio loop with the registry of ``benchmarks/live_frame.py``'s desk
(``--symbols`` symbols: 7 gauges, 2 counters and 3 histograms each; 100 prices and 20 fills moved every
100 ms by a task on the loop), and a task standing for the trading code: it sleeps 1 ms at a time and records
how late it woke (the loop's lag). Modes:

- ``no live view``: nothing else (what the machine and the desk's own updates cost);
- ``live view, frames on the loop``: a :class:`LiveHub` producing ``--hz`` frames with one stream client
  connected, each frame built and serialized on the loop (``offload_after=None``; how the hub worked before,
  and what a naive SSE endpoint that builds its state in its generator does);
- ``live view, tradeobs``: the same hub as it ships: a frame slower than 2 ms to build is built on its frames
  thread, in slices of 0.25 ms with the GIL offered between them.

Rounds run the modes one after another (a fresh process each); the table gives, over all rounds, the loop's
lag p50, p99 and worst (ms), the process's CPU (% of a core, all threads) and the frames built per second.
Compare the rows of one run; machines are noisy. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
MODES = ("no live view", "live view, frames on the loop", "live view, tradeobs")


async def _run(mode: str, symbols: int, seconds: float, hz: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from live_frame import Desk

    from tradeobs_agent.events import EventBus
    from tradeobs_agent.live.hub import LiveHub

    desk = Desk(symbols)
    hub = None
    sent = [0]
    if mode != "no live view":
        hub = LiveHub(desk.reg, EventBus(), hz=hz)
        if mode == "live view, frames on the loop":
            hub.offload_after = None

        async def send(msg: dict[str, Any]) -> None:
            sent[0] += len(msg.get("body", b""))

        hub.ensure_started()
        hub.connect(send, None)
    stop = time.monotonic() + seconds

    async def market() -> None:
        while time.monotonic() < stop:
            desk.move()
            await asyncio.sleep(0.1)

    lags: list[float] = []

    async def trading() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t - 0.001)

    frames0 = hub._n if hub is not None else 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(market(), trading())
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - t0)
    frames = (hub._n - frames0) if hub is not None else 0
    if hub is not None:
        hub.stop()
    return {"lags": lags, "cpu": cpu, "frames": frames / seconds, "bytes": sent[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        out = asyncio.run(_run(args.child, args.symbols, args.seconds, args.hz))
        print(json.dumps(out))
        return
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT.parent / "agent"), os.environ.get("PYTHONPATH", "")])}
    for _ in range(args.rounds):
        for mode in MODES:
            cmd = [sys.executable, __file__, "--child", mode, "--symbols", str(args.symbols)]
            cmd += ["--seconds", str(args.seconds), "--hz", str(args.hz)]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"Event loop lag with a watched live view, {args.symbols:,} symbols, {args.hz:g} Hz, "
        f"{args.rounds} x {args.seconds:g} s per mode, {os.cpu_count()} CPUs"
    )
    print("| mode | loop lag p50 ms | p99 ms | worst ms | CPU % of a core | frames/s |")
    print("|---|---:|---:|---:|---:|---:|")
    p99 = {}
    for mode in MODES:
        lags = sorted(x for r in results[mode] for x in r["lags"])
        p99[mode] = lags[int(0.99 * len(lags))]
        cpu = statistics.median(r["cpu"] for r in results[mode]) * 100
        fps = statistics.median(r["frames"] for r in results[mode])
        print(
            f"| {mode} | {statistics.median(lags) * 1000:.2f} | {p99[mode] * 1000:.2f} | {lags[-1] * 1000:.1f} "
            f"| {cpu:.1f} | {fps:.1f} |"
        )
    ratio = p99["live view, tradeobs"] / p99["live view, frames on the loop"]
    print(f"loop lag p99, tradeobs / frames on the loop: {ratio:.2f}x")


if __name__ == "__main__":
    main()
