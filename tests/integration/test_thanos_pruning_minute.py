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
"""

from __future__ import annotations

import time
import urllib.request

from .thanos import local_midnight_zone, start_thanos


def test_receive_nodes_started_in_a_pruning_minute_stay_up_and_ready(tmp_path):
    env = local_midnight_zone(tmp_path / "zone" / "midnight")
    with start_thanos(tmp_path / "thanos", env=env) as store:
        # pruning runs at start, in the same goroutine group as the TSDB's opening: give the first
        # pass time to finish, then every node must still be up, ready, and have pruned.
        deadline = time.monotonic() + 20
        logs = {}
        while time.monotonic() < deadline:
            logs = {n.index: n.proc.log_path.read_text(errors="replace") for n in store.nodes if n.proc}
            if all("Pruning job completed" in text for text in logs.values()):
                break
            time.sleep(0.2)
        for n in store.nodes:
            assert n.proc is not None
            n.proc.check_alive()
            text = logs[n.index]
            assert "Running pruning job" in text, f"node {n.index} did not prune at start:\n{n.proc.log_tail()}"
            assert "Pruning job completed" in text, n.proc.log_tail()
            assert "panic:" not in text, n.proc.log_tail()
            with urllib.request.urlopen(f"http://{n.http}/-/ready", timeout=5) as r:
                assert r.status == 200
