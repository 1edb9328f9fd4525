"""Serving an ASGI app until a signal or a duration (tradeobs_agent._serve); process-level tests are in
test_cli.py (the demo) and test_live.py (live.run)."""

from __future__ import annotations

import errno
import os
import socket
import threading
import urllib.request
from typing import Any

import pytest

from tests._util import closed_by_server, wait_for
from tradeobs_agent._serve import bind, bind_error, serve


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_bind_refuses_a_port_in_use_and_says_which() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:
            bind("127.0.0.1", port)
    assert info.value.errno == errno.EADDRINUSE
    assert bind_error("127.0.0.1", port, info.value, "--port N", "--host") == (
        f"cannot listen on 127.0.0.1:{port}: address already in use; "
        "pick another port with --port N (0 picks any free port)"
    )


def test_serve_answers_on_the_bound_socket_and_stops_after_the_duration() -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[bytes] = []

    def client() -> None:
        def get() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    seen.append(resp.read())
                return True
            except OSError:
                return False

        wait_for(get, "the server to answer")

    t = threading.Thread(target=client)
    t.start()
    with sock:
        serve(_hello, sock, duration=5.0, lifespan="off")  # returns by itself: no signal needed (5 s: room to start)
    t.join(30)
    assert seen == [b"hello"]


def test_serve_from_a_worker_thread_installs_no_signal_handlers() -> None:
    """Signals can only be handled in the main thread; there, serve() just runs until its duration."""
    sock = bind("127.0.0.1", 0)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with sock:
                serve(_hello, sock, duration=0.5, lifespan="off")
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive() and errors == []


# --------------------------------------------------------------------------- half-sent requests (slowloris)

_HALF = b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n"  # a request head without its last CRLF


def _live_server(header_timeout: float, max_pending: int, min_wait: float) -> tuple[int, Any]:
    """A real ``live.run()`` server process (``max_clients=2``) with the given bounds, listening."""
    import subprocess
    import sys

    from tests._util import free_port

    port = free_port()
    code = (
        f"import tradeobs_agent._serve as s; s.HEADER_TIMEOUT = {header_timeout}; s.MAX_PENDING = {max_pending}; "
        f"s._MIN_WAIT = {min_wait}\n"
        f"from tradeobs_agent import live; live.run(port={port}, max_clients=2, hz=20)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)

    def connect() -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            return None

    wait_for(connect, "the live server to listen").close()
    return port, proc


def _sockets(pid: int) -> int:
    """The sockets process ``pid`` has open (its connections; a full run once counted 37 files for 36 with the
    server reading /proc for a frame's stats at that moment)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:  # closed since the listing
            continue
    return n


def test_the_live_server_bounds_half_sent_requests_and_closes_them(tmp_path: Any) -> None:
    """uvicorn has no timeout for a request head: a real ``live.run()`` server (``max_clients=2``) held every
    half-sent request for as long as the client liked (3,000 measured: 3,000 files, about 5 KiB each), and one
    that runs out of files accepts no one. Now at most MAX_PENDING wait (the oldest is closed), each at most
    HEADER_TIMEOUT; the live streams under way are never cut, and the server keeps answering."""
    port, proc = _live_server(header_timeout=2.0, max_pending=20, min_wait=0.0)
    socks: list[socket.socket] = []
    try:
        streams = []
        for _ in range(2):
            st = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(st)
            st.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            assert st.recv(12) == b"HTTP/1.1 200"
            streams.append(st)
        files_before = _sockets(proc.pid)  # sockets only: a file the server opens for a moment is no connection
        half = []
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            s.sendall(_HALF)
            half.append(s)
        # the 40 oldest were closed as the newer came: at most 20 wait
        wait_for(lambda: sum(closed_by_server(s) for s in half) >= 40, "the oldest half-sent requests closed")
        assert _sockets(proc.pid) <= files_before + 20
        # ... and the rest once their time is up; the streams were never cut and still get frames
        wait_for(lambda: all(closed_by_server(s) for s in half), "every half-sent request closed")
        for st in streams:
            st.settimeout(10)
            assert st.recv(65536), "a live stream was cut"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot", timeout=10) as resp:
            assert resp.status == 200
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "sent no whole request" in err and err.count("said once") == 1, err


def test_a_burst_of_clients_connecting_at_once_is_not_cut_by_the_cap() -> None:
    """A desk reconnecting after a restart: 50 clients connect before the server has read any of their requests.
    With a cap of 5 waiting connections, closing the oldest at once would cut 45 real clients; a connection is
    spared until it has waited ``_MIN_WAIT``."""
    port, proc = _live_server(header_timeout=60.0, max_pending=5, min_wait=60.0)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    try:
        for s in socks:
            s.sendall(b"GET /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert [s.recv(12) for s in socks] == [b"HTTP/1.1 200"] * 50
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.communicate(timeout=30)


def test_the_connections_closed_for_their_client_are_counted_by_reason() -> None:
    """``http_protocol(on_close=...)`` is told of each connection it closes and why (the live view counts them in
    ``tradeobs.server.connections.closed``): a half-sent request past its time is ``no_request``, the oldest of too
    many waiting ``waiting_cap``. Before, only the first closure was said in the log and none was counted."""
    import uvicorn

    from tests._util import free_port
    from tradeobs_agent._serve import http_protocol

    closed: list[str] = []
    port = free_port()
    protocol = http_protocol(header_timeout=1.0, max_pending=2, on_close=closed.append)
    config = uvicorn.Config(_hello, host="127.0.0.1", port=port, log_config=None, lifespan="off", http=protocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    socks: list[socket.socket] = []
    try:
        wait_for(lambda: server.started, "server start")
        for _ in range(3):  # the third closes the oldest, once it has waited a second
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            s.sendall(_HALF)
        wait_for(lambda: all(closed_by_server(s) for s in socks), "every half-sent request closed")
        assert sorted(closed) in (["no_request"] * 3, ["no_request", "no_request", "waiting_cap"]), closed
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
        wait_for(lambda: closed_by_server(s), "a connection that sends nothing closed")
        assert closed.count("no_request") >= 3 and len(closed) == 4, closed
    finally:
        for s in socks:
            s.close()
        server.should_exit = True
        thread.join(10)
