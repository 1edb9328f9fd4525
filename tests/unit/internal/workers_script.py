"""Processes for test_workers_processes.py: ``python workers_script.py <scenario> <prometheus port> <dir>``.

Scenarios (each prints one JSON line: what the parent scraped):

* ``mp-fork`` / ``mp-spawn``: the parent never calls ``init()``; 3 ``multiprocessing`` children do, and count
  1, 2 and 3 orders;
* ``os-fork``: the same with ``os.fork()`` (the parent imported tradeobs, so a child knows it was forked);
* ``init-then-fork``: the parent calls ``init()``, counts 5, then forks 2 children that count 10 each (they
  inherit the parent's 5, which they must not count again).
* ``init-then-spawn`` / ``init-then-forkserver``: the parent calls ``init()``, counts 5, then starts 2
  ``multiprocessing`` children with that start method, which call ``init()`` and count 10 each;
* ``pool-fork``: the parent calls ``init()`` and counts 1, then runs tasks (each counts 1 and logs a line) in
  ``Pool`` (3 times, each ended by its ``with`` block: ``terminate()``) and ``ProcessPoolExecutor`` forked
  workers that never call ``init()``; the parent scrapes 17 and counts the log lines;
* ``sigterm-in-shutdown``: the parent calls ``init()`` and counts 5; a forked child counts 10 while its own
  ``shutdown()`` runs, and is sent SIGTERM then (as ``Pool.terminate()`` does to a worker that is exiting);
* ``pool-spawn`` / ``pool-forkserver``: the parent calls ``init()`` and counts 1, then runs 2 tasks in each of a
  ``ProcessPoolExecutor`` and (spawn only) a ``Pool`` of 1 worker that never calls ``init()``, and (spawn only)
  a ``ProcessPoolExecutor`` whose initializer calls it; the parent scrapes what it can;
* ``contracts``: 3 ``spawn`` children hold one ESZ6 each; two declared its multiplier (50) at start-up, the third
  forgot; the parent scrapes until the group counts the disagreement (``workers_mismatched{reason="multiplier"}``);
* ``parent-exits``: as ``init-then-fork``, but the parent (the group's leader, serving the endpoint) exits once
  it scraped 25 and leaves its children running (each writes its output to ``child-<pid>.log`` and stops when
  the file ``stop`` appears in the directory); the test scrapes them after.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import sys
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import tradeobs_agent
from tradeobs_agent import LogOptions, PrometheusOptions


def _init(port: int, logs: str = "") -> Any:
    return tradeobs_agent.init(
        service_name="workers-script",
        otlp=False,
        live=False,
        logs=LogOptions(dir=logs),
        prometheus=PrometheusOptions(host="127.0.0.1", port=port),
    )


def _init_from_env() -> None:
    """A pool's initializer in a spawn child: the parent's settings, from the environment it inherited."""
    _init(int(os.environ["WORKERS_SCRIPT_PORT"]))


def _task(i: int) -> int:
    tradeobs_agent.counter("orders").bind(kind="task").add(1)
    tradeobs_agent.get_logger("execution").info("pool task %d", i)
    return os.getpid()


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
    mismatched = sum(
        float(x.rsplit(" ", 1)[1])
        for x in text.splitlines()
        if x.startswith("tradeobs_agent_workers_mismatched_total{") and 'reason="multiplier"' in x
    )
    uninitialised = sum(
        float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith("tradeobs_agent_children_uninitialised")
    )
    return {
        "total": total,
        "leaders": len(leaders),
        "pids": sorted(pids),
        "multiplier_mismatched": mismatched,
        "children_uninitialised": uninitialised,
    }


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


def _contract_child(port: int, declare: bool, stop: Any) -> None:
    if declare:  # the start-up code of two workers; the third forgot the contract
        tradeobs_agent.trading.instrument("ESZ6", multiplier=50)
    _init(port)
    tradeobs_agent.TradingTelemetry(strategy="s", venue="cme").position("ESZ6", 1, 5000.0)
    tradeobs_agent.counter("orders").bind(kind="child").add(1)
    stop.wait(120)
    tradeobs_agent.shutdown()


def contracts(port: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=_contract_child, args=(port, declare, stop)) for declare in (True, True, False)]
    for p in procs:
        p.start()
    try:
        got = _until(port, lambda s: s["total"] == 3 and len(s["pids"]) == 3 and s["multiplier_mismatched"] > 0)
    finally:
        stop.set()
        for p in procs:
            p.join(30)
    print(json.dumps({**got, "declared": [procs[0].pid, procs[1].pid], "forgot": procs[2].pid}))


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


def pool_fork(port: int, base: str) -> None:
    logs = Path(base) / "logs"
    _init(port, str(logs))
    tradeobs_agent.counter("orders").bind(kind="parent").add(1)
    ctx = multiprocessing.get_context("fork")
    for _ in range(3):
        with ctx.Pool(2) as pool:  # its end terminates the workers (SIGTERM), which may be exiting already
            pool.map(_task, range(4))
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        list(ex.map(_task, range(4)))
    got = _until(port, lambda s: s["total"] >= 17, timeout=30)
    tradeobs_agent.shutdown()
    lines = sum(f.read_text().count("pool task") for f in logs.glob("*.jsonl"))
    print(json.dumps({**got, "log_lines": lines}))


def _stopping_child(in_shutdown: Any) -> None:
    """Counts 10 while its shutdown runs (a registry flush hook: shutdown() flushes), then tells the parent."""
    armed, done = [], []

    def hook() -> None:
        if armed and not done:
            done.append(1)
            tradeobs_agent.counter("orders").bind(kind="child").add(10)
            in_shutdown.set()
            time.sleep(0.5)  # the parent's SIGTERM comes now

    tradeobs_agent.get_registry().add_flush_hook(hook)
    armed.append(1)
    tradeobs_agent.shutdown()


def sigterm_in_shutdown(port: int) -> None:
    _init(port)
    tradeobs_agent.counter("orders").bind(kind="parent").add(5)
    ctx = multiprocessing.get_context("fork")
    in_shutdown = ctx.Event()
    child = ctx.Process(target=_stopping_child, args=(in_shutdown,))
    child.start()
    told = in_shutdown.wait(60)
    os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]
    child.join(60)
    got = _until(port, lambda s: len(s["pids"]) == 1, timeout=30)  # the child left the group
    print(json.dumps({**got, "told": told, "exitcode": child.exitcode}))


def pool_spawn(method: str, port: int) -> None:
    _init(port)
    tradeobs_agent.counter("orders").bind(kind="parent").add(1)
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(1, mp_context=ctx) as ex:
        pids = set(ex.map(_task, range(2)))
    if method == "spawn":
        pool = ctx.Pool(1)
        pids |= set(pool.map(_task, range(2)))
        pool.close()
        pool.join()
        os.environ["WORKERS_SCRIPT_PORT"] = str(port)
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_from_env) as ex:
            joined = set(ex.map(_task, range(2)))
        expected = 3  # the parent's 1 and the 2 of the child that called init()
    else:
        joined, expected = set(), 1
    # each child that recorded without init() told the parent, which counts it on its /metrics
    got = _until(
        port,
        lambda s: s["total"] >= expected and len(s["pids"]) == 1 and s["children_uninitialised"] >= len(pids),
        timeout=30,
    )
    tradeobs_agent.shutdown()
    print(json.dumps({**got, "uninitialised": sorted(pids), "joined": sorted(joined)}))


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
    elif scenario == "pool-fork":
        pool_fork(port, base)
    elif scenario == "sigterm-in-shutdown":
        sigterm_in_shutdown(port)
    elif scenario in ("pool-spawn", "pool-forkserver"):
        pool_spawn(scenario[5:], port)
    elif scenario == "parent-exits":
        parent_exits(port, base)
    elif scenario == "contracts":
        contracts(port)
    else:
        init_then_fork(port)
