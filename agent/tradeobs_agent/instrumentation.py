"""Instrument a FastAPI or Starlette app: one server span per request, W3C ``traceparent`` honoured.

>>> app = FastAPI()                        # doctest: +SKIP
>>> tradeobs_agent.instrument_app(app)     # doctest: +SKIP

Health, metrics and live-stream URLs are excluded (:data:`DEFAULT_EXCLUDED`, and wherever the live view is
mounted in ``app`` when it is instrumented), also under the root path the app is served at: they are polled
constantly, or stay open, and would drown the traces that matter. The stable HTTP conventions are used
(``OTEL_SEMCONV_STABILITY_OPT_IN=http`` unless set):
``http.server.request.duration`` in seconds, ``http.route``; without the per-message ``http send``/``http
receive`` spans.

An exception that escapes a request remembers the request's span (``logs.links.remember_span``):
uvicorn logs it ("Exception in ASGI application", with the traceback) after the request's span has
ended, and the agent's log pipeline captures that record (``uvicorn.error`` and ``gunicorn.error``
do not propagate to the root logger; see ``logs/_capture.py`` ``ServerLogCapture``), so the record
carries the request's trace id.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace

from ._errors import warn_once
from ._internal import otel_private
from .logs.links import remember_span

_log = logging.getLogger("tradeobs")

DEFAULT_EXCLUDED = ("/health", "/healthz", "/ready", "/readyz", "/livez", "/ping", "/metrics", "/telemetry")

__all__ = ["DEFAULT_EXCLUDED", "instrument_app"]


class RememberRequestSpan:
    """ASGI middleware inside the request's span: an exception leaving the app remembers that span, and FastAPI apps
    mounted in the app leave their own telemetry out of the request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # This request has its server span (or is excluded): a FastAPI app mounted in this one leaves its own
        # telemetry out of it (FastAPI >= 0.165 would make a second server span, a second duration point and a
        # second log record of an unhandled exception).
        if scope.get("type") in ("http", "websocket"):
            otel_private.fastapi_native_telemetry_off(scope)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            remember_span(exc, trace.get_current_span().get_span_context())
            raise


def _remember_spans(app: Any) -> None:
    if any(getattr(m, "cls", None) is RememberRequestSpan for m in getattr(app, "user_middleware", ())):
        return  # instrument_app() called again on this app: one is enough
    try:
        app.add_middleware(RememberRequestSpan)
    except RuntimeError as exc:  # Starlette: "Cannot add middleware after an application has started"
        warn_once(
            "instrument:started",
            "tradeobs: instrument_app() called after the app started (%s); a server's log of an unhandled "
            "request exception will not carry the request's trace id",
            exc,
        )


def instrument_app(app: Any, *, excluded_urls: Sequence[str] = DEFAULT_EXCLUDED) -> Any:
    """Add OpenTelemetry server instrumentation to ``app`` and return it."""
    from .agent import get_agent

    agent = get_agent()
    tp = agent.tracer_provider if agent is not None else None
    mp = agent.meter_provider if agent is not None else None
    # The stable HTTP conventions (seconds, http.route), unless the user chose; read once per process, by the first
    # instrumentation that runs.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    # The live view mounted elsewhere than /telemetry: each client's stream would be one request lasting as long as
    # it is open (an "active request" for ever, a duration of minutes), with a span per frame.
    urls = [*excluded_urls, *(m for m in _live_mounts(app) if m not in excluded_urls)]
    # The instrumentation re.search()es these against the full URL; anchor each path right after the host.
    excluded = ",".join(rf"//[^/]+{re.escape(u.rstrip('/'))}(/|\?|$)" if u.startswith("/") else u for u in urls)
    try:
        from fastapi import FastAPI
    except ImportError:  # pragma: no cover - fastapi is a dependency
        FastAPI = None  # type: ignore[assignment,misc]
    if FastAPI is not None and isinstance(app, FastAPI):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        if otel_private.fastapi_app_instrumented(app):
            # opentelemetry-instrument (or the application) instrumented it already, with its own settings: the
            # instrumentation refused this second one ("Attempting to instrument FastAPI app while already
            # instrumented"), and the app kept spans for /metrics, /health and the live stream, and per-message
            # "http send" spans. Instrumented again, with these settings.
            FastAPIInstrumentor.uninstrument_app(app)
            app.middleware_stack = None  # built again at the first request, so middleware can still be added
            if getattr(app.state, "tradeobs_instrumented", False):
                _log.info("tradeobs: instrument_app() called again on this app; instrumented again with this call's "
                          "excluded URLs (one server span per request, as before)")  # fmt: skip
            else:
                _log.info(
                    "tradeobs: instrument_app(): the app was already instrumented (opentelemetry-instrument, or "
                    "FastAPIInstrumentor); instrumented again with the agent's excluded URLs and HTTP settings"
                )
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tp, meter_provider=mp, excluded_urls=excluded, exclude_spans=["receive", "send"]
        )
        _remember_spans(app)  # a user middleware: inside the request's span (FastAPIInstrumentor wraps the stack)
        _skip_under_root_path(app, urls)
        app.state.tradeobs_instrumented = True
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    _remember_spans(app)  # added first: inside the OpenTelemetryMiddleware added next (the last added is outermost)
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=excluded,
        default_span_details=route_span_details,
        tracer_provider=tp,
        meter_provider=mp,
        exclude_spans=["receive", "send"],
    )
    _skip_under_root_path(app, urls)
    return app


def route_span_details(scope: Any) -> tuple[str, dict[str, str]]:
    """A Starlette app's server span name and ``http.route``: the matched route's template (``GET /orders/{oid}``,
    through ``Mount``s: ``/admin/items/{item_id}``), the method alone when no route matches (a scanner's made-up
    paths). The ASGI instrumentation's own names a span by its raw path (``GET /orders/123``), a name per order id
    and per made-up path, and gives its duration points no ``http.route`` (FastAPI's instrumentation does this)."""
    from opentelemetry.util.http import sanitize_method

    method = sanitize_method(str(scope.get("method", "")).strip())
    if method == "_OTHER":
        method = "HTTP"
    route = _route_template(scope)
    if route is None:
        return method or str(scope.get("type", "")), {}
    return (f"{method} {route}" if method else route), {"http.route": route}


def _through_mounts(
    details: Callable[[Any], tuple[str, dict[str, Any]]],
) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    """``details`` (FastAPI's instrumentation names a request to a mounted app by the mount's path: ``GET /admin``
    for every route of an admin app mounted there), with the template of the route matched inside the mount:
    ``GET /admin/items/{item_id}``."""

    def through_mounts(scope: Any) -> tuple[str, dict[str, Any]]:
        name, attributes = details(scope)
        route = attributes.get("http.route")
        if isinstance(route, str) and route:
            full = _route_template(scope)
            if full is not None and full.startswith(route.rstrip("/") + "/"):
                method = name[: -len(route)].rstrip() if name.endswith(route) else ""
                return (f"{method} {full}" if method else full), {**attributes, "http.route": full}
        return name, attributes

    return through_mounts


def _route_template(scope: Any) -> str | None:
    from starlette.routing import Match

    app = scope.get("app")
    routes = getattr(app, "routes", None)
    prefix, current = "", dict(scope)
    for _ in range(16):  # nested mounts
        if not routes:
            return None
        found = partial = None
        for route in routes:
            matches = getattr(route, "matches", None)
            if matches is None:  # not a route (FastAPI >= 0.137 nests included routers in nodes without one)
                continue
            match, child = matches(current)
            if match == Match.FULL:
                found = (route, child)
                break
            if match == Match.PARTIAL and partial is None:
                partial = (route, child)  # the path matches, the method does not (a 405)
        found = found or partial
        if found is None:
            return None
        route, child = found
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        sub = getattr(route, "routes", None)
        if not sub or not hasattr(route, "app"):  # a route, or a mount of an app without routes (static files)
            return prefix + path if path else prefix or None
        prefix += path
        current = {**current, **child}
        routes = sub
    return prefix or None


def _skip_under_root_path(app: Any, urls: Sequence[str]) -> None:
    """The excluded paths, also under the root path the app is served at (``uvicorn --root-path /api`` behind a proxy
    that strips ``/api``, ``FastAPI(root_path=...)``): the instrumentation matches its exclusions against the full
    URL, whose path begins with the root path (ASGI), so ``/api/health`` and ``/api/telemetry/stream`` were traced and
    counted (a live stream an active request for as long as it stays open). Each request's path is taken relative
    to its ``root_path`` and compared with the excluded paths; one that matches skips the instrumentation."""
    paths = tuple(u.rstrip("/") for u in urls if u.startswith("/"))
    holder = getattr(app.build_middleware_stack, "_tradeobs_excluded", None)
    if isinstance(holder, list):  # instrument_app() again: the wrapper stays, with this call's paths
        holder[:] = paths
        app.middleware_stack = None
        return
    excluded = list(paths)
    build = app.build_middleware_stack

    def skip(scope: Any) -> bool:
        if scope.get("type") not in ("http", "websocket"):
            return False
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return any(path == p or path.startswith(p + "/") for p in excluded if p)

    def build_skipping() -> Any:
        stack = build()
        otel_private.server_span_details(stack, _through_mounts)
        return otel_private.skip_server_spans(stack, skip)

    build_skipping._tradeobs_excluded = excluded  # type: ignore[attr-defined]
    app.build_middleware_stack = build_skipping
    app.middleware_stack = None  # built again at the first request


def _live_mounts(app: Any) -> list[str]:
    """The paths where ``app`` mounts a live view (``live.create_app()``), at the top level. The live package sits
    above this module: its class is looked up where it was loaded (a live view exists only once it is)."""
    live_app = sys.modules.get("tradeobs_agent.live.app")
    if live_app is None:
        return []
    out = []
    for route in getattr(app, "routes", ()):
        if isinstance(getattr(route, "app", None), live_app.LiveApp):
            path = getattr(route, "path", "")
            if isinstance(path, str) and path.startswith("/"):
                out.append(path)
    return out
