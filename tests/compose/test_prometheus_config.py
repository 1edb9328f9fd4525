"""promtool on the compose Prometheus config, rules and rule unit tests,
plus consistency between the rules, the runbook and the alerts table."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import DOCS, PROM_DIR, REPO, require_binary, start_prometheus

RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM_DIR / "tests").glob("*.yml"))


@functools.cache
def _suite(f: Path) -> Any:
    """A rule unit test file, parsed once for the tests that only read it (3,000 lines: about a second each time)."""
    return yaml.load(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        cwd=PROM_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _alerts() -> list[dict]:  # type: ignore[type-arg]
    out = []
    for f in RULE_FILES:
        for group in yaml.safe_load(f.read_text())["groups"]:
            out += [r for r in group["rules"] if "alert" in r]
    return out


def test_check_config_includes_every_rule_file() -> None:
    res = _promtool("check", "config", "prometheus.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in res.stdout


def test_check_rules() -> None:
    assert {f.name for f in RULE_FILES} >= {
        "recording.yml",
        "trading.yml",
        "pipeline.yml",
        "stack.yml",
        "host.yml",
        "limits.yml",
    }
    res = _promtool("check", "rules", *[str(f) for f in RULE_FILES])
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_unit_tests_pass() -> None:
    assert TEST_FILES, "no promtool rule tests"
    res = _promtool("test", "rules", *[str(f) for f in TEST_FILES])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(TEST_FILES)


def test_rule_unit_tests_can_fail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A wrong expectation makes promtool fail: the unit tests are not vacuous. Only the case that holds the
    expectation is run (the whole of trading_test.yml, twice, took 25 s; test_rule_unit_tests_pass runs it)."""
    suite = yaml.safe_load((PROM_DIR / "tests" / "trading_test.yml").read_text())
    suite["tests"] = [t for t in suite["tests"] if "20% of orders rejected on bad" in yaml.safe_dump(t, width=1 << 20)]
    assert len(suite["tests"]) == 1
    # outside the repo: rule_files made absolute
    suite["rule_files"] = [str(PROM_DIR / "tests" / f) for f in suite["rule_files"]]
    src = yaml.safe_dump(suite, width=1 << 20, allow_unicode=True)
    broken = src.replace("20% of orders rejected on bad", "21% of orders rejected on bad")
    assert broken != src
    bad = tmp_path / "broken_test.yml"
    bad.write_text(broken)
    good = tmp_path / "relocated_test.yml"
    good.write_text(src)
    assert _promtool("test", "rules", str(good)).returncode == 0  # relocation is harmless
    res = _promtool("test", "rules", str(bad))
    assert res.returncode != 0
    assert "21% of orders rejected on bad" in res.stdout + res.stderr  # the expectation failed


def _seconds(d: str) -> int:
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in re.findall(r"(\d+)([smhd])", d))


def test_rule_unit_tests_evaluated_less_often_than_prometheus_test_alerts_without_for() -> None:
    """A file of rule unit tests may evaluate less often than compose's Prometheus (backup_test.yml: every hour, for
    bounds of hours) only for alerts whose firing does not depend on the steps between evaluations: no `for:` nor
    `keep_firing_for:`, and no recorded series read (a recording evaluated hourly would lag by up to an hour)."""
    shipped = _seconds(yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())["global"]["evaluation_interval"])
    rules = {a["alert"]: a for a in _alerts()}
    groups = [g for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"]]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    for f in TEST_FILES:
        suite = _suite(f)
        if _seconds(suite.get("evaluation_interval", "1m")) <= shipped:
            continue
        for t in suite["tests"]:
            assert not t.get("promql_expr_test"), f"{f.name}: {t['name']}: a query test on a sparse evaluation"
            for case in t.get("alert_rule_test", []):
                rule = rules[case["alertname"]]
                assert "for" not in rule and "keep_firing_for" not in rule, f"{f.name}: {case['alertname']} has a for:"
                reads = {n for n in recorded if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", rule["expr"])}
                assert not reads, f"{f.name}: {case['alertname']} reads recorded series {reads}"


def test_every_range_window_holds_enough_scrapes() -> None:
    """rate()/increase() need two samples in a window; a window of at least 4 of the slowest scrape
    interval of compose's Prometheus keeps that through a missed scrape or two (a shorter one would go
    empty now and then, and an alert with a `for:` over it would start over)."""
    prom = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    slowest = max(_seconds(j.get("scrape_interval", prom["global"]["scrape_interval"])) for j in prom["scrape_configs"])
    short = [
        f"{f.name}: {r.get('alert') or r.get('record')}: [{w}]"
        for f in RULE_FILES
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        for w in re.findall(r"\[(\w+)(?::\w*)?\]", str(r["expr"]))
        if _seconds(w) < 4 * slowest
    ]
    assert slowest >= 10 and not short, f"windows shorter than 4 x {slowest}s: {short}"


def test_each_histogram_bucket_rate_is_computed_once() -> None:
    """A rate over a histogram's raw buckets reads every bucket of every label set (40,000 series a service for
    a latency histogram at 1,000 symbols): each histogram and window is rated by one rule, whose recording every
    quantile reads. Three fill-latency quantiles each rated the raw buckets again: at 1,000 symbols x 2 services
    they took most of tradeobs-trading-recording's evaluation, longer than its interval on a loaded machine
    (benchmarks/rule_groups.py)."""
    readers: dict[tuple[str, str], list[str]] = {}
    for f in RULE_FILES:
        for g in yaml.safe_load(f.read_text())["groups"]:
            for r in g["rules"]:
                name = r.get("alert") or r.get("record")
                for metric, window in re.findall(r"\b(?:rate|increase)\(\s*(\w+_bucket)\b[^\[]*\[(\w+)\]", r["expr"]):
                    readers.setdefault((metric, window), []).append(f"{f.name}: {name}")
    assert readers, "no bucket rate found: the pattern no longer matches the rules"
    again = {f"{m}[{w}]": names for (m, w), names in readers.items() if len(names) > 1}
    assert not again, f"raw buckets rated by more than one rule (record the rate once, read the recording): {again}"


KEY_ALERTS = {
    # trading
    "TradingOrderRejectRateHigh",
    "TradingOrderRejectBurst",
    "TradingFillLatencyP99High",
    "TradingKillSwitchEngaged",
    "TradingDrawdownHigh",
    "TradingPnLLossLimitBreached",
    "TradingMarketDataStale",
    "TradingRiskLimitReached",
    "TradingRiskLimitBreached",
    "TradingOrderOverfilled",
    "TradingEventLoopLagHigh",
    "TradingMarketDataGaps",
    "TradingEventLoopStalled",
    # monitor the monitors
    "Watchdog",
    "OtelCollectorDown",
    "TargetDown",
    "ServiceCrashLooping",
    "OtelCollectorExportFailures",
    "OtelCollectorDroppingData",
    "OtelCollectorQueueNearlyFull",
    "TradeobsAgentExportFailures",
    "TradeobsAgentDroppingItems",
    "TradeobsAgentLogsDropped",
    "TradeobsAgentLogSinkFailing",
    "TradeobsAgentMetricOverflow",
    "TradeobsAgentInvalidInput",
    "PrometheusRuleEvaluationFailures",
    "AlertmanagerNotificationsFailing",
    "BackupTooOld",
    # host
    "HostDiskSpaceLow",
    "HostDiskWillFillIn24h",
}


def test_key_alerts_exist_and_are_unit_tested() -> None:
    names = {a["alert"] for a in _alerts()}
    assert names >= KEY_ALERTS, KEY_ALERTS - names
    tested = set()
    for f in TEST_FILES:
        for t in _suite(f)["tests"]:
            for case in t.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    tested.add(case["alertname"])
    untested = (KEY_ALERTS - {"HostDiskSpaceLow", "HostDiskWillFillIn24h", "TargetDown"}) - tested
    # HostDiskSpaceCritical is tested instead of Low; TargetDown in the collector case
    assert not untested, f"key alerts without a firing unit test: {untested}"


def test_every_alert_has_a_firing_unit_test_of_its_annotations() -> None:
    """What the person paged reads is the rendered summary: every alert has a promtool case where it
    fires with its summary written out in full (a label renamed in the expression leaves "<no value>"
    in the text, which only such a case catches). Eight alerts had none (the host alerts but the
    critical disk one, the reload failures, Loki, BackupNeverRan, the TSDB size)."""
    rendered = set()
    for f in TEST_FILES:
        for t in _suite(f)["tests"]:
            for case in t.get("alert_rule_test", []):
                for exp in case.get("exp_alerts") or []:
                    if "summary" in (exp.get("exp_annotations") or {}):
                        rendered.add(case["alertname"])
    missing = {a["alert"] for a in _alerts()} - rendered
    assert not missing, f"alerts without a unit test of their rendered summary: {sorted(missing)}"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_labels_annotations_and_docs(alert: dict) -> None:  # type: ignore[type-arg]
    name = alert["alert"]
    assert alert["labels"]["severity"] in {"critical", "warning", "info", "none"}, name
    assert alert["labels"]["team"] in {"trading", "pipeline"}, name
    assert alert["annotations"]["summary"], name
    anchor = alert["annotations"]["runbook_url"]
    # absolute: the runbook's URL comes from the runbook_base_url external label (prometheus.yml)
    m = re.fullmatch(r"\{\{ \$externalLabels\.runbook_base_url \}\}#([a-z0-9-]+)", anchor)
    assert m, anchor
    runbook = (DOCS / "runbook.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    assert m.group(1) in headings, f"{name}: no runbook section #{m.group(1)}"
    assert f"`{name}`" in (DOCS / "alerts.md").read_text(), f"{name} missing from docs/alerts.md"


def test_metric_names_in_alerts_table() -> None:
    """docs/alerts.md is the contract with the agent engineers: every
    trading_*/tradeobs_agent_* name the rules use is listed there."""
    table = (DOCS / "alerts.md").read_text()
    used: set[str] = set()
    for f in RULE_FILES:
        used |= set(re.findall(r"(?<![:\w])((?:trading|tradeobs_agent)_[a-z0-9_]+)(?![:\w])", f.read_text()))
    used = {re.sub(r"_(bucket|sum|count)$", "", u) for u in used}
    missing = {u for u in used if f"`{u}`" not in table}
    assert not missing, f"metrics used by rules but not in docs/alerts.md: {missing}"


COLLECTOR_JOBS = {"otelcol", "otelcol-exporter"}


def test_one_set_of_collector_job_names() -> None:
    """compose, the native test stack, docs/collector.md and the rules name the collector's two
    scrape jobs the same way, so OtelCollectorDown fires for each of them (and TargetDown for none)."""
    from tests.integration.procs import prometheus_config

    compose = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    compose_jobs = {j["job_name"] for j in compose["scrape_configs"] if "otel-collector" in str(j["static_configs"])}
    tests = yaml.safe_load(prometheus_config("127.0.0.1:1", "127.0.0.1:2"))
    test_jobs = {j["job_name"] for j in tests["scrape_configs"]}
    docs = set(re.findall(r"job_name: (\S+)", (DOCS / "collector.md").read_text()))
    assert compose_jobs == test_jobs == docs == COLLECTOR_JOBS
    rules = {r["alert"]: r["expr"] for r in _alerts()}
    assert rules["OtelCollectorDown"].strip() == 'up{job=~"otelcol|otelcol-exporter"} == 0'
    assert rules["TargetDown"].strip() == 'up{job!~"otelcol|otelcol-exporter"} == 0'
    text = "".join(f.read_text() for f in [*RULE_FILES, *TEST_FILES])
    assert not re.search(r'job[=:~!]*\s*"?otel-collector', text), "an old job name is left in the rules or their tests"


def test_runbook_url_base_is_configured_and_not_an_alert_label() -> None:
    compose = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    assert compose["global"]["external_labels"]["runbook_base_url"] == "${TRADEOBS_RUNBOOK_URL}"
    assert {"action": "labeldrop", "regex": "runbook_base_url"} in compose["alerting"]["alert_relabel_configs"]
    prom = yaml.safe_load((REPO / "compose" / "docker-compose.yml").read_text())["services"]["prometheus"]
    assert prom["environment"]["TRADEOBS_RUNBOOK_URL"].startswith("${TRADEOBS_RUNBOOK_URL:?")


@pytest.mark.integration
def test_runbook_url_is_absolute_on_a_real_prometheus(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    """The shipped rules, with the external label expanded from the environment as compose does it
    (Prometheus 3 always; the Debian 2.42 here with --enable-feature=expand-external-labels)."""
    base = "https://docs.example.com/ops/tradeobs/docs/runbook.md"
    config = (
        "global: {evaluation_interval: 1s, external_labels: {runbook_base_url: '${TRADEOBS_RUNBOOK_URL}'}}\n"
        "rule_files: [" + ", ".join(f"'{f}'" for f in RULE_FILES) + "]\n"
    )
    import os

    env = {**os.environ, "TRADEOBS_RUNBOOK_URL": base}
    _, url = start_prometheus(
        procs, tmp_path, "runbook", config, tmp_path / "data", ["--enable-feature=expand-external-labels"], env=env
    )
    import httpx

    from .helpers import wait_until

    def watchdog() -> dict | None:  # type: ignore[type-arg]
        alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return next((a for a in alerts if a["labels"]["alertname"] == "Watchdog"), None)

    alert = wait_until(watchdog, "the Watchdog alert")
    assert alert["annotations"]["runbook_url"] == base + "#watchdog"
