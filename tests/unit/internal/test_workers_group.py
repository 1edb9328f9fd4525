"""_internal/workers/group.py: members, the elected leader, scrape syncs, live deliveries, takeover.

Several members run in this one process here (each its own registry, bus, store and thread: to the group they
are separate members, since a ``flock`` belongs to an open file); ``test_workers_processes.py`` runs real
processes.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests._util import wait_for
from tradeobs_agent import _errors
from tradeobs_agent._internal.workers import Group, Store
from tradeobs_agent._internal.workers.detect import GroupKey, process_start
from tradeobs_agent.events import EventBus
from tradeobs_agent.live.hub import LiveHub
from tradeobs_agent.metrics import GaugeFamily, NumberPoint, Registry


class Member:
    def __init__(self, tmp: Path, sdk: bool = False) -> None:
        self.registry, self.bus = Registry(), EventBus()
        self.store = Store.open(str(tmp), GroupKey("setting", os.getpid(), process_start(os.getpid())), "svc")
        fam = GaugeFamily("sdk.gauge", "", "", [NumberPoint((), {}, 0, 1.0)])
        self.group = Group(self.store, self.registry, self.bus, sdk_families=(lambda: [fam]) if sdk else None)
        # A scrape waits this long for the members' fresh snapshots: generous, since several members share
        # this one process (and the test run shares the machine); a member that never answers is tested below.
        self.group.sync_timeout = 10.0
        self.hub = LiveHub(self.registry, self.bus, hz=20)
        self.hub.group = self.group
        self.group.attach_live(self.hub)
        self.orders = self.registry.counter("orders").bind()

    def close(self) -> None:
        self.group.close()


@contextmanager
def members(tmp: Path, n: int, **kw: bool) -> Iterator[list[Member]]:
    ms = [Member(tmp, **kw) for _ in range(n)]
    for m in ms:
        m.group.start()
    try:
        wait_for(lambda: sum(m.group.leader for m in ms) == 1, "one leader")
        wait_for(lambda: all(m.group.leader or m.group._conn is not None for m in ms), "members connected")
        yield ms
    finally:
        for m in ms:
            m.close()


def leader(ms: list[Member]) -> Member:
    return next(m for m in ms if m.group.leader and not m.group._stopping)


def total(snap: object) -> float:
    return sum(p.value for p in snap.numbers("orders"))  # type: ignore[attr-defined]


def test_a_scrape_sees_every_members_counts_recorded_before_it(tmp_path: Path) -> None:
    with members(tmp_path, 3) as ms:
        for i in range(5):
            for m in ms:
                m.orders.add(i + 1)
            # Members publish every second while nobody watches the live view; the scrape asks each for a
            # fresh snapshot first, so it counts exactly what was recorded before it, every time.
            assert total(leader(ms).group.scrape_snapshot()) == 3 * sum(range(1, i + 2))
        assert all(m.group.publishes >= 5 for m in ms)


def test_a_connected_member_that_has_not_published_yet_is_asked_too(tmp_path: Path) -> None:
    """A worker that has just started can record before it writes its first file: a scrape asks every member
    that holds its lock, not only those with a file (seen as a scrape one member short when the machine was busy)."""
    with members(tmp_path, 2) as ms:
        lead = leader(ms)
        other = next(m for m in ms if m is not lead)
        other.orders.add(5)
        # as before its first publish (which may not have happened yet either)
        (other.store.path / f"m-{other.store.member}.part").unlink(missing_ok=True)
        assert total(lead.group.scrape_snapshot()) == 5


def test_a_member_that_does_not_answer_in_time_counts_with_its_last_snapshot_and_is_counted(tmp_path: Path) -> None:
    with members(tmp_path, 2) as ms:
        lead = leader(ms)
        other = next(m for m in ms if m is not lead)
        other.orders.add(3)
        assert total(lead.group.scrape_snapshot()) == 3
        lead.group.sync_timeout = 0.3
        stale = lead.registry.self_metrics.workers_stale
        with other.group._cycle:  # its thread cannot answer (as a worker stuck in a long GIL hold)
            other.orders.add(4)
            assert total(lead.group.scrape_snapshot()) == 3  # its last snapshot, at most 0.3 s late
            assert sum(p.value for p in lead.registry.snapshot().numbers(stale.name)) == 1
        lead.group.sync_timeout = 10.0
        assert total(lead.group.scrape_snapshot()) == 7  # the next scrape has it


def test_a_directory_too_deep_for_a_socket_address_still_forms_the_group(tmp_path: Path) -> None:
    """A Unix socket's address holds at most 107 bytes of path: a deeper ``multiprocess_dir`` still works (the
    leader's socket is reached through a descriptor of the group directory), and its file is where it belongs."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    with members(deep, 2) as ms:
        assert len(leader(ms).store.socket_path) > 108
        assert (Path(leader(ms).store.socket_path)).is_socket()
        for m in ms:
            m.orders.add(2)
        assert total(leader(ms).group.scrape_snapshot()) == 4


def test_the_next_member_leads_when_the_leader_leaves_and_keeps_its_counts(tmp_path: Path) -> None:
    with members(tmp_path, 3) as ms:
        for m in ms:
            m.orders.add(10)
        first = leader(ms)
        first.close()  # a last snapshot, then it leaves
        wait_for(lambda: any(m.group.leader for m in ms if m is not first), "a new leader")
        new = leader([m for m in ms if m is not first])
        assert total(new.group.scrape_snapshot()) == 30
        wait_for(lambda: not any(first.store.member in n for n in os.listdir(new.store.path)), "the fold")
        assert total(new.group.scrape_snapshot()) == 30


def test_sdk_instruments_are_part_of_each_members_snapshot(tmp_path: Path) -> None:
    with members(tmp_path, 2, sdk=True) as ms:
        lead = leader(ms)
        snap = lead.group.scrape_snapshot()
        assert [p.attributes["pid"] for p in snap.numbers("sdk.gauge")] == [os.getpid()]  # a gauge: per process
        parts = [p for p in lead.store.parts() if p.live]
        assert len(parts) == 2 and all(p.snapshot.get("sdk.gauge") is not None for p in parts)


def test_live_events_get_service_wide_ids_and_every_member_the_same_bytes(tmp_path: Path) -> None:
    with members(tmp_path, 3) as ms:
        lead = leader(ms)
        others = [m for m in ms if m is not lead]
        others[0].group.live_started()  # a client on a member: the leader starts producing frames
        wait_for(lambda: all(m.hub._tick is not None for m in ms), "frames on every member")
        for i, m in enumerate(ms):
            m.bus.publish("fill", symbol="S", qty=i, order_id=f"o-{i}", api_key="never sent")
        wait_for(lambda: all(len(m.hub._events) == 3 for m in ms), "the events on every member")
        rings = [[(n, b) for n, b, _ in m.hub._events] for m in ms]
        assert rings[0] == rings[1] == rings[2]
        ids = [n for n, _ in rings[0]]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert all(b.startswith(b"id: %s-" % lead.hub.boot.encode()) for _, b in rings[0])
        assert not any(b"api_key" in b for _, b in rings[0])
        wait_for(lambda: all(m.hub._tick.last_id > ids[-1] for m in ms), "a frame after the events")  # type: ignore[union-attr]
        assert len({m.hub._tick.boot for m in ms}) == 1  # type: ignore[union-attr]


def test_every_members_working_orders_are_in_the_frames(tmp_path: Path) -> None:
    import orjson

    with members(tmp_path, 3) as ms:
        ms[0].group.live_started()
        wait_for(lambda: all(m.hub._tick is not None for m in ms), "frames on every member")
        for i, m in enumerate(ms):
            m.bus.publish("order", order_id=f"o-{i}", symbol="S", side="buy", qty=i + 1, price=10.0)
        ms[2].bus.publish("fill", order_id="o-2", symbol="S", qty=3, price=10.0, leaves=0)

        def working(m: Member) -> dict[str, object]:
            tick = m.hub._tick
            assert tick is not None
            frame: dict[str, object] = orjson.loads(tick.full_json)
            return frame["working"]  # type: ignore[return-value]

        # The leader applies every member's events: each frame lists the orders still open in any worker.
        wait_for(lambda: all(sorted(working(m)) == ["o-0", "o-1"] for m in ms), "the group's working orders")
        assert {k: v["q"] for k, v in working(ms[1]).items()} == {"o-0": 1, "o-1": 2}  # type: ignore[index]
        desk = orjson.loads(ms[1].hub._tick.full_json)["desk"]  # type: ignore[union-attr]
        assert desk["working"] == 2


def test_a_member_that_joins_late_gets_the_ring_history_and_latest_frame(tmp_path: Path) -> None:
    with members(tmp_path, 2) as ms:
        lead = leader(ms)
        lead.group.live_started()
        lead.bus.publish("fill", symbol="S", qty=1)
        wait_for(lambda: len(lead.hub._events) == 1 and lead.hub._tick is not None, "an event and a frame")
        late = Member(tmp_path)
        late.group.start()
        try:
            wait_for(lambda: late.hub._tick is not None and len(late.hub._events) == 1, "the welcome")
            assert late.hub.boot == lead.hub.boot
            assert [b for _, b, _ in late.hub._events] == [b for _, b, _ in lead.hub._events]
            assert late.hub._history
        finally:
            late.close()


def test_a_new_leader_starts_a_new_boot(tmp_path: Path) -> None:
    with members(tmp_path, 2) as ms:
        for m in ms:
            m.group.live_started()
        wait_for(lambda: all(m.hub._tick is not None for m in ms), "frames")
        first = leader(ms)
        boot = first.hub.boot
        other = next(m for m in ms if m is not first)
        first.close()
        wait_for(
            lambda: other.group.leader and other.hub._tick is not None and other.hub._tick.boot != boot, "new boot"
        )


def test_members_without_a_leader_still_publish(tmp_path: Path) -> None:
    m = Member(tmp_path)
    m.store.try_lead()  # this member holds the lock but never runs a thread: no one can lead or answer
    other = Member(tmp_path)
    other.group.start()
    try:
        other.orders.add(4)
        assert not other.group.leader
        wait_for(lambda: total(m.store.read_merged()) == 4, "the member's own file")
    finally:
        other.close()
        m.close()


@pytest.mark.parametrize("count", [1, 2])
def test_close_leaves_nothing_running(tmp_path: Path, count: int) -> None:
    import threading

    before = {t.name for t in threading.enumerate()}
    with members(tmp_path, count):
        pass
    wait_for(lambda: "tradeobs-workers" not in {t.name for t in threading.enumerate()} - before, "threads gone")
    assert not os.path.exists(Store.open(str(tmp_path), GroupKey("setting", 1, "x"), "svc").socket_path)


def test_a_bug_in_one_step_is_counted_and_the_member_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tradeobs_agent import _errors

    monkeypatch.delenv(_errors.ENV_STRICT)
    monkeypatch.setattr(_errors, "_strict", False)  # as in production: counted and said once, never raised
    with members(tmp_path, 1) as (m,):
        calls = {"n": 0}
        events = m.group._events

        def broken() -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("a bug")
            events()

        m.group._events = broken  # type: ignore[method-assign]
        m.group._due["events"] = 0.0
        m.group.wake()
        wait_for(lambda: calls["n"] >= 2, "the step again after the bug")
        m.orders.add(2)
        assert total(m.group.scrape_snapshot()) == 2
        assert _errors.internal_error_counts() == {"workers.thread": 1}
        assert "tradeobs internal error at workers.thread" in caplog.text
    _errors.reset()  # the error was this test's own


def test_a_member_that_cannot_listen_gives_the_leaders_lock_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The socket's address in a directory that does not exist: this member wins the lock, then cannot bind.
    base = tmp_path / "base"
    base.mkdir()
    monkeypatch.setattr(Store, "socket_address", property(lambda self: str(tmp_path / "gone" / "leader.sock")))
    m = Member(base)
    failures: list[str] = []
    m.group.on_failure = failures.append
    m.group.start()
    try:
        wait_for(lambda: "listen" in failures, "the member's failed attempt to listen")
        # Said right after on_failure is called, on the member's thread: a loaded machine ran the check between the two.
        wait_for(lambda: "cannot listen on" in caplog.text, "the failure said")
        assert not m.group.leader
        # It does not keep the lock it cannot use: another member of the group can take it.
        other = Store.open(str(base), m.store.key, "svc")
        try:
            wait_for(other.try_lead, "the leader's lock free for another member")
        finally:
            other.close()
        assert caplog.text.count("cannot listen on") == 1  # said once, however often it retries
    finally:
        m.close()


def test_a_snapshot_that_cannot_be_written_is_said_on_stderr_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full /dev/shm (3 uvicorn workers, 200 symbols, a 1 MiB tmpfs): /metrics counted 278 of 1,500 orders, and the
    # warning was only in logs/system.jsonl; the failure's own count is in the snapshot that cannot be written.
    monkeypatch.setattr(_errors, "_console_check", lambda: False)  # the log reaches no console, as in a service
    _errors.reset()

    def full(*args: object, **kw: object) -> bool:
        raise OSError(errno.ENOSPC, "No space left on device")

    m = Member(tmp_path)
    monkeypatch.setattr(m.store, "publish_registry", full)
    failures: list[str] = []
    m.group.on_failure = failures.append
    m.group.start()
    try:
        wait_for(lambda: failures.count("publish") >= 2, "two failed publishes")
    finally:
        m.close()
    said = [line for line in capsys.readouterr().err.splitlines() if "snapshot" in line]
    assert len(said) == 1, said  # once, however often it is retried
    assert said[0].startswith("tradeobs multiprocess: cannot write this worker's snapshot in "), said
    assert "No space left on device" in said[0]


def test_the_leaders_merge_and_frame_offer_the_gil_and_equal_a_fresh_merge(tmp_path: Path) -> None:
    """The leader merges every member's snapshot and builds the group's frame on the group's thread, which shares
    the GIL with the leader's own trading loop: both are passed an ``offer``. What the kept merger gives (only the
    changed series merged again) is what a fresh merge of the same files gives."""
    from tradeobs_agent.metrics.wire import Merger

    with members(tmp_path, 2) as ms:
        for k, m in enumerate(ms):
            pos = m.registry.gauge("trading.position.quantity", aggregation="sum")
            for i in range(100):
                pos.bind(symbol=f"S{i}").set(i * (k + 1))
        lead = leader(ms)
        seen: list[tuple[str, bool]] = []
        merge, build = lead.store._merger.merge, lead.hub._builder.build

        def merged(*a: object, **kw: object) -> object:
            seen.append(("merge", a[2] is not None if len(a) > 2 else kw.get("offer") is not None))
            return merge(*a, **kw)  # type: ignore[arg-type]

        def built(*a: object, **kw: object) -> object:
            seen.append(("build", kw.get("offer") is not None))
            return build(*a, **kw)  # type: ignore[arg-type]

        lead.store._merger.merge = merged  # type: ignore[method-assign]
        lead.hub._builder.build = built  # type: ignore[method-assign]
        ms[0].group.live_started()
        wait_for(lambda: ("merge", True) in seen and ("build", True) in seen, "the leader's frames, with offers")
        for step in range(3):  # members record; each tick re-merges what changed
            for k, m in enumerate(ms):
                m.registry.gauge("trading.position.quantity", aggregation="sum").bind(symbol=f"S{step}").set(-k)
            with ms[0].group._cycle, ms[1].group._cycle:  # no member rewrites its file between the two reads
                got = lead.store.read_merged(lead.hub.names)
                want = Merger().merge(lead.store.columns(), lead.hub.names)
            assert [(f.name, list(f.points)) for f in got.families] == [(f.name, list(f.points)) for f in want.families]


def test_a_member_sends_its_live_events_at_once_when_the_view_becomes_watched(tmp_path: Path) -> None:
    """Unwatched, a member sends its live events once a second. When the view becomes watched, what it holds is
    sent at once, not when that second is up: the first fills after a browser connected reached it up to a second
    late (multiprocess.py's live p99 was over its 200 ms target from those alone)."""
    with members(tmp_path, 2) as ms:
        lead = leader(ms)
        other = next(m for m in ms if m is not lead)
        with other.group._cycle:  # between two of its steps: unwatched, and as if it had just sent at that pace
            other.group._active = other.group._fast = False
            other.group._due["events"] = time.monotonic() + 3600.0
            other.bus.publish("fill", order_id="o-first-fill", qty=1.0)
        lead.group.live_started()  # a browser on the leader: its frames tell the member the view is watched
        wait_for(lambda: any(b"o-first-fill" in b for _, b, _ in lead.hub._events), "the member's fill at the leader")
        assert other.group._fast


def test_a_member_whose_hub_attaches_after_it_joined_still_gets_the_welcome(tmp_path: Path) -> None:
    """``init()`` starts the group; the app's hub comes later (a worker gunicorn respawned): the leader's welcome
    (event ring, history, latest frame) must reach it, or a resume there could skip events it never had."""
    with members(tmp_path, 1) as ms:
        lead = ms[0]
        lead.group.live_started()
        lead.bus.publish("fill", symbol="S", qty=1)
        wait_for(lambda: len(lead.hub._events) == 1 and lead.hub._tick is not None, "an event and a frame")
        registry, bus = Registry(), EventBus()
        store = Store.open(str(tmp_path), GroupKey("setting", os.getpid(), process_start(os.getpid())), "svc")
        late = Group(store, registry, bus)
        late.start()
        try:
            wait_for(lambda: late._conn is not None, "the late member connected")
            time.sleep(0.3)  # the welcome it asked for with its hello went nowhere: no hub yet
            hub = LiveHub(registry, bus, hz=20)
            hub.group = late
            late.attach_live(hub)
            wait_for(lambda: len(hub._events) == 1 and hub._tick is not None, "the welcome, asked for again")
            assert hub.boot == lead.hub.boot
            assert [b for _, b, _ in hub._events] == [b for _, b, _ in lead.hub._events]
            assert hub._history
        finally:
            late.close()


def test_a_hub_that_missed_the_welcome_resets_a_resume_from_before_what_it_holds() -> None:
    """Deliveries of a boot it has no welcome of: ids before the first one it got were never here."""
    import orjson

    from tradeobs_agent.live import wire

    hub = LiveHub(Registry(), EventBus(), hz=20)
    items = [(n, orjson.dumps({"kind": "fill", "ts": 1.0, "id": f"b00t-{n}"})) for n in (41, 42)]
    hub.follow(wire.encode_events("b00t", 40, items))
    hub.follow(wire.encode_tick(wire.TickData("b00t", 42, 43, 1.0, b"", b'{"type":"full"}', None, {})))
    tick = hub._tick
    assert tick is not None and tick.last_id == 43
    assert b"event: reset" in hub._catch_up(12, tick)  # events 13-40 went out before this process joined
    caught = hub._catch_up(40, tick)  # 41 and 42 are here
    assert b"event: reset" not in caught and b"b00t-41" in caught and b"b00t-42" in caught
