"""A quant's notebook, in a real Jupyter kernel (ipykernel, driven cell by cell with jupyter_client): the live view
served from the kernel's own running event loop, and what ``live.run()`` says there.

Before (measured 2026-12-06, ipykernel 7.4, uvicorn 0.55): ``tradeobs_agent.live.run()`` in a cell failed with
uvloop's ``RuntimeError: Cannot run the event loop while another loop is running`` and a ``RuntimeWarning: coroutine
'Loop.shutdown_asyncgens' was never awaited``, and nothing in the docs said how to serve the live view from a
notebook. A bare ``uvicorn.Server(...).serve()`` task served it, but cancelled it left the port bound in the kernel.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.manager import KernelManager

from tests._util import free_port, wait_for

AGENT = str(Path(__file__).resolve().parents[2] / "agent")


class Kernel:
    """One real ipykernel process; :meth:`run` executes a cell and returns its stream text and error, as a notebook
    shows them."""

    env: dict[str, str]

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv[0] = sys.executable  # this interpreter, whatever the kernel spec found says
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def send(self, code: str) -> str:
        return str(self.kc.execute(code))

    def outputs(self, msg_id: str, limit: float = 60.0) -> tuple[str, dict[str, Any] | None]:
        text, error = [], None
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=limit)
            except queue.Empty:
                raise AssertionError(f"the cell gave no answer in {limit} s; so far: {''.join(text)}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text.append(content["text"])
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(text), error

    def until_printed(self, msg_id: str, text: str, limit: float = 60.0) -> None:
        while True:
            msg = self.kc.get_iopub_msg(timeout=limit)
            mine = msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
            if mine and text in msg["content"]["text"]:
                return

    def run(self, code: str) -> tuple[str, dict[str, Any] | None]:
        return self.outputs(self.send(code))

    def ok(self, code: str) -> str:
        text, error = self.run(code)
        assert error is None, f"{error['ename']}: {error['evalue']}" if error else ""
        return text

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    env = dict(os.environ)  # TRADEOBS_LOG_DIR: the suite's temporary one (tests/conftest.py)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (AGENT, env.get("PYTHONPATH", "")) if p),
        TRADEOBS_OTLP_ENABLED="false",
        TRADEOBS_PROMETHEUS_PORT=str(free_port()),
        TRADEOBS_MULTIPROCESS="off",
    )
    k = Kernel(tmp_path, env)
    k.env = env
    try:
        k.ok(
            "import asyncio, time, tradeobs_agent, tradeobs_agent.live\nagent = tradeobs_agent.init(service_name='nb')"
        )
        yield k
    finally:
        k.close()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_live_run_in_a_kernel_says_what_works_there(kernel: Kernel) -> None:
    port = free_port()
    text, error = kernel.run(f"tradeobs_agent.live.run('127.0.0.1', {port})")
    assert error is not None and error["ename"] == "RuntimeError", (text, error)
    assert f"tradeobs_agent.live.start('127.0.0.1', {port})" in error["evalue"], error["evalue"]
    assert "was never awaited" not in text  # no asyncio noise next to it
    assert _bindable(port)  # it raised before binding anything


def test_live_view_served_from_the_kernels_loop(kernel: Kernel) -> None:
    port = free_port()
    kernel.ok(f"live = tradeobs_agent.live.start('127.0.0.1', {port})")
    base = f"http://127.0.0.1:{port}"

    def desk() -> dict[str, Any]:
        return dict(json.loads(httpx.get(f"{base}/snapshot", timeout=10).content)["desk"])

    assert desk()["fills"] == 0  # served between cells, by the kernel's own loop
    kernel.ok(
        "tt = tradeobs_agent.TradingTelemetry(strategy='nb', venue='paper')\n"
        "o = tt.order_signal('n1', 'MSFT', 'buy', 1, 100.0); o.submitted(); o.acked('v1'); o.fill(1, 100.0)"
    )
    wait_for(lambda: desk()["fills"] == 1, "the notebook's fill on the live view")

    # The kernel's interrupt still interrupts a cell while the live view serves, and the view goes on after it.
    msg_id = kernel.send("print('looping', flush=True)\nwhile True:\n    time.sleep(0.01)")
    kernel.until_printed(msg_id, "looping")  # an interrupt before the cell runs would interrupt nothing
    kernel.km.interrupt_kernel()
    _, error = kernel.outputs(msg_id)
    assert error is not None and error["ename"] == "KeyboardInterrupt", error
    assert desk()["fills"] == 1

    # A port in use is said in the cell that asked for it.
    _, error = kernel.run(f"tradeobs_agent.live.start('127.0.0.1', {port})")
    assert error is not None and error["ename"] == "OSError" and str(port) in error["evalue"], error

    # Cancelled, it stops cleanly and frees the port: the cell can be run again.
    kernel.ok("live.cancel()\ntry:\n    await live\nexcept asyncio.CancelledError:\n    pass")
    assert _bindable(port)
    kernel.ok(f"live = tradeobs_agent.live.start('127.0.0.1', {port})")
    assert desk()["fills"] == 1
    kernel.ok("live.cancel()")


def test_start_without_a_running_loop_points_to_run() -> None:
    from tradeobs_agent import live

    with pytest.raises(RuntimeError, match=r"live\.run\(\)"):
        live.start("127.0.0.1", free_port())


def test_a_failed_cell_then_a_kernel_restart_is_a_clean_stop(kernel: Kernel) -> None:
    """docs/agent.md, "In a Jupyter notebook": the kernel is an interactive session, so a cell's exception is no crash
    at the kernel's exit; the restart runs shutdown() (open orders end) and frees the Prometheus port."""
    logs = Path(kernel.env["TRADEOBS_LOG_DIR"])
    kernel.ok("tt = tradeobs_agent.TradingTelemetry(strategy='nb', venue='paper')")
    _, error = kernel.run(
        "o = tt.order_signal('r1', 'MSFT', 'buy', 1, 100.0)\n"
        "with tradeobs_agent.correlate(order_id='r1'):\n    o.submitted()\n    1 / 0"
    )
    assert error is not None and error["ename"] == "ZeroDivisionError"
    kernel.km.restart_kernel(now=False)
    kernel.kc.wait_for_ready(timeout=60)
    traces = (logs / "traces.jsonl").read_text()
    assert '"order.id","value":{"stringValue":"r1"}' in traces and '"stringValue":"closed"' in traces
    written = "".join(p.read_text() for p in logs.glob("*.jsonl") if p.name != "traces.jsonl")
    assert "ZeroDivisionError" not in written  # printed in the notebook; no crash record
    port = kernel.env["TRADEOBS_PROMETHEUS_PORT"]
    kernel.ok("import tradeobs_agent\nagent = tradeobs_agent.init(service_name='nb')")
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200


def test_rerunning_the_init_cell_is_quiet_and_an_edited_one_is_said_each_time(kernel: Kernel) -> None:
    """A re-run of the same init() cell loses nothing: before, it printed "init() called again ... Call init() once"
    in the cell, once per process, so the cell edited afterwards to another port was ignored without a word."""
    cell = "agent = tradeobs_agent.init(service_name='nb')"  # the fixture's own init(), run again
    assert "called again" not in kernel.ok(cell)
    assert "called again" not in kernel.ok(cell)
    said = kernel.ok(
        "agent = tradeobs_agent.init(service_name='nb', prometheus=tradeobs_agent.PrometheusOptions(port=0))"
    )
    assert "(prometheus_port differ). Restart the kernel" in said, said
    said = kernel.ok("agent = tradeobs_agent.init(service_name='nb2')")
    assert "service.name 'nb'" in said and "(service_name differ)" in said, said
    assert "called again" not in kernel.ok(cell)


def test_an_interrupt_inside_trading_calls_leaves_the_agent_working(kernel: Kernel) -> None:
    """docs/agent.md, "In a Jupyter notebook": the kernel's interrupt lands inside the agent's calls (a loop that
    does little else); the next cell records, the endpoint answers. Internal errors raise in the kernel (the suite's
    strict mode is inherited), so one would fail the cell."""
    kernel.ok(
        "tt = tradeobs_agent.TradingTelemetry(strategy='nb', venue='paper')\nlog = tradeobs_agent.get_logger('x')"
    )
    msg_id = kernel.send(
        "n = 0\nwhile True:\n"
        "    if n == 100:\n        print('looping', flush=True)  # the interrupt comes amid trading calls\n"
        "    o = tt.order_signal(f'L{n}', 'MSFT', 'buy', 1, 100.0)\n"
        "    with tradeobs_agent.correlate(order_id=f'L{n}'):\n"
        "        o.submitted(); o.acked('v'); log.info('acked'); o.fill(1, 100.0)\n"
        "    n += 1"
    )
    kernel.until_printed(msg_id, "looping")
    kernel.km.interrupt_kernel()
    _, error = kernel.outputs(msg_id)
    assert error is not None and error["ename"] == "KeyboardInterrupt", error
    kernel.ok("o = tt.order_signal('after', 'MSFT', 'buy', 1, 100.0); o.submitted(); o.acked('x'); o.fill(1, 100.0)")
    n = int(kernel.ok("print(n)"))
    port = kernel.env["TRADEOBS_PROMETHEUS_PORT"]

    def filled() -> float:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        return sum(
            float(line.split()[-1]) for line in text.splitlines() if line.startswith("trading_orders_filled_total{")
        )

    wait_for(lambda: filled() >= n + 1, "the interrupted loop's fills and the next cell's")
