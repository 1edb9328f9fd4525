"""A rolling upgrade to a release that writes a later snapshot format (real gunicorn, workers of both releases).

The shared snapshot's header carries a format number (``wire.FORMAT``), changed only for what an earlier reader
cannot read at all; a release that changes it keeps reading the earlier one (``wire.READS``). The later release here
is this tree copied with that number raised to 2, reading formats 1 and 2 (its files are otherwise this release's:
what such a release reads of the earlier one is this release's decoder), made by the test, without git history.
Each worker imports the agent from the install ``roll_app`` names when gunicorn starts it: two workers of this release,
then one of the later (``SIGTTIN``), then a killed worker of this release replaced by one of the later (the install
changed under the running master, as a deploy does).

Before, the leader of this release stayed the leader: it left the later worker's file out of ``/metrics`` (its 7
requests missing from the totals for as long as any worker of this release led) and counted that file in
``tradeobs_agent_workers_mismatched_total{reason="format"}`` again at each of its publishes. Now a worker of the later
format leads as soon as one is up (the earlier leader hands the lead to it, and the earlier workers do not campaign
while it lives): the totals count every worker, never go down across the switch, and the earlier worker that exits
is folded by the later leader.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .procs import wait_for
from .test_multiworker_shared import _agent_lines, _alive, service
from .test_rolling_deploy import HERE, NEW, Rollout

REQUESTS = "rollout_requests_total"


def later_release(tmp: Path) -> str:
    """This tree's ``agent/`` as a release whose snapshot format is 2 and which still reads format 1."""
    tree = tmp / "later" / "agent"
    shutil.copytree(NEW, tree, ignore=shutil.ignore_patterns("__pycache__"))
    wire = tree / "tradeobs_agent" / "metrics" / "wire.py"
    text = wire.read_text()
    assert "\nFORMAT = 1\n" in text, "wire.FORMAT is not 1 any more: raise the later release's number"
    text = text.replace("\nFORMAT = 1\n", "\nFORMAT = 2\n")
    text = text.replace("READS = frozenset({FORMAT})", "READS = frozenset({1, FORMAT})")
    wire.write_text(text)
    return str(tree)


class Totals:
    """``/metrics`` scraped on a thread every 0.1 s: each answered scrape's requests total and leader."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = self.rollout.total(REQUESTS)
            if total is not None:
                self.seen.append((total, self.rollout.svc.leader()))
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def decreases(self) -> list[tuple[tuple[float, int], tuple[float, int]]]:
        return [(a, b) for a, b in zip(self.seen, self.seen[1:], strict=False) if b[0] < a[0]]


@pytest.fixture
def rollout(tmp_path: Path) -> Iterator[Rollout]:
    tree_file = tmp_path / "tree"
    tree_file.write_text(NEW)
    env = {"ROLL_TREE_FILE": str(tree_file), "TRADEOBS_SERVICE_NAME": "rolling-format"}
    args = ("--pythonpath", str(HERE))
    with service("gunicorn", tmp_path, workers=2, app="roll_app:create_app", args=args, env=env) as svc:
        yield Rollout(svc, tree_file)


def _mismatched_format(rollout: Rollout, pid: int) -> float:
    prefix = "tradeobs_agent_workers_mismatched_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in (rollout.svc.metrics() or "").splitlines()
        if line.startswith(prefix) and f'pid="{pid}"' in line and 'reason="format"' in line
    )


@pytest.mark.integration
def test_a_worker_of_a_later_snapshot_format_leads_and_the_totals_count_both_releases(
    rollout: Rollout, tmp_path: Path
) -> None:
    svc = rollout.svc
    later = later_release(tmp_path)
    olds = wait_for(rollout.answering, "both workers answering")
    assert set(olds.values()) == {NEW}, olds
    first_leader = svc.leader()
    for pid in olds:
        rollout.count(pid, 5)
    wait_for(lambda: rollout.total(REQUESTS) == 10, "the first workers' 10 requests", procs=(svc.proc,))
    totals = Totals(rollout)
    try:
        new = rollout.add_worker(later)
        rollout.count(new, 7)
        # The later worker leads (the earlier leader handed the lead over), and its requests are in the totals.
        wait_for(lambda: svc.leader() == new, f"the later release's worker {new} leading", procs=(svc.proc,))
        wait_for(lambda: rollout.total(REQUESTS) == 17, "17 requests: both releases' workers", procs=(svc.proc,))
        assert any(
            f"hands the lead to pid {new}, a worker of a later tradeobs release" in line
            for line in _agent_lines(tmp_path)
        ), _agent_lines(tmp_path)[-10:]
        # An earlier worker exits (killed): its replacement is of the later release; the later leader folds its counts.
        gone = next(p for p in olds if p != first_leader)
        before = rollout.children()
        os.kill(gone, signal.SIGKILL)
        (repl,) = wait_for(lambda: rollout.children() - before - {gone}, "the replacement", procs=(svc.proc,))
        wait_for(lambda: rollout.workers().get(repl) == later, "the replacement answering", procs=(svc.proc,))
        rollout.count(repl, 3)
        wait_for(lambda: rollout.total(REQUESTS) == 20, "20 requests after the fold", procs=(svc.proc,))
        time.sleep(3)  # the earlier worker that stays publishes meanwhile (every second): it never leads again
        assert svc.leader() in (new, repl)
        assert rollout.total(REQUESTS) == 20
    finally:
        totals.stop()
    assert totals.seen and not totals.decreases(), totals.decreases()[:5]
    # The earlier worker that read the later worker's file counted it at most once (not once per publish).
    assert _mismatched_format(rollout, first_leader) <= 1


@pytest.mark.integration
def test_a_reload_that_moves_the_shared_directory_says_the_new_group_starts_its_totals_again(tmp_path: Path) -> None:
    """gunicorn's ``HUP`` re-reads its config file, ``raw_env`` too: a reload that changes
    ``TRADEOBS_MULTIPROCESS_DIR`` gives the new workers another directory, so another worker group of the same
    master, whose leader finds the port held by the earlier group's leader until that one exits. Before, its line on
    stderr named that leader as "another program, or a single process of this service started before" and said to
    stop the duplicate; now it names it as a worker of this same master in another group, says which settings
    differ, and that this group's totals start again (the /metrics totals measured: 10 orders before the reload, 5
    after the earlier workers were gone)."""
    conf = tmp_path / "gunicorn.conf.py"
    env_file = tmp_path / "raw_env"
    env_file.write_text(f"TRADEOBS_MULTIPROCESS_DIR={tmp_path}\n")
    conf.write_text(f"raw_env = open({str(env_file)!r}).read().split()\n")
    with service("gunicorn", tmp_path, workers=2, args=("-c", str(conf))) as svc:
        svc.orders(10)
        wait_for(lambda: svc.total() == 10, "10 orders on /metrics", procs=(svc.proc,))
        old = svc.worker_pids()
        env_file.write_text(f"TRADEOBS_MULTIPROCESS_DIR={tmp_path / 'moved'}\n")
        os.kill(svc.proc.pid, signal.SIGHUP)

        def said() -> list[str]:
            text = svc.proc.log_path.read_text(errors="replace")
            return [line for line in text.splitlines() if "cannot serve the Prometheus endpoint" in line]

        line = wait_for(said, "the new group's leader saying the port is held", procs=(svc.proc,))[0]
        assert f"a worker of this group's own master (pid {svc.proc.pid}), holds it" in line, line
        assert "TRADEOBS_MULTIPROCESS_DIR or TRADEOBS_SERVICE_NAME (a reload that changed them)" in line, line
        assert "start again from its own workers' counts" in line, line
        assert "another program" not in line, line
        assert list((tmp_path / "moved").glob("tradeobs-*/g-*")), "the new workers' group"
        # ... as it does: once the earlier workers are gone, the new group's leader serves its own counts only
        wait_for(
            lambda: svc.leader() not in (0, *old) and not any(_alive(p) for p in old),
            "the earlier workers gone, a new worker serving /metrics",
            procs=(svc.proc,),
        )
        svc.orders(5)
        wait_for(lambda: svc.total() == 5, "the new group's 5 orders", procs=(svc.proc,))
