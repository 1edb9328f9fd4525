"""``tradeobs loadtest``: how many live-stream clients this machine holds, at what delivery and latency.

>>> main(["--clients", "1000,2000,4000", "--duration", "12"])  # doctest: +SKIP

Needs ``psutil`` (``pip install 'tradeobs[loadtest]'``; the command says so when it is missing).

Each run starts the server in its own process (uvicorn, uvloop + httptools
when installed, access log off) with a synthetic 10-symbol trading state, and
one or more load-generator processes: raw asyncio protocols (no HTTP client
library) that parse ``event: frame`` and the server timestamp ``"ts"`` in the
frame. Delivery latency = client receipt time - server timestamp (same
machine, same clock). A frame counts as delivered when the server sent it inside
the steady-state window (its timestamp) and it arrives at most ``LATE`` seconds
after; expected = clients x hz x window. Sent = the frames the server sent to the
clients in the window, got or not (gaps in each stream's ids): below expected, the
server skipped ticks (a busy machine). Server CPU and RSS come
from psutil on the server pid; RSS per client = (RSS with N clients connected -
RSS before any client) / N.

``benchmarks/sse_fanout.py`` runs the same measurement against a naive
sse-starlette server (the peer) in the same run, through :func:`run`.

Subcommands used internally: ``serve`` (the server process) and ``load``
(a load-generator process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event_loop() -> str:
    if os.environ.get("TRADEOBS_LOADTEST_LOOP"):
        return os.environ["TRADEOBS_LOADTEST_LOOP"]
    try:
        import uvloop  # noqa: F401

        return "uvloop"
    except ImportError:
        return "asyncio"


# ---------------------------------------------------------------------------- server side


def feed(symbols: int, hz: float, stop: threading.Event) -> None:
    """Synthetic trading state: prices, positions, P&L, orders and latencies move every tick."""
    from .. import events, metrics

    names = [f"SYM{i:03d}" for i in range(symbols)]
    px = {s: metrics.gauge("trading.marketdata.price").bind(symbol=s) for s in names}
    pos = {s: metrics.gauge("trading.position.quantity").bind(symbol=s) for s in names}
    upnl = {s: metrics.gauge("trading.pnl.unrealized").bind(symbol=s) for s in names}
    sub = {s: metrics.counter("trading.orders.submitted").bind(symbol=s, side="buy") for s in names}
    lat = {s: metrics.histogram("trading.order.submit_to_fill.latency", unit="s").bind(symbol=s) for s in names}
    eq = metrics.gauge("trading.equity").bind()
    price = dict.fromkeys(names, 100.0)
    rnd = random.Random(7)
    n = 0
    while not stop.wait(1.0 / hz):
        n += 1
        for s in names:
            price[s] *= 1 + rnd.gauss(0, 0.0005)
            px[s].set(round(price[s], 4))
            pos[s].set(rnd.randint(-5, 5) * 100)
            upnl[s].set(round(rnd.gauss(0, 50), 2))
            sub[s].add(1)
            lat[s].record(rnd.lognormvariate(-6, 0.5))
        eq.set(1_000_000 + n)
        if n % 10 == 0:
            events.publish("fill", symbol=rnd.choice(names), side="buy", qty=100, price=100.0, order_id=f"o{n}")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    raise_nofile()
    stop = threading.Event()
    threading.Thread(target=feed, args=(args.symbols, args.hz, stop), daemon=True).start()
    app = create_app(hz=args.hz, max_clients=args.max_clients, token="", cors_origins=())
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        lifespan="off",
        loop=event_loop(),
        backlog=8192,
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run()
    stop.set()
    return 0


# ---------------------------------------------------------------------------- load generator


# The frame's server timestamp: tradeobs writes {"type":"delta","seq":N,"ts":T, the baseline (json.dumps) adds spaces.
# One message: its id's number (tradeobs: "<boot>-<n>", frames and events numbered together; the baseline: "<n>"),
# its event, and a frame's server timestamp. An n missing from a client's stream is a message the server sent and
# that client did not get (a frame skipped for a busy client); a tick the server itself skipped (its loop ran late:
# a busy machine) uses no number.
_MSG = re.compile(
    rb"^(?:id: (?:[^\n]*-)?(\d+)\n)?event: ([a-z]+)\n"
    rb'data: (?:\{"type": ?"(?:full|delta)", ?"seq": ?\d+, ?"ts": ?([0-9.]+))?',
    re.M,
)
LATE = 2.0
"""Seconds after the window a frame sent in it may still arrive and count as delivered (its latency says how late)."""


class _SSE(asyncio.Protocol):
    """One SSE client. Per read: count complete frames and read their timestamps with C-level scans only."""

    __slots__ = ("buf", "first", "last", "owner", "seen", "seen_at_last")

    def __init__(self, owner: _Load) -> None:
        self.owner = owner
        self.buf = b""
        self.first = -1  # the ids of the first and last frame of the window this client got, and the messages it got
        self.last = -1  # from the first on (seen) and up to the last (seen_at_last): the server sent it
        self.seen = 0  # last - first + 1 - seen_at_last messages meanwhile that it did not get
        self.seen_at_last = 0

    def connection_made(self, transport: Any) -> None:
        transport.write(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = buf.rfind(b"\n\n")
        if end < 0:
            self.buf = buf
            return
        self.buf = buf[end + 2 :]
        owner = self.owner
        if owner.t0 == math.inf:  # before the measurement: nothing to count
            return
        now = time.time()
        t0, t1, lat = owner.t0, owner.t1, owner.lat
        # A frame counts by when the server sent it (its "ts"), not when this process read it: read by receipt time,
        # a load generator held off the CPU for a moment at the window's end (a busy machine) lost the frames of
        # that moment from "delivered", which a 2 s window showed as 80%; frames of before the window read late
        # counted in it instead.
        for n, event, ts in _MSG.findall(buf, 0, end):
            if self.first >= 0:
                self.seen += 1
            if event != b"frame" or not ts or not t0 <= float(ts) <= t1:
                continue
            owner.frames += 1
            lat.append(now - float(ts))
            if not n:
                owner.unnumbered = True
                continue
            if self.first < 0:
                self.first, self.seen = int(n), 1
                owner.clients.append(self)
            self.last, self.seen_at_last = int(n), self.seen

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost += 1


class _Load:
    def __init__(self) -> None:
        self.frames = 0
        self.clients: list[_SSE] = []  # those that received a frame of the window
        self.unnumbered = False  # frames without a numbered id: what a client did not get cannot be told
        self.lat: list[float] = []
        self.lost = 0
        self.failed = 0
        self.t0 = math.inf
        self.t1 = -math.inf


async def _load_main(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    st = _Load()
    transports = []
    for i in range(0, args.clients, 100):  # ramp in batches so the accept queue never overflows
        batch = [
            loop.create_connection(lambda: _SSE(st), "127.0.0.1", args.port) for _ in range(min(100, args.clients - i))
        ]
        for r in await asyncio.gather(*batch, return_exceptions=True):
            if isinstance(r, BaseException):
                st.failed += 1
            else:
                transports.append(r[0])
        await asyncio.sleep(0.02)
    print("CONNECTED", len(transports), flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, t0, t1 = line.split()
    st.t0, st.t1 = float(t0), float(t1)
    await asyncio.sleep(max(0.0, st.t1 - time.time()) + LATE)
    for t in transports:
        t.close()
    missed = sum(c.last - c.first + 1 - c.seen_at_last for c in st.clients)  # messages sent to a client, not got
    return {
        "frames": st.frames,
        "missed": None if st.unnumbered else missed,  # None: the server's frames have no numbered ids
        "lat": st.lat,
        "lost": st.lost,
        "failed": st.failed,
        "connected": len(transports),
    }


def _load(args: argparse.Namespace) -> int:
    raise_nofile()
    if event_loop() == "uvloop":
        import uvloop

        result = uvloop.run(_load_main(args))
    else:
        result = asyncio.run(_load_main(args))
    lat = sorted(result.pop("lat"))
    step = max(1, len(lat) // 20000)
    result["lat"] = lat[::step]
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


# ---------------------------------------------------------------------------- driver


def _pct(sorted_vals: Sequence[float], q: float) -> float:
    if not sorted_vals:
        return math.nan
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}")


def run(
    impl: str,
    clients: int,
    args: argparse.Namespace,
    server: list[str] | None = None,
    env: dict[str, str] | None = None,
    replicas: int = 1,
    warm: bool = False,
) -> dict[str, Any]:
    """One measurement: start the server (``server`` + ``--port N --hz --symbols --max-clients``, default the
    tradeobs live stream), connect ``clients``, measure ``args.duration`` seconds; the row for :func:`table`.

    ``replicas`` servers (each on its own port, load-generator process ``i`` on server ``i % replicas``: use
    ``args.procs`` a multiple of it) stand for one service behind a load balancer: CPU and RSS are their sums.
    ``warm`` (always for ``impl == "tradeobs"``) requests ``/snapshot`` first, so a lazy producer is running.
    """
    import shutil
    import tempfile

    import psutil  # type: ignore[import-untyped]  # the loadtest extra

    if replicas < 1 or args.procs % replicas:
        raise ValueError(f"args.procs ({args.procs}) must be a multiple of replicas ({replicas})")
    ports = [_free_port() for _ in range(replicas)]
    py = sys.executable
    mod = "tradeobs_agent.live.loadtest"
    cmd = server if server is not None else [py, "-m", mod, "serve"]
    per_server = clients // replicas + 100
    opts = ["--hz", str(args.hz), "--symbols", str(args.symbols), "--max-clients", str(per_server)]
    server_procs = [
        subprocess.Popen([*cmd, "--port", str(port), *opts], env={**os.environ, **(env or {})}) for port in ports
    ]
    loads: list[subprocess.Popen[bytes]] = []
    tmp = None  # the load generators' result files
    try:
        for port, proc in zip(ports, server_procs, strict=True):
            _wait_port(port, proc)
        pss = [psutil.Process(p.pid) for p in server_procs]
        if impl == "tradeobs" or warm:  # start the lazy producer so the baseline RSS includes it
            for port in ports:
                with socket.create_connection(("127.0.0.1", port)) as s:
                    s.sendall(b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    while s.recv(65536):
                        pass
        time.sleep(1.0)
        rss0 = sum(ps.memory_info().rss for ps in pss)
        tmp = tempfile.mkdtemp(prefix="tradeobs-loadtest-")
        per = [clients // args.procs + (1 if i < clients % args.procs else 0) for i in range(args.procs)]
        outs = []
        for i, n in enumerate(per):
            out = os.path.join(tmp, f"load{i}.json")
            outs.append(out)
            port = ports[i % replicas]
            cmd = [py, "-m", mod, "load", "--port", str(port), "--clients", str(n), "--out", out]
            loads.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        connected = 0
        for p in loads:
            assert p.stdout is not None
            line = p.stdout.readline().decode().split()
            connected += int(line[1]) if len(line) == 2 else 0
        time.sleep(args.settle)
        t0 = time.time() + 0.2
        t1 = t0 + args.duration
        for p in loads:
            assert p.stdin is not None
            p.stdin.write(f"GO {t0} {t1}\n".encode())
            p.stdin.flush()
        loaders = [psutil.Process(p.pid) for p in loads]
        time.sleep(max(0.0, t0 - time.time()))
        cpu0 = [ps.cpu_times() for ps in pss]
        lcpu0 = [ps.cpu_times() for ps in loaders]
        w0 = time.time()
        time.sleep(max(0.0, t1 - time.time()))
        cpu1 = [ps.cpu_times() for ps in pss]
        lcpu1 = [ps.cpu_times() for ps in loaders]
        w1 = time.time()
        rss1 = sum(ps.memory_info().rss for ps in pss)
        for p in loads:
            p.wait(timeout=60)
        frames = 0
        missed: int | None = 0
        lat: list[float] = []
        lost = failed = 0
        for out in outs:
            with open(out) as f:
                r = json.load(f)
            frames += r["frames"]
            missed = None if missed is None or r["missed"] is None else missed + r["missed"]
            lat.extend(r["lat"])
            lost += r["lost"]
            failed += r["failed"]
        lat.sort()
        expected = clients * args.hz * args.duration
        busy = sum(b.user + b.system - a.user - a.system for a, b in zip(cpu0, cpu1, strict=True))
        cpu = busy / (w1 - w0) * 100
        lbusy = sum(b.user + b.system - a.user - a.system for a, b in zip(lcpu0, lcpu1, strict=True))
        return {
            "impl": impl,
            "clients": clients,
            "connected": connected,
            "expected": int(expected),
            # sent: the frames the server sent in the window, delivered or skipped for a busy client; fewer than
            # expected when its ticks ran late (a busy machine: it skips a tick rather than burst to catch up)
            "sent": math.nan if missed is None else frames + missed,
            "sent_pct": 100.0 * (frames + missed) / expected if expected and missed is not None else math.nan,
            "delivered": frames,
            "pct": 100.0 * frames / expected if expected else math.nan,
            "p50_ms": _pct(lat, 0.5) * 1000,
            "p99_ms": _pct(lat, 0.99) * 1000,
            "cpu_pct": cpu,
            "rss_per_client_kb": (rss1 - rss0) / max(1, connected) / 1024,
            "loader_cpu_pct": lbusy / (w1 - w0) * 100,
            "lost_during_window": lost,
        }
    finally:
        for p in loads:
            if p.poll() is None:
                p.kill()
                p.wait()
        for server_proc in server_procs:
            server_proc.terminate()
        for server_proc in server_procs:
            try:
                server_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server_proc.kill()
                server_proc.wait()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _share(pct: float) -> str:
    return "—" if math.isnan(pct) else f"{pct:.1f}%"  # a server whose frames have no numbered ids: not known


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| server | clients | connected | frames expected | sent | delivered | p50 ms | p99 ms "
        "| server CPU % | RSS/client KB |"
    )
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [head, sep]
    for r in rows:
        lines.append(
            f"| {r['impl']} | {r['clients']:,} | {r['connected']:,} | {r['expected']:,} | "
            f"{_share(r.get('sent_pct', math.nan))} | {r['pct']:.1f}% | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_pct']:.0f} | {r['rss_per_client_kb']:.1f} |"
        )
    return "\n".join(lines)


def sustained(rows: list[dict[str, Any]], impl: str, p99_ms: float, min_pct: float) -> int:
    """The most clients ``impl`` held with ``min_pct`` delivered and p99 under ``p99_ms`` (0: none)."""
    ok = [r["clients"] for r in rows if r["impl"] == impl and r["pct"] >= min_pct and r["p99_ms"] <= p99_ms]
    return max(ok, default=0)


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, as ``(default: X)``; none for an option without one (``--json FILE``
    said "(default: None)", which reads as a file named None)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The measurement options (shared with ``benchmarks/sse_fanout.py``), each with its default."""
    p.formatter_class = _DefaultsShown
    p.add_argument("--clients", default="1000,2000,4000", help="client counts to run, comma-separated")
    p.add_argument("--duration", type=float, default=12.0, help="steady-state seconds per run")
    p.add_argument("--settle", type=float, default=2.0, help="seconds after connecting before measuring")
    p.add_argument("--hz", type=float, default=10.0, help="frames per second")
    p.add_argument("--symbols", type=int, default=10, help="symbols in the synthetic trading state")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes (2 spreads the parsing)")
    p.add_argument("--p99-ms", type=float, default=100.0, help="latency bound for 'sustained'")
    p.add_argument("--min-pct", type=float, default=99.0, help="delivery bound for 'sustained'")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON here")


def _bench(args: argparse.Namespace) -> int:
    raise_nofile()
    rows = []
    for n in (int(x) for x in args.clients.split(",") if x):
        print(f"... tradeobs with {n:,} clients", file=sys.stderr, flush=True)
        rows.append(run("tradeobs", n, args))
    print(
        f"\nSSE fan-out, {args.symbols}-symbol frame at {args.hz:g} Hz, {args.duration:g} s steady state, "
        f"server + {args.procs} load-generator process(es) on this machine ({os.cpu_count()} CPUs), "
        f"loop={event_loop()}"
    )
    print(table(rows))
    print(
        "sent: the frames the server sent in the window (to every client), of those expected; delivered: those "
        "received, by when they were sent, of those expected."
    )
    short = [r for r in rows if r["sent_pct"] < args.min_pct]
    if short:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"The server sent fewer frames than expected at {', '.join(format(r['clients'], ',') for r in short)} "
            f"clients: its {args.hz:g} Hz ticks ran late and it skips a tick rather than burst to catch up; with "
            f"little CPU of its own (server CPU %) that is the machine being busy (load average now {load}), not "
            "frames lost on the way. Delivered below sent is frames skipped for clients that did not keep up."
        )
    best = sustained(rows, "tradeobs", args.p99_ms, args.min_pct)
    print(f"Sustained (>= {args.min_pct:g}% delivered, p99 <= {args.p99_ms:g} ms): {best:,} clients.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``tradeobs loadtest`` entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="tradeobs loadtest",
        # the docstring's first paragraph, without its reST markup (``...``): --help is plain text
        description=__doc__.split("\n\n")[0].replace("``", "") + " Needs psutil: pip install 'tradeobs[loadtest]'.",
    )
    add_arguments(p)
    # The run's own processes (the server, the load generators): left out of --help, which is for the user.
    sub = p.add_subparsers(dest="cmd", help=argparse.SUPPRESS)
    s = sub.add_parser("serve", help="(internal) the server process")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--hz", type=float, default=10.0)
    s.add_argument("--symbols", type=int, default=10)
    s.add_argument("--max-clients", type=int, default=10000)
    ld = sub.add_parser("load", help="(internal) a load-generator process")
    ld.add_argument("--port", type=int, required=True)
    ld.add_argument("--clients", type=int, required=True)
    ld.add_argument("--out", required=True)
    args = p.parse_args(argv)  # --help works without psutil
    try:
        import psutil  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        print("tradeobs loadtest needs psutil: pip install 'tradeobs[loadtest]'", file=sys.stderr)
        return 2
    if args.cmd == "serve":
        return _serve(args)
    if args.cmd == "load":
        return _load(args)
    return _bench(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
