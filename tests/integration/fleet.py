"""Real processes for the fleet live view: nats-server (JetStream), agents publishing to it, gateways, an SSE client.

>>> with start_nats(tmp_path / "nats") as nats, FleetAgent(nats.url, "alpha", "mom", tmp_path) as a:  # doctest: +SKIP
...     gw = start_gateway(nats.url, tmp_path)
...     client = SSEClient(gw.url + "/stream"); client.wait_for(lambda c: c.events)

Like procs.py: free loopback ports, logs in the work directory, everything always stopped, and a missing
binary FAILS the test naming its install step (scripts/install.d/40-nats.sh).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .procs import READY_TIMEOUT, ManagedProcess, _clean_env, find_binary, free_port, http_get, wait_for

FLEET_AGENT = Path(__file__).resolve().parent / "fleet_agent.py"

__all__ = [
    "FleetAgent",
    "GatewayProc",
    "NatsProc",
    "SSEClient",
    "delete_stream",
    "scrape",
    "start_gateway",
    "start_nats",
    "stored_per_instance",
    "stream_events",
]


# ---------------------------------------------------------------- nats-server


@dataclass
class NatsProc:
    proc: ManagedProcess
    workdir: Path
    port: int
    monitor_port: int
    store: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stop()

    def kill(self) -> None:
        if self.proc.popen.poll() is None:
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.popen.wait()
        self.proc.stop()

    def restart(self) -> NatsProc:
        """A new server on the same ports and store (what a restarted container or unit would be)."""
        self.stop()
        return start_nats(self.workdir, self.port, self.monitor_port, self.store)

    def __enter__(self) -> NatsProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_nats(
    workdir: Path, port: int | None = None, monitor_port: int | None = None, store: Path | None = None
) -> NatsProc:
    """nats-server with JetStream (file store in ``store``), ready when its health check says JetStream is up."""
    binary = find_binary("nats-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port, monitor_port = port or free_port(), monitor_port or free_port()
    store = store or workdir / "jetstream"
    argv = [binary, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor_port)]
    proc = ManagedProcess(f"nats-{port}", argv, {}, workdir)
    try:
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true")[0] == 200,
            "nats-server with JetStream",
            timeout=READY_TIMEOUT,
            procs=(proc,),
        )
    except BaseException:
        proc.stop()
        raise
    return NatsProc(proc, workdir, port, monitor_port, store)


# ---------------------------------------------------------------- gateway


@dataclass
class GatewayProc:
    proc: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> dict[str, Any]:
        status, body = http_get(self.url + "/snapshot")
        assert status == 200, (status, body[:200])
        data: dict[str, Any] = json.loads(body)
        return data

    def kill(self) -> None:
        """SIGKILL: the gateway vanishes without closing its streams."""
        if self.proc.popen.poll() is None:
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.popen.wait()
        self.proc.stop()

    def stop(self) -> None:
        self.proc.stop()


def start_gateway(nats_url: str, workdir: Path, *args: str, port: int | None = None) -> GatewayProc:
    """``tradeobs live gateway --nats URL --port P *args``, ready when it serves /snapshot (``port``: a given one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [sys.executable, "-m", "tradeobs_agent.cli", "live", "gateway", "--nats", nats_url, "--port", str(port)]
    proc = ManagedProcess(f"gateway-{port}", [*argv, *args], _python_env(), workdir)
    try:
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{port}/snapshot")[0] == 200,
            "the gateway",
            timeout=READY_TIMEOUT,
            procs=(proc,),
        )
    except BaseException:
        proc.stop()
        raise
    return GatewayProc(proc, port)


def _python_env() -> dict[str, str]:
    env = {"PYTHONUNBUFFERED": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


# ---------------------------------------------------------------- agents


class FleetAgent:
    """``fleet_agent.py SERVICE STRATEGY HZ`` publishing to ``nats_url``; :meth:`finish` returns its DONE counts."""

    def __init__(
        self,
        nats_url: str,
        service: str,
        strategy: str,
        workdir: Path,
        hz: float = 20.0,
        live: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        """``live``: the agent also serves its own live view (``/snapshot``) on a free port, :attr:`live_url`;
        ``env``: more of its environment (its settings)."""
        self.service, self.strategy = service, strategy
        self.live_url: str | None = None
        extra: list[str] = []
        if live:
            port = free_port()
            self.live_url, extra = f"http://127.0.0.1:{port}", [str(port)]
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"agent-{service}-{strategy}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {
            **_clean_env(),
            **_python_env(),
            "TRADEOBS_LIVE_NATS_URL": nats_url,
            "TRADEOBS_LOG_DIR": str(workdir / f"logs-{service}-{strategy}"),
            "TRADEOBS_INTERNAL_ERRORS": "raise",
            **(env or {}),
        }
        self.popen = subprocess.Popen(
            [sys.executable, str(FLEET_AGENT), service, strategy, str(hz), *extra],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=workdir,
            start_new_session=True,
        )
        self.ready = self._line("READY")
        self.instance: str = self.ready["instance"]
        self.prometheus_url: str = self.ready["prometheus_url"]
        self.done: dict[str, Any] | None = None

    def _line(self, word: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        result: list[str] = []
        assert self.popen.stdout is not None
        reader = threading.Thread(target=lambda: result.append(self.popen.stdout.readline().decode()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        line = result[0] if result else ""
        if not line.startswith(word + " "):
            self.stop()
            pytest.fail(f"agent {self.service}: expected {word}, got {line!r}\n{self.log_tail()}", pytrace=False)
        data: dict[str, Any] = json.loads(line.split(" ", 1)[1])
        return data

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def snapshot(self) -> dict[str, Any]:
        """The agent's own ``/snapshot`` (with ``live=True``); the first request starts its live producer."""
        assert self.live_url is not None, "FleetAgent(..., live=True) serves /snapshot"
        status, body = http_get(self.live_url + "/snapshot")
        assert status == 200, (status, body[:200])
        data: dict[str, Any] = json.loads(body)
        return data

    def pause(self) -> None:
        """Stop trading; the process goes on publishing its (now unchanging) frames until :meth:`finish`."""
        assert self.popen.stdin is not None
        self.popen.stdin.write(b"pause\n")
        self.popen.stdin.flush()
        self._line("PAUSED")

    def finish(self) -> dict[str, Any]:
        """Stop trading, shut the agent down (it sends what it holds) and return its counts."""
        if self.done is None:
            assert self.popen.stdin is not None
            self.popen.stdin.write(b"stop\n")
            self.popen.stdin.flush()
            self.done = self._line("DONE")
            self.popen.wait(30)
        return self.done

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for f in (self.popen.stdin, self.popen.stdout, self._log):
            if f is not None and not f.closed:
                f.close()

    def __enter__(self) -> FleetAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- a browser-like SSE client


@dataclass
class SSEClient:
    """An ``EventSource`` as a browser runs it: parses ``id``/``event``/``data``, remembers the last id, and on
    :meth:`reconnect` sends it as ``Last-Event-ID``. Reads on a thread until the server closes or :meth:`close`."""

    url: str
    last_id: str = ""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (id, data) of each event: event
    frames: list[dict[str, Any]] = field(default_factory=list)
    resets: list[str] = field(default_factory=list)
    opens: int = 0
    _conn: http.client.HTTPConnection | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reconnect(self.url)

    def reconnect(self, url: str | None = None) -> None:
        self.close()
        self.url = url or self.url
        u = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        conn.request("GET", u.path, headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        self._conn = conn
        self.opens += 1
        self._thread = threading.Thread(target=self._read, args=(resp,), daemon=True)
        self._thread.start()

    def _read(self, resp: http.client.HTTPResponse) -> None:
        kind, data, ident = "message", [], None
        try:
            for raw in resp:
                line = raw.decode().rstrip("\n").rstrip("\r")
                if not line:
                    if data:
                        self._dispatch(kind, "\n".join(data), ident)
                    kind, data, ident = "message", [], None
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        kind = value
                    elif name == "data":
                        data.append(value)
                    elif name == "id":
                        ident = value
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            return  # the server went away (http.client may fail half-way through its cleanup): reconnect

    def _dispatch(self, kind: str, data: str, ident: str | None) -> None:
        with self._lock:
            if ident is not None:
                self.last_id = ident
            if kind == "event":
                self.events.append((ident or "", json.loads(data)))
            elif kind == "frame":
                self.frames.append(json.loads(data))
            elif kind == "reset":
                self.resets.append(data)

    def wait_for(self, cond: Callable[[SSEClient], Any], what: str, timeout: float = 30.0) -> Any:
        return wait_for(lambda: cond(self), what, timeout=timeout, interval=0.05)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if conn.sock is not None:
                    conn.sock.shutdown(2)
            except OSError:
                pass
            conn.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def event_keys(self) -> list[int]:
        with self._lock:
            return [int(i.rpartition("-")[2]) for i, _ in self.events]


# ---------------------------------------------------------------- reading JetStream directly


def _read_events(nats_url: str, first_seq: int = 1, last_seq: int | None = None) -> list[tuple[int, list[Any]]]:
    """``(sequence, events)`` of each message of the events stream from ``first_seq``, read straight from JetStream."""

    async def main() -> list[tuple[int, list[Any]]]:
        import nats
        from nats.js.api import ConsumerConfig, DeliverPolicy

        from tradeobs_agent.live.nats import EVENTS_STREAM, PREFIX

        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(EVENTS_STREAM)
            last = info.state.last_seq if last_seq is None else min(last_seq, info.state.last_seq)
            if last < first_seq:
                return []
            sub = await js.subscribe(
                f"{PREFIX}.*.*.event",
                stream=EVENTS_STREAM,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first_seq),
            )
            out: list[tuple[int, list[Any]]] = []
            while True:
                msg = await sub.next_msg(timeout=10)
                seq = msg.metadata.sequence.stream
                if seq > last:
                    break
                out.append((seq, json.loads(msg.data)))
                if seq == last:
                    break
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    return _run_async(main)


def _run_async(main: Callable[[], Any]) -> Any:
    """``asyncio.run(main())`` on a thread of its own (the caller may be inside a loop: Playwright's sync API)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def stream_events(nats_url: str, first_key: int, last_key: int) -> dict[int, dict[str, Any]]:
    """Every event JetStream holds with key (``sequence * KEY_SPAN + index``) in ``[first_key, last_key]``."""
    from tradeobs_agent.live.nats import KEY_SPAN

    out: dict[int, dict[str, Any]] = {}
    for seq, events in _read_events(nats_url, first_key // KEY_SPAN, last_key // KEY_SPAN):
        for i, e in enumerate(events):
            if first_key <= seq * KEY_SPAN + i <= last_key:
                out[seq * KEY_SPAN + i] = e
    return out


def stored_per_instance(nats_url: str) -> dict[str, int]:
    """How many events JetStream holds for each instance."""
    counts: dict[str, int] = {}
    for _, events in _read_events(nats_url):
        for e in events:
            counts[e["instance"]] = counts.get(e["instance"], 0) + 1
    return counts


def delete_stream(nats_url: str, name: str) -> None:
    """What an operator's ``nats stream rm`` does."""

    async def main() -> None:
        import nats

        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    _run_async(main)


def scrape(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """``{sorted labels: value}`` of metric ``name`` on a Prometheus text page."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(url)
    assert status == 200, status
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def wait_until(cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    return wait_for(cond, what, timeout=timeout, interval=0.1)


def now() -> float:
    return time.monotonic()
