"""Serve an ASGI app with uvicorn until Ctrl-C, SIGTERM or a duration: a clean stop, no traceback.

>>> sock = bind("127.0.0.1", 0)                   # doctest: +SKIP
>>> serve(app, sock, duration=None)               # doctest: +SKIP

Used by ``tradeobs demo`` and ``tradeobs_agent.live.run()``.

Intentional divergence from ``uvicorn.run()``: the listening socket is bound
first, before the app (and the agent) start, so a port in use is one clear
error that names the port, instead of a traceback after the URLs were printed.
uvicorn's own signal capture, which re-raises SIGINT as ``KeyboardInterrupt``
and SIGTERM as a kill once its graceful stop is done, is replaced by handlers
that only ask the server to exit (a second signal forces it), so the caller
returns normally and the process exits with status 0. Like uvicorn's, each
handler is a bound method of the server (``Server.request_exit``): that is how
a live hub mounted in the app (``_internal.workers.detect.uvicorn_server``) finds the server
and ends its endless streams when it exits; without it a SIGTERM waited for
the live clients to hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

__all__ = [
    "ABORT_KEY",
    "GRACE",
    "HEADER_TIMEOUT",
    "MAX_PENDING",
    "WRITE_TIMEOUT",
    "bind",
    "bind_error",
    "http_protocol",
    "reset",
    "serve",
    "serve_in_loop",
]

GRACE = 5
"""Seconds a stop waits for open connections to finish before it closes them (every live stream ends at once)."""
HEADER_TIMEOUT = 10.0
"""Seconds a connection has to send a whole request head, from connecting or from the end of its last response."""
MAX_PENDING = 512
"""Connections that have not sent a whole request head yet, at most: past it, the oldest such one is closed."""

WRITE_TIMEOUT = 30.0
"""Seconds a response may wait for a client that accepts none of its bytes (the transport's buffer over its high-water
mark, the client not reading) before the connection is aborted: longer than the live stream's own ``send_timeout``
(10 s), which ends such a stream first and counts it."""
ABORT_KEY = "tradeobs.abort"
"""``scope["extensions"][ABORT_KEY]``: a callable that aborts the request's connection at once (RST, buffers
dropped), set by :func:`http_protocol` (httptools); the live stream calls it for a client it timed out."""

_LINGER_0 = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection and drops its buffers

_MIN_WAIT = 1.0
"""Seconds a waiting connection is spared by MAX_PENDING: a burst of clients connecting at once (a desk reconnecting
after a restart) is accepted before any of their request heads is read, and must not close its own first ones."""

_log = logging.getLogger("tradeobs.serve")


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (``port=0``: any free port). Raises ``OSError`` if that fails."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; a LISTENing port stays taken
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


def say_listening(
    sock: socket.socket,
    host: str,
    what: str,
    stop: str = "Ctrl-C to stop",
    on_console: Callable[[], bool] | None = None,
) -> str:
    """Listen on ``sock`` and say where, as its first line: ``"<what> at http://HOST:PORT/ (Ctrl-C to stop)"``;
    returns the URL. With ``port=0`` nothing else tells the port. On the ``tradeobs.live`` logger at INFO when
    logging has a handler (``tradeobs live gateway`` gives it one on stderr), and on stderr when that does not
    reach the console: with no handler, Python shows only warnings, and ``live.run(port=0)`` said nothing; after
    ``init()`` the agent's handler writes the line to ``logs/system.jsonl`` only, and a script's ``live.run()`` or
    ``live.serve()`` said its URL nowhere a newcomer looks. ``on_console()`` says whether the log reaches the console
    (the callers pass ``_errors.on_console``; without it, a handler is taken to). Listening first: a client that
    reads the line and connects is queued until the server answers, not refused."""
    sock.listen(2048)  # uvicorn's backlog; its server listens again on the same socket, which changes nothing else
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    log = logging.getLogger("tradeobs.live")
    handled = log.hasHandlers()
    if handled:
        log.info("%s at %s (%s)", what, url, stop)
    if not handled or (on_console is not None and not on_console()):
        with contextlib.suppress(OSError, ValueError):  # stderr closed or gone (a daemon): it is in the log
            print(f"{what} at {url} ({stop})", file=sys.stderr, flush=True)
    return url


def bind_error(host: str, port: int, exc: OSError, port_option: str, host_option: str) -> str:
    """One line: which address could not be used, why, and what to change (named as the caller's options)."""
    reason = (exc.strerror or str(exc)).lower()
    if exc.errno == errno.EADDRINUSE:
        hint = f"pick another port with {port_option} (0 picks any free port)"
    elif exc.errno == errno.EACCES:
        hint = f"ports below 1024 need privileges: pick another with {port_option}"
    else:  # an unknown name, an address that is not this machine's
        hint = f"check {host_option}"
    return f"cannot listen on {host}:{port}: {reason}; {hint}"


def reset(transport: Any) -> None:
    """Abort ``transport`` with a reset: linger 0, so the kernel drops what it holds for the client too."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
    transport.abort()


def http_protocol(
    header_timeout: float = HEADER_TIMEOUT,
    max_pending: int = MAX_PENDING,
    write_timeout: float = WRITE_TIMEOUT,
    on_close: Callable[[str], None] | None = None,
) -> type[Any]:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with a bound on half-sent requests and on
    clients that stop reading.

    uvicorn has no timeout for reading a request head: a connection that sends part of one and then nothing
    (slowloris) is held forever, an open file and about 5 KiB each, and the live view's ``max_clients`` counts
    streams, not those (measured: 3,000 held for as long as the client liked, with ``max_clients=8``). Once the
    process runs out of files it accepts no one, the desk included. Here a connection that has no request under
    way ``header_timeout`` seconds after connecting or after its last response is closed, and at most
    ``max_pending`` of them wait at once (a new one closes the oldest that has waited at least a second). A request
    being answered (an endless live stream) is never cut: its clock starts again when its response ends. Said once
    in the log.

    A client that stops reading holds its connection for good too: uvicorn's ``transport.close()`` waits for the
    send buffers to drain, which never happens (measured: 500 live streams that never read, timed out by the live
    view after 10 s, kept 500 files and 66 MiB of the service until the clients hung up). Here a connection whose
    writes have waited ``write_timeout`` seconds for the client is aborted (a reset: its buffers are dropped at once),
    and the request's scope carries ``scope["extensions"][ABORT_KEY]``, which aborts it at once: the live stream
    calls it for a client it times out (httptools only; under h11 ``write_timeout`` bounds it).

    ``on_close(reason)`` is called for each connection closed here: ``"no_request"`` (no whole request head in
    ``header_timeout``), ``"waiting_cap"`` (``max_pending`` others waited), ``"write_stalled"`` (no byte accepted in
    ``write_timeout``); the live view counts them in ``tradeobs.server.connections.closed``.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    pending: dict[Any, float] = {}  # connections waiting for a request head -> since (loop time), oldest first
    said: list[bool] = []

    def count(reason: str) -> None:
        if on_close is not None:  # it must not raise (the live view's count_closed handles its own errors)
            on_close(reason)

    def say(why: str) -> None:
        if not said:
            said.append(True)
            _log.warning(
                "tradeobs: closed a connection that %s (a slow or stalled client, or a slowloris attack); said once",
                why,
            )

    class Protocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
        _head_timer: Any = None
        _write_timer: Any = None
        _lost = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._wait_for_head()
            if len(pending) > max_pending:
                now = self.loop.time()
                for other, since in list(pending.items()):  # oldest first
                    if now - since < _MIN_WAIT:  # a burst of connects: their heads are in the socket, not read yet
                        break
                    pending.pop(other)
                    if not other._request_under_way():  # one being answered waits for no head: just forgotten
                        say(f"had sent no whole request while {max_pending} others waited too")
                        count("waiting_cap")
                        other._close_waiting()
                        break

        def _wait_for_head(self) -> None:
            pending[self] = self.loop.time()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _request_under_way(self) -> bool:
            cycle = self.cycle
            return cycle is not None and not cycle.response_complete

        def _head_timed_out(self) -> None:
            self._head_timer = None
            pending.pop(self, None)
            if self._request_under_way():  # its clock starts again when the response ends
                return
            say(f"sent no whole request in {header_timeout:g} s")
            count("no_request")
            self._close_waiting()

        def _close_waiting(self) -> None:
            pending.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            if not self.transport.is_closing():
                self._wait_for_head()  # for the next request on this connection (or a pipelined one already read)

        def pause_writing(self) -> None:  # the client stopped taking bytes: the transport's buffer is full
            super().pause_writing()
            if self._write_timer is None:
                self._write_timer = self.loop.call_later(write_timeout, self._write_timed_out)

        def resume_writing(self) -> None:
            super().resume_writing()
            self._cancel_write_timer()

        def _cancel_write_timer(self) -> None:
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None

        def _write_timed_out(self) -> None:
            self._write_timer = None
            say(f"accepted no byte of its response in {write_timeout:g} s")
            count("write_stalled")
            self._abort()

        def _abort(self) -> None:
            """Drop the connection now (RST): a graceful close waits for the client to read what is buffered."""
            pending.pop(self, None)
            self._cancel_write_timer()
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            transport = self.transport
            if transport.is_closing() and self._lost:
                return
            reset(transport)

        if hasattr(AutoHTTPProtocol, "on_headers_complete"):  # httptools: the scope is complete here

            def on_headers_complete(self) -> None:
                super().on_headers_complete()
                cycle = self.cycle
                if cycle is not None and cycle.scope is self.scope:  # the app's task has not run yet
                    self.scope.setdefault("extensions", {})[ABORT_KEY] = self._abort

        def connection_lost(self, exc: Exception | None) -> None:
            pending.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._cancel_write_timer()
            self._lost = True
            super().connection_lost(exc)

    return Protocol


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # our handlers, installed in serve()
            yield

        def request_exit(self, *_: object) -> None:
            """The SIGINT/SIGTERM handler: ask the server to exit; a second signal does not wait for open streams."""
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

    return Server


def running_loop() -> asyncio.AbstractEventLoop | None:
    """This thread's running event loop (a Jupyter kernel's, an async app's), or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _config(app: Any, lifespan: Literal["auto", "on", "off"], on_close: Callable[[str], None] | None) -> Any:
    import uvicorn

    # A connection that never drains (a client that stopped reading: its send buffers stay full) would hold the
    # graceful shutdown forever; after GRACE seconds uvicorn stops waiting for it and the loop's end closes it.
    # A half-sent request is bounded too (see http_protocol).
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        timeout_graceful_shutdown=GRACE,
        http=http_protocol(HEADER_TIMEOUT, MAX_PENDING, WRITE_TIMEOUT, on_close),  # read now: a test may set them
    )


async def serve_in_loop(
    app: Any,
    sock: socket.socket,
    *,
    lifespan: Literal["auto", "on", "off"] = "on",
    on_server: Callable[[Any], None] | None = None,
    on_close: Callable[[str], None] | None = None,
) -> None:
    """:func:`serve` as a coroutine, in the event loop already running (a Jupyter kernel's): until it is cancelled
    or the server is asked to exit. No signal handler is installed (SIGINT and SIGTERM stay the kernel's or the
    app's). A cancel stops the server cleanly before it returns: streams ended, connections closed, and the caller
    closes the socket (a bare ``uvicorn.Server.serve()`` task, cancelled, left the port bound in the kernel)."""
    server = _server_class()(_config(app, lifespan, on_close))
    if on_server is not None:
        on_server(server)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise


def serve(
    app: Any,
    sock: socket.socket,
    *,
    duration: float | None = None,
    lifespan: Literal["auto", "on", "off"] = "on",
    on_server: Callable[[Any], None] | None = None,
    on_close: Callable[[str], None] | None = None,
) -> None:
    """Run ``app`` on ``sock`` until Ctrl-C / SIGTERM (main thread only) or ``duration`` seconds.

    ``on_server`` gets the ``uvicorn.Server`` before it starts (the live hub watches ``should_exit``); ``on_close``
    is :func:`http_protocol`'s (the connections it closes, by reason).
    Access logging is off: a query token must never reach a log.
    """
    config = _config(app, lifespan, on_close)
    server = _server_class()(config)
    if on_server is not None:
        on_server(server)

    async def main() -> None:
        installed: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, OSError):
                    installed[sig] = signal.signal(sig, server.request_exit)
        try:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            await asyncio.wait({task}, timeout=duration)
            server.should_exit = True
            await task
        finally:
            for sig, previous in installed.items():
                signal.signal(sig, previous)

    factory = getattr(config, "get_loop_factory", None)  # uvicorn >= 0.36; uvloop when installed
    if factory is not None:
        with asyncio.Runner(loop_factory=factory()) as runner:
            runner.run(main())
    else:  # pragma: no cover - older uvicorn
        config.setup_event_loop()
        asyncio.run(main())
