"""The metrics store starts at any minute of the day, its pruning minutes included.

Thanos receive prunes idle tenants from a loop that runs once at start and then every minute, but
acts only when the local minute of the day is a multiple of twice the TSDB block duration (2 h, so
every 240 minutes: 00:00, 04:00, ... 20:00). Thanos v0.42.4 (and v0.42.5) then read each tenant's
TSDB without checking that it is open, and a node starts its tenant's TSDB in the background: a
node started in one of those six minutes a day panicked (nil pointer in ``shouldBeMarkedInactive``)
before it was ready. CI once ran at 08:00 UTC and every ``thanos receive`` it started crashed.
scripts/build-thanos.sh now applies scripts/patches/thanos/ (a tenant whose TSDB is not open yet
is not pruned). The nodes here run in a clock zone where it is just past midnight, so they start in
a pruning minute whatever the time of the run; the test checks that pruning did run at start.

The panic is a race between the first pruning pass and the opening of the node's default tenant
(both at start). Measured on the unpatched build: a fresh node survived 7 starts in 42, a node
started again on its data (as tests/integration/test_metrics_store.py restarts one) 2 in 42; the
first version of this test, which started each node once, passed on it 1 attempt in 16. So each
node here starts fresh, then again on its data, each time in a pruning minute: the unpatched build
survives all four starts fewer than once in 10,000 attempts (it failed 16 attempts in 16).
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from .procs import wait_for
from .thanos import ReceiveNode, ThanosStore, local_midnight_zone, start_thanos


def _pruned_at_start(node: ReceiveNode, passes: int) -> None:
    """The node (its ``passes``-th start) ran its pruning pass at start, is up, has not panicked and is ready."""
    assert node.proc is not None
    proc = node.proc

    def log() -> str:
        return proc.log_path.read_text(errors="replace")  # every start of the node appends to it

    # pruning runs at start, beside the opening of the tenant's TSDB: give the pass time to finish (a node that exits
    # meanwhile fails at once, with its log).
    wait_for(
        lambda: log().count("Pruning job completed") >= passes,
        f"node {node.index}'s pruning pass at start {passes}",
        timeout=20,
        interval=0.2,
        procs=(proc,),
    )
    text = log()
    proc.check_alive()
    tail = proc.log_tail()
    assert text.count("Running pruning job") >= passes, f"node {node.index} did not prune at start {passes}:\n{tail}"
    assert text.count("Pruning job completed") >= passes, tail
    assert "panic:" not in text, tail
    with urllib.request.urlopen(f"http://{node.http}/-/ready", timeout=5) as r:
        assert r.status == 200


def _restart_in_a_pruning_minute(store: ThanosStore, node: ReceiveNode, zone_file: Path) -> None:
    node.stop()
    store.env.update(local_midnight_zone(zone_file))  # just past midnight again, however long the run took
    store.restart(node)


def test_receive_nodes_started_in_a_pruning_minute_stay_up_and_ready(tmp_path: Path) -> None:
    env = local_midnight_zone(tmp_path / "zone" / "midnight")
    with start_thanos(tmp_path / "thanos", env=env) as store:
        for n in store.nodes:
            _pruned_at_start(n, 1)
        # started again on its data: the tenant's TSDB is on disk and opens while the first pass runs
        for n in store.nodes:
            _restart_in_a_pruning_minute(store, n, tmp_path / "zone" / f"restart-{n.index}")
            _pruned_at_start(n, 2)
