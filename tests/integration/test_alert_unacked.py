"""Orders the venue never acknowledges page, on a real pipeline; a healthy flow pages nothing.

    agent_workload.py alerts x 2 --OTLP--> otelcol-tradeobs (metrics) --> Prometheus (compose's scrape config,
    every shipped rule file time-compressed x10 as in test_alerts_real.py, the age limit too) --> Alertmanager
    (render.sh, its route timers / 10) --> webhook

Time compression (alerting.py), x FACTOR: the rules' durations as in test_alerts_real.py, and also the age limit
(``tradeobs:limit_order_ack_age:seconds``: 30 s shipped, 3 s here; an age in seconds is a duration like a ``for``) and
Alertmanager's group_wait/group_interval/repeat_interval (critical: 10 s -> 1 s). Every wait below and the bound are
computed from the compressed files this run loads, not from the shipped ones (test_alerts_real.py runs the shipped
Alertmanager timers on a real pipeline).

Two trading services place orders twice a second, every one acknowledged within the same call (healthy). For
the age limit + HEALTHY_MARGIN seconds, neither is pending or firing ``TradingOrdersUnacknowledged`` and no trading
alert is pending or firing. Then one of them stops getting answers for every 5th order (its "venue" loses them: no
ack, no fill): the alert reaches the webhook, for that service, strategy and venue only. It fired at its limit:
the notification's startsAt is Prometheus's activeAt for it, and the ages over the limit Prometheus stored until
then are the one that evaluation read and at most two it could not read earlier (alerting.over_the_limit_before):
Prometheus's own record, not the test's clock. The bound docs/alerts.md states (alerting.notify_within: the age
limit + an export + scrapes + evaluation + group_wait) and the time observed are printed, not asserted.

Before, nothing measured such an order (the submit->ack latency is recorded at the ack) and no rule could page.

Then the venue answers every order again, and the unanswered ones expire from the agent's open book (its order_ttl,
the age limit + TTL_MARGIN here): the age gauge reads 0, the agent counts them in
``trading_orders_expired_total{state="unacknowledged"}``, and the alert is still firing in Prometheus, with no
"resolved" sent. Before, the alert resolved as the gauge dropped, though no order had been answered.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import AgentWorkload, unique_service
from .agent_workload import STRATEGY, VENUE
from .alerting import (
    AGE_LIMITS,
    OVER_THE_LIMIT_BEFORE_FIRING,
    RULES_DIR,
    Timing,
    Webhook,
    load_rules,
    notify_within,
    over_the_limit_before,
    prometheus_alerts,
    rfc3339,
    speed_up_rules,
    start_alertmanager,
    start_compose_like_prometheus,
    wait_notified,
)
from .procs import (
    READY_TIMEOUT,
    free_port,
    http_ok,
    prometheus_query,
    start_collector,
    wait_for,
)

pytestmark = pytest.mark.integration

FACTOR = 10
INTERVAL = 1.0
AGENT_EXPORT_INTERVAL = 1.0  # agent_proc.EXPORT_INTERVAL
ALERT = "TradingOrdersUnacknowledged"
AGE = "trading_orders_oldest_unacknowledged_age_seconds"
LIMIT = AGE_LIMITS[ALERT]
HEALTHY_MARGIN = 15.0  # healthy for the age limit + this: past the limit, with exports and evaluations to spare
TTL_MARGIN = 10.0  # the hung service's order_ttl is the limit + this: its unanswered orders page (age) before expiring
EXPIRED = "trading_orders_expired_total"


def _limit(rule_files: list[Path]) -> float:
    """The age limit in the rule files this run loads (compressed)."""
    _, records = load_rules(rule_files)
    return float(records[LIMIT].strip().removeprefix("vector(").removesuffix(")"))


def test_an_order_the_venue_never_acknowledges_pages_and_a_healthy_flow_does_not(tmp_path: Path) -> None:
    with ExitStack() as stack:
        webhook = Webhook()
        stack.callback(webhook.close)
        # The order traces go to a port nothing listens on: this test is about metrics, and the collector keeps
        # serving them whatever its trace exporter does (test_alerts_real.py has the trace store).
        collector = stack.enter_context(start_collector(tmp_path / "collector", f"127.0.0.1:{free_port()}"))

        am_addr, am_config, am = start_alertmanager(tmp_path, webhook.url, factor=FACTOR)
        stack.callback(am.stop)

        rule_files = speed_up_rules(
            sorted(RULES_DIR.glob("*.yml")), tmp_path / "rules", FACTOR, INTERVAL, age_limits=[LIMIT]
        )
        limit = _limit(rule_files)
        healthy_seconds, order_ttl = limit + HEALTHY_MARGIN, limit + TTL_MARGIN
        prom, _ = start_compose_like_prometheus(stack, tmp_path, collector, am_addr, rule_files, INTERVAL)
        running = [collector.proc, am, prom.proc]
        wait_for(
            lambda: http_ok(f"http://{am_addr}/-/ready"), "Alertmanager ready", READY_TIMEOUT, procs=tuple(running)
        )
        calm = stack.enter_context(AgentWorkload("alerts", collector, tmp_path / "calm", unique_service("calm")))
        hung = stack.enter_context(
            AgentWorkload(
                "alerts",
                collector,
                tmp_path / "hung",
                unique_service("hung"),
                extra_env={"WORKLOAD_ORDER_TTL": str(order_ttl)},
            )
        )

        def alive() -> None:
            for p in running:
                p.check_alive()
            for w in (calm, hung):
                if w.popen.poll() is not None:
                    pytest.fail(f"agent workload exited with {w.popen.returncode}" + w.describe(), pytrace=False)

        def ours() -> list[dict[str, Any]]:
            return [a for a in prometheus_alerts(prom.url) if a["labels"]["alertname"] == ALERT]

        # The gauges arrive through the real collector, per strategy and venue, for each service.
        def both_reporting() -> bool:
            jobs = {r["metric"]["job"] for r in prometheus_query(prom.url, f'{AGE}{{strategy="{STRATEGY}"}}')}
            return jobs >= {calm.service_name, hung.service_name}

        wait_for(both_reporting, f"{AGE} of both services in Prometheus", procs=tuple(running))

        # ------------------------------------------------------------------ healthy: every order acknowledged
        healthy_until = time.time() + healthy_seconds
        worst = 0.0
        while time.time() < healthy_until:
            alive()
            assert ours() == [], f"healthy flow, yet {ours()}"
            for r in prometheus_query(prom.url, f"max({AGE})"):
                worst = max(worst, float(r["value"][1]))
            time.sleep(1)
        trading = [
            a["labels"]["alertname"] for a in prometheus_alerts(prom.url) if a["labels"]["alertname"].startswith("Trad")
        ]
        assert trading == [], f"healthy flow, yet {trading}"
        assert webhook.first(ALERT) is None

        # ------------------------------------------------------------------ the venue stops answering some orders
        fast_alerts, fast_records = load_rules(rule_files)
        timing = Timing(
            scrape_interval=INTERVAL,
            evaluation_interval=INTERVAL,
            agent_export_interval=AGENT_EXPORT_INTERVAL,
            agent_otlp_timeout=10.0,
            metric_expiration=0,
            am_config=am_config,
        )
        bound = notify_within(ALERT, fast_alerts, fast_records, timing)
        assert bound is not None
        t0 = hung.send({"cmd": "no_ack", "every": 5})["t0"]
        at, alert = wait_notified(webhook, ALERT, t0 + bound + 60, alive, job=hung.service_name)
        took = at - t0
        waiting = prometheus_query(prom.url, f'trading_orders_unacknowledged{{job="{hung.service_name}"}}')
        print(
            f"\nage limit {limit:g} s; healthy {healthy_seconds:.0f} s: "
            f"oldest unacknowledged order at most {worst:.3f} s; "
            f"{ALERT}: bound {bound:.1f} s, notified after {took:.1f} s "
            f"({waiting[0]['value'][1] if waiting else '?'} orders waiting then)"
        )
        labels = alert["labels"]
        assert (labels["strategy"], labels["venue"], labels["severity"]) == (STRATEGY, VENUE, "critical")
        assert webhook.first(ALERT, job=calm.service_name) is None, "the healthy service paged"
        assert all(a["labels"]["job"] == hung.service_name for a in ours())
        # The notification is of the firing Prometheus still has (no `for`: it fired when it became active), and
        # that firing came at the age limit, not later.
        (active,) = ours()
        starts = rfc3339(alert["startsAt"])
        assert abs(starts - rfc3339(active["activeAt"])) < 0.001, (alert, active)
        over = over_the_limit_before(prom.url, f'{AGE}{{job="{hung.service_name}"}}', limit, starts)
        print(f"ages over the limit stored when it fired: {over}")
        assert over, f"{ALERT} fired with no age over its limit {limit:g} s stored: {alert}"
        assert len(over) <= OVER_THE_LIMIT_BEFORE_FIRING, (
            f"{ALERT} fired after {len(over)} ages over {limit:g} s: {over}"
        )

        # ------------------------------------------------------------------ answered again; the lost orders expire
        hung.send({"cmd": "no_ack", "every": 0})
        job = f'job="{hung.service_name}"'

        def all_expired() -> bool:
            age = prometheus_query(prom.url, f"max({AGE}{{{job}}})")
            return bool(age) and float(age[0]["value"][1]) == 0.0

        # The last order left unanswered expires order_ttl after it was sent, then an export, a scrape.
        wait_for(all_expired, f"{AGE} of {hung.service_name} back to 0", order_ttl + 30, procs=tuple(running))
        gone_at = time.time()
        expired = prometheus_query(prom.url, f'sum({EXPIRED}{{{job}, state="unacknowledged"}})')
        assert expired and float(expired[0]["value"][1]) > 0, f"no expired unacknowledged order counted: {expired}"
        # Evaluations after the drop (the old rule resolved at the first one): still firing, same labels.
        while time.time() < gone_at + 3 * INTERVAL + 2:
            alive()
            time.sleep(0.5)
        firing = [a for a in ours() if a["labels"]["job"] == hung.service_name]
        assert [a["state"] for a in firing] == ["firing"], (
            f"the lost orders expired and the alert {firing or 'resolved'}"
        )
        assert (firing[0]["labels"]["strategy"], firing[0]["labels"]["venue"]) == (STRATEGY, VENUE)
        assert firing[0]["annotations"]["summary"].startswith("Orders expired unacknowledged on "), firing[0]
        resolved = [a for _, a in webhook.notifications(status="resolved") if a["labels"]["alertname"] == ALERT]
        assert resolved == [], f"a resolved was sent for orders nobody answered: {resolved}"
        summary = firing[0]["annotations"]["summary"]
        print(f"the lost orders out of the gauge {gone_at - t0:.1f} s after the fault; {ALERT} still firing: {summary}")
