"""Collector tiers on loopback: per-host agent collectors in front of gateways, each gateway with its own Jaeger.

>>> with start_gateway(tmp / "gw-a", jaeger_a) as a, start_gateway(tmp / "gw-b", jaeger_b) as b:   # doctest: +SKIP
...     with start_agent_collector(tmp / "agent", static=[a.otlp_grpc_endpoint, b.otlp_grpc_endpoint]) as agent:
...         collector_counter(agent.metrics_url, "otelcol_exporter_sent_spans")

Both tiers are the real ``otelcol-tradeobs`` with ``collector/otel-collector-agent.yaml`` and
``collector/otel-collector-gateway.yaml`` (every listener on a free loopback port, as
``procs.start_collector`` does for the single tier).

The DNS resolver (what compose and Kubernetes use) is exercised without touching the machine's
resolver: :class:`HostsFile` is a private ``/etc/hosts`` that the agent collector alone sees (it runs
in its own mount namespace, ``unshare --mount``, with the file bind-mounted over ``/etc/hosts``);
the gateways listen on their own loopback addresses (127.0.0.2, 127.0.0.3, ...) on one port, as
replicas behind one name do. Removing a gateway's line is what compose's and Kubernetes' DNS do
when a replica stops. Go's resolver re-reads the hosts file when it changed (it checks every 5 s).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests._util import prom_samples

from .procs import REPO, CollectorProc, collector_env, start_collector

AGENT_CONFIG = REPO / "collector" / "otel-collector-agent.yaml"
GATEWAY_CONFIG = REPO / "collector" / "otel-collector-gateway.yaml"
DNS_NAME = "gateways.tradeobs.test"

__all__ = [
    "AGENT_CONFIG",
    "DNS_NAME",
    "GATEWAY_CONFIG",
    "HostsFile",
    "collector_counter",
    "start_agent_collector",
    "start_gateway",
]


def start_gateway(
    workdir: Path,
    traces_endpoint: str,
    *,
    grpc_endpoint: str | None = None,
    sampling_percent: float = 10,
    latency_threshold_ms: int = 500,
    decision_wait: str = "5s",
    decision_wait_after_root: str = "1s",
) -> CollectorProc:
    """A gateway (tail sampling) exporting traces to ``traces_endpoint`` and logs to a file."""
    env = collector_env(workdir, traces_endpoint)
    if grpc_endpoint:
        env["TRADEOBS_OTLP_GRPC_ENDPOINT"] = grpc_endpoint
    env.update(
        {
            "TRADEOBS_TAIL_SAMPLING_PERCENT": f"{sampling_percent:g}",
            "TRADEOBS_TAIL_LATENCY_THRESHOLD_MS": str(latency_threshold_ms),
            "TRADEOBS_TAIL_DECISION_WAIT": decision_wait,
            "TRADEOBS_TAIL_DECISION_WAIT_AFTER_ROOT": decision_wait_after_root,
        }
    )
    return start_collector(workdir, traces_endpoint, config=GATEWAY_CONFIG, env=env)


class HostsFile:
    """A private /etc/hosts for one process: ``name -> [addresses]``, rewritten in place (a bind mount
    follows the inode, so the file is truncated and written, never replaced)."""

    def __init__(self, path: Path, name: str, addresses: list[str]) -> None:
        self.path = path
        self.name = name
        self.write(addresses)

    def write(self, addresses: list[str]) -> None:
        lines = ["127.0.0.1 localhost", *(f"{a} {self.name}" for a in addresses)]
        with open(self.path, "w") as f:  # truncate + write: same inode
            f.write("\n".join(lines) + "\n")

    def wrap(self) -> tuple[str, ...]:
        """argv prefix: run the command in its own mount namespace with this file as /etc/hosts."""
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.fail("'unshare' (util-linux) not found: the DNS resolver test needs it", pytrace=False)
        return (unshare, "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(self.path))


def start_agent_collector(
    workdir: Path,
    *,
    static: list[str] | None = None,
    dns: tuple[HostsFile, int] | None = None,
    dns_interval: str = "1s",
    retry_max_elapsed: str | None = None,
) -> CollectorProc:
    """The per-host agent collector routing to the gateways: a ``static`` list of host:port, or the
    ``dns`` resolver on (hosts file, port)."""
    # collector_env's trace-store and log settings are not read by the agent config (no such exporters).
    env = collector_env(workdir, "127.0.0.1:1")
    wrap: tuple[str, ...] = ()
    if static is not None:
        env["TRADEOBS_GATEWAY_RESOLVER"] = "static"
        env["TRADEOBS_GATEWAY_ENDPOINTS"] = "[" + ", ".join(static) + "]"
    elif dns is not None:
        hosts, port = dns
        env.update(
            {
                "TRADEOBS_GATEWAY_RESOLVER": "dns",
                "TRADEOBS_GATEWAY_DNS_NAME": hosts.name,
                "TRADEOBS_GATEWAY_DNS_PORT": str(port),
                "TRADEOBS_GATEWAY_DNS_INTERVAL": dns_interval,
            }
        )
        wrap = hosts.wrap()
    else:
        raise ValueError("start_agent_collector: give static=[...] or dns=(hosts, port)")
    if retry_max_elapsed:
        env["TRADEOBS_GATEWAY_RETRY_MAX_ELAPSED"] = retry_max_elapsed
    return start_collector(workdir, "127.0.0.1:1", config=AGENT_CONFIG, env=env, wrap=wrap)


def collector_counter(metrics_url: str, name: str, **labels: str) -> float:
    """Sum of the collector self-telemetry samples ``name`` (or ``name_total``) whose labels include ``labels``."""
    samples = prom_samples(f"{metrics_url}/metrics")
    total = 0.0
    for sample_name in (name, f"{name}_total"):
        for s in samples.get(sample_name, []):
            if all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
