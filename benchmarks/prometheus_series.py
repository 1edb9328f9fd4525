"""What active series cost one Prometheus vs the Thanos store (2 receive nodes, replication factor 2), same run.

    python benchmarks/prometheus_series.py [--series 0,10000,...,300000] [--window 60] [--max-rss-gib 5.5]

For each series count N, fresh processes (each N starts from empty TSDBs, so an N's memory holds no
history of the previous one, and the N = 0 run gives each process's fixed cost to subtract):

* a synthetic scrape target in this process: a Prometheus text exposition of exactly N series shaped like
  tradeobs' trading series (:func:`render`): per service/instance/symbol/strategy, order counters by side,
  tick counter, position and P&L gauges, staleness, and a 12-bucket submit-to-fill histogram, 25 series in
  all. ``VARIANTS`` renderings with different values are made beforehand and served in turn, so every
  series gets a new value at every scrape (a counter falls back every ``VARIANTS`` scrapes: storage does not
  care, and rendering 200,000 lines per scrape here would take the CPU the processes measured need);
* ``prometheus (rw)``: Debian's Prometheus (tests/integration/procs.py ``start_prometheus``, its own TSDB)
  scraping the target every 5 s (``honor_labels``, as compose scrapes the collector) and ``remote_write``-ing
  every sample to the store with the settings of compose/prometheus/prometheus-store.yml;
* ``prometheus (alone)``: a second Prometheus scraping the same target with no ``remote_write``: what one
  Prometheus costs without the store (remote write keeps its own copy of every series' labels);
* the store: tests/integration/thanos.py ``start_thanos``, 2 ``thanos receive`` nodes in one hashring with
  replication factor 2 (each node holds every series) and ``thanos query``.

After every process's head holds the N series (``prometheus_tsdb_head_series``: Prometheus' own and each
receive node's) and ``--settle`` more scrapes, a ``--window`` of seconds is measured: RSS (VmRSS from
/proc/<pid>/status, the highest of the samples taken every 5 s) and CPU seconds (utime + stime from
/proc/<pid>/stat, all threads) of each process; the target's scrape duration (``scrape_duration_seconds``, mean
and max over the window); remote write's pending and failed samples and its lag (highest appended timestamp
minus highest sent, the most seen in the window). ``B/series`` is (RSS at N - RSS at N = 0) / N for the same
process role; ``CPU/1k`` is % of a core per 1,000 samples/s ingested (N / 5 s). Everything runs on this
machine's 2 shared cores (other work included): CPU figures compare processes within one run. Results:
docs/scaling.md ("Metrics beyond one Prometheus").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.procs import (  # noqa: E402
    ManagedProcess,
    free_port,
    http_get,
    prometheus_query,
    start_prometheus,
)
from tests.integration.thanos import remote_write_config, start_thanos  # noqa: E402

SCRAPE_INTERVAL_S = 5
VARIANTS = 6
SIDES = ("buy", "sell")
LATENCY_BUCKETS = ("0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")
# (name, type, sides?) for the plain series of one unit
_PLAIN = (
    ("trading_orders_submitted_total", "counter", True),
    ("trading_orders_filled_total", "counter", True),
    ("trading_orders_rejected_total", "counter", True),
    ("trading_marketdata_ticks_total", "counter", False),
    ("trading_position_quantity", "gauge", False),
    ("trading_position_notional", "gauge", False),
    ("trading_pnl_unrealized", "gauge", False),
    ("trading_marketdata_staleness_seconds", "gauge", False),
)
HISTOGRAM = "trading_order_submit_to_fill_latency_seconds"
SERIES_PER_UNIT = sum(2 if sided else 1 for _, _, sided in _PLAIN) + len(LATENCY_BUCKETS) + 2  # + _sum, _count
SERVICES = ("strategy-a", "strategy-b", "execution", "risk", "marketdata")
INSTANCES_PER_SERVICE = 2
STRATEGIES = ("mean-rev-1", "momentum-2", "pairs-3", "market-make-4")


def units(n_units: int) -> list[str]:
    """The label sets (service, instance, symbol, strategy) of ``n_units`` units, rendered once."""
    out: list[str] = []
    symbol = 0
    while len(out) < n_units:
        for s, service in enumerate(SERVICES):
            for i in range(INSTANCES_PER_SERVICE):
                for strategy in STRATEGIES:
                    if len(out) == n_units:
                        return out
                    out.append(
                        f'service="{service}",instance="host-{s:02d}-{i}:9464",'
                        f'symbol="SYM{symbol:05d}",strategy="{strategy}"'
                    )
        symbol += 1
    return out


def render(series: int, variant: int) -> bytes:
    """A text exposition (format 0.0.4) with exactly ``series`` series (a multiple of SERIES_PER_UNIT: rounded
    down); ``variant`` changes every value (histogram buckets stay cumulative)."""
    labels = units(series // SERIES_PER_UNIT)
    lines: list[str] = []
    v = variant
    for name, kind, sided in _PLAIN:
        lines.append(f"# HELP {name} synthetic {kind} (benchmarks/prometheus_series.py)")
        lines.append(f"# TYPE {name} {kind}")
        for j, lbl in enumerate(labels):
            if sided:
                for k, side in enumerate(SIDES):
                    lines.append(f'{name}{{{lbl},side="{side}"}} {(j * 7 + k) % 1000 + v * (k + 3)}')
            elif kind == "counter":
                lines.append(f"{name}{{{lbl}}} {(j * 13) % 10000 + v * 17}")
            else:
                lines.append(f"{name}{{{lbl}}} {((j * 31 + v * 7) % 2001 - 1000) / 8}")
    lines.append(f"# HELP {HISTOGRAM} synthetic histogram (benchmarks/prometheus_series.py)")
    lines.append(f"# TYPE {HISTOGRAM} histogram")
    for j, lbl in enumerate(labels):
        base = j % 5 + v
        count = 0
        for b, le in enumerate(LATENCY_BUCKETS):
            count += base + b
            lines.append(f'{HISTOGRAM}_bucket{{{lbl},le="{le}"}} {count}')
        lines.append(f"{HISTOGRAM}_sum{{{lbl}}} {count * 0.0125 + v * 0.001:.6f}")
        lines.append(f"{HISTOGRAM}_count{{{lbl}}} {count}")
    return ("\n".join(lines) + "\n").encode()


class Target:
    """The scrape target: each path (one per scraping Prometheus) serves the renderings in turn."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = [render(0, 0)]
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with target._lock:
                    n = target._served.get(self.path, 0)
                    target._served[self.path] = n + 1
                    body = target.bodies[n % len(target.bodies)]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="target", daemon=True).start()

    def set_series(self, series: int) -> None:
        bodies = [render(series, v) for v in range(VARIANTS)]
        with self._lock:
            self.bodies = bodies
            self._served.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_yaml(target: str, path: str) -> str:
    return (
        "# Generated by benchmarks/prometheus_series.py\n"
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
        f"  scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
        "  external_labels:\n"
        "    bench: series\n"
        "scrape_configs:\n"
        "  - job_name: synthetic\n"
        "    honor_labels: true\n"
        f"    metrics_path: {path}\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )


# ---------------------------------------------------------------- reading the processes


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def metric_sum(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (with these label values) on a /metrics page."""
    status, body = http_get(f"{url}/metrics", timeout=20)
    if status != 200:
        raise ValueError(f"{url}/metrics: {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if not line.startswith(name) or line[len(name) : len(name) + 1] not in ("{", " "):
            continue
        if any(f'{k}="{v}"' not in line for k, v in labels.items()):
            continue
        total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Role:
    name: str
    proc: ManagedProcess
    url: str  # its own /metrics
    rss: list[int] = field(default_factory=list)
    cpu0: float = 0.0
    cpu_s: float = 0.0
    head_series: float = 0.0


@dataclass
class Result:
    series: int
    window_s: float
    roles: dict[str, Role]
    scrape_mean_s: float
    scrape_max_s: float
    rw_pending_max: float
    rw_failed: float
    rw_retried: float
    rw_lag_max_s: float
    load: tuple[float, float]


def head_series(role: Role) -> float:
    return metric_sum(role.url, "prometheus_tsdb_head_series")


def rw_lag(url: str) -> float:
    highest = metric_sum(url, "prometheus_remote_storage_highest_timestamp_in_seconds")
    sent = metric_sum(url, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds")
    return max(0.0, highest - sent)


@contextmanager
def setup(tmp: Path, target: Target) -> Iterator[dict[str, Role]]:
    with ExitStack() as stack:
        store = stack.enter_context(start_thanos(tmp / "thanos"))
        rw = stack.enter_context(
            start_prometheus(
                tmp / "prom-rw",
                prometheus_yaml(target.address, "/rw") + remote_write_config(store.remote_write_url),
            )
        )
        alone = stack.enter_context(start_prometheus(tmp / "prom-alone", prometheus_yaml(target.address, "/alone")))
        roles = {
            "prometheus (rw)": Role("prometheus (rw)", rw.proc, rw.url),
            "prometheus (alone)": Role("prometheus (alone)", alone.proc, alone.url),
        }
        for n in store.nodes:
            assert n.proc is not None
            roles[f"receive-{n.index}"] = Role(f"receive-{n.index}", n.proc, f"http://{n.http}")
        yield roles


def measure(tmp: Path, target: Target, series: int, settle: int, window: float) -> Result:
    target.set_series(series)
    with setup(tmp, target) as roles:
        rw = roles["prometheus (rw)"]
        # every head holds the N series (+ the 5 per-target series: up, scrape_*), then `settle` more scrapes
        deadline = time.monotonic() + 180
        while True:
            for r in roles.values():
                r.proc.check_alive()
            counts = {k: head_series(r) for k, r in roles.items()}
            if all(c >= series for c in counts.values()):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"N={series}: heads did not reach the series in 180 s: {counts}")
            time.sleep(1)
        print(f"  N={series}: heads {counts}; settling {settle} scrapes", file=sys.stderr, flush=True)
        time.sleep(settle * SCRAPE_INTERVAL_S)
        failed0 = metric_sum(rw.url, "prometheus_remote_storage_samples_failed_total")
        retried0 = metric_sum(rw.url, "prometheus_remote_storage_samples_retried_total")
        for r in roles.values():
            r.cpu0 = cpu_seconds(r.proc.pid)
        load0 = os.getloadavg()[0]
        start = time.time()
        t0 = time.monotonic()
        pending_max = lag_max = 0.0
        while True:
            for r in roles.values():
                r.proc.check_alive()
                r.rss.append(rss_bytes(r.proc.pid))
            pending_max = max(pending_max, metric_sum(rw.url, "prometheus_remote_storage_samples_pending"))
            lag_max = max(lag_max, rw_lag(rw.url))
            if time.monotonic() - t0 >= window:
                break
            time.sleep(SCRAPE_INTERVAL_S)
        elapsed = time.monotonic() - t0
        for r in roles.values():
            r.cpu_s = cpu_seconds(r.proc.pid) - r.cpu0
            r.head_series = head_series(r)
        rng = f"{max(1, round(time.time() - start))}s"
        sel = 'scrape_duration_seconds{job="synthetic"}'
        mean = prometheus_query(rw.url, f"avg_over_time({sel}[{rng}])")
        peak = prometheus_query(rw.url, f"max_over_time({sel}[{rng}])")
        return Result(
            series=series,
            window_s=elapsed,
            roles=roles,
            scrape_mean_s=float(mean[0]["value"][1]) if mean else float("nan"),
            scrape_max_s=float(peak[0]["value"][1]) if peak else float("nan"),
            rw_pending_max=pending_max,
            rw_failed=metric_sum(rw.url, "prometheus_remote_storage_samples_failed_total") - failed0,
            rw_retried=metric_sum(rw.url, "prometheus_remote_storage_samples_retried_total") - retried0,
            rw_lag_max_s=lag_max,
            load=(load0, os.getloadavg()[0]),
        )


# ---------------------------------------------------------------- report


def mib(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def report(results: list[Result]) -> None:
    base = next((r for r in results if r.series == 0), None)
    names = list(results[0].roles)

    def per_series(r: Result, name: str) -> float:
        if base is None or r.series == 0:
            return float("nan")
        return (max(r.roles[name].rss) - max(base.roles[name].rss)) / r.series

    def cpu(r: Result, name: str) -> float:
        return 100 * r.roles[name].cpu_s / r.window_s

    print(
        f"\nActive series: Debian Prometheus 2.42 scraping a synthetic target every {SCRAPE_INTERVAL_S} s, one "
        "with remote_write (rw) to Thanos receive x2 (replication factor 2: each node holds every series), one "
        f"without (alone); fresh processes per N; all on this machine's {os.cpu_count()} shared cores, with "
        "other work running.\n"
    )
    print("Memory: RSS MiB, the most seen in the window (bytes per series: (RSS - RSS at N=0) / N)")
    print("| N series | head series prom / recv-0 / recv-1 |" + "".join(f" {n} |" for n in names))
    print("|---:|---:|" + "---:|" * len(names))
    for r in results:
        row = (
            f"| {r.series:,} | {r.roles[names[0]].head_series:,.0f} / {r.roles['receive-0'].head_series:,.0f}"
            f" / {r.roles['receive-1'].head_series:,.0f} |"
        )
        for n in names:
            b = per_series(r, n)
            row += f" {mib(max(r.roles[n].rss))}" + (f" ({b:,.0f} B)" if r.series else "") + " |"
        print(row)

    print(
        f"\nCPU: % of one core over the window (per 1,000 samples/s ingested, N / {SCRAPE_INTERVAL_S} s); "
        "scrape duration of the target; remote write of prometheus (rw) in the window"
    )
    print(
        "| N series | window s |"
        + "".join(f" {n} |" for n in names)
        + " scrape ms mean / max | rw pending max / failed / retried | rw lag max s | load avg |"
    )
    print("|---:|---:|" + "---:|" * (len(names) + 4))
    for r in results:
        row = f"| {r.series:,} | {r.window_s:.0f} |"
        for n in names:
            pct = cpu(r, n)
            row += f" {pct:.1f}" + (f" ({pct / (r.series / SCRAPE_INTERVAL_S / 1000):.2f})" if r.series else "") + " |"
        row += (
            f" {1000 * r.scrape_mean_s:,.0f} / {1000 * r.scrape_max_s:,.0f} | {r.rw_pending_max:,.0f} /"
            f" {r.rw_failed:,.0f} / {r.rw_retried:,.0f} | {r.rw_lag_max_s:.1f} | {r.load[0]:.1f}-{r.load[1]:.1f} |"
        )
        print(row)

    print("\nThe store vs one Prometheus (alone): bytes per series, and CPU % in the window")
    print(
        "| N series | B/series: one receive node / alone | both nodes / alone | rw / alone |"
        " CPU: one receive node (mean) / alone | both nodes / alone | rw / alone |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if r.series == 0 or base is None:
            continue
        alone, rw = per_series(r, "prometheus (alone)"), per_series(r, "prometheus (rw)")
        recv = per_series(r, "receive-0") + per_series(r, "receive-1")
        c_alone, c_rw = cpu(r, "prometheus (alone)"), cpu(r, "prometheus (rw)")
        c_recv = cpu(r, "receive-0") + cpu(r, "receive-1")

        def vs(x: float, peer: float, digits: int) -> str:  # "-": the peer measured nothing (a short --window)
            return f"{x / peer:.{digits}f}" if peer > 0 else "-"

        print(
            f"| {r.series:,} | {vs(recv / 2, alone, 2)} | {vs(recv, alone, 2)} | {vs(rw, alone, 2)} |"
            f" {vs(c_recv / 2, c_alone, 1)} | {vs(c_recv, c_alone, 1)} | {vs(c_rw, c_alone, 1)} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default="0,10000,50000,100000,200000,300000", help="series counts, one run each")
    ap.add_argument("--settle", type=int, default=6, help="scrapes after the heads hold the series")
    ap.add_argument("--window", type=float, default=60.0, help="seconds measured")
    ap.add_argument("--max-rss-gib", type=float, default=5.5, help="skip an N predicted to need more, all summed")
    args = ap.parse_args()
    counts = [int(s) for s in args.series.split(",")]
    for n in counts:
        if n % SERIES_PER_UNIT:
            raise SystemExit(f"--series: {n} is not a multiple of {SERIES_PER_UNIT} (series per unit)")

    results: list[Result] = []
    target = Target()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-series-") as d:
            for n in counts:
                base = next((r for r in results if r.series == 0), None)
                last = results[-1] if results and results[-1].series else None
                if base is not None and last is not None:
                    per = sum(max(x.rss) - max(base.roles[k].rss) for k, x in last.roles.items()) / last.series
                    need = sum(max(x.rss) for x in base.roles.values()) + per * n
                    if need > args.max_rss_gib * 2**30:
                        print(f"N={n}: skipped, predicted {need / 2**30:.1f} GiB in all", file=sys.stderr)
                        continue
                t = time.monotonic()
                res = measure(Path(d) / f"n{n}", target, n, args.settle, args.window)
                results.append(res)
                rss = ", ".join(f"{k} {mib(max(r.rss))} MiB" for k, r in res.roles.items())
                print(f"  N={n}: {rss} ({time.monotonic() - t:.0f} s)", file=sys.stderr, flush=True)
    finally:
        target.close()
    report(results)


if __name__ == "__main__":
    main()
