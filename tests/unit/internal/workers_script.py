"""Processes for test_workers_processes.py: ``python workers_script.py <scenario> <prometheus port> <dir>``.

Scenarios (each prints one JSON line: what the parent scraped):

* ``mp-fork`` / ``mp-spawn``: the parent never calls ``init()``; 3 ``multiprocessing`` children do, and count
  1, 2 and 3 orders;
* ``os-fork``: the same with ``os.fork()`` (the parent imported tradeobs, so a child knows it was forked);
* ``init-then-fork``: the parent calls ``init()``, counts 5, then forks 2 children that count 10 each (they
  inherit the parent's 5, which they must not count again).
* ``init-then-spawn`` / ``init-then-forkserver``: the parent calls ``init()``, counts 5, then starts 2
  ``multiprocessing`` children with that start method, which call ``init()`` and count 10 each;
* ``parent-exits``: as ``init-then-fork``, but the parent (the group's leader, serving the endpoint) exits once
  it scraped 25 and leaves its children running (each writes its output to ``child-<pid>.log`` and stops when
  the file ``stop`` appears in the directory); the test scrapes them after.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import tradeobs_agent
from tradeobs_agent import LogOptions, PrometheusOptions


def _init(port: int) -> Any:
    return tradeobs_agent.init(
        service_name="workers-script",
        otlp=False,
        live=False,
        logs=LogOptions(dir=""),
        prometheus=PrometheusOptions(host="127.0.0.1", port=port),
    )


def _scrape(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    total = sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith("orders_total{"))
    leaders = [x for x in text.splitlines() if x.startswith("tradeobs_agent_workers_leader{") and x.endswith(" 1.0")]
    pids = {
        x.split('pid="')[1].split('"')[0] for x in text.splitlines() if x.startswith("tradeobs_agent_workers_leader{")
    }
    return {"total": total, "leaders": len(leaders), "pids": sorted(pids)}


def _until(port: int, cond: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = _scrape(port)
        if last is not None and cond(last):
            return last
        time.sleep(0.1)
    raise SystemExit(f"timed out; last scrape {last}")


def _child(port: int, n: int, stop: Any) -> None:
    _init(port)
    tradeobs_agent.counter("orders").bind(kind="child").add(n)
    stop.wait(120)
    tradeobs_agent.shutdown()


def _status(port: int, host: str) -> int:
    """A scrape's status with ``Host: host`` (the leader's DNS rebinding guard: prometheus_allowed_hosts)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.putrequest("GET", "/metrics", skip_host=True)
        c.putheader("Host", f"{host}:{port}")
        c.endheaders()
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def children(method: str, port: int) -> None:
    os.environ["TRADEOBS_PROMETHEUS_ALLOWED_HOSTS"] = "desk-box"  # the children's setting, whichever leads
    ctx = multiprocessing.get_context(method)
    stop = ctx.Event()
    procs = [ctx.Process(target=_child, args=(port, n, stop)) for n in (1, 2, 3)]
    for p in procs:
        p.start()
    try:
        got = _until(port, lambda s: s["total"] == 6 and len(s["pids"]) == 3)
        got["hosts"] = {h: _status(port, h) for h in ("localhost", "desk-box", "rebind.attacker.example")}
    finally:
        stop.set()
        for p in procs:
            p.join(30)
    print(json.dumps({**got, "children": sorted(str(p.pid) for p in procs), "exitcodes": [p.exitcode for p in procs]}))


def os_fork(port: int) -> None:
    r, w = os.pipe()
    pids = []
    for n in (1, 2, 3):
        pid = os.fork()
        if pid == 0:
            os.close(w)
            _init(port)
            tradeobs_agent.counter("orders").bind(kind="child").add(n)
            os.read(r, 1)  # until the parent closes its end
            tradeobs_agent.shutdown()
            os._exit(0)
        pids.append(pid)
    os.close(r)
    try:
        got = _until(port, lambda s: s["total"] == 6 and len(s["pids"]) == 3)
    finally:
        os.close(w)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    print(json.dumps({**got, "children": sorted(str(p) for p in pids), "exitcodes": codes}))


def init_then_fork(port: int) -> None:
    agent = _init(port)
    orders = tradeobs_agent.counter("orders").bind(kind="x")
    orders.add(5)
    r, w = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os.close(w)
            orders.add(10)  # the child inherited 5: only these 10 are its own
            os.read(r, 1)
            tradeobs_agent.shutdown()
            os._exit(0)
        pids.append(pid)
    os.close(r)
    try:
        got = _until(port, lambda s: s["total"] == 25 and len(s["pids"]) == 3)
    finally:
        os.close(w)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    after = _until(port, lambda s: len(s["pids"]) == 1)  # the children exited: their counts stay
    print(json.dumps({**got, "after": after, "exitcodes": codes, "parent_leads": agent.group.leader}))


def init_then_start(method: str, port: int) -> None:
    agent = _init(port)
    tradeobs_agent.counter("orders").bind(kind="parent").add(5)
    ctx = multiprocessing.get_context(method)
    stop = ctx.Event()
    procs = [ctx.Process(target=_child, args=(port, 10, stop)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        got = _until(port, lambda s: s["total"] == 25 and len(s["pids"]) == 3)
    finally:
        stop.set()
        for p in procs:
            p.join(30)
    after = _until(port, lambda s: len(s["pids"]) == 1)  # the children exited: their counts stay
    leads = agent.group is not None and agent.group.leader
    print(json.dumps({**got, "after": after, "exitcodes": [p.exitcode for p in procs], "parent_leads": leads}))


def parent_exits(port: int, base: str) -> None:
    agent = _init(port)
    orders = tradeobs_agent.counter("orders").bind(kind="x")
    orders.add(5)
    stop = Path(base) / "stop"
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            out = os.open(Path(base) / f"child-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(out, 1)
            os.dup2(out, 2)
            orders.add(10)
            deadline = time.monotonic() + 120
            while not stop.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            tradeobs_agent.shutdown()
            os._exit(0)
        pids.append(pid)
    got = _until(port, lambda s: s["total"] == 25 and len(s["pids"]) == 3)
    leads = agent.group.leader
    tradeobs_agent.shutdown()
    print(json.dumps({**got, "children": sorted(str(p) for p in pids), "parent_led": leads}))


if __name__ == "__main__":
    scenario, port, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.environ["TRADEOBS_MULTIPROCESS_DIR"] = base
    if scenario in ("mp-fork", "mp-spawn"):
        children(scenario[3:], port)
    elif scenario == "os-fork":
        os_fork(port)
    elif scenario in ("init-then-spawn", "init-then-forkserver"):
        init_then_start(scenario.rsplit("-", 1)[1], port)
    elif scenario == "parent-exits":
        parent_exits(port, base)
    else:
        init_then_fork(port)
