"""A rolling deploy: workers of two versions of the agent in one worker group (real gunicorn).

The earlier version is ``git archive`` of the commit before the gauge aggregation ``entry`` came (the first change
of the shared snapshot an earlier leader cannot read), as the benchmarks take "the old agent"; the later one is this
tree. Each worker imports the agent from the install ``roll_app`` names when gunicorn starts it, so a worker
gunicorn starts after the test switched installs runs the other version, next to the ones that still run the first
(``SIGTTIN`` asks gunicorn for one worker more; a worker killed is replaced the same way), as happens in a deploy
that changes the installed package under a running master.

* an old leader and a new worker: the new worker's counters and histograms are in the old leader's ``/metrics``
  totals, its positions in the live view, and when it exits its counts stay (folded into the retired totals).
  Before, the old leader refused the new worker's snapshot (an aggregation it did not know: ``entry``), left it
  out of ``/metrics`` and the live view, and when it exited dropped its counts for good.
* a new leader and an old worker (the deploy half done, or a rollback): the old worker's counters, histograms and
  positions are counted, and stay when it exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .procs import wait_for
from .test_multiworker_shared import Service, service

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NEW = str(ROOT / "agent")
# The agent before the gauge aggregation ``entry`` (commit d2c4e8b added it): its leader refuses a snapshot that
# names an aggregation it does not know.
BEFORE_ENTRY = "d2c4e8b^"


@pytest.fixture(scope="module")
def old_agent(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``agent/`` as it was before ``entry`` (``git archive``, as ``benchmarks/_trees.py`` does)."""
    tmp = tmp_path_factory.mktemp("old-agent")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BEFORE_ENTRY, "agent"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    return str(tmp / "agent")


class Rollout:
    """The gunicorn service, and the install its next worker will import."""

    def __init__(self, svc: Service, tree_file: Path) -> None:
        self.svc, self.tree_file = svc, tree_file

    def install(self, tree: str) -> None:
        self.tree_file.write_text(tree)

    def post(self, path: str, doc: dict[str, Any]) -> int:
        """Send ``doc`` until the worker it names (``pid``) takes it; that worker's pid."""
        body = json.dumps(doc).encode()
        for _ in range(400):
            req = urllib.request.Request(
                f"{self.svc.base}{path}", data=body, headers={"content-type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return int(json.loads(r.read())["pid"])
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
        raise AssertionError(f"worker {doc['pid']} never took {path}")

    def count(self, pid: int, n: int) -> None:
        self.post("/count", {"pid": pid, "n": n})

    def book(self, pid: int, positions: list[list[Any]]) -> None:
        self.post("/book", {"pid": pid, "positions": positions})

    def workers(self) -> dict[int, str]:
        """The workers that answered, by pid: the agent directory each imported (asked on new connections until every
        worker gunicorn runs answered, its children, or 200 asked: a worker still starting answers none)."""
        want = self.children()
        seen: dict[int, str] = {}
        for _ in range(200):
            with urllib.request.urlopen(f"{self.svc.base}/whoami", timeout=10) as r:
                doc = json.loads(r.read())
            seen[int(doc["pid"])] = doc["tree"]
            if want <= set(seen):
                break
        return {p: t for p, t in seen.items() if p in want}

    def answering(self) -> dict[int, str] | None:
        """:meth:`workers` once every worker gunicorn runs answered."""
        workers = self.workers()
        return workers if set(workers) == self.children() else None

    def children(self) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(self.svc.proc.pid)], capture_output=True, text=True, check=False)
        return {int(p) for p in out.stdout.split()}

    def add_worker(self, tree: str) -> int:
        """One worker more (``SIGTTIN``), started from ``tree``; its pid once it answers."""
        before = self.children()
        self.install(tree)
        os.kill(self.svc.proc.pid, signal.SIGTTIN)
        new = wait_for(lambda: self.children() - before, "gunicorn's new worker", procs=(self.svc.proc,))
        (pid,) = new
        wait_for(lambda: self.workers().get(pid) == tree, f"worker {pid} answering from {tree}", procs=(self.svc.proc,))
        return pid

    def total(self, name: str) -> float | None:
        return self.svc.total(name)


@pytest.fixture
def rollout(tmp_path: Path, old_agent: str) -> Iterator[Rollout]:
    tree_file = tmp_path / "tree"
    tree_file.write_text(old_agent)
    env = {"ROLL_TREE_FILE": str(tree_file), "TRADEOBS_SERVICE_NAME": "rolling"}
    args = ("--pythonpath", str(HERE))
    with service("gunicorn", tmp_path, workers=2, app="roll_app:create_app", args=args, env=env) as svc:
        yield Rollout(svc, tree_file)


def _group_files(svc: Service, pid: int) -> list[Path]:
    root = Path(svc.proc.workdir)
    return list(root.glob(f"tradeobs-*/g-*/m-{pid}-*.part"))


def _mismatched(svc: Service, reason: str) -> float:
    """The leader's ``tradeobs_agent_workers_mismatched_total`` for ``reason`` (0 when it has none)."""
    lead = f'pid="{svc.leader()}"'
    prefix = "tradeobs_agent_workers_mismatched_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in (svc.metrics() or "").splitlines()
        if line.startswith(prefix) and lead in line and f'reason="{reason}"' in line
    )


def _system_log(svc: Service) -> str:
    return "".join(p.read_text(errors="replace") for p in (Path(svc.proc.workdir) / "logs").glob("system*.jsonl"))


def _rows(svc: Service) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = svc.snapshot().get("symbols", {})
    return rows


@pytest.mark.integration
def test_an_old_leader_counts_a_new_worker_and_keeps_its_counts_when_it_exits(rollout: Rollout, old_agent: str) -> None:
    svc = rollout.svc
    olds = wait_for(rollout.answering, "both workers answering")
    assert set(olds.values()) == {old_agent}, olds
    leader = svc.leader()
    assert leader in olds
    for pid in olds:
        rollout.count(pid, 3)
    wait_for(lambda: rollout.total("rollout_requests_total") == 6, "the old workers' 6 requests", procs=(svc.proc,))

    new = rollout.add_worker(NEW)
    rollout.count(new, 5)
    rollout.book(new, [["NEW", 7.0, 10.0, 9.0]])
    # The old leader counts the new worker: in the totals, the histograms and the live view.
    wait_for(
        lambda: rollout.total("rollout_requests_total") == 11,
        "the new worker's 5 requests in the old leader's totals",
        procs=(svc.proc,),
    )
    assert svc.leader() == leader, "the old worker still leads"
    assert new in svc.worker_pids(), "the new worker's per-process series are on /metrics"
    assert rollout.total("rollout_latency_milliseconds_count") == 11
    wait_for(lambda: _rows(svc).get("NEW", {}).get("pos") == 7.0, "the new worker's position in the live view")

    # The new worker dies: the old leader folds its counts into the retired totals; they never go down.
    assert _group_files(svc, new)
    os.kill(new, signal.SIGKILL)
    wait_for(lambda: not _group_files(svc, new), "the old leader folding the exited new worker", procs=(svc.proc,))
    assert rollout.total("rollout_requests_total") == 11
    assert rollout.total("rollout_latency_milliseconds_count") == 11
    text = Path(svc.proc.log_path).read_text(errors="replace")
    assert "corrupt" not in text, text[-3000:]


@pytest.mark.integration
def test_a_new_leader_counts_an_old_worker_and_keeps_its_counts_when_it_exits(rollout: Rollout, old_agent: str) -> None:
    svc = rollout.svc
    olds = set(wait_for(rollout.answering, "both workers answering"))
    new = rollout.add_worker(NEW)
    # The new worker leads once every old one is gone but one: kill the old leader until a new worker leads (each
    # killed worker's replacement is new too: the install is the new one now).
    for _ in range(6):
        lead = wait_for(svc.leader, "a leader", procs=(svc.proc,))
        if lead not in olds:
            break
        os.kill(lead, signal.SIGKILL)
        wait_for(lambda lead=lead: svc.leader() not in (0, lead), "another leader", procs=(svc.proc,))
    else:
        raise AssertionError("no new worker took the lead")
    workers = rollout.workers()
    old = next((p for p, t in workers.items() if t == old_agent), 0)
    if not old:  # every old worker had led: start one from the old install again (a rollback)
        old = rollout.add_worker(old_agent)
    assert svc.leader() != old and workers.get(svc.leader(), NEW) == NEW
    before = rollout.total("rollout_requests_total") or 0.0
    rollout.count(old, 4)
    rollout.count(new, 2)
    rollout.book(old, [["OLD", 5.0, 20.0, 19.0]])
    wait_for(lambda: rollout.total("rollout_requests_total") == before + 6, "the old worker's requests counted")
    # Said once in the leader's log, and counted: the group mixes releases.
    assert _mismatched(svc, "older") >= 1
    wait_for(
        lambda: "written by an earlier tradeobs release (snapshot revision 1" in _system_log(svc),
        "the new leader saying it merges an earlier release's snapshot",
    )
    wait_for(lambda: _rows(svc).get("OLD", {}).get("pos") == 5.0, "the old worker's position in the live view")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not _group_files(svc, old), "the new leader folding the exited old worker", procs=(svc.proc,))
    assert rollout.total("rollout_requests_total") == before + 6
