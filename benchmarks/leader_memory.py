"""The memory and live frame rate of a worker group's leader while its workers' label sets still fill (a market
maker on many symbols); this tree against an older one.

    python benchmarks/leader_memory.py [--before 2c09380] [--symbols 1000] [--quotes 30] [--seconds 60]
                                       [--rounds 1] [--arena-max 0]

``uvicorn --workers 2`` serves ``benchmarks/_mp_app.py`` with ``BENCH_MM_SYMBOLS``: each worker quotes
``--symbols`` symbols (``--quotes`` a second, each signalled, submitted, acknowledged, replaced 0-3 times and
cancelled, 2 % filled; 300 ticks each 100 ms), so the order instruments gain label sets (symbol x side x order type)
for minutes and nearly every snapshot a worker publishes has a new layout. One stream client
(``GET /telemetry/stream``) keeps the live view on for ``--seconds``. Reported per tree: the leader's RSS (the
process the frames' ``system.pid`` names) at the first sample and at the end, the other worker's at the end, and
the frames a second the client received in the first and the last 10 s. ``--arena-max N`` runs the service with
``MALLOC_ARENA_MAX=N`` (glibc's per-thread malloc arenas; 0: unset).

The peer is the same measurement on the package of ``--before`` (``git archive`` of its ``agent/``), rounds
alternating, in the same run. Every process shares this machine's cores: compare the rows of one run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from _trees import before_and_now
from live_group import _FrameStream
from multiprocess import _get, _serve, _stop, _wait

SAMPLE = 5.0


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def measure(symbols: int, quotes: float, seconds: float, arena_max: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-leader-memory-")
    os.environ["BENCH_MM_SYMBOLS"] = str(symbols)
    os.environ["BENCH_MM_QUOTES"] = str(quotes)
    if arena_max:
        os.environ["MALLOC_ARENA_MAX"] = str(arena_max)
    proc, port = _serve(2, tmp)
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{port}/healthz"), "the server")
        s = _FrameStream(port)
        _wait(lambda: s.frames >= 1 and s.leader, "frames")
        # uvicorn's supervisor -> its worker processes; the leader is the one the frames name
        others = [p for p in _children(proc.pid) if p != s.leader]
        samples: list[tuple[float, int, float, float]] = []  # (t, frames, leader MiB, other MiB)
        t0 = time.monotonic()
        while True:
            elapsed = time.monotonic() - t0
            samples.append((elapsed, s.frames, _rss_mib(s.leader), max((_rss_mib(p) for p in others), default=0)))
            if elapsed >= seconds:
                break
            time.sleep(SAMPLE)
        s.close()

        def rate(a: tuple[float, int, float, float], b: tuple[float, int, float, float]) -> float:
            return (b[1] - a[1]) / (b[0] - a[0])

        k = max(1, int(10 / SAMPLE))
        return {
            "leader_start": samples[0][2],
            "leader_end": samples[-1][2],
            "other_end": samples[-1][3],
            "fps_first": rate(samples[0], samples[k]),
            "fps_last": rate(samples[-1 - k], samples[-1]),
        }
    finally:
        err = _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        if "Traceback" in err:
            print(err[-3000:], file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="2c09380", help="git revision of the peer (default: %(default)s)")
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--quotes", type=float, default=30.0, help="quotes a second per worker")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--arena-max", type=int, default=0, help="MALLOC_ARENA_MAX for the service (0: unset)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.symbols, args.quotes, args.seconds, args.arena_max)))
        return
    sizes = ["--symbols", str(args.symbols), "--quotes", str(args.quotes), "--seconds", str(args.seconds)]
    sizes += ["--arena-max", str(args.arena_max)]
    results = before_and_now(__file__, args.before, args.rounds, sizes)
    arena = f"MALLOC_ARENA_MAX={args.arena_max}" if args.arena_max else "MALLOC_ARENA_MAX unset"
    print(
        f"A worker group's leader while label sets fill: 2 uvicorn workers x {args.symbols:,} symbols, "
        f"{args.quotes:g} quotes/s each, {args.seconds:g} s, {args.rounds} round(s) per tree (alternating), {arena}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print("| tree | leader RSS MiB, start -> end | other worker MiB, end | frames/s, first 10 s | last 10 s |")
    print("|---|---:|---:|---:|---:|")
    for name in ("before", "now"):
        rs = results[name]
        label = f"before ({args.before})" if name == "before" else "now"

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        print(
            f"| {label} | {med('leader_start'):.0f} -> {med('leader_end'):.0f} | {med('other_end'):.0f} "
            f"| {med('fps_first'):.1f} | {med('fps_last'):.1f} |"
        )


if __name__ == "__main__":
    main()
