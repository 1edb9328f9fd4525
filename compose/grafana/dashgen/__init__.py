"""The Grafana dashboards of the compose stack, as code (grafana-foundation-sdk).

>>> import dashgen                                      # doctest: +SKIP
>>> sorted(dashgen.render_all())                        # doctest: +SKIP
['order-drilldown.json', 'pipeline-health.json', 'trading-overview.json']

A tool for us, not part of the installed package: ``python compose/grafana/generate.py``
writes ``compose/grafana/dashboards/*.json`` (committed; Grafana provisions them from
there) and ``--check`` fails when the committed files differ from what this code
generates. The SDK release is pinned in ``pyproject.toml`` (extra ``dashboards``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from . import order_drilldown, pipeline_health, trading_overview

__all__ = ["DASHBOARDS", "render", "render_all"]

# File name -> the function building that dashboard.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "trading-overview.json": trading_overview.build,
    "order-drilldown.json": order_drilldown.build,
    "pipeline-health.json": pipeline_health.build,
}


def render(build: Callable[[], Dashboard]) -> str:
    """One dashboard as the JSON text Grafana provisions (stable: sorted keys, 2-space indent)."""
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    """``{file name: JSON text}`` for every dashboard."""
    return {name: render(build) for name, build in DASHBOARDS.items()}
