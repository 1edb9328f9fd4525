"""A TCP proxy in front of the live server whose "network" a test can cut, as a phone's is cut.

``cut()`` is what a phone sees when it sleeps, changes networks or its carrier's NAT forgets a connection: nothing
is closed and nothing is refused, the bytes just stop. Every connection open at that moment stays open and silent
for good (what either side sends is dropped), and a connection made while the network is down is accepted and gets
nothing either, ever. ``restore()`` brings the network back for new connections only (the old ones stay dead, as a
connection through a NAT that forgot it does). The browser sees no error on any of them.
"""

from __future__ import annotations

import socket
import threading


class CuttableProxy:
    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = port
        self.down = False
        self.lock = threading.Lock()
        self.conns: list[list[object]] = []  # [client socket, upstream socket or None, dead flag]
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
            threading.Thread(target=self._pump, args=(conn, client, up), daemon=True).start()
            if up is not None:
                threading.Thread(target=self._pump, args=(conn, up, client), daemon=True).start()

    def _pump(self, conn: list[object], src: socket.socket, dst: socket.socket | None) -> None:
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
            if conn[2] or dst is None:
                continue  # the network is down for this connection: the bytes are lost
            try:
                dst.sendall(data)
            except OSError:
                return
