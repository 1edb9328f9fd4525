"""One service, many processes: real uvicorn and gunicorn with 4 workers share one endpoint and one live view.

The demo app factory runs in each worker (``uvicorn --workers 4 --factory tradeobs_agent.demo:create_app`` and
``gunicorn -w 4 -k uvicorn_worker.UvicornWorker 'tradeobs_agent.demo:create_app()'``), with no collector (the
embedded default). Orders go through the demo's HTTP API, so the kernel spreads them over the workers; the
tests then check, against the real servers:

* ``/metrics`` (served by the group's leader) counts every order exactly, whichever worker took it;
* a worker killed with SIGKILL is replaced by its server, and the totals never go down; new orders add up;
* the live stream from one worker shows the orders placed through the others, each exactly once;
* a ``Last-Event-ID`` from one worker resumes on another connection (another worker) without a reset;
* killing the leader (the process that serves ``/metrics`` and produces the frames): another worker takes
  over within seconds, ``/metrics`` is back with the same totals, and stream clients recover (a ``reset``,
  then frames again);
* with ``gunicorn --preload`` (``init()`` runs in the arbiter before the fork) the arbiter is not a worker: the
  group, its count and its leader are the workers', and the totals are as exact;
* after a binary upgrade (``kill -USR2`` the master) the new master's workers join the old group: one endpoint
  counts both masters' workers, and the totals go on once the old master is stopped;
* the same service started twice (two gunicorn masters): the second one's leader, whose port the first holds, says
  so on stderr, naming the first master, and its live health says its /metrics is not served.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import math
import os
import queue
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests._util import closed_by_server

from .procs import ManagedProcess, free_port, wait_for

SERVERS = ("uvicorn", "gunicorn")
WORKERS = 4


# --------------------------------------------------------------------------- the service under test


class Service:
    def __init__(self, proc: ManagedProcess, port: int, metrics_port: int) -> None:
        self.proc, self.port, self.metrics_port = proc, port, metrics_port
        self.streams: list[Sse] = []  # closed when the service stops, also after a failed assertion

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def order(self) -> dict[str, Any]:
        """One market order of 1 through ``POST /api/orders`` on a new connection (any worker may take it)."""
        req = urllib.request.Request(
            f"{self.base}/api/orders", data=b'{"qty": 1}', headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 202
            body: dict[str, Any] = json.loads(r.read())
        return body

    def orders(self, n: int) -> list[str]:
        ids = []
        for _ in range(n):
            ids.append(self.order()["order_id"])
        return ids

    def metrics(self) -> str | None:
        """The shared endpoint's text, or None while no leader serves it (a takeover)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
                return str(r.read().decode())
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def total(self, name: str = "trading_orders_submitted_total") -> float | None:
        text = self.metrics()
        if text is None:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))

    def exemplar_traces(self) -> set[str]:
        """Trace ids of the exemplars on the shared endpoint's histogram buckets (an OpenMetrics scrape)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.metrics_port}/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        return {line.split('trace_id="')[1].split('"')[0] for line in text.splitlines() if ' # {trace_id="' in line}

    @staticmethod
    def traced(tmp_path: Path) -> set[str]:
        """Trace ids in the order trace files the workers wrote (OTLP/JSON lines; no collector)."""
        ids: set[str] = set()
        for f in (tmp_path / "logs").rglob("traces*.jsonl"):
            for line in f.read_text(errors="replace").splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue  # a line being written
                for rs in doc.get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        ids.update(sp["traceId"] for sp in ss.get("spans", []))
        return ids

    def worker_pids(self) -> set[int]:
        """Workers that published a snapshot, from their per-process self-metrics (label ``pid``)."""
        text = self.metrics() or ""
        pids = set()
        for line in text.splitlines():
            if line.startswith("tradeobs_agent_queue_capacity{") and 'queue="trading"' in line:
                pids.add(int(line.split('pid="')[1].split('"')[0]))
        return pids

    def leader(self) -> int:
        """The worker that leads the group: it serves /metrics and produces the live frames."""
        for line in (self.metrics() or "").splitlines():
            if line.startswith("tradeobs_agent_workers_leader{") and line.endswith(" 1.0"):
                return int(line.split('pid="')[1].split('"')[0])
        return 0

    def history_orders(self) -> list[str]:
        with urllib.request.urlopen(f"{self.base}/telemetry/history", timeout=10) as r:
            events = json.loads(r.read())["events"]
        return [e["order_id"] for e in events if e["kind"] == "order"]

    def snapshot(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/telemetry/snapshot", timeout=10) as r:
            data: dict[str, Any] = json.loads(r.read())
        return data


def _pid_of(order_id: str) -> int:
    return int(order_id.split("-")[1])  # the demo's ids: demo-<pid>-<seq>


@contextmanager
def service(
    server: str,
    tmp_path: Path,
    workers: int = WORKERS,
    preload: bool = False,
    args: tuple[str, ...] = (),
    app: str = "tradeobs_agent.demo:create_app",
    env: dict[str, str] | None = None,
    worker_class: str = "uvicorn_worker.UvicornWorker",
    script: bool = False,
) -> Iterator[Service]:
    port, metrics_port = free_port(), free_port()
    env = {
        "TRADEOBS_SERVICE_NAME": "workers-shared",
        "TRADEOBS_OTLP_ENABLED": "false",  # the embedded default: no collector
        "TRADEOBS_PROMETHEUS_PORT": str(metrics_port),
        "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path),
        "TRADEOBS_LOG_DIR": str(tmp_path / "logs"),
        "TRADEOBS_DEMO_SYMBOLS": "4",
        "TRADEOBS_DEMO_TICK_HZ": "5",
        "TRADEOBS_DEMO_ORDERS_HZ": "0",  # only the orders the test places
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if server == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", "--factory", app]
        argv += ["--workers", str(workers), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args]
    else:
        # script: gunicorn's own console script, as installed; a re-exec (USR2) runs its argv again, and a `python -m
        # gunicorn` re-executed so puts gunicorn's package directory first on sys.path (its `http` hides the stdlib's)
        launch = [str(Path(sys.executable).with_name("gunicorn"))] if script else [sys.executable, "-m", "gunicorn"]
        argv = [*launch, "-w", str(workers), "-k", worker_class]
        argv += ["--preload"] if preload else []
        argv += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", *args, f"{app}()"]
    proc = ManagedProcess(server, argv, env, tmp_path)
    svc = Service(proc, port, metrics_port)
    try:
        # Every worker has joined (its self-metrics are on the shared endpoint) and the HTTP port answers.
        wait_for(lambda: len(svc.worker_pids()) == workers, f"{workers} {server} workers in /metrics", procs=(proc,))
        wait_for(lambda: _ready(svc), f"{server} serving HTTP", procs=(proc,))
        yield svc
    finally:
        for s in svc.streams:
            s.close()
        proc.stop()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the server's session still there (it was ours)
        except ProcessLookupError:
            pass
    text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
    assert "Traceback" not in text, text[-4000:]
    assert "internal error" not in text, text[-4000:]


def _ready(svc: Service) -> bool:
    try:
        with urllib.request.urlopen(f"{svc.base}/healthz", timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


# --------------------------------------------------------------------------- an SSE client


class Sse:
    """A live-stream client on its own thread: every event it reads, in order, with the serving worker's pid."""

    def __init__(self, svc: Service, last_event_id: str | None = None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
        svc.streams.append(self)
        self.conn.request("GET", "/telemetry/stream", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.pid = 0
        self.events: list[dict[str, Any]] = []
        self.q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        ev: dict[str, Any] = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.rstrip(b"\r\n")
                if not line:
                    if ev:
                        self.events.append(ev)
                        self.q.put(ev)
                    ev = {}
                    continue
                field, _, value = line.decode().partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    ev["data"] = json.loads(value)
                elif field:
                    ev[field] = value
                elif value.startswith("tradeobs live ") and " pid " in value:
                    self.pid = int(value.rsplit(" ", 1)[1])
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            pass  # the connection ended (or was closed by the test: http.client drops its file then)
        self.q.put(None)  # the stream ended

    def wait(self, cond: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; last events: {self.events[-5:]}")
            try:
                if self.q.get(timeout=min(left, 0.5)) is None and not cond(self.events):
                    raise AssertionError(f"the stream ended while waiting for {what}")
            except queue.Empty:
                pass

    def order_ids(self) -> list[str]:
        return [
            e["data"]["order_id"] for e in self.events if e.get("event") == "event" and e["data"]["kind"] == "order"
        ]

    def last_id(self) -> str:
        return [e["id"] for e in self.events if "id" in e][-1]

    def close(self) -> None:
        self.conn.close()


def _stream_on_another_worker(svc: Service, pid: int, last_event_id: str | None = None) -> Sse:
    """A stream that lands on a worker other than ``pid`` (connections are spread by the kernel: try again)."""
    for _ in range(60):
        s = Sse(svc, last_event_id)
        wait_for(lambda s=s: s.pid or s.events, "the stream's first bytes")
        if s.pid and s.pid != pid:
            return s
        s.close()
    raise AssertionError(f"every stream landed on worker {pid}")


# --------------------------------------------------------------------------- the tests


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_totals_exact_over_workers_and_never_down_when_a_worker_is_killed(server: str, tmp_path: Path) -> None:
    with service(server, tmp_path) as svc:
        placed = svc.orders(120)
        by_worker = {_pid_of(o) for o in placed}
        assert len(by_worker) >= 2, f"the kernel gave every order to one worker: {by_worker}"
        seen: list[float] = []

        def exact(n: int) -> bool:
            total = svc.total()
            if total is not None:
                seen.append(total)
            return total == n

        wait_for(lambda: exact(120), "120 orders on /metrics")
        # Histograms sum too: one submit->ack latency per acknowledged order, from every worker.
        acks = svc.total("trading_orders_acknowledged_total")
        assert acks is not None and acks > 0
        # Exemplars on the merged endpoint still name real traces: each is in some worker's order traces.
        exemplars = svc.exemplar_traces()
        assert exemplars, "no exemplar on the shared endpoint"
        wait_for(lambda: exemplars <= svc.traced(tmp_path), "every exemplar's trace in the workers' trace files")

        # SIGKILL a worker that is not the leader; its server replaces it; its counts stay.
        leader = svc.leader()
        assert leader in svc.worker_pids()
        victim = next(p for p in sorted(svc.worker_pids()) if p != leader)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in svc.worker_pids() and len(svc.worker_pids()) == WORKERS, "a replacement")
        for _ in range(5):
            exact(120)
        placed += svc.orders(40)
        wait_for(lambda: exact(160), "160 orders on /metrics after the replacement")

        # SIGKILL the leader: another worker serves /metrics within seconds, with the same totals.
        os.kill(leader, signal.SIGKILL)
        t0 = time.monotonic()
        wait_for(lambda: svc.leader() not in (0, leader), "a new leader serving /metrics")
        takeover = time.monotonic() - t0
        wait_for(lambda: exact(160), "160 orders after the leader died")
        placed += svc.orders(20)
        wait_for(lambda: exact(180), "180 orders with the new leader")
        assert all(b >= a for a, b in itertools.pairwise(seen)), f"a total went down: {seen}"
        assert max(seen) == 180 and len(placed) == 180
        print(
            f"{server}: orders through workers {sorted(by_worker)}; {len(exemplars)} exemplar traces found in the "
            f"workers' trace files; /metrics back {takeover:.2f}s after SIGKILL"
        )


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_one_live_view_resumes_across_workers_and_survives_the_leader(server: str, tmp_path: Path) -> None:
    with service(server, tmp_path) as svc:
        a = Sse(svc)
        a.wait(lambda evs: any(e.get("event") == "frame" for e in evs), "a first frame")
        assert a.pid, "the stream names the worker that serves it"
        placed = svc.orders(60)
        others = [o for o in placed if _pid_of(o) != a.pid]
        assert others, f"every order went to the stream's own worker {a.pid}"
        # The stream from worker a.pid shows every order, those placed through the other workers included,
        # each exactly once, and its frames count them all.
        a.wait(lambda evs: set(placed) <= set(a.order_ids()), "every order on the stream")
        assert sorted(a.order_ids()) == sorted(placed)
        a.wait(
            lambda evs: any(
                e.get("event") == "frame"
                and e["data"]["type"] == "full"
                and sum(s.get("ord", 0) for s in e["data"]["symbols"].values()) == 60
                for e in evs
            ),
            "a full frame counting the 60 orders",
            timeout=15,
        )
        last = a.last_id()
        a.close()

        # Missed events resume on another connection, served by another worker, without a reset: once the
        # group has them (any worker's /history lists them), the catch-up replays them before its full frame.
        missed = svc.orders(10)
        wait_for(lambda: set(missed) <= set(svc.history_orders()), "the missed orders in the group's event ring")
        b = _stream_on_another_worker(svc, a.pid, last)
        b.wait(lambda evs: any(e.get("event") == "frame" for e in evs), "the catch-up's full frame")
        first_frame = next(i for i, e in enumerate(b.events) if e.get("event") == "frame")
        replayed = [
            e["data"]["order_id"]
            for e in b.events[:first_frame]
            if e.get("event") == "event" and e["data"]["kind"] == "order"
        ]
        assert not any(e.get("event") == "reset" for e in b.events), b.events[:5]
        # Each missed order exactly once: replayed from the ring before the full frame, or (one that reached
        # this worker a moment after the connection: each worker gets the group's events from the leader)
        # right after it.
        assert set(replayed) <= set(missed), (replayed, missed)
        b.wait(lambda evs: set(missed) <= set(b.order_ids()), "every missed order on the resumed stream")
        assert sorted(o for o in b.order_ids() if o in set(missed)) == sorted(missed), (b.order_ids(), missed)
        assert not any(e.get("event") == "reset" for e in b.events), b.events[:5]

        # Kill the leader. A client of a surviving worker gets a reset (the new leader's boot), then frames.
        leader = svc.leader()
        assert leader == svc.snapshot()["system"]["pid"]  # the frames are the leader's
        if b.pid == leader:
            b.close()
            b = _stream_on_another_worker(svc, leader)
        n = len(b.events)
        os.kill(leader, signal.SIGKILL)
        b.wait(lambda evs: any(e.get("event") == "reset" for e in evs[n:]), "a reset after the takeover", 20)
        r = next(i for i in range(n, len(b.events)) if b.events[i].get("event") == "reset")
        b.wait(lambda evs: sum(e.get("event") == "frame" for e in evs[r:]) >= 5, "frames from the new leader", 20)
        # ... and a client that reconnects with an id from the dead leader's boot recovers the same way.
        c = Sse(svc, b.events[r - 1].get("id", last))
        c.wait(lambda evs: sum(e.get("event") == "frame" for e in evs) >= 3, "frames after reconnecting", 20)
        got = [e for e in c.events if "event" in e]
        assert got[0]["event"] == "reset" and got[1]["event"] == "frame" and got[1]["data"]["type"] == "full", got[:2]
        more = svc.orders(5)
        b.wait(lambda evs: set(more) <= set(b.order_ids()), "new orders on the recovered stream")
        b.close()
        c.close()


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_a_resume_on_a_respawned_worker_misses_nothing_silently(server: str, tmp_path: Path) -> None:
    """A worker its server replaced (gunicorn's --max-requests does this routinely) serves a resume from an id of
    before it existed: it replays every missed event, or says ``reset``; never skips events without a word."""
    with service(server, tmp_path) as svc:
        a = Sse(svc)
        a.wait(lambda evs: any(e.get("event") == "frame" for e in evs), "a first frame")
        first = svc.orders(10)
        a.wait(lambda evs: set(first) <= set(a.order_ids()), "the first orders on the stream")
        last = a.last_id()
        a.close()
        leader = svc.leader()
        victim = next(p for p in sorted(svc.worker_pids()) if p not in (leader, a.pid))
        before = svc.worker_pids() - {victim}
        os.kill(victim, signal.SIGKILL)
        missed = svc.orders(10)  # while the server replaces it: before the new worker exists
        wait_for(lambda: victim not in svc.worker_pids() and len(svc.worker_pids()) == WORKERS, "a replacement")
        (new,) = svc.worker_pids() - before
        wait_for(lambda: set(missed) <= set(svc.history_orders()), "the missed orders in the group's event ring")
        for _ in range(100):  # connections are spread by the kernel: until one lands on the new worker
            b = Sse(svc, last)
            wait_for(lambda b=b: b.pid or b.events, "the stream's first bytes")
            if b.pid == new:
                break
            b.close()
        else:
            raise AssertionError(f"no stream landed on the new worker {new}")
        b.wait(lambda evs: any(e.get("event") == "frame" for e in evs), "the catch-up's full frame")
        reset = any(e.get("event") == "reset" for e in b.events)
        if not reset:
            b.wait(lambda evs: set(missed) <= set(b.order_ids()), "every missed order on the resumed stream")
        b.close()
        print(f"{server}: the resume on the new worker {new}: {'a reset' if reset else 'every missed order'}")


@pytest.mark.integration
def test_gunicorn_preload_the_arbiter_is_not_a_worker_and_totals_are_exact(tmp_path: Path) -> None:
    """``gunicorn --preload``: the arbiter imports the app (``init()`` runs there) before it forks the workers. It
    is not a worker: the group is its 3 workers (in /metrics and in the live frames' count), one of them leads and
    serves the port, the totals are exact, and a takeover after the leader is killed works as without --preload."""
    with service("gunicorn", tmp_path, workers=3, preload=True) as svc:
        arbiter = svc.proc.pid  # python -m gunicorn: the process we started is the arbiter
        placed = svc.orders(90)
        assert len({_pid_of(o) for o in placed}) >= 2, "the kernel gave every order to one worker"
        assert arbiter not in {_pid_of(o) for o in placed}
        wait_for(lambda: svc.total() == 90, "90 orders on /metrics")
        pids = svc.worker_pids()
        assert len(pids) == 3 and arbiter not in pids, (arbiter, pids)
        leader = svc.leader()
        assert leader in pids, (leader, pids)
        # One live view, its frames counting the 3 workers (not the arbiter) and all 90 orders.
        a = Sse(svc)
        a.wait(
            lambda evs: any(
                e.get("event") == "frame"
                and e["data"]["type"] == "full"
                and e["data"]["health"].get("workers") == 3
                and sum(s.get("ord", 0) for s in e["data"]["symbols"].values()) == 90
                for e in evs
            ),
            "a full frame of 3 workers counting the 90 orders",
            timeout=15,
        )
        a.close()
        # The leader dies: another worker (never the arbiter) takes the port; the totals stay and add up.
        os.kill(leader, signal.SIGKILL)
        wait_for(lambda: svc.leader() not in (0, leader, arbiter), "a new leader serving /metrics")
        wait_for(lambda: len(svc.worker_pids()) == 3 and leader not in svc.worker_pids(), "a replacement worker")
        assert arbiter not in svc.worker_pids()
        svc.orders(30)
        wait_for(lambda: svc.total() == 120, "120 orders after the takeover")


def test_every_position_of_1000_symbols_x_5_strategies_of_each_worker_is_on_the_leaders_endpoint(
    tmp_path: Path,
) -> None:
    """Two uvicorn workers, each with positions in 1,000 symbols x 5 strategies, default settings: the group's
    endpoint sums each pair over the workers (``trading.position.quantity`` aggregates by ``sum``) and the live view
    has every symbol's. With one limit of 2,000 sets for every instrument, 3,000 pairs of each worker were in a
    gauge's overflow series, which keeps one value: 2,000 positions of 5,000 were served."""
    from . import positions_app as app

    port, metrics_port = free_port(), free_port()
    env = {
        "TRADEOBS_SERVICE_NAME": "workers-positions",
        "TRADEOBS_OTLP_ENABLED": "false",
        "TRADEOBS_PROMETHEUS_PORT": str(metrics_port),
        "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path),
        "TRADEOBS_LOG_DIR": str(tmp_path / "logs"),
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "positions_app:create_app", "--app-dir"]
    argv += [str(Path(app.__file__).parent), "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    proc = ManagedProcess("uvicorn-positions", argv, env, tmp_path)
    svc = Service(proc, port, metrics_port)
    try:
        wait_for(lambda: len(svc.worker_pids()) == 2, "2 workers in /metrics", procs=(proc,))
        want = {
            (sym, s): 2 * app.quantity(k, i) for i, sym in enumerate(app.SYMBOLS) for k, s in enumerate(app.STRATEGIES)
        }

        def positions() -> dict[tuple[str, str], float]:
            from prometheus_client.parser import text_string_to_metric_families

            got = {}
            for fam in text_string_to_metric_families(svc.metrics() or ""):
                if fam.name == "trading_position_quantity":
                    for x in fam.samples:
                        got[x.labels.get("symbol", ""), x.labels.get("strategy", "")] = x.value
            return got

        got = wait_for(lambda: (p := positions()) == want and p, "every position of both workers", procs=(proc,))
        assert len(got) == 5000
        wait_for(lambda: _ready(svc), "uvicorn serving HTTP", procs=(proc,))
        live_want = {sym: 2 * sum(app.quantity(k, i) for k in range(5)) for i, sym in enumerate(app.SYMBOLS)}

        def live_positions() -> dict[str, float]:
            rows = svc.snapshot().get("symbols", {})
            return {sym: rows[sym].get("pos") for sym in app.SYMBOLS if sym in rows}

        wait_for(lambda: live_positions() == live_want, "every symbol's position in the live view", procs=(proc,))
        # P&L and exposure add up over the workers too: the endpoint's per pair and per strategy, the live desk's
        from prometheus_client.parser import text_string_to_metric_families

        fams = {f.name: f.samples for f in text_string_to_metric_families(svc.metrics() or "")}
        upnl = {(x.labels["symbol"], x.labels["strategy"]): x.value for x in fams["trading_pnl_unrealized"]}
        assert upnl == {(sym, s): 2.0 * i for i, sym in enumerate(app.SYMBOLS) for s in app.STRATEGIES}
        gross = {x.labels["strategy"]: x.value for x in fams["trading_exposure_gross"]}
        assert gross == {
            s: 2 * math.fsum(app.quantity(k, i) * (100.0 + i) for i in range(len(app.SYMBOLS)))
            for k, s in enumerate(app.STRATEGIES)
        }
        account = svc.snapshot()["account"]
        assert account["pnl"] == account["upnl"] == 2 * 5 * sum(range(len(app.SYMBOLS)))
        assert account["gross"] == pytest.approx(math.fsum(gross.values()), rel=1e-12)
    finally:
        proc.stop()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
    assert "Traceback" not in text and "internal error" not in text, text[-4000:]


# --------------------------------------------------------------------------- a worker that is stopping


class HeldRequest:
    """A ``POST /api/orders`` whose body is not sent yet: the worker that accepted it has begun the request, and a
    worker told to stop (SIGTERM: what gunicorn's reload and scale-down send; ``--max-requests`` stops it the same
    way) finishes the requests it has begun before it exits, so it stays alive, stopping, until :meth:`finish`."""

    BODY = b'{"qty": 1}'

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.sock = socket.create_connection(("127.0.0.1", svc.port), timeout=30)
        head = "POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        self.sock.sendall(f"{head}Content-Length: {len(self.BODY)}\r\n\r\n".encode())

    def worker(self, pids: set[int]) -> int:
        """The worker (one of ``pids``) holding the server side of this connection; 0 while none has accepted it."""
        return _worker_of(self.sock, self.svc.port, pids)

    def finish(self) -> int:
        """Send the body; the response's status."""
        self.sock.sendall(self.BODY)
        data = b""
        while b"\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        self.sock.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def _worker_of(sock: socket.socket, port: int, pids: set[int]) -> int:
    """The worker (one of ``pids``) holding the server side of the connection ``sock`` to ``port``, from /proc; 0
    while none has accepted it yet."""
    me = sock.getsockname()[1]
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].rsplit(":", 1)[1], 16) == port and int(f[2].rsplit(":", 1)[1], 16) == me:
            inode = f[9]
    if inode in ("", "0"):
        return 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    return 0


def _hold_one_on_each(svc: Service, pids: set[int]) -> dict[int, HeldRequest]:
    """A held request on each of ``pids`` (the kernel spreads connections: open more until each has one; the
    extra ones are finished at once)."""
    held: dict[int, HeldRequest] = {}
    for _ in range(100):
        h = HeldRequest(svc)
        pid = wait_for(lambda h=h: h.worker(pids), "a worker accepting the held request")
        if pid in held:
            assert h.finish() == 202
        else:
            held[pid] = h
        if len(held) == len(pids):
            return held
    raise AssertionError(f"no connection landed on some of {pids}: {sorted(held)}")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Scraper:
    """``/metrics`` scraped back to back on a thread: for each scrape, when it began and the leader it named
    (None: it failed, e.g. refused while no worker served the port)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.results: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            text = self.svc.metrics()
            leader = None
            if text is not None:
                leader = 0
                for line in text.splitlines():
                    if line.startswith("tradeobs_agent_workers_leader{") and line.endswith(" 1.0"):
                        leader = int(line.split('pid="')[1].split('"')[0])
            self.results.append((t, leader))
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def refused(self) -> tuple[float, bool, int]:
        """The longest stretch of failed scrapes that ended (seconds, from the first failure to the next success),
        whether the last scrapes failed (a stretch still open), and how many failed in all."""
        longest, began = 0.0, None
        for t, leader in self.results:
            if leader is None:
                began = t if began is None else began
            elif began is not None:
                longest, began = max(longest, t - began), None
        return longest, began is not None, sum(leader is None for _, leader in self.results)


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_a_stopping_leader_hands_over_at_once_and_a_stopping_worker_never_leads(server: str, tmp_path: Path) -> None:
    """A worker told to stop (gunicorn's ``--max-requests``, a reload or a scale-down; SIGTERM here) first finishes
    the requests it has begun, which can take seconds. A leader that is stopping hands the lead over at once, to a
    worker that stays, while it finishes them; a worker that is stopping does not take the lead while one that
    stays is there (it would drop it again moments later, another hand-over). So /metrics is served throughout:
    its exit leaves nothing to take over. Before, the leader kept the lead until its process exited, then the port
    was unserved until another worker's next try of the lock (up to 0.25 s) and its bind, and that worker could be
    one that was stopping too."""
    with service(server, tmp_path, workers=3, args=_PATIENT[server]) as svc:
        first = svc.leader()
        pids = svc.worker_pids()
        held = _hold_one_on_each(svc, pids)
        scraper = Scraper(svc)
        try:
            os.kill(first, signal.SIGTERM)  # stopping, but alive while its held request is not finished
            second = wait_for(
                lambda: (lead := svc.leader()) not in (0, first) and _alive(first) and lead,
                "another worker leading while the stopping leader still finishes its request",
            )
            (third,) = pids - {first, second}
            os.kill(second, signal.SIGTERM)
            wait_for(
                lambda: svc.leader() not in (0, second) and _alive(first) and _alive(second),
                "the lead handed over again while both stopping workers still finish their requests",
            )
            assert svc.leader() == third, "a stopping worker took the lead while another stayed"
            handed = time.monotonic()
            for pid in (first, second):
                assert held.pop(pid).finish() == 202
            wait_for(lambda: not _alive(first) and not _alive(second), "the stopping workers' exit")
            wait_for(lambda: len(svc.worker_pids() - {first, second}) == 3, "their replacements in /metrics")
        finally:
            scraper.stop()
            for h in held.values():
                h.finish()
        after = [leader for t, leader in scraper.results if t >= handed]
        assert after and all(leader == third for leader in after), (
            f"after the hand-overs: {sum(x is None for x in after)} failed scrapes of {len(after)}, leaders "
            f"{sorted({x for x in after if x})} (only {third} stays)"
        )
        before = [leader for t, leader in scraper.results if t < handed]
        failed = sum(x is None for x in before)
        print(f"{server}: two hand-overs while the leaders were stopping: {failed} of {len(before)} scrapes failed")


# gunicorn stops a worker whose shutdown outlasts --graceful-timeout, or that is silent for --timeout (both 30 s by
# default); the requests held above are finished well before that on an idle machine, not always on a loaded one.
_PATIENT: dict[str, tuple[str, ...]] = {"gunicorn": ("--graceful-timeout", "300", "--timeout", "300"), "uvicorn": ()}


@pytest.mark.integration
def test_a_reload_of_every_worker_keeps_metrics_served_until_a_new_worker_leads(tmp_path: Path) -> None:
    """gunicorn's reload (SIGHUP) starts new workers, then stops every old one (as every worker reaching
    ``--max-requests`` at about the same time does): the old ones exit within a second, a new one takes seconds to
    start (3-10 s were measured on a loaded machine). Before, nobody served /metrics from the old leader's exit
    until a new worker had started (every scrape in between refused); now the old leader serves on until a new
    worker has joined the group, and hands the lead to it: what is left is the hand-over, far shorter than the
    start. The new workers' start ends ``delay`` seconds after the reload (``SLOW_START_GATE``, opened then), longer
    than the 10 s the old leader served on for at most before (a full test run met a start past it: 4.7 s
    refused); the bound is now 20 s, which leaves the new workers' ``init()`` 7 s."""
    delay = 13.0
    here = str(Path(__file__).resolve().parent)
    gate = tmp_path / "gate"
    gate.touch()
    with service(
        "gunicorn",
        tmp_path,
        workers=2,
        app="slow_start_app:create_app",
        args=("--pythonpath", here),
        env={"SLOW_START_GATE": str(gate)},
    ) as svc:
        old = svc.worker_pids()
        gate.unlink()
        scraper = Scraper(svc)
        try:
            os.kill(svc.proc.pid, signal.SIGHUP)
            time.sleep(delay)
            gate.touch()
            wait_for(
                lambda: svc.leader() not in (0, *old) and not any(_alive(p) for p in old),
                "a new worker leading, the old ones gone",
            )
            wait_for(lambda: len(svc.worker_pids() - old) == 2, "both new workers in /metrics")
        finally:
            scraper.stop()
        longest, open_at_end, failed = scraper.refused()
        assert not open_at_end, "the last scrapes failed"
        # Before, at least the new workers' start (less the old ones' exit); with the 10 s bound, that start less 10 s.
        served = [line for line in _agent_lines(tmp_path) if "served on for" in line]
        said = f"/metrics refused for {longest:.2f} s ({failed} scrapes) during the reload; {served}"
        assert longest < 1.5, said
        print(f"reload: {failed} of {len(scraper.results)} scrapes failed, the longest stretch {longest:.2f} s")
        assert any("until the lead was handed over" in line for line in _agent_lines(tmp_path)), "no wait said"


def _half_request(svc: Service) -> socket.socket:
    """A connection that sends a request head without its end, then nothing (a stalled client, slowloris)."""
    s = socket.create_connection(("127.0.0.1", svc.port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
    return s


@pytest.mark.integration
def test_gunicorn_with_the_agents_worker_class_closes_half_sent_requests(tmp_path: Path) -> None:
    """gunicorn's ``UvicornWorker`` holds a connection that sends half a request head and then nothing for as long as
    its client likes (uvicorn has no request-head timeout; gunicorn's ``--timeout`` is the worker's heartbeat), so
    a few thousand stalled or hostile clients take every file of the workers. ``-k
    tradeobs_agent.live.worker.UvicornWorker`` is the same worker with the bounds of the servers tradeobs runs: the
    connection is closed after ``HEADER_TIMEOUT`` (10 s) and counted by reason on the shared /metrics."""
    ours_dir, plain_dir = tmp_path / "ours", tmp_path / "plain"
    ours_dir.mkdir()
    plain_dir.mkdir()
    with (
        service("gunicorn", ours_dir, workers=2, worker_class="tradeobs_agent.live.worker.UvicornWorker") as ours,
        service("gunicorn", plain_dir, workers=2, env={"TRADEOBS_SERVICE_NAME": "workers-plain"}) as plain,
    ):
        assert ours.order()["order_id"] and plain.order()["order_id"]  # both serve the app as before
        stalled = {"ours": _half_request(ours), "plain": _half_request(plain)}
        try:
            wait_for(lambda: closed_by_server(stalled["ours"]), "the half-sent request closed by our worker class")
            assert not closed_by_server(stalled["plain"]), "uvicorn_worker.UvicornWorker closed it too"

            def counted() -> float | None:
                return ours.total("tradeobs_server_connections_closed_total") or None

            assert wait_for(counted, "the closure counted on the shared /metrics") >= 1
            text = ours.metrics() or ""
            assert 'reason="no_request"' in text, text[-2000:]
            assert ours.order()["order_id"]  # the workers serve on
        finally:
            for s in stalled.values():
                s.close()


def _agent_lines(tmp_path: Path) -> list[str]:
    """The messages of every worker's system log (TRADEOBS_LOG_DIR), e.g. ``tradeobs multiprocess: ...``."""
    out = []
    for f in (tmp_path / "logs").rglob("system*.jsonl"):
        for line in f.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(str(json.loads(line).get("message", "")))
    return out


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_a_stop_does_not_wait_for_workers_that_are_not_coming(server: str, tmp_path: Path) -> None:
    """A stop (SIGTERM to gunicorn's arbiter or uvicorn's supervisor) starts no new worker: the leader exits without
    serving on for one (uvicorn's supervisor has another child, multiprocessing's resource tracker, which is no
    worker; followers that left and still run their own shutdown have started already)."""
    with service(server, tmp_path, workers=2) as svc:

        def started() -> bool:
            return sum(line.startswith("demo engine started") for line in _agent_lines(tmp_path)) == 2

        wait_for(started, "both workers started (their apps' startup logged)")
        svc.proc.stop()
        assert svc.proc.popen.returncode is not None
    lines = _agent_lines(tmp_path)
    # both workers' shutdowns are in the log (the leader's wait is said after its engine stopped)
    assert sum(line.startswith("demo engine stopped") for line in lines) == 2, lines[-5:]
    assert not [line for line in lines if "served on for" in line]


@pytest.mark.integration
def test_a_worker_past_its_request_limit_counts_as_leaving(tmp_path: Path) -> None:
    """uvicorn's ``--limit-max-requests`` (gunicorn's ``--max-requests`` sets the same in its UvicornWorker) stops a
    worker after its N-th request, without a signal (``should_exit`` stays false): the group sees it leaving from
    then on, as its shutdown (the lifespan's, where ``agent.shutdown()`` runs) shows."""
    port = free_port()
    here = str(Path(__file__).resolve().parent)
    log = tmp_path / "leaving.log"
    argv = [sys.executable, "-m", "uvicorn", "leaving_app:app", "--app-dir", here, "--port", str(port)]
    argv += ["--lifespan", "on", "--limit-max-requests", "3", "--log-level", "warning"]
    proc = ManagedProcess("uvicorn", argv, {"LEAVING_LOG": str(log)}, tmp_path)
    try:

        def ask() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    return str(r.read().decode())
            except (urllib.error.URLError, OSError):
                return None  # not listening yet: no request counted

        answers = [wait_for(ask, "uvicorn answering", procs=(proc,)), ask(), ask()]
        assert answers == ["serving"] * 3, answers  # uvicorn counts a request once it is answered
        assert proc.popen.wait(30) == 0  # it stopped after the third
    finally:
        proc.stop()
    assert log.read_text().splitlines() == ["startup serving", "shutdown leaving"]


class Pinned:
    """A keep-alive connection to the service, and the worker that accepted it: every request on it goes there."""

    def __init__(self, svc: Service) -> None:
        self.sock = socket.create_connection(("127.0.0.1", svc.port), timeout=30)

    def get(self) -> bool:
        """``GET /healthz`` on this connection; False once the worker has closed it (it stopped)."""
        try:
            self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            while len(body) < length:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return False
                body += chunk
            return head.startswith(b"HTTP/1.1 200")
        except OSError:
            return False


@pytest.mark.integration
def test_every_worker_past_its_request_limit_at_once_keeps_metrics_served(tmp_path: Path) -> None:
    """``uvicorn --workers --limit-max-requests`` (gunicorn's ``--max-requests`` likewise): the workers reach their
    limit at about the same time and stop; the supervisor starts their replacements only once it has noticed their
    exit, and a new worker takes seconds to start (``SLOW_START_SECONDS`` here). Before, the leader left as soon as
    its own requests were done and /metrics was refused until a new worker had started; now a leader past its
    limit in a group of several serves on until a new worker can take the lead."""
    delay = 3.0
    here = str(Path(__file__).resolve().parent)
    args = ("--app-dir", here, "--limit-max-requests", "30")
    env = {"SLOW_START_SECONDS": str(delay)}
    with service("uvicorn", tmp_path, workers=2, app="slow_start_app:create_app", args=args, env=env) as svc:
        old = svc.worker_pids()
        pinned: dict[int, Pinned] = {}
        for _ in range(100):  # a connection on each worker (the kernel spreads them); the others closed unused
            p = Pinned(svc)
            pid = wait_for(lambda p=p: _worker_of(p.sock, svc.port, old), "a worker accepting the connection")
            if pid in pinned:
                p.sock.close()
            else:
                pinned[pid] = p
            if len(pinned) == len(old):
                break
        scraper = Scraper(svc)
        try:
            going = dict(pinned)
            while going:  # round after round, so both reach their limit within a round of each other
                for pid, p in list(going.items()):
                    if not p.get():
                        del going[pid]
            wait_for(
                lambda: svc.leader() not in (0, *old) and not any(_alive(p) for p in old),
                "a new worker leading, the old ones gone",
            )
        finally:
            scraper.stop()
            for p in pinned.values():
                p.sock.close()
        longest, _, failed = scraper.refused()
        served = [line for line in _agent_lines(tmp_path) if "served on for" in line]
        said = f"/metrics refused for {longest:.2f} s ({failed} scrapes) as the workers recycled; {served}"
        assert longest < delay / 2, said
        print(f"recycle: {failed} of {len(scraper.results)} scrapes failed, the longest stretch {longest:.2f} s")


def _children(pid: int) -> set[int]:
    try:
        return {int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


@pytest.mark.integration
def test_a_binary_upgrade_with_usr2_continues_the_same_group(tmp_path: Path) -> None:
    """``kill -USR2`` the master: gunicorn re-executes itself, and the new master's workers run beside the old ones
    on the same sockets until the old master is stopped. Before, the new workers formed a group of their own: their
    orders were on no endpoint while the old group's leader held the port, and once the old master was gone the
    totals started again from what the new workers alone had counted. Now they join the old group: one endpoint
    counts every order throughout, no scrape's total lower than the one before, and a new worker leads once the old
    master is gone."""
    with service("gunicorn", tmp_path, workers=2, script=True) as svc:
        old_master = svc.proc.pid
        svc.orders(20)
        wait_for(lambda: svc.total() == 20, "20 orders on /metrics")
        old = svc.worker_pids()
        stream = Sse(svc)
        stream.wait(lambda evs: any(e.get("event") == "frame" for e in evs), "a first frame")
        totals: list[float] = []  # every answered scrape's total, from before the USR2 until the old master is gone
        done = threading.Event()

        def scrape() -> None:
            while not done.is_set():
                if (t := svc.total()) is not None:
                    totals.append(t)
                time.sleep(0.1)

        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        os.kill(old_master, signal.SIGUSR2)
        new_master = wait_for(lambda: next(iter(_children(old_master) - old), 0), "the new master")
        # the new master's workers are on the one endpoint, beside the old ones
        wait_for(lambda: len(svc.worker_pids() - old) == 2 and old <= svc.worker_pids(), "4 workers in /metrics")
        svc.orders(20)
        wait_for(lambda: svc.total() == 40, "40 orders over both masters' workers")
        os.kill(old_master, signal.SIGTERM)  # the upgrade is good: stop the old master and its workers
        wait_for(lambda: not any(_alive(p) for p in (old_master, *old)), "the old master and workers gone")
        wait_for(lambda: svc.leader() in _children(new_master), "a new worker leading")
        assert svc.total() == 40  # the old workers' counts stay
        done.set()
        scraper.join(15)
        assert totals and all(b >= a for a, b in itertools.pairwise(totals)), totals
        # a worker the new master starts now (gunicorn no longer names the old master to it) joins the group too
        gone = next(iter(svc.worker_pids()))
        os.kill(gone, signal.SIGKILL)
        wait_for(lambda: len(svc.worker_pids()) == 2 and gone not in svc.worker_pids(), "the replacement worker")
        svc.orders(20)
        wait_for(lambda: svc.total() == 60, "60 orders")
        groups = list(tmp_path.glob("tradeobs-*/g-*"))
        assert len(groups) == 1, groups
        # the live view: a client resuming with the id it had (its old worker may be gone) gets every order it
        # missed, or a reset and a full frame (the new leader's boot): never a stream that skips them unsaid
        last = stream.last_id()
        stream.close()
        missed = svc.orders(5)
        resumed = Sse(svc, last)
        resumed.wait(lambda evs: any(e.get("event") == "frame" for e in evs), "the resumed stream's full frame")
        resumed.wait(
            lambda evs: any(e.get("event") == "reset" for e in evs) or set(missed) <= set(resumed.order_ids()),
            "a reset or every missed order on the resumed stream",
        )


@pytest.mark.integration
def test_the_same_service_started_twice_says_so_on_stderr_and_in_its_live_health(tmp_path: Path) -> None:
    """Two gunicorn masters of one service on one host (started twice by mistake): two worker groups, and the second
    group's leader cannot bind the Prometheus port the first serves. Before, that was said in its system log only
    (gunicorn's output empty) while the second master's orders were on no endpoint; now one ``tradeobs:`` line on
    stderr names the other group's master and what to do, and the second service's live health says its /metrics
    is not served."""
    with service("gunicorn", tmp_path, workers=2) as first:
        twin_port = free_port()
        env = {
            "TRADEOBS_SERVICE_NAME": "workers-shared",
            "TRADEOBS_OTLP_ENABLED": "false",
            "TRADEOBS_PROMETHEUS_PORT": str(first.metrics_port),  # the same settings: the same port
            "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path),
            "TRADEOBS_LOG_DIR": str(tmp_path / "logs-twin"),
            "TRADEOBS_DEMO_SYMBOLS": "4",
            "TRADEOBS_DEMO_ORDERS_HZ": "0",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "uvicorn_worker.UvicornWorker"]
        argv += ["-b", f"127.0.0.1:{twin_port}", "--log-level", "warning", "tradeobs_agent.demo:create_app()"]
        twin = ManagedProcess("gunicorn-twin", argv, env, tmp_path)
        try:

            def said() -> list[str]:
                text = twin.log_path.read_text(errors="replace")
                return [line for line in text.splitlines() if "cannot serve the Prometheus endpoint" in line]

            line = wait_for(said, "the twin's leader saying its port is taken", procs=(twin,))[0]
            assert line.startswith(f"tradeobs: cannot serve the Prometheus endpoint on 127.0.0.1:{first.metrics_port}")
            # named for certain: the first group's leader, which serves the port (its record, checked with the socket)
            leader = f"runs twice on this host: pid {first.leader()}, the leader of its other tradeobs worker group"
            assert leader in line and f"started by pid {first.proc.pid} (gunicorn)" in line, line
            assert f"this group was started by pid {twin.pid}" in line and "most likely" not in line, line
            assert "TRADEOBS_PROMETHEUS_PORT" in line and "Stop the duplicate" in line, line

            def busy() -> bool:
                with urllib.request.urlopen(f"http://127.0.0.1:{twin_port}/telemetry/snapshot", timeout=10) as r:
                    return bool(json.loads(r.read()).get("health", {}).get("prometheus_port_busy") == 1)

            wait_for(busy, "the twin's live health saying its /metrics is not served", procs=(twin,))
            assert first.leader() in first.worker_pids()  # the first service's endpoint is untouched
            assert len(said()) == 1  # once
        finally:
            twin.stop()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(twin.pid, signal.SIGKILL)
