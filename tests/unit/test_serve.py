"""Serving an ASGI app until a signal or a duration (tradeobs_agent._serve); process-level tests are in
test_cli.py (the demo) and test_live.py (live.run)."""

from __future__ import annotations

import errno
import socket
import threading
import urllib.request
from typing import Any

import pytest

from tests._util import wait_for
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
