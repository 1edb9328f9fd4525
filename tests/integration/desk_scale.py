"""A 1,000-symbol desk for the dashboards: real ``tradeobs demo`` services scraped by a real Prometheus
running compose's rule files, and every panel query of the generated dashboards run against it.

    >>> with start_desk(tmp) as desk:                                   # doctest: +SKIP
    ...     desk.wait_for_symbols(800)
    ...     rows = measure_panels(desk.prometheus.url, DASHBOARDS)

The desk: ``instances`` demo processes (the real agent, ``tradeobs demo --symbols N``), each a service
of the ``desk`` namespace, each exposing its metrics on its own Prometheus endpoint
(``--prometheus-port``). Prometheus scrapes each as the job ``desk/<service>``, with ``honor_labels``,
every 10 s: the job, the interval and the series compose's Prometheus gets from the collector's
exporter (which names the job ``<service.namespace>/<service.name>``); no collector runs, so that the
two shared cores go to the demos and Prometheus. The rule files are compose's (recording rules
included); its global intervals too. Counter and histogram series limits are raised
(``TRADEOBS_MAX_SERIES``) as a 1,000-symbol desk must (docs/metrics.md), so that no symbol ends in the
overflow series.

Panel queries are run as Grafana runs them (tests/integration/grafana_eval.py): every variable at its
default (All where the variable has it), the dashboard's default time range, the step Grafana picks
for the panel's width on a 1920 px screen. Per query: series returned (with a finite value), samples
(points) returned, and the wall time of the HTTP request.
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .grafana_eval import DATASOURCES, Evaluator
from .procs import (
    REPO,
    ManagedProcess,
    PrometheusProc,
    free_port,
    http_get,
    http_ok,
    prometheus_query,
    start_prometheus,
    wait_for,
)

PROMETHEUS_CONFIG = REPO / "compose" / "prometheus" / "prometheus.yml"
NAMESPACE = "desk"
SCRAPE_INTERVAL = "10s"  # compose's otelcol-exporter job


@dataclass
class Desk:
    prometheus: PrometheusProc
    demos: list[ManagedProcess]
    jobs: list[str]
    symbols: int

    @property
    def procs(self) -> list[ManagedProcess]:
        return [self.prometheus.proc, *self.demos]

    def symbols_with_orders(self) -> int:
        """Symbols with at least one submitted order (any service): what the per-symbol order panels draw."""
        res = prometheus_query(self.prometheus.url, "count(count by (symbol) (trading_orders_submitted_total))")
        return int(float(res[0]["value"][1])) if res else 0

    def wait_for_symbols(self, at_least: int, timeout: float = 600.0) -> int:
        """Wait until ``at_least`` symbols have orders and the recording rules have run (a failure deadline)."""

        def ready() -> int | None:
            n = self.symbols_with_orders()
            rules = prometheus_query(self.prometheus.url, "job:trading_orders_submitted:rate5m")
            return n if n >= at_least and rules else None

        return int(wait_for(ready, f"{at_least} symbols with orders", timeout=timeout, procs=tuple(self.procs)))


def desk_prometheus_config(targets: dict[str, str], port: int) -> str:
    """compose/prometheus/prometheus.yml's globals and rule files, one job per demo service, Prometheus itself."""
    doc = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    doc["global"]["external_labels"].pop("runbook_base_url", None)
    doc["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in doc["rule_files"]]
    doc.pop("alerting", None)
    doc["scrape_configs"] = [
        {
            "job_name": job,
            "honor_labels": True,
            "scrape_interval": SCRAPE_INTERVAL,
            "static_configs": [{"targets": [target], "labels": {"component": "otel-collector"}}],
        }
        for job, target in targets.items()
    ] + [
        {
            "job_name": "prometheus",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"component": "prometheus"}}],
        }
    ]
    return yaml.safe_dump(doc, sort_keys=False)


@contextmanager
def start_desk(
    workdir: Path,
    *,
    instances: int = 2,
    symbols: int = 1000,
    orders_hz: float = 100.0,
    tick_hz: float = 2.0,
) -> Iterator[Desk]:
    """``instances`` demo services of ``symbols`` symbols each, scraped by Prometheus (compose's rules)."""
    with ExitStack() as stack:
        targets: dict[str, str] = {}
        demos: list[ManagedProcess] = []
        for i in range(instances):
            service = f"desk-{i + 1}"
            wd = workdir / service
            wd.mkdir(parents=True, exist_ok=True)
            port, prom_port = free_port(), free_port()
            env = {
                "PYTHONPATH": str(REPO / "agent"),
                "PYTHONUNBUFFERED": "1",
                "TRADEOBS_SERVICE_NAME": service,
                "TRADEOBS_ENVIRONMENT": "scale",
                "TRADEOBS_TRADING_MODE": "paper",
                "TRADEOBS_LOG_DIR": str(wd / "logs"),
                # a 1,000-symbol desk raises the per-instrument limits (docs/metrics.md), else symbols overflow
                "TRADEOBS_MAX_SERIES": "100000",
                "TRADEOBS_MAX_GAUGE_SERIES": "100000",
            }
            argv = [sys.executable, "-m", "tradeobs_agent", "demo", "--port", str(port)]
            argv += ["--prometheus-port", str(prom_port), "--symbols", str(symbols)]
            argv += ["--orders-hz", f"{orders_hz:g}", "--tick-hz", f"{tick_hz:g}", "--seed", str(11 + i)]
            proc = ManagedProcess(f"demo-{i + 1}", argv, env, wd)
            stack.callback(proc.stop)
            demos.append(proc)
            targets[f"{NAMESPACE}/{service}"] = f"127.0.0.1:{prom_port}"
        for proc, target in zip(demos, targets.values(), strict=True):
            wait_for(lambda t=target: http_ok(f"http://{t}/metrics"), f"{proc.name} metrics", procs=(proc,))
        port = free_port()
        prom = stack.enter_context(
            start_prometheus(workdir / "prometheus", desk_prometheus_config(targets, port), port=port)
        )
        yield Desk(prom, demos, list(targets), symbols)


# ---------------------------------------------------------------- measuring panels


@dataclass
class PanelQuery:
    dashboard: str
    panel: str
    panel_type: str
    ref: str
    instant: bool
    expr: str
    series: int  # with a finite value
    samples: int  # finite points returned
    seconds: float  # wall time of the HTTP request
    symbols: frozenset[str] = frozenset()  # values of the symbol label in the result
    error: str = ""


def _run(prom_url: str, q: Any) -> tuple[int, int, float, frozenset[str], str]:
    if q.instant:
        path, params = "/api/v1/query", {"query": q.target["expr"], "time": q.end}
    else:
        start = math.floor(q.start / q.step) * q.step
        path, params = "/api/v1/query_range", {"query": q.target["expr"], "start": start, "end": q.end, "step": q.step}
    t0 = time.perf_counter()
    status, body = http_get(f"{prom_url}{path}?{urllib.parse.urlencode(params)}", timeout=120)
    elapsed = time.perf_counter() - t0
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        return 0, 0, elapsed, frozenset(), f"{status} {data.get('error', body[:200])}"
    series = samples = 0
    symbols = set()
    for s in data["data"]["result"]:
        points = [s["value"]] if q.instant else s["values"]
        finite = sum(math.isfinite(float(v)) for _, v in points)
        series += finite > 0
        samples += finite
        if finite and "symbol" in s["metric"]:
            symbols.add(s["metric"]["symbol"])
    return series, samples, elapsed, frozenset(symbols), ""


def measure_panels(
    prom_url: str, dashboards: list[dict[str, Any]], choose: dict[str, dict[str, Any]] | None = None
) -> list[PanelQuery]:
    """Every Prometheus target of every panel, variables at their defaults (or ``choose[uid]``)."""
    ev = Evaluator(prom_url, "", DATASOURCES)
    out: list[PanelQuery] = []
    for dash in dashboards:
        start, end = ev.time_range(dash)
        variables = ev.resolve_variables(dash, (choose or {}).get(dash["uid"], {}), start, end)
        types = {p["title"]: p["type"] for p in dash["panels"]}
        for q in ev.queries(dash, variables, start, end):
            if q.kind != "prometheus":
                continue
            series, samples, seconds, symbols, error = _run(prom_url, q)
            out.append(
                PanelQuery(
                    dashboard=q.dashboard,
                    panel=q.panel,
                    panel_type=types[q.panel],
                    ref=q.ref,
                    instant=q.instant,
                    expr=q.target["expr"],
                    series=series,
                    samples=samples,
                    seconds=seconds,
                    symbols=symbols,
                    error=error,
                )
            )
    return out


def panel_series(rows: list[PanelQuery]) -> dict[tuple[str, str], int]:
    """What each panel draws: lines of a time series panel (its targets' series added up), values of a stat
    (likewise), rows of a table (its targets are columns merged on their labels: the most series of one)."""
    out: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.dashboard, r.panel)
        if r.panel_type == "table":
            out[key] = max(out.get(key, 0), r.series)
        else:
            out[key] = out.get(key, 0) + r.series
    return out
