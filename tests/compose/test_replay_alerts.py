"""A replay of a past day, scraped from the agent's real Prometheus endpoint, against compose's real alert rules:
set up as docs/metrics.md ("Replays and backtests") says, it pages nobody."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

import tradeobs_agent
from tests._util import prom_samples
from tradeobs_agent import trading
from tradeobs_agent.testing import reset

from .helpers import PROM_DIR, require_binary

SCRAPES = 61  # every 15 s for 15 minutes, as compose's Prometheus scrapes
SPEED = 50.0  # the replay runs 50x faster than the day it replays
TICKS_PER_SCRAPE = 20


def _replay(use_clock: bool) -> list[float]:
    """Replay ticks of two days ago through a real agent; ``tradeobs_agent_measurements_invalid_total`` of the
    trading instrument at each scrape of its endpoint."""
    agent = tradeobs_agent.init(
        service_name="replay", otlp=False, live=False, logs=False, prometheus=tradeobs_agent.PrometheusOptions(port=0)
    )
    assert agent.prometheus_url
    day0 = time.time() - 2 * 86_400
    replayed = [day0]
    tt = trading.TradingTelemetry(
        strategy="momentum", venue="replay", clock=(lambda: replayed[0]) if use_clock else None
    )
    values = []
    for scrape in range(SCRAPES):
        for i in range(TICKS_PER_SCRAPE):
            exchange = day0 + (scrape * TICKS_PER_SCRAPE + i) * 15.0 * SPEED / TICKS_PER_SCRAPE
            replayed[0] = exchange + 0.002
            tt.tick("AAPL", 187.0, exchange_ts=exchange, seq=scrape * TICKS_PER_SCRAPE + i)
        samples = prom_samples(agent.prometheus_url).get("tradeobs_agent_measurements_invalid_total", [])
        values.append(sum(s.value for s in samples if s.labels.get("instrument") == "trading"))
    tt.close()
    reset()
    return values


def test_a_replay_with_its_clock_fires_no_alert_and_one_without_it_is_told(tmp_path: Path) -> None:
    """Without a way to say "this is a replay", every tick of a past day was counted as invalid input (2,557 in 3 s
    of a 50x replay), and TradeobsAgentInvalidInput paged after 10 minutes of replay. With the replay's clock
    (``TradingTelemetry(clock=...)``) nothing is invalid; without it the same run still fires the alert, as a live
    feed sending no time of its own should."""
    with_clock, without = _replay(True), _replay(False)
    assert with_clock == [0.0] * SCRAPES
    assert without[-1] == SCRAPES * TICKS_PER_SCRAPE
    series = [
        {
            "series": f'tradeobs_agent_measurements_invalid_total{{job="{job}", instance="i", instrument="trading", '
            'reason="exchange_ts"}',
            "values": " ".join(str(int(v)) for v in values),
        }
        for job, values in (("replay-clock", with_clock), ("replay-no-clock", without))
    ]
    test = {
        "rule_files": [str(PROM_DIR / "rules" / "pipeline.yml")],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": 'count by (job) (ALERTS{alertname="TradeobsAgentInvalidInput", alertstate="firing"})',
                        "eval_time": "14m",
                        "exp_samples": [{"labels": '{job="replay-no-clock"}', "value": 1}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "replay_test.yml"
    path.write_text(yaml.safe_dump(test))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
