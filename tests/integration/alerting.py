"""The shipped alerting, run for real in a test: a time-compressed copy of the rules, the rendered
Alertmanager config with a local webhook, and the documented time-to-notify formula.

TIME COMPRESSION (test only; the shipped files are never edited). ``speed_up_rules(files, out_dir, k)``
writes copies of ``compose/prometheus/rules/*.yml`` in which every duration that paces an alert is
divided by ``k``: ``for:``, ``keep_firing_for:``, PromQL range windows (``[5m]``, subquery ranges and
steps) and ``offset``. Nothing else changes (tests/integration/test_alerting_speedup.py checks that the
copies equal the originals once durations are masked, and that promtool accepts them). With k = 10 and
1 s scrapes/evaluations, "for 5m over rate[5m]" becomes "for 30s over rate[30s]". A test renders
compose/alertmanager/alertmanager.yml with render.sh, as the container does; test_alerts_real.py runs it as
rendered (group_wait and the Watchdog cadence are the shipped ones: the one real-pipeline test of those
values), the others may divide its route timers too (``start_alertmanager(..., factor=k)``,
``speed_up_alertmanager``), and then read group_wait from the config they run, not from the shipped file.

TIME TO NOTIFY (docs/alerts.md, "Notified within"). From the moment a fault starts, an alert reaches the
receiver within

    for + condition delay + 2 x scrape interval + evaluation interval + route group_wait + 5 s

where the condition delay is: the agent's metric export interval for alerts on agent metrics
(trading_*, tradeobs_agent_*, target_info), plus the agent's OTLP timeout for the agent-export alerts
(a failure is counted when the exporter gives up), plus the window a condition waits out for an
absence (OtelCollectorExportStalled: the sent-items window; TradingServiceTelemetryMissing: the
collector exporter's metric_expiration), plus the limit an age gauge must pass (TradingOrdersUnacknowledged,
TradingEventLoopStalled: the age counts seconds up from the fault; its limit, a value in rules/limits.yml, is not
compressed). The 5 s cover processing (export, delivery). ``Timing.compose()`` gives the compose defaults (the
figures in docs/alerts.md), the alert test builds its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "compose" / "prometheus" / "rules"
AM_DIR = REPO / "compose" / "alertmanager"
PROCESSING_ALLOWANCE = 5.0

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DUR = r"(?:\d+(?:ms|s|m|h|d|w|y))+"
_RANGE = re.compile(rf"\[({_DUR})(?::({_DUR})?)?\]")
_OFFSET = re.compile(rf"\boffset\s+({_DUR})")


def seconds(duration: str) -> float:
    """Prometheus duration -> seconds ('1h30m' -> 5400)."""
    total = 0.0
    for n, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration):
        total += int(n) * _UNITS[unit]
    if not re.fullmatch(_DUR, duration):
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return total


def duration(secs: float) -> str:
    """Seconds -> the shortest exact Prometheus duration ('30s', '1500ms', '6m')."""
    ms = round(secs * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    for unit, size in (("h", 3600), ("m", 60)):
        if s % size == 0 and s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def human(secs: float) -> str:
    """For docs: seconds rounded up to 5 s, as '3m55s'."""
    s = int(-(-secs // 5) * 5)
    m, s = divmod(s, 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


# --------------------------------------------------------------------------- time compression


def _scale_expr(expr: str, factor: float, min_range: float, where: str) -> str:
    def scaled(d: str, check: bool) -> str:
        new = seconds(d) / factor
        if check and new < min_range:
            raise ValueError(f"{where}: [{d}] / {factor:g} = {new:g}s is shorter than {min_range:g}s")
        return duration(new)

    def rng(m: re.Match[str]) -> str:
        out = "[" + scaled(m.group(1), True)
        if m.group(0).find(":") >= 0:
            out += ":" + (scaled(m.group(2), False) if m.group(2) else "")
        return out + "]"

    expr = _RANGE.sub(rng, expr)
    return _OFFSET.sub(lambda m: "offset " + scaled(m.group(1), False), expr)


def mask_durations(expr: str) -> str:
    """``expr`` with every range/offset duration replaced by D (to compare shapes)."""
    expr = _RANGE.sub(lambda m: "[D" + (":D]" if ":" in m.group(0) else "]"), expr)
    return _OFFSET.sub("offset D", expr)


def speed_up_rules(
    files: Iterable[Path], out_dir: Path, factor: float, scrape_interval: float, age_limits: Iterable[str] = ()
) -> list[Path]:
    """Time-compressed copies of the rule ``files`` in ``out_dir`` (see the module docstring).

    A range window must stay at least 4 scrape intervals long (rate() needs samples in it): a factor
    that would shorten one below that raises ValueError naming the rule. ``age_limits``: recording rules of
    rules/limits.yml in seconds (values of AGE_LIMITS: the age an order or a stalled loop may reach) whose
    ``vector(N)`` is divided by ``factor`` too; left out, a limit keeps its shipped value. One not found, or not a
    ``vector(N)``, raises ValueError naming it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    limits = set(age_limits)
    unknown = limits - set(AGE_LIMITS.values())
    if unknown:
        raise ValueError(f"age_limits: {sorted(unknown)} are not age limits; allowed: {sorted(AGE_LIMITS.values())}")
    for f in files:
        doc = yaml.safe_load(f.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                if name in limits:
                    value = re.fullmatch(r"vector\((\d+(?:\.\d+)?)\)", str(rule["expr"]).strip())
                    if value is None:
                        raise ValueError(f"{f.name}: {name}: {rule['expr']!r} is not vector(<seconds>)")
                    rule["expr"] = f"vector({float(value.group(1)) / factor:g})"
                    limits.discard(name)
                rule["expr"] = _scale_expr(str(rule["expr"]), factor, 4 * scrape_interval, f"{f.name}: {name}")
                for key in ("for", "keep_firing_for"):
                    if key in rule:
                        rule[key] = duration(seconds(str(rule[key])) / factor)
        out = out_dir / f.name
        out.write_text(
            f"# {f.name} with durations / {factor:g} (tests/integration/alerting.py)\n" + yaml.safe_dump(doc)
        )
        written.append(out)
    if limits:
        raise ValueError(f"age_limits: {sorted(limits)} not found in {[f.name for f in written]}")
    return written


def load_rules(files: Iterable[Path]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """({alert name: rule}, {recording rule name: expr})."""
    alerts: dict[str, dict[str, Any]] = {}
    records: dict[str, str] = {}
    for f in files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
                else:
                    records[rule["record"]] = str(rule["expr"])
    return alerts, records


# --------------------------------------------------------------------------- time to notify


def route_of(am_config: Mapping[str, Any], labels: Mapping[str, str]) -> tuple[float, str]:
    """(group_wait, receiver) of the Alertmanager route ``labels`` take."""

    def matches(route: Mapping[str, Any]) -> bool:
        for m in route.get("matchers") or []:
            k, op, v = re.fullmatch(r'(\w+)\s*(=~|!=|=)\s*"?(.*?)"?', m).groups()  # type: ignore[union-attr]
            got = labels.get(k, "")
            ok = got == v if op == "=" else got != v if op == "!=" else re.fullmatch(v, got) is not None
            if not ok:
                return False
        return True

    route: Mapping[str, Any] = am_config["route"]
    wait, receiver = seconds(route.get("group_wait", "30s")), route["receiver"]
    while True:
        child = next((r for r in route.get("routes") or [] if matches(r)), None)
        if child is None:
            break
        route = child
        wait = seconds(route["group_wait"]) if "group_wait" in route else wait
        receiver = route.get("receiver", receiver)
    return wait, receiver


def route_group_wait(am_config: Mapping[str, Any], labels: Mapping[str, str]) -> float | None:
    """group_wait of the Alertmanager route ``labels`` take; None when that route's receiver is "null"."""
    wait, receiver = route_of(am_config, labels)
    return None if receiver == "null" else wait


@dataclass(frozen=True)
class Timing:
    scrape_interval: float
    evaluation_interval: float
    agent_export_interval: float
    agent_otlp_timeout: float
    metric_expiration: float
    am_config: Mapping[str, Any] = field(repr=False)

    @staticmethod
    def compose(am_config: Mapping[str, Any]) -> Timing:
        """The compose stack's settings: compose/prometheus/prometheus.yml, the agent's defaults
        (TRADEOBS_METRIC_EXPORT_INTERVAL 10 s, TRADEOBS_OTLP_TIMEOUT 10 s), the collector config."""
        prom = yaml.safe_load((REPO / "compose" / "prometheus" / "prometheus.yml").read_text())
        scrapes = [seconds(prom["global"]["scrape_interval"])]
        scrapes += [seconds(j["scrape_interval"]) for j in prom["scrape_configs"] if "scrape_interval" in j]
        from tradeobs_agent.config import Settings

        defaults = Settings()
        return Timing(
            scrape_interval=max(scrapes),
            evaluation_interval=seconds(prom["global"]["evaluation_interval"]),
            agent_export_interval=defaults.metric_export_interval,
            agent_otlp_timeout=defaults.otlp_timeout,
            metric_expiration=collector_metric_expiration(),
            am_config=am_config,
        )


def collector_metric_expiration() -> float:
    text = (REPO / "collector" / "otel-collector.yaml").read_text()
    m = re.search(r"^\s+metric_expiration: (\S+)", text, re.M)
    assert m, "metric_expiration not found in collector/otel-collector.yaml"
    return seconds(m.group(1))


# The recording rule whose window an absence-type alert waits out before its condition holds.
ABSENCE_WINDOWS = {"OtelCollectorExportStalled": "job_exporter_signal:otelcol_exporter_sent:rate2m"}
# Alerts on a gauge of seconds that grows with the fault (an age), against a limits.yml value (`vector(N)`):
# the condition holds N seconds after the fault starts (an order the venue never answers, a loop blocked),
# whatever the time compression.
AGE_LIMITS = {
    "TradingOrdersUnacknowledged": "tradeobs:limit_order_ack_age:seconds",
    "TradingEventLoopStalled": "tradeobs:limit_eventloop_stall:seconds",
}
# Alerts on an instance's count of metric exports standing still (a crash): the record comparing it with its value
# an offset before, which the fault must outlast.
STALL_WINDOWS = {"TradingInstanceCrashed": "job_instance:tradeobs_agent_metric_exports:stalled30s"}
# Alerts on the agent's own export failures: a failure counts once the OTLP exporter gives up.
AGENT_EXPORT_ALERTS = {"TradeobsAgentExportFailures", "TradeobsAgentDroppingItems"}
_AGENT_FED = re.compile(r"trading_|tradeobs_agent_|target_info")


def notify_within(
    name: str, alerts: Mapping[str, Mapping[str, Any]], records: Mapping[str, str], t: Timing
) -> float | None:
    """Seconds from a fault to the notification of alert ``name`` (None: routed nowhere)."""
    rule = alerts[name]
    labels = {"alertname": name, **rule.get("labels", {})}
    wait = route_group_wait(t.am_config, labels)
    if wait is None:
        return None
    expr = str(rule["expr"])
    fed = _AGENT_FED.search(expr) or any(_AGENT_FED.search(records[r]) for r in records if r in expr)
    delay = t.agent_export_interval if fed else 0.0
    if name in AGENT_EXPORT_ALERTS:
        delay += t.agent_otlp_timeout
    if name in ABSENCE_WINDOWS:
        m = _RANGE.search(records[ABSENCE_WINDOWS[name]])
        assert m, ABSENCE_WINDOWS[name]
        delay += seconds(m.group(1))
    if name in STALL_WINDOWS:
        m = _OFFSET.search(records[STALL_WINDOWS[name]])
        assert m, STALL_WINDOWS[name]
        delay += seconds(m.group(1))
    if name in AGE_LIMITS:
        limit = re.fullmatch(r"vector\((\d+(?:\.\d+)?)\)", records[AGE_LIMITS[name]].strip())
        assert limit, AGE_LIMITS[name]
        delay += float(limit.group(1))
    if name == "TradingServiceTelemetryMissing":
        delay += t.metric_expiration
    # A subquery sees the fault at its next step (steps are aligned to multiples of the step): ServiceCrashLooping.
    delay += max((seconds(m.group(2)) for m in _RANGE.finditer(expr) if m.group(2)), default=0.0)
    pipeline = 2 * t.scrape_interval + t.evaluation_interval
    return seconds(str(rule.get("for", "0s"))) + delay + pipeline + wait + PROCESSING_ALLOWANCE


def compose_like_prometheus_config(
    targets: dict[str, str], am_target: str, rule_files: list[Path], interval: float
) -> str:
    """compose/prometheus/prometheus.yml with the local targets (jobs without one are dropped: Grafana,
    Loki do not run natively; the test Jaeger keeps its own telemetry off), the given scrape/evaluation
    interval and rule files."""
    doc = yaml.safe_load((REPO / "compose" / "prometheus" / "prometheus.yml").read_text())
    doc["global"].update(
        scrape_interval=f"{interval:g}s", evaluation_interval=f"{interval:g}s", scrape_timeout=f"{interval:g}s"
    )
    doc["rule_files"] = [str(f) for f in rule_files]
    doc["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [am_target]}]}]
    jobs = []
    for job in doc["scrape_configs"]:
        if job["job_name"] in targets:
            job.pop("scrape_interval", None)
            labels = job["static_configs"][0].get("labels", {})
            job["static_configs"] = [{"targets": [targets[job["job_name"]]], "labels": labels}]
            jobs.append(job)
    assert {j["job_name"] for j in jobs} == set(targets)
    doc["scrape_configs"] = jobs
    return yaml.safe_dump(doc)


# --------------------------------------------------------------------------- Alertmanager and a webhook


def start_compose_like_prometheus(
    stack: ExitStack,
    workdir: Path,
    collector: Any,
    am_addr: str,
    rule_files: list[Path],
    interval: float,
    *,
    extra_targets: Mapping[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Any, dict[str, str]]:
    """Debian's Prometheus (stopped with ``stack``) on :func:`compose_like_prometheus_config`: compose's jobs for
    ``collector`` (its own metrics and its Prometheus exporter), Prometheus itself and the Alertmanager at
    ``am_addr``, plus ``extra_targets``; the ``rule_files`` evaluated every ``interval`` seconds. Returns it and its
    targets (``{job: host:port}``)."""
    from .procs import free_port, start_prometheus

    port = free_port()
    targets = {
        "otelcol": collector.metrics_target,
        "otelcol-exporter": collector.prometheus_exporter_target,
        "prometheus": f"127.0.0.1:{port}",
        "alertmanager": am_addr,
        **(extra_targets or {}),
    }
    prom = stack.enter_context(
        start_prometheus(
            workdir / "prometheus",
            compose_like_prometheus_config(targets, am_addr, rule_files, interval),
            features=("expand-external-labels",),
            env=env,
            port=port,
        )
    )
    return prom, targets


def render_alertmanager(out: Path, busybox: str, **env: str) -> Path:
    """compose/alertmanager/render.sh, as the container runs it -> the rendered config file."""
    import os

    base = {"PATH": os.environ["PATH"], "ALERTMANAGER_RENDER_DIR": str(out)}
    res = subprocess.run(
        [busybox, "sh", str(AM_DIR / "render.sh")], env={**base, **env}, capture_output=True, text=True, timeout=60
    )
    if res.returncode != 0:
        raise RuntimeError(f"render.sh failed: {res.stderr}")
    return out / "alertmanager.yml"


def prometheus_alerts(prom_url: str) -> list[dict[str, Any]]:
    """Prometheus' active alerts (pending and firing), as its /api/v1/alerts lists them."""
    from .procs import http_get

    return list(json.loads(http_get(f"{prom_url}/api/v1/alerts")[1])["data"]["alerts"])


def rfc3339(ts: str) -> float:
    """An RFC 3339 time as Prometheus and Alertmanager write it (nanoseconds, "Z") -> Unix seconds."""
    import datetime

    m = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", ts)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {ts!r}")
    whole = datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return whole.timestamp() + float("0." + (m.group(2) or "0"))


#: An alert whose value is a duration (no ``for``) fires at the first evaluation that reads a sample over its limit.
#: A value over the limit stored before that evaluation and not read by an earlier one: the sample that evaluation
#: read, one scraped while an earlier evaluation ran (stored with its scrape's start time, ingested after), and one
#: more when the rule group missed an iteration on a loaded machine. A rule that fires later than at its limit (a
#: limit not compressed, a wrong comparison, a gauge read late) leaves one such value per export interval it waited.
OVER_THE_LIMIT_BEFORE_FIRING = 3


def over_the_limit_before(prom_url: str, series: str, limit: float, at: float) -> list[float]:
    """The distinct values of ``series`` over ``limit`` that Prometheus stored at or before ``at`` (Unix seconds:
    an alert's ``activeAt``/``startsAt``, the evaluation that fired it), in the last 10 minutes: what the alert had
    to read before it fired. Prometheus's own record, no clock of the test's."""
    from .procs import http_get

    q = {"query": f"{series}[10m]", "time": f"{at:.3f}"}
    status, body = http_get(f"{prom_url}/api/v1/query?{urllib.parse.urlencode(q)}")
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise ValueError(f"prometheus query {q!r} failed: {status} {body[:500]!r}")
    values = {float(v) for s in data["data"]["result"] for _, v in s["values"]}
    return sorted(v for v in values if v > limit)


AM_TIMERS = ("group_wait", "group_interval", "repeat_interval")


def speed_up_alertmanager(config: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """A rendered Alertmanager config with every route's ``group_wait``, ``group_interval`` and ``repeat_interval``
    divided by ``factor`` (the time compression of ``speed_up_rules``, for Alertmanager); nothing else changes.
    Timers a route inherits stay inherited. The formula (``notify_within``, ``route_group_wait``) and a test's waits
    read the returned config, so they follow it. The Watchdog heartbeat's cadence scales too: a test that measures
    the shipped cadence (test_alerts_real.py) runs the shipped config."""
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")

    def scaled(route: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: duration(seconds(str(v)) / factor) if k in AM_TIMERS else v for k, v in route.items()}
        if "routes" in route:
            out["routes"] = [scaled(r) for r in route["routes"]]
        return out

    return {**config, "route": scaled(config["route"])}


def start_alertmanager(work: Path, webhook_url: str, factor: float = 1) -> tuple[str, dict[str, Any], Any]:
    """compose's Alertmanager, natively: its config rendered by render.sh with the webhook's receivers, run the way
    the container runs it (render.sh execs the binary) -> (address, the config it runs, the ManagedProcess; the
    caller stops it). ``factor`` != 1: it runs ``speed_up_alertmanager(rendered, factor)`` instead (written next to
    the rendering; render.sh still renders and execs, with ``--config.file`` naming that copy)."""
    from .procs import ManagedProcess, find_binary, free_port

    addr = f"127.0.0.1:{free_port()}"
    env = {"ALERT_WEBHOOK_URL": webhook_url + "/alerts", "ALERT_DEADMANSSWITCH_URL": webhook_url + "/deadman"}
    config_path = render_alertmanager(work / "am-render", find_binary("busybox"), **env)
    config = yaml.safe_load(config_path.read_text())
    if factor != 1:
        config = speed_up_alertmanager(config, factor)
        config_path = work / "am-fast" / "alertmanager.yml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(f"# rendered, Alertmanager timers / {factor:g} (tests/integration/alerting.py)\n")
        with config_path.open("a") as f:
            yaml.safe_dump(config, f, sort_keys=False)
    proc = ManagedProcess(
        "alertmanager",
        [
            find_binary("busybox"),
            "sh",
            str(AM_DIR / "render.sh"),
            f"--config.file={config_path}",
            f"--storage.path={work / 'am-data'}",
            f"--web.listen-address={addr}",
            "--cluster.listen-address=",
        ],
        {
            "ALERTMANAGER_RENDER_DIR": str(work / "am-render"),
            "ALERTMANAGER_BIN": find_binary("prometheus-alertmanager"),
            **env,
        },
        work,
    )
    return addr, config, proc


@dataclass
class Received:
    at: float  # time.time()
    path: str
    payload: dict[str, Any]


class Webhook:
    """A local HTTP receiver for Alertmanager webhook notifications (every POST is recorded)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer._lock:
                    outer.received.append(Received(time.time(), self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def notifications(self, path: str = "/alerts", status: str = "firing") -> list[tuple[float, dict[str, Any]]]:
        """(arrival time, alert) for every alert with ``status`` in the notifications POSTed to ``path``."""
        with self._lock:
            got = list(self.received)
        return [(r.at, a) for r in got if r.path == path for a in r.payload["alerts"] if a["status"] == status]

    def receivers(self, alertname: str, **labels: str) -> set[str]:
        """The receivers (Alertmanager's name for the route's receiver, in each payload) that notified ``alertname``."""
        with self._lock:
            got = list(self.received)
        return {
            r.payload["receiver"]
            for r in got
            for a in r.payload["alerts"]
            if a["labels"]["alertname"] == alertname and all(a["labels"].get(k) == v for k, v in labels.items())
        }

    def first(self, alertname: str, **labels: str) -> tuple[float, dict[str, Any]] | None:
        for at, alert in self.notifications():
            lab = alert["labels"]
            if lab["alertname"] == alertname and all(lab.get(k) == v for k, v in labels.items()):
                return at, alert
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_notified(
    webhook: Webhook, alertname: str, deadline: float, check: Callable[[], None], **labels: str
) -> tuple[float, dict[str, Any]]:
    """Poll the webhook until ``alertname`` arrived; ``check()`` (e.g. processes alive) in between."""
    while True:
        got = webhook.first(alertname, **labels)
        if got is not None:
            return got
        if time.time() > deadline:
            raise TimeoutError(alertname)
        check()
        time.sleep(0.2)


def stale_rule_expr() -> str:
    """The expression of compose's ``TradingMarketDataStale`` alert (compose/prometheus/rules/trading.yml)."""
    groups = yaml.safe_load((REPO / "compose" / "prometheus" / "rules" / "trading.yml").read_text())["groups"]
    (expr,) = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == "TradingMarketDataStale"]
    return str(expr)
