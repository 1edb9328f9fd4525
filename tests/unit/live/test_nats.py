"""The live publisher to NATS (live_nats_url) when NATS cannot be reached: the service never notices.

The rest (a real nats-server, agents, gateways) is in tests/integration/test_live_gateway.py.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import orjson
import pytest

import tradeobs_agent
from tests._util import free_port, wait_for
from tradeobs_agent import LiveOptions
from tradeobs_agent._parsers import nats_urls
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.exceptions import TradeObsConfigError
from tradeobs_agent.live.nats import safe_url, token


def _dropped(agent: tradeobs_agent.Agent, kind: str, reason: str) -> float:
    snap = agent.registry.snapshot(["tradeobs.live.nats.dropped"])
    return sum(
        p.value for p in snap.numbers("tradeobs.live.nats.dropped") if p.attributes == {"kind": kind, "reason": reason}
    )


def test_unreachable_nats_is_counted_and_said_once_and_the_service_runs_on(caplog: pytest.LogCaptureFixture) -> None:
    url = f"nats://trader:hunter2@127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        agent = tradeobs_agent.init(
            service_name="risk", otlp=False, prometheus=False, logs=False, live=LiveOptions(nats_url=url, hz=20)
        )
        pub = agent.nats
        assert pub is not None and pub.frame_subject.startswith("tradeobs.live.risk.")
        tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="paper")
        for i in range(5):  # trading goes on: each call returns at once
            order = tt.order_signal(f"o{i}", "AAPL", "buy", 1, 100.0)
            order.submitted()
            order.fill(1, 100.0)
        wait_for(lambda: pub.stats["dropped_frames"] >= 3, "frames dropped while NATS is unreachable")
        wait_for(lambda: pub.outbox == 10, "the 10 events kept for when NATS is back")
        assert _dropped(agent, "frame", "disconnected") == pub.stats["dropped_frames"] > 0
        assert tradeobs_agent.shutdown()
    # What could never be sent is counted, by reason; nothing is left behind.
    assert _dropped(agent, "event", "shutdown") == 10 and pub.outbox == 0
    said = [r.getMessage() for r in caplog.records if "NATS" in r.getMessage()]
    assert len(said) == 1 and "unreachable" in said[0]
    assert "hunter2" not in said[0] and "trader" not in said[0]  # the URL's credentials never leave the process


def test_no_publisher_unless_the_setting_is_set() -> None:
    agent = tradeobs_agent.init(otlp=False, prometheus=False, logs=False)
    assert agent.nats is None
    tradeobs_agent.shutdown()


def test_with_the_live_stream_off_the_process_still_publishes_to_nats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """live=False (TRADEOBS_LIVE_ENABLED=false) switches off this process's own /telemetry stream; the NATS
    publisher builds its frames from the registry and the event bus, so live_nats_url alone turns it on (it used to
    be silently off with live=False)."""
    from tests.integration.fleet import start_nats

    with start_nats(tmp_path / "nats") as server:
        monkeypatch.setenv("TRADEOBS_LIVE_NATS_URL", server.url)
        monkeypatch.setenv("TRADEOBS_LIVE_ENABLED", "false")
        agent = tradeobs_agent.init(service_name="risk", otlp=False, prometheus=False, logs=False)
        assert not agent.settings.live_enabled
        pub = agent.nats
        assert pub is not None, "live_enabled=false must not switch publishing to NATS off"
        try:
            wait_for(lambda: pub.connected and pub.stats["frames"] >= 2, "frames published to NATS")
            tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="paper")
            order = tt.order_signal("o1", "AAPL", "buy", 1, 1.0)
            order.submitted()
            order.fill(1, 1.0)
            wait_for(lambda: pub.stats["events"] >= 2, "the order's events published to NATS")
        finally:
            assert tradeobs_agent.shutdown()
        assert pub.stats["dropped_events"] == 0


def test_nats_url_setting_accepts_clusters_and_hides_the_value() -> None:
    assert nats_urls("127.0.0.1:4222, tls://n2:4222") == "nats://127.0.0.1:4222,tls://n2:4222"
    assert nats_urls("") == ""
    for bad in ("http://n:4222", "nats://", "nats://n:99999"):
        with pytest.raises(ValueError, match="NATS server URLs"):
            nats_urls(bad)
    s, report = resolve_settings(env={"TRADEOBS_LIVE_NATS_URL": "http://u:secret@n:4222"})
    assert s.live_nats_url == "" and [p.setting for p in report.problems] == ["live_nats_url"]
    assert "secret" not in str(report.problems[0]) and "n:4222" in str(report.problems[0])  # the host, named
    with pytest.raises(TradeObsConfigError) as info:
        resolve_settings(env={}, live_nats_url="nats://n1:4222,tls://tok3n@n2:99999")
    assert "tok3n" not in str(info.value) and "tls://<redacted>@n2:99999" in str(info.value)


def test_subject_tokens_and_safe_urls() -> None:
    assert token("algo 1.eu*>") == "algo_1_eu__" and token("") == "_"
    assert safe_url("nats://u:p@h1:4222,tls://tok@[::1]:4223") == "nats://h1:4222,tls://[::1]:4223"


def test_a_published_frame_is_one_snapshot_whose_strategy_rows_add_up_to_its_symbols() -> None:
    agent = tradeobs_agent.init(
        service_name="risk",
        otlp=False,
        prometheus=False,
        logs=False,
        live=LiveOptions(nats_url=f"nats://127.0.0.1:{free_port()}"),  # not connected: frames are built on demand
    )
    pub = agent.nats
    assert pub is not None
    desks = [tradeobs_agent.TradingTelemetry(strategy=s, venue="paper") for s in ("a", "b")]
    frames = []
    try:
        for n in (3, 5):  # two frames: the second one's unchanged latency series come from the first (reuse)
            for i in range(n):
                tt = desks[i % 2]
                order = tt.order_signal(f"o{n}-{i}", ("AAPL", "MSFT")[i % 2], "buy", 1, 100.0)
                order.submitted()
                order.fill(1, 100.0)
            agent.registry.flush()
            frames.append(orjson.loads(pub._frame_bytes()))
    finally:
        tradeobs_agent.shutdown()
    for frame, fills in zip(frames, (3, 8), strict=True):
        symbols = frame["state"]["symbols"]
        assert sum(r["fill"] for r in symbols.values()) == fills
        assert sum(r["fill"] for r in frame["strategies"].values()) == fills
        bounds, counts, lo, hi = frame["hist"]["submit_to_fill"]
        assert sum(counts) == fills and len(counts) == len(bounds) + 1 and 0 <= lo <= hi
    assert frames[1]["seq"] == frames[0]["seq"] + 1 and frames[1]["service"] == "risk"


def test_each_nats_outage_is_said_when_it_begins_and_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The publisher warned once per process that NATS was unreachable and never said it was back: after a NATS
    restart the log showed an outage that, as far as it said, never ended. Now each outage is said at both ends
    (at most one a minute; here every one), with how long it lasted and what was dropped meanwhile."""
    from tests.integration.fleet import start_nats
    from tradeobs_agent.live import nats as live_nats

    monkeypatch.setattr(live_nats, "OUTAGE_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="tradeobs.live")
    server = start_nats(tmp_path / "nats")
    try:
        monkeypatch.setenv("TRADEOBS_LIVE_NATS_URL", server.url)
        agent = tradeobs_agent.init(service_name="risk", otlp=False, prometheus=False, logs=False, live=False)
        pub = agent.nats
        assert pub is not None
        try:
            for n in (1, 2):
                wait_for(lambda: pub.connected, "connected to NATS")
                server = server.restart()
                wait_for(lambda n=n: pub.stats["connects"] >= n + 1, f"reconnected after restart {n}")
        finally:
            assert tradeobs_agent.shutdown()
    finally:
        server.stop()
    lost = [r.getMessage() for r in caplog.records if "lost NATS at" in r.getMessage()]
    back = [r.getMessage() for r in caplog.records if "is back after" in r.getMessage()]
    assert len(lost) == 2 and len(back) == 2, (lost, back)  # and the stop itself is no outage
    assert all(re.search(r"is back after \d+\.\d s; \d+ live frame\(s\) were dropped meanwhile", m) for m in back)


def test_nats_outages_past_one_a_minute_are_counted_in_the_next_one_said(caplog: pytest.LogCaptureFixture) -> None:
    from tradeobs_agent.live.nats import NatsPublisher

    caplog.set_level(logging.INFO, logger="tradeobs.live")
    pub = NatsPublisher("nats://127.0.0.1:1", service="s", instance="i-1")
    for _ in range(3):  # three outages in a moment: the first said (both ends), the others counted
        pub._outage_began()
        pub._outage_ended()
    pub._throttle._at -= 61.0  # a minute later
    pub._outage_began()
    said = [r.getMessage() for r in caplog.records]
    assert sum("lost NATS" in m for m in said) == 2 and sum("is back after" in m for m in said) == 1, said
    assert "(2 shorter outage(s) before this one were not said)" in said[-1]
