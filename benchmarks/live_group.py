"""The live view of a worker group under real uvicorn workers, each trading a desk of 1,000 symbols: the frames a
stream client receives per second, a fill's delivery latency, and the leader's CPU; this tree against an older one.

    python benchmarks/live_group.py [--before c9685ae] [--workers 4] [--symbols 1000] [--seconds 20]
                                    [--fill-hz 20] [--rounds 2]

``uvicorn --workers N`` serves ``benchmarks/_mp_app.py`` with ``BENCH_DESK_SYMBOLS``: every worker trades the
desk of ``benchmarks/live_frame.py`` (7 gauges, 2 counters and 3 histograms per symbol; 100 prices and 20 fills
moved every 100 ms by a task on its event loop), so the group's leader merges N x ``--symbols`` symbols' series for
each frame. One stream client (``GET /telemetry/stream``, on whichever worker accepts it) reads for ``--seconds``
while ``--fill-hz`` fills a second are made through ``POST /fill`` (each on whichever worker accepts it), after
a warm-up of 5 s. Reported per round:

- frames/s: ``frame`` messages the client received, per second of the window (the live view promises 10);
- a fill's delivery, ms: from the ``fill()`` call in a worker other than the stream's (the order id carries its
  ``time.time_ns()``) to the client's receipt of its ``fill`` event: p50, p99;
- the leader's CPU (% of a core, all its threads; the leader is the process the frames' ``system.pid`` names),
  from ``/proc/<pid>/stat`` over the window.

The peer is the same measurement on the package of ``--before`` (``git archive`` of its ``agent/``,
``benchmarks/_trees.py``), rounds alternating, in the same run. Every process shares this machine's cores: compare
the rows of one run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from _trees import before_and_now
from multiprocess import _fill, _get, _serve, _stop, _Stream, _wait

WARM_UP = 5.0
_PID = re.compile(rb'"system":\{"pid":(\d+)')


class _FrameStream(_Stream):
    """The benchmark's SSE client, also noting the leader's pid (the frames' ``system.pid``)."""

    def __init__(self, port: int) -> None:
        self.leader = 0
        super().__init__(port)

    def _frame(self, line: bytes) -> None:
        # multiprocess._Stream counts the frames; this reads the leader's pid off the first full frame
        if not self.leader:
            m = _PID.search(line)
            if m:
                self.leader = int(m.group(1))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(workers: int, symbols: int, seconds: float, fill_hz: float) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-live-group-")
    os.environ["BENCH_DESK_SYMBOLS"] = str(symbols)
    proc, port = _serve(workers, tmp)
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{port}/healthz"), "the server")
        _wait(lambda: len({_fill(port)["pid"] for _ in range(4 * workers)}) == workers, "workers")
        s = _FrameStream(port)
        _wait(lambda: s.frames >= 3 and s.leader, "frames")
        time.sleep(WARM_UP)
        made: dict[str, int] = {}
        period = 1.0 / fill_hz
        frames0, cpu0, t0 = s.frames, _cpu_seconds(s.leader), time.monotonic()
        t_end = t0 + seconds
        nxt = t0
        while time.monotonic() < t_end:
            got = _fill(port)
            made[got["order_id"]] = got["pid"]
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
        elapsed = time.monotonic() - t0
        frames, cpu = s.frames - frames0, _cpu_seconds(s.leader) - cpu0
        _wait(lambda: len({d["order_id"] for _, d in s.fills} & set(made)) == len(made), "fills", timeout=30)
        s.close()
        other = sorted(
            (recv - int(d["order_id"].rsplit("-", 1)[1])) / 1e6
            for recv, d in s.fills
            if d["order_id"] in made and made[d["order_id"]] != s.pid
        )
        return {
            "frames_per_s": frames / elapsed,
            "leader_cpu": cpu / elapsed,
            "fills": len(other),
            "p50": other[len(other) // 2] if other else None,
            "p99": other[min(len(other) - 1, int(len(other) * 0.99))] if other else None,
            "stream_on_leader": s.pid == s.leader,
        }
    finally:
        err = _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        if "Traceback" in err:
            print(err[-3000:], file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="c9685ae", help="git revision of the peer (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fill-hz", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = ["--workers", str(args.workers), "--symbols", str(args.symbols)]
    sizes += ["--seconds", str(args.seconds), "--fill-hz", str(args.fill_hz)]
    if args.child:
        print(json.dumps(measure(args.workers, args.symbols, args.seconds, args.fill_hz)))
        return
    results = before_and_now(__file__, args.before, args.rounds, sizes)
    print(
        f"Live view of a worker group: {args.workers} uvicorn workers x {args.symbols:,} symbols each, 10 Hz, "
        f"{args.fill_hz:g} fills/s, {args.rounds} x {args.seconds:g} s per tree (alternating), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        "| tree | frames/s | fill from another worker p50 ms | p99 ms | leader CPU % of a core "
        "| leader CPU ms per frame |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    fps = {}
    for name in ("before", "now"):
        rs = results[name]
        fps[name] = statistics.median(r["frames_per_s"] for r in rs)
        label = f"before ({args.before})" if name == "before" else "now"

        def span(key: str, scale: float = 1.0, rs: list[dict[str, Any]] = rs) -> str:
            vals = sorted(r[key] * scale for r in rs if r[key] is not None)
            return "-" if not vals else f"{vals[0]:.1f}" if len(vals) == 1 else f"{vals[0]:.1f}-{vals[-1]:.1f}"

        for r in rs:
            r["per_frame"] = r["leader_cpu"] / r["frames_per_s"] if r["frames_per_s"] else None
        print(
            f"| {label} | {span('frames_per_s')} | {span('p50')} | {span('p99')} | {span('leader_cpu', 100.0)} "
            f"| {span('per_frame', 1000.0)} |"
        )
    print(f"frames/s, now / before (medians): {fps['now'] / fps['before']:.2f}x")


if __name__ == "__main__":
    main()
