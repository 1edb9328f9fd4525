"""``tradeobs live gateway``: the live view of the whole fleet, from NATS JetStream, as a stateless SSE server.

>>> from tradeobs_agent.live.gateway import run_gateway
>>> run_gateway("nats://127.0.0.1:4222", "0.0.0.0", 8765)        # doctest: +SKIP

Agents publish their frames and events to NATS (:mod:`.nats`, setting ``live_nats_url``); a gateway
subscribes to both streams and serves the same routes and protocol as an agent's ``/telemetry``
(``/stream``, ``/snapshot``, ``/history``, the dashboard: :func:`.app.create_app` with a :class:`GatewayHub`),
showing the merged view of :mod:`.fleet`: fleet totals, and rows per service and per strategy.

Stateless, so any number can run behind any load balancer:

* **ids are derived from JetStream sequences.** An agent's events of one tick are one message of the
  ``tradeobs-live-events`` stream, so every gateway gives each event the same id, ``<stream>-<key>`` with
  ``key = sequence * 1000 + its index in the message`` (``<stream>`` is the stream's creation time in hex
  microseconds: a recreated stream's ids are recognised as unknown). A frame's id is the last event's.
* **Resume anywhere.** A client that reconnects, to this gateway or another, with ``Last-Event-ID`` gets
  every event after that one, then a full frame: from this gateway's ring (``event_buffer``), and older
  ones fetched from JetStream (up to ``max_replay``), with no ``reset`` as long as JetStream still holds
  them. A gateway that has not yet received the client's last event waits for it (up to 2 s). ``event:
  reset`` only when the events are gone, too many, or the id names another stream.
* **Frames follow the agents' clock.** Agents publish on the wall-clock grid (``k / hz``); the gateway ticks
  as soon as every live instance's frame of that tick is in, and ``phase`` seconds after the grid at the
  latest, so each merged frame carries every instance's frame of that tick. Its ``ts`` is the publish time of
  the oldest instance frame it shows first (the latency a client sees is from the agent's publish, not from
  the gateway's tick).
* **NATS restarts** are survived: the client reconnects by itself; on every reconnect the gateway re-creates
  missing streams and re-subscribes from the last sequence it has, so nothing stored is skipped. What the
  agents could not publish meanwhile is counted by them and shown per service (``dropped``).

Intentional divergence from :class:`.hub.LiveHub`: event ids are not the hub's own counter but keys from the
JetStream sequence; the hub's internal counter still orders the ring and each client's cursor (``_keys`` maps one
to the other).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import orjson

from .._errors import warn_once
from ..config import check_argument, resolve_settings
from ..events import EventBus
from ..exceptions import TradeObsConfigError
from ..metrics import Registry
from .app import LiveApp, count_closed, create_app
from .auth import exposure_warning
from .fleet import FleetView, clean_event
from .hub import LiveHub, Tick, parse_event_id
from .nats import (
    EVENTS_MAX_AGE,
    EVENTS_MAX_BYTES,
    EVENTS_STREAM,
    FRAMES_STREAM,
    KEY_SPAN,
    PREFIX,
    ensure_streams,
    safe_url,
)

__all__ = ["GatewayHub", "create_gateway_app", "run_gateway"]

_log = logging.getLogger("tradeobs.live")

_WAIT_AHEAD = 2.0  # seconds a resume waits for events this gateway has not received yet
_FETCH_TIMEOUT = 5.0
_INCOMING = 100_000  # events received and not yet taken by a tick
_START_BACKLOG = 256  # messages of the events stream a new gateway reads back (one per instance per tick)


def _tag(info: Any) -> str:
    """The events stream's identity in ids: its creation time in hex microseconds (a recreated stream differs)."""
    return format(int(info.created.timestamp() * 1_000_000), "x") if info.created else "0"


class _Replay:
    """What :meth:`GatewayHub.prepare_resume` found: events fetched from JetStream, or why there are none."""

    __slots__ = ("events", "reason", "upto")

    def __init__(self, events: list[bytes], upto: int, reason: str = "") -> None:
        self.events, self.upto, self.reason = events, upto, reason


class GatewayHub(LiveHub):
    """A :class:`LiveHub` whose events come from JetStream and whose state is a :class:`.fleet.FleetView`."""

    def __init__(
        self,
        url: str,
        *,
        view: FleetView | None = None,
        registry: Registry | None = None,
        hz: float = 10.0,
        max_clients: int = 5000,
        send_timeout: float = 10.0,
        event_buffer: int = 2048,
        phase: float = 0.04,
        max_replay: int = 100_000,
        events_max_age: float = EVENTS_MAX_AGE,
        events_max_bytes: int = EVENTS_MAX_BYTES,
        **hub_options: Any,
    ) -> None:
        registry = registry if registry is not None else Registry()
        self.view = view if view is not None else FleetView(registry)
        super().__init__(
            registry,
            EventBus(capacity=1),  # unused: events come from NATS
            hz=hz,
            max_clients=max_clients,
            send_timeout=send_timeout,
            event_buffer=event_buffer,
            phase=phase,
            builder=self.view,
            **hub_options,
        )
        if max_replay < 0:
            raise ValueError(f"max_replay must be >= 0, got {max_replay!r}")
        self.url, self.max_replay = url, max_replay
        self.events_max_age, self.events_max_bytes = events_max_age, events_max_bytes
        self.tag: str | None = None  # the events stream's identity (its creation time), once known
        self._incoming: deque[tuple[int, dict[str, Any]]] = deque()
        self._recv_seq = 0  # the last message sequence received from the events stream
        self._from_first = False  # the next subscription reads a recreated events stream from its first message
        self._consumer = ""  # the events consumer whose stream has been checked (see _check_consumer)
        self._stale: deque[str] = deque(maxlen=16)  # consumers of a deleted stream: their messages are dropped
        self._sent_key = 0  # the last event key put in the ring (and so in a frame's id)
        self._keys: deque[tuple[int, int]] = deque(maxlen=event_buffer)  # (event key, hub n) beside the ring
        self._nc: Any = None
        self._js: Any = None
        self._subs: list[Any] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._resubscribe: asyncio.Event | None = None  # created in the server's loop by start()
        self._last_event_at = self._last_frame_at = self._checked_at = 0.0
        self._down_since: float | None = None  # monotonic time NATS was lost, until it is back
        self.gstats = {
            "nats": 0,
            "events": 0,
            "frames": 0,
            "bad": 0,
            "overflow": 0,
            "subscribes": 0,
            "replayed": 0,
            "fetches": 0,
        }
        self._stats_at = 0.0
        self._slot: tuple[float, asyncio.Event] | None = None  # (wall-clock start of the awaited tick, its event)

    # ------------------------------------------------------------------ NATS side (the server's loop)

    async def start(self) -> None:
        """Start the producer and connect to NATS in the background (the gateway serves meanwhile)."""
        self._resubscribe = asyncio.Event()
        self.ensure_started()
        self._tasks.append(asyncio.create_task(self._connect(), name="tradeobs-gateway-nats"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        nc, self._nc = self._nc, None
        if nc is not None:
            try:
                await asyncio.wait_for(nc.close(), 2.0)
            except (TimeoutError, OSError) as exc:
                _log.debug("tradeobs gateway: closing the NATS connection: %r", exc)
        self.stop()

    async def _connect(self) -> None:
        import nats

        wait, failed = 0.25, False
        while True:
            try:
                nc = await nats.connect(
                    [s.strip() for s in self.url.split(",")],
                    name="tradeobs-gateway",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_nats_reconnected,
                )
                break
            except Exception as exc:  # unreachable: keep serving what we have, and retry
                self._warn(exc)
                failed = True
                await asyncio.sleep(wait)
                wait = min(5.0, wait * 2)
        if failed:  # the warning said it could not connect: say that it has
            _log.info("tradeobs gateway: NATS at %s connected", safe_url(self.url))
        self._nc, self._js = nc, nc.jetstream(timeout=_FETCH_TIMEOUT)
        self._tasks.append(asyncio.create_task(self._supervise(), name="tradeobs-gateway-supervise"))
        await self._on_reconnected()

    def _warn(self, exc: BaseException) -> None:
        warn_once(
            "gateway:nats",
            "tradeobs gateway: NATS at %s: %r; serving the last known state and retrying",
            safe_url(self.url),
            exc,
        )

    async def _on_error(self, exc: Exception) -> None:
        self._warn(exc)

    async def _on_disconnected(self) -> None:
        self.gstats["nats"] = 0
        if self._down_since is None:
            self._down_since = time.monotonic()

    async def _on_nats_reconnected(self) -> None:
        """The client library's reconnected_cb: say it, once per reconnect (the disconnect was warned of), then
        re-subscribe."""
        down = "" if self._down_since is None else f" after {time.monotonic() - self._down_since:.1f} s"
        self._down_since = None
        _log.info(
            "tradeobs gateway: NATS at %s reconnected%s; re-subscribing from the last event held",
            safe_url(self.url),
            down,
        )
        await self._on_reconnected()

    async def _on_reconnected(self) -> None:
        self.gstats["nats"] = 1
        assert self._resubscribe is not None
        self._resubscribe.set()

    async def _supervise(self) -> None:
        """(Re)subscribe after every (re)connect, and when a subscription has gone quiet while NATS has news."""
        assert self._resubscribe is not None
        while True:
            try:
                await asyncio.wait_for(self._resubscribe.wait(), 1.0)
            except TimeoutError:
                if not await self._stalled():
                    continue
            self._resubscribe.clear()
            try:
                await self._subscribe()
            except Exception as exc:  # JetStream not ready after a restart: try again shortly
                self._warn(exc)
                await asyncio.sleep(0.5)
                self._resubscribe.set()

    async def _stalled(self) -> bool:
        """Events or frames quiet for 3 s: is the events stream new, or ahead of us, or are frames being missed?"""
        now = time.monotonic()
        if self._js is None or self._nc is None or not self._nc.is_connected or not self._subs:
            return False
        quiet_events, quiet_frames = now - self._last_event_at >= 3.0, now - self._last_frame_at >= 3.0
        if now - self._checked_at < 3.0 or not (quiet_events or quiet_frames):
            return False
        self._checked_at = now
        try:
            info = await self._js.stream_info(EVENTS_STREAM)
            if _tag(info) != self.tag or (quiet_events and info.state.last_seq > self._recv_seq):
                return True  # recreated (an operator deleted it, agents made it again), or news we missed
            if quiet_frames and not self.view.instances:
                frames = await self._js.stream_info(FRAMES_STREAM)  # agents publish, yet no frame reaches us
                return bool(frames.state.messages)
        except Exception as exc:  # gone for now: the agents create it again when they next publish
            self._warn(exc)
        return False

    async def _subscribe(self) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = self._js
        age, size = self.events_max_age, self.events_max_bytes
        await ensure_streams(js, events_max_age=age, events_max_bytes=size, update=True)
        info = await js.stream_info(EVENTS_STREAM)
        tag = _tag(info)
        if tag != self.tag:
            self._new_stream(tag)
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the old connection's subscription may already be gone
                _log.debug("tradeobs gateway: unsubscribe: %r", exc)
        self._subs.clear()
        first, last = info.state.first_seq, info.state.last_seq
        if self._recv_seq:
            start = self._recv_seq + 1
        elif self._from_first:  # a recreated stream holds only new events: all of them, for the clients on
            start = max(first, 1)
        else:
            start = max(first, last - _START_BACKLOG + 1, 1)
        self._from_first = False
        self._subs.append(
            await js.subscribe(
                f"{PREFIX}.*.*.event",
                stream=EVENTS_STREAM,
                ordered_consumer=True,
                idle_heartbeat=1.0,
                cb=self._on_event,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start),
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
        )
        # Live frames by plain subscription: no JetStream flow control between an agent's publish and this
        # gateway (an ordered consumer's flow-control replies are polled every 0.25 s: measured, a 4,000-client
        # fan-out then saw agent frames 0.3-0.8 s late). The frames stream gives the fleet's last state at once.
        self._subs.append(await self._nc.subscribe(f"{PREFIX}.*.*.frame", cb=self._on_frame, pending_msgs_limit=-1))
        await self._latest_frames()
        self.gstats["subscribes"] += 1
        self.gstats["nats"] = 1
        self._last_event_at = self._last_frame_at = time.monotonic()

    async def _latest_frames(self) -> None:
        """Every instance's last frame from the frames stream (a new gateway knows the fleet before a tick)."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = self._js
        info = await js.stream_info(FRAMES_STREAM)
        if not info.state.messages:
            return
        sub = await js.subscribe(
            f"{PREFIX}.*.*.frame",
            stream=FRAMES_STREAM,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT),
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=_FETCH_TIMEOUT)
                await self._on_frame(msg)
                if msg.metadata.num_pending == 0:
                    break
        except TimeoutError as exc:  # the stream shrank meanwhile (an instance expired): what we got will do
            _log.debug("tradeobs gateway: reading the last frames: %r", exc)
        finally:
            await sub.unsubscribe()

    def _new_stream(self, tag: str) -> None:
        """A (new) events stream: ids from now on name it; what the ring holds belonged to the old one."""
        if self.tag is not None:
            warn_once("gateway:new-stream", "tradeobs gateway: the events stream was recreated; clients get a reset")
            self._from_first = True
        self.tag = tag
        self.boot, self._bid = tag, tag.encode()
        self._events.clear()
        self._keys.clear()
        self._incoming.clear()
        self._evicted_upto = self._n  # every cursor so far predates the new stream
        self._recv_seq = self._sent_key = 0

    async def _check_consumer(self, consumer: str) -> bool:
        """The first message of an events consumer not seen before: does it read the stream our ids name?

        New consumers come from :meth:`_subscribe`, and from the client library itself: an ordered consumer
        whose heartbeats stop (its stream was deleted) creates a new one, starting after the last sequence it
        delivered, on whatever stream now has that name. Messages of a recreated stream read that way would
        get the old stream's ids and miss its first messages, so instead the stream is taken as new
        (:meth:`_new_stream`) and read again from its first message by a new subscription.
        """
        if consumer in self._stale:
            return False
        try:
            info = await self._js.stream_info(EVENTS_STREAM)
        except Exception as exc:  # cannot tell: read again from the last sequence we have (nothing is lost)
            self._warn(exc)
            self._stale.append(consumer)
            assert self._resubscribe is not None
            self._resubscribe.set()
            return False
        if _tag(info) != self.tag:
            self._new_stream(_tag(info))
            self._stale.append(consumer)
            assert self._resubscribe is not None
            self._resubscribe.set()
            return False
        self._consumer = consumer
        return True

    async def _on_event(self, msg: Any) -> None:
        self._last_event_at = time.monotonic()
        meta = msg.metadata
        if meta.consumer != self._consumer and not await self._check_consumer(meta.consumer):
            return
        seq = meta.sequence.stream
        if seq <= self._recv_seq:
            return  # delivered again after a re-subscribe
        self._recv_seq = seq
        incoming = self._incoming
        for key, payload in self._unpack(seq, msg.data):
            self.gstats["events"] += 1
            if len(incoming) >= _INCOMING:  # the producer has not ticked for that long: bounded, counted
                incoming.popleft()
                self.gstats["overflow"] += 1
                warn_once("gateway:overflow", "tradeobs gateway: events arrive faster than ticks take them")
            incoming.append((key, payload))

    def _unpack(self, seq: int, data: bytes) -> list[tuple[int, dict[str, Any]]]:
        """A message of the events stream: its events with their keys (``seq * KEY_SPAN + index``), cleaned."""
        try:
            events = orjson.loads(data)
        except orjson.JSONDecodeError:
            events = None
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or len(events) > KEY_SPAN:
            self.gstats["bad"] += 1
            return []
        out = []
        for i, e in enumerate(events):
            payload = clean_event(e)
            if payload is None:
                self.gstats["bad"] += 1
                continue
            out.append((seq * KEY_SPAN + i, payload))
        return out

    async def _on_frame(self, msg: Any) -> None:
        self._last_frame_at = time.monotonic()
        try:
            frame = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            frame = None
        if self.view.update(frame) if isinstance(frame, dict) else False:
            self.gstats["frames"] += 1
            slot = self._slot
            if slot is not None and self.view.complete(slot[0]):
                slot[1].set()  # every instance's frame of this tick is in: tick now
        elif not isinstance(frame, dict):
            self.gstats["bad"] += 1

    async def _sleep(self, delay: float) -> None:
        """Until ``phase`` after the agents' next tick at the latest, and from that tick on as soon as every
        instance's frame of it is in (a frame from each instance not stale, stamped at or after the tick)."""
        phase = self.phase or 0.0
        start = time.time() + delay - phase  # the agents' tick this frame is for (wall clock)
        if delay > phase:
            await asyncio.sleep(delay - phase)  # never before the agents' tick
        if self.view.complete(start):
            return
        event = asyncio.Event()
        self._slot = (start, event)
        try:
            await asyncio.wait_for(event.wait(), max(0.0, start + phase - time.time()))
        except TimeoutError:
            pass
        finally:
            self._slot = None

    # ------------------------------------------------------------------ the hub's hooks

    def _pull_events(self) -> list[bytes]:
        """Events received since the last tick into the ring, each with its key (from its JetStream sequence)."""
        now = time.monotonic()
        if now - self._stats_at >= 1.0:  # the gateway's own counters, in health.gateway once a second
            self._stats_at = now
            ages, self.view.ages = self.view.ages, []  # how old the oldest agent frame of a tick was (NATS + wait)
            self.view.gateway = {
                **self.gstats,
                "data_age_ms": round(max(ages) * 1000, 1) if ages else None,
                "clients": len(self._clients),
                "frames_coalesced": self.stats["frames_coalesced"],
                "clients_rejected": self.stats["rejected"],
                "clients_timed_out": self.stats["timed_out"],
                "resets": self.stats["resets"],
            }
        out: list[bytes] = []
        ring, keys, incoming = self._events, self._keys, self._incoming
        while incoming:
            key, payload = incoming.popleft()
            self._n += 1
            b = self._event_bytes(key, payload)
            if len(ring) == ring.maxlen:
                self._evicted_upto = ring[0][0]
            ring.append((self._n, b, payload))
            keys.append((key, self._n))
            self._sent_key = key
            out.append(b)
        return out

    def _event_bytes(self, key: int, payload: dict[str, Any]) -> bytes:
        payload["id"] = f"{self.boot}-{key}"
        return b"id: %s-%d\nevent: event\ndata: %s\n\n" % (self._bid, key, orjson.dumps(payload, default=str))

    def _frame(self, kind: str, fid: int, ts: float, body: Any) -> tuple[bytes, bytes]:
        """A frame whose ``ts`` is its data's publish time and whose id is the last event's sequence."""
        data_ts = self.view.data_ts
        data = orjson.dumps({"type": kind, "seq": fid, "ts": data_ts or ts, **body}, default=str)
        return b"id: %s-%d\nevent: frame\ndata: %s\n\n" % (self._bid, self._sent_key, data), data

    def last_wire_id(self) -> str:
        return f"{self.boot}-{self._sent_key}" if self._tick is not None else ""

    async def prepare_resume(self, last_event_id: str | None) -> Any:
        """Wait for the client's last event if it is ahead of us; fetch from JetStream what the ring lacks."""
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return None
        deadline = time.monotonic() + _WAIT_AHEAD
        while (self.tag is None or parsed[0] == self.tag) and parsed[1] > self._sent_key:
            if time.monotonic() > deadline:  # we have not received it: other gateway's stream, or NATS is down
                return None
            await asyncio.sleep(0.02)
        if parsed[0] != self.tag:
            return None
        below, events = parsed[1], list[bytes]()  # every event after the client's, up to ``below``, is in events
        while self._keys:
            first = self._keys[0][0]
            if below >= first - 1:  # joins the ring: no await from here to connect(), so it still will then
                break
            if first // KEY_SPAN - below // KEY_SPAN > self.max_replay:
                return _Replay([], below, "too-old")
            fetched = await self._fetch(below, first)  # the ring may move on meanwhile: then fetch the rest
            if fetched.reason:
                return fetched
            events.extend(fetched.events)
            below = first - 1
        return _Replay(events, below) if events else None

    async def _fetch(self, after: int, before: int) -> _Replay:
        """Events with keys in ``(after, before)`` from JetStream as SSE bytes ("gone" if the stream lost them)."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = self._js
        start, end = after // KEY_SPAN, (before - 1) // KEY_SPAN
        if js is None:
            return _Replay([], after, "gone")
        self.gstats["fetches"] += 1
        try:
            info = await js.stream_info(EVENTS_STREAM)
            if info.state.first_seq > max(start, 1):  # the message of the client's last event is gone
                return _Replay([], after, "gone")
            sub = await js.subscribe(
                f"{PREFIX}.*.*.event",
                stream=EVENTS_STREAM,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(start, 1)),
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
        except Exception as exc:
            self._warn(exc)
            return _Replay([], after, "gone")
        out: list[bytes] = []
        try:
            while True:
                msg = await sub.next_msg(timeout=_FETCH_TIMEOUT)
                seq = msg.metadata.sequence.stream
                if seq > end:
                    break
                for key, payload in self._unpack(seq, msg.data):
                    if after < key < before:
                        out.append(self._event_bytes(key, payload))
                if seq >= end:
                    break
        except Exception as exc:  # a timeout: NATS went away mid-fetch
            self._warn(exc)
            return _Replay([], after, "gone")
        finally:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                _log.debug("tradeobs gateway: unsubscribe: %r", exc)
        self.gstats["replayed"] += len(out)
        return _Replay(out, before - 1)

    def _resume_body(self, last_event_id: str | None, tick: Tick, prefix: bytes, resume: Any) -> bytes:
        if not last_event_id:
            return prefix + tick.full
        parsed = parse_event_id(last_event_id)
        if parsed is None or parsed[0] != self.boot:
            return self._reset(prefix, "unknown-id", tick)
        if parsed[1] > self._sent_key:  # not received here within prepare_resume's wait
            return self._reset(prefix, "ahead", tick)
        key = parsed[1]
        replay = b""
        if isinstance(resume, _Replay):
            if resume.reason:
                return self._reset(prefix, resume.reason, tick)
            replay, key = b"".join(resume.events), resume.upto
        keys = self._keys
        if keys and key < keys[0][0] - 1:  # the ring moved on while we fetched (or nothing was fetched)
            return self._reset(prefix, "gap", tick)
        return self._catch_up(self._n_at(key), tick, prefix + replay)

    def _n_at(self, key: int) -> int:
        """The hub position of the last event at or before ``key`` (the ring's start - 1 if before all)."""
        keys = self._keys
        if not keys:
            return self._tick.last_id if self._tick is not None else 0
        if key >= keys[-1][0]:
            return keys[-1][1]
        lo, hi = 0, len(keys) - 1
        while lo < hi:  # the last index with key <= key
            mid = (lo + hi + 1) // 2
            if keys[mid][0] <= key:
                lo = mid
            else:
                hi = mid - 1
        return keys[lo][1] if keys[lo][0] <= key else keys[0][1] - 1

    def _reset(self, prefix: bytes, reason: str, tick: Tick) -> bytes:
        self.stats["resets"] += 1
        return prefix + b'event: reset\ndata: {"reason":"%s"}\n\n' % reason.encode() + tick.full


class _Lifespan:
    """The gateway's ASGI app: connect to NATS at startup (serving meanwhile), close at shutdown."""

    def __init__(self, app: LiveApp, hub: GatewayHub) -> None:
        self.app, self.hub = app, hub
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.hub.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.hub.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_gateway_app(
    url: str | None = None,
    *,
    hz: float | None = None,
    max_clients: int | None = None,
    token: str | None = None,
    cors_origins: Sequence[str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    **gateway_options: Any,
) -> Any:
    """The gateway as an ASGI app (lifespan on): ``url`` and the live settings as in ``init()``, explicit wins.

    ``gateway_options`` go to :class:`GatewayHub` (``phase``, ``event_buffer``, ``max_replay``,
    ``events_max_age``, ``events_max_bytes``, ``send_timeout``); ``app.state.hub`` is the hub.
    """
    s = resolve_settings()[0]
    raw = s.live_nats_url if url is None else url
    try:
        url = check_argument("live_nats_url", raw)
    except TradeObsConfigError as exc:  # the value may hold a password: never shown
        raise TradeObsConfigError("live_nats_url", "<redacted>", exc.allowed) from None
    if not url:
        raise TradeObsConfigError("live_nats_url", "", "a NATS URL (--nats or TRADEOBS_LIVE_NATS_URL)")
    hz = check_argument("live_hz", s.live_hz if hz is None else hz)
    max_clients = check_argument("live_max_clients", s.live_max_clients if max_clients is None else max_clients)
    hub = GatewayHub(url, hz=hz, max_clients=max_clients, **gateway_options)
    app = create_app(hub=hub, token=token, cors_origins=cors_origins, allowed_hosts=allowed_hosts, settings=s)
    return _Lifespan(app, hub)


def run_gateway(url: str | None = None, host: str = "127.0.0.1", port: int = 8765, **kwargs: Any) -> None:
    """Serve the gateway with uvicorn until Ctrl-C or SIGTERM (as :func:`.app.run`; ``kwargs`` as above)."""
    from .._serve import bind, bind_error, say_listening, serve

    try:
        sock = bind(host, port)
    except OSError as exc:
        raise OSError(exc.errno, bind_error(host, port, exc, "--port", "--host")) from None
    with sock:
        app = create_gateway_app(url, **kwargs)
        hub: GatewayHub = app.state.hub
        warning = exposure_warning(host, app.app.stream.secret)
        if warning:
            logging.getLogger("tradeobs.live").warning("%s", warning)
        say_listening(sock, host, "tradeobs live gateway: the fleet's live view")  # as the demo says its URLs

        def attach(server: Any) -> None:
            hub.server = server

        serve(app, sock, lifespan="on", on_server=attach, on_close=count_closed)
