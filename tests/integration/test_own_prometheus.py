"""Your own Prometheus and Grafana, no collector: a Prometheus of the user's scrapes the agent's embedded endpoint.

    tradeobs demo "algo-a" :P1/metrics ──┐
    tradeobs demo "algo-b" :P2/metrics ──┴── scrape job "bots" (instance = host:port, no honor_labels) ── Debian
                                              Prometheus with compose's limits, recording, trading and pipeline
                                              rules (not stack.yml nor host.yml), durations / FACTOR

What docs/deployment.md ("Your own Prometheus and Grafana") tells such a user to do, for real:

- every rule evaluates without an error on the directly scraped series, and the ones the dashboards read have data;
- every Prometheus query of every dashboard, imported into a Grafana whose only Prometheus datasource has a UID of
  its own (not compose's ``prometheus``), runs as Grafana would run it (tests/integration/grafana_eval.py), and the
  trading and order dashboards' queries show the bots' data (before, each referred to the datasource by compose's
  UID: "datasource not found" in all 96 of them);
- a bot restarted three times on its port pages ServiceCrashLooping, and a bot that died pages
  TradingServiceTelemetryMissing (before, neither: a scrape target's own target_info was left out of both, and
  the agent serves no process_start_time_seconds).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .alerting import RULES_DIR, load_rules, prometheus_alerts, speed_up_rules
from .grafana_eval import GRAFANA, Evaluator, NotOffered, Query
from .procs import (
    READY_TIMEOUT,
    REPO,
    ManagedProcess,
    PrometheusProc,
    find_binary,
    free_port,
    http_get,
    http_ok,
    prometheus_query,
    start_prometheus,
    wait_for,
)

pytestmark = pytest.mark.integration

# The rule files a Prometheus of your own loads (docs/deployment.md): not stack.yml (its TargetDown, Prometheus and
# Alertmanager alerts watch every target of that Prometheus) nor host.yml (node-exporter's hosts).
OWN_RULE_FILES = ("limits.yml", "recording.yml", "trading.yml", "pipeline.yml")
# Rule durations divided by this (tests/integration/alerting.py): ServiceCrashLooping's 15 minutes are 3, the
# `for: 5m` of TradingServiceTelemetryMissing is 1 minute. Scrapes and evaluations every second.
FACTOR = 5
INTERVAL = 1.0
JOB = "bots"
# The user's own Grafana: one Prometheus datasource, named and identified as that Grafana chose, no Jaeger, no Loki.
USER_DATASOURCES: list[dict[str, Any]] = [
    {
        "name": "prom-main",
        "uid": "P1809F7CD0C75ACF3",
        "type": "prometheus",
        "isDefault": True,
        "jsonData": {"timeInterval": "15s"},
    }
]
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Failure deadline for data to show (5m-window recording rules at 1 s evaluations): bounds a broken test.
DEADLINE = 240.0

# Prometheus targets that stay empty here by design: (dashboard uid, panel title, refId) -> why.
LEGITIMATELY_EMPTY: dict[tuple[str, str, str], str] = {
    ("tradeobs-trading", "P&L of crashed instances (held in the totals)", "A"): "no bot has crashed yet",
}
LEGITIMATELY_EMPTY.update(
    {
        (d["uid"], p["title"], t["refId"]): "exemplar dots only: draws nothing"
        for d in (json.loads(f.read_text()) for f in DASHBOARDS)
        for p in d["panels"]
        for t in p.get("targets", [])
        if t.get("expr", "").endswith("@ 4102444800")
    }
)
# The dashboards whose every Prometheus query must show the bots' data; the pipeline health dashboard's panels are
# mostly the collector's, Jaeger's and the stack's own (none here): its queries must run, not show data.
WITH_DATA = {"tradeobs-trading", "tradeobs-order"}


@dataclass
class Bot:
    name: str
    port: int  # its embedded Prometheus endpoint
    workdir: Path
    proc: ManagedProcess | None = None
    starts: list[ManagedProcess] = field(default_factory=list)

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """``tradeobs demo`` as the bot, its endpoint on its own port (the same one at every start), no collector."""
        env = {
            "TRADEOBS_SERVICE_NAME": self.name,
            "TRADEOBS_TRADING_MODE": "paper",
            "TRADEOBS_OTLP_ENABLED": "false",
            "TRADEOBS_LOG_DIR": str(self.workdir / "logs"),
            "PYTHONUNBUFFERED": "1",
        }
        http = free_port()
        argv = [sys.executable, "-m", "tradeobs_agent.cli", "demo", "--port", str(http)]
        argv += ["--prometheus-port", str(self.port), "--symbols", "3", "--tick-hz", "5", "--orders-hz", "2"]
        argv += ["--seed", "7"]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = ManagedProcess(f"bot-{self.name}-{len(self.starts)}", argv, env, self.workdir)
        self.starts.append(self.proc)
        wait_for(
            lambda: http_ok(f"http://{self.instance}/metrics"),
            f"{self.name}'s endpoint on {self.instance}",
            timeout=READY_TIMEOUT,
            procs=(self.proc,),
        )

    def kill(self) -> None:
        """SIGKILL: a crash (no clean stop; its endpoint goes with it)."""
        if self.proc is not None and self.proc.popen.poll() is None:
            self.proc.popen.kill()
            self.proc.popen.wait()
        if self.proc is not None:
            self.proc.stop()

    def stop(self) -> None:
        for p in self.starts:
            p.stop()


@dataclass
class OwnStack:
    prometheus: PrometheusProc
    bots: tuple[Bot, Bot]


DOC = REPO / "docs" / "deployment.md"
DOC_MARKER = "<!-- own-prometheus: scrape config -->"


DOC_AM_MARKER = "<!-- own-prometheus: alertmanager -->"


def documented_config(marker: str = DOC_MARKER) -> dict[str, Any]:
    """A config docs/deployment.md ("Your own Prometheus and Grafana") gives: the block after ``marker``."""
    text = DOC.read_text()
    assert text.count(marker) == 1, f"{DOC}: the marker {marker!r} must be there once"
    m = re.search(re.escape(marker) + r"\n```text\n(.*?)\n```", text, re.S)
    assert m, f"{DOC}: a ```text block must follow {marker!r}"
    return dict(yaml.safe_load(m.group(1)))


def own_prometheus_config(targets: list[str], rule_files: list[Path]) -> str:
    """The documented config, as written but for the targets (the bots here), the rule files (time-compressed
    copies of the ones it names) and 1 s intervals."""
    doc = documented_config()
    assert [Path(f).name for f in doc["rule_files"]] == [f.name for f in rule_files]
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == JOB and "honor_labels" not in job, job
    (static,) = job["static_configs"]
    static["targets"] = targets
    doc["rule_files"] = [str(f) for f in rule_files]
    secs = f"{INTERVAL:g}s"
    doc["global"] = {"scrape_interval": secs, "evaluation_interval": secs, "scrape_timeout": secs}
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    work = tmp_path_factory.mktemp("own-prometheus")
    bots = (Bot("algo-a", free_port(), work / "algo-a"), Bot("algo-b", free_port(), work / "algo-b"))
    rules = speed_up_rules([RULES_DIR / f for f in OWN_RULE_FILES], work / "rules", FACTOR, INTERVAL)
    prom = None
    try:
        for b in bots:
            b.start()
        prom = start_prometheus(work / "prometheus", own_prometheus_config([b.instance for b in bots], rules))
        yield OwnStack(prom, bots)
    finally:
        for b in bots:
            b.stop()
        if prom is not None:
            prom.stop()


def _alive(own: OwnStack) -> tuple[ManagedProcess, ...]:
    return (own.prometheus.proc, *(b.proc for b in own.bots if b.proc is not None and b.proc.popen.poll() is None))


def test_every_rule_evaluates_on_the_directly_scraped_series(own: OwnStack) -> None:
    """No rule fails on the embedded endpoint's series (no collector labels, no trading_mode label), and the
    recorded series the dashboards and alerts read are there for the job of the user's naming."""
    needed = [
        f'job:trading_orders_submitted:rate5m{{job="{JOB}"}}',
        f'job:trading_orders_filled:rate5m{{job="{JOB}"}}',
        f'job:trading_pnl_total:sum{{job="{JOB}"}}',
        f'job_venue:trading_order_submit_to_fill_latency_seconds_bucket:rate1m{{job="{JOB}"}}',
        f'job_symbol:trading_marketdata_feed_lag_seconds:p99_1m{{job="{JOB}"}}',
    ]
    wait_for(
        lambda: all(prometheus_query(own.prometheus.url, q) for q in needed),
        f"the recorded series {needed}",
        timeout=DEADLINE,
        procs=_alive(own),
    )

    def evaluated() -> list[dict[str, Any]] | None:
        """Every rule once its group has run (health "unknown" before: the 60 s groups run a minute apart)."""
        groups = json.loads(http_get(f"{own.prometheus.url}/api/v1/rules")[1])["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return None if any(r["health"] == "unknown" for r in rules) else rules

    rules = wait_for(evaluated, "every rule group to have run", timeout=DEADLINE, procs=_alive(own))
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    print(f"\nrules loaded and evaluated: {len(rules)}; unhealthy: {len(unhealthy)}")
    assert len(rules) > 80
    assert unhealthy == []


def _queries(ev: Evaluator, now: float) -> tuple[list[str], list[Query]]:
    """-> (problems, every Prometheus query of every dashboard); a query that fails is a problem, and so is one of
    the trading or order dashboard that shows nothing (but the legitimately empty ones)."""
    problems: list[str] = []
    out: list[Query] = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        start, end = ev.time_range(dash, now)
        names = {v["name"] for v in dash.get("templating", {}).get("list", [])}
        choose: dict[str, list[str] | str] = {"job": JOB} if "job" in names else {}
        if dash["uid"] == "tradeobs-order":
            choose["symbol"] = "AAPL"
        try:
            variables = ev.resolve_variables(dash, choose, start, end)
            queries = ev.queries(dash, variables, start, end, frozenset({"prometheus"}))
        except (NotOffered, ValueError) as e:
            problems.append(f"{dash['uid']}: {e}")
            continue
        for q in queries:
            out.append(q)
            try:
                shown = ev.run(q)
            except ValueError as e:
                problems.append(f"{q.describe()}: {e}")
                continue
            if dash["uid"] in WITH_DATA and q.key not in LEGITIMATELY_EMPTY and not shown:
                problems.append(f"no data: {q.describe()}")
    return problems, out


def test_every_dashboard_query_runs_in_a_grafana_of_your_own(own: OwnStack) -> None:
    """The generated dashboards in a Grafana whose Prometheus datasource is not compose's (another UID, the only
    one): every panel finds its datasource, every Prometheus query runs, and the trading and order dashboards show
    the bots' data under the job of the user's naming."""
    ev = Evaluator(own.prometheus.url, "http://127.0.0.1:1", USER_DATASOURCES)
    deadline = time.monotonic() + DEADLINE
    while True:
        for p in _alive(own):
            p.check_alive()
        problems, queries = _queries(ev, time.time())
        if not problems:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"after {DEADLINE:.0f}s:\n  " + "\n  ".join(problems), pytrace=False)
        time.sleep(5)
    with_data = [q for q in queries if q.dashboard in WITH_DATA and q.key not in LEGITIMATELY_EMPTY]
    print(
        f"\n{len(queries)} Prometheus queries of {len(DASHBOARDS)} dashboards run against the user's datasource; "
        f"{len(with_data)} of the trading and order dashboards with data, "
        f"{sum(q.dashboard in WITH_DATA for q in queries) - len(with_data)} legitimately empty"
    )
    assert len(queries) > 80
    assert set(LEGITIMATELY_EMPTY) <= {q.key for q in queries}, set(LEGITIMATELY_EMPTY) - {q.key for q in queries}
    # Every bot is in the Service variable's series: one job, each bot its instance.
    (overview,) = [json.loads(p.read_text()) for p in DASHBOARDS if "trading-overview" in p.name]
    start, end = ev.time_range(overview, time.time())
    assert ev.resolve_variables(overview, {}, start, end)["job"].options == [JOB]
    instances = {s["metric"]["instance"] for s in prometheus_query(own.prometheus.url, "trading_equity")}
    assert instances == {b.instance for b in own.bots}


def _firing(own: OwnStack, alertname: str) -> list[dict[str, Any]]:
    return [
        a
        for a in prometheus_alerts(own.prometheus.url)
        if a["labels"]["alertname"] == alertname and a["state"] == "firing"
    ]


def test_a_bot_restarted_three_times_on_its_port_pages_crash_looping(own: OwnStack) -> None:
    """Three restarts of one bot (SIGKILL, started again on its port) within the alert's window (15 minutes / FACTOR):
    ServiceCrashLooping fires for that bot's instance, and only for it. Each start is a new target_info (its
    service.instance.id) under the same job and instance; counters start over, which rate() takes as a reset."""
    a, b = own.bots

    def target_infos() -> int:
        return len(prometheus_query(own.prometheus.url, f'target_info{{job="{JOB}", instance="{b.instance}"}}'))

    def ids() -> set[str]:
        q = f'present_over_time(target_info{{job="{JOB}", instance="{b.instance}"}}[5m])'
        return {s["metric"]["service_instance_id"] for s in prometheus_query(own.prometheus.url, q)}

    if b.proc is None or b.proc.popen.poll() is not None:
        b.start()
    wait_for(target_infos, f"{b.name}'s target_info", timeout=DEADLINE, procs=_alive(own))
    for _ in range(3):
        before = ids()
        b.kill()
        b.start()
        # scraped again, as a new process
        wait_for(lambda before=before: ids() - before, f"{b.name}'s new target_info", procs=_alive(own))
    alerts = wait_for(
        lambda: _firing(own, "ServiceCrashLooping"), "ServiceCrashLooping to fire", timeout=DEADLINE, procs=_alive(own)
    )
    assert [(x["labels"]["job"], x["labels"]["instance"]) for x in alerts] == [(JOB, b.instance)], alerts
    assert float(alerts[0]["value"]) >= 3
    assert not [x for x in alerts if x["labels"]["instance"] == a.instance]
    # the counters started over at each restart: the recorded order rate stays a rate (finite, never negative)
    rates = prometheus_query(own.prometheus.url, f'job:trading_orders_submitted:rate5m{{job="{JOB}"}}')
    assert rates and all(math.isfinite(float(s["value"][1])) and float(s["value"][1]) >= 0 for s in rates)
    resets = prometheus_query(
        own.prometheus.url, f'sum(resets(trading_marketdata_ticks_total{{instance="{b.instance}"}}[5m]))'
    )
    assert resets and float(resets[0]["value"][1]) > 0


def test_a_bot_that_died_pages_telemetry_missing(own: OwnStack) -> None:
    """A bot killed (its endpoint gone with it, `up` 0): TradingServiceTelemetryMissing fires for its instance once
    its `for` (5 minutes / FACTOR) has run, naming the bot's service; the other bot pages nothing."""
    _, b = own.bots
    if b.proc is None or b.proc.popen.poll() is not None:
        b.start()  # killed by this test's first try, when it ran again
    wait_for(
        lambda: prometheus_query(own.prometheus.url, f'up{{instance="{b.instance}"}} == 1'),
        f"{b.name} scraped",
        timeout=DEADLINE,
        procs=_alive(own),
    )
    b.kill()
    alerts = wait_for(
        lambda: _firing(own, "TradingServiceTelemetryMissing"),
        "TradingServiceTelemetryMissing to fire",
        timeout=DEADLINE,
        procs=_alive(own),
    )
    assert [(x["labels"]["job"], x["labels"].get("instance")) for x in alerts] == [(JOB, b.instance)], alerts
    assert alerts[0]["annotations"]["summary"] == f"{JOB} ({b.instance}: {b.name}) stopped sending telemetry"


def test_the_documented_alertmanager_routes_send_tradeobs_alerts_to_the_desk(tmp_path: Path) -> None:
    """The route subtree and inhibitions docs/deployment.md gives, in an Alertmanager config of the user's own (its
    root route and receiver, another team's alerts): amtool accepts it, tradeobs' critical alerts reach the desk's
    pager, its warnings the desk, and the user's other alerts stay on the user's route."""
    doc = documented_config(DOC_AM_MARKER)
    subtree = doc["route"]["routes"]
    receivers = {r["receiver"] for r in subtree} | {rr["receiver"] for r in subtree for rr in r.get("routes", [])}
    config = {
        "route": {"receiver": "ops", "group_by": ["alertname"], "routes": [*subtree]},
        "inhibit_rules": doc["inhibit_rules"],
        "receivers": [{"name": n} for n in ["ops", *sorted(receivers)]],
    }
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    amtool = find_binary("amtool")
    res = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    # every inhibition names alerts the rules have
    shipped, _ = load_rules(sorted(RULES_DIR.glob("*.yml")))
    for rule in doc["inhibit_rules"]:
        for matcher in (*rule["source_matchers"], *rule["target_matchers"]):
            names = re.fullmatch(r'alertname=~?"(.+)"', matcher)
            assert names and set(names.group(1).split("|")) <= set(shipped), matcher

    def route(*labels: str) -> str:
        argv = [amtool, "config", "routes", "test", f"--config.file={path}", *labels]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    for alert, team, severity in (
        ("TradingKillSwitchEngaged", "trading", "critical"),
        ("TradingServiceTelemetryMissing", "pipeline", "critical"),
        ("ServiceCrashLooping", "pipeline", "critical"),
    ):
        assert shipped[alert]["labels"] == {"severity": severity, "team": team}, alert
        assert route(f"alertname={alert}", f"team={team}", f"severity={severity}") == "trading-desk-pager"
    assert shipped["TradingDrawdownWarning"]["labels"]["severity"] == "warning"
    assert route("alertname=TradingDrawdownWarning", "team=trading", "severity=warning") == "trading-desk"
    assert route("alertname=PostgresDown", "team=db", "severity=critical") == "ops"
