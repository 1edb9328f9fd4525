"""The test-only time compression of the shipped rules (tests/integration/alerting.py) changes the
pace of the alerts and nothing else, and the time-to-notify formula reads the real configs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .alerting import (
    AM_TIMERS,
    RULES_DIR,
    Timing,
    duration,
    human,
    load_rules,
    mask_durations,
    notify_within,
    render_alertmanager,
    route_group_wait,
    seconds,
    speed_up_alertmanager,
    speed_up_rules,
)
from .procs import REPO, find_binary

pytestmark = pytest.mark.integration

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))


@pytest.mark.parametrize(
    ("text", "secs"), [("5m", 300), ("1h30m", 5400), ("1500ms", 1.5), ("15s", 15), ("36h", 129600)]
)
def test_durations_round_trip(text: str, secs: float) -> None:
    assert seconds(text) == secs
    assert seconds(duration(secs)) == secs


def test_compressed_rules_differ_only_in_durations(tmp_path: Path) -> None:
    out = speed_up_rules(RULE_FILES, tmp_path, 10, scrape_interval=1)
    assert [p.name for p in out] == [p.name for p in RULE_FILES]
    for orig_path, fast_path in zip(RULE_FILES, out, strict=True):
        orig = yaml.safe_load(orig_path.read_text())["groups"]
        fast = yaml.safe_load(fast_path.read_text())["groups"]
        assert [g["name"] for g in orig] == [g["name"] for g in fast]
        for og, fg in zip(orig, fast, strict=True):
            assert og.keys() == fg.keys()
            for o, f in zip(og["rules"], fg["rules"], strict=True):
                assert o.keys() == f.keys()
                assert mask_durations(str(o["expr"])) == mask_durations(str(f["expr"]))
                for key in set(o) - {"expr", "for"}:
                    assert o[key] == f[key]
                if "for" in o:
                    assert seconds(f["for"]) * 10 == seconds(o["for"])


def test_compression_scales_windows_offsets_and_for(tmp_path: Path) -> None:
    out = speed_up_rules(RULE_FILES, tmp_path, 10, scrape_interval=1)
    alerts, records = load_rules(out)
    assert alerts["TradingOrderRejectRateHigh"]["for"] == "30s"
    assert alerts["OtelCollectorDown"]["for"] == "12s"
    assert "rate(trading_orders_rejected_total[30s])" in records["job:trading_order_reject_ratio:rate5m"]
    missing = str(alerts["TradingServiceTelemetryMissing"]["expr"])
    assert 'present_over_time(target_info{trading_mode!="backtest"}[90s])' in missing
    assert "max_over_time(tradeobs_agent_stopped[90s])" in missing
    assert "increase(tradeobs_agent_logs_dropped_total[1m])" in str(alerts["TradeobsAgentLogsDropped"]["expr"])
    assert "36 * 3600" in str(alerts["BackupTooOld"]["expr"])  # plain numbers are not durations: unchanged


def test_compressed_rules_pass_promtool(tmp_path: Path) -> None:
    out = speed_up_rules(RULE_FILES, tmp_path, 10, scrape_interval=1)
    res = subprocess.run(
        [find_binary("promtool"), "check", "rules", *map(str, out)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_too_much_compression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pipeline\.yml: TradeobsAgentExportFailures: \[1m\]"):
        speed_up_rules(RULE_FILES, tmp_path, 60, scrape_interval=1)


AM = {
    "route": {
        "receiver": "webhook",
        "group_wait": "30s",
        "routes": [
            {"matchers": ['alertname="Watchdog"'], "receiver": "deadmans-switch", "group_wait": "0s"},
            {"matchers": ['severity="critical"'], "receiver": "critical", "group_wait": "10s"},
            {"matchers": ['severity="warning"'], "receiver": "webhook"},
            {"matchers": ['severity=~"info|none"'], "receiver": "null"},
        ],
    }
}


def test_route_group_wait_follows_the_routing_tree() -> None:
    assert route_group_wait(AM, {"alertname": "Watchdog", "severity": "none"}) == 0
    assert route_group_wait(AM, {"alertname": "X", "severity": "critical"}) == 10
    assert route_group_wait(AM, {"alertname": "X", "severity": "warning"}) == 30  # inherited
    assert route_group_wait(AM, {"alertname": "X", "severity": "info"}) is None  # "null": never notified
    assert route_group_wait(AM, {"alertname": "X"}) == 30


def test_notify_within_for_compose_defaults() -> None:
    alerts, records = load_rules(RULE_FILES)
    t = Timing.compose(AM)
    assert (t.scrape_interval, t.evaluation_interval, t.agent_export_interval) == (15, 15, 10)
    # for 2m + 2 scrapes + 1 evaluation + group_wait 10s + 5s
    assert notify_within("OtelCollectorDown", alerts, records, t) == 120 + 30 + 15 + 10 + 5
    # + the 2m window of delivered items that must run empty first
    assert notify_within("OtelCollectorExportStalled", alerts, records, t) == 60 + 120 + 30 + 15 + 10 + 5
    # agent metric: + one export interval; warning: group_wait 30s
    assert notify_within("TradingOrderRejectRateHigh", alerts, records, t) == 300 + 10 + 30 + 15 + 30 + 5
    # agent export failures: + the agent's OTLP timeout
    assert notify_within("TradeobsAgentExportFailures", alerts, records, t) == 300 + 20 + 30 + 15 + 30 + 5
    # an age gauge: + its limit (30 s), which the stall counts up from the block; critical: group_wait 10s
    assert notify_within("TradingEventLoopStalled", alerts, records, t) == 30 + 10 + 30 + 15 + 10 + 5
    # a crashed instance: + the stall comparison's 30 s (its count of exports flat that long); warning: group_wait 30s
    assert notify_within("TradingInstanceCrashed", alerts, records, t) == 120 + 10 + 30 + 30 + 15 + 30 + 5
    assert notify_within("PrometheusStorageNearRetentionSize", alerts, records, t) is None
    assert human(175) == "2m55s" and human(52) == "55s"


def test_docs_state_the_computed_notification_times(tmp_path: Path) -> None:
    """docs/alerts.md's "Notified within" column is the formula with the compose settings."""
    am = yaml.safe_load(
        render_alertmanager(
            tmp_path,
            find_binary("busybox"),
            ALERT_WEBHOOK_URL="http://127.0.0.1:9/hook",
            ALERT_DEADMANSSWITCH_URL="http://127.0.0.1:9/beat",
        ).read_text()
    )
    alerts, records = load_rules(RULE_FILES)
    t = Timing.compose(am)
    doc = (REPO / "docs" / "alerts.md").read_text()
    table = doc[doc.index("| Alert | Severity | Condition | For | Notified within |") :].split("\n\n")[0]
    rows = re.findall(r"^\| `(\w+)` \| \w+ \| .* \| ([^|]+) \|$", table, re.M)
    documented = {name: within.strip() for name, within in rows}
    assert set(documented) == set(alerts)
    for name in alerts:
        if name == "Watchdog":
            route = next(r for r in am["route"]["routes"] if "Watchdog" in str(r["matchers"]))
            assert seconds(route["repeat_interval"]) < seconds(route["group_interval"]) == 60
            assert documented[name] == "every 60 s"
            continue
        within = notify_within(name, alerts, records, t)
        assert documented[name] == ("not notified" if within is None else human(within)), name


def test_compressed_alertmanager_config_changes_only_the_route_timers_and_passes_amtool(tmp_path: Path) -> None:
    rendered = render_alertmanager(
        tmp_path / "render",
        find_binary("busybox"),
        ALERT_WEBHOOK_URL="http://127.0.0.1:9/hook",
        ALERT_DEADMANSSWITCH_URL="http://127.0.0.1:9/beat",
    )
    shipped = yaml.safe_load(rendered.read_text())
    fast = speed_up_alertmanager(shipped, 10)

    def timers(route: dict[str, Any], out: list[tuple[str, float]]) -> list[tuple[str, float]]:
        out += [(k, seconds(route[k])) for k in AM_TIMERS if k in route]
        for child in route.get("routes") or []:
            timers(child, out)
        return out

    def masked(route: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: ("T" if k in AM_TIMERS else v) for k, v in route.items()},
            "routes": [masked(r) for r in route.get("routes") or []],
        }

    before, after = timers(shipped["route"], []), timers(fast["route"], [])
    assert [k for k, _ in after] == [k for k, _ in before] and len(before) >= 10
    assert after == [(k, v / 10) for k, v in before]
    assert masked(fast["route"]) == masked(shipped["route"])
    assert {k: v for k, v in fast.items() if k != "route"} == {k: v for k, v in shipped.items() if k != "route"}
    # the formula reads the config it is given: a critical alert's group_wait 10 s -> 1 s
    assert route_group_wait(shipped, {"alertname": "X", "severity": "critical"}) == 10
    assert route_group_wait(fast, {"alertname": "X", "severity": "critical"}) == 1
    out = tmp_path / "fast.yml"
    out.write_text(yaml.safe_dump(fast, sort_keys=False))
    check = subprocess.run(
        [find_binary("amtool"), "check-config", str(out)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    with pytest.raises(ValueError, match="factor must be > 0"):
        speed_up_alertmanager(shipped, 0)


def test_age_limits_are_compressed_only_when_named(tmp_path: Path) -> None:
    ack, stall = "tradeobs:limit_order_ack_age:seconds", "tradeobs:limit_eventloop_stall:seconds"
    _, shipped = load_rules(RULE_FILES)
    _, plain = load_rules(speed_up_rules(RULE_FILES, tmp_path / "plain", 10, scrape_interval=1))
    assert (plain[ack], plain[stall]) == (shipped[ack], shipped[stall]) == ("vector(30)", "vector(30)")
    _, fast = load_rules(speed_up_rules(RULE_FILES, tmp_path / "fast", 10, scrape_interval=1, age_limits=[ack]))
    assert (fast[ack], fast[stall]) == ("vector(3)", "vector(30)")
    assert {k: v for k, v in fast.items() if k != ack} == {k: v for k, v in plain.items() if k != ack}
    with pytest.raises(ValueError, match=r"tradeobs:limit_pnl_loss:currency.*are not age limits"):
        speed_up_rules(
            RULE_FILES, tmp_path / "bad", 10, scrape_interval=1, age_limits=["tradeobs:limit_pnl_loss:currency"]
        )
    with pytest.raises(ValueError, match=r"tradeobs:limit_order_ack_age:seconds.*not found"):
        speed_up_rules([RULES_DIR / "trading.yml"], tmp_path / "none", 10, scrape_interval=1, age_limits=[ack])
