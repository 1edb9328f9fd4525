"""A TCP proxy in front of the live server whose "network" a test can cut, as a phone's is cut.

``cut()`` is what a phone sees when it sleeps, changes networks or its carrier's NAT forgets a connection: nothing
is closed and nothing is refused, the bytes just stop. Every connection open at that moment stays open and silent
for good (what either side sends is dropped), and a connection made while the network is down is accepted and gets
nothing either, ever. ``restore()`` brings the network back for new connections only (the old ones stay dead, as a
connection through a NAT that forgot it does). The browser sees no error on any of them.

``requests`` is what the server side would see if every byte arrived: each request a browser sent, in order, with
its connection's number, whether that connection was dead (the bytes were lost), its target and its
``Last-Event-ID`` header. A test reads from it which connection a request went on and from which id it resumed.
``delivered_id`` is the last server-sent event id that reached the browser: once ``cut()`` has returned it no longer
changes (a send under way when the network went down is finished first), so a page whose last id is that one has
read everything it will get.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """A request the browser sent through the proxy (its head; the requests here have no body)."""

    at: float  # time.monotonic() when its head had arrived
    conn: int  # the connection's number, in the order they were accepted
    dead: bool  # the network was down for this connection: the request never reached the server
    method: str
    target: str  # "/telemetry/stream?lastEventId=..."
    last_event_id: str | None  # the Last-Event-ID header, if sent


class CuttableProxy:
    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = port
        self.down = False
        self.lock = threading.Lock()
        self.conns: list[list[object]] = []  # [client socket, upstream socket or None, dead flag]
        self.requests: list[Request] = []
        self.delivered_id = ""  # the last "id: " line sent to the browser
        self.sending = 0  # sends under way on connections that were live when they began
        self.idle = threading.Condition(self.lock)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self.lock:
            self.down = True
            for c in self.conns:
                c[2] = True
            assert self.idle.wait_for(lambda: self.sending == 0, timeout=30), "a send to the browser never finished"

    def restore(self) -> None:
        with self.lock:
            self.down = False

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            for c in self.conns:
                for s in c[:2]:
                    if isinstance(s, socket.socket):
                        s.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                dead = self.down
            up = None if dead else socket.create_connection(self.upstream)
            conn: list[object] = [client, up, dead]
            with self.lock:
                self.conns.append(conn)
                number = len(self.conns) - 1
            threading.Thread(target=self._pump, args=(conn, client, up, number), daemon=True).start()
            if up is not None:
                threading.Thread(target=self._pump, args=(conn, up, client), daemon=True).start()

    def _heads(self, buf: bytearray, number: int, dead: bool) -> None:
        """Log every whole request head in ``buf`` (what the browser sent on connection ``number``) and drop it."""
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            parts = [*lines[0].split(" "), "", ""]
            last = None
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "last-event-id":
                    last = value.strip()
            with self.lock:
                self.requests.append(Request(time.monotonic(), number, dead, parts[0], parts[1], last))

    def _pump(self, conn: list[object], src: socket.socket, dst: socket.socket | None, number: int = -1) -> None:
        head = bytearray()  # the browser's side (number >= 0): the request heads not yet logged
        tail = b""  # the server's side: the end of the last line not yet whole
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:  # one side closed: close both (never while cut: a dead network closes nothing)
                if not conn[2]:
                    for s in conn[:2]:
                        if isinstance(s, socket.socket):
                            s.close()
                return
            if number >= 0:
                head += data
                self._heads(head, number, bool(conn[2]) or dst is None)
            with self.lock:
                if conn[2] or dst is None:
                    continue  # the network is down for this connection: the bytes are lost
                self.sending += 1
            try:
                dst.sendall(data)
                if number < 0:
                    *lines, rest = (tail + data).split(b"\n")
                    tail = rest[-4096:]
                    ids = [line[4:].decode() for line in lines if line.startswith(b"id: ")]
                    if ids:
                        self.delivered_id = ids[-1]
            except OSError:
                return
            finally:
                with self.lock:
                    self.sending -= 1
                    self.idle.notify_all()
