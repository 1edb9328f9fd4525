"""The worker group: each member publishes its snapshot; one elected leader serves the whole service.

>>> group = Group(store, registry, bus, start_endpoint=...)    # agent.init() does this in multi-process mode
>>> group.start()
>>> group.scrape_snapshot()      # the leader's /metrics: every member's fresh snapshot, merged   # doctest: +SKIP

One thread per member (``tradeobs-workers``) does all of it:

* **publish**: apply the trading journal and the collect hooks, snapshot the registry (plus the SDK's own
  instruments), write it to the member's file (``store.py``): every second, and at once when the leader asks
  (a scrape is waiting); while someone watches the live view also five times a second in between, lighter:
  the journal applied and the values only (no collect hooks, no exemplars: frames show neither);
* **events**: send the live events this process published (fills, rejects, orders...) to the leader, every
  0.1 s while the live view is watched;
* **elect**: try the leader's lock (``flock``, released by the kernel when its holder dies) every 0.25 s, and at once
  when the connection to the leader closes (a leader that resigns releases the lock first, then closes them).
* **leave**: once this process's server begins to stop (``detect.server_leaving``: SIGTERM, ``--max-requests``) or
  :meth:`Group.close` runs, the member says so (``m-<member>.leaving``) and stops campaigning while another
  member that stays is alive; a leader hands the lead over as soon as one is (see :meth:`Group._hand_over`), and at
  its exit serves on while new workers are starting, until one of them can lead
  (:meth:`Group.hand_over_before_exit`).

The leader, in addition, listens on the group's Unix socket, serves the Prometheus endpoint (every member's
snapshot merged, after asking each connected member for a fresh one: a scrape sees what was recorded before
it, as in one process), folds the counters of members that exited into ``retired.part`` (so a counter never
goes down), and, through the live layer (:class:`LiveRole`, implemented by ``live/hub.py``), gives each live
event its service-wide id and builds the live frames from the merged snapshot, sending both to every member,
whose own clients get the same bytes. When the leader dies, the next member to take the lock leads within
about half a second; the live view then starts a new ``boot`` (its clients get a ``reset``).

What goes wrong is said once and counted (``tradeobs.agent.exports.failed{exporter="multiprocess"}``); it never
stops the member from serving its own requests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import orjson

from ..._errors import internal_error, warn_once
from ...events import EventBus
from ...metrics import Family, Registry, Snapshot
from ...metrics.snapshot import subtract
from ...metrics.wire import FORMAT
from ..gil import Slices
from .channel import ACTIVE, EVENTS, HELLO, LIVE, SYNC, SYNCED, Conn
from .detect import server_workers, starting_workers
from .store import Store

__all__ = ["Endpoint", "Group", "LiveRole"]

_log = logging.getLogger("tradeobs")

LEAD_POLL = 0.25  # seconds between tries of the leader's lock
LEAVE_POLL = 0.1  # seconds between checks whether this process's server began to stop
HANDOVER_POLL = 0.05  # ... a leader that is leaving: between looks for a member that stays, to hand the lead to
HANDOVER_CONNECT = 1.0  # ... the longest it waits for that member to connect before it hands over all the same
HANDOVER_WAIT = 20.0  # longest an exiting leader serves on for a starting worker to take over (hand_over_before_exit);
# with shutdown_timeout's 5 s and a second, under gunicorn's default --graceful-timeout (30 s)
CONNECT_POLL = 0.2  # seconds between connection attempts to the leader
SLOW_PUBLISH = 1.0  # seconds between snapshots while nobody watches the live view
FAST_PUBLISH = 0.2  # ... while someone does (the values only; frames at 10 Hz show them, as in one process)
FAST_EVENTS = 0.1  # seconds between event sends while the live view is watched (with the snapshot)
FOLD_EVERY = 1.0  # the leader's check for members that exited
SYNC_TIMEOUT = 1.0  # longest a scrape waits for members' fresh snapshots
MAX_PENDING_EVENTS = 4096  # events kept while the leader is unreachable (then the oldest go)


class LiveRole(Protocol):
    """What the live layer does in a group (``live/hub.py``'s :class:`LiveHub`)."""

    hz: float
    names: Collection[str] | None  # the instruments a frame reads

    def active(self) -> bool:
        """Whether this process's live view has had a client."""

    def lead(self) -> None:
        """This process became the leader: a new boot (ids restart; clients get a reset)."""

    def lead_events(self, events: Sequence[tuple[str, float, dict[str, Any]]]) -> bytes | None:
        """Give ``events`` their ids and deliver them here; the delivery for the other members."""

    def lead_tick(self, snapshot: Snapshot, workers: int, offer: Callable[[], None] | None = None) -> bytes | None:
        """Build a frame of the merged ``snapshot`` and deliver it here; the delivery for the other members."""

    def welcome(self) -> bytes | None:
        """The state a member that just connected needs (the event ring, history, the latest frame)."""

    def follow(self, body: bytes) -> None:
        """Apply a delivery from the leader."""


class Endpoint(Protocol):
    def stop(self) -> None: ...


class Group:
    """This process as a member of a worker group (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        bus: EventBus,
        *,
        sdk_families: Callable[[], Sequence[Family]] | None = None,
        start_endpoint: Callable[[Group], Endpoint | None] | None = None,
        on_failure: Callable[[str], None] | None = None,
        baseline: Snapshot | None = None,
        leaving: Callable[[], bool] | None = None,
        prepare: Callable[[], None] | None = None,
        replacing: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.bus = bus
        self.sdk_families = sdk_families
        self.start_endpoint = start_endpoint
        self.on_failure = on_failure
        self.baseline = baseline  # what a forked child inherited: not its own to count
        self.leaving = leaving  # whether this process's server has begun to stop (detect.server_leaving)
        self.prepare = prepare  # run on the thread before it first campaigns: what leading will need, ready
        self.replacing = replacing  # whether its server replaces this process (past --max-requests: detect.py)
        self._leaving = False  # it has (or close() began): this member no longer campaigns, and hands the lead over
        self._staying_since = 0.0  # a leaving leader: when it first saw a member that stays (see _hand_over)
        self._left: deque[int] = deque(maxlen=1024)  # pids of members this leader folded: not workers starting
        self.live: LiveRole | None = None
        self.leader = False
        self.endpoint: Endpoint | None = None
        self.workers = 1
        self.peak_workers = 1  # the most members seen alive at once (by this process as the leader)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._cond = threading.Condition()
        self._cycle = threading.Lock()  # held while the thread works (a fork waits for it)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._followers: dict[int, Conn] = {}
        self._conn: Conn | None = None
        self._bus_seq = max(0, bus.last_seq - 2048)
        self._unsent: deque[list[Any]] = deque(maxlen=MAX_PENDING_EVENTS)
        self._active_local = False  # this process's live view has had a client
        self._fast = False  # the pace of the last step: the live view watched (somewhere in the group) or not
        self._active = False  # someone in the group watches: the leader ticks, members publish fast
        self._announce = False  # tell the leader that this process's view became active
        self._rehello = False  # the live layer attached after this member said hello: ask the leader again
        self._token = 0
        self._sync_requests: list[int] = []
        self._sync_waiting: dict[int, set[str]] = {}
        self._sync_done: set[int] = set()
        self._member_syncs: list[int] = []
        self._extra: Sequence[Family] = ()  # the SDK's instruments as of the last full publish
        self._due: dict[str, float] = {}  # when each periodic step is due next (time.monotonic())
        self.publishes = 0  # snapshots written
        self.cycles = 0  # snapshots taken (one that changed nothing is not written)
        self.ticks = 0
        self.sync_timeout = SYNC_TIMEOUT
        self._stale = registry.self_metrics.workers_stale.bind()  # members a scrape counted from an older file
        mismatched = registry.self_metrics.workers_mismatched  # members of another release (a rolling deploy)
        store.on_mismatch = lambda reason: mismatched.add(1, {"reason": reason})
        # this process started multiprocessing children (agent.py): those that record without init() tell it
        self.children_started = False
        self._uninitialised = registry.self_metrics.children_uninitialised.bind()
        self._leads = registry.self_metrics.workers_leader.bind()
        self._leads.set(0)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tradeobs-workers", daemon=True)
            self._thread.start()

    def attach_live(self, live: LiveRole) -> None:
        """The live layer of this process (its hub); deliveries from the leader go to it.

        A member that said hello before (``init()`` starts the group, the app's hub comes later) asks the leader
        again, for the welcome (event ring, history, latest frame) that went nowhere then: without it, a resume
        on this process (a worker respawned by gunicorn) could not tell which older events it never had."""
        self.live = live
        self._rehello = True
        if live.active():
            self.live_started()
        self.wake()

    def live_started(self) -> None:
        """This process's live view got its first client: the group's leader starts producing frames."""
        if not self._active_local:
            self._active_local = True
            self._announce = True
            self.wake()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def close(self, timeout: float = 2.0) -> None:
        """Publish a last snapshot (what this process counted is kept after it exits), then leave."""
        self._stopping = True
        with self._cycle:
            self._begin_leaving()
        self.wake()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        with self._cycle:
            self._publish_safely(force=True)
            self._resign()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self.store.close()
        for s in (self._wake_r, self._wake_w):
            s.close()
        with self._cond:
            self._cond.notify_all()

    def hand_over_before_exit(self, limit: float = HANDOVER_WAIT) -> float:
        """At exit, before anything stops (``agent.shutdown()`` calls it first): a leader with no member that stays,
        while its server is starting new workers (every worker replaced at once: a reload, or all past
        ``--max-requests`` together), serves on until one of them has joined and the lead is handed to it, at most
        ``limit`` seconds. Otherwise the endpoint went unserved from this exit until a new worker had started
        (3-10 s measured). Its snapshot is written first, so what it counted is kept even if its server ends it
        meanwhile. Returns the seconds waited (0: not the leader, or no worker starting)."""
        t = self._thread
        if not self.leader or limit <= 0 or t is None or not t.is_alive() or t is threading.current_thread():
            return 0.0
        with self._cycle:
            self._begin_leaving()
            self._publish_safely(force=True)
        began = time.monotonic()
        # Past its request limit (not asked to stop) in a group of several workers, none of which stays: they
        # reached theirs at about the same time, and their server starts each one's replacement only once it has
        # exited and the server has noticed (uvicorn's supervisor, measured: often only after this one had exited
        # too), so none may be seen starting yet. It serves on until one can take over.
        several = self.peak_workers > 1 or bool(server_workers(self.store.key))
        replacing = several and self.replacing is not None and self.replacing()
        waited = False
        while self.leader and time.monotonic() - began < limit:
            if replacing or self._workers_starting() or self._staying():
                waited = True
            else:
                break
            time.sleep(HANDOVER_POLL)  # the thread hands over (HANDOVER_POLL) once the new worker has joined
        spent = time.monotonic() - began
        if waited:
            _log.info(
                "tradeobs multiprocess: pid %d served on for %.1f s at its exit, %s",
                os.getpid(),
                spent,
                "until the lead was handed over" if not self.leader else "and no new worker took the lead",
            )
        return spent

    def _workers_starting(self) -> bool:
        """Whether the group's server has a worker starting, not a member yet (a member that left, still running
        its own shutdown, has started: it is known from its files, or from this leader's fold)."""
        try:
            known = _pids(self.store.joined_member_ids()) | _pids(self.store.members()) | set(self._left)
        except OSError:
            return False
        return bool(starting_workers(self.store.key, known))

    # fork: the thread is not mid-work when a fork happens; the child gets none of this (see forget_after_fork)
    def before_fork(self) -> None:
        self._cycle.acquire()

    def after_fork_parent(self) -> None:
        self._cycle.release()

    def forget_after_fork(self) -> None:
        """In a forked child: close what belongs to the parent (sockets, locks) without touching it."""
        if self._sel is not None:
            with contextlib.suppress(OSError):
                self._sel.close()  # the child's copy of the selector (epoll) descriptor
            self._sel = None
        for s in (self._listener, self._wake_r, self._wake_w):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        for c in (*self._followers.values(), self._conn):
            if c is not None:
                with contextlib.suppress(OSError):
                    c.sock.close()
        self.store.forget_after_fork()
        self._thread = None

    # ------------------------------------------------------------------ reading the group
    def scrape_snapshot(self) -> Snapshot:
        """The whole service for a scrape: each connected member writes a fresh snapshot first (up to
        :attr:`sync_timeout` seconds, :data:`SYNC_TIMEOUT` unless set; a member that does not answer counts
        with its last one, and is counted in ``tradeobs.agent.workers.stale``)."""
        if self.leader and self._thread is not None and self._thread.is_alive():
            with self._cond:
                self._token += 1
                token = self._token
                self._sync_requests.append(token)
            self.wake()
            with self._cond:
                done = self._cond.wait_for(lambda: token in self._sync_done or self._stopping, self.sync_timeout)
                self._sync_done.discard(token)
                late = self._sync_waiting.pop(token, None)
            if not done and late:
                self._stale.add(len(late))
                warn_once(
                    "workers:stale",
                    "tradeobs multiprocess: a scrape waited %.1f s for %d worker(s) and used their last snapshot "
                    "(counted in tradeobs_agent_workers_stale_total; said once)",
                    self.sync_timeout,
                    len(late),
                )
        return self.store.read_merged()

    def read_merged(self, names: Collection[str] | None = None, exemplars: bool = True) -> Snapshot:
        """The whole service as the files say now (no sync; ``exemplars=False``: without them, as a frame)."""
        return self.store.read_merged(names, exemplars=exemplars)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        if self.prepare is not None:
            try:
                self.prepare()
            except Exception as exc:  # imports of our own modules: one that fails is a bug (leading would say so too)
                internal_error("workers.prepare", exc)
        sel = self._sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        keys = ("lead", "connect", "publish", "events", "tick", "fold", "full", "leave", "handover", "newer")
        self._due = dict.fromkeys(keys, time.monotonic())
        while not self._stopping:
            try:
                with self._cycle:
                    timeout = self._step()
                for key, mask in sel.select(timeout):
                    with self._cycle:
                        if not self._stopping:
                            self._ready(key, mask)
            except Exception as exc:  # every step handles its own failures: one that raises is a bug
                internal_error("workers.thread", exc)  # counted, said once; the member goes on
                time.sleep(0.1)
        sel.close()
        self._sel = None

    def _step(self) -> float:
        """What is due now; returns how long the thread may wait for the next thing due."""
        due = self._due
        now = time.monotonic()
        if not self._leaving and self.leaving is not None and now >= due["leave"]:
            due["leave"] = now + LEAVE_POLL
            if self.leaving():
                self._begin_leaving()
        if self.leader and self._leaving and now >= due["handover"]:
            due["handover"] = now + HANDOVER_POLL
            self._hand_over()
        elif self.leader and not self._leaving and now >= due["newer"]:
            due["newer"] = now + (HANDOVER_POLL if self._staying_since else FOLD_EVERY)
            self._hand_over(newer=True)
        if not self.leader and now >= due["lead"]:
            due["lead"] = now + LEAD_POLL
            if self._may_lead():
                self._try_lead()
        if not self.leader and self._conn is None and now >= due["connect"]:
            due["connect"] = now + CONNECT_POLL
            self._connect()
        fast = self._active or self._active_local
        if fast and not self._fast:
            # The live view is watched from now on: what the unwatched pace had put up to a second away (the live
            # events, the snapshot) is due now. Otherwise the first fills after a browser connected reached it up
            # to a second late (seen as the live benchmark's p99 above its target).
            due["events"] = min(due["events"], now)
            due["publish"] = min(due["publish"], now)
        self._fast = fast
        if self._sync_requests or self._member_syncs:
            self._syncs()
            due["publish"] = now + (FAST_PUBLISH if fast else SLOW_PUBLISH)
        if now >= due["publish"]:
            due["publish"] = now + (FAST_PUBLISH if fast else SLOW_PUBLISH)
            full = not fast or now >= due["full"]
            if full:
                due["full"] = now + SLOW_PUBLISH
            self._publish_safely(force=False, full=full)
        if now >= due["events"]:
            due["events"] = now + (FAST_EVENTS if fast else SLOW_PUBLISH)
            self._events()
        if self._announce and self._conn is not None:
            self._announce = not self._send(self._conn, ACTIVE, b"{}")
        if self._rehello and self._conn is not None:
            self._rehello = not self._send(self._conn, HELLO, self._hello())
        if self.leader:
            if self._active_local or self._active:
                self._active = True
                hz = self.live.hz if self.live is not None else 10.0
                if now >= due["tick"]:
                    began, cpu = time.monotonic(), time.thread_time()
                    self._tick()
                    # At most a quarter of a core on frames: past that (thousands of series in many workers)
                    # frames come less often rather than slow this worker down. The CPU the frame took, not its
                    # wall time: on a busy host a tick also waits for the GIL and for other processes, which
                    # the frame does not cost this worker. (Nor this step's publish and syncs, before it.)
                    spent = time.thread_time() - cpu
                    due["tick"] = max(due["tick"] + 1.0 / hz, began + 4 * spent)
            if now >= due["fold"]:
                due["fold"] = now + FOLD_EVERY
                self._fold()
        deadlines = [due["publish"], due["events"]]
        if not self._leaving and self.leaving is not None:
            deadlines.append(due["leave"])
        elif self.leader and self._leaving:
            deadlines.append(due["handover"])
        if not self.leader:
            deadlines.append(due["lead"])
            if self._conn is None:
                deadlines.append(due["connect"])
        elif self._active:
            deadlines.append(due["tick"])
        return max(0.0, min(deadlines) - time.monotonic())

    def _ready(self, key: selectors.SelectorKey, mask: int) -> None:
        data = key.data
        if data == "wake":
            with contextlib.suppress(OSError):
                self._wake_r.recv(4096)
            return
        if data == "listen":
            self._accept()
            return
        conn: Conn = data
        if mask & selectors.EVENT_WRITE and not conn.flush():
            self._drop(conn)
            return
        if mask & selectors.EVENT_READ:
            try:
                frames = conn.receive()
            except ConnectionError:
                self._drop(conn)
                return
            for kind, body in frames:
                if conn is self._conn:
                    self._from_leader(kind, body)
                else:
                    self._from_member(conn, kind, body)
        self._interest(conn)

    def _interest(self, conn: Conn) -> None:
        sel = self._sel
        if sel is None or conn.closed:
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.wants_write else 0)
        with contextlib.suppress(KeyError, ValueError):
            if sel.get_key(conn).events != want:
                sel.modify(conn, want, conn)

    # ------------------------------------------------------------------ publishing
    def _publish(self, force: bool, full: bool) -> bool:
        """``full``: what a scrape reads (collect hooks such as staleness, exemplars, the SDK's instruments);
        else what the live view reads, five times a second: the journal applied, the values."""
        if full:
            if self.children_started:  # its spawn children that recorded without init(): counted before the snapshot
                told = self.store.child_reports()
                if told:
                    self._uninitialised.add(told)
            self.registry.run_collect_hooks()  # the trading journal is applied here, on this thread
        else:
            self.registry.flush()
        extra = self.sdk_families() if self.sdk_families is not None and full else self._extra
        self._extra = extra
        if self.baseline is None:  # the fast path: values read straight from the series, the GIL offered often
            return self.store.publish_registry(self.registry, extra, force, full, Slices().offer)
        snap = subtract(self.registry.snapshot(prepare=False), self.baseline)
        return self.store.publish(Snapshot(snap.time_ns, [*snap.families, *extra]), force=force)

    def _publish_safely(self, force: bool, full: bool = True) -> None:
        self.cycles += 1
        try:
            if self._publish(force, full):
                self.publishes += 1
        except OSError as exc:
            self._failed("publish", f"cannot write this worker's snapshot in {self.store.path}: {exc}")

    def _failed(self, what: str, message: str) -> None:
        if self.on_failure is not None:
            self.on_failure(what)
        # On stderr too: while a worker cannot write its snapshot, its counts (this failure's count with them) are
        # missing from the shared endpoint, which gives no other sign of it.
        warn_once(
            f"workers:{what}", "tradeobs multiprocess: %s; retrying (this worker still serves)", message, console=True
        )

    def _syncs(self) -> None:
        """Answer every pending sync: the leader's own scrapes, and the leader's requests to this member."""
        if not self._sync_requests:
            self._publish_safely(force=True)
        for token in self._member_syncs:
            if self._conn is not None:
                self._send(self._conn, SYNCED, orjson.dumps({"token": token}))
        self._member_syncs.clear()
        if self._sync_requests:
            with self._cond:
                tokens, self._sync_requests = self._sync_requests, []
            # Every member whose process holds its lock, connected or not yet (right after a takeover, or just
            # started, they connect within a moment: one that connects while a sync waits for it is asked on
            # arrival, see HELLO), and published or not yet (a worker may record before its first file).
            alive = set(self.store.joined_member_ids()) - {self.store.member}
            for token in tokens:
                with self._cond:
                    self._sync_waiting[token] = set(alive)
                body = orjson.dumps({"token": token})
                for c in list(self._followers.values()):
                    if c.member in alive:
                        self._send(c, SYNC, body)
            self._publish_safely(force=True)  # the leader's own, while the members write theirs
            with self._cond:
                self._check_syncs()

    def _send(self, conn: Conn, kind: int, body: bytes) -> bool:
        """Send (or queue) a frame; a peer too far behind, or gone, is dropped."""
        if not conn.send(kind, body):
            self._drop(conn)
            return False
        self._interest(conn)
        return True

    def _check_syncs(self) -> None:
        """With ``_cond`` held: a sync whose members all answered is done."""
        done = [t for t, waiting in self._sync_waiting.items() if not waiting and t not in self._sync_done]
        if done:
            self._sync_done.update(done)
            self._cond.notify_all()

    # ------------------------------------------------------------------ events
    def _events(self) -> None:
        try:
            new = self.bus.since(self._bus_seq)  # applies the trading journal first (the bus's flush hook)
        except Exception as exc:  # the bus never raises by contract: a bug
            internal_error("workers.events", exc)
            return
        if new:
            self._bus_seq = new[-1].seq
            self._unsent.extend([e.kind, e.ts, e.data] for e in new)
        if not self._unsent:
            return
        if self.leader:
            evs = [(k, ts, d) for k, ts, d in self._unsent]
            self._unsent.clear()
            self._lead_events(evs)
        elif self._conn is not None:
            body = orjson.dumps(list(self._unsent), default=str)
            if self._send(self._conn, EVENTS, body):
                self._unsent.clear()

    def _lead_events(self, evs: Sequence[tuple[str, float, dict[str, Any]]]) -> None:
        live = self.live
        if live is None or not evs:
            return
        body = live.lead_events(evs)
        if body is not None:
            self._broadcast(body)

    # ------------------------------------------------------------------ leading
    def _begin_leaving(self) -> None:
        """This process's server began to stop (or :meth:`close` did): say so to the group (the marker file), so
        that neither this member nor the others count on it to lead; a leader hands the lead over at once."""
        if self._leaving:
            return
        self._leaving = True
        try:
            self.store.mark_leaving()
        except OSError as exc:
            self._failed("leaving", f"cannot mark this worker as leaving in {self.store.path}: {exc}")
        if self.leader:
            self._due["handover"] = 0.0

    def _staying(self) -> bool:
        """Whether another member is alive that has not said it is leaving (the one to lead after this one)."""
        try:
            return bool(self.store.staying_member_ids())
        except OSError as exc:
            self._failed("read", f"cannot read the group's members in {self.store.path}: {exc}")
            return False

    def _may_lead(self) -> bool:
        """A member that is leaving campaigns only while no member that stays is alive: while the whole group is
        being replaced (every worker past ``--max-requests`` at once, a reload) one of the leaving workers serves
        the endpoint until the new ones have started, rather than nobody. Nor does a member while a member of a
        later tradeobs release that stays is alive (its snapshot format is later: it reads this one's files, this
        one cannot read its), so a rolling upgrade's leader counts every worker, and the lead never goes back to a
        release that leaves the other's counts out (the totals would go down, then up)."""
        if self._leaving:
            return not self._staying()
        try:
            return not self.store.newer_staying()
        except OSError as exc:
            self._failed("read", f"cannot read the group's members in {self.store.path}: {exc}")
            return True

    def _hand_over(self, newer: bool = False) -> None:
        """A leaving leader gives the lead to a member that stays, as soon as one is alive and connected: the
        endpoint, the socket and the lock go now, not when this process exits (its open requests, streams and
        shutdown can take seconds, and a successor's takeover would wait for all of them). Connected, because the
        connection's closing is what makes it try the lock at once (a member that just joined connects within a
        moment; one that does not connect within ``HANDOVER_CONNECT`` seconds gets the lead anyway, at its poll).

        ``newer``: a leader that stays hands the lead, the same way, to a member of a later tradeobs release
        (``Store.newer_members``), which reads every member's file where this one leaves that member's out."""
        try:
            staying = set(self.store.newer_staying() if newer else self.store.staying_member_ids())
        except OSError as exc:
            self._failed("read", f"cannot read the group's members in {self.store.path}: {exc}")
            return
        now = time.monotonic()
        if not staying:
            self._staying_since = 0.0
            return
        if not self._staying_since:
            self._staying_since = now
        connected = any(c.member in staying for c in self._followers.values())
        if connected or now - self._staying_since >= HANDOVER_CONNECT:
            self._staying_since = 0.0
            if newer:
                _log.info(
                    "tradeobs multiprocess: pid %d hands the lead to pid %s, a worker of a later tradeobs release "
                    "(its snapshot format is later than %d, which this one writes: it reads this release's files, "
                    "this one cannot read its; a rolling upgrade)",
                    os.getpid(),
                    ", ".join(map(str, sorted(_pids(staying)))),
                    FORMAT,
                )
            else:
                _log.info("tradeobs multiprocess: pid %d is leaving; it hands the lead over", os.getpid())
            self._resign()

    def _try_lead(self) -> None:
        try:
            got = self.store.try_lead()
        except OSError as exc:
            self._failed("lead", f"cannot use the leader's lock in {self.store.path}: {exc}")
            return
        if got:
            self._become_leader()

    def _become_leader(self) -> None:
        if self._conn is not None:
            self._drop(self._conn)
        path = self.store.socket_path
        self.store.remove_socket()  # one left by a leader that died: we hold the lock, it is ours to replace
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lsock.bind(self.store.socket_address)
            os.chmod(path, 0o600)
            lsock.listen(64)
        except OSError as exc:
            lsock.close()
            self.store.release_lead()  # holding the lock without a socket would leave the group leaderless
            self._failed("listen", f"cannot listen on {path}: {exc}")
            return
        lsock.setblocking(False)
        self._listener = lsock
        if self._sel is not None:
            self._sel.register(lsock, selectors.EVENT_READ, "listen")
        self.leader = True
        self._leads.set(1)
        self._active = self._active_local
        _log.info("tradeobs multiprocess: pid %d leads the worker group in %s", os.getpid(), self.store.path)
        if self.live is not None:
            self.live.lead()
        if self.start_endpoint is not None:
            self.endpoint = self.start_endpoint(self)
        self._fold()

    def _resign(self) -> None:
        """Stop leading (handed over, or at close): the endpoint and the socket go before the lock, so a successor
        starts clean; the members' connections close after it, which tells them to try the lock at once."""
        if not self.leader:
            return
        self.leader = False
        self._leads.set(0)
        if self.endpoint is not None:
            try:
                self.endpoint.stop()
            except Exception as exc:  # stopping a server never raises by contract: a bug
                internal_error("workers.endpoint_stop", exc)
            self.endpoint = None
        if self._listener is not None:
            if self._sel is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None
            self.store.remove_socket()
        self.store.release_lead()
        for c in list(self._followers.values()):
            if self._sel is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(c)
            c.close()
        self._followers.clear()
        with self._cond:  # a scrape waiting for the members' snapshots reads the files as they are
            for waiting in self._sync_waiting.values():
                waiting.clear()
            self._check_syncs()
        self._active = False

    def _accept(self) -> None:
        lsock = self._listener
        if lsock is None:
            return
        while True:
            try:
                sock, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._failed("accept", f"accepting a member failed: {exc}")
                return
            conn = Conn(sock)
            self._followers[conn.fileno()] = conn
            if self._sel is not None:
                self._sel.register(conn, selectors.EVENT_READ, conn)

    def _from_member(self, conn: Conn, kind: int, body: bytes) -> None:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._drop(conn)
            return
        if kind == HELLO and isinstance(doc, dict):
            conn.member = str(doc.get("member", ""))[:64]
            pid = doc.get("pid")
            conn.pid = pid if isinstance(pid, int) else 0
            if doc.get("active") is True:
                self._active = True
            if self.live is not None:
                welcome = self.live.welcome()
                if welcome is not None:
                    self._send(conn, LIVE, welcome)
            with self._cond:
                pending = [t for t, waiting in self._sync_waiting.items() if conn.member in waiting]
            for token in pending:  # a scrape is waiting for this member
                self._send(conn, SYNC, orjson.dumps({"token": token}))
        elif kind == EVENTS and isinstance(doc, list):
            evs = [
                (e[0], float(e[1]), e[2])
                for e in doc
                if isinstance(e, list)
                and len(e) == 3
                and isinstance(e[0], str)
                and isinstance(e[1], int | float)
                and isinstance(e[2], dict)
            ]
            self._lead_events(evs)
        elif kind == SYNCED and isinstance(doc, dict):
            with self._cond:
                synced = doc.get("token")
                if isinstance(synced, int) and synced in self._sync_waiting:
                    self._sync_waiting[synced].discard(conn.member)
                    self._check_syncs()
        elif kind == ACTIVE:
            self._active = True

    def _broadcast(self, body: bytes) -> None:
        for c in list(self._followers.values()):
            if c.member:
                self._send(c, LIVE, body)

    def _tick(self) -> None:
        live = self.live
        if live is None:
            return
        offer = Slices().offer  # the merge and the frame in slices: this process's trading loop shares the GIL
        try:
            snap = self.store.read_merged(live.names, offer, exemplars=False)  # (a frame shows none)
        except OSError as exc:
            self._failed("read", f"cannot read the group's snapshots in {self.store.path}: {exc}")
            return
        body = live.lead_tick(snap, self.workers, offer)
        self.ticks += 1
        if body is not None:
            self._broadcast(body)

    def _fold(self) -> None:
        try:
            gone = self.store.fold_exited()
            self.workers = self.store.live_members()
            self.peak_workers = max(self.peak_workers, self.workers)
        except OSError as exc:
            self._failed("fold", f"cannot fold exited workers' counters in {self.store.path}: {exc}")
            return
        if gone:
            self._left.extend(_pids(gone))
            _log.info("tradeobs multiprocess: kept the counters of %d exited worker(s)", len(gone))

    # ------------------------------------------------------------------ following
    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(0.5)
            sock.connect(self.store.socket_address)
        except OSError:
            sock.close()  # no leader yet, or a socket left by one that died: the election sorts it out
            return
        conn = Conn(sock)
        if not conn.send(HELLO, self._hello()):
            conn.close()
            return
        self._announce = self._rehello = False
        self._conn = conn
        if self._sel is not None:
            self._sel.register(conn, selectors.EVENT_READ, conn)

    def _hello(self) -> bytes:
        return orjson.dumps({"member": self.store.member, "pid": os.getpid(), "active": self._active_local})

    def _from_leader(self, kind: int, body: bytes) -> None:
        if kind == LIVE:
            self._active = True
            if self.live is not None:
                try:
                    self.live.follow(body)
                except Exception as exc:  # the live layer validates deliveries: one that raises is a bug
                    internal_error("workers.follow", exc)
        elif kind == SYNC:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                return
            if isinstance(doc, dict) and isinstance(doc.get("token"), int):
                self._member_syncs.append(doc["token"])
                self._syncs()

    def _drop(self, conn: Conn) -> None:
        if self._sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(conn)
        conn.close()
        if conn is self._conn:
            self._conn = None
            self._active = False  # the next leader says again whether anyone watches
            if self._due:  # the leader went away (or handed over): the lock is free now, try it now
                self._due["lead"] = self._due["connect"] = 0.0
            return
        self._followers.pop(next((fd for fd, c in self._followers.items() if c is conn), -1), None)
        with self._cond:
            for waiting in self._sync_waiting.values():
                waiting.discard(conn.member)
            self._check_syncs()


def _pids(members: Collection[str]) -> set[int]:
    """The pids in member ids (``<pid>-<random>``)."""
    return {int(p) for p, _, _ in (m.partition("-") for m in members) if p.isdigit()}
