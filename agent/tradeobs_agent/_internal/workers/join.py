"""How the agent joins its worker group: the group's endpoint, the SDK's instruments, what a fork inherits.

>>> group = start_group(agent, store, sdk_reader)      # agent.init() in a detected worker   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from ...events import get_bus
from ...metrics import Family, Snapshot
from ..bridge import families_from_otel
from ..providers import PrometheusEndpoint
from .detect import server_leaving, server_replacing
from .group import Endpoint, Group
from .store import Store

__all__ = ["service_resource", "start_group"]

# Attributes of one process, not of the service: left out of the shared endpoint's target_info.
_PER_PROCESS = ("service.instance.id",)


def service_resource(resource: Resource) -> Resource:
    """``resource`` without what names one process (the shared endpoint speaks for every worker)."""
    attrs = {
        k: v for k, v in resource.attributes.items() if k not in _PER_PROCESS and not str(k).startswith("process.")
    }
    return Resource(attrs)


def start_group(
    agent: Any,
    store: Store,
    sdk_reader: InMemoryMetricReader | None,
    *,
    baseline: Snapshot | None = None,
    adopt: PrometheusEndpoint | None = None,
) -> Group:
    """Start this process's member thread. ``adopt``: the endpoint this process already serves (it forked its
    workers after ``init()``), which then serves the whole group while this process leads."""
    settings, registry = agent.settings, agent.registry
    failed = registry.self_metrics.exports_failed

    def endpoint(group: Group) -> Endpoint | None:
        if adopt is not None and not adopt.stopped:
            adopt.renderer.source = group.scrape_snapshot
            adopt.renderer.resource = lambda: service_resource(agent.resource)
            return adopt
        if not settings.prometheus_enabled or agent.reinit:  # an adopted meter provider too: the registry is served
            return None
        ep = PrometheusEndpoint.start(
            settings,
            registry.self_metrics,
            registry,
            source=group.scrape_snapshot,
            group=(store.path.name, store.key.pid, store.key.kind),
        )
        if ep is not None:
            ep.renderer.resource = lambda: service_resource(agent.resource)
            agent.prometheus = ep
        return ep

    def sdk_families() -> Sequence[Family]:
        return families_from_otel(sdk_reader.get_metrics_data()) if sdk_reader is not None else ()

    def on_failure(what: str) -> None:
        failed.add(1, {"signal": "metrics", "exporter": "multiprocess"})

    group = Group(
        store,
        registry,
        get_bus(),
        sdk_families=sdk_families if sdk_reader is not None else None,
        start_endpoint=endpoint,
        on_failure=on_failure,
        baseline=baseline,
        leaving=server_leaving,
        replacing=server_replacing,
        prepare=PrometheusEndpoint.prepare if settings.prometheus_enabled and adopt is None else None,
    )
    group.start()
    return group
