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
a live hub mounted in the app (``live.hub._uvicorn_server``) finds the server
and ends its endless streams when it exits; without it a SIGTERM waited for
the live clients to hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

__all__ = ["GRACE", "bind", "bind_error", "serve"]

GRACE = 5
"""Seconds a stop waits for open connections to finish before it closes them (every live stream ends at once)."""


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


def serve(
    app: Any,
    sock: socket.socket,
    *,
    duration: float | None = None,
    lifespan: Literal["auto", "on", "off"] = "on",
    on_server: Callable[[Any], None] | None = None,
) -> None:
    """Run ``app`` on ``sock`` until Ctrl-C / SIGTERM (main thread only) or ``duration`` seconds.

    ``on_server`` gets the ``uvicorn.Server`` before it starts (the live hub watches ``should_exit``).
    Access logging is off: a query token must never reach a log.
    """
    import uvicorn

    # A connection that never drains (a client that stopped reading: its send buffers stay full) would hold the
    # graceful shutdown forever; after GRACE seconds uvicorn stops waiting for it and the loop's end closes it.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan=lifespan, timeout_graceful_shutdown=GRACE
    )
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
