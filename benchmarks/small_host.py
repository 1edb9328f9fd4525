"""Does the stack fit a small VPS? RSS, CPU and disk growth of every native process of the compose stack at the
demo's default load (10 symbols), against compose's container limits.

    python benchmarks/small_host.py [--seconds 600] [--interval 5] [--symbols 10] [--small]

Runs natively, with the configs compose ships (only listeners and data directories moved):

- Jaeger v2 on ``compose/jaeger/jaeger.yaml`` (Badger on disk, compose's ``JAEGER_SPAN_TTL``);
- otelcol-tradeobs on ``collector/otel-collector.yaml`` with the environment compose gives it (memory limits,
  GOMEMLIMIT; logs to a file: Loki cannot run here);
- Debian's Prometheus on ``compose/prometheus/prometheus.yml`` (targets moved to loopback, every rule file) with
  compose's retention flags and the admin API (the backup's snapshot);
- Debian's Alertmanager;
- ``tradeobs demo --symbols N`` (compose's demo: 10 Hz ticks, 2 orders/s, metrics every 10 s) sending OTLP to the
  collector and writing its local JSON logs (a bot on the host keeps the default ``./logs``);
- at the end ``compose/backup/backup.sh`` once, natively, for the size of one backup.

``--small`` runs with ``compose/docker-compose.small.yml``'s values (the small-host profile) instead of the base
file's. Prints, per process: RSS at about 2 minutes and at the end (median of the samples in the 30 s before each),
the peak, the mean CPU (cores) after the warm-up, and compose's memory limit; then per store: bytes on disk at the
end and the growth rate extrapolated to a day (least squares after the warm-up). Figures on a shared, loaded
machine: compare within a run; sizes depend on the load, not on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from tests.integration.agent_proc import agent_env  # noqa: E402
from tests.integration.procs import (  # noqa: E402
    COMPOSE_JAEGER_CONFIG,
    ManagedProcess,
    free_port,
    http_ok,
    start_alertmanager,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)
from tests.integration.test_dashboards import COMPOSE_EXPORT_INTERVAL, compose_prometheus_config  # noqa: E402

COMPOSE = REPO / "compose" / "docker-compose.yml"
SMALL = REPO / "compose" / "docker-compose.small.yml"
MIB = 1024 * 1024
CLK = os.sysconf("SC_CLK_TCK")


def _services(small: bool) -> dict[str, dict]:  # type: ignore[type-arg]
    """compose's services, with the small-host override's keys merged over them when ``small``."""
    base = yaml.safe_load(COMPOSE.read_text())["services"]
    if small:
        for name, over in (yaml.safe_load(SMALL.read_text()).get("services") or {}).items():
            svc = base.setdefault(name, {})
            for key, value in over.items():
                if isinstance(value, dict) and isinstance(svc.get(key), dict):
                    svc[key] = {**svc[key], **value}
                else:
                    svc[key] = value
    return dict(base)


def _env_default(value: str) -> str:
    """``${NAME:-default}`` -> default (what compose substitutes with no .env entry); other values as they are."""
    if value.startswith("${") and ":-" in value:
        return value.split(":-", 1)[1].rstrip("}")
    return value


def _limit_mib(svc: dict) -> float:  # type: ignore[type-arg]
    mem = str(svc["deploy"]["resources"]["limits"]["memory"])
    units = {"K": 1 / 1024, "M": 1, "G": 1024}
    return float(mem[:-1]) * units[mem[-1].upper()]


def _flag(svc: dict, name: str) -> str:  # type: ignore[type-arg]
    for arg in svc.get("command", []):
        if arg.startswith(f"--{name}="):
            return _env_default(arg.split("=", 1)[1])
    raise KeyError(name)


def _rss_cpu(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds user+system) of a live process."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / CLK


def _disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (st_blocks: sparse files count what they use)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def _metric_sum(base_url: str, name: str) -> float:
    """Sum of a metric's samples on a /metrics page (``name`` or ``name_total``)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        metric = line.split("{", 1)[0].split(" ", 1)[0]
        if metric in (name, f"{name}_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    return statistics.linear_regression([p[0] for p in points], [p[1] for p in points]).slope


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--small", action="store_true", help="compose/docker-compose.small.yml's values")
    args = ap.parse_args()

    svcs = _services(args.small)
    col_env = {k: _env_default(str(v)) for k, v in svcs["otel-collector"]["environment"].items()}
    tmp = Path(tempfile.mkdtemp(prefix="tradeobs-small-host-"))
    with ExitStack() as stack:
        jaeger = stack.enter_context(
            start_jaeger(
                tmp / "jaeger",
                config=COMPOSE_JAEGER_CONFIG,
                extra_env={
                    "JAEGER_BADGER_DIR": str(tmp / "badger"),
                    "JAEGER_SPAN_TTL": _env_default(svcs["jaeger"]["environment"]["JAEGER_SPAN_TTL"]),
                    **{
                        k: _env_default(str(v))
                        for k, v in svcs["jaeger"]["environment"].items()
                        if k == "GOMEMLIMIT" or k.startswith("JAEGER_MEMORY")
                    },
                },
            )
        )
        collector = stack.enter_context(
            start_collector(
                tmp / "collector",
                jaeger.otlp_grpc_endpoint,
                extra_env={
                    k: col_env[k]
                    for k in ("TRADEOBS_MEMORY_LIMIT_MIB", "TRADEOBS_MEMORY_SPIKE_LIMIT_MIB", "GOMEMLIMIT")
                    if k in col_env
                },
            )
        )
        am = stack.enter_context(start_alertmanager(tmp / "alertmanager"))
        port = free_port()
        targets = {
            "otel-collector:8889": collector.prometheus_exporter_target,
            "otel-collector:8888": collector.metrics_target,
            "jaeger:8888": jaeger.metrics_target,
            "alertmanager:9093": am.target,
        }
        config, _dropped = compose_prometheus_config(targets, am.target, port)
        prom_svc = svcs["prometheus"]
        prom_env = {k: _env_default(str(v)) for k, v in prom_svc.get("environment", {}).items() if k == "GOMEMLIMIT"}
        prom = stack.enter_context(
            start_prometheus(
                tmp / "prometheus",
                config,
                port=port,
                env={"TRADEOBS_RUNBOOK_URL": "http://runbook.invalid/runbook.md", **prom_env},
                flags=(
                    f"--storage.tsdb.retention.time={_flag(prom_svc, 'storage.tsdb.retention.time')}",
                    f"--storage.tsdb.retention.size={_flag(prom_svc, 'storage.tsdb.retention.size')}",
                    "--web.enable-admin-api",
                ),
            )
        )
        demo_dir = tmp / "demo"
        demo_dir.mkdir()
        demo_port = free_port()
        env = {
            **agent_env(collector, demo_dir, "small-host-demo", COMPOSE_EXPORT_INTERVAL),
            "PYTHONPATH": str(REPO / "agent"),
            "PATH": os.environ["PATH"],
        }
        argv = [sys.executable, "-m", "tradeobs_agent.cli", "demo", "--port", str(demo_port)]
        demo = ManagedProcess("demo", [*argv, "--symbols", str(args.symbols)], env, demo_dir)
        stack.callback(demo.stop)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{demo_port}/readyz"), "the demo", timeout=60, procs=(demo,))

        procs = {
            "prometheus": prom.proc,
            "jaeger": jaeger.proc,
            "otel-collector": collector.proc,
            "alertmanager": am.proc,
            "trading-demo": demo,
        }
        stores = {
            "prometheus TSDB (all)": tmp / "prometheus" / "data",
            "  of which wal/": tmp / "prometheus" / "data" / "wal",
            "jaeger Badger": tmp / "badger",
            "agent ./logs (JSON logs)": demo_dir / "logs",
            "collector queue": collector.storage_dir,
        }
        t0 = time.monotonic()
        samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in procs}
        disk: dict[str, list[tuple[float, float]]] = {n: [] for n in stores}
        while (now := time.monotonic() - t0) < args.seconds:
            for name, p in procs.items():
                p.check_alive()
                samples[name].append((now, *_rss_cpu(p.pid)))
            for name, path in stores.items():
                disk[name].append((now, _disk_bytes(path)))
            time.sleep(args.interval)

        end = time.monotonic() - t0
        # Refusals (memory_limiter) and Go heaps, from the processes' own metrics.
        heaps = {
            "jaeger": _metric_sum(jaeger.metrics_url, "otelcol_process_runtime_heap_alloc_bytes"),
            "otel-collector": _metric_sum(collector.metrics_url, "otelcol_process_runtime_heap_alloc_bytes"),
            "prometheus": _metric_sum(prom.url, "go_memstats_heap_alloc_bytes"),
        }
        refused = {
            "jaeger": _metric_sum(jaeger.metrics_url, "otelcol_receiver_refused_spans"),
            "otel-collector": sum(
                _metric_sum(collector.metrics_url, f"otelcol_receiver_refused_{s}")
                for s in ("spans", "metric_points", "log_records")
            ),
        }
        spans = _metric_sum(collector.metrics_url, "otelcol_receiver_accepted_spans")
        out = tmp / "backups"
        res = subprocess.run(
            ["sh", str(REPO / "compose" / "backup" / "backup.sh")],
            env={
                "PATH": os.environ["PATH"],
                "PROMETHEUS_URL": prom.url,
                "PROMETHEUS_DATA_DIR": str(tmp / "prometheus" / "data"),
                "BACKUP_DIR": str(out),
                "BACKUP_KEEP": "1",
                "BACKUP_VOLUMES": f"jaeger={tmp / 'badger'}",
                "BACKUP_TEXTFILE_DIR": str(tmp / "textfile"),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        backup_bytes = _disk_bytes(out) if res.returncode == 0 else -1

    print(f"\n{args.symbols} symbols, {end / 60:.1f} min, {'small-host profile' if args.small else 'compose defaults'}")
    print("| process        | RSS MiB @2m | @end | peak | growth MiB/h | CPU cores | compose limit MiB |")
    print("|----------------|------------:|-----:|-----:|-------------:|----------:|------------------:|")
    for name, s in samples.items():

        def around(t: float, s: list[tuple[float, float, float]] = s) -> float:
            window = [r for at, r, _ in s if t - 30 <= at <= t]
            return statistics.median(window) if window else float("nan")

        after = [(at, r) for at, r, _ in s if at >= args.warmup]
        cpu = (s[-1][2] - next(c for at, _, c in s if at >= args.warmup)) / (s[-1][0] - args.warmup)
        print(
            f"| {name:<14} | {around(120):11.0f} | {around(s[-1][0]):4.0f} | {max(r for _, r, _ in s):4.0f} "
            f"| {_slope(after) * 3600:12.1f} | {cpu:9.3f} | {_limit_mib(svcs[name]):17.0f} |"
        )
    print("\n| store                    | MiB at end | growth MiB/day (extrapolated) |")
    print("|--------------------------|-----------:|------------------------------:|")
    for name, d in disk.items():
        after = [(at, b / MIB) for at, b in d if at >= args.warmup]
        print(f"| {name:<24} | {d[-1][1] / MIB:10.1f} | {_slope(after) * 86400:29.0f} |")
    if backup_bytes >= 0:
        print(f"| one backup (tar.gz)      | {backup_bytes / MIB:10.1f} | (of {end / 60:.0f} min of data) |")
    else:
        print(f"backup.sh failed: {res.stderr[-400:]}")
    print("\n| process        | Go heap MiB at end | items refused (memory_limiter) |")
    print("|----------------|-------------------:|-------------------------------:|")
    for name, heap in heaps.items():
        print(f"| {name:<14} | {heap / MIB:18.0f} | {refused.get(name, float('nan')):30.0f} |")
    print(f"spans accepted by the collector: {spans:.0f} ({spans / end:.1f}/s)")
    print(
        f"(data kept in {tmp}: the trace store's size after Jaeger closed Badger, memtable flushed: "
        f"{_disk_bytes(tmp / 'badger') / MIB:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
