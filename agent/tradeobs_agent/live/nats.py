"""Publish this process's live frames and discrete events to NATS JetStream, for the fleet gateway.

>>> import tradeobs_agent
>>> agent = tradeobs_agent.init(  # doctest: +SKIP
...     service_name="risk", live=tradeobs_agent.LiveOptions(nats_url="nats://127.0.0.1:4222")
... )

Off by default: the one setting ``live_nats_url`` (``TRADEOBS_LIVE_NATS_URL``) turns it on, and
``tradeobs live gateway`` (:mod:`.gateway`) serves the merged view of every process that publishes.
Needs ``nats-py`` (``pip install 'tradeobs[nats]'``); without it ``init()`` says so once and the service
runs as before.

Subjects, one per service and instance (``service.instance.id``), tokens made subject-safe by :func:`token`::

    tradeobs.live.<service>.<instance>.frame   the process's whole live state, every tick (``live_hz``)
    tradeobs.live.<service>.<instance>.event   the discrete events (fill, reject, order, alert, kill_switch) of
                                               one tick, a JSON array (at most BATCH_EVENTS a message)

Streams (:func:`ensure_streams`: whoever finds one missing creates it; the gateway also sets its limits):

* ``tradeobs-live-events``: every event of the fleet in one sequence (file storage, 24 h / 1 GiB by
  default, duplicate window 2 min, direct get). An event's id at the gateway is derived from its
  message's sequence: ``sequence * KEY_SPAN + its index in the message``.
* ``tradeobs-live-frames``: the latest frame of each instance (memory storage, one message per subject,
  60 s), so a gateway that starts knows the whole fleet at once.

The host never waits for NATS and never sees an exception from it:

* everything runs on a thread of its own (``tradeobs-nats``) with its own event loop; the trading thread
  only appends to the journal, as always. Ticks fall on the wall-clock grid (``k / live_hz``), so the
  gateway, ticking a little after the same grid, carries every instance's frame of that tick;
* NATS unreachable: connecting is retried in the background (every 0.25-5 s); meanwhile frames are
  dropped (a frame is state: the next one replaces it) and events wait, in order, in a bounded outbox
  (:data:`OUTBOX`) that goes out when NATS is back. Every drop is counted in
  ``tradeobs.live.nats.dropped{kind, reason}`` and the first failure is logged once;
* events are published with a JetStream ack and a ``Nats-Msg-Id`` (``<instance>-<bus seq of its first
  event>``): a message whose ack was lost is sent again, and the server's duplicate window stores it once.
  One message per tick, not one per event: measured on the demo loop (200+ events/s), an ack per event cost
  the publishing thread 5 ms of the GIL per tick and the trading loop ~2 ms of lag p99; one per tick does not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from itertools import islice
from typing import Any

import orjson

from .._errors import Throttle, internal_error, warn_once
from .._internal.gil import offer_gil
from .._trading_day import LOCAL_MIDNIGHT, TradingDay
from ..events import EventBus, get_bus
from ..metrics import Registry, Snapshot, get_registry
from ..trading._journal import get_journal
from .frames import COLLECT_EVERY, FRAME_INSTRUMENTS, LATENCIES, LIMITS, POSITION, WORST_OF, FrameBuilder
from .hub import _clean
from .working import WorkingOrders

__all__ = [
    "EVENTS_STREAM",
    "FRAMES_STREAM",
    "KEY_SPAN",
    "OUTBOX",
    "PREFIX",
    "NatsPublisher",
    "desk_extras",
    "ensure_streams",
    "safe_url",
    "state_extras",
    "token",
]

_log = logging.getLogger("tradeobs.live")
OUTAGE_EVERY = 60.0  # seconds: at most one NATS outage is said (begun, ended) in this long

PREFIX = "tradeobs.live"
EVENTS_STREAM = "tradeobs-live-events"
FRAMES_STREAM = "tradeobs-live-frames"
EVENTS_MAX_AGE = 86_400.0  # seconds
EVENTS_MAX_BYTES = 1 << 30
FRAMES_MAX_AGE = 60.0
FRAMES_MAX_BYTES = 256 << 20
DUPLICATE_WINDOW = 120.0
OUTBOX = 10_000  # events kept while NATS is unreachable
BATCH_EVENTS = 256  # events per message at most (the gateway's ids leave room for 1,000: see KEY_SPAN)
BATCH_BYTES = 256 << 10
KEY_SPAN = 1000  # an event's key is its message's stream sequence * KEY_SPAN + its index in the message
ROUND = 64  # messages published before their acks are awaited
ACK_TIMEOUT = 2.0
MSG_ID = "Nats-Msg-Id"
PAYLOAD_VERSION = 1

STRATEGY_COUNTERS = {
    "trading.orders.submitted": "ord",
    "trading.orders.filled": "fill",
    "trading.orders.rejected": "rej",
}
STRATEGY_GAUGES = {
    "trading.pnl.realized": "rpnl",
    "trading.pnl.unrealized": "upnl",
    "trading.position.notional": "ntl",
    "trading.equity": "equity",
    "trading.drawdown": "drawdown",
    "trading.risk.kill_switch.engaged": "kill_switch",
}
_INSTRUMENTS = tuple(dict.fromkeys((*FRAME_INSTRUMENTS, *STRATEGY_COUNTERS, *STRATEGY_GAUGES, *LATENCIES)))


def token(value: object) -> str:
    """``value`` as one NATS subject token: no ``.``, ``*``, ``>`` or whitespace (each becomes ``_``), never empty.

    >>> token("algo 1.eu"), token("")
    ('algo_1_eu', '_')
    """
    out = "".join("_" if (c in ".*>" or c.isspace() or not c.isprintable()) else c for c in str(value))
    return out[:128] or "_"


def safe_url(url: str) -> str:
    """``url`` without a user, password or token, for messages (``nats://u:p@h:4222`` -> ``nats://h:4222``)."""
    parts = []
    for one in url.split(","):
        u = urllib.parse.urlsplit(one.strip())
        host = u.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{u.port}" if u.port else "")
        parts.append(urllib.parse.urlunsplit((u.scheme, netloc, u.path, "", "")))
    return ",".join(parts)


def _stream_configs(events_max_age: float, events_max_bytes: int) -> list[Any]:
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    return [
        StreamConfig(
            name=EVENTS_STREAM,
            description="tradeobs live: discrete events of every instance; the sequence is the gateway's event id",
            subjects=[f"{PREFIX}.*.*.event"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=events_max_age,
            max_bytes=events_max_bytes,
            discard=DiscardPolicy.OLD,
            duplicate_window=DUPLICATE_WINDOW,
            allow_direct=True,
        ),
        StreamConfig(
            name=FRAMES_STREAM,
            description="tradeobs live: the latest frame of each instance",
            subjects=[f"{PREFIX}.*.*.frame"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.MEMORY,
            max_msgs_per_subject=1,
            max_age=FRAMES_MAX_AGE,
            max_bytes=FRAMES_MAX_BYTES,
            discard=DiscardPolicy.OLD,
            allow_direct=True,
        ),
    ]


async def ensure_streams(
    js: Any,
    *,
    events_max_age: float = EVENTS_MAX_AGE,
    events_max_bytes: int = EVENTS_MAX_BYTES,
    update: bool = False,
) -> None:
    """Create the two streams if missing; with ``update``, also set the events stream's limits (the gateway)."""
    from nats.js.errors import NotFoundError

    for cfg in _stream_configs(events_max_age, events_max_bytes):
        try:
            info = await js.stream_info(cfg.name)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
            except Exception:  # created meanwhile by another agent or gateway: use that one
                await js.stream_info(cfg.name)
            continue
        if update and cfg.name == EVENTS_STREAM:
            current = info.config
            if current.max_age != cfg.max_age or current.max_bytes != cfg.max_bytes:
                current.max_age, current.max_bytes = cfg.max_age, cfg.max_bytes
                await js.update_stream(current)


class _OneSnapshot:
    """A registry stand-in for :class:`.frames.FrameBuilder` that returns a snapshot taken before.

    The frame and :func:`state_extras` read the same snapshot, so a frame's per-strategy rows add up to its
    per-symbol ones (two snapshots would straddle whatever the journal's applier applied in between).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.snap: Snapshot | None = None

    def snapshot(self, names: Any = None, **options: Any) -> Snapshot:
        if self.snap is None:  # before the first frame (the builder's start-of-day P&L): the registry's own
            return self.registry.snapshot(names, **options)
        return self.snap

    def __getattr__(self, name: str) -> Any:  # anything else the builder reads: the registry's own
        return getattr(self.registry, name)


def state_extras(snap: Snapshot) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """What the fleet view needs beyond a frame: each latency histogram's merged buckets, and rows per strategy.

    ``({"submit_to_fill": [bounds, counts, min, max], ...}, {"momentum": {"ord": 3, "rpnl": 12.5, ...}})``
    """
    hist: dict[str, Any] = {}
    for name, key in LATENCIES.items():
        fam = snap.histogram(name)
        if fam is None or not fam.points:
            continue
        counts = [0] * (len(fam.bounds) + 1)
        lo, hi = float("inf"), float("-inf")
        for p in fam.points:
            counts = [a + b for a, b in zip(counts, p.counts, strict=True)]
            lo, hi = min(lo, p.min), max(hi, p.max)
        if sum(counts):
            hist[key] = [list(fam.bounds), counts, lo, hi]
    strategies: dict[str, dict[str, Any]] = {}
    for names in (STRATEGY_COUNTERS, STRATEGY_GAUGES):
        for name, key in names.items():
            for np_ in snap.numbers(name):
                strategy = np_.attributes.get("strategy")
                if strategy is None:
                    continue
                row = strategies.setdefault(str(strategy), {})
                if key in WORST_OF:  # the worst of the strategy's venues (and processes)
                    row[key] = max(row.get(key, 0), np_.value)
                else:
                    row[key] = row.get(key, 0) + np_.value
    return hist, strategies


def desk_extras(snap: Snapshot, builder: FrameBuilder) -> dict[str, Any]:
    """What the fleet view needs to merge the ``desk`` section exactly (see :mod:`.fleet`).

    ``rw``: the reject rate's window counts ``[decided, rejected, seconds]`` (decided: submitted + rejected at risk,
    never submitted; the fleet's rate is recomputed from
    the sum of these); ``limits``: every risk limit in use keyed ``strategy/limit`` (the frame's own ``desk.limits``
    drops the strategy when there is only one, so two instances' limits could collide); ``gross``: per symbol the
    sum of |position| over strategies (the weight of the frame's ``avg``, as the frame builder weights strategies).
    """
    limits: dict[str, float] = {}
    for p in snap.numbers(LIMITS):
        name = str(p.attributes.get("limit", ""))
        strategy = p.attributes.get("strategy")
        key = name if strategy is None else f"{strategy}/{name}"
        limits[key] = p.value if key not in limits else max(limits[key], p.value)  # the worst of its venues
    gross: dict[str, float] = {}
    for p in snap.numbers(POSITION):
        sym = p.attributes.get("symbol")
        if sym is not None:
            gross[str(sym)] = gross.get(str(sym), 0.0) + abs(p.value)
    return {"rw": list(builder.reject_counts), "limits": limits, "gross": gross}


def _export_state() -> str:
    from ..agent import export_state

    return export_state()


class NatsPublisher:
    """This process's frames and events to NATS, from a thread of its own. :meth:`stop` is bounded and safe twice.

    >>> pub = NatsPublisher("nats://127.0.0.1:4222", service="risk", instance="i-1")   # doctest: +SKIP
    >>> pub.start(); ...; pub.stop()                                                     # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        service: str,
        instance: str,
        hz: float = 10.0,
        registry: Registry | None = None,
        bus: EventBus | None = None,
        outbox: int = OUTBOX,
        trading_day: TradingDay = LOCAL_MIDNIGHT,
    ) -> None:
        if hz <= 0 or outbox < 1:
            raise ValueError(f"hz must be > 0 and outbox >= 1, got hz={hz!r}, outbox={outbox!r}")
        self.url, self.service, self.instance, self.hz = url, str(service), str(instance), hz
        self.registry = registry if registry is not None else get_registry()
        self.bus = bus if bus is not None else get_bus()
        base = f"{PREFIX}.{token(service)}.{token(instance)}"
        self.frame_subject, self.event_subject = base + ".frame", base + ".event"
        self._snap = _OneSnapshot(self.registry)
        self._reuse: dict[str, Any] = {}  # unchanged latency series are not copied per tick (Registry.snapshot)
        self._builder = FrameBuilder(self._snap, self.bus, trading_day)  # type: ignore[arg-type]  # reads self._snap.snap
        self._working = WorkingOrders()  # from the events this publisher collects, as the agent's own hub keeps it
        self._outbox: deque[_Batch] = deque()  # messages of events, oldest first
        self._queued = 0  # events in the outbox
        self._outbox_max = outbox
        self._bus_seq = self.bus.last_seq  # events from now on (earlier ones were before NATS was configured)
        self._seq = 0
        self._ensured_at = 0.0
        self._collected_at = -COLLECT_EVERY  # time.monotonic() of the last collect hooks run (as the hub's)
        self._nc: Any = None
        self._js: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self.connected = False
        # An outage (the connection lost, then back): said when it begins and when it ends, at most one a
        # OUTAGE_EVERY seconds (the next one said counts those that were not)
        self._down_since: float | None = None
        self._down_said = False
        self._down_frames = 0  # frames dropped when it began
        self._throttle = Throttle()
        self._host = socket.gethostname()
        self.stats = {"frames": 0, "events": 0, "dropped_frames": 0, "dropped_events": 0, "connects": 0}
        reg = self.registry
        published = reg.counter("tradeobs.live.nats.published", "{message}", "Live frames and events sent to NATS")
        dropped = reg.counter(
            "tradeobs.live.nats.dropped", "{message}", "Live frames and events not sent to NATS, by kind and reason"
        )
        self._m_pub_frame = published.bind(kind="frame")
        self._m_pub_event = published.bind(kind="event")
        self._m_dropped = dropped
        self._m_connected = reg.gauge("tradeobs.live.nats.connected", "{state}", "1 while connected to NATS").bind()
        self._m_outbox = reg.gauge(
            "tradeobs.live.nats.outbox", "{event}", "Events waiting for NATS (bounded; the oldest are dropped)"
        ).bind()
        self._m_connected.set(0)
        self._m_outbox.set(0)

    # ------------------------------------------------------------------ lifecycle (any thread)

    def start(self) -> None:
        """Start the publishing thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._thread_main, name="tradeobs-nats", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Send what the outbox holds (within ``timeout``), close the connection and end the thread."""
        self._stop.set()
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wakeup.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout + 1.0)
        self._thread = None

    @property
    def outbox(self) -> int:
        """Events waiting to be sent."""
        return self._queued

    def _drop(self, kind: str, reason: str, n: int = 1) -> None:
        self.stats["dropped_frames" if kind == "frame" else "dropped_events"] += n
        self._m_dropped.add(n, {"kind": kind, "reason": reason})

    # ------------------------------------------------------------------ the thread

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # a bug of ours: counted and said once; the host keeps running
            internal_error("live.nats.publisher", exc)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        connector = asyncio.create_task(self._connect(), name="tradeobs-nats-connect")
        period = 1.0 / self.hz
        try:
            while not self._stop.is_set():
                # the next wall-clock tick k * period (the gateway ticks a little after the same grid)
                delay = period - time.time() % period
                try:
                    await asyncio.wait_for(self._wakeup.wait(), delay)
                except TimeoutError:
                    pass
                if self._stop.is_set():
                    break
                try:
                    self._tick()
                    offer_gil()
                    await self._send_frame()
                    await self._send_events(deadline=time.monotonic() + period / 2)
                except Exception as exc:  # a bug of ours: counted, said once; the next tick tries again
                    internal_error("live.nats.tick", exc)
        finally:
            connector.cancel()
            await self._close()

    async def _close(self) -> None:
        """At stop: the events collected so far go out (bounded), then the connection closes."""
        self._collect_events()
        if self.connected:
            await self._send_events(deadline=time.monotonic() + 1.0)
        if self._queued:
            self._drop("event", "shutdown", self._queued)
            self._outbox.clear()
            self._queued = 0
        nc, self._nc = self._nc, None
        if nc is not None:
            try:
                await asyncio.wait_for(nc.close(), 1.0)
            except (TimeoutError, OSError) as exc:
                _log.debug("tradeobs live: closing the NATS connection: %r", exc)
        self.connected = False
        self._m_connected.set(0)
        self._m_outbox.set(0)

    async def _connect(self) -> None:
        import nats

        wait = 0.25
        while not self._stop.is_set():
            try:
                nc = await nats.connect(
                    [s.strip() for s in self.url.split(",")],
                    name=f"tradeobs-agent {self.service}/{self.instance}",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_disconnected,
                )
            except Exception as exc:  # unreachable, refused, auth: the service keeps running, we retry
                self._unreachable(exc)
                await asyncio.sleep(wait)
                wait = min(5.0, wait * 2)
                continue
            self._nc, self._js = nc, nc.jetstream(timeout=ACK_TIMEOUT)
            await self._on_reconnected()
            return

    def _unreachable(self, exc: BaseException) -> None:
        warn_once(
            "live:nats:unreachable",
            "tradeobs live: NATS at %s is unreachable (%r); the service keeps running, live frames are dropped "
            "and events wait (up to %d) until it is back, counted in tradeobs.live.nats.dropped",
            safe_url(self.url),
            exc,
            self._outbox_max,
        )

    async def _on_error(self, exc: Exception) -> None:
        self._unreachable(exc)

    async def _on_disconnected(self) -> None:
        if self.connected and not self._stop.is_set():
            self._outage_began()
        self.connected = False
        self._m_connected.set(0)

    def _outage_began(self) -> None:
        now = time.monotonic()
        self._down_since, self._down_frames = now, self.stats["dropped_frames"]
        unsaid = self._throttle.allow(now, OUTAGE_EVERY)
        self._down_said = unsaid is not None
        if unsaid is None:
            return
        _log.warning(
            "tradeobs live: lost NATS at %s; the service keeps running, live frames are dropped and events wait "
            "(up to %d) until it is back%s",
            safe_url(self.url),
            self._outbox_max,
            f" ({unsaid} shorter outage(s) before this one were not said)" if unsaid else "",
        )

    def _outage_ended(self) -> None:
        since, self._down_since = self._down_since, None
        if since is None or not self._down_said:
            return
        _log.info(
            "tradeobs live: NATS at %s is back after %.1f s; %d live frame(s) were dropped meanwhile (counted in "
            "tradeobs.live.nats.dropped), %d event(s) waiting are sent now",
            safe_url(self.url),
            time.monotonic() - since,
            self.stats["dropped_frames"] - self._down_frames,
            self._queued,
        )

    async def _on_reconnected(self) -> None:
        js = self._js
        if js is None:
            return
        try:  # a restarted server may have lost its streams (memory storage, a new volume)
            await ensure_streams(js)
        except Exception as exc:  # JetStream not ready yet: publishing fails and retries until it is
            self._unreachable(exc)
        self.connected = True
        self.stats["connects"] += 1
        self._m_connected.set(1)
        self._outage_ended()

    # ------------------------------------------------------------------ each tick

    def _collect_events(self) -> None:
        """This tick's new events into the outbox, as messages of up to BATCH_EVENTS events (one ack each)."""
        new = self.bus.since(self._bus_seq, pending=False)  # what the journal's applier published
        if not new:
            return
        if new[0].seq > self._bus_seq + 1:  # the bus ring moved past us (more than it holds in one tick)
            self._drop("event", "bus_evicted", new[0].seq - self._bus_seq - 1)
        self._bus_seq = new[-1].seq
        svc, inst = self.service, self.instance
        working = self._working
        for e in new:
            working.apply(e.kind, e.data, e.ts)
        parts: list[bytes] = []
        size, first = 0, new[0].seq
        for i, e in enumerate(new):
            payload = {**_clean(e.data), "kind": e.kind, "ts": e.ts, "service": svc, "instance": inst}
            data = orjson.dumps(payload, default=str)
            parts.append(data)
            size += len(data) + 1
            if len(parts) == BATCH_EVENTS or size >= BATCH_BYTES or i == len(new) - 1:
                self._outbox.append(_Batch(b"[" + b",".join(parts) + b"]", f"{inst}-{first}", len(parts)))
                self._queued += len(parts)
                parts, size, first = [], 0, e.seq + 1
        while self._queued > self._outbox_max:  # the oldest messages go first
            old = self._outbox.popleft()
            self._queued -= old.count
            self._drop("event", "outbox_full", old.count)
        self._m_outbox.set(self._queued)

    def _tick(self) -> None:
        get_journal().wake()  # the applier applies pending trading calls on its thread, for the next tick
        self._collect_events()

    def _frame_bytes(self) -> bytes:
        mono = time.monotonic()
        collect = mono - self._collected_at >= COLLECT_EVERY  # the gauges set at collection, fresh (as the hub's)
        if collect:
            self._collected_at = mono
        self._snap.snap = snap = self.registry.snapshot(_INSTRUMENTS, prepare=collect, reuse=self._reuse)
        offer_gil()
        state = self._builder.build({"nats_outbox": self._queued, "export": _export_state()}, self._working, snap)
        offer_gil()
        hist, strategies = state_extras(snap)
        desk = desk_extras(snap, self._builder)
        self._seq += 1
        body: Mapping[str, Any] = {
            "v": PAYLOAD_VERSION,
            "service": self.service,
            "instance": self.instance,
            "host": self._host,
            "pid": os.getpid(),
            "seq": self._seq,
            "hz": self.hz,
            "state": state,
            "hist": hist,
            "strategies": strategies,
            "desk": desk,
            "pub": {
                "dropped_frames": self.stats["dropped_frames"],
                "dropped_events": self.stats["dropped_events"],
                "outbox": self._queued,
            },
            "ts": round(time.time(), 4),  # stamped last: the gateway's latency is measured from here
        }
        return orjson.dumps(body, default=str)

    async def _send_frame(self) -> None:
        nc = self._nc
        if nc is None or not self.connected or not nc.is_connected:
            self._drop("frame", "disconnected")
            return
        data = self._frame_bytes()
        try:
            await nc.publish(self.frame_subject, data)
        except Exception as exc:  # buffer full while reconnecting, payload too big, connection closed
            self._drop("frame", type(exc).__name__)
            warn_once(f"live:nats:frame:{type(exc).__name__}", "tradeobs live: a frame was not sent to NATS: %r", exc)
            return
        self.stats["frames"] += 1
        self._m_pub_frame.add(1)

    async def _send_events(self, deadline: float) -> None:
        """Publish the outbox in order, ROUND messages at a time, until it is empty, a publish fails, or ``deadline``.

        One message per tick in the usual case: its ack, not one per event, is what the thread waits for.
        """
        js = self._js
        box = self._outbox
        while box and js is not None and self.connected and time.monotonic() < deadline:
            batch = list(islice(box, ROUND))
            futures = []
            try:
                subject = self.event_subject
                for b in batch:
                    headers = {MSG_ID: b.msg_id}
                    futures.append(await js.publish_async(subject, b.data, wait_stall=ACK_TIMEOUT, headers=headers))
            except Exception as exc:  # not connected, or too many acks outstanding: retry next tick
                self._unreachable(exc)
            results = await asyncio.gather(*(asyncio.wait_for(f, ACK_TIMEOUT) for f in futures), return_exceptions=True)
            sent = events = 0
            for r in results:  # the stored prefix leaves the outbox; the rest is sent again (deduplicated)
                if isinstance(r, BaseException):
                    self._unreachable(r)
                    await self._stream_gone(r)
                    break
                events += batch[sent].count
                sent += 1
            for _ in range(sent):
                box.popleft()
            self._queued -= events
            self.stats["events"] += events
            self._m_pub_event.add(events)
            self._m_outbox.set(self._queued)
            if sent < len(batch):
                return

    async def _stream_gone(self, exc: BaseException) -> None:
        """No stream took the message (deleted by an operator?): create it again, at most every 5 s."""
        from nats.js.errors import NoStreamResponseError

        now = time.monotonic()
        if not isinstance(exc, NoStreamResponseError) or now - self._ensured_at < 5.0 or self._js is None:
            return
        self._ensured_at = now
        try:
            await ensure_streams(self._js)
        except Exception as err:  # JetStream unavailable: the next tick tries again
            self._unreachable(err)


class _Batch:
    """One message of the events stream: a JSON array of events, its ``Nats-Msg-Id``, how many events."""

    __slots__ = ("count", "data", "msg_id")

    def __init__(self, data: bytes, msg_id: str, count: int) -> None:
        self.data, self.msg_id, self.count = data, msg_id, count
