"""The demo paper-trading service: the main job on a bare machine, and the workload tests drive.

>>> from tradeobs_agent.demo import create_app, DemoConfig
>>> app = create_app(DemoConfig(symbols=10, tick_hz=20))   # doctest: +SKIP

``tradeobs demo`` runs it with uvicorn; gunicorn can run the factory, in several workers that share one
Prometheus endpoint and live view: ``gunicorn -w 4 -k uvicorn_worker.UvicornWorker 'tradeobs_agent.demo:create_app()'``.
"""

from __future__ import annotations

from .app import create_app
from .engine import DemoConfig, TradingEngine

__all__ = ["DemoConfig", "TradingEngine", "create_app"]
