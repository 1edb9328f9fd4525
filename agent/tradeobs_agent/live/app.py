"""The live view as a Starlette app: mount it in the service's app, or run it standalone.

>>> from fastapi import FastAPI
>>> import tradeobs_agent.live
>>> app = FastAPI()
>>> app.mount("/telemetry", tradeobs_agent.live.create_app())     # doctest: +SKIP

Routes (relative to the mount point):

``GET /``          the dashboard page (``static/index.html``; uPlot vendored, no CDN)
``GET /stream``    ``text/event-stream``: ``event: frame`` (full/delta state) and ``event: event``
                   (fills, rejects, orders, alerts), ``retry:`` and ``: hb`` heartbeats
``GET /snapshot``  the current full state as JSON
``GET /history``   recent chart points and every discrete event held (bounded rings) as JSON, gzipped if accepted
``GET /config``    what the page needs besides data: the Grafana URL its links go to (``live_grafana_url``),
                   the Prometheus ``job`` of this service, the Jaeger datasource and order dashboard uids

With no ``live_token``, on a loopback address, every route answers only loopback ``Host`` names and those in
``live_allowed_hosts``; any other gets 403 (DNS rebinding: :func:`.auth.foreign_host`).

Nothing needs the host's lifespan (mounted apps' lifespans do not run in
Starlette): the producer starts on the first request, in the server's loop,
and ``agent.shutdown()`` (or uvicorn's shutdown) stops it and ends the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _serve
from .._errors import internal_error, on_console, warn_once
from .._names import did_you_mean
from .._serve import ABORT_KEY
from .._trading_day import TradingDay
from ..config import Settings, check_argument, resolve_settings
from ..events import EventBus
from ..exceptions import UnknownSettingError
from ..metrics import Registry, get_registry
from . import auth
from .frames import ACK_AGE_LIMIT, STALE_AFTER, STALL_LIMIT
from .hub import LiveHub

__all__ = [
    "JAEGER_DATASOURCE_UID",
    "ORDER_DASHBOARD_UID",
    "PAGE_POLICY",
    "STATIC_DIR",
    "LiveApp",
    "count_closed",
    "create_app",
    "http_protocol",
    "run",
]

STATIC_DIR = Path(__file__).parent / "static"
# Where the page's links go in Grafana: compose/grafana provisions these uids (tests/unit/live checks they match).
JAEGER_DATASOURCE_UID = "jaeger"
ORDER_DASHBOARD_UID = "tradeobs-order"
_TOKEN_KEY = "tradeobs.live.token"
GZIP_HISTORY_FROM = 8192  # a /history this large or larger is sent gzipped to a client that takes gzip


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` takes gzip (``gzip`` or ``*``, not with ``q=0``)."""
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() not in ("gzip", "*"):
            continue
        key, _, value = params.replace(" ", "").partition("=")
        try:
            return key != "q" or float(value) > 0
        except ValueError:
            return False
    return False


_END = {"type": "http.response.body", "body": b"", "more_body": False}
# LiveHub keywords create_app() passes through (the rest are create_app()'s own arguments).
_HUB_OPTIONS = frozenset(inspect.signature(LiveHub.__init__).parameters) - {
    "self",
    "registry",
    "bus",
    "hz",
    "max_clients",
    "send_timeout",
    "builder",
}


def _settings() -> Settings:
    from ..agent import get_agent

    agent = get_agent()
    return agent.settings if agent is not None else resolve_settings()[0]


class _StripToken:
    """Outermost layer: take ``?token=`` out of the scope before anything (an access log) can see it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_TOKEN_KEY] = auth.pop_query_token(scope)
        await self.app(scope, receive, send)


PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
"""The ``Content-Security-Policy`` of every response but the stream's: the page runs only its own script files
(never inline script or an ``on...=`` attribute, so text that ever reached the page as markup runs nothing), talks
only to its own server, and is framed only by pages of its own origin. Inline styles stay allowed: the page sizes
rows and bars with ``style=`` attributes."""
_SECURITY_HEADERS = (
    (b"content-security-policy", PAGE_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the Grafana links do not tell Grafana where the desk's page is
)


class _SecurityHeaders:
    """Add :data:`_SECURITY_HEADERS` to each response that has none of its own (the page, its files, the JSON)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                have = {k.lower() for k, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in have)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_CHALLENGE = (b"www-authenticate", b'Bearer realm="tradeobs live"')
"""What a 401 says it wants (RFC 9110 requires the header on a 401): a token, as a cookie, ``?token=`` or Bearer."""
_CHALLENGE_HEADERS = {_CHALLENGE[0].decode(): _CHALLENGE[1].decode()}


async def _plain(send: Send, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def host_refused(name: str | None) -> str:
    """The 403 body for a refused ``Host`` (see :func:`.auth.foreign_host`): it names the exact value to set, the
    host name without its port (``live_allowed_hosts`` refuses a port), when the header holds one."""
    if name is None:
        setting = "Add the host name, without the port, to live_allowed_hosts (TRADEOBS_LIVE_ALLOWED_HOSTS)"
    else:
        setting = f"Add {name} to live_allowed_hosts (TRADEOBS_LIVE_ALLOWED_HOSTS={name}; the name only, no port)"
    return (
        "this host name is not allowed: with no live_token, the live view on a loopback address answers only "
        f"localhost and loopback addresses. {setting}, or set live_token\n"
    )


async def _refuse_host(hub: LiveHub, host: str, send: Send) -> None:
    """403 for a request whose ``Host`` is no loopback name and not in ``live_allowed_hosts`` (see
    :func:`.auth.foreign_host`): counted with the other refusals, said once."""
    hub.reject()
    name = auth.host_header_name(host)
    warn_once(
        "live:host",
        "tradeobs live: refused a request for Host %s (no live_token, loopback address: a web page may be using DNS "
        "rebinding to read the desk). If that is a name you use for this server, add it to live_allowed_hosts "
        "(TRADEOBS_LIVE_ALLOWED_HOSTS=%s). Counted in tradeobs.live.clients.rejected; said once",
        ascii(host[:100]),
        name or "NAME",
    )
    await _plain(send, 403, host_refused(name))


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path != root:
        return path[len(root) :]
    return path


class LiveApp(Starlette):
    """The live Starlette app. ``/stream`` is dispatched before Starlette's middleware stack.

    Intentional divergence: Starlette's error and exception middleware each wrap
    ``send`` in another coroutine, i.e. two more frames per message, clients x hz
    times a second. The stream handler needs neither (it answers its own errors
    and does its own CORS), so it is called directly; every other route goes
    through the normal stack.
    """

    stream: _Stream
    allowed_hosts: frozenset[str] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = auth.foreign_host(self.stream.secret, self.allowed_hosts, scope)
            if host is not None:
                await _refuse_host(self.stream.hub, host, send)
                return
        # A CORS preflight (OPTIONS, from a fetch-based client sending a Bearer token) goes through the normal
        # stack, where CORSMiddleware answers it.
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and _route_path(scope) == "/stream":
            scope[_TOKEN_KEY] = auth.pop_query_token(scope)
            await self.stream(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


_REFUSED = b"x-tradeobs-refused"  # why a stream request was refused, for a HEAD (no body) as for a GET
_RETRY = (b"retry-after", b"5")


class _Stream:
    """``GET /stream`` in raw ASGI (see the divergence note in :mod:`.hub` for why not ``EventSourceResponse``)."""

    def __init__(self, hub: LiveHub, secret: str, origins: Sequence[str] = ()) -> None:
        self.hub, self.secret, self.origins = hub, secret, frozenset(origins)

    def _cors(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        for k, v in scope["headers"]:
            if k == b"origin":
                if v.decode("latin-1") in self.origins:
                    return [
                        (b"access-control-allow-origin", v),
                        (b"access-control-allow-credentials", b"true"),
                        (b"vary", b"Origin"),
                    ]
                break
        return []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.hub
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, "method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        cors = self._cors(scope)  # on the errors too: a cross-origin client can read why it was refused
        # HEAD is the page's probe before it opens its stream again (six at once, live.js reopen()): no connection
        # is refused by answering it, so a full or stopped stream does not count it in tradeobs.live.clients.rejected
        # (a wrong token still does). Counted, a full server
        # showed seven refusals per page woken (six probes, then the stream), an operator read "clients refused"
        # several times over, and the page's own retries every 2 s added one each. The reason is in a header too:
        # a HEAD has no body, and the page shows it ("refused: too many live clients") instead of "offline".
        probe = scope["method"] == "HEAD"
        if not auth.authorized(self.secret, scope, scope.get(_TOKEN_KEY)):
            hub.reject()  # a probe too: HEAD answers 401 or 200, so a token guessed by HEADs must show as refusals
            await _plain(send, 401, "unauthorized\n", [_CHALLENGE, (_REFUSED, b"unauthorized"), *cors])
            return
        if not hub.ensure_started():
            if not probe:
                hub.reject()
            await _plain(send, 503, "live stream stopped\n", [_RETRY, (_REFUSED, b"live stream stopped"), *cors])
            return
        if hub.full():
            if not probe:
                hub.reject()
            await _plain(send, 503, "too many live clients\n", [_RETRY, (_REFUSED, b"too many live clients"), *cors])
            return
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-store, no-transform"),
                (b"x-accel-buffering", b"no"),
                *cors,
            ],
        }
        if scope["method"] == "HEAD":
            await send(start)
            await send(_END)
            return
        last_id = None
        for k, v in scope["headers"]:
            if k == b"last-event-id":
                last_id = v.decode("latin-1")
        if last_id is None and b"lastEventId=" in scope.get("query_string", b""):
            last_id = Request(scope).query_params.get("lastEventId")
        resume = await hub.prepare_resume(last_id)
        await send(start)
        await hub.wait_ready()  # a worker of a group: the leader's first frame (at once in a single process)
        client = hub.connect(send, last_id, resume, scope, (scope.get("extensions") or {}).get(ABORT_KEY))
        task = asyncio.current_task()
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
        except asyncio.CancelledError:
            if client.closing is None:
                raise
            if task is not None:
                task.uncancel()
        finally:
            hub.disconnect(client)
        if client.closing == "stop":
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await send(_END)


def create_app(
    *,
    hz: float | None = None,
    max_clients: int | None = None,
    token: str | None = None,
    cors_origins: Sequence[str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    grafana_url: str | None = None,
    trading_day_start: str | None = None,
    day_pnl: str | None = None,
    send_timeout: float = 10.0,
    registry: Registry | None = None,
    bus: EventBus | None = None,
    settings: Settings | None = None,
    hub: LiveHub | None = None,
    **hub_options: Any,
) -> LiveApp:
    """A Starlette app serving the live stream and dashboard; ``app.state.hub`` is its :class:`LiveHub`.

    Settings come from the running agent (else ``resolve_settings()``); explicit
    arguments win; ``hub_options`` (``event_buffer``, ``heartbeat``, ``full_every``,
    ``retry_ms``, ``history``, ``phase``) go to :class:`LiveHub`. When an agent exists, ``agent.live`` is set to the
    hub so ``agent.shutdown()`` ends the streams. ``hub`` serves a hub built elsewhere (the fleet gateway's) with the
    same routes; it is not attached to the agent.
    """
    s = settings if settings is not None else _settings()
    # One validation path: the same parsers as init() and `tradeobs config check`, whatever the source.
    hz = check_argument("live_hz", s.live_hz if hz is None else hz)
    max_clients = check_argument("live_max_clients", s.live_max_clients if max_clients is None else max_clients)
    secret = check_argument("live_token", s.live_token if token is None else token)
    session_ttl = check_argument("live_session_ttl", s.live_session_ttl)
    origins = check_argument("live_cors_origins", s.live_cors_origins if cors_origins is None else cors_origins)
    hosts = check_argument("live_allowed_hosts", s.live_allowed_hosts if allowed_hosts is None else allowed_hosts)
    grafana = check_argument("live_grafana_url", s.live_grafana_url if grafana_url is None else grafana_url)
    day_start = s.trading_day_start if trading_day_start is None else trading_day_start
    day_mode = check_argument("day_pnl", s.day_pnl if day_pnl is None else day_pnl)
    trading_day = TradingDay.parse(check_argument("trading_day_start", day_start)).with_pnl(day_mode)
    page_config = {
        "grafana_url": grafana,
        "money_decimals": check_argument("live_money_decimals", s.live_money_decimals),
        "job": _job(s),
        "jaeger_datasource": JAEGER_DATASOURCE_UID,
        "order_dashboard": ORDER_DASHBOARD_UID,
        "stale_after": STALE_AFTER,
        "ack_age_limit": ACK_AGE_LIMIT,
        "stall_limit": STALL_LIMIT,
    }
    unknown = set(hub_options) - _HUB_OPTIONS
    if unknown:
        name = sorted(unknown)[0]
        hint = did_you_mean(name, _HUB_OPTIONS) or "valid: " + ", ".join(sorted(_HUB_OPTIONS))
        raise UnknownSettingError(
            f"create_app() got an unexpected keyword argument {name!r}; {hint}", name, hub_options[name], hint
        )
    own_hub = hub is None
    if hub is None:
        hub = LiveHub(
            registry,
            bus,
            hz=hz,
            max_clients=max_clients,
            send_timeout=send_timeout,
            trading_day=trading_day,
            **hub_options,
        )
        if not s.live_enabled:
            hub.stopped = True
    # The frames a second the page is to expect: with none for three periods (2 s at least) it says the data is stale.
    config_json = orjson.dumps({**page_config, "hz": hub.hz})

    def _check(request: Request) -> Response | None:
        if auth.authorized(secret, request.scope, request.scope.get(_TOKEN_KEY)):
            hub.ensure_started()
            return None
        return Response("unauthorized\n", 401, media_type="text/plain", headers=_CHALLENGE_HEADERS)

    async def index(request: Request) -> Response:
        qtoken = request.scope.get(_TOKEN_KEY)
        if secret and qtoken:
            if not auth.verify_token(secret, qtoken):
                return Response("invalid or expired token\n", 401, media_type="text/plain", headers=_CHALLENGE_HEADERS)
            root = request.scope.get("root_path", "") or ""
            resp = RedirectResponse(root + "/", status_code=303)
            secure = request.url.scheme == "https"
            resp.headers["set-cookie"] = auth.session_cookie(secret, root + "/", secure, session_ttl)
            return resp
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-store"})

    async def snapshot(request: Request) -> Response:
        denied = _check(request)
        if denied is not None:
            return denied
        return Response(hub.snapshot_json(), media_type="application/json", headers={"cache-control": "no-store"})

    async def history(request: Request) -> Response:
        denied = _check(request)
        if denied is not None:
            return denied
        body, headers = hub.history_json(), {"cache-control": "no-store", "vary": "Accept-Encoding"}
        if len(body) >= GZIP_HISTORY_FROM and _accepts_gzip(request.headers.get("accept-encoding", "")):
            # Every event the ring holds and 600 points: 1.0 MB at 2,048 events and 20 symbols, 172 KB gzipped at
            # level 1 (5.6 ms of CPU, off the event loop: zlib lets go of the GIL). A phone on a cell network loads it
            # at start-up and after each reset.
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers["content-encoding"] = "gzip"
        return Response(body, media_type="application/json", headers=headers)

    async def config(request: Request) -> Response:
        denied = _check(request)
        if denied is not None:
            return denied
        return Response(config_json, media_type="application/json", headers={"cache-control": "no-store"})

    middleware = [Middleware(_StripToken), Middleware(_SecurityHeaders)]
    if origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(origins),
                allow_credentials=True,
                allow_methods=["GET"],
                allow_headers=["Last-Event-ID", "Authorization"],
            )
        )
    stream = _Stream(hub, secret, origins)
    app = LiveApp(
        routes=[
            Route("/", index),
            Route("/stream", stream, methods=["GET", "HEAD"]),  # normally reached through LiveApp.__call__
            Route("/snapshot", snapshot),
            Route("/history", history),
            Route("/config", config),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=middleware,
    )
    app.stream = stream
    app.allowed_hosts = frozenset(hosts)
    app.state.hub = hub
    from ..agent import get_agent

    agent = get_agent()
    if agent is not None and own_hub:
        agent.live = hub
    return app


def _job(s: Settings) -> str:
    """The Prometheus ``job`` of this service's metrics through the collector: ``namespace/name``, or the name."""
    ns = s.resource_attributes.get("service.namespace")
    return f"{ns}/{s.service_name}" if ns else s.service_name


def count_closed(reason: str) -> None:
    """Count a connection the server closed for its client (``_serve.http_protocol``'s ``on_close``) in
    ``tradeobs.server.connections.closed`` by ``reason``: ``no_request``, ``waiting_cap``, ``write_stalled``."""
    try:
        get_registry().counter(
            "tradeobs.server.connections.closed",
            "{connection}",
            "Connections the server closed for their client: no whole request in time, too many waiting, not reading",
            aggregation="pid",
        ).bind(reason=reason).add(1)
    except Exception as exc:  # a bug of ours: counted and said once; the server still closes what it must
        internal_error("live.count_closed", exc)


def http_protocol(
    header_timeout: float = _serve.HEADER_TIMEOUT,
    max_pending: int = _serve.MAX_PENDING,
    write_timeout: float = _serve.WRITE_TIMEOUT,
) -> type[Any]:
    """uvicorn's HTTP protocol with the bounds of the servers tradeobs runs (``uvicorn.run(app,
    http=tradeobs_agent.live.http_protocol())``): half-sent requests and clients that stop reading are closed, and
    counted in ``tradeobs.server.connections.closed`` (see :func:`tradeobs_agent._serve.http_protocol`)."""
    return _serve.http_protocol(header_timeout, max_pending, write_timeout, count_closed)


def run(host: str = "127.0.0.1", port: int = 8765, **kwargs: Any) -> None:
    """Serve the live view standalone with uvicorn until Ctrl-C or SIGTERM; ``kwargs`` go to :func:`create_app`.

    Returns normally on Ctrl-C / SIGTERM (no ``KeyboardInterrupt``). A port in
    use raises ``OSError`` naming it before anything starts (``port=0`` picks a
    free one). Once listening it says where: ``tradeobs live: the live view at http://HOST:PORT/ (Ctrl-C to
    stop)``, on the ``tradeobs.live`` logger at INFO, or on stderr when logging has no handler. Access logging
    is off (a query token must never reach a log); uvloop and httptools are used when installed.
    """
    from .._serve import bind, bind_error, running_loop, say_listening, serve

    if running_loop() is not None:  # before anything binds: the same call, awaited, is what works here
        raise RuntimeError(
            "tradeobs_agent.live.run() runs its own event loop until Ctrl-C, and this thread's event loop is already "
            "running (a Jupyter notebook, an async app): serve it in that loop instead, "
            f"live = tradeobs_agent.live.start({host!r}, {port!r}) serves it as a task, live.cancel() stops it"
        )
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise OSError(exc.errno, bind_error(host, port, exc, "run(port=...)", "run(host=...)")) from None
    with sock:
        app = create_app(**kwargs)
        hub: LiveHub = app.state.hub
        warning = auth.exposure_warning(host, app.stream.secret)
        if warning:
            logging.getLogger("tradeobs.live").warning("%s", warning)
        # with port=0 nothing else tells the port
        say_listening(sock, host, "tradeobs live: the live view", on_console=on_console)

        def attach(server: Any) -> None:
            hub.server = server

        try:
            serve(app, sock, lifespan="off", on_server=attach, on_close=count_closed)
        finally:
            hub.stop()


def start(host: str = "127.0.0.1", port: int = 8765, **kwargs: Any) -> asyncio.Task[None]:
    """:func:`run` for a Jupyter notebook (or any thread whose event loop is already running): serves the live view
    in that loop, as a task, and returns the task at once; ``task.cancel()`` stops it cleanly (every stream ended,
    the port freed). ``kwargs`` go to :func:`create_app`.

    In a cell: ``live = tradeobs_agent.live.start("127.0.0.1", 8765)``. The cells that follow run while it serves
    (while a cell runs synchronous code the loop waits, and so do the stream's clients). The port is bound here, so
    a port in use raises ``OSError`` naming it in the cell itself, not in a task nobody awaits; a failure of the
    server later is logged (``tradeobs.live``, error). No signal handler is installed: the kernel's interrupt stays
    the kernel's. Without a running loop it raises ``RuntimeError`` (use :func:`run`)."""
    from .._serve import running_loop

    loop = running_loop()
    if loop is None:
        raise RuntimeError(
            "tradeobs_agent.live.start() serves in the event loop already running in this thread (a Jupyter "
            "notebook's); there is none here: use tradeobs_agent.live.run(), which runs its own until Ctrl-C"
        )
    sock, app = _bind_app("start", host, port, kwargs)
    serving = _serve_in_loop(host, sock, app, "live.cancel() stops it")
    task = loop.create_task(serving, name=f"tradeobs-live {host}:{sock.getsockname()[1]}")
    task.add_done_callback(_say_failure)
    return task


async def serve(host: str = "127.0.0.1", port: int = 8765, **kwargs: Any) -> None:
    """:func:`run` as a coroutine for an async app: serves the live view in the running loop until it is cancelled,
    then stops it cleanly (every stream ended, the port freed). In a notebook, :func:`start` says a port in use in
    the cell."""
    sock, app = _bind_app("serve", host, port, kwargs)
    await _serve_in_loop(host, sock, app)


def _bind_app(call: str, host: str, port: int, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The listening socket (a port in use raises ``OSError`` naming ``call``'s arguments) and the app for it; the
    socket is closed if the app cannot be made."""
    from .._serve import bind, bind_error

    try:
        sock = bind(host, port)
    except OSError as exc:
        raise OSError(exc.errno, bind_error(host, port, exc, f"{call}(port=...)", f"{call}(host=...)")) from None
    try:
        app = create_app(**kwargs)
    except BaseException:
        sock.close()
        raise
    return sock, app


async def _serve_in_loop(host: str, sock: Any, app: LiveApp, stop: str = "Ctrl-C to stop") -> None:
    from .._serve import say_listening, serve_in_loop

    with sock:
        hub: LiveHub = app.state.hub
        warning = auth.exposure_warning(host, app.stream.secret)
        if warning:
            logging.getLogger("tradeobs.live").warning("%s", warning)
        say_listening(sock, host, "tradeobs live: the live view", stop, on_console)  # as run() says it

        def attach(server: Any) -> None:
            hub.server = server

        try:
            await serve_in_loop(app, sock, lifespan="off", on_server=attach, on_close=count_closed)
        finally:
            hub.stop()


def _say_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("tradeobs.live").error("the live view's server stopped: %r", task.exception())
