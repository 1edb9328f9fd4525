"""events: the bounded event bus the live stream replays."""

from __future__ import annotations

import threading

import pytest

from tradeobs_agent import events
from tradeobs_agent.events import Event, EventBus


def test_event_fields_and_immutability() -> None:
    bus = EventBus()
    seq = bus.publish("fill", symbol="AAPL", qty=100)
    (e,) = bus.since(0)
    assert type(e) is Event
    assert (e.seq, e.kind, e.data) == (seq, "fill", {"symbol": "AAPL", "qty": 100})
    assert isinstance(e.ts, float) and e.ts > 0
    with pytest.raises(AttributeError):
        e.kind = "other"  # type: ignore[misc]
    assert Event(1, "k", 2.0, {}) == Event(seq=1, kind="k", ts=2.0, data={})


def test_since_returns_exactly_the_events_after_seq() -> None:
    bus = EventBus(capacity=100)
    seqs = [bus.publish("e", i=i) for i in range(50)]
    assert seqs == list(range(1, 51))
    for after in (0, 1, 17, 49):
        got = bus.since(after)
        assert [e.seq for e in got] == list(range(after + 1, 51))
        assert [e.data["i"] for e in got] == list(range(after, 50))
    assert bus.since(50) == [] and bus.since(99) == []
    assert [e.seq for e in bus.since(-3)] == seqs


def test_after_eviction_since_starts_at_the_oldest_kept_and_counts_evictions() -> None:
    bus = EventBus(capacity=4)
    for i in range(10):
        bus.publish("e", i=i)
    assert bus.evicted == 6
    assert bus.oldest_seq() == 7
    assert [e.seq for e in bus.since(0)] == [7, 8, 9, 10]
    assert [e.seq for e in bus.since(5)] == [7, 8, 9, 10]
    assert [e.seq for e in bus.since(8)] == [9, 10]
    assert bus.last_seq == 10


def test_empty_bus_and_bad_capacity() -> None:
    bus = EventBus(capacity=1)
    assert bus.since(0) == []
    assert bus.oldest_seq() == 1
    with pytest.raises(ValueError, match="capacity"):
        EventBus(capacity=0)


def test_concurrent_publishers_get_consecutive_sequence_numbers() -> None:
    bus = EventBus(capacity=10_000)
    seen: list[int] = []

    def reader(stop: threading.Event) -> None:
        last = 0
        while not stop.is_set() or bus.last_seq > last:
            for e in bus.since(last):
                seen.append(e.seq)
                last = e.seq

    stop = threading.Event()
    r = threading.Thread(target=reader, args=(stop,))
    r.start()
    writers = [threading.Thread(target=lambda: [bus.publish("e") for _ in range(1000)]) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    r.join()
    assert seen == list(range(1, 4001))


def test_module_publish_goes_to_the_process_bus() -> None:
    seq = events.publish("alert", reason="x")
    assert [(e.seq, e.kind) for e in events.get_bus().since(0)] == [(seq, "alert")]


def test_resize_keeps_the_newest_events_and_counts_what_it_drops() -> None:
    bus = EventBus(capacity=8)
    for i in range(6):
        bus.publish("e", i=i)
    bus.resize(4)  # shrinking: the two oldest go, counted like any eviction
    assert bus.capacity == 4
    assert bus.evicted == 2
    assert [e.seq for e in bus.since(0)] == [3, 4, 5, 6]
    bus.resize(16)  # growing keeps everything
    for i in range(3):
        bus.publish("e", i=i)
    assert [e.seq for e in bus.since(0)] == [3, 4, 5, 6, 7, 8, 9]
    assert bus.evicted == 2
    with pytest.raises(ValueError, match="capacity"):
        bus.resize(0)


def test_init_applies_the_live_event_buffer_setting() -> None:
    """``live_event_buffer`` (``TRADEOBS_LIVE_EVENT_BUFFER``, ``LiveOptions(event_buffer=)``) sizes the process bus."""
    import tradeobs_agent
    from tradeobs_agent.options import LiveOptions

    assert events.get_bus().capacity == events.DEFAULT_CAPACITY == 2048
    agent = tradeobs_agent.init(otlp=False, prometheus=False, logs=False, live=LiveOptions(event_buffer=32))
    try:
        assert agent.settings.live_event_buffer == 32
        assert events.get_bus().capacity == 32
        for i in range(40):
            events.publish("fill", i=i)
        assert events.get_bus().evicted == 8
    finally:
        tradeobs_agent.shutdown()
