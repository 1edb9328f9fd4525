"""The fleet live view end to end: real nats-server (JetStream), real agent processes, real gateways.

3 agent processes (2 services) publish to NATS; two ``tradeobs live gateway`` processes serve the merged
view. A browser-like SSE client (:class:`tests.integration.fleet.SSEClient`) follows gateway A, A is killed,
and it reconnects to B with its ``Last-Event-ID``: every event it missed is replayed (from B's ring and,
beyond it, from JetStream), with no ``reset``. Then NATS itself is restarted under a running fleet: agents
and gateways reconnect by themselves, and what could not be published is exactly what the agents counted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tradeobs_agent.live.nats import EVENTS_STREAM, KEY_SPAN

from .fleet import (
    FleetAgent,
    SSEClient,
    delete_stream,
    scrape,
    start_gateway,
    start_nats,
    stored_per_instance,
    stream_events,
    wait_until,
)

pytestmark = pytest.mark.integration


def _key(event_id: str) -> int:
    """An event's key (its message's JetStream sequence * 1000 + its index in the message)."""
    return int(event_id.rpartition("-")[2])


def test_a_client_of_a_killed_gateway_resumes_on_another_with_every_event_and_no_reset(tmp_path: Path) -> None:
    with start_nats(tmp_path / "nats") as nats:
        agents = [
            FleetAgent(nats.url, "alpha", "momentum", tmp_path),
            FleetAgent(nats.url, "alpha", "meanrev", tmp_path),
            FleetAgent(nats.url, "beta", "hedge", tmp_path),
        ]
        gw_a = start_gateway(nats.url, tmp_path / "a")
        # B keeps only 16 events in memory: the events the client misses are more, so B fetches them from JetStream.
        gw_b = start_gateway(nats.url, tmp_path / "b", "--event-buffer", "16")
        client = None
        try:
            for gw in (gw_a, gw_b):
                wait_until(lambda gw=gw: gw.snapshot()["health"]["instances"] == 3, "3 instances on a gateway")

            client = SSEClient(gw_a.url + "/stream")
            client.wait_for(lambda c: len(c.events) >= 40, "events from gateway A")
            first_key = _key(client.events[0][0])
            gw_a.kill()
            time.sleep(2.0)  # the fleet trades on (~80 events) while the client has no gateway
            missed_from, seen = _key(client.last_id), len(client.events)
            client.reconnect(gw_b.url + "/stream")  # sends Last-Event-ID, as EventSource does
            client.wait_for(lambda c: len(c.frames) >= 20 and len(c.events) > seen + 100, "catch-up on B")
            client.close()

            snap = wait_until(
                lambda: (s := gw_b.snapshot())["health"]["gateway"].get("fetches", 0) >= 1 and s, "B's counters"
            )
            done = [a.finish() for a in agents]
        finally:
            if client is not None:  # closed above; here after a failed assertion
                client.close()
            for a in agents:
                a.stop()
            gw_a.stop()
            gw_b.stop()

        assert client.resets == [], client.resets
        keys = client.event_keys()
        stored = stream_events(nats.url, first_key, keys[-1])
        # Every event JetStream holds between the first and the last one the client saw, once each and in order:
        # those before the kill from A, the missed ones replayed by B, and the live ones after.
        assert keys == sorted(stored), (len(keys), len(stored))
        assert [d for _, d in client.events] == [{**stored[k], "id": client.events[i][0]} for i, k in enumerate(keys)]
        assert sum(1 for k in keys if k > missed_from) > 16  # more than B's ring: some came from JetStream
        assert snap["health"]["gateway"]["fetches"] >= 1 and snap["health"]["gateway"]["replayed"] > 0

        # The merged view: per service, per strategy, and the fleet totals that add them up.
        assert snap["services"]["alpha"]["instances"] == 2 and snap["services"]["beta"]["instances"] == 1
        assert set(snap["strategies"]) == {"alpha/momentum", "alpha/meanrev", "beta/hedge"}
        fills = {k: v["fill"] for k, v in snap["services"].items()}
        assert sum(fills.values()) == sum(r["fill"] for r in snap["symbols"].values())
        strategies = snap["strategies"]
        assert fills["alpha"] == strategies["alpha/momentum"]["fill"] + strategies["alpha/meanrev"]["fill"]
        assert snap["latency"]["submit_to_fill"]["p99"] is not None
        for d in done:  # nothing was lost on the way to NATS
            assert d["dropped_events"] == 0 and d["events"] == d["produced"] and d["outbox"] == 0


def test_nats_restart_agents_and_gateways_reconnect_and_the_dropped_are_counted(tmp_path: Path) -> None:
    nats = start_nats(tmp_path / "nats")
    agents: list[FleetAgent] = []
    gw = client = None
    try:
        agents = [FleetAgent(nats.url, "alpha", "momentum", tmp_path), FleetAgent(nats.url, "beta", "hedge", tmp_path)]
        gw = start_gateway(nats.url, tmp_path / "gw")
        wait_until(lambda: gw.snapshot()["health"]["instances"] == 2, "2 instances on the gateway")
        client = SSEClient(gw.url + "/stream")
        client.wait_for(lambda c: len(c.events) >= 20, "events before the restart")
        first_key = _key(client.events[0][0])

        nats.kill()  # SIGKILL: no goodbye to anyone
        time.sleep(3.0)
        down = {a.instance: scrape(a.prometheus_url, "tradeobs_live_nats_dropped_total") for a in agents}
        for per in down.values():  # frames dropped while NATS was down, counted by kind and reason
            assert per.get((("kind", "frame"), ("reason", "disconnected")), 0) > 0, per
        nats = nats.restart()

        for a in agents:  # the agents reconnect by themselves
            wait_until(lambda a=a: scrape(a.prometheus_url, "tradeobs_live_nats_connected")[()] == 1, "agent back")
        wait_until(lambda: gw.snapshot()["health"]["gateway"]["nats"] == 1, "gateway back")
        resumed = len(client.events)
        client.wait_for(lambda c: len(c.events) >= resumed + 40, "events after the restart")
        wait_until(
            lambda: all(r["age"] == 0 and r["stale"] == 0 for r in gw.snapshot()["services"].values()), "fresh frames"
        )
        done = {a.instance: a.finish() for a in agents}

        def counted() -> dict[str, Any] | None:  # the gateway shows each service's final dropped count
            snap = gw.snapshot()
            rows = snap["services"]
            ok = all(rows[a.service]["dropped"] >= done[a.instance]["dropped_frames"] - 1 for a in agents)
            return snap if ok else None

        snap = wait_until(counted, "the agents' final dropped counts at the gateway")
        client.close()
        for a in agents:
            a.stop()
        gw.stop()
        counts = stored_per_instance(nats.url)
        stored = stream_events(nats.url, first_key, max(client.event_keys()))
    finally:  # after a failed assertion: nothing left running or open (repeated stops and closes do nothing)
        if client is not None:
            client.close()
        for a in agents:
            a.stop()
        if gw is not None:
            gw.stop()
        nats.stop()

    assert client.resets == [] and client.opens == 1  # the gateway kept serving through the NATS restart
    assert client.event_keys() == sorted(stored)  # and missed none of what JetStream stored
    for inst, d in done.items():
        # Events: each one was stored in JetStream or counted as dropped, and nothing is left behind.
        assert counts[inst] + d["dropped_events"] == d["produced"], (d, counts[inst])
        assert d["outbox"] == 0
        # Frames: the outage cost frames, each counted (also in the agent's Prometheus endpoint, above).
        assert d["dropped_frames"] > 0
    for svc, row in snap["services"].items():  # and the gateway shows each service's count
        inst = next(a.instance for a in agents if a.service == svc)
        assert row["dropped"] >= done[inst]["dropped_frames"] - 1, (row, done[inst])


def test_a_deleted_events_stream_comes_back_and_only_clients_of_the_old_one_get_a_reset(tmp_path: Path) -> None:
    with start_nats(tmp_path / "nats") as nats:
        agent = FleetAgent(nats.url, "alpha", "momentum", tmp_path)
        gw = start_gateway(nats.url, tmp_path / "gw")
        client = late = None
        try:
            wait_until(lambda: gw.snapshot()["health"]["instances"] == 1, "the instance on the gateway")
            client = SSEClient(gw.url + "/stream")
            client.wait_for(lambda c: len(c.events) >= 10, "events")
            old_id = client.last_id
            old_stream = old_id.rpartition("-")[0]
            delete_stream(nats.url, EVENTS_STREAM)  # an operator's mistake
            # The agent creates it again when it next publishes (events wait meanwhile); the gateway follows,
            # although the client library's ordered consumer has meanwhile moved on to the new stream by itself.
            client.wait_for(lambda c: c.events[-1][0].rpartition("-")[0] != old_stream, "events of the new stream")
            seen = len(client.events)
            client.wait_for(lambda c: len(c.events) >= seen + 10, "more events")
            client.close()
            late = SSEClient(gw.url + "/stream", last_id=old_id)  # a browser that kept the old stream's id
            late.wait_for(lambda c: c.resets and c.frames, "a reset, then a full frame")
            late.close()
            new_ids = [i for i, _ in client.events if i.rpartition("-")[0] != old_stream]
            stored = stream_events(nats.url, KEY_SPAN, _key(new_ids[-1]))  # the new stream from its first message
            done = agent.finish()
        finally:
            for c in (client, late):
                if c is not None:
                    c.close()
            agent.stop()
            gw.stop()
    assert client.resets == []  # the connected client just goes on, with ids of the new stream
    # every event of the new stream from its first message, once each and in order (none read as the old one's)
    assert [_key(i) for i in new_ids] == sorted(stored), (len(new_ids), len(stored))
    assert all(i.rpartition("-")[0] == new_ids[0].rpartition("-")[0] for i in new_ids)
    assert late.resets == ['{"reason":"unknown-id"}']
    assert done["dropped_events"] == 0 and done["outbox"] == 0 and done["events"] == done["produced"]


def test_the_merged_account_desk_and_working_orders_are_the_agents_own_sums(tmp_path: Path) -> None:
    """Each agent also serves its own live view: the gateway's fleet sections equal what the agents show, summed
    (or merged as documented: the reject rate from counts, limits per service/strategy, stale symbols as a union)."""
    with start_nats(tmp_path / "nats") as nats:
        agents = [
            FleetAgent(nats.url, "alpha", "momentum", tmp_path, live=True),
            FleetAgent(nats.url, "alpha", "meanrev", tmp_path, live=True),
            FleetAgent(nats.url, "beta", "hedge", tmp_path, hz=40.0, live=True),
        ]
        gw = start_gateway(nats.url, tmp_path / "gw")
        try:
            for a in agents:
                a.snapshot()  # starts the agent's own live producer (its working orders come from its bus)
            wait_until(lambda: gw.snapshot()["health"]["instances"] == 3, "3 instances on the gateway")
            # every agent has left its 5 orders working and has rejected some
            wait_until(lambda: gw.snapshot()["desk"].get("working") == 15, "15 working orders in the fleet")
            wait_until(lambda: len(gw.snapshot()["desk"].get("reasons", {})) == 2, "rejects of both services")
            for a in agents:
                a.pause()
            # No tick for STALE_AFTER seconds: every symbol is stale in every agent (3 each), and once in the fleet.
            wait_until(lambda: all(a.snapshot()["desk"].get("stale") == 3 for a in agents), "stale symbols", 20)
            wait_until(lambda: gw.snapshot()["desk"].get("stale") == 3, "stale symbols on the gateway", 20)
            own = {a.instance: a.snapshot() for a in agents}
            fleet = gw.snapshot()
            done = [a.finish() for a in agents]
        finally:
            for a in agents:
                a.stop()
            gw.stop()

    def total(section: str, key: str) -> float:
        return sum(s[section][key] for s in own.values())

    for key in ("pnl", "rpnl", "upnl", "pnl_day", "gross", "net"):
        assert fleet["account"][key] == pytest.approx(total("account", key), rel=1e-9), key
    accounts = {i: s["account"] for i, s in own.items()}
    assert fleet["account"]["pnl"] != 0 and fleet["account"]["gross"] > 0, (fleet["account"], accounts, own)
    desk = fleet["desk"]
    for key in ("open", "orders", "fills", "rejects", "working"):
        assert desk[key] == total("desk", key), key
    reasons: dict[str, float] = {}
    for s in own.values():
        for reason, n in s["desk"]["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert desk["reasons"] == reasons and set(reasons) == {"venue_reject", "risk_limit"}
    # The fleet's rate over its window (every order: the agents trade after their publisher's first frames); beta
    # rejects more often than alpha, so the mean of the instances' rates is another number.
    assert desk["reject_rate"] == float(f"{total('desk', 'rejects') / total('desk', 'orders'):.6g}")
    mean = sum(s["desk"]["rejects"] / s["desk"]["orders"] for s in own.values()) / 3
    assert desk["reject_rate"] != float(f"{mean:.6g}")
    assert 0 < desk["reject_window"] <= 300
    by_instance = {a.instance: a for a in agents}
    limits = {f"{by_instance[i].service}/{by_instance[i].strategy}/gross": s["desk"]["limits"] for i, s in own.items()}
    assert desk["limits"] == {k: v["gross"] for k, v in limits.items()}
    assert desk["stale"] == 3 and sum(s["desk"]["stale"] for s in own.values()) == 9  # a union, not a sum
    assert desk["md_age"] >= 5  # the worst feed's age: no tick anywhere for STALE_AFTER seconds
    for sym, row in fleet["symbols"].items():  # avg weighted by |position|, as one agent weighs its strategies
        rows = [s["symbols"][sym] for s in own.values() if "avg" in s["symbols"].get(sym, {})]
        weight = sum(abs(r["pos"]) for r in rows)
        assert row["avg"] == pytest.approx(sum(r["avg"] * abs(r["pos"]) for r in rows) / weight, rel=1e-5), sym
    expect = {
        f"{by_instance[i].service}/{i}/{oid}": {**row, "id": oid, "sv": by_instance[i].service}
        for i, s in own.items()
        for oid, row in s["working"].items()
    }
    assert fleet["working"] == expect and len(expect) == 15
    assert [r["t"] for r in fleet["working"].values()] == sorted(r["t"] for r in expect.values())
    for d in done:
        assert d["dropped_events"] == 0


def test_the_gateway_says_when_its_services_trading_days_start(tmp_path: Path) -> None:
    """A New York FX service and a Tokyo equities service (``trading_day_start``) publish to one gateway: each
    agent's frames carry its day start, the fleet's has it while the services agree and says ``mixed`` once they
    do not (their day P&L summed is no one day's). Before, the publisher's frames rolled at the host's midnight
    and said nothing of it."""
    ny = {"TRADEOBS_TRADING_DAY_START": "17:00 America/New_York", "TZ": "UTC"}
    with start_nats(tmp_path / "nats") as nats:
        gw = start_gateway(nats.url, tmp_path / "gw")
        agents = [FleetAgent(nats.url, "fx", "carry", tmp_path, live=True, env=ny)]
        try:
            wait_until(lambda: gw.snapshot()["health"]["instances"] == 1, "the FX service on the gateway")
            wait_until(lambda: "pnl_day" in gw.snapshot()["account"], "the FX service's day P&L on the gateway")
            account = gw.snapshot()["account"]
            assert (account["day_start"], account["day_tz"]) == ("17:00 New York", "America/New_York"), account
            own = agents[0].snapshot()["account"]
            assert (own["day_start"], own["day_tz"]) == ("17:00 New York", "America/New_York"), own
            tokyo = {"TRADEOBS_TRADING_DAY_START": "09:00 Asia/Tokyo", "TZ": "UTC"}
            agents.append(FleetAgent(nats.url, "equities", "open", tmp_path, env=tokyo))
            wait_until(lambda: gw.snapshot()["account"].get("day_start") == "mixed", "mixed day starts")
            account = gw.snapshot()["account"]
            assert account["day_full"] is False and "day_tz" not in account, account
        finally:
            for a in agents:
                a.stop()
            gw.stop()
