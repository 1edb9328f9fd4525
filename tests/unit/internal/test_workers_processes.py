"""Multi-process mode with real processes: fork and multiprocessing children that call init(), a process that
forks after init(), and a worker that cannot join (it serves alone and says so once)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tradeobs_agent
from tests._util import free_port, prom_samples, wait_for
from tradeobs_agent import LogOptions, PrometheusOptions

SCRIPT = Path(__file__).with_name("workers_script.py")
pytestmark = pytest.mark.integration


def _run(scenario: str, tmp_path: Path) -> dict[str, object]:
    return _run_full(scenario, tmp_path)[0]


@pytest.mark.parametrize("scenario", ["mp-fork", "mp-spawn", "os-fork"])
def test_children_that_call_init_share_one_endpoint(scenario: str, tmp_path: Path) -> None:
    got = _run(scenario, tmp_path)
    assert got["total"] == 6  # 1 + 2 + 3, one endpoint for the three children
    assert got["leaders"] == 1 and got["pids"] == got["children"]
    assert got["exitcodes"] == [0, 0, 0]
    # the leader's endpoint keeps the DNS rebinding guard and the children's prometheus_allowed_hosts
    if scenario != "os-fork":
        assert got["hosts"] == {"localhost": 200, "desk-box": 200, "rebind.attacker.example": 403}


def test_a_process_that_forks_after_init_counts_each_order_once(tmp_path: Path) -> None:
    got = _run("init-then-fork", tmp_path)
    assert got["total"] == 25  # the parent's 5 and each child's own 10: the inherited 5 is not counted again
    assert got["parent_leads"] is True  # it already served the endpoint: it leads
    assert got["after"]["total"] == 25  # type: ignore[index]
    assert got["exitcodes"] == [0, 0]


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_process_that_starts_spawn_children_after_init_leads_them(method: str, tmp_path: Path) -> None:
    """No fork in the parent (a new interpreter, or a fork of the fork server): before, the children formed a group
    of their own, whose leader could not bind the port the parent served, and only the parent's 5 were on it."""
    got = _run(f"init-then-{method}", tmp_path)
    assert got["total"] == 25 and got["parent_leads"] is True  # the parent's 5 and each child's 10, on its endpoint
    assert got["after"]["total"] == 25  # type: ignore[index]
    assert got["exitcodes"] == [0, 0]


def _run_full(scenario: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """``_run``, with the stderr the children share with the parent."""
    port = free_port()
    out = subprocess.run(
        [sys.executable, str(SCRIPT), scenario, str(port), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_workers_that_disagree_on_a_contract_multiplier_are_counted_and_said_once(tmp_path: Path) -> None:
    """Two workers declared ESZ6's multiplier (50) at start-up, the third forgot: it reported its ES position at 1x
    among the others' 50x, and the service's notional and exposure added both up with nothing said. The group now
    counts it (``tradeobs_agent_workers_mismatched_total{reason="multiplier"}``) and says it once, naming the
    symbol, each value and the workers' pids."""
    got, err = _run_full("contracts", tmp_path)
    assert got["multiplier_mismatched"] >= 1, got
    said = [line for line in err.splitlines() if "disagree on the contract multiplier of 'ESZ6'" in line]
    assert len(said) == 1, err  # said once, by whichever member read the others' snapshots first
    # the workers that had published when it was said: the forgetful one and one or both of the others (a loaded
    # machine can have the first comparison made before the third worker's first snapshot; it is said only once)
    assert f"1 (not declared) in pid {got['forgot']}" in said[0], said
    fifty = re.search(r"50 in pid (\d+(?:, \d+)*)", said[0])
    assert fifty is not None and set(map(int, fifty.group(1).split(", "))) <= set(got["declared"]), said


def test_forked_pool_workers_that_never_call_init_count_on_the_parents_endpoint(tmp_path: Path) -> None:
    """Pool and ProcessPoolExecutor workers forked after init(): every task's count and log line is kept. Before,
    a Pool ended by its with block (terminate(): SIGTERM to workers already exiting) lost some, uncounted: the
    agent's SIGTERM handler found no running agent (its exit's shutdown had begun) and ended the worker in the
    middle of that shutdown (measured: 3 to 7 of 9 counted in 2 of 6 runs; 17 of 20 in 5 pools)."""
    got, _ = _run_full("pool-fork", tmp_path)
    assert got["total"] == 17  # the parent's 1 and the 16 tasks'
    assert got["log_lines"] == 16


def test_a_sigterm_during_a_childs_shutdown_lets_it_finish(tmp_path: Path) -> None:
    """The child counts 10 during its own shutdown() and gets SIGTERM then. Before, it was killed at once (10 lost,
    nothing said); now its shutdown finishes and the signal then ends it, with SIGTERM's exit status."""
    got, _ = _run_full("sigterm-in-shutdown", tmp_path)
    assert got["told"] is True
    assert got["total"] == 15
    assert got["exitcode"] == -15


_SAID = "records with tradeobs without calling init() itself"


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_spawn_child_that_records_without_init_says_so_once(method: str, tmp_path: Path) -> None:
    """A spawn or forkserver child has no agent: what it records is dropped. Before, silently; now each such child
    says once, on stderr, what it dropped and to call init() (a child whose initializer calls it joins the group
    and says nothing), and the parent counts each in ``tradeobs_agent_children_uninitialised_total`` on its
    /metrics (before, the stderr line was all: a pool's stderr is easily never read)."""
    got, err = _run_full(f"pool-{method}", tmp_path)
    said = [line for line in err.splitlines() if _SAID in line]
    pids = got["uninitialised"]
    assert sorted(int(line.split("pid ", 1)[1].split(",", 1)[0]) for line in said) == sorted(pids), err
    for line in said:
        assert f"started with {method!r}" in line and "service 'workers-script'" in line, line
        assert "1 series of 1 instruments (orders)" in line and "call tradeobs_agent.init() in the child" in line
        assert "Counted in tradeobs_agent_children_uninitialised_total on the parent's /metrics" in line, line
    assert got["children_uninitialised"] == len(pids)  # each child once, the initialised one not
    if method == "spawn":
        assert got["total"] == 3 and len(got["joined"]) == 1  # the initialised child's 2 tasks, on the endpoint
    else:
        assert got["total"] == 1


def test_when_the_process_that_forked_after_init_exits_a_child_serves_the_endpoint(tmp_path: Path) -> None:
    """The parent led the group and served the port; its children must not keep a copy of its listening socket,
    or the child that takes over cannot listen there and a scrape hangs in a backlog nobody accepts."""
    port = free_port()
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "parent-exits", str(port), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
    children = [int(p) for p in got.get("children", [])]
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        assert got["total"] == 25 and got["parent_led"] is True
        # The parent is gone: one of its children leads and serves the same port, with the same total.
        url = f"http://127.0.0.1:{port}/metrics"

        def served() -> dict[str, list[Any]] | None:
            try:
                samples = prom_samples(url)
            except OSError:
                return None
            leaders = [s for s in samples.get("tradeobs_agent_workers_leader", []) if s.value == 1]
            total = sum(s.value for s in samples.get("orders_total", []))
            return samples if total == 25 and len(leaders) == 1 else None

        samples = wait_for(served, "a child serving the endpoint with the total of 25", limit=30)
        (leader,) = [s for s in samples["tradeobs_agent_workers_leader"] if s.value == 1]
        assert int(leader.labels["pid"]) in children
    finally:
        (tmp_path / "stop").touch()
        wait_for(lambda: not any(_running(p) for p in children), "the children to stop", limit=30)
    logs = "".join(f.read_text() for f in tmp_path.glob("child-*.log"))
    assert "Traceback" not in logs and "internal error" not in logs, logs


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (an exited orphan may stay a zombie until init reaps it: not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def test_a_worker_that_cannot_join_serves_alone_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    (shared / f"tradeobs-{os.getuid()}").mkdir(parents=True)
    os.chmod(shared / f"tradeobs-{os.getuid()}", 0o777)  # others could plant files: not trusted
    monkeypatch.setenv("TRADEOBS_MULTIPROCESS", "on")
    monkeypatch.setenv("TRADEOBS_MULTIPROCESS_DIR", str(shared))
    port = free_port()
    with caplog.at_level(logging.WARNING, "tradeobs"):
        agent = tradeobs_agent.init(
            service_name="alone",
            otlp=False,
            live=False,
            logs=LogOptions(dir=""),
            prometheus=PrometheusOptions(host="127.0.0.1", port=port),
        )
        tradeobs_agent.counter("orders").bind().add(3)
        assert agent.group is None and agent.prometheus is not None
        assert prom_samples(f"http://127.0.0.1:{port}/metrics")["orders_total"][0].value == 3
        r, w = os.pipe()
        pid = os.fork()  # a fork after init() tries to form a group in the same directory: said once more?
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)
    said = [r for r in caplog.records if "cannot join" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert "open to other users" in said[0].getMessage() and "TRADEOBS_MULTIPROCESS_DIR" in said[0].getMessage()


def test_a_single_process_has_no_group_and_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOBS_MULTIPROCESS_DIR", str(tmp_path))
    agent = tradeobs_agent.init(service_name="one", otlp=False, live=False, logs=LogOptions(dir=""), prometheus=False)
    tradeobs_agent.counter("orders").bind().add(1)
    assert agent.group is None
    assert list(tmp_path.iterdir()) == []


def test_on_groups_copies_whose_parent_is_init_by_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd runs each copy of a service (``app@1``, ``app@2``) as a child of pid 1: with ``on`` they are one
    group (named by init's start time), not each a group of its own."""
    import importlib

    d = importlib.import_module(
        "tradeobs_agent._internal.workers.detect"
    )  # the module (the package exports the function)
    monkeypatch.setattr(d.os, "getppid", lambda: 1)
    key = d.detect("on")
    assert key is not None and (key.kind, key.pid, key.start) == ("setting", 1, d.process_start(1))
    assert d.detect("auto") is None  # detection alone never groups by init: there it means the parent died
