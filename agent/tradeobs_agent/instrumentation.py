"""Instrument a FastAPI or Starlette app: one server span per request, W3C ``traceparent`` honoured.

>>> app = FastAPI()                        # doctest: +SKIP
>>> tradeobs_agent.instrument_app(app)     # doctest: +SKIP

Health, metrics and live-stream URLs are excluded: they are polled constantly
and would drown the traces that matter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

DEFAULT_EXCLUDED = ("/healthz", "/readyz", "/livez", "/metrics", "/telemetry")

__all__ = ["DEFAULT_EXCLUDED", "instrument_app"]


def instrument_app(app: Any, *, excluded_urls: Sequence[str] = DEFAULT_EXCLUDED) -> Any:
    """Add OpenTelemetry server instrumentation to ``app`` and return it."""
    from .agent import get_agent

    agent = get_agent()
    tp = agent.tracer_provider if agent is not None else None
    mp = agent.meter_provider if agent is not None else None
    # The instrumentation re.search()es these against the full URL; anchor each path right after the host.
    excluded = ",".join(
        rf"//[^/]+{re.escape(u.rstrip('/'))}(/|\?|$)" if u.startswith("/") else u for u in excluded_urls
    )
    try:
        from fastapi import FastAPI
    except ImportError:  # pragma: no cover - fastapi is a dependency
        FastAPI = None  # type: ignore[assignment,misc]
    if FastAPI is not None and isinstance(app, FastAPI):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=tp, meter_provider=mp, excluded_urls=excluded)
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(OpenTelemetryMiddleware, excluded_urls=excluded, tracer_provider=tp, meter_provider=mp)
    return app
