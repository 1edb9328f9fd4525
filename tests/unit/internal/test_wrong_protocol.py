"""How an OTLP/HTTP connection error is told to be the other protocol's receiver (``otel_private.http_wrong_protocol``)
and how it is not: a reset from an HTTP server (a collector restarting mid-request) must stay an outage, or a live
collector would be given up at shutdown. Real sockets; the real collector's answer is in
tests/integration/test_collector_wrong_protocol.py."""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
from collections.abc import Callable, Iterator

from tradeobs_agent._internal.otel_private import http_wrong_protocol

# What a gRPC server writes first on every connection: an HTTP/2 SETTINGS frame (here MAX_FRAME_SIZE 16384).
SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + struct.pack(">HI", 5, 16384)


@contextlib.contextmanager
def _server(on_connect: Callable[[socket.socket], None]) -> Iterator[str]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=on_connect, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/v1/traces"
    finally:
        done.set()
        srv.close()


def _grpc_like(conn: socket.socket) -> None:
    with conn:
        conn.sendall(SETTINGS)
        conn.settimeout(5)
        with contextlib.suppress(OSError):  # the client went away: nothing more to read
            conn.recv(24)


def _http_like(conn: socket.socket) -> None:
    """An HTTP/1 server: says nothing until it has a request (the check sends none), then closes."""
    with conn:
        conn.settimeout(5)
        with contextlib.suppress(OSError):  # the client went away: nothing more to read
            conn.recv(1024)


def test_a_reset_where_a_grpc_server_listens_is_the_other_protocol() -> None:
    with _server(_grpc_like) as url:
        said = http_wrong_protocol(ConnectionResetError(104, "Connection reset by peer"), url)
    assert said is not None and "HTTP/2 SETTINGS frame" in said


def test_a_reset_where_an_http_server_listens_stays_an_outage() -> None:
    with _server(_http_like) as url:
        assert http_wrong_protocol(ConnectionResetError(104, "Connection reset by peer"), url) is None


def test_the_settings_frame_read_as_a_status_line_is_the_other_protocol_without_a_check() -> None:
    line = SETTINGS.decode("latin-1")
    error = ConnectionError("Connection aborted.", http.client.BadStatusLine(line))
    said = http_wrong_protocol(error, "http://127.0.0.1:1/v1/traces")  # nothing listens there: no check was made
    assert said is not None and "SETTINGS frame" in said


def test_a_refused_connection_is_no_answer_at_all() -> None:
    assert http_wrong_protocol(ConnectionRefusedError(111, "Connection refused"), "http://127.0.0.1:1/v1/x") is None
