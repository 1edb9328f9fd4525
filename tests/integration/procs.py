"""Real processes for integration tests: collector, Jaeger, Prometheus, Alertmanager.

Every process listens on free 127.0.0.1 ports, writes its output to a log file
in a temporary directory, and is always stopped (terminate, then kill). If a
process dies or never becomes ready the test FAILS with the tail of its log; if
a binary is missing the test FAILS naming the install step that provides it
(never a skip: a self-skipping integration test hides a broken setup).

Fixtures (all session-scoped, registered by tests/integration/conftest.py;
elsewhere: `from tests.integration.procs import stack, ...` in a conftest.py):

    jaeger        -> JaegerProc       .otlp_grpc_endpoint .otlp_http_endpoint .query_url .health_url
                                      .metrics_url .env
    collector     -> CollectorProc    .otlp_grpc_endpoint .otlp_http_endpoint .prometheus_exporter_url
                                      .metrics_url .health_url .zpages_url .logs_file .storage_dir
    alertmanager  -> AlertmanagerProc .url
    prometheus    -> PrometheusProc   .url .config_file
    stack         -> Stack            everything above plus the flat attributes
                                      otlp_grpc_endpoint, otlp_http_endpoint, prometheus_url,
                                      jaeger_query_url, alertmanager_url, logs_file

Endpoint conventions: `*_endpoint` for gRPC is "127.0.0.1:PORT" (what OTLP gRPC
exporters accept with insecure=True, prefix "http://" if needed);
`otlp_http_endpoint` and every `*_url` are "http://127.0.0.1:PORT".

For tests that need their own instance (restarts, fault injection) call
start_jaeger(), start_collector(...), start_prometheus(...) directly; they
return objects with .stop() and are context managers.

Helpers: wait_for(), prometheus_query(), prometheus_exemplars(), jaeger_trace() and
jaeger_search() (the queries Grafana's Jaeger datasource sends), read_otlp_json_logs().
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests._util import free_port

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_CONFIG = REPO / "collector" / "otel-collector.yaml"
JAEGER_CONFIG = REPO / "collector" / "jaeger-test.yaml"
COMPOSE_JAEGER_CONFIG = REPO / "compose" / "jaeger" / "jaeger.yaml"

# How long a process may take to become ready, and data to show up. These are
# failure deadlines (generous, for a loaded 2-core CI box), not assertions.
READY_TIMEOUT = float(os.environ.get("TRADEOBS_TEST_READY_TIMEOUT", "90"))
DATA_TIMEOUT = float(os.environ.get("TRADEOBS_TEST_DATA_TIMEOUT", "60"))

T = TypeVar("T")

# Which install step provides each binary (named in the failure message).
_PROVIDERS = {
    "otelcol-tradeobs": "scripts/install.d/30-collector.sh (scripts/build-collector.sh)",
    "jaeger": "scripts/install.d/35-jaeger.sh (scripts/build-jaeger.sh)",
    "thanos": "scripts/install.d/40-thanos.sh (scripts/build-thanos.sh)",
    "prometheus": "scripts/install.d/20-apt.sh (Debian package 'prometheus')",
    "promtool": "scripts/install.d/20-apt.sh (Debian package 'prometheus')",
    "prometheus-alertmanager": "scripts/install.d/20-apt.sh (Debian package 'prometheus-alertmanager')",
    "amtool": "scripts/install.d/20-apt.sh (Debian package 'prometheus-alertmanager')",
    "prometheus-node-exporter": "scripts/install.d/20-apt.sh (Debian package 'prometheus-node-exporter')",
    "busybox": "scripts/install.d/20-apt.sh (Debian package 'busybox')",
    "nats-server": "scripts/install.d/40-nats.sh (scripts/build-nats.sh)",
}


# Read at import: tests/conftest.py removes TRADEOBS_* from each test's env.
_TRADEOBS_CACHE = os.environ.get("TRADEOBS_CACHE")


def cache_dir() -> Path:
    return Path(_TRADEOBS_CACHE or Path.home() / ".cache" / "tradeobs")


def _clean_env() -> dict[str, str]:
    """os.environ without TRADEOBS_* / OTEL_*: a developer's settings must not
    leak into the processes under test (they get exactly what we pass)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}


def find_binary(name: str) -> str:
    """$TRADEOBS_CACHE/bin/<name>, else <name> on PATH, else fail the test."""
    cached = cache_dir() / "bin" / name
    if cached.exists() and os.access(cached, os.X_OK):
        return str(cached)
    found = shutil.which(name)
    if found:
        return found
    step = _PROVIDERS.get(name, "an install step in scripts/install.d/")
    pytest.fail(
        f"required binary {name!r} not found in {cache_dir() / 'bin'} or on PATH; "
        f"it is provided by {step}. Run ./scripts/test.sh (runs every install step) "
        f"or that step alone.",
        pytrace=False,
    )


# ---------------------------------------------------------------- ports, waiting


def wait_for(
    probe: Callable[[], T | None],
    what: str,
    timeout: float = DATA_TIMEOUT,
    interval: float = 0.25,
    procs: tuple[ManagedProcess, ...] = (),
) -> T:
    """Call probe() until it returns something truthy; fail after `timeout` s.

    If any of `procs` exits meanwhile, fail at once with its log tail.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        for p in procs:
            p.check_alive()
        try:
            result = probe()
            if result:
                return result
        except (OSError, ValueError, KeyError, urllib.error.URLError) as e:
            last_error = e
        if time.monotonic() > deadline:
            logs = "".join(p.describe() for p in procs)
            pytest.fail(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error!r})" if last_error else "")
                + logs,
                pytrace=False,
            )
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET url (with ``headers``) -> (status, body); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, body


def http_ok(url: str) -> bool:
    return http_get(url)[0] == 200


# ---------------------------------------------------------------- processes


class ManagedProcess:
    """A subprocess whose output goes to a log file; always stoppable."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.popen = subprocess.Popen(
                argv,
                env={**_clean_env(), **env},
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        return f"\n--- {self.name} ({' '.join(self.argv)}) log tail ---\n{self.log_tail()}\n"

    def check_alive(self) -> None:
        rc = self.popen.poll()
        if rc is not None:
            pytest.fail(f"{self.name} exited with code {rc}" + self.describe(), pytrace=False)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if not self._log.closed:
            self._log.close()


class _Service:
    """Base for the started services: context manager, .stop(), log access."""

    proc: ManagedProcess

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        return self.proc.describe()


def _start_and_wait(name: str, argv: list[str], env: dict[str, str], workdir: Path, ready_url: str) -> ManagedProcess:
    proc = ManagedProcess(name, argv, env, workdir)
    try:
        wait_for(
            lambda: http_ok(ready_url),
            f"{name} to become ready at {ready_url}",
            timeout=READY_TIMEOUT,
            procs=(proc,),
        )
    except BaseException:
        proc.stop()
        raise
    return proc


# ---------------------------------------------------------------- Jaeger


@dataclass
class JaegerProc(_Service):
    proc: ManagedProcess
    env: dict[str, str]
    otlp_grpc_endpoint: str
    otlp_http_endpoint: str
    query_url: str
    health_url: str
    metrics_url: str  # own telemetry (only configs that enable it, e.g. compose/jaeger/jaeger.yaml)

    @property
    def metrics_target(self) -> str:
        return self.metrics_url.removeprefix("http://")


def jaeger_env(otlp_grpc_port: int | None = None) -> dict[str, str]:
    """The env of a Jaeger config of our family (collector/jaeger-test.yaml, compose/jaeger/jaeger.yaml):
    every listener on a free loopback port."""
    return {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{otlp_grpc_port or free_port()}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_METRICS_HOST": "127.0.0.1",
        "JAEGER_METRICS_PORT": str(free_port()),
    }


def start_jaeger(
    workdir: Path,
    otlp_grpc_port: int | None = None,
    config: Path = JAEGER_CONFIG,
    env: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> JaegerProc:
    """Jaeger v2 all-in-one with ``config`` (default: in-memory collector/jaeger-test.yaml).

    Pass ``config=COMPOSE_JAEGER_CONFIG`` and ``extra_env={"JAEGER_BADGER_DIR": ...}`` for the
    compose trace store; pass ``env`` (a previous JaegerProc.env) to restart on the same ports.
    """
    binary = find_binary("jaeger")
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(env or jaeger_env(otlp_grpc_port))
    env.update(extra_env or {})
    health = env["JAEGER_HEALTH_ENDPOINT"]
    proc = _start_and_wait(
        "jaeger",
        [binary, "--config", f"file:{config}"],
        env,
        workdir,
        f"http://{health}/status",
    )
    return JaegerProc(
        proc=proc,
        env=env,
        otlp_grpc_endpoint=env["JAEGER_OTLP_GRPC_ENDPOINT"],
        otlp_http_endpoint=f"http://{env['JAEGER_OTLP_HTTP_ENDPOINT']}",
        query_url=f"http://{env['JAEGER_QUERY_HTTP_ENDPOINT']}",
        health_url=f"http://{health}/status",
        metrics_url=f"http://{env['JAEGER_METRICS_HOST']}:{env['JAEGER_METRICS_PORT']}",
    )


# ---------------------------------------------------------------- collector


@dataclass
class CollectorProc(_Service):
    proc: ManagedProcess
    env: dict[str, str]
    otlp_grpc_endpoint: str
    otlp_http_endpoint: str
    prometheus_exporter_url: str  # app metrics page scraped by Prometheus
    metrics_url: str  # collector self-telemetry page
    health_url: str
    zpages_url: str
    logs_file: Path
    storage_dir: Path

    @property
    def prometheus_exporter_target(self) -> str:
        return self.prometheus_exporter_url.removeprefix("http://")

    @property
    def metrics_target(self) -> str:
        return self.metrics_url.removeprefix("http://")


def collector_env(workdir: Path, traces_endpoint: str, logs_exporters: str = "[file/logs]") -> dict[str, str]:
    """The env for collector/otel-collector.yaml with every listener on a free port."""
    return {
        "TRADEOBS_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRADEOBS_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRADEOBS_COLLECTOR_METRICS_HOST": "127.0.0.1",
        "TRADEOBS_COLLECTOR_METRICS_PORT": str(free_port()),
        "TRADEOBS_HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRADEOBS_PPROF_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRADEOBS_ZPAGES_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRADEOBS_TRACES_OTLP_ENDPOINT": traces_endpoint,
        "TRADEOBS_TRACES_OTLP_INSECURE": "true",
        # No log store runs natively: logs go to a file. The OTLP/HTTP log
        # exporter is configured but unused (not in the pipeline).
        "TRADEOBS_LOGS_OTLPHTTP_ENDPOINT": f"http://127.0.0.1:{free_port()}/otlp",
        "TRADEOBS_LOGS_EXPORTERS": logs_exporters,
        "TRADEOBS_LOGS_FILE_PATH": str(workdir / "logs.jsonl"),
        "TRADEOBS_COLLECTOR_STORAGE_DIR": str(workdir / "queue"),
        "TRADEOBS_DEPLOYMENT_ENVIRONMENT": "test",
    }


def start_collector(
    workdir: Path,
    traces_endpoint: str,
    config: Path = COLLECTOR_CONFIG,
    env: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    overlays: Sequence[Path] = (),
    wrap: tuple[str, ...] = (),
) -> CollectorProc:
    """otelcol-tradeobs with `config`, polled on health_check until ready.

    Pass `env` (e.g. a previous CollectorProc.env) to restart with the same
    ports and storage; `extra_env` overrides single variables. `overlays` are
    further --config files merged over `config` (collector/otel-collector.auth.yaml);
    `wrap` is an argv prefix that execs the collector (tiers.HostsFile.wrap: a private /etc/hosts).
    """
    binary = find_binary("otelcol-tradeobs")
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(env or collector_env(workdir, traces_endpoint))
    env.update(extra_env or {})
    health = env["TRADEOBS_HEALTH_CHECK_ENDPOINT"]
    proc = _start_and_wait(
        "otelcol",
        [*wrap, binary, "--config", f"file:{config}", *(a for o in overlays for a in ("--config", f"file:{o}"))],
        env,
        workdir,
        f"http://{health}/",
    )
    return CollectorProc(
        proc=proc,
        env=env,
        otlp_grpc_endpoint=env["TRADEOBS_OTLP_GRPC_ENDPOINT"],
        otlp_http_endpoint=f"http://{env['TRADEOBS_OTLP_HTTP_ENDPOINT']}",
        prometheus_exporter_url=f"http://{env['TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT']}",
        metrics_url=(f"http://{env['TRADEOBS_COLLECTOR_METRICS_HOST']}:{env['TRADEOBS_COLLECTOR_METRICS_PORT']}"),
        health_url=f"http://{health}/",
        zpages_url=f"http://{env['TRADEOBS_ZPAGES_ENDPOINT']}",
        logs_file=Path(env["TRADEOBS_LOGS_FILE_PATH"]),
        storage_dir=Path(env["TRADEOBS_COLLECTOR_STORAGE_DIR"]),
    )


# ---------------------------------------------------------------- Alertmanager


@dataclass
class AlertmanagerProc(_Service):
    proc: ManagedProcess
    url: str

    @property
    def target(self) -> str:
        return self.url.removeprefix("http://")


ALERTMANAGER_TEST_CONFIG = """\
# Generated by tests/integration/procs.py: one receiver that goes nowhere;
# tests read alerts back from the Alertmanager API.
route:
  receiver: test
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
"""


def start_alertmanager(workdir: Path) -> AlertmanagerProc:
    binary = find_binary("prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "alertmanager.yml"
    cfg.write_text(ALERTMANAGER_TEST_CONFIG)
    addr = f"127.0.0.1:{free_port()}"
    proc = _start_and_wait(
        "alertmanager",
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={addr}",
            "--cluster.listen-address=",  # no HA gossip port
        ],
        {},
        workdir,
        f"http://{addr}/-/ready",
    )
    return AlertmanagerProc(proc=proc, url=f"http://{addr}")


# ---------------------------------------------------------------- Prometheus


@dataclass
class PrometheusProc(_Service):
    proc: ManagedProcess
    url: str
    config_file: Path


def prometheus_config(
    collector_exporter_target: str,
    collector_metrics_target: str,
    alertmanager_target: str | None = None,
    rule_files: list[str] | None = None,
) -> str:
    """Scrape config for the tests (also checked by promtool in test_configs)."""
    lines = [
        "# Generated by tests/integration/procs.py",
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "  scrape_timeout: 1s",
    ]
    if alertmanager_target:
        lines += [
            "alerting:",
            "  alertmanagers:",
            "    - static_configs:",
            f"        - targets: ['{alertmanager_target}']",
        ]
    if rule_files:
        lines += ["rule_files:"] + [f"  - '{f}'" for f in rule_files]
    lines += [
        "scrape_configs:",
        # App metrics relayed by the collector's prometheus exporter. honor_labels
        # keeps job/instance derived from service.name/service.instance.id.
        "  - job_name: otelcol-exporter",
        "    honor_labels: true",
        "    static_configs:",
        f"      - targets: ['{collector_exporter_target}']",
        # The collector's own telemetry.
        "  - job_name: otelcol",
        "    static_configs:",
        f"      - targets: ['{collector_metrics_target}']",
    ]
    return "\n".join(lines) + "\n"


def start_prometheus(
    workdir: Path,
    config_text: str,
    port: int | None = None,
    *,
    features: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
) -> PrometheusProc:
    """Debian prometheus with exemplar storage (plus ``features``), tmp TSDB, loopback listener
    (on ``port``, e.g. one the config already scrapes, else a free one)."""
    binary = find_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "prometheus.yml"
    cfg.write_text(config_text)
    addr = f"127.0.0.1:{port or free_port()}"
    proc = _start_and_wait(
        "prometheus",
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={addr}",
            "--enable-feature=" + ",".join(("exemplar-storage", *features)),
            "--web.enable-lifecycle",
            *flags,
        ],
        env or {},
        workdir,
        f"http://{addr}/-/ready",
    )
    return PrometheusProc(proc=proc, url=f"http://{addr}", config_file=cfg)


# ---------------------------------------------------------------- queries


def prometheus_query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    """Instant query -> the `result` list (empty if no series)."""
    q = urllib.parse.urlencode({"query": promql})
    status, body = http_get(f"{prometheus_url}/api/v1/query?{q}")
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise ValueError(f"prometheus query {promql!r} failed: {status} {body[:500]!r}")
    return list(data["data"]["result"])


def prometheus_exemplars(prometheus_url: str, promql: str, lookback_s: float = 3600) -> list[dict[str, Any]]:
    """Exemplars of the series selected by promql -> list of exemplar dicts
    (each with "labels" e.g. {"trace_id": ..., "span_id": ...} and "value")."""
    now = time.time()
    q = urllib.parse.urlencode({"query": promql, "start": now - lookback_s, "end": now + 60})
    status, body = http_get(f"{prometheus_url}/api/v1/query_exemplars?{q}")
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise ValueError(f"exemplar query {promql!r} failed: {status} {body[:500]!r}")
    return [e for series in data["data"] for e in series.get("exemplars", [])]


# Trace queries: exactly what Grafana's Jaeger datasource (compose/grafana/provisioning) sends to
# Jaeger's HTTP API, so a test that finds a trace here proves the deployed Grafana finds it too.
#   trace by id (exemplar link, derived field, trace panel): GET /api/traces/<id>
#     (no time parameters: the datasource's traceIdTimeParams is off)
#   search (Explore, the drill-down tables): GET /api/traces?service=&operation=&tags=<JSON>
#     &minDuration=&maxDuration=&limit=&start=<us>&end=<us>&lookback=custom
#     where tags is typed in logfmt ("order.id=abc") and sent as a JSON object of strings, empty
#     fields are left out, and start/end are the dashboard time range in microseconds.


def jaeger_trace(jaeger_query_url: str, trace_id: str) -> dict[str, Any] | None:
    """Trace by id, as Grafana asks for it -> the trace ({"traceID", "spans", "processes"}) or None."""
    status, body = http_get(f"{jaeger_query_url}/api/traces/{urllib.parse.quote(trace_id)}")
    if status == 404:
        return None
    if status != 200:
        raise ValueError(f"jaeger returned {status}: {body[:500]!r}")
    data = json.loads(body).get("data") or []
    return data[0] if data else None


def logfmt_tags(tags: str) -> dict[str, str]:
    """Grafana's tag field (logfmt: ``order.id=abc error=true``) -> the object it sends as JSON."""
    out: dict[str, str] = {}
    for part in shlex.split(tags):
        key, sep, value = part.partition("=")
        if not key or not sep:
            raise ValueError(f"tags {tags!r}: {part!r} is not key=value (logfmt)")
        out[key] = value
    return out


def jaeger_search_params(
    service: str,
    *,
    operation: str | None = None,
    tags: str | None = None,
    min_duration: str | None = None,
    max_duration: str | None = None,
    limit: int | None = 20,
    start_s: float | None = None,
    end_s: float | None = None,
) -> dict[str, str]:
    """The query string of a Grafana Jaeger search (default time range: the last hour)."""
    end = time.time() if end_s is None else end_s
    start = end - 3600 if start_s is None else start_s
    fields: dict[str, str | None] = {
        "service": service,
        "operation": operation,
        "tags": json.dumps(logfmt_tags(tags), separators=(",", ":")) if tags else None,
        "minDuration": min_duration,
        "maxDuration": max_duration,
        "limit": str(limit) if limit else None,
    }
    params = {k: v for k, v in fields.items() if v}
    params.update({"start": str(int(start * 1_000_000)), "end": str(int(end * 1_000_000)), "lookback": "custom"})
    return params


def jaeger_search(jaeger_query_url: str, service: str, **search: Any) -> list[dict[str, Any]]:
    """Search traces as Grafana's Jaeger datasource does (see :func:`jaeger_search_params`) -> traces."""
    q = urllib.parse.urlencode(jaeger_search_params(service, **search))
    # A failure deadline, not a measurement: the fault tests search every trace of a run of minutes (tens of
    # thousands of spans, Badger on disk), which took over 5 s on 2 busy cores.
    status, body = http_get(f"{jaeger_query_url}/api/traces?{q}", timeout=60.0)
    if status != 200:
        raise ValueError(f"jaeger search {q} returned {status}: {body[:500]!r}")
    return list(json.loads(body).get("data") or [])


def span_tags(span: dict[str, Any]) -> dict[str, Any]:
    """Jaeger span's tags as a dict."""
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def read_otlp_json_logs(path: Path) -> list[dict[str, Any]]:
    """Log records from the collector's file exporter (OTLP JSON lines).

    Each returned record gets "_resource" (dict of resource attributes) added;
    attribute lists are flattened into "_attributes" (key -> python value).
    """
    records: list[dict[str, Any]] = []
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        for rl in doc.get("resourceLogs", []):
            resource = _attrs(rl.get("resource", {}).get("attributes", []))
            for sl in rl.get("scopeLogs", []):
                for rec in sl.get("logRecords", []):
                    rec["_resource"] = resource
                    rec["_attributes"] = _attrs(rec.get("attributes", []))
                    records.append(rec)
    return records


def _any_value(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return _attrs(v["kvlistValue"].get("values", []))
    return None


def _attrs(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv.get("key", ""): _any_value(kv.get("value", {})) for kv in kvs}  # OTLP JSON leaves out an empty key


# ---------------------------------------------------------------- the stack


@dataclass
class Stack:
    """The whole native pipeline: agent/SDK -> collector -> Prometheus/Jaeger/file."""

    collector: CollectorProc
    jaeger: JaegerProc
    prometheus: PrometheusProc
    alertmanager: AlertmanagerProc
    otlp_grpc_endpoint: str = field(init=False)
    otlp_http_endpoint: str = field(init=False)
    prometheus_url: str = field(init=False)
    jaeger_query_url: str = field(init=False)
    alertmanager_url: str = field(init=False)
    logs_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.otlp_grpc_endpoint = self.collector.otlp_grpc_endpoint
        self.otlp_http_endpoint = self.collector.otlp_http_endpoint
        self.prometheus_url = self.prometheus.url
        self.jaeger_query_url = self.jaeger.query_url
        self.alertmanager_url = self.alertmanager.url
        self.logs_file = self.collector.logs_file

    @property
    def procs(self) -> tuple[ManagedProcess, ...]:
        return (self.collector.proc, self.jaeger.proc, self.prometheus.proc, self.alertmanager.proc)

    def wait_for(self, probe: Callable[[], T | None], what: str, timeout: float = DATA_TIMEOUT) -> T:
        """wait_for() that also fails fast (with logs) if any process died."""
        return wait_for(probe, what, timeout=timeout, procs=self.procs)

    def agent(self, service: str) -> Any:
        """A fresh agent in this process (``testing.reset()`` first) named ``service``, sending every signal to this
        stack's collector over OTLP/gRPC and nothing else (no Prometheus endpoint, live view or log files)."""
        import tradeobs_agent
        from tradeobs_agent.testing import reset

        reset()
        return tradeobs_agent.init(
            service_name=service,
            otlp=tradeobs_agent.OtlpOptions(endpoint=f"http://{self.otlp_grpc_endpoint}", protocol="grpc"),
            prometheus=False,
            live=False,
            logs=False,
        )


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def procs_dir() -> Iterator[Path]:
    """Session temp dir for process logs and data (kept on failure for debugging
    when TRADEOBS_KEEP_TEST_DIRS=1)."""
    d = Path(tempfile.mkdtemp(prefix="tradeobs-it-"))
    yield d
    if not os.environ.get("TRADEOBS_KEEP_TEST_DIRS"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def jaeger(procs_dir: Path) -> Iterator[JaegerProc]:
    with start_jaeger(procs_dir / "jaeger") as j:
        yield j


@pytest.fixture(scope="session")
def collector(procs_dir: Path, jaeger: JaegerProc) -> Iterator[CollectorProc]:
    with start_collector(procs_dir / "collector", jaeger.otlp_grpc_endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def alertmanager(procs_dir: Path) -> Iterator[AlertmanagerProc]:
    with start_alertmanager(procs_dir / "alertmanager") as a:
        yield a


@pytest.fixture(scope="session")
def prometheus(procs_dir: Path, collector: CollectorProc, alertmanager: AlertmanagerProc) -> Iterator[PrometheusProc]:
    text = prometheus_config(collector.prometheus_exporter_target, collector.metrics_target, alertmanager.target)
    with start_prometheus(procs_dir / "prometheus", text) as p:
        yield p


@pytest.fixture(scope="session")
def stack(
    collector: CollectorProc,
    jaeger: JaegerProc,
    prometheus: PrometheusProc,
    alertmanager: AlertmanagerProc,
) -> Stack:
    return Stack(collector=collector, jaeger=jaeger, prometheus=prometheus, alertmanager=alertmanager)


__all__ = [
    "COLLECTOR_CONFIG",
    "COMPOSE_JAEGER_CONFIG",
    "DATA_TIMEOUT",
    "JAEGER_CONFIG",
    "REPO",
    "AlertmanagerProc",
    "CollectorProc",
    "JaegerProc",
    "ManagedProcess",
    "PrometheusProc",
    "Stack",
    "alertmanager",
    "collector",
    "collector_env",
    "find_binary",
    "free_port",
    "http_get",
    "jaeger",
    "jaeger_env",
    "jaeger_search",
    "jaeger_search_params",
    "jaeger_trace",
    "logfmt_tags",
    "procs_dir",
    "prometheus",
    "prometheus_config",
    "prometheus_exemplars",
    "prometheus_query",
    "read_otlp_json_logs",
    "span_tags",
    "stack",
    "start_alertmanager",
    "start_collector",
    "start_jaeger",
    "start_prometheus",
    "wait_for",
]
