"""promtool on the compose Prometheus config, rules and rule unit tests,
plus consistency between the rules, the runbook and the alerts table."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from .helpers import DOCS, PROM_DIR, require_binary

RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM_DIR / "tests").glob("*.yml"))


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
    assert {f.name for f in RULE_FILES} >= {"recording.yml", "trading.yml", "pipeline.yml", "host.yml", "limits.yml"}
    res = _promtool("check", "rules", *[str(f) for f in RULE_FILES])
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_unit_tests_pass() -> None:
    assert TEST_FILES, "no promtool rule tests"
    res = _promtool("test", "rules", *[str(f) for f in TEST_FILES])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(TEST_FILES)


def test_rule_unit_tests_can_fail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A wrong expectation makes promtool fail: the unit tests are not vacuous."""
    src = (PROM_DIR / "tests" / "trading_test.yml").read_text()
    broken = src.replace("20% of orders rejected on bad", "21% of orders rejected on bad")
    assert broken != src
    # outside the repo: rule_files made absolute
    broken = broken.replace("../rules/", f"{PROM_DIR}/rules/")
    bad = tmp_path / "broken_test.yml"
    bad.write_text(broken)
    good = tmp_path / "relocated_test.yml"
    good.write_text(src.replace("../rules/", f"{PROM_DIR}/rules/"))
    assert _promtool("test", "rules", str(good)).returncode == 0  # relocation is harmless
    res = _promtool("test", "rules", str(bad))
    assert res.returncode != 0
    assert "21% of orders rejected on bad" in res.stdout + res.stderr  # the expectation failed


KEY_ALERTS = {
    # trading
    "TradingOrderRejectRateHigh",
    "TradingFillLatencyP99High",
    "TradingKillSwitchEngaged",
    "TradingDrawdownHigh",
    "TradingPnLLossLimitBreached",
    "TradingMarketDataStale",
    # monitor the monitors
    "Watchdog",
    "OtelCollectorDown",
    "TargetDown",
    "OtelCollectorExportFailures",
    "OtelCollectorDroppingData",
    "OtelCollectorQueueNearlyFull",
    "TradeobsAgentExportFailures",
    "TradeobsAgentDroppingItems",
    "TradeobsAgentLogsDropped",
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
        for t in yaml.safe_load(f.read_text())["tests"]:
            for case in t.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    tested.add(case["alertname"])
    untested = (KEY_ALERTS - {"HostDiskSpaceLow", "HostDiskWillFillIn24h", "TargetDown"}) - tested
    # HostDiskSpaceCritical is tested instead of Low; TargetDown in the collector case
    assert not untested, f"key alerts without a firing unit test: {untested}"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_labels_annotations_and_docs(alert: dict) -> None:  # type: ignore[type-arg]
    name = alert["alert"]
    assert alert["labels"]["severity"] in {"critical", "warning", "info", "none"}, name
    assert alert["labels"]["team"] in {"trading", "pipeline"}, name
    assert alert["annotations"]["summary"], name
    anchor = alert["annotations"]["runbook_url"]
    m = re.fullmatch(r"docs/runbook\.md#([a-z0-9-]+)", anchor)
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
