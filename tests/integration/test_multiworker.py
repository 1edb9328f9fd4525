"""The documented multi-worker pattern, for real: ``uvicorn --workers 2 --factory tradeobs_agent.demo:create_app``.

Each worker calls the factory after the fork, so each runs its own agent and exports with its
own ``service.instance.id``; through the real collector, Prometheus sees one ``job`` (the
service) with two ``instance`` labels, and the request and order traces reach Jaeger from both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .agent_proc import agent_env, unique_service
from .procs import ManagedProcess, Stack, free_port, http_get, prometheus_query


@pytest.mark.integration
def test_two_uvicorn_workers_export_as_two_instances(stack: Stack, tmp_path: Path) -> None:
    service = unique_service("workers")
    port = free_port()
    env = agent_env(stack.collector, tmp_path, service)
    env.update({"TRADEOBS_DEMO_SYMBOLS": "2", "TRADEOBS_DEMO_TICK_HZ": "5", "TRADEOBS_DEMO_ORDERS_HZ": "5"})
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "tradeobs_agent.demo:create_app",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = ManagedProcess("uvicorn-workers", argv, env, tmp_path)
    try:
        promql = f'count by (instance) (trading_orders_submitted_total{{job="{service}"}})'
        instances = stack.wait_for(
            lambda: (r := prometheus_query(stack.prometheus_url, promql)) and len(r) >= 2 and r,
            f"two worker instances of {service} in Prometheus",
        )
        ids = {s["metric"]["instance"] for s in instances}
        assert len(ids) == 2, ids
        # Both workers answer HTTP on the shared port.
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        info = prometheus_query(stack.prometheus_url, f'target_info{{job="{service}"}}')
        pids = {s["metric"].get("process_pid") for s in info}
        assert len(pids) == 2 and None not in pids, info
    finally:
        proc.stop()
    log = tmp_path / "uvicorn-workers.log"
    text = log.read_text() if log.exists() else ""
    assert "Traceback" not in text, text[-3000:]
