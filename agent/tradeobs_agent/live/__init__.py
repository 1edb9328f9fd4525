"""The live view: a 10 Hz Server-Sent Events stream of the trading state, and a dashboard page.

>>> import tradeobs_agent.live
>>> app.mount("/telemetry", tradeobs_agent.live.create_app())   # doctest: +SKIP
>>> tradeobs_agent.live.run("127.0.0.1", 8765)                   # doctest: +SKIP
>>> live = tradeobs_agent.live.start("127.0.0.1", 8765)          # doctest: +SKIP  (in a notebook)

See ``docs/live.md`` for the protocol, the security model and the load benchmark.
"""

from __future__ import annotations

from .app import STATIC_DIR, create_app, http_protocol, run, serve, start
from .auth import make_token, verify_token
from .hub import LiveHub

__all__ = [
    "STATIC_DIR",
    "LiveHub",
    "create_app",
    "http_protocol",
    "make_token",
    "run",
    "serve",
    "start",
    "verify_token",
]
