"""_internal/delivery: batches kept in order through an outage, bounded by items and age, every drop counted."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from tests._util import wait_for
from tradeobs_agent._internal.delivery import Delivery


class Collector:
    def __init__(self) -> None:
        self.up = False
        self.got: list[Any] = []
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()

    def send(self, items: Sequence[Any]) -> bool:
        self.calls += 1
        self.gate.wait(10)
        if self.up:
            self.got.extend(items)
        return self.up


def _delivery(c: Collector, max_items: int = 100, max_age: float = 60.0) -> tuple[Delivery, Counter[str]]:
    dropped: Counter[str] = Counter()

    def count(reason: str, n: int) -> None:
        dropped[reason] += n

    return Delivery("traces", c.send, max_items, max_age, count), dropped


def test_nothing_is_lost_and_order_is_kept_through_an_outage() -> None:
    c = Collector()
    d, dropped = _delivery(c)
    for i in range(10):
        d.submit([i * 2, i * 2 + 1])
    wait_for(lambda: d.failing and c.calls >= 2, "retries against the dead collector")
    c.up = True
    assert d.flush(20)
    assert c.got == list(range(20)) and not dropped and len(d) == 0
    d.close(1)


def test_past_the_bound_the_oldest_batches_go_and_are_counted() -> None:
    c = Collector()
    d, dropped = _delivery(c, max_items=10)
    for i in range(8):
        d.submit([i, i, i])  # 24 items for a bound of 10
    wait_for(lambda: d.failing, "the outage")
    c.up = True
    assert d.flush(20)
    assert dropped["retry_buffer_full"] + len(c.got) == 24
    assert dropped["retry_buffer_full"] >= 14 and c.got[-3:] == [7, 7, 7]  # the newest are kept
    d.close(1)


def test_batches_older_than_max_age_are_dropped_and_counted() -> None:
    c = Collector()
    d, dropped = _delivery(c, max_age=0.3)
    d.submit([1, 2, 3])
    wait_for(lambda: dropped["expired"] == 3, "the batch to expire", limit=30)
    assert len(d) == 0
    d.close(1)


def test_close_delivers_what_it_can_then_counts_the_rest() -> None:
    c = Collector()
    c.up = True
    d, dropped = _delivery(c)
    d.submit([1, 2])
    assert d.close(5) and c.got == [1, 2] and not dropped
    d.submit([3])  # after close: counted, never kept
    assert dropped["shutdown"] == 1


def test_abandon_counts_everything_including_the_batch_being_sent_when_it_fails() -> None:
    c = Collector()
    c.gate.clear()  # the first send hangs, as an SDK exporter retrying inside export() does
    d, dropped = _delivery(c)
    d.submit([1, 2])
    wait_for(lambda: c.calls == 1, "the send in flight")
    d.submit([3])
    assert not d.close(0, deliver=False)
    assert dropped["shutdown"] == 1  # the kept batch; the one in flight is the sender's to count
    c.gate.set()  # its send now fails (collector down)
    wait_for(lambda: dropped["shutdown"] == 3, "the in-flight batch to be counted")


def test_a_batch_still_being_sent_when_time_is_up_is_counted_once() -> None:
    c = Collector()
    c.gate.clear()  # the send hangs past the shutdown's bound (a hung collector)
    d, dropped = _delivery(c)
    d.submit([1, 2])
    wait_for(lambda: c.calls == 1, "the send in flight")
    assert d.settle(0.0) == 0, "before close, the sender still owns its batch"
    d.close(0, deliver=False)
    assert d.settle(0.1) == 2 and dropped["shutdown"] == 2 and len(d) == 0  # counted now: the process may exit
    c.gate.set()  # the send fails after all: the sender must not count it again
    assert d.flush(5)
    assert dropped == Counter({"shutdown": 2})


def test_settle_waits_for_a_send_that_comes_back_in_time() -> None:
    c = Collector()
    c.gate.clear()
    d, dropped = _delivery(c)
    d.submit([1, 2, 3])
    wait_for(lambda: c.calls == 1, "the send in flight")
    d.close(0, deliver=False)
    threading.Timer(0.2, c.gate.set).start()  # fails (collector down), within the bound
    assert d.settle(10) == 0
    assert dropped == Counter({"shutdown": 3})  # counted by the sender when its send returned


@pytest.mark.parametrize(("items", "age"), [(0, 10.0), (10, 0.0)])
def test_a_delivery_needs_room_and_time(items: int, age: float) -> None:
    with pytest.raises(ValueError, match="max_items"):
        Delivery("logs", lambda b: True, items, age, lambda r, n: None)


def test_new_batches_do_not_cut_the_back_off_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the collector is down, a busy service submits a batch every few milliseconds: each used to wake the
    sender for another attempt, so the back-off never grew (and gRPC's reconnect back-off did, see
    ``providers.GRPC_CHANNEL_OPTIONS``). Only the back-off (or a close) starts the next attempt."""
    import time

    from tradeobs_agent._internal import delivery

    monkeypatch.setattr(delivery, "_BACKOFF_MIN", 60.0)
    c = Collector()
    d, dropped = _delivery(c, max_items=10_000)
    d.submit([0])
    wait_for(lambda: d.failing, "the first failed attempt")
    for i in range(1, 200):
        d.submit([i])
        time.sleep(0.001)
    assert c.calls == 1
    d.close(0)
    assert dropped == {"shutdown": 200}


def test_at_interpreter_exit_with_no_sender_thread_the_flush_sends_on_its_own_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.12+ starts no thread once the interpreter is shutting down: a script whose first batch came with its
    exit's flush had ``submit`` raise "can't create new thread at interpreter shutdown" into the batch processor
    ("Exception while exporting Span."), and its spans were counted as dropped at shutdown, never sent. Now the
    batch is kept and the flush (the agent's shutdown) sends it on its own thread; what fails is still counted."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    c = Collector()
    c.up = True
    d, dropped = _delivery(c)
    d.submit([1, 2, 3])  # no exception into the caller
    d.submit([4])
    assert d.close(5)
    assert c.got == [1, 2, 3, 4] and not dropped and len(d) == 0
    down = Collector()  # the collector unreachable: tried while time is left, then counted, as with a thread
    d, dropped = _delivery(down)
    d.submit([5, 6])
    assert not d.close(0.2)
    assert down.calls >= 1 and dropped == Counter({"shutdown": 2})
