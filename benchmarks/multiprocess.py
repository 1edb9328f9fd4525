"""Multi-process mode (one service, several workers), against one process and prometheus_client's own
multiprocess mode, side by side in one run.

    python benchmarks/multiprocess.py [--sections hotpath,scrape,live] [--workers 4] [--symbols 1000]
                                      [--hot-symbols 100] [--n 200000] [--scrapes 15] [--seconds 20] [--fill-hz 20]

Every configuration runs in fresh processes on this machine; the parent only orchestrates and measures.

``hotpath``: ns per call of a bound counter ``add(1)`` and a bound histogram ``record(v)`` (best of 7 runs of
``--n`` calls, like ``benchmarks/hotpath.py``)

- in a single process (``init()``, multi-process mode off),
- in one worker of ``--workers`` (``init()`` in each, ``multiprocess=on``, the live view watched so every worker
  publishes its snapshot ten times a second in the background; ``--hot-symbols`` symbols of trading
  instruments in each),
- with prometheus_client in its multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``: each value lives in an mmap
  file, written at every call), ``Counter.labels(...).inc()`` and ``Histogram.labels(...).observe(v)``.

``scrape``: milliseconds per ``GET /metrics`` (median of ``--scrapes``, over HTTP, on a warm server) of
``--symbols`` symbols x 7 series (the workload of ``benchmarks/cardinality.py``: a tick counter, a price gauge, a
feed-lag histogram, order counters and a submit->fill histogram for two sides)

- one process with those series,
- ``--workers`` workers with those series each, through the group's leader (it asks every worker for a fresh
  snapshot first, then reads and merges them),
- prometheus_client multiprocess mode: ``--workers`` processes writing the same series, read by
  ``MultiProcessCollector`` in a fifth process serving ``start_http_server``.

``live``: delivery latency of a fill to a live-stream client, from the ``fill()`` call in the service
(``time.time_ns()``, carried in the order id) to the client's receipt of the ``fill`` event, ``--fill-hz`` fills a
second for ``--seconds`` through ``POST /fill`` (a small app: ``benchmarks/_mp_app.py``), under real uvicorn:

- ``--workers`` workers: latency of fills made in a worker other than the one serving the stream (and, for
  reference, in the same one),
- one worker (multi-process mode off).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _ports import free_port

HERE = Path(__file__).resolve().parent


def _get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


def _wait(cond: Any, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise SystemExit(f"benchmark: timed out waiting for {what}")


# --------------------------------------------------------------------------- workloads in the child processes


def _init(port: int, multiprocess: str) -> Any:
    import tradeobs_agent
    from tradeobs_agent import LogOptions, PrometheusOptions

    os.environ["TRADEOBS_MULTIPROCESS"] = multiprocess
    return tradeobs_agent.init(
        service_name="bench-multiprocess",
        otlp=False,
        live=False,
        logs=LogOptions(dir=""),
        prometheus=PrometheusOptions(host="127.0.0.1", port=port),
    )


def _trading_series(n_symbols: int) -> None:
    """Per symbol what an active symbol has (benchmarks/cardinality.py): 7 series."""
    from tradeobs_agent.metrics import get_registry
    from tradeobs_agent.trading.instruments import TradingInstruments

    reg = get_registry()
    reg.max_series = max(reg.max_series, 5 * n_symbols)
    inst = TradingInstruments(reg)
    for i in range(n_symbols):
        sym = f"SYM{i:04d}"
        inst.ticks.bind(symbol=sym).add(1)
        inst.price.bind(symbol=sym).set(100.0 + i)
        inst.feed_lag.bind(symbol=sym).record(0.002)
        for side in ("buy", "sell"):
            a = {"symbol": sym, "side": side, "order_type": "limit", "venue": "paper", "strategy": "s"}
            inst.submitted.bind(**a).add(3)
            inst.submit_to_fill.bind(**a).record(0.004)


def _timeit(fn: Any, arg: Any, n: int) -> float:
    import timeit

    return min(timeit.Timer("f(a)", globals={"f": fn, "a": arg}).repeat(repeat=7, number=n)) / n * 1e9


def _ours_hot(n: int) -> dict[str, float]:
    from tradeobs_agent.metrics import get_registry

    reg = get_registry()
    attrs = {"symbol": "AAPL", "side": "buy", "venue": "paper"}
    c = reg.counter("bench.orders", "{order}").bind(**attrs)
    h = reg.histogram("bench.latency", "s").bind(**attrs)
    return {"add": _timeit(c.add, 1, n), "record": _timeit(h.record, 0.0042, n)}


def _serve_measurements(measure: Any, cmd: Any, out: Any) -> None:
    """Measure each time the parent asks (rounds interleave the configurations: same machine state)."""
    while cmd.get() == "measure":
        out.put(measure())


def child_single_hot(port: int, symbols: int, n: int, cmd: Any, out: Any, stop: Any) -> None:
    _init(port, "off")
    _trading_series(symbols)
    out.put({"ready": os.getpid()})
    _serve_measurements(lambda: _ours_hot(n), cmd, out)


def child_worker(port: int, base: str, symbols: int, n: int, watched: bool, cmd: Any, out: Any, stop: Any) -> None:
    os.environ["TRADEOBS_MULTIPROCESS_DIR"] = base
    agent = _init(port, "on")
    _trading_series(symbols)
    if agent.group is None:
        out.put({"error": "did not join a group"})
        return
    if watched:
        agent.group.live_started()  # as if a browser watched: every worker publishes ten times a second
    out.put({"ready": os.getpid()})

    def measure() -> dict[str, float]:
        c0, t0 = agent.group.cycles, time.monotonic()
        got = _ours_hot(n)
        return {**got, "publishes_per_s": (agent.group.cycles - c0) / (time.monotonic() - t0)}

    if cmd is not None:
        _serve_measurements(measure, cmd, out)
    stop.wait(600)
    import tradeobs_agent

    tradeobs_agent.shutdown(2.0)


def _prom_series(symbols: int) -> tuple[Any, Any, Any, Any, Any]:
    import prometheus_client as pc

    from tradeobs_agent.trading.instruments import LATENCY_BOUNDS

    b = (*LATENCY_BOUNDS, float("inf"))
    ol = ["symbol", "side", "order_type", "venue", "strategy"]
    ticks = pc.Counter("trading_marketdata_ticks", "Ticks", ["symbol"])
    price = pc.Gauge("trading_marketdata_price", "Price", ["symbol"], multiprocess_mode="mostrecent")
    lag = pc.Histogram("trading_marketdata_feed_lag_seconds", "Lag", ["symbol"], buckets=b)
    sub = pc.Counter("trading_orders_submitted", "Submitted", ol)
    fill = pc.Histogram("trading_order_submit_to_fill_latency_seconds", "Fill latency", ol, buckets=b)
    for i in range(symbols):
        sym = f"SYM{i:04d}"
        ticks.labels(sym).inc()
        price.labels(sym).set(100.0 + i)
        lag.labels(sym).observe(0.002)
        for side in ("buy", "sell"):
            sub.labels(sym, side, "limit", "paper", "s").inc(3)
            fill.labels(sym, side, "limit", "paper", "s").observe(0.004)
    return ticks, price, lag, sub, fill


def child_prom_writer(mp_dir: str, symbols: int, n: int, cmd: Any, out: Any, stop: Any) -> None:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = mp_dir
    import prometheus_client as pc

    _prom_series(symbols)
    out.put({"ready": os.getpid()})
    if cmd is not None:
        attrs = ("AAPL", "buy", "paper")
        c = pc.Counter("bench_orders", "x", ["symbol", "side", "venue"]).labels(*attrs)
        h = pc.Histogram("bench_latency_seconds", "x", ["symbol", "side", "venue"]).labels(*attrs)
        _serve_measurements(lambda: {"add": _timeit(c.inc, 1, n), "record": _timeit(h.observe, 0.0042, n)}, cmd, out)
    stop.wait(600)


def child_prom_reader(mp_dir: str, port: int, out: Any, stop: Any) -> None:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = mp_dir
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr="127.0.0.1", registry=registry)
    out.put({"ready": os.getpid()})
    stop.wait(600)


# --------------------------------------------------------------------------- the sections


class Children:
    """Processes of one configuration; always stopped (their stop event, then terminate, then kill)."""

    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.out = self.ctx.Queue()
        self.stop = self.ctx.Event()
        self.procs: list[Any] = []

    def start(self, target: Any, *args: Any) -> None:
        self.start_with(self.out, target, *args)

    def start_with(self, out: Any, target: Any, *args: Any) -> None:
        p = self.ctx.Process(target=target, args=(*args, out, self.stop), daemon=True)
        p.start()
        self.procs.append(p)

    @staticmethod
    def check(got: dict[str, Any], what: str) -> dict[str, Any]:
        if "error" in got:
            raise SystemExit(f"benchmark: {what}: {got['error']}")
        return got

    def get(self, what: str, timeout: float = 120.0) -> dict[str, Any]:
        return self.check(self.out.get(timeout=timeout), what)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(15)
            if p.is_alive():
                p.terminate()
                p.join(5)


def hotpath(args: Any) -> list[tuple[str, dict[str, float]]]:
    """All three configurations run at once; ``--rounds`` rounds ask each in turn for one measurement (best of 7
    runs of ``--n`` calls), so all see the same machine; the table has the best round of each."""
    base = tempfile.mkdtemp(prefix="bench-mp-")
    mp_dir = tempfile.mkdtemp(prefix="bench-prom-mp-")
    names = ["single process", f"worker of {args.workers} (multi-process mode)", "prometheus_client multiprocess"]
    try:
        with Children() as ch:
            cmds = [ch.ctx.Queue() for _ in names]
            outs = [ch.ctx.Queue() for _ in names]
            ch.start_with(outs[0], child_single_hot, free_port(), args.hot_symbols, args.n, cmds[0])
            port = free_port()
            for i in range(args.workers):  # the first worker is measured; the others run as its group
                out, cmd = (outs[1], cmds[1]) if i == 0 else (ch.out, None)
                ch.start_with(out, child_worker, port, base, args.hot_symbols, args.n, True, cmd)
            ch.start_with(outs[2], child_prom_writer, mp_dir, args.hot_symbols, args.n, cmds[2])
            for q in outs:
                ch.check(q.get(timeout=300), "a configuration starting")
            for _ in range(args.workers - 1):
                ch.get("a worker joining")
            time.sleep(1.0)  # the group formed, and publishing
            best: list[dict[str, float]] = [{} for _ in names]
            for _ in range(args.rounds):
                for i, (cmd, out) in enumerate(zip(cmds, outs, strict=True)):
                    cmd.put("measure")
                    got = ch.check(out.get(timeout=600), names[i])
                    for k, v in got.items():
                        if k not in best[i] or (k in ("add", "record") and v < best[i][k]):
                            best[i][k] = v
            for cmd in cmds:
                cmd.put("stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(mp_dir, ignore_errors=True)
    return list(zip(names, best, strict=True))


def _scrape_times(url: str, n: int) -> tuple[float, int]:
    _get(url)  # warm
    times = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        size = len(_get(url))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, size


def _series_in(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def scrape(args: Any) -> list[tuple[str, float, int, int]]:
    rows = []
    with Children() as ch:
        port = free_port()
        ch.start(child_worker_single, port, args.symbols)
        ch.get("the single process")
        url = f"http://127.0.0.1:{port}/metrics"
        ms, size = _scrape_times(url, args.scrapes)
        rows.append(("one process", ms, size, _series_in(_get(url))))
    base = tempfile.mkdtemp(prefix="bench-mp-")
    try:
        with Children() as ch:
            port = free_port()
            for _ in range(args.workers):
                ch.start(child_worker, port, base, args.symbols, 0, args.watched, None)
            for _ in range(args.workers):
                ch.get("a worker joining")
            url = f"http://127.0.0.1:{port}/metrics"
            _wait(lambda: _get(url).count(b"tradeobs_agent_workers_leader{") == args.workers, "every worker")
            ms, size = _scrape_times(url, args.scrapes)
            rows.append((f"{args.workers} workers, through the leader", ms, size, _series_in(_get(url))))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    mp_dir = tempfile.mkdtemp(prefix="bench-prom-mp-")
    try:
        with Children() as ch:
            for _ in range(args.workers):
                ch.start(child_prom_writer, mp_dir, args.symbols, 0, None)
            for _ in range(args.workers):
                ch.get("a prometheus_client writer")
            port = free_port()
            ch.start(child_prom_reader, mp_dir, port)
            ch.get("the prometheus_client reader")
            url = f"http://127.0.0.1:{port}/metrics"
            ms, size = _scrape_times(url, args.scrapes)
            rows.append((f"prometheus_client multiprocess, {args.workers} writers", ms, size, _series_in(_get(url))))
    finally:
        shutil.rmtree(mp_dir, ignore_errors=True)
    return rows


def child_worker_single(port: int, symbols: int, out: Any, stop: Any) -> None:
    _init(port, "off")
    _trading_series(symbols)
    out.put({"ready": os.getpid()})
    stop.wait(600)


# --------------------------------------------------------------------------- live latency


class _Stream:
    """An SSE client: records (receipt ns, event) for every ``fill`` event; knows the serving worker's pid."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", "/telemetry/stream")
        self.resp = self.conn.getresponse()
        self.pid = 0
        self.fills: list[tuple[int, dict[str, Any]]] = []
        self.frames = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        kind = ""
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                if line.startswith(b": tradeobs live ") and b" pid " in line:
                    self.pid = int(line.rsplit(b" ", 1)[1])
                elif line.startswith(b"event: "):
                    kind = line[7:].strip().decode()
                elif line.startswith(b"data: ") and kind == "event":
                    now = time.time_ns()
                    data = json.loads(line[6:])
                    if data.get("kind") == "fill":
                        self.fills.append((now, data))
                elif line.startswith(b"data: ") and kind == "frame":
                    self.frames += 1
                    self._frame(line)
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            return

    def _frame(self, line: bytes) -> None:
        """A frame's ``data:`` line, after it is counted (a subclass reads more of it)."""

    def close(self) -> None:
        self.conn.close()


def _serve(workers: int, tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    port, prom = free_port(), free_port()
    env = {**os.environ, "BENCH_PROM_PORT": str(prom), "TRADEOBS_MULTIPROCESS_DIR": tmp, "PYTHONUNBUFFERED": "1"}
    env["TRADEOBS_MULTIPROCESS"] = "auto" if workers > 1 else "off"
    argv = [sys.executable, "-m", "uvicorn", "--factory", "_mp_app:create_app", "--app-dir", str(HERE)]
    argv += ["--workers", str(workers), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, port


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return err.decode(errors="replace")


def _fill(port: int) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/fill", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        got: dict[str, Any] = json.loads(r.read())
    return got


def live(args: Any) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for workers in (args.workers, 1):
        tmp = tempfile.mkdtemp(prefix="bench-live-")
        proc, port = _serve(workers, tmp)
        try:
            _wait(lambda port=port: _get(f"http://127.0.0.1:{port}/healthz"), "the server")
            if workers > 1:  # every worker up: each has made a fill
                _wait(lambda port=port, w=workers: len({_fill(port)["pid"] for _ in range(4 * w)}) == w, "workers")
            s = _Stream(port)
            _wait(lambda s=s: s.frames >= 3, "frames")
            made: dict[str, int] = {}
            period = 1.0 / args.fill_hz
            t_end = time.monotonic() + args.seconds
            nxt = time.monotonic()
            while time.monotonic() < t_end:
                got = _fill(port)
                made[got["order_id"]] = got["pid"]
                nxt += period
                time.sleep(max(0.0, nxt - time.monotonic()))
            _wait(lambda s=s, made=made: len({d["order_id"] for _, d in s.fills} & set(made)) == len(made), "fills")
            s.close()
            other, same = [], []
            for recv, d in s.fills:
                oid = d["order_id"]
                if oid not in made:
                    continue
                ms = (recv - int(oid.rsplit("-", 1)[1])) / 1e6
                (same if made[oid] == s.pid else other).append(ms)
            if workers > 1:
                rows.append((f"{workers} workers: fill in another worker", _lat(other)))
                rows.append((f"{workers} workers: fill in the stream's worker", _lat(same)))
            else:
                rows.append(("1 worker (multi-process mode off)", _lat(same + other)))
        finally:
            err = _stop(proc)
            shutil.rmtree(tmp, ignore_errors=True)
            if "Traceback" in err:
                print(err[-3000:], file=sys.stderr)
    return rows


def _lat(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0}
    ms = sorted(ms)
    return {
        "n": len(ms),
        "p50": ms[len(ms) // 2],
        "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "max": ms[-1],
    }


# --------------------------------------------------------------------------- report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default="hotpath,scrape,live")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--symbols", type=int, default=1000, help="scrape: symbols (x 7 series) per process")
    ap.add_argument("--hot-symbols", type=int, default=100, help="hotpath: symbols of trading series per process")
    ap.add_argument("--n", type=int, default=200_000, help="hotpath: calls per run (best of 7)")
    ap.add_argument("--rounds", type=int, default=5, help="hotpath: measurements per configuration, interleaved")
    ap.add_argument("--scrapes", type=int, default=15)
    ap.add_argument("--watched", action="store_true", help="scrape: with the live view watched (10 Hz publishing)")
    ap.add_argument("--seconds", type=float, default=20.0, help="live: how long fills are made")
    ap.add_argument("--fill-hz", type=float, default=20.0)
    args = ap.parse_args()
    sections = args.sections.split(",")
    import platform

    print(f"# multiprocess: python {platform.python_version()}, {os.cpu_count()} CPUs, workers={args.workers}")
    if "hotpath" in sections:
        rows = hotpath(args)
        single, _, prom = (r[1] for r in rows)
        print(
            f"\n## hot path: ns per call (best of {args.rounds} interleaved rounds of best-of-7 x {args.n}); "
            f"{args.hot_symbols} symbols of trading series in each process"
        )
        print("| where | bound add(1) | vs single | bound record(v) | vs single | vs prometheus_client mp |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, r in rows:
            print(
                f"| {name} | {r['add']:.1f} | {r['add'] / single['add']:.2f}x | {r['record']:.1f} "
                f"| {r['record'] / single['record']:.2f}x | {r['add'] / prom['add']:.2f}x / "
                f"{r['record'] / prom['record']:.2f}x |"
            )
        w = rows[1][1]
        print(f"the measured worker's group thread ran {w['publishes_per_s']:.1f} publish cycles/s meanwhile")
        ok = max(w["add"] / single["add"], w["record"] / single["record"]) <= 1.5
        ok = ok and w["add"] < prom["add"] and w["record"] < prom["record"]
        print("targets (<= 1.5x single, below prometheus_client multiprocess):", "met" if ok else "NOT met")
    if "scrape" in sections:
        srows = scrape(args)
        one = srows[0][1]
        print(f"\n## scrape: ms per GET /metrics (median of {args.scrapes}); {args.symbols} symbols x 7 series each")
        print("| what | ms | vs one process | bytes | samples |")
        print("|---|---:|---:|---:|---:|")
        for name, ms, size, samples in srows:
            print(f"| {name} | {ms:.1f} | {ms / one:.2f}x | {size:,} | {samples:,} |")
        ours, prom_ms = srows[1][1], srows[2][1]
        print(f"workers vs one process: {ours / one:.2f}x (target <= 3x); vs prometheus_client: {ours / prom_ms:.2f}x")
    if "live" in sections:
        lrows = live(args)
        print(f"\n## live: fill -> client receipt, ms; {args.fill_hz:g} fills/s for {args.seconds:g}s, live_hz 10")
        print("| configuration | fills | p50 ms | p99 ms | max ms | p99 vs 1 worker |")
        print("|---|---:|---:|---:|---:|---:|")
        solo = lrows[-1][1].get("p99")  # the last row: one worker, multi-process mode off
        for name, r in lrows:
            if r["n"]:
                vs = f"{r['p99'] / solo:.2f}x" if solo else "-"
                print(f"| {name} | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {vs} |")
            else:
                print(f"| {name} | 0 | - | - | - | - |")
        print(f"p99, fill in another worker: {lrows[0][1].get('p99', float('nan')):.1f} ms (target <= 200 ms)")


if __name__ == "__main__":
    main()
