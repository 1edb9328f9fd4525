"""Alertmanager: the rendered compose config is valid (amtool), routes as
documented, keeps secrets out of the file, and a real Alertmanager delivers
an alert to the webhook receiver and (critical) by email."""

from __future__ import annotations

import base64
import json
import os
import re
import socketserver
import subprocess
import time
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.alerting import seconds, speed_up_alertmanager

from .helpers import AM_DIR, PROM_DIR, LocalServer, QuietHandler, free_port, require_binary, wait_until

RENDER = AM_DIR / "render.sh"
# The real Alertmanager below runs the rendered config with its route timers / FACTOR (critical: group_wait 10 s ->
# 2.5 s, group_interval 1 m -> 15 s): what these tests prove is routing, inhibition and delivery, not the timers
# (test_alerts_real.py runs the shipped ones on a real pipeline). A wait on a timer reads the config that runs.
FACTOR = 4


def render(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run render.sh like the container does (busybox sh + awk when present)."""
    base = {"PATH": os.environ["PATH"], "ALERTMANAGER_RENDER_DIR": str(out)}
    return subprocess.run(
        [require_binary("busybox"), "sh", str(RENDER)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


MIN = {"ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
FULL = {
    "ALERT_WEBHOOK_URL": "http://hooks.example.com/alert?team=o'brien",
    "ALERT_WEBHOOK_BEARER_TOKEN": "tok-SECRET-123",
    "ALERT_EMAIL_TO": "oncall@example.com",
    "ALERT_EMAIL_FROM": "am@example.com",
    "ALERT_SMTP_SMARTHOST": "smtp.example.com:587",
    "ALERT_SMTP_USERNAME": "am",
    "ALERT_SMTP_PASSWORD": "pw-SECRET-456",
    "ALERT_DEADMANSSWITCH_URL": "http://heartbeat.example.com/ping/abc",
}


def amtool(*args: str, binary: str = "amtool") -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary(binary), *args], capture_output=True, text=True, timeout=60)


def render_checked(
    out: Path, env: dict[str, str], amtool_binary: str = "amtool"
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """render.sh's config for ``env``, in ``out``, which ``amtool check-config`` (``amtool_binary``) accepts
    -> (the config, render.sh's run)."""
    res = render(out, **env)
    assert res.returncode == 0, res.stderr
    cfg = out / "alertmanager.yml"
    check = amtool("check-config", str(cfg), binary=amtool_binary)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    return cfg, res


@pytest.mark.parametrize("env", [MIN, FULL], ids=["minimal", "full"])
def test_rendered_config_passes_amtool(tmp_path: Path, env: dict[str, str]) -> None:
    render_checked(tmp_path, env)


def test_secrets_are_files_not_config(tmp_path: Path) -> None:
    assert render(tmp_path, **FULL).returncode == 0
    text = (tmp_path / "alertmanager.yml").read_text()
    assert "SECRET" not in text
    assert (tmp_path / "smtp_password").read_text() == FULL["ALERT_SMTP_PASSWORD"]
    assert (tmp_path / "webhook_token").read_text() == FULL["ALERT_WEBHOOK_BEARER_TOKEN"]
    assert (tmp_path / "smtp_password").stat().st_mode & 0o077 == 0
    assert f"smtp_auth_password_file: '{tmp_path}/smtp_password'" in text
    assert "url: 'http://hooks.example.com/alert?team=o''brien'" in text  # YAML-escaped


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ALERT_WEBHOOK_URL"),
        ({**MIN, "ALERT_EMAIL_TO": "a@example.com"}, "ALERT_SMTP_SMARTHOST"),
        ({**MIN, "ALERT_SMTP_REQUIRE_TLS": "yes"}, "ALERT_SMTP_REQUIRE_TLS"),
    ],
)
def test_render_rejects_incomplete_settings(tmp_path: Path, env: dict[str, str], message: str) -> None:
    res = render(tmp_path, **env)
    assert res.returncode != 0
    assert message in res.stderr


def _route(cfg: Path, *labels: str) -> str:
    res = amtool("config", "routes", "test", f"--config.file={cfg}", *labels)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.strip()


def test_routing(tmp_path: Path) -> None:
    full, minimal = tmp_path / "full", tmp_path / "min"
    assert render(full, **FULL).returncode == 0
    assert render(minimal, **MIN).returncode == 0
    f, m = full / "alertmanager.yml", minimal / "alertmanager.yml"
    assert _route(f, "alertname=Watchdog", "severity=none") == "deadmans-switch"
    assert _route(m, "alertname=Watchdog", "severity=none") == "null"
    assert _route(f, "alertname=TradingKillSwitchEngaged", "severity=critical") == "critical"
    assert _route(f, "alertname=TradingOrderRejectRateHigh", "severity=warning") == "webhook"
    # a worker crashed among live ones: its book is held, the desk's totals are right; a warning, no page
    assert _route(f, "alertname=TradingInstanceCrashed", "severity=warning", "team=trading", "job=desk") == "webhook"
    assert _route(f, "alertname=PrometheusStorageNearRetentionSize", "severity=info") == "null"
    assert _route(f, "alertname=Unlabelled") == "webhook"
    # a backtest or replay pages nobody, even from a rule of the deployment's own that keeps trading_mode
    assert _route(f, "alertname=TradingKillSwitchEngaged", "severity=critical", "trading_mode=backtest") == "null"
    assert _route(f, "alertname=TradingKillSwitchEngaged", "severity=critical", "trading_mode=paper") == "critical"
    # without ALERT_EMAIL_TO the critical receiver has no email config
    assert "email_configs" not in m.read_text()
    assert "email_configs" in f.read_text()


def test_every_trading_alert_holding_a_gauge_is_muted_by_a_collector_outage() -> None:
    """A trading alert that holds a gauge's last value (last_over_time) resolves in Prometheus once a collector
    outage has lasted 5 minutes, though nothing changed at the service: OtelCollectorDown inhibits each of them.
    TradingRiskLimitReached (added with the risk-limit alerts) holds the utilization gauge the same way, and
    TradingOrdersUnacknowledged the oldest unacknowledged order's age."""
    rules = yaml.safe_load((PROM_DIR / "rules" / "trading.yml").read_text())["groups"]
    holding = {r["alert"] for g in rules for r in g["rules"] if "alert" in r and "last_over_time(" in r["expr"]}
    assert {"TradingRiskLimitReached", "TradingOrdersUnacknowledged"} <= holding
    config = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text())
    muted: set[str] = set()
    for rule in config["inhibit_rules"]:
        if rule["source_matchers"] == ['alertname="OtelCollectorDown"']:
            for m in rule["target_matchers"]:
                names = re.fullmatch(r'alertname=~?"(.+)"', m)
                assert names, m
                muted |= {n for n in holding if re.fullmatch(names.group(1), n)}
    assert holding - muted == set(), f"not muted while the collector is down: {sorted(holding - muted)}"


# --- a real Alertmanager delivering notifications ---------------------------


class _Webhook(LocalServer):
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.end_headers()

        super().__init__(HTTPServer, Handler)
        self.url = f"http://{self.address}/hook"


class _Smtp(LocalServer):
    """Minimal SMTP server (EHLO, AUTH PLAIN, MAIL, RCPT, DATA) recording
    messages and the credentials used."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                msg: dict[str, Any] = {"rcpt": []}
                self.reply("220 test ESMTP")
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode().rstrip("\r\n")
                    cmd = line.split(" ", 1)[0].upper()
                    if cmd in ("EHLO", "HELO"):
                        self.reply("250-test")
                        self.reply("250 AUTH PLAIN")
                    elif cmd == "AUTH":
                        parts = line.split(" ")
                        if len(parts) < 3:
                            self.reply("334 ")
                            parts.append(self.rfile.readline().decode().strip())
                        _, user, pw = base64.b64decode(parts[2]).decode().split("\0")
                        msg["auth"] = (user, pw)
                        self.reply("235 ok")
                    elif cmd == "MAIL":
                        msg["from"] = line
                        self.reply("250 ok")
                    elif cmd == "RCPT":
                        msg["rcpt"].append(line)
                        self.reply("250 ok")
                    elif cmd == "DATA":
                        self.reply("354 go")
                        data = []
                        while (d := self.rfile.readline().decode()) not in (".\r\n", ".\n", ""):
                            data.append(d)
                        msg["data"] = "".join(data)
                        outer.messages.append(msg)
                        msg = {"rcpt": []}
                        self.reply("250 queued")
                    elif cmd == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        super().__init__(socketserver.ThreadingTCPServer, Handler)


@pytest.fixture
def webhook() -> Iterator[_Webhook]:
    w = _Webhook()
    yield w
    w.close()


@pytest.fixture
def smtp() -> Iterator[_Smtp]:
    s = _Smtp()
    yield s
    s.close()


def _fast_config(tmp_path: Path) -> Path:
    return tmp_path / "fast" / "alertmanager.yml"


def start_rendered(
    tmp_path: Path, procs: Any, binary: str, alert_env: dict[str, str], factor: float
) -> tuple[str, Path]:
    """compose's Alertmanager as its container runs it: render.sh renders the config from ``alert_env`` (the
    ``ALERT_*`` variables) and execs ``binary`` on a copy whose route timers are / ``factor``
    (:func:`_fast_config`). -> (its URL, its log)."""
    out = tmp_path / "render"
    rendered = render(out, **alert_env)
    assert rendered.returncode == 0, rendered.stderr
    fast = _fast_config(tmp_path)
    fast.parent.mkdir()
    fast.write_text(
        yaml.safe_dump(speed_up_alertmanager(yaml.safe_load((out / "alertmanager.yml").read_text()), factor))
    )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    proc = procs(
        [
            require_binary("busybox"),
            "sh",
            str(RENDER),
            f"--config.file={fast}",
            f"--storage.path={tmp_path}/data",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        log,
        env={"PATH": os.environ["PATH"], "ALERTMANAGER_RENDER_DIR": str(out), "ALERTMANAGER_BIN": binary, **alert_env},
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        proc.assert_running()
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

    wait_until(ready, "alertmanager ready")
    return url, log


@pytest.fixture
def alertmanager(tmp_path: Path, procs, webhook: _Webhook, smtp: _Smtp) -> str:  # type: ignore[no-untyped-def]
    """The compose Alertmanager config, rendered against local receivers, its route timers / FACTOR, run by render.sh
    as the container entrypoint does (render.sh renders, then execs the binary on the copy --config.file names)."""
    env = {
        "ALERT_WEBHOOK_URL": webhook.url,
        "ALERT_WEBHOOK_BEARER_TOKEN": "hook-token-1",
        "ALERT_EMAIL_TO": "oncall@example.com",
        "ALERT_EMAIL_FROM": "am@example.com",
        "ALERT_SMTP_SMARTHOST": smtp.address,
        "ALERT_SMTP_USERNAME": "am-user",
        "ALERT_SMTP_PASSWORD": "am-password",
        "ALERT_SMTP_REQUIRE_TLS": "false",
    }
    url, _ = start_rendered(tmp_path, procs, require_binary("prometheus-alertmanager"), env, FACTOR)
    return url


def _post(url: str, *alerts: dict[str, str]) -> None:
    body = [{"labels": a, "annotations": {"summary": a["alertname"]}} for a in alerts]
    r = httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5)
    assert r.status_code == 200, r.text


@pytest.mark.integration
def test_critical_alert_reaches_webhook_and_email(alertmanager: str, webhook: _Webhook, smtp: _Smtp) -> None:
    _post(
        alertmanager,
        {"alertname": "TradingKillSwitchEngaged", "severity": "critical", "job": "trader", "strategy": "mm"},
    )
    headers, payload = wait_until(
        lambda: webhook.received and webhook.received[0], "webhook notification", deadline_s=90
    )
    assert headers["Authorization"] == "Bearer hook-token-1"
    assert payload["receiver"] == "critical"
    assert payload["status"] == "firing"
    assert payload["alerts"][0]["labels"]["alertname"] == "TradingKillSwitchEngaged"

    mail = wait_until(lambda: smtp.messages and smtp.messages[0], "email notification", deadline_s=90)
    assert mail["auth"] == ("am-user", "am-password")  # read from smtp_auth_password_file
    assert any("oncall@example.com" in r for r in mail["rcpt"])
    assert "[tradeobs FIRING] TradingKillSwitchEngaged trader" in mail["data"]


@pytest.mark.integration
def test_kill_switch_inhibits_noisy_trading_alerts(alertmanager: str) -> None:
    _post(
        alertmanager,
        {"alertname": "TradingKillSwitchEngaged", "severity": "critical", "job": "trader"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", "job": "trader"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", "job": "other"},
    )

    def states() -> dict[str, list[str]] | None:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        got = {f"{a['labels']['alertname']}/{a['labels']['job']}": a["status"]["inhibitedBy"] for a in alerts}
        return got if len(got) == 3 and got["TradingOrderRejectRateHigh/trader"] else None

    got = wait_until(states, "inhibition to apply")
    assert got["TradingKillSwitchEngaged/trader"] == []
    assert got["TradingOrderRejectRateHigh/trader"]  # inhibited by the kill switch
    assert got["TradingOrderRejectRateHigh/other"] == []  # other service: still notified


@pytest.mark.integration
def test_a_reject_burst_mutes_the_same_books_reject_rate_warning(alertmanager: str) -> None:
    """A burst of rejects pages at once (TradingOrderRejectBurst, critical) and also drives the 5-minute reject ratio
    over its limit: TradingOrderRejectRateHigh then warned about the same rejects minutes later. Muted while the burst
    fires, for the same strategy on the same venue only."""
    book = {"job": "desk", "trading_mode": "paper", "strategy": "mm"}
    _post(
        alertmanager,
        {"alertname": "TradingOrderRejectBurst", "severity": "critical", **book, "venue": "X"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", **book, "venue": "X"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", **book, "venue": "Y"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", **book, "strategy": "arb", "venue": "X"},
    )

    def states() -> dict[str, list[str]] | None:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        got = {
            f"{a['labels']['alertname']}/{a['labels']['strategy']}/{a['labels']['venue']}": a["status"]["inhibitedBy"]
            for a in alerts
            if a["labels"].get("job") == "desk" and a["labels"]["alertname"].startswith("TradingOrderReject")
        }
        return got if len(got) == 4 and got["TradingOrderRejectRateHigh/mm/X"] else None

    got = wait_until(states, "inhibition to apply")
    assert got["TradingOrderRejectBurst/mm/X"] == []
    assert got["TradingOrderRejectRateHigh/mm/X"]  # the burst's own book: the same rejects
    assert got["TradingOrderRejectRateHigh/mm/Y"] == []  # another venue: news
    assert got["TradingOrderRejectRateHigh/arb/X"] == []  # another strategy: news


@pytest.mark.integration
def test_a_nearly_full_disk_pages_once_not_three_times(alertmanager: str) -> None:
    """Under 5% free, all three disk alerts hold for the same filesystem (< 15%, < 5%, the 24h
    prediction): the critical one is the news, the two warnings about the same mountpoint are not.
    The generic "critical silences warning" rule needs the same alertname, so before, the webhook got
    HostDiskSpaceLow, HostDiskWillFillIn24h and HostDiskSpaceCritical, three groups for one disk."""
    disk = {"job": "node", "instance": "node-exporter:9100", "device": "sda1", "fstype": "ext4"}
    _post(
        alertmanager,
        {"alertname": "HostDiskSpaceCritical", "severity": "critical", **disk, "mountpoint": "/"},
        {"alertname": "HostDiskSpaceLow", "severity": "warning", **disk, "mountpoint": "/"},
        {"alertname": "HostDiskWillFillIn24h", "severity": "warning", **disk, "mountpoint": "/"},
        {"alertname": "HostDiskSpaceLow", "severity": "warning", **disk, "mountpoint": "/var/lib/docker"},
    )

    def states() -> dict[str, list[str]] | None:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        got = {f"{a['labels']['alertname']}{a['labels']['mountpoint']}": a["status"]["inhibitedBy"] for a in alerts}
        return got if len(got) == 4 and got["HostDiskSpaceLow/"] else None

    got = wait_until(states, "inhibition to apply")
    assert got["HostDiskSpaceCritical/"] == []
    assert got["HostDiskWillFillIn24h/"]  # same filesystem: the critical alert says it all
    assert got["HostDiskSpaceLow/var/lib/docker"] == []  # another filesystem: still notified


@pytest.mark.integration
def test_a_collector_outage_sends_no_resolved_trading_alert(
    alertmanager: str, webhook: _Webhook, tmp_path: Path
) -> None:
    """The collector down: the services' series vanish and a trading alert already sent resolves in
    Prometheus (after holding its last value for 5 minutes) although nothing changed at the service.
    While OtelCollectorDown fires, that "resolved" is muted: before, the webhook got it, one per
    firing trading alert, and then a new page for each once the collector was back."""
    kill = {"alertname": "TradingKillSwitchEngaged", "severity": "critical", "job": "trader", "strategy": "mm"}
    _post(alertmanager, kill)
    wait_until(lambda: webhook.received, "the kill switch notification", deadline_s=90)
    down = {"alertname": "OtelCollectorDown", "severity": "critical", "job": "otelcol-exporter"}
    _post(alertmanager, down)
    wait_until(lambda: len(webhook.received) >= 2, "the OtelCollectorDown notification", deadline_s=90)
    body = [{"labels": kill, "annotations": {"summary": "x"}, "endsAt": "2000-01-01T00:00:00Z"}]
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=body, timeout=5).status_code == 200
    # the kill switch's group flushes again within its route's group_interval (critical: 1 m shipped, / FACTOR here)
    # of the resolve: that flush would carry the "resolved". Wait it, and a quarter more for delivery.
    critical = next(
        r
        for r in yaml.safe_load(_fast_config(tmp_path).read_text())["route"]["routes"]
        if r["matchers"] == ['severity="critical"']
    )
    time.sleep(seconds(critical["group_interval"]) * 1.25)
    sent = [(a["labels"]["alertname"], a["status"]) for _, p in webhook.received for a in p["alerts"]]
    assert ("TradingKillSwitchEngaged", "resolved") not in sent, sent


@pytest.mark.integration
def test_a_collector_outage_is_one_page_not_one_per_scrape_job(alertmanager: str, webhook: _Webhook) -> None:
    """A collector down fails both of its scrape jobs (its own telemetry and the exporter of the services'
    metrics), so OtelCollectorDown fires for each. Grouped by job, that was two pages for one outage."""
    for job, port in (("otelcol", 8888), ("otelcol-exporter", 8889)):
        down = {"alertname": "OtelCollectorDown", "severity": "critical", "job": job}
        _post(alertmanager, {**down, "instance": f"otel-collector:{port}"})

    def sent() -> list[list[str]] | None:
        pages = [
            [a["labels"]["job"] for a in p["alerts"] if a["labels"]["alertname"] == "OtelCollectorDown"]
            for _, p in webhook.received
        ]
        pages = [p for p in pages if p]
        return pages if sum(len(p) for p in pages) >= 2 else None

    pages = wait_until(sent, "both OtelCollectorDown alerts to be sent", deadline_s=90)
    assert [sorted(p) for p in pages] == [["otelcol", "otelcol-exporter"]]


@pytest.mark.integration
def test_two_strategies_past_the_loss_limit_are_two_pages_each_naming_its_strategy(
    alertmanager: str, webhook: _Webhook, smtp: _Smtp
) -> None:
    """Several strategies run in one service, and the loss limit pages per strategy. Grouped by job, a
    second strategy's breach joined the first one's group: one notification (and one email titled by
    the job alone) carried both, and a breach after the first page went out a group_interval later in a
    notification that looked like a repeat. Now each strategy is a page of its own, its email subject
    naming the strategy."""
    for strategy in ("mm", "arb"):
        _post(
            alertmanager,
            {"alertname": "TradingPnLLossLimitBreached", "severity": "critical", "job": "desk", "strategy": strategy},
        )

    def pages() -> list[list[str]] | None:
        got = [[a["labels"]["strategy"] for a in p["alerts"]] for _, p in webhook.received]
        return got if sum(len(g) for g in got) >= 2 else None

    got = wait_until(pages, "both loss-limit alerts to be sent", deadline_s=90)
    assert sorted(got) == [["arb"], ["mm"]], got
    mails = wait_until(lambda: len(smtp.messages) >= 2 and smtp.messages, "both emails", deadline_s=90)
    subjects = sorted(line for m in mails for line in m["data"].splitlines() if line.startswith("Subject:"))
    assert subjects == [
        "Subject: [tradeobs FIRING] TradingPnLLossLimitBreached desk strategy arb",
        "Subject: [tradeobs FIRING] TradingPnLLossLimitBreached desk strategy mm",
    ], subjects


@pytest.mark.integration
def test_a_strategys_kill_switch_mutes_only_that_strategys_alerts(alertmanager: str) -> None:
    """The kill switch is a strategy's (trading_risk_kill_switch_engaged{strategy}): it mutes that
    strategy's rejects (at risk, reason kill_switch) and drawdown warning. With `equal: [job]` it also
    muted every other strategy of the service, which still trade, and the service's fill latency."""
    _post(
        alertmanager,
        {"alertname": "TradingKillSwitchEngaged", "severity": "critical", "job": "desk", "strategy": "mm"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", "job": "desk", "strategy": "mm"},
        {"alertname": "TradingOrderRejectRateHigh", "severity": "warning", "job": "desk", "strategy": "arb"},
        {"alertname": "TradingDrawdownWarning", "severity": "warning", "job": "desk", "strategy": "arb"},
        {"alertname": "TradingFillLatencyP99High", "severity": "warning", "job": "desk"},
        # the burst of kill_switch rejects at risk the engaged strategy's orders make: a consequence too
        {"alertname": "TradingOrderRejectBurst", "severity": "critical", "job": "desk", "strategy": "mm"},
        # (on another venue than arb's reject-rate warning, which a burst of the same book would mute)
        {"alertname": "TradingOrderRejectBurst", "severity": "critical", "job": "desk", "strategy": "arb"}
        | {"venue": "Y"},
    )

    def states() -> dict[str, list[str]] | None:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        got = {
            f"{a['labels']['alertname']}/{a['labels'].get('strategy', '')}": a["status"]["inhibitedBy"] for a in alerts
        }
        ready = got.get("TradingOrderRejectRateHigh/mm") and got.get("TradingOrderRejectBurst/mm")
        return got if len(got) == 7 and ready else None

    got = wait_until(states, "inhibition to apply")
    assert got["TradingKillSwitchEngaged/mm"] == []
    assert got["TradingOrderRejectRateHigh/mm"]  # the engaged strategy's rejects: a consequence
    assert got["TradingOrderRejectRateHigh/arb"] == []  # another strategy: still news
    assert got["TradingOrderRejectBurst/mm"]
    assert got["TradingOrderRejectBurst/arb"] == []
    assert got["TradingDrawdownWarning/arb"] == []
    assert got["TradingFillLatencyP99High/"] == []
