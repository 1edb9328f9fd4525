"""What a watched live view does to the event loop it shares with the trading code, at 1,000 symbols.

    python benchmarks/live_loop_lag.py [--symbols 1000] [--seconds 10] [--rounds 3] [--hz 10] [--workers 4]
                                       [--modes 1,2,...] [--grow 0]

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
  thread, in slices of 0.1 ms with the GIL offered between them;
- ``live view, group leader of N`` (``--workers N``, N > 1; 0 leaves it out): the process is the leader of a
  worker group (multi-process mode, as under ``uvicorn --workers N``) whose N - 1 other members run the same
  desk in processes of their own; the leader merges every member's snapshot and builds the group's frames on
  the group's thread, the stream client connected to it;
- ``no live view, group leader``: the same group with nobody watching (the members publish once a second):
  what the group and the machine cost the leader's loop without the live view.

``--grow K``: every process's desk starts trading K new symbols a second (16 new series each), as a desk does
in its first minutes; in a worker group each is a new layout for that worker's file and for the leader.

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
import tempfile
import time
from pathlib import Path
from typing import Any

from _ports import free_port

ROOT = Path(__file__).resolve().parent
MODES = ("no live view", "live view, frames on the loop", "live view, tradeobs")
LEADER, MEMBER = "live view, group leader", "group member"
IDLE_LEADER = "no live view, group leader"


def _group_agent(service: str, registry_only: bool = False) -> Any:
    """``init()`` in multi-process mode (grouped with the other children of the benchmark's process)."""
    import tempfile

    import tradeobs_agent
    from tradeobs_agent import LogOptions, PrometheusOptions

    os.environ["TRADEOBS_MULTIPROCESS"] = "on"
    return tradeobs_agent.init(
        service_name=service,
        otlp=False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=int(os.environ["BENCH_PROM_PORT"])),
        logs=LogOptions(dir=tempfile.mkdtemp(prefix="agent-", dir=os.environ.get("BENCH_LOGS")), console=False),
        live=False,
    )


def _member(symbols: int, seconds: float) -> None:
    """Another worker of the leader's group: the same desk, moved every 100 ms, for ``seconds``."""
    sys.path.insert(0, str(ROOT))
    from live_frame import Desk

    agent = _group_agent(os.environ["BENCH_SERVICE"])
    desk = Desk(symbols, registry=agent.registry)
    grow = _Grow(desk)
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        desk.move()
        grow.step()
        time.sleep(0.1)


class _Grow:
    """``--grow``: the desk gets new symbols at ``BENCH_GROW`` a second (each a new layout in multi-process mode)."""

    def __init__(self, desk: Any) -> None:
        self.desk = desk
        self.rate = float(os.environ.get("BENCH_GROW", "0"))
        self.since = time.monotonic()

    def step(self) -> None:
        if self.rate > 0 and time.monotonic() - self.since >= 1.0 / self.rate:
            self.since = time.monotonic()
            self.desk.grow()


async def _run(mode: str, symbols: int, seconds: float, hz: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from live_frame import Desk

    from tradeobs_agent.events import EventBus
    from tradeobs_agent.live.hub import LiveHub

    agent = _group_agent(os.environ["BENCH_SERVICE"]) if mode in (LEADER, IDLE_LEADER) else None
    desk = Desk(symbols, registry=agent.registry if agent is not None else None)
    hub = None
    sent = [0]
    if agent is not None:
        group = agent.group
        deadline = time.monotonic() + 60
        while not group.leader:  # the first child of the run: it takes the lock
            if time.monotonic() > deadline:
                raise SystemExit("live_loop_lag: this process did not become the group's leader")
            await asyncio.sleep(0.05)
        print("leader", flush=True)  # the parent starts the other members now
        want = int(os.environ["BENCH_WORKERS"])
        while len(group.store.members()) < want:  # every member has published its snapshot
            if time.monotonic() > deadline:
                raise SystemExit(f"live_loop_lag: {len(group.store.members())} of {want} members published")
            await asyncio.sleep(0.05)
    if mode not in ("no live view", IDLE_LEADER):
        hub = LiveHub(desk.reg, EventBus(), hz=hz)
        if mode == "live view, frames on the loop":
            hub.offload_after = None

        async def send(msg: dict[str, Any]) -> None:
            sent[0] += len(msg.get("body", b""))

        hub.ensure_started()
        hub.connect(send, None)
    stop = time.monotonic() + seconds

    grow = _Grow(desk)

    async def market() -> None:
        while time.monotonic() < stop:
            desk.move()
            grow.step()
            await asyncio.sleep(0.1)

    lags: list[float] = []

    async def trading() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t - 0.001)

    if agent is not None:
        while hub is not None and hub._n == 0:  # the leader's first frame
            await asyncio.sleep(0.05)
    frames0 = hub._n if hub is not None else 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(market(), trading())
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - t0)
    frames = (hub._n - frames0) if hub is not None else 0
    if hub is not None:
        hub.stop()
    if agent is not None:
        import tradeobs_agent

        tradeobs_agent.shutdown(2.0)
    return {"lags": lags, "cpu": cpu, "frames": frames / seconds, "bytes": sent[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=4, help="the group of the leader mode (0: leave it out)")
    ap.add_argument("--modes", help="comma-separated numbers of the modes to run (1-5), all by default")
    ap.add_argument("--grow", type=float, default=0.0, help="new symbols a second in every process (0: none)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == MEMBER:
        _member(args.symbols, args.seconds)
        return
    if args.child:
        out = asyncio.run(_run(args.child, args.symbols, args.seconds, args.hz))
        print(json.dumps(out))
        return
    modes = (*MODES, IDLE_LEADER, LEADER) if args.workers > 1 else MODES
    if args.modes:
        modes = tuple(modes[int(i) - 1] for i in args.modes.split(","))
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT.parent / "agent"), os.environ.get("PYTHONPATH", "")])}
    env["BENCH_GROW"] = str(args.grow)
    with tempfile.TemporaryDirectory(prefix="tradeobs-bench-lag-") as logs:  # the group agents' log files
        env["BENCH_LOGS"] = logs
        for r in range(args.rounds):
            for mode in modes:
                cmd = [sys.executable, __file__, "--symbols", str(args.symbols), "--hz", str(args.hz)]
                if mode in (LEADER, IDLE_LEADER):
                    results[mode].append(_leader_round(args, cmd, env, f"bench-lag-{os.getpid()}-{r}", mode))
                    continue
                cmd += ["--child", mode, "--seconds", str(args.seconds)]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                results[mode].append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"Event loop lag with a watched live view, {args.symbols:,} symbols, {args.hz:g} Hz, "
        f"{args.rounds} x {args.seconds:g} s per mode, {os.cpu_count()} CPUs"
        + (f", {args.grow:g} new symbols a second in every process" if args.grow else "")
    )
    print("| mode | loop lag p50 ms | p99 ms | worst ms | CPU % of a core | frames/s |")
    print("|---|---:|---:|---:|---:|---:|")
    p99 = {}
    for mode in modes:
        lags = sorted(x for r in results[mode] for x in r["lags"])
        p99[mode] = lags[int(0.99 * len(lags))]
        cpu = statistics.median(r["cpu"] for r in results[mode]) * 100
        fps = statistics.median(r["frames"] for r in results[mode])
        print(
            f"| {mode} | {statistics.median(lags) * 1000:.2f} | {p99[mode] * 1000:.2f} | {lags[-1] * 1000:.1f} "
            f"| {cpu:.1f} | {fps:.1f} |"
        )
    if "live view, tradeobs" in p99 and "live view, frames on the loop" in p99:
        ratio = p99["live view, tradeobs"] / p99["live view, frames on the loop"]
        print(f"loop lag p99, tradeobs / frames on the loop: {ratio:.2f}x")
    if LEADER in p99 or IDLE_LEADER in p99:
        print(f"(the group leader's rows: {args.workers} workers x {args.symbols:,} symbols, merged)")
    if LEADER in p99 and IDLE_LEADER in p99:
        print(f"group leader, loop lag p99, live view / no live view: {p99[LEADER] / p99[IDLE_LEADER]:.2f}x")


def _leader_round(args: Any, cmd: list[str], env: dict[str, str], service: str, mode: str) -> dict[str, Any]:
    """One round of the leader mode: the measured leader first, then the other members of its group."""
    genv = {**env, "BENCH_SERVICE": service, "BENCH_WORKERS": str(args.workers), "BENCH_PROM_PORT": str(free_port())}
    lead = subprocess.Popen(
        [*cmd, "--child", mode, "--seconds", str(args.seconds)], env=genv, stdout=subprocess.PIPE, text=True
    )
    members: list[subprocess.Popen[bytes]] = []
    try:
        assert lead.stdout is not None
        if lead.stdout.readline().strip() != "leader":
            raise SystemExit("live_loop_lag: the leader child failed")
        margin = args.seconds + 90  # they outlive the measurement (waits for the group and the first frame)
        members = [
            subprocess.Popen([*cmd, "--child", MEMBER, "--seconds", str(margin)], env=genv)
            for _ in range(args.workers - 1)
        ]
        out, _ = lead.communicate(timeout=args.seconds + 180)
        if lead.returncode:
            raise SystemExit(f"live_loop_lag: the leader child exited {lead.returncode}")
        return dict(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in (lead, *members):
            if p.poll() is None:
                p.kill()
            p.wait()


if __name__ == "__main__":
    main()
