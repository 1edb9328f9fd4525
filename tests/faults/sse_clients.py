"""Many live-stream clients in one process, for the live-stream fault tests: readers, and clients that stall.

    python tests/faults/sse_clients.py --port 8000 --path /telemetry/stream --clients 500 [--stall 100]

Each client is a raw asyncio connection speaking HTTP/1.1 and SSE the way a browser's ``EventSource`` does: it
decodes the chunked body, keeps the last ``id:`` it saw and, when the stream ends or the server is unreachable,
connects again after the server's ``retry:`` (1 s) with ``Last-Event-ID``. A frame's latency is the receipt
time minus the ``ts`` the server put in it (same machine, same clock).

The first ``--stall`` clients stop reading after their first frame (a small receive buffer, reading paused):
the server's sends to them stop completing. They do not reconnect when the server closes them; they only notice
it once told to ``resume``.

Line protocol on stdin/stdout (one command per line, each answered by one line):

    (start)                 -> READY <clients that got a first frame>
    stats <since> <until>   -> STATS {json}: counts per group, latencies of reader frames received in the window
    resume                  -> RESUMED            (stalled clients read again: they drain and see the close)
    stop                    -> STOPPED            (close everything and exit)

SIGUSR1 writes every thread's stack to stderr; an event loop running more than 1 s late is written there too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import time
from typing import Any

_TS = re.compile(rb'"ts":([0-9.]+)')
_TYPE = re.compile(rb'"type":"(\w+)"')


class Client(asyncio.Protocol):
    def __init__(self, pool: Pool, index: int, stall: bool) -> None:
        self.pool, self.index, self.stall = pool, index, stall
        self.transport: Any = None
        self.last_id: str | None = None
        self.connects = 0
        self.frames = 0
        self.closed_by_server = 0
        self.connected = False
        self.stalled = False
        self.after_connect: list[str] = []  # the first events of the latest connection ("reset", "frame:full", ...)
        self.history: list[list[str]] = []  # the first events of every connection
        self.frames_this_connection = 0
        self._reset()

    def _reset(self) -> None:
        self.head = b""
        self.in_body = False
        self.chunk_left = -1  # -1: reading a size line
        self.raw = bytearray()  # received body bytes not yet de-chunked
        self.sse = bytearray()  # de-chunked SSE text not yet split into events
        self.status = 0

    # -- connection
    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.pool.stopping:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            if self.stall:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                await loop.sock_connect(sock, ("127.0.0.1", self.pool.port))
                await loop.create_connection(lambda: self, sock=sock)
                return
            except OSError:
                sock.close()
                self.pool.connect_errors += 1
                await asyncio.sleep(self.pool.retry)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.connected = True
        self.connects += 1
        self._reset()
        self.after_connect = []
        self.history.append(self.after_connect)
        self.frames_this_connection = 0
        headers = f"GET {self.pool.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if self.last_id is not None:
            headers += f"Last-Event-ID: {self.last_id}\r\n"
        transport.write((headers + "\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.connected = False
        self.transport = None
        if self.pool.stopping:
            return
        self.closed_by_server += 1
        if self.stall:
            return  # a stalled client is done once the server closed it
        asyncio.get_running_loop().call_later(self.pool.retry, lambda: asyncio.ensure_future(self.connect()))

    # -- parsing (each buffer is scanned by offset and cut once per call: linear in what arrived, however much a
    # client that fell behind receives at once)
    def data_received(self, data: bytes) -> None:
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head.split(b" ", 2)[1])
            data, self.in_body = self.head[end + 4 :], True
            if self.status != 200:
                self.pool.bad_status[str(self.status)] = self.pool.bad_status.get(str(self.status), 0) + 1
        self.raw += data
        self._dechunk()
        self._events()

    def _dechunk(self) -> None:
        raw, pos, n = self.raw, 0, len(self.raw)
        while pos < n:
            if self.chunk_left < 0:
                nl = raw.find(b"\r\n", pos)
                if nl < 0:
                    break
                self.chunk_left = int(bytes(raw[pos:nl]).split(b";")[0] or b"0", 16)
                pos = nl + 2
                if self.chunk_left == 0:  # the terminating chunk: the server ended the stream
                    pos = n
                    if self.transport is not None:
                        self.transport.close()
                    break
            if self.chunk_left > 0:
                take = min(self.chunk_left, n - pos)
                self.sse += raw[pos : pos + take]
                pos += take
                self.chunk_left -= take
            if self.chunk_left == 0:  # a chunk's data ended: its CRLF follows
                if n - pos < 2:
                    break
                pos += 2
                self.chunk_left = -1
        del raw[:pos]

    def _events(self) -> None:
        now = time.time()
        sse, pos = self.sse, 0
        while True:
            end = sse.find(b"\n\n", pos)
            if end < 0:
                break
            msg, pos = bytes(sse[pos:end]), end + 2
            event, data, ident = b"message", b"", None
            for line in msg.split(b"\n"):
                if line.startswith(b"event:"):
                    event = line[6:].strip()
                elif line.startswith(b"data:"):
                    data = line[5:].strip()
                elif line.startswith(b"id:"):
                    ident = line[3:].strip().decode()
            if ident is not None:
                self.last_id = ident
            if event == b"message" and not data:
                continue  # a comment (heartbeat) or "retry:"
            kind = event.decode()
            if event == b"frame":
                self.frames += 1
                self.frames_this_connection += 1
                m = _TYPE.search(data)
                kind += ":" + (m.group(1).decode() if m else "?")
                ts = _TS.search(data)
                if ts is not None and not self.stall:
                    self.pool.latencies.append((now, now - float(ts.group(1))))
                if self.stall and not self.stalled:
                    self.stalled = True
                    if self.transport is not None:
                        self.transport.pause_reading()  # stop reading: the server's sends stop completing
            if len(self.after_connect) < 4:
                self.after_connect.append(kind)
        del sse[:pos]


class Pool:
    def __init__(self, port: int, path: str, clients: int, stall: int) -> None:
        self.port, self.path = port, path
        self.retry = 1.0
        self.stopping = False
        self.connect_errors = 0
        self.bad_status: dict[str, int] = {}
        self.latencies: list[tuple[float, float]] = []
        self.clients = [Client(self, i, i < stall) for i in range(clients)]

    def stats(self, since: float, until: float) -> dict[str, Any]:
        out: dict[str, Any] = {"connect_errors": self.connect_errors, "bad_status": self.bad_status}
        for group, members in (
            ("readers", [c for c in self.clients if not c.stall]),
            ("stalled", [c for c in self.clients if c.stall]),
        ):
            out[group] = {
                "clients": len(members),
                "connected": sum(c.connected for c in members),
                "frames": sum(c.frames for c in members),
                "connects": [c.connects for c in members],
                "closed_by_server": sum(c.closed_by_server > 0 for c in members),
                "frames_this_connection": [c.frames_this_connection for c in members],
                "first_events": [c.after_connect for c in members],
                "all_first_events": [c.history for c in members] if group == "readers" else [],
            }
        lat = [v for t, v in self.latencies if since <= t < until]
        out["latencies"] = lat
        self.latencies = [(t, v) for t, v in self.latencies if t >= until - 60]
        return out


async def main_async(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    pool = Pool(args.port, args.path, args.clients, args.stall)
    lag = asyncio.ensure_future(_watch_loop_lag())
    deadline = time.monotonic() + args.ready_timeout
    connecting = []
    for i in range(0, len(pool.clients), 50):  # ramp up in batches (the accept queue); READY is bounded either way
        batch = [asyncio.ensure_future(c.connect()) for c in pool.clients[i : i + 50]]
        connecting += batch
        await asyncio.wait(batch, timeout=max(0.0, deadline - time.monotonic()))
        await asyncio.sleep(0.05)
    while time.monotonic() < deadline and not all(c.frames for c in pool.clients):
        await asyncio.sleep(0.1)
    print("READY", sum(1 for c in pool.clients if c.frames), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        cmd = line.split()
        if not cmd or cmd[0] == "stop":
            pool.stopping = True
            for c in pool.clients:
                if c.transport is not None:
                    c.transport.close()
            for task in connecting:
                task.cancel()
            lag.cancel()
            print("STOPPED", flush=True)
            return 0
        if cmd[0] == "stats":
            print("STATS " + json.dumps(pool.stats(float(cmd[1]), float(cmd[2]))), flush=True)
        elif cmd[0] == "resume":
            for c in pool.clients:
                if c.stall and c.transport is not None:
                    c.transport.resume_reading()
            print("RESUMED", flush=True)
        else:
            print(f"ERROR unknown command {line!r}", flush=True)


async def _watch_loop_lag(every: float = 0.5, report: float = 1.0) -> None:
    """Say on stderr when this process's event loop ran late (the harness shows stderr when a command times out)."""
    while True:
        t0 = time.monotonic()
        await asyncio.sleep(every)
        late = time.monotonic() - t0 - every
        if late > report:
            print(f"{time.strftime('%H:%M:%S')} event loop {late:.1f} s late", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/telemetry/stream")
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--stall", type=int, default=0)
    p.add_argument("--ready-timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    import faulthandler
    import resource
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the harness asks for the stacks when a command hangs

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args))
    return int(uvloop.run(main_async(args)))


if __name__ == "__main__":
    sys.exit(main())
