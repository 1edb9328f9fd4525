"""The live producer: one frame per tick, serialized once, the same bytes fanned out to every client.

>>> hub = LiveHub(hz=10)                 # create_app() makes one; agent.shutdown() stops it
>>> hub.snapshot()["symbols"]            # the current state, built on demand before the first tick
{}

Each tick the producer (one asyncio task, started lazily on the first request
in the server's event loop):

1. pulls new discrete events (fills, rejects, orders, alerts, kill switch)
   from the :class:`~tradeobs_agent.events.EventBus`, gives each the next id
   and keeps its ready SSE bytes in a bounded ring (``event_buffer``);
2. builds the state once with :class:`~.frames.FrameBuilder` and serializes it
   with orjson twice: a full frame, and a delta against the previous tick
   (every ``full_every`` seconds the delta is replaced by a full frame). A
   frame slower than ``offload_after`` (2 ms: 1,000 symbols) is built from the
   next tick on by the hub's ``tradeobs-live-frames`` thread, which gives the
   GIL back every 0.1 ms, so the loop (in a service, the trading code's) is
   not held 20 ms ten times a second; steps 1 and 3 stay on the loop;
3. fans out: a client that is up to date gets *the same bytes object* (this
   tick's events + delta) as everyone else; a client that is behind (it
   reconnected, or its socket was slow) gets the events it is missing from the
   ring and then the full frame; a client whose previous send has not finished
   is skipped, its skipped tick counted as *coalesced*.

So a client's "buffer" is one cursor (the last id it was sent) into the shared
ring plus the shared latest frame: a stalled client costs O(1) memory whatever
its lag, and one that fell off the ring gets an ``event: reset`` and a full
frame. Every event has ``id: <boot>-<n>``; ``<boot>`` changes per process, so a
``Last-Event-ID`` from a previous process is recognised as unknown.

The fleet gateway (:mod:`.gateway`) is this hub with other sources: its ``builder`` is the merged fleet view
(with its own ``delta``), its ticks follow the agents' wall-clock grid (``phase``, :meth:`LiveHub._sleep`), its
events and their ids come from JetStream (``_pull_events``, ``_frame``, :meth:`LiveHub.last_wire_id`), and a
resume may fetch what the ring lacks (:meth:`LiveHub.prepare_resume`, ``_resume_body``). The fan-out is this one.

Intentional divergence from sse-starlette's ``EventSourceResponse``
---------------------------------------------------------------------

The stream endpoint speaks raw ASGI instead of returning an
``EventSourceResponse``. Per client per message that response runs an anyio
cancel scope (``send_timeout``), a lock, ``ensure_bytes`` and four tasks per
connection (stream, ping, exit watcher, disconnect listener); at 4,000 clients
x 10 Hz that is the budget of the whole 2-core machine (see
``benchmarks/sse_fanout.py``: the naive per-client generator is the baseline).
Instead:

* **Inline sends.** The producer calls each client's ASGI ``send`` and runs the
  coroutine one step itself. When the socket takes the bytes (the normal
  case) the coroutine finishes in that step: no task is woken, no future is
  created. When the server's flow control pauses it (the client is not
  reading) the half-run coroutine is handed to a task that finishes it
  (:class:`_Resume` forwards exactly what a ``Task`` would), and the client is
  "busy" until then.
* **Send timeout without timers.** Instead of a cancel scope per send, the fan-out
  loop checks how long a busy client has been busy; past ``send_timeout`` it
  is closed (counted in ``tradeobs.live.clients.timed_out``). Its handler then
  returns without finishing the chunked body, so the server closes the socket
  (uvicorn logs "ASGI callable returned without completing response": that
  line is the record of a dead client).
* **Heartbeat** is a comment (``: hb``) prepended to a tick's bytes every
  ``heartbeat`` seconds, not a separate ping task per client.
* **Shutdown**: we reuse sse-starlette's :class:`AppStatus` (its uvicorn
  ``handle_exit`` hook) and, like it, uvicorn's ``Server.should_exit`` found
  through the SIGTERM handler, polled once per tick; on exit, or on
  :meth:`LiveHub.stop`, every stream gets its terminating chunk and ends.

Several worker processes (multi-process mode)
---------------------------------------------

When the agent runs as a member of a worker group (``_internal/workers``),
the hub implements :class:`~tradeobs_agent._internal.workers.group.LiveRole`:
the group's leader gives every event of every worker its id
(:meth:`LiveHub.lead_events`, sent at once, not on the next tick) and builds
the frames from the merged snapshot of all workers (:meth:`LiveHub.lead_tick`,
on the group's thread, not the server's loop); every member applies the same
deliveries (:meth:`LiveHub.follow`, encoded by :mod:`.wire`), so each
worker's clients get the same bytes and ids, and a ``Last-Event-ID`` from one
worker resumes on any other. A new leader (the old one died) starts a new
``boot``: clients then get ``event: reset`` and a full frame. State that a
delivery changes (ring, history, latest tick) is changed under the hub's lock
on the group's thread; the fan-out to clients runs on the server's loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from .. import _serve
from .._errors import internal_error, warn_once
from .._internal.gil import Slices
from .._internal.workers.detect import uvicorn_server
from .._trading_day import LOCAL_MIDNIGHT, TradingDay
from ..events import EventBus, get_bus
from ..metrics import Registry, Snapshot, get_registry
from ..redaction import default_redactor
from ..trading._journal import get_journal
from . import wire
from .frames import COLLECT_EVERY, FRAME_INSTRUMENTS, FrameBuilder, delta, select_symbols
from .rows import exact
from .working import WorkingOrders

__all__ = ["LiveHub", "parse_event_id"]

_log = logging.getLogger("tradeobs.live")
# Share of a tick's period before it at which the journal's applier is woken (one process): what the trading code
# recorded until then is applied on the applier's thread in time for the tick. Measured (benchmarks/multiprocess.py,
# one worker, 20 fills/s at 10 Hz): a fill reached the client after p50 150 ms, p99 201 ms when the applier was woken
# at the tick itself (so its events went out with the next one).
APPLY_LEAD = 0.25
OFFLOAD_AFTER = 0.002  # seconds: a frame slower to build than this is built off the event loop (see LiveHub)

Send = Callable[[dict[str, Any]], Awaitable[None]]
HISTORY_SYMBOLS = 20


def parse_event_id(value: str | None) -> tuple[str, int] | None:
    """``"<boot>-<n>"`` -> ``(boot, n)``; anything else -> ``None`` (never raises: the value is the client's).

    ``n`` is at most 19 ASCII digits: ``str.isdigit`` also accepts ``"²"`` (``int()`` refuses it), and ``int()`` of
    thousands of digits raises (or costs CPU) where no real id can be that long.
    """
    if not value or type(value) is not str:
        return None
    boot, _, n = value.strip().rpartition("-")
    if not boot or not n or len(n) > 19 or not n.isascii() or not n.isdigit():
        return None
    return boot, int(n)


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Event data without keys that look secret, and with secret text and known secret values masked in the
    rest (``tradeobs_agent.redaction``: the rules of the logs and spans): nothing secret leaves in a frame."""
    red = default_redactor()
    return {k: red.value(k, v) for k, v in data.items() if not red.is_secret_key(str(k))}


class _Resume:
    """Finish a coroutine that was already run one step, yielding what it yields (as ``yield from`` would)."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, None]:
        coro, yielded = self.coro, self.first
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration:
                    return


async def _finish(coro: Any, first: Any) -> None:
    await _Resume(coro, first)


RESET = -1  # a client cursor from an earlier boot: its next delivery starts with a reset


class Client:
    """One connected stream. Its whole per-client state is these slots."""

    __slots__ = (
        "abort",
        "boot",
        "busy_since",
        "closing",
        "coalesced",
        "cursor",
        "inflight",
        "pending",
        "scope",
        "send",
        "sent",
        "task",
    )

    def __init__(
        self,
        send: Send,
        task: asyncio.Task[Any] | None,
        scope: Mapping[str, Any] | None = None,
        abort: Callable[[], None] | None = None,
    ) -> None:
        self.send = send
        self.task = task
        self.scope = scope  # to find its connection in uvicorn's when it times out (no ``abort`` from the server)
        self.abort = abort  # drops its connection at once (``_serve.ABORT_KEY``, from the servers tradeobs runs)
        self.cursor = 0
        self.boot = ""  # the boot its cursor counts in (a worker group's leader can change)
        self.pending: asyncio.Task[None] | None = None
        self.busy_since = 0.0
        self.inflight = 0
        self.closing: str | None = None
        self.sent = 0
        self.coalesced = 0


class Tick:
    __slots__ = ("boot", "fast", "full", "full_json", "last_id", "prev_id", "ts")

    def __init__(
        self, prev_id: int, last_id: int, fast: bytes, full: bytes, full_json: bytes, ts: float, boot: str = ""
    ) -> None:
        self.prev_id, self.last_id, self.ts = prev_id, last_id, ts
        self.fast, self.full, self.full_json = fast, full, full_json
        self.boot = boot


def _export_state() -> str:
    from ..agent import export_state

    return export_state()


class LiveHub:
    """Producer and fan-out for the live stream. Thread-safe :meth:`stop`; everything else runs in one event loop."""

    def __init__(
        self,
        registry: Registry | None = None,
        bus: EventBus | None = None,
        *,
        hz: float = 10.0,
        max_clients: int = 5000,
        send_timeout: float = 10.0,
        full_every: float = 5.0,
        heartbeat: float = 5.0,
        retry_ms: int = 1000,
        event_buffer: int = 2048,
        history: int = 600,
        server: Any = None,
        builder: Any = None,
        phase: float | None = None,
        trading_day: TradingDay = LOCAL_MIDNIGHT,
    ) -> None:
        if hz <= 0 or max_clients < 1 or event_buffer < 1 or history < 1:
            raise ValueError("hz must be > 0 and max_clients, event_buffer, history >= 1")
        self.registry = registry if registry is not None else get_registry()
        self.bus = bus if bus is not None else get_bus()
        self.hz, self.max_clients, self.send_timeout = hz, max_clients, send_timeout
        self.full_every, self.heartbeat, self.retry_ms = full_every, heartbeat, retry_ms
        self.server = server
        self.phase = phase  # None: tick from start-up; else on the wall-clock grid, ``phase`` seconds after it
        self.boot = format(time.time_ns() // 1000, "x")
        self._bid = self.boot.encode()
        # The state source: anything with ``build(extra_health, working) -> dict`` (the gateway passes its fleet view).
        self._builder = builder if builder is not None else FrameBuilder(self.registry, self.bus, trading_day)
        self._delta = getattr(self._builder, "delta", delta)
        self._working = WorkingOrders()
        self._n = 0
        self._events: deque[tuple[int, bytes, dict[str, Any]]] = deque(maxlen=event_buffer)
        self._evicted_upto = 0
        self._bus_seq = max(0, self.bus.last_seq - event_buffer)
        self._clients: dict[Client, None] = {}
        self._tick: Tick | None = None
        self._state: dict[str, Any] | None = None
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self._last_full = 0.0
        self._last_hb = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self.stopped = False
        # Guards the ring, the history and the latest tick: in a worker group the group's thread changes them.
        self._lock = threading.RLock()
        self._exit_at_start = _app_status_exit()
        self.group: Any = None  # the worker group this process is a member of (multi-process mode)
        self.names = FRAME_INSTRUMENTS
        # A frame that took longer than this to build (seconds) is built off the event loop from the next tick on;
        # None: always on the loop. Only the hub's own FrameBuilder (a fleet gateway's view builds on its loop).
        self.offload_after: float | None = OFFLOAD_AFTER
        self._offloadable = isinstance(self._builder, FrameBuilder)
        self._offload = False
        self._woken_early = False  # this tick's applier wake was scheduled before it (_wake_applier_before)
        self._collected_at = -COLLECT_EVERY  # time.monotonic() of the last collect hooks run for a frame
        self._frames_thread = _FramesThread()
        self.stats = {
            "frames_sent": 0,
            "frames_coalesced": 0,
            "rejected": 0,
            "timed_out": 0,
            "resets": 0,
            "not_aborted": 0,  # timed-out clients whose connection could not be reset (closed gracefully instead)
        }
        reg = self.registry
        # Per process: each worker's own clients and sends (a `pid` label on a shared endpoint).
        c, g = functools.partial(reg.counter, aggregation="pid"), functools.partial(reg.gauge, aggregation="pid")
        self._m_clients = g("tradeobs.live.clients", "{client}", "Connected live-stream clients").bind()
        self._m_sent = c("tradeobs.live.frames.sent", "{frame}", "Live frames sent to clients").bind()
        self._m_coalesced = c(
            "tradeobs.live.frames.coalesced", "{frame}", "Live frames skipped for a busy client (it gets the latest)"
        ).bind()
        self._m_rejected = c(
            "tradeobs.live.clients.rejected",
            "{client}",
            "Stream connections refused (limit, auth, stopped), and requests refused for their Host (DNS rebinding)",
        ).bind()
        self._m_timed_out = c(
            "tradeobs.live.clients.timed_out", "{client}", "Stream clients closed because a send timed out"
        ).bind()
        self._m_clients.set(0)
        self._join_group()

    # ------------------------------------------------------------------ lifecycle

    def ensure_started(self) -> bool:
        """Start the producer in the running loop (idempotent). False once stopped."""
        if self.stopped:
            return False
        self._attach_to_agent()  # per request (cheap): init() may run after create_app() and the first request
        loop = asyncio.get_running_loop()
        if self._task is not None and self.loop is loop and not self._task.done():
            return True
        with self._lock:
            self.loop = loop
            self._loop_thread = threading.get_ident()
            self._clients.clear()
            if self.group is None:
                self._step()  # a first frame right away, so the first client does not wait a tick
            self._task = loop.create_task(self._run(), name="tradeobs-live-producer")
        if self.group is not None:
            self.group.live_started()  # the group's leader produces the frames; this loop only fans them out
        return True

    def _attach_to_agent(self) -> None:
        """Let ``agent.shutdown()`` stop this hub, also when ``init()`` ran after ``create_app()``."""
        from ..agent import get_agent

        agent = get_agent()
        if agent is not None and agent.live is None:
            agent.live = self
        self._join_group()

    def _join_group(self) -> None:
        """In multi-process mode, become the live side of this process's worker group (once)."""
        from ..agent import get_agent

        agent = get_agent()
        group = getattr(agent, "group", None)
        if group is None or self.group is group or agent is None or self.registry is not agent.registry:
            return
        self.group = group
        if isinstance(self._builder, FrameBuilder):  # its frames are the group's: the day's P&L starts at the first
            self._builder.day_from_first_frame()
        group.attach_live(self)

    def stop(self, timeout: float = 2.0) -> None:
        """Close every stream and stop the producer. Safe from any thread, and twice."""
        self.stopped = True
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._stop_in_loop()
            return
        if not loop.is_running():
            return
        done = threading.Event()

        def _do() -> None:
            try:
                self._stop_in_loop()
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(_do)
        except RuntimeError:  # loop closed meanwhile
            return
        done.wait(timeout)

    def disconnect_all(self) -> int:
        """End every stream cleanly (clients reconnect with ``Last-Event-ID``); call it in the server's loop."""
        clients = list(self._clients)
        for c in clients:
            self._close(c, "stop")
        return len(clients)

    def _stop_in_loop(self) -> None:
        self.stopped = True
        self._frames_thread.close()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        for c in list(self._clients):
            self._close(c, "stop")
        self._m_clients.set(0)

    async def _run(self) -> None:
        # time.monotonic(), not loop.time(): uvloop's clock is cached per loop iteration, so after a
        # long fan-out it is stale and every tick would drift late by the fan-out time.
        period = 1.0 / self.hz
        next_t = self._grid(period)
        while not self.stopped:
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:  # fell more than a tick behind: do not burst to catch up
                next_t = self._grid(period)
                delay = max(0.0, next_t - time.monotonic())
            if self.group is None:
                # The journal's applier applies what the trading code recorded a little before the tick, on its
                # own thread, so the tick sends it: a fill reaches the clients at the next tick, not the one after.
                self._woken_early = self._wake_applier_before(delay)
            await self._sleep(max(0.0, delay))
            if self._server_exiting():
                n = len(self._clients)
                _log.info("tradeobs live: server is shutting down; closing %d stream%s", n, "" if n == 1 else "s")
                self._stop_in_loop()
                return
            if self.group is not None:
                continue  # frames come from the group's leader (see follow()); this task only watches for exit
            try:
                if self._offload:
                    await self._step_off_loop()
                else:
                    self._step()
            except Exception as exc:  # never let one bad tick end the stream
                warn_once("live:tick", "tradeobs live: building a frame failed: %r", exc)

    def _wake_applier_before(self, delay: float) -> bool:
        """Wake the journal's applier ``APPLY_LEAD`` of a period before the tick due in ``delay`` seconds; False
        when the tick is due sooner than that (the tick wakes it itself, see :meth:`_begin_step`)."""
        loop = self.loop
        lead = delay - APPLY_LEAD / self.hz
        if loop is None or lead <= 0:
            return False
        loop.call_later(lead, get_journal().wake)
        return True

    async def _sleep(self, delay: float) -> None:
        """Wait for the next tick (a hook: the fleet gateway ticks early once every instance's frame is in)."""
        await asyncio.sleep(delay)

    def _grid(self, period: float) -> float:
        """Now, or with ``phase`` set, the last wall-clock tick time ``k * period + phase`` (as a monotonic time).

        The Linux monotonic clock is slewed by NTP like the wall clock, so once aligned the ticks stay on the grid:
        every process with the same ``hz`` and ``phase`` ticks together, on any host with a synchronised clock.
        """
        now = time.monotonic()
        if self.phase is None:
            return now
        return now - (time.time() - self.phase) % period

    def _server_exiting(self) -> bool:
        if _app_status_exit() and not self._exit_at_start:
            return True
        srv = self.server if self.server is not None else uvicorn_server()
        return bool(srv is not None and getattr(srv, "should_exit", False))

    # ------------------------------------------------------------------ producing

    def _frame(self, kind: str, fid: int, ts: float, body: Mapping[str, Any]) -> tuple[bytes, bytes]:
        data = orjson.dumps({"type": kind, "seq": fid, "ts": ts, **body}, default=str)
        return b"id: %s-%d\nevent: frame\ndata: %s\n\n" % (self._bid, fid, data), data

    def _pull_events(self) -> list[bytes]:
        new = self.bus.since(self._bus_seq, pending=False)  # the journal's applier publishes them (see _step)
        out = []
        ring = self._events
        working = self._working
        for e in new:
            working.apply(e.kind, e.data, e.ts)
            self._n += 1
            payload = {**_clean(e.data), "kind": e.kind, "ts": e.ts, "id": f"{self.boot}-{self._n}"}
            b = b"id: %s-%d\nevent: event\ndata: %s\n\n" % (self._bid, self._n, orjson.dumps(payload, default=str))
            if len(ring) == ring.maxlen:
                self._evicted_upto = ring[0][0]
            ring.append((self._n, b, payload))
            out.append(b)
        if new:
            self._bus_seq = new[-1].seq
        return out

    def _step(self) -> None:
        """One tick, all of it on the server's event loop."""
        self._finish_step(*self._produce(self._begin_step(), None))

    async def _step_off_loop(self) -> None:
        """One tick whose frame is built and serialized on the frames thread, in slices (the loop meanwhile serves
        the trading code and the clients); the events and the fan-out stay on the loop."""
        loop = self.loop
        assert loop is not None
        begun = self._begin_step()
        produced = await self._frames_thread.run(loop, functools.partial(self._produce, begun, Slices().offer))
        if not self.stopped:
            self._finish_step(*produced)

    def _begin_step(self) -> _Begun:
        # Pending trading calls become values and events on the journal's applier thread, not on this
        # (the trading) event loop: a frame shows what was applied before it (the applier is woken a quarter of a
        # period before the tick, _wake_applier_before); what it has not applied by then, the next frame. One wake
        # per tick: this one only when that one was not scheduled.
        if not self._woken_early:
            get_journal().wake()
        events = self._pull_events()
        now, mono = time.time(), time.monotonic()
        full = self._state is None or mono - self._last_full >= self.full_every
        health = {"events_buffered": len(self._events), "export": _export_state()}
        collect = self._offloadable and mono - self._collected_at >= COLLECT_EVERY
        if collect:
            self._collected_at = mono
        return _Begun(events, now, round(now, 4), mono, self._n + 1, self._state, full, health, collect)

    def _produce(self, b: _Begun, offer: Callable[[], None] | None) -> tuple[_Begun, _Produced]:
        """The frame: state, full and delta bytes, chart point. Reads only the registry, the builder, the
        working orders (changed by :meth:`_pull_events`, on the loop, between two ticks) and ``b``."""
        t0 = time.perf_counter()
        if b.collect:  # the gauges set at collection, fresh (COLLECT_EVERY); off the loop with the build if it is
            self.registry.run_collect_hooks()
        state = (
            self._builder.build(b.health, self._working, offer=offer)
            if offer
            else self._builder.build(b.health, self._working)
        )
        if offer is not None:
            offer()
        full, full_json = self._frame("full", b.fid, b.ts, state)
        if offer is not None:
            offer()
        if b.full or b.prev_state is None:  # (no previous state means a full frame: the second test is for typing)
            frame = full
        else:
            frame, _ = self._frame("delta", b.fid, b.ts, self._delta(b.prev_state, state))
        point = _chart_point(b.fid, b.ts, state)
        return b, _Produced(state, full, full_json, frame, point, time.perf_counter() - t0)

    def _finish_step(self, b: _Begun, p: _Produced) -> None:
        """On the loop: the tick becomes the latest, goes to the history and out to the clients."""
        # Builds slower than OFFLOAD_AFTER (1,000 symbols) go to the frames thread from the next tick on;
        # back on the loop once they are quick (a thread hand-over costs more than a small build).
        if self.offload_after is not None and self._offloadable:
            self._offload = p.seconds > (self.offload_after / 4 if self._offload else self.offload_after)
        prev_id = self._tick.last_id if self._tick is not None else 0
        self._n = b.fid
        if b.full:
            self._last_full = b.mono
        hb = b""
        if b.mono - self._last_hb >= self.heartbeat:
            hb = b": hb %d\n\n" % int(b.now)
            self._last_hb = b.mono
        self._state = p.state
        self._history.append(p.point)
        tick = Tick(prev_id, b.fid, hb + b"".join(b.events) + p.frame, hb + p.full, p.full_json, b.ts, self.boot)
        self._tick = tick
        self._fan_out(tick)

    # ------------------------------------------------------------------ fan-out

    def _fan_out(self, tick: Tick) -> None:
        if not self._clients:
            return
        loop = self.loop
        now = loop.time() if loop is not None else 0.0
        fast = tick.fast
        prev = tick.prev_id
        last = tick.last_id
        sent = coalesced = 0
        timeout = self.send_timeout
        for c in list(self._clients):
            if c.pending is not None:
                c.coalesced += 1
                coalesced += 1
                if now - c.busy_since > timeout:
                    self._close(c, "timeout")
                continue
            # a fresh message dict per client (the body bytes are shared): a host middleware may mutate messages
            body = fast if c.cursor == prev else self._catch_up(c.cursor, tick)
            m = {"type": "http.response.body", "body": body, "more_body": True}
            c.cursor = last
            c.sent += 1
            sent += 1
            # _drive(), inlined: this loop runs clients x hz times a second
            try:
                coro = c.send(m)
                first = coro.send(None)  # type: ignore[attr-defined]
            except StopIteration:
                continue
            except Exception:
                self._close(c, "error")
                continue
            self._suspended(c, coro, first, m)
        self.stats["frames_sent"] += sent
        self.stats["frames_coalesced"] += coalesced
        self._m_sent.add(sent)
        if coalesced:
            self._m_coalesced.add(coalesced)

    def _catch_up(self, cursor: int, tick: Tick, prefix: bytes = b"") -> bytes:
        """Events after ``cursor`` still in the ring, then the full frame; a ``reset`` first if some are gone."""
        if cursor == RESET:  # counted in an earlier boot (the group has a new leader)
            self.stats["resets"] += 1
            return prefix + b'event: reset\ndata: {"reason":"new-leader"}\n\n' + tick.full
        with self._lock:
            if cursor < self._evicted_upto or cursor > tick.last_id:
                self.stats["resets"] += 1
                return prefix + b'event: reset\ndata: {"reason":"gap"}\n\n' + tick.full
            missed: list[bytes] = []
            for n, b, _ in reversed(self._events):
                if n <= cursor:
                    break
                if n < tick.last_id:
                    missed.append(b)
        missed.reverse()
        return prefix + b"".join(missed) + tick.full

    def _drive(self, c: Client, msg: dict[str, Any]) -> None:
        """Run ``send(msg)`` one step inline; if it has to wait, finish it in a task and mark the client busy."""
        try:
            coro = c.send(msg)
            first = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        except Exception:
            self._close(c, "error")
            return
        self._suspended(c, coro, first, msg)

    def _suspended(self, c: Client, coro: Any, first: Any, msg: dict[str, Any]) -> None:
        loop = self.loop
        assert loop is not None
        c.busy_since = loop.time()
        c.inflight = len(msg["body"])
        c.pending = task = loop.create_task(_finish(coro, first))
        task.add_done_callback(functools.partial(self._send_done, c))

    def _send_done(self, c: Client, task: asyncio.Task[None]) -> None:
        if c.pending is task:
            c.pending = None
            c.inflight = 0
        if not task.cancelled() and task.exception() is not None:
            self._close(c, "error")

    def _close(self, c: Client, reason: str) -> None:
        if c.closing is not None:
            return
        c.closing = reason
        # The client leaves first: another thread that sees it counted as timed out sees it gone.
        self._clients.pop(c, None)
        self._m_clients.set(len(self._clients))
        if reason == "timeout":
            self.stats["timed_out"] += 1
            self._m_timed_out.add(1)
            warn_once(
                "live:timeout", "tradeobs live: closing a stream client whose send took over %ss", self.send_timeout
            )
            # A graceful close would wait for the client to read what is buffered, which it never does: its
            # connection, files and buffers would stay until it hung up, outside max_clients. Drop it now.
            self._abort_connection(c)
        if c.pending is not None:
            c.pending.cancel()
        if c.task is not None and c.task is not asyncio.current_task():
            c.task.cancel()

    def _abort_connection(self, c: Client) -> None:
        """Reset a timed-out client's connection: through the server's hook (``_serve.ABORT_KEY``), else through
        uvicorn's own list of connections (its protocol serving this request's scope), else not at all (the server
        closes it gracefully, when the client reads or hangs up: see docs/live.md, "Slow clients and limits")."""
        abort = c.abort
        if abort is None and c.scope is not None:
            srv = self.server if self.server is not None else uvicorn_server()
            for proto in list(getattr(getattr(srv, "server_state", None), "connections", ())):
                if getattr(getattr(proto, "cycle", None), "scope", None) is c.scope:
                    abort = functools.partial(_serve.reset, proto.transport)
                    break
        if abort is None:
            self.stats["not_aborted"] += 1
            return
        try:
            abort()
        except Exception as exc:  # the server's transport: its failure is a bug to report, not the client's
            internal_error("live.abort", exc)

    # ------------------------------------------------------------------ clients

    def full(self) -> bool:
        return len(self._clients) >= self.max_clients

    def reject(self) -> None:
        self.stats["rejected"] += 1
        self._m_rejected.add(1)

    def connect(
        self,
        send: Send,
        last_event_id: str | None,
        resume: Any = None,
        scope: Mapping[str, Any] | None = None,
        abort: Callable[[], None] | None = None,
    ) -> Client:
        """Register a client whose response has started; send it ``retry:``, any replay, and a full frame.

        ``resume`` is what :meth:`prepare_resume` returned for this ``last_event_id``; ``scope`` is the request's and
        ``abort`` resets its connection (used when it times out: :meth:`_abort_connection`).
        """
        c = Client(send, asyncio.current_task(), scope, abort)
        tick = self._tick
        if tick is None:
            if self.group is None:
                self._step()
            else:
                self._provisional_tick()
            tick = self._tick
            assert tick is not None
        # The comment names the process that serves this stream (a worker of a group serves the whole service).
        prefix = b"retry: %d\n: tradeobs live %s pid %d\n\n" % (self.retry_ms, tick.boot.encode(), os.getpid())
        body = self._resume_body(last_event_id, tick, prefix, resume)
        self._clients[c] = None
        self._m_clients.set(len(self._clients))
        c.cursor = tick.last_id
        c.boot = tick.boot
        c.sent = 1
        self._drive(c, {"type": "http.response.body", "body": body, "more_body": True})
        return c

    async def prepare_resume(self, last_event_id: str | None) -> Any:
        """Hook awaited by the stream handler before :meth:`connect`; its result goes to ``connect(resume=)``.

        Nothing to do here (the ring is in memory); the fleet gateway fetches what a client missed from JetStream.
        """
        return None

    def _resume_body(self, last_event_id: str | None, tick: Tick, prefix: bytes, resume: Any) -> bytes:
        """The first bytes of a stream: a full frame, or the events missed since ``last_event_id`` and a full frame,
        or ``event: reset`` and a full frame when that id is unknown here or its events are gone."""
        parsed = parse_event_id(last_event_id)
        if not last_event_id:
            return prefix + tick.full
        if parsed is None or parsed[0] != tick.boot:  # malformed, or from another process (or group leader)
            self.stats["resets"] += 1
            return prefix + b'event: reset\ndata: {"reason":"unknown-id"}\n\n' + tick.full
        return self._catch_up(parsed[1], tick, prefix)

    def last_wire_id(self) -> str:
        """The ``id`` of the newest frame or event, as a client's ``Last-Event-ID`` would name it ("" before one)."""
        tick = self._tick  # its boot: in a worker group, a new leader's boot precedes its first frame
        return f"{tick.boot}-{tick.last_id}" if tick is not None else ""

    def disconnect(self, c: Client) -> None:
        self._clients.pop(c, None)
        if c.closing is None:
            c.closing = "gone"
        self._m_clients.set(len(self._clients))
        if c.pending is not None:
            c.pending.cancel()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def client_stats(self) -> list[dict[str, Any]]:
        """Per-client state (tests, debugging): a client holds its cursor and at most one in-flight send."""
        last = self._tick.last_id if self._tick else 0
        return [
            {
                "lag": last - c.cursor,
                "busy": c.pending is not None,
                "inflight_bytes": c.inflight,
                "sent": c.sent,
                "coalesced": c.coalesced,
            }
            for c in self._clients
        ]

    # ------------------------------------------------------------------ snapshot / history

    def snapshot_json(self) -> bytes:
        tick = self._tick
        if tick is None:
            if self.group is not None:  # no frame from the group's leader yet: the group's files, merged
                merged = self.group.read_merged(self.names, exemplars=False)
                state = self._builder.build(None, self._working, snapshot=merged)
            else:
                self.registry.flush()
                state = self._builder.build(None, self._working)
            return orjson.dumps({"type": "full", "seq": 0, "ts": time.time(), **state}, default=str)
        return tick.full_json

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.snapshot_json())
        return data

    def history_json(self) -> bytes:
        """The chart points and every event the ring holds (at most ``event_buffer``): a page loaded, or back after a
        gap longer than the ring, shows each event the server still has (the last 200 only, before: a page back after
        lunch showed 200 of the 2,048 kept, and nothing said the others were there)."""
        with self._lock:
            evs = [p for _, _, p in self._events]
            last = self.last_wire_id()
            boot = last.rsplit("-", 1)[0] if last else self.boot
            body = {"boot": boot, "last_id": last, "frames": list(self._history), "events": evs}
        return orjson.dumps(body, default=str)

    # ------------------------------------------------------------------ worker group (multi-process mode)

    def active(self) -> bool:
        """Whether this process's stream has had a client (the group's leader then produces frames)."""
        return self.loop is not None and not self.stopped

    def lead(self) -> None:
        """This process leads its worker group now: a new boot, so ids of the previous leader are unknown."""
        with self._lock:
            self.boot = format(time.time_ns() // 1000, "x")
            self._bid = self.boot.encode()
            self._n = 0
            self._events.clear()
            self._working = WorkingOrders()  # from the group's events it numbers from now on
            self._evicted_upto = 0
            self._state = None
            self._last_full = self._last_hb = 0.0

    def lead_events(self, events: Sequence[tuple[str, float, dict[str, Any]]]) -> bytes | None:
        """Leader: number the group's new events, deliver them here, and return the delivery for the others."""
        with self._lock:
            prev = self._n
            items: list[tuple[int, bytes]] = []
            working = self._working
            for kind, ts, data in events:
                working.apply(kind, data, ts)  # every worker's orders: the group's working orders
                self._n += 1
                payload = {**_clean(data), "kind": kind, "ts": ts, "id": f"{self.boot}-{self._n}"}
                items.append((self._n, orjson.dumps(payload, default=str)))
            body = wire.encode_events(self.boot, prev, items)
            self._deliver(wire.decode(body))
        return body

    def lead_tick(self, snapshot: Snapshot, workers: int, offer: Callable[[], None] | None = None) -> bytes | None:
        """Leader: one frame of the whole group (``snapshot`` is every worker's, merged), delivered here, and the
        delivery for the others. Runs on the group's thread, which passes ``gil.Slices().offer`` as ``offer``."""
        with self._lock:
            now, mono = time.time(), time.monotonic()
            health = {"events_buffered": len(self._events), "export": _export_state(), "workers": workers}
            state = self._builder.build(health, self._working, snapshot=snapshot, offer=offer)
            if offer is not None:
                offer()
            prev = self._n
            self._n += 1
            fid = self._n
            ts = round(now, 4)
            full_json = orjson.dumps({"type": "full", "seq": fid, "ts": ts, **state}, default=str)
            if offer is not None:
                offer()
            delta_json = None
            if self._state is not None and mono - self._last_full < self.full_every:
                delta_json = orjson.dumps({"type": "delta", "seq": fid, "ts": ts, **delta(self._state, state)})
            else:
                self._last_full = mono
            hb = b""
            if mono - self._last_hb >= self.heartbeat:
                hb = b": hb %d\n\n" % int(now)
                self._last_hb = mono
            self._state = state
            data = wire.TickData(self.boot, prev, fid, ts, hb, full_json, delta_json, _chart_point(fid, ts, state))
            self._deliver(data)
        return wire.encode_tick(data)

    def welcome(self) -> bytes | None:
        """Leader: what a member that just connected needs to serve resumes (the ring, history, latest frame)."""
        with self._lock:
            tick = self._tick
            data = None
            if tick is not None and tick.boot == self.boot:
                point = self._history[-1] if self._history else {}
                data = wire.TickData(self.boot, tick.prev_id, tick.last_id, tick.ts, b"", tick.full_json, None, point)
            w = wire.Welcome(self.boot, list(self._events), self._evicted_upto, list(self._history), data)
            return wire.encode_welcome(w)

    def follow(self, body: bytes) -> None:
        """Member: apply a delivery from the group's leader (on the group's thread)."""
        try:
            d = wire.decode(body)
        except ValueError as exc:
            warn_once("live:delivery", "tradeobs live: a delivery from the group's leader was not valid (%s)", exc)
            return
        with self._lock:
            self._deliver(d)

    def _deliver(self, d: wire.Events | wire.TickData | wire.Welcome) -> None:
        """With the lock held: apply ``d`` to the ring, history and latest tick; fan it out on the server's loop."""
        if d.boot != self.boot:  # a new leader: ids of the previous one mean nothing now
            self.boot, self._bid = d.boot, d.boot.encode()
            self._events.clear()
            self._evicted_upto = 0
            if not isinstance(d, wire.Welcome):
                self._tick = None
                # Joined mid-boot without the leader's welcome: the ids up to this delivery's were never here, so a
                # resume from one of them gets a reset, not a catch-up that silently skips them.
                self._evicted_upto = d.prev
        tick = None
        ring = self._events
        if isinstance(d, wire.Welcome):
            ring.clear()
            ring.extend(d.ring)
            self._evicted_upto = d.evicted_upto
            self._history.clear()
            self._history.extend(d.history)
            if d.tick is not None:
                fast, full = d.tick.sse()
                tick = Tick(d.tick.prev, d.tick.fid, full, full, d.tick.full_json, d.tick.ts, d.boot)
                self._tick = tick
            self._n = max(self._n, ring[-1][0] if ring else 0, tick.last_id if tick else 0)
        elif isinstance(d, wire.Events):
            for item in d.items:
                if len(ring) == ring.maxlen:
                    self._evicted_upto = ring[0][0]
                ring.append(item)
            self._n = max(self._n, d.last)
        else:
            fast, full = d.sse()
            tick = Tick(d.prev, d.fid, fast, full, d.full_json, d.ts, d.boot)
            self._tick = tick
            self._history.append(d.point)
            self._n = max(self._n, d.fid)
        loop = self.loop
        if loop is not None and self._clients:
            try:
                loop.call_soon_threadsafe(self._fan_out_delivery, d, tick)
            except RuntimeError:  # the loop closed meanwhile (server stopping)
                pass

    def _fan_out_delivery(self, d: wire.Events | wire.TickData | wire.Welcome, tick: Tick | None) -> None:
        """On the server's loop: send a delivery to this process's clients."""
        try:
            boot = d.boot
            for c in self._clients:
                if c.boot != boot:  # a new leader: its ids are not the ones this client counted in
                    c.cursor, c.boot = RESET, boot
            if tick is not None:
                self._fan_out(tick)
            elif isinstance(d, wire.Events):
                self._fan_out_events(d)
        except Exception as exc:  # the fan-out handles client errors itself: anything else is a bug
            internal_error("live.fan_out", exc)

    def _fan_out_events(self, d: wire.Events) -> None:
        """Events between frames go at once to the clients that are up to date; the others catch up next tick."""
        if not d.items:
            return
        body = b"".join(b for _, b, _ in d.items)
        prev, last = d.prev, d.last
        for c in list(self._clients):
            if c.pending is not None or c.cursor != prev:
                continue
            c.cursor = last
            self._drive(c, {"type": "http.response.body", "body": body, "more_body": True})

    def _provisional_tick(self) -> None:
        """A member with no frame from its group's leader yet (none elected, or not connected): a frame of the
        group's files as they are now, under this process's own boot (clients get a reset once the leader's
        frames arrive)."""
        warn_once(
            "live:no-leader",
            "tradeobs live: no frame from the worker group's leader yet; serving the group's last snapshots",
        )
        with self._lock:
            merged = self.group.read_merged(self.names, exemplars=False)
            state = self._builder.build(None, self._working, snapshot=merged)
            self._n += 1
            ts = round(time.time(), 4)
            full_json = orjson.dumps({"type": "full", "seq": self._n, "ts": ts, **state}, default=str)
            full = wire.frame_bytes(self._bid, self._n, full_json)
            self._tick = Tick(self._n - 1, self._n, full, full, full_json, ts, self.boot)

    async def wait_ready(self, timeout: float = 2.0) -> None:
        """In a worker group: wait (up to ``timeout`` s) for the leader's first frame, so a new client starts in
        the leader's boot instead of getting a reset a moment later."""
        if self.group is None or self._tick is not None:
            return
        deadline = time.monotonic() + timeout
        while self._tick is None and time.monotonic() < deadline and not self.stopped:
            await asyncio.sleep(0.02)


class _Begun(NamedTuple):
    """A tick's part taken on the loop before its frame is built."""

    events: list[bytes]
    now: float
    ts: float  # the frame's, rounded for the wire
    mono: float
    fid: int
    prev_state: dict[str, Any] | None
    full: bool  # a full frame this tick (``full_every``), not a delta
    health: dict[str, Any]
    collect: bool = False  # run the registry's collect hooks before the build (COLLECT_EVERY)


class _Produced(NamedTuple):
    state: dict[str, Any]
    full: bytes
    full_json: bytes
    frame: bytes  # the full frame or the delta
    point: dict[str, Any]  # the chart history's
    seconds: float  # how long it took (wall clock)


class _FramesThread:
    """One daemon thread that builds frames for the hub off its event loop, started on first use (and again in a
    forked child, where the parent's thread does not exist). Its work offers the GIL every 0.1 ms, so the trading
    code on the loop waits at most about that for it (:mod:`.._internal.gil`)."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]] | None]
        self._q = queue.SimpleQueue()
        self._pid = 0

    def run(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        if self._pid != os.getpid():
            self._q, self._pid = queue.SimpleQueue(), os.getpid()
            threading.Thread(target=self._work, args=(self._q,), name="tradeobs-live-frames", daemon=True).start()
        fut: asyncio.Future[Any] = loop.create_future()
        self._q.put((loop, fut, fn))
        return fut

    def close(self) -> None:
        if self._pid == os.getpid():
            self._q.put(None)
            self._pid = 0

    @staticmethod
    def _work(q: queue.SimpleQueue[Any]) -> None:
        while (item := q.get()) is not None:
            loop, fut, fn = item
            try:
                result, error = fn(), None
            except Exception as exc:  # the tick's own error: raised on the loop, where _run says it once
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:  # the loop closed meanwhile (server stopping)
                continue


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # the producer was cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _chart_point(fid: int, ts: float, state: Mapping[str, Any]) -> dict[str, Any]:
    syms = state.get("symbols", {})
    keep = select_symbols(syms, HISTORY_SYMBOLS)
    lat = state.get("latency", {}).get("submit_to_fill", {})
    return {
        "seq": fid,
        "ts": ts,
        "px": {s: syms[s].get("px") for s in keep},
        # a sum of two wire values: rounded as the frame's totals are (0.1 + 0.2 is 0.3, not 0.30000000000000004)
        "pnl": {s: exact((syms[s].get("rpnl") or 0) + (syms[s].get("upnl") or 0)) for s in keep},
        "equity": state.get("account", {}).get("equity"),
        "total": state.get("account", {}).get("pnl"),
        "p50": lat.get("p50"),
        "p99": lat.get("p99"),
    }


def _app_status_exit() -> bool:
    try:
        from sse_starlette.sse import AppStatus
    except ImportError:  # pragma: no cover - sse-starlette is a dependency
        return False
    return bool(AppStatus.should_exit)
