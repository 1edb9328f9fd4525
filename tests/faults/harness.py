"""The fault tests' harness: the demo service, a pipeline whose parts can be killed, and the accounting.

>>> with Pipeline(tmp_path) as pipe, DemoService(pipe, tmp_path / "svc") as svc:     # doctest: +SKIP
...     t0 = time.time(); time.sleep(20); steps = svc.samples(t0, time.time())["step"]
...     pipe.kill_collector(); ...; pipe.start_collector()
...     svc.stop()                                  # SIGTERM: the agent's own shutdown, timed (svc.final)
...     account = spans_account(svc, pipe)          # recorded == arrived + counted dropped?

- :class:`Pipeline`: our collector (``collector/otel-collector.yaml``), Jaeger v2 as the trace store and Debian
  Prometheus scraping the collector, from ``tests/integration/procs.py``, each on free loopback ports and
  restartable on the same ports and disk queue. The collector's file log exporter truncates its file when it
  starts, so every collector run writes its own file (``logs-<run>.jsonl``).
- :class:`DemoService`: ``tests/faults/demo_service.py`` (the demo, really served, plus its step timer and control
  server) in its own process, exporting to the pipeline (or to any OTLP endpoint: a fault proxy, a refusing
  server). It writes every span it ends to a local trace file as well (``TRADEOBS_TRACES_FILE``): that file and
  its JSON log files are the record of what the service asked the agent to send.
- The accounting: what was recorded (the local files), what arrived (Jaeger, the collector's log files,
  Prometheus), what the agent counted as dropped (its self-metrics after its shutdown).
- :func:`distribution`: p50/p99/p99.9/max of the step latencies and loop lags, in milliseconds.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import statistics
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.procs import (
    COMPOSE_JAEGER_CONFIG,
    READY_TIMEOUT,
    CollectorProc,
    JaegerProc,
    ManagedProcess,
    PrometheusProc,
    free_port,
    http_get,
    http_ok,
    jaeger_search,
    prometheus_config,
    prometheus_query,
    read_otlp_json_logs,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)

HERE = Path(__file__).resolve().parent
SERVICE_SCRIPT = HERE / "demo_service.py"
# The load every fault test holds (the "steady load"): the demo at 50 orders/s over 10 symbols,
# market data at its default 10 steps/s (100 ticks/s).
ORDERS_HZ = 50.0
SYMBOLS = 10
TICK_HZ = 10.0
LOAD = f"demo, {ORDERS_HZ:g} orders/s, {SYMBOLS} symbols, {TICK_HZ * SYMBOLS:g} ticks/s"
# Spans of the trading layer (order traces); request spans of the FastAPI app are not counted (the collector's
# noise filter drops the health checks on purpose).
TRADING_SCOPE = "tradeobs.trading"


# --------------------------------------------------------------------------- the pipeline


class Pipeline:
    """Jaeger + our collector + Prometheus (+ a log store), each stoppable and restartable on the same ports and
    storage.

    ``trace_store="badger"`` runs Jaeger with the compose config (``compose/jaeger/jaeger.yaml``: badger on disk,
    so a restarted trace store still has what it stored); the default is the in-memory test config.
    ``log_store=True`` sends the collector's logs over OTLP/HTTP (``otlp_http/logs``, with its disk queue, as in
    compose) to a second otelcol-tradeobs standing in for Loki (which runs only as an image, in compose/), which
    writes them to files; otherwise the collector writes them to files itself (``file/logs``, no queue).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        prometheus: bool = True,
        trace_store: str = "memory",
        log_store: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.extra_env = dict(extra_env or {})
        self.collector_runs = 0
        self.kills: list[float] = []  # epoch times of the collector's SIGKILLs
        self._files: list[Path] = []
        self._store_files: list[Path] = []
        self.collector: CollectorProc | None = None
        self.log_store: CollectorProc | None = None
        self._collector_env: dict[str, str] | None = None
        self._store_env: dict[str, str] | None = None
        self.prometheus: PrometheusProc | None = None
        self._jaeger_args: dict[str, Any] = {}
        if trace_store == "badger":
            self._jaeger_args = {
                "config": COMPOSE_JAEGER_CONFIG,
                "extra_env": {"JAEGER_BADGER_DIR": str(workdir / "badger")},
            }
        elif trace_store != "memory":
            raise ValueError(f"trace_store={trace_store!r}: expected 'memory' or 'badger'")
        self.jaeger: JaegerProc | None = start_jaeger(workdir / "jaeger", **self._jaeger_args)
        self._jaeger_env = self.jaeger.env
        try:
            if log_store:
                self.start_log_store()
                assert self.log_store is not None
                self.extra_env.update(
                    TRADEOBS_LOGS_EXPORTERS="[otlp_http/logs]",
                    TRADEOBS_LOGS_OTLPHTTP_ENDPOINT=self.log_store.otlp_http_endpoint,
                )
            self.start_collector()
            if prometheus:
                self.start_prometheus()
        except BaseException:
            self.stop()
            raise

    @property
    def log_files(self) -> list[Path]:
        """Where the service's log records end up: the log store's files, else the collector's (one per run)."""
        return list(self._store_files or self._files)

    # -- the collector
    def start_collector(self, extra_env: dict[str, str] | None = None) -> CollectorProc:
        self.collector_runs += 1
        log_file = self.workdir / "collector" / f"logs-{self.collector_runs}.jsonl"
        self._files.append(log_file)
        env = {**self.extra_env, **(extra_env or {}), "TRADEOBS_LOGS_FILE_PATH": str(log_file)}
        traces = self._jaeger_env["JAEGER_OTLP_GRPC_ENDPOINT"]
        self.collector = start_collector(self.workdir / "collector", traces, env=self._collector_env, extra_env=env)
        self._collector_env = self.collector.env
        return self.collector

    def kill_collector(self) -> None:
        """SIGKILL: nothing is flushed, nothing drains (the time is kept in ``kills``)."""
        assert self.collector is not None
        _kill(self.collector.proc)
        self.kills.append(time.time())
        self.collector = None

    def stop_collector(self) -> None:
        """SIGTERM: a planned stop (the collector drains into its disk queue)."""
        assert self.collector is not None
        self.collector.stop()
        assert self.collector.proc.popen.returncode == 0, self.collector.describe()
        self.collector = None

    @property
    def otlp_endpoint(self) -> str:
        """The collector's OTLP/gRPC endpoint, also while it is down (same port after a restart)."""
        assert self._collector_env is not None
        return f"http://{self._collector_env['TRADEOBS_OTLP_GRPC_ENDPOINT']}"

    # -- the log store
    def start_log_store(self) -> CollectorProc:
        n = len(self._store_files) + 1
        out = self.workdir / "logstore" / f"logs-{n}.jsonl"
        self._store_files.append(out)
        # Its own traces pipeline is unused: it points at a port where nothing listens.
        self.log_store = start_collector(
            self.workdir / "logstore", f"127.0.0.1:{free_port()}", env=self._store_env,
            extra_env={"TRADEOBS_LOGS_EXPORTERS": "[file/logs]", "TRADEOBS_LOGS_FILE_PATH": str(out)},
        )  # fmt: skip
        self._store_env = self.log_store.env
        return self.log_store

    def stop_log_store(self) -> None:
        assert self.log_store is not None
        self.log_store.stop()
        self.log_store = None

    # -- the trace store
    def kill_jaeger(self) -> None:
        assert self.jaeger is not None
        _kill(self.jaeger.proc)
        self.jaeger = None

    def stop_jaeger(self) -> None:
        assert self.jaeger is not None
        self.jaeger.stop()
        self.jaeger = None

    def start_jaeger(self) -> JaegerProc:
        """Same ports; in memory (the default) a restarted Jaeger starts empty, with badger it keeps what it had."""
        self.jaeger = start_jaeger(self.workdir / "jaeger", env=self._jaeger_env, **self._jaeger_args)
        return self.jaeger

    # -- Prometheus
    def start_prometheus(self) -> PrometheusProc:
        assert self._collector_env is not None
        exporter = self._collector_env["TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT"]
        metrics = f"{self._collector_env['TRADEOBS_COLLECTOR_METRICS_HOST']}:"
        metrics += self._collector_env["TRADEOBS_COLLECTOR_METRICS_PORT"]
        self.prometheus = start_prometheus(self.workdir / "prometheus", prometheus_config(exporter, metrics))
        self._prometheus_port = int(self.prometheus.url.rsplit(":", 1)[1])
        return self.prometheus

    def kill_prometheus(self) -> None:
        """SIGKILL; the TSDB (its WAL) stays in the work directory."""
        assert self.prometheus is not None
        _kill(self.prometheus.proc)

    def restart_prometheus(self) -> PrometheusProc:
        """Same port, same TSDB directory (its WAL holds what was scraped before)."""
        assert self.prometheus is not None
        text = self.prometheus.config_file.read_text()
        self.prometheus = start_prometheus(self.workdir / "prometheus", text, self._prometheus_port)
        return self.prometheus

    @property
    def procs(self) -> tuple[ManagedProcess, ...]:
        parts = (self.collector, self.jaeger, self.prometheus, self.log_store)
        return tuple(p.proc for p in parts if p is not None and p.proc.popen.poll() is None)

    def stop(self) -> None:
        for p in (self.prometheus, self.collector, self.log_store, self.jaeger):
            if p is not None:
                p.stop()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill(proc: ManagedProcess) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(30)
    proc.stop()


# --------------------------------------------------------------------------- the service


def service_env(otlp_endpoint: str, workdir: Path, service_name: str, **extra: str) -> dict[str, str]:
    """What a deployed service sets, plus the local trace file (the record of every span it ends)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "TRADEOBS_SERVICE_NAME": service_name,
        "TRADEOBS_ENVIRONMENT": "faults",
        "TRADEOBS_TRADING_MODE": "paper",
        "TRADEOBS_METRIC_EXPORT_INTERVAL": "1",
        "TRADEOBS_PROMETHEUS_PORT": "0",
        "TRADEOBS_LOG_DIR": str(workdir / "logs"),
        "TRADEOBS_TRACES_FILE": str(workdir / "record" / "traces.jsonl"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class DemoService:
    """``demo_service.py`` in its own process; see that script for what it serves and measures."""

    def __init__(
        self,
        otlp_endpoint: str,
        workdir: Path,
        *,
        orders_hz: float = ORDERS_HZ,
        symbols: int = SYMBOLS,
        tick_hz: float = TICK_HZ,
        service_name: str | None = None,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        keep_samples: int | None = None,
        tracemalloc: int = 0,
    ) -> None:
        """``keep_samples``: step and lag samples the service keeps (see ``demo_service.py --keep-samples``);
        0 for a soak, where a growing sample buffer would be the harness's memory, not the service's.
        ``tracemalloc``: frames per traced allocation (``demo_service.py --tracemalloc``; :meth:`grown`)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.service_name = service_name or f"faults-{uuid.uuid4().hex[:10]}"
        self.port = port or free_port()
        self.control_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.control_url = f"http://127.0.0.1:{self.control_port}"
        self.otlp_endpoint = otlp_endpoint
        self.extra_env = dict(extra_env or {})
        self.args = ["--symbols", str(symbols), "--tick-hz", f"{tick_hz:g}", "--orders-hz", f"{orders_hz:g}"]
        if keep_samples is not None:
            self.args += ["--keep-samples", str(keep_samples)]
        if tracemalloc:
            self.args += ["--tracemalloc", str(tracemalloc)]
        self.final: dict[str, Any] | None = None
        self.runs = 0
        self.proc: ManagedProcess
        self.start()

    def start(self) -> None:
        """Start (or start again, on the same port, with the same files) and wait until it trades."""
        self.runs += 1
        final = self.workdir / "final.json"
        if final.exists():
            final.unlink()
        argv = [sys.executable, str(SERVICE_SCRIPT), "--port", str(self.port), "--control-port"]
        argv += [str(self.control_port), *self.args]
        env = service_env(self.otlp_endpoint, self.workdir, self.service_name, **self.extra_env)
        env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
        self.proc = ManagedProcess(f"service-{self.runs}", argv, env, self.workdir)
        try:
            wait_for(lambda: http_ok(f"{self.base_url}/readyz"), "the demo to trade", READY_TIMEOUT, procs=(self.proc,))
            wait_for(lambda: http_ok(f"{self.control_url}/state"), "the harness", READY_TIMEOUT, procs=(self.proc,))
        except BaseException:
            self.proc.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- control
    def _call(self, method: str, path: str, timeout: float = 30.0) -> dict[str, Any]:
        self.proc.check_alive()
        req = urllib.request.Request(f"{self.control_url}{path}", method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return dict(json.loads(r.read()))

    def timed_samples(self, since: float, until: float) -> dict[str, list[tuple[float, float]]]:
        """``{"step": [(epoch time, seconds), ...], "lag": [...]}`` between two epoch times."""
        q = urllib.parse.urlencode({"since": since, "until": until})
        return {k: [(t, v) for t, v in pairs] for k, pairs in self._call("GET", f"/samples?{q}").items()}

    def samples(self, since: float, until: float) -> dict[str, list[float]]:
        """Step latencies and loop lags (seconds) between two epoch times."""
        return {k: [v for _, v in pairs] for k, pairs in self.timed_samples(since, until).items()}

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    def grown(self, top: int = 25) -> dict[str, Any]:
        """With ``tracemalloc``: the allocation tracebacks that grew most since the previous call (a leak hunt)."""
        return self._call("GET", f"/tracemalloc?top={top}", timeout=300)

    def set_orders(self, hz: float) -> int:
        return int(self._call("POST", f"/orders?hz={hz:g}")["orders"])

    def flush(self, timeout: float) -> dict[str, Any]:
        return self._call("POST", f"/flush?timeout={timeout:g}", timeout=timeout + 30)

    def rss(self) -> int:
        return _rss(self.pid)

    # -- the end
    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM, as a deployment stops a service; returns ``final.json`` (its shutdown, timed, and its counts)."""
        if self.proc.popen.poll() is None:
            self.proc.popen.send_signal(signal.SIGTERM)
            try:
                self.proc.popen.wait(timeout)
            except Exception:
                self.proc.stop()
                pytest.fail(f"the service did not exit within {timeout:.0f}s of SIGTERM" + self.proc.describe())
        self.proc.stop()
        final = self.workdir / "final.json"
        if not final.exists():
            pytest.fail(f"the service exited ({self.proc.popen.returncode}) without final.json" + self.proc.describe())
        self.final = dict(json.loads(final.read_text()))
        assert self.proc.popen.returncode == 0, self.proc.describe()
        return self.final

    def kill(self) -> None:
        if self.proc.popen.poll() is None:
            self.proc.popen.kill()
        self.proc.stop()

    def output(self) -> str:
        return self.proc.log_path.read_text(errors="replace") if self.proc.log_path.exists() else ""

    def __enter__(self) -> DemoService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def rss(pid: int) -> int:
    """Resident set size of any process of ours (the service, the collector, Prometheus), in bytes."""
    return _rss(pid)


# --------------------------------------------------------------------------- the accounting


def _lines(pattern_dir: Path, stem: str) -> Iterator[bytes]:
    """Lines of ``<stem>.jsonl`` and its rotated files (``<stem>.<time>.jsonl[.gz]``) in ``pattern_dir``."""
    if not pattern_dir.exists():
        return
    for f in sorted(pattern_dir.iterdir()):
        name = f.name
        if not (name == f"{stem}.jsonl" or (name.startswith(f"{stem}.") and ".jsonl" in name)):
            continue
        data = gzip.decompress(f.read_bytes()) if name.endswith(".gz") else f.read_bytes()
        yield from (line for line in data.splitlines() if line.strip())


def recorded_span_ids(workdir: Path, until: float | None = None, since: float | None = None) -> set[str]:
    """Span ids of the trading layer's spans the service ended (its local trace file, OTLP/JSON lines),
    only those that ended before ``until`` (epoch seconds) and at or after ``since`` when given."""
    ids: set[str] = set()
    limit = None if until is None else int(until * 1e9)
    start = 0 if since is None else int(since * 1e9)
    for line in _lines(workdir / "record", "traces"):
        doc = json.loads(line)
        for rs in doc.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                if ss.get("scope", {}).get("name") != TRADING_SCOPE:
                    continue
                ids.update(
                    s["spanId"]
                    for s in ss.get("spans", [])
                    if (limit is None or int(s["endTimeUnixNano"]) < limit) and int(s["endTimeUnixNano"]) >= start
                )
    return ids


def arrived_span_ids(jaeger_query_url: str, service: str) -> set[str]:
    """Span ids of the trading layer's spans the trace store holds for ``service``."""
    ids: set[str] = set()
    for t in jaeger_search(jaeger_query_url, service, limit=99_999, start_s=time.time() - 6 * 3600):
        for s in t["spans"]:
            tags = {x["key"]: x["value"] for x in s.get("tags", [])}
            if tags.get("otel.scope.name") == TRADING_SCOPE:
                ids.add(s["spanID"])
    return ids


def recorded_log_bodies(workdir: Path, until: float | None = None, since: float | None = None) -> Counter[str]:
    """Messages of every record in the service's JSON log files that goes to OTLP too (all but the OTel SDK's),
    only those written before ``until`` (epoch seconds) when given."""
    bodies: Counter[str] = Counter()
    logs = workdir / "logs"
    if not logs.exists():
        return bodies
    stems = {f.name.split(".", 1)[0] for f in logs.iterdir() if ".jsonl" in f.name}
    for stem in sorted(stems):
        for line in _lines(logs, stem):
            rec = json.loads(line)
            if str(rec.get("logger", "")).startswith("opentelemetry"):
                continue  # the OTLP sink skips the SDK's own records (they would feed back into the exporter)
            if until is not None and _epoch(rec["timestamp"]) >= until:
                continue
            if since is not None and _epoch(rec["timestamp"]) < since:
                continue
            bodies[str(rec.get("message"))] += 1
    return bodies


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def arrived_log_bodies(files: Iterable[Path], service: str) -> Counter[str]:
    """Bodies of the log records of ``service`` the collector wrote (its file exporter, every run's file)."""
    bodies: Counter[str] = Counter()
    for f in files:
        for rec in read_otlp_json_logs(f):
            if rec["_resource"].get("service.name") == service:
                bodies[str(rec.get("body", {}).get("stringValue"))] += 1
    return bodies


def counted(final: dict[str, Any], instrument: str, **labels: str) -> float:
    """Sum of a self-metric's series whose labels include ``labels`` (from ``final.json`` or ``/state``)."""
    total = 0.0
    for key, value in final["self_metrics"].get(instrument, {}).items():
        attrs = dict(kv.split("=", 1) for kv in key.split(",") if kv)
        if all(attrs.get(k) == v for k, v in labels.items()):
            total += value
    return total


def dropped_spans(final: dict[str, Any]) -> float:
    return counted(final, "tradeobs.agent.items.dropped", signal="traces")


def dropped_logs(final: dict[str, Any]) -> float:
    """Log records the agent counted as not sent over OTLP: dropped by the exporter side, or refused by its sink."""
    return counted(final, "tradeobs.agent.items.dropped", signal="logs") + counted(
        final, "tradeobs.agent.sink.errors", sink="otlp"
    )


@dataclass
class Account:
    """What the service recorded, what arrived, what the agent counted as dropped, for one signal."""

    signal: str
    recorded: int
    arrived: int
    dropped: float
    missing: list[str] = field(default_factory=list)  # a few recorded items that did not arrive
    unexpected: int = 0  # arrived but not recorded (must be 0)
    # Missing items made in the moments before a collector SIGKILL (see KILL_WINDOW_S): the collector had them.
    at_kill: int = 0
    duplicates: int = 0  # log records that arrived more often than recorded (a retry of a batch that had arrived)

    @classmethod
    def of(cls, signal: str, recorded: set[str] | Counter[str], arrived: set[str] | Counter[str],
           dropped: float, at_kill: set[str] | Counter[str] | None = None) -> Account:  # fmt: skip
        """``at_kill``: what was recorded in the window before a collector SIGKILL (missing items in it are
        counted apart, in ``at_kill``)."""
        if isinstance(recorded, set) and isinstance(arrived, set):
            window = set(at_kill or ())
            return cls(signal, len(recorded), len(recorded & arrived), dropped, sorted(recorded - arrived)[:5],
                       len(arrived - recorded), len((recorded - arrived) & window))  # fmt: skip
        rec, arr = Counter(recorded), Counter(arrived)
        unrecorded = sum(n for body, n in arr.items() if body not in rec)
        return cls(signal, sum(rec.values()), sum((rec & arr).values()), dropped,
                   sorted((rec - arr).elements())[:5], unrecorded,
                   ((rec - arr) & Counter(at_kill or ())).total(), (arr - rec).total() - unrecorded)  # fmt: skip

    @property
    def lost(self) -> int:
        return self.recorded - self.arrived

    @property
    def uncounted(self) -> float:
        """Lost and not counted by the agent, apart from what the collector lost at a SIGKILL."""
        return self.lost - self.dropped - self.at_kill

    @property
    def balanced(self) -> bool:
        """The promise: recorded == arrived + counted dropped, and nothing arrived that was not recorded. Nothing
        lost uncounted (``uncounted`` never above 0); counted twice, at most the one batch a shutdown's deadline
        found still in flight (``Delivery.settle``: counted as dropped, since the process may exit before its answer;
        if it arrived after all it is in both, as docs/agent.md says). A full run's prompt shutdown after an
        outage had 298 spans so: ``uncounted -298``."""
        return -IN_FLIGHT_MAX <= self.uncounted <= 0 and self.unexpected == 0

    def summary(self) -> str:
        return (
            f"recorded {self.recorded}, arrived {self.arrived}, counted dropped {self.dropped:g}, "
            f"lost in the collector at a SIGKILL {self.at_kill}, uncounted {self.uncounted:g}, "
            f"arrived twice {self.duplicates}"
        )

    def __str__(self) -> str:
        return f"{self.signal}: {self.summary()}, unexpected {self.unexpected}" + (
            f"; e.g. missing {self.missing[:3]}" if self.missing else ""
        )


# A collector SIGKILL loses what it had acknowledged but still held in memory. Our config has no batch processor
# before the disk queues (it had one, with a 1 s timeout: 271 spans lost at a kill), but a config that adds one, or
# the file exporter's 200 ms write buffer, still can. Items the service made this long before the kill
# that never arrived are the collector's loss (Account.at_kill), reported apart from the agent's account.
KILL_WINDOW_S = 3.0
# The most a shutdown counts as dropped that may still arrive: the one batch in flight at its deadline, an SDK export
# batch (OTEL_BSP_MAX_EXPORT_BATCH_SIZE / OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, 512 by default; the demo keeps the default).
IN_FLIGHT_MAX = 512


def spans_account(workdir: Path, jaeger_query_url: str, service: str, final: dict[str, Any],
                  kills: Iterable[float] = ()) -> Account:  # fmt: skip
    window: set[str] = set()
    for t in kills:
        window |= recorded_span_ids(workdir, until=t, since=t - KILL_WINDOW_S)
    return Account.of("spans", recorded_span_ids(workdir), arrived_span_ids(jaeger_query_url, service),
                      dropped_spans(final), window)  # fmt: skip


def logs_account(workdir: Path, files: Iterable[Path], service: str, final: dict[str, Any],
                 kills: Iterable[float] = ()) -> Account:  # fmt: skip
    window: Counter[str] = Counter()
    for t in kills:
        window += recorded_log_bodies(workdir, until=t, since=t - KILL_WINDOW_S)
    return Account.of("logs", recorded_log_bodies(workdir), arrived_log_bodies(files, service), dropped_logs(final),
                      window)  # fmt: skip


# --------------------------------------------------------------------------- Prometheus


ORDER_COUNTERS = (
    "trading_orders_submitted_total",
    "trading_orders_acknowledged_total",
    "trading_orders_filled_total",
    "trading_orders_rejected_total",
)


def service_counters(prometheus_url: str, names: Iterable[str] = ORDER_COUNTERS) -> dict[str, float]:
    """Totals of counters on the service's own ``/metrics`` page (what it recorded)."""
    from tests._util import prom_samples

    samples = prom_samples(prometheus_url)
    return {n: sum(s.value for s in samples.get(n, [])) for n in names}


def prometheus_counters(prometheus_url: str, service: str, names: Iterable[str] = ORDER_COUNTERS) -> dict[str, float]:
    """The same totals as Prometheus has them (relayed by the collector), for ``job=<service>``."""
    out: dict[str, float] = {}
    for n in names:
        res = prometheus_query(prometheus_url, f'sum({n}{{job="{service}"}})')
        out[n] = float(res[0]["value"][1]) if res else 0.0
    return out


def counters_relayed(service_url: str, prometheus_url: str, service: str, timeout: float = 60.0) -> dict[str, float]:
    """Wait until Prometheus has exactly the service's own order counters, and return them.

    Orders still working when a demo stops placing new ones go on filling for a moment, so both sides are read again
    on each try (one early read of the service once lagged a late fill that Prometheus then had).
    """
    seen: dict[str, dict[str, float]] = {}

    def equal() -> dict[str, float] | None:
        seen["own"] = own = service_counters(service_url)
        seen["got"] = got = prometheus_counters(prometheus_url, service)
        return own if got == own and any(own.values()) else None

    own: dict[str, float] | None = settle(equal, timeout)
    assert own, f"Prometheus {seen['got']} != the service's /metrics {seen['own']}"
    return own


# --------------------------------------------------------------------------- numbers


def distribution(values: list[float]) -> dict[str, float]:
    """p50/p99/p99.9/max in milliseconds and the sample count (nearest-rank percentiles)."""
    if not values:
        return {"n": 0}
    v = sorted(values)

    def pct(q: float) -> float:
        return v[min(len(v) - 1, max(0, round(q * len(v)) - 1))] * 1000

    return {"n": len(v), "p50": pct(0.50), "p99": pct(0.99), "p99.9": pct(0.999), "max": v[-1] * 1000,
            "mean": statistics.fmean(v) * 1000}  # fmt: skip


def fmt_ms(d: dict[str, float], key: str = "p99") -> str:
    return f"{d[key]:.2f} ms" if key in d else "-"


def collector_metric(collector: CollectorProc, name: str, **labels: str) -> float:
    """Sum of one of the collector's own metrics (its /metrics page) over series matching ``labels``."""
    from tests._util import prom_samples

    total = 0.0
    for s in prom_samples(f"{collector.metrics_url}/metrics").get(name, []):
        if all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def http_ok_within(url: str) -> bool:
    status, _ = http_get(url, timeout=5.0)
    return status == 200


# --------------------------------------------------------------------------- phases


class Phase:
    """A stretch of the run (no fault, the fault, after it): the service polled every ``poll`` s meanwhile.

    Each poll checks the service is alive and records its orders, steps, RSS and the agent's queue sizes;
    :meth:`stalls` lists the ``bucket``-second stretches in which it placed no order or took no step.
    """

    def __init__(self, svc: DemoService, name: str) -> None:
        self.svc, self.name = svc, name
        self.t0 = self.t1 = 0.0
        self.polls: list[dict[str, Any]] = []
        self.trading = True
        self.timed: dict[str, list[tuple[float, float]]] = {"step": [], "lag": []}

    def run(self, seconds: float, poll: float = 2.0, trading: bool = True) -> Phase:
        self.trading = trading
        self.t0 = time.time()
        end = time.monotonic() + seconds
        while True:
            st = self.svc.state()
            self.polls.append(st)
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(poll, left))
        self.t1 = time.time()
        self.timed = self.svc.timed_samples(self.t0, self.t1)  # kept: the service may be gone when it is read
        return self

    def samples(self, since: float | None = None, until: float | None = None) -> dict[str, list[float]]:
        lo, hi = since or self.t0, until or self.t1
        return {k: [v for t, v in pairs if lo <= t < hi] for k, pairs in self.timed.items()}

    def loop(self, since: float | None = None, until: float | None = None) -> dict[str, dict[str, float]]:
        s = self.samples(since, until)
        return {"step": distribution(s["step"]), "lag": distribution(s["lag"])}

    def stalls(self, bucket: float = 5.0) -> list[str]:
        """Stretches of ``bucket`` seconds without a step (or, while trading, without an order)."""
        out = []
        step_times = [t for t, _ in self.timed["step"]]
        t = self.t0
        orders = [(p["time"], p["orders"]) for p in self.polls]
        while t + bucket <= self.t1:
            if not any(t <= x < t + bucket for x in step_times):
                out.append(f"no trading-loop step between +{t - self.t0:.0f}s and +{t + bucket - self.t0:.0f}s")
            if self.trading:
                inside = [n for (pt, n) in orders if t <= pt <= t + bucket + 2.5]
                if len(inside) >= 2 and inside[-1] == inside[0]:
                    out.append(f"no order placed between +{t - self.t0:.0f}s and +{t + bucket - self.t0:.0f}s")
            t += bucket
        return out

    def peak(self, key: str) -> float:
        return max((_lookup(p, key) for p in self.polls), default=0.0)

    def first(self, key: str) -> float:
        return _lookup(self.polls[0], key) if self.polls else 0.0

    def last(self, key: str) -> float:
        return _lookup(self.polls[-1], key) if self.polls else 0.0


def _lookup(state: dict[str, Any], key: str) -> float:
    """``rss`` / ``orders`` / ``queue=otlp_traces`` (a queue size) from one ``/state`` answer."""
    if key.startswith("queue="):
        return float(state["self_metrics"].get("tradeobs.agent.queue.size", {}).get(key, 0.0))
    return float(state[key])


def settle(probe: Any, timeout: float = 60.0, interval: float = 1.0) -> Any:
    """Call ``probe()`` until its result is truthy (``.balanced`` for an :class:`Account`) or ``timeout`` passes;
    return the last result either way (the assertion that follows says what was wrong)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        ok = result.balanced if isinstance(result, Account) else bool(result)
        if ok or time.monotonic() > deadline:
            return result
        time.sleep(interval)


MB = 1 << 20


def loop_figures(before: Phase, during: Phase) -> dict[str, str]:
    """The trading loop during the fault next to the same process before it (and the noise between halves)."""
    b, d = before.loop(), during.loop()
    half = before.t0 + (before.t1 - before.t0) / 2
    h1, h2 = before.loop(until=half)["step"], before.loop(since=half)["step"]
    return {
        "step p99": f"{fmt_ms(d['step'])} under the fault, {fmt_ms(b['step'])} before "
        f"(halves {fmt_ms(h1)} / {fmt_ms(h2)}); p99.9 {fmt_ms(d['step'], 'p99.9')} vs {fmt_ms(b['step'], 'p99.9')}",
        "loop lag p99": f"{fmt_ms(d['lag'])} vs {fmt_ms(b['lag'])}",
        "steps": f"{d['step'].get('n', 0)} under the fault, {b['step'].get('n', 0)} before",
    }


# --------------------------------------------------------------------------- live-stream clients


SSE_PROCESSES = 4


class _SseProcess:
    """One ``sse_clients.py`` process and its line protocol."""

    def __init__(self, argv: list[str], stderr_path: Path) -> None:
        import selectors
        import subprocess

        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "ab")  # noqa: SIM115 - closed in close()
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True
        )
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        assert self.popen.stdout is not None
        os.set_blocking(self.popen.stdout.fileno(), False)
        self._sel.register(self.popen.stdout, selectors.EVENT_READ)

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write((line + "\n").encode())
        self.popen.stdin.flush()

    def read(self, deadline: float, timeout: float, what: str) -> str:
        while True:
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                return line.decode()
            left = deadline - time.monotonic()
            if left <= 0 or self.popen.poll() is not None:
                if self.popen.poll() is None:  # hung: its stacks (faulthandler on SIGUSR1) go to its stderr
                    self.popen.send_signal(signal.SIGUSR1)
                    time.sleep(1.0)
                tail = self.stderr_path.read_text(errors="replace")[-6000:]
                pytest.fail(
                    f"the SSE clients of {self.stderr_path.name} gave no answer to {what!r} in {timeout:g} s "
                    f"(exit {self.popen.poll()}); their stderr:\n{tail}",
                    pytrace=False,
                )
            if self._sel.select(min(left, 0.5)):
                assert self.popen.stdout is not None
                self._buf += os.read(self.popen.stdout.fileno(), 1 << 20)

    def close(self) -> None:
        for f in (self.popen.stdin, self.popen.stdout):
            if f is not None and not f.closed:
                f.close()
        self._sel.close()
        if not self._stderr.closed:
            self._stderr.close()


class SseClients:
    """``sse_clients.py`` (many EventSource-like clients) in ``processes`` processes; see that script.

    The clients are spread over several processes, as browsers are: one Python process decoding 500 streams
    (5,000 frames/s) needs about a quarter of a core, and on a loaded 2-core CI machine it could not keep up
    (its event loop ran 10-19 s late, the server rightly timed out readers that had stopped reading, and a
    command waited for whole loop turns). Stats are merged in process order (client indexes stay stable)."""

    def __init__(
        self,
        port: int,
        workdir: Path,
        clients: int,
        stall: int = 0,
        path: str = "/telemetry/stream",
        processes: int = SSE_PROCESSES,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        n = max(1, min(processes, clients))
        self.procs: list[_SseProcess] = []
        try:
            for i in range(n):
                mine = clients // n + (i < clients % n)
                stalled = stall // n + (i < stall % n)
                argv = [sys.executable, str(HERE / "sse_clients.py"), "--port", str(port), "--path", path,
                        "--clients", str(mine), "--stall", str(stalled)]  # fmt: skip
                self.procs.append(_SseProcess(argv, workdir / f"sse-clients-{i}.log"))
            self.ready = sum(int(line.split()[1]) for line in self._answers(120.0, "READY"))
        except BaseException:
            self.stop()
            raise

    def _answers(self, timeout: float, what: str) -> list[str]:
        deadline = time.monotonic() + timeout
        return [p.read(deadline, timeout, what) for p in self.procs]

    def _cmd(self, line: str, timeout: float = 60.0) -> list[str]:
        for p in self.procs:
            p.send(line)
        return self._answers(timeout, line.split(" ", 1)[0])

    def stats(self, since: float = 0.0, until: float | None = None) -> dict[str, Any]:
        answers = self._cmd(f"stats {since} {until if until is not None else time.time() + 1}")
        return _merge_stats([json.loads(a.split(" ", 1)[1]) for a in answers])

    def resume(self) -> None:
        self._cmd("resume")

    def stop(self) -> None:
        alive = [p for p in self.procs if p.popen.poll() is None]
        try:
            for p in alive:
                p.send("stop")
            deadline = time.monotonic() + 30.0
            for p in alive:
                p.read(deadline, 30.0, "stop")
                p.popen.wait(max(0.0, deadline - time.monotonic()) + 1.0)
        except BaseException:
            for p in alive:
                if p.popen.poll() is None:
                    p.popen.kill()
                p.popen.wait()
        for p in self.procs:
            p.close()

    def __enter__(self) -> SseClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The processes' ``stats`` answers as one: counts added, per-client lists joined in process order."""
    out: dict[str, Any] = {"connect_errors": 0, "bad_status": Counter(), "latencies": []}
    for part in parts:
        out["connect_errors"] += part["connect_errors"]
        out["bad_status"].update(part["bad_status"])
        out["latencies"] += part["latencies"]
        for group in ("readers", "stalled"):
            mine = out.setdefault(group, {})
            for key, value in part[group].items():
                mine[key] = mine.get(key, [] if isinstance(value, list) else 0) + value
    out["bad_status"] = dict(out["bad_status"])
    return out
