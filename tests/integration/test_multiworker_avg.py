"""A symbol held by several workers: the desk's average entry price on the group's endpoint and live view.

Real uvicorn and gunicorn, 4 workers each running ``books_app`` (each worker reports the books a request gives it).
Two workers hold books in three symbols:

* ``AAA``: long 100 @ 10 and long 300 @ 14: the desk is long 400 at 13 (cost 5,200 / 400), unrealized P&L 800 at a
  mark of 15 (= 400 * (15 - 13), the sum of the workers' 500 and 300). Before, the endpoint and the live view served
  the average of the worker that reported last (10 or 14), with the summed position and P&L.
* ``BBB``: long 100 @ 50 and short 40 @ 52: opposite books; the desk is long 60, at no single entry price (which
  fills offset which is the broker's matching, not known here): no average is served, as for a flat position.
* ``CCC``: long 10 @ 20 in one worker, flat in the other: the flat one has no entry and is left out (20).

Then the worker holding the second books is killed (SIGKILL): its books leave the sums over the live workers, and
the desk's averages are the first worker's alone, also after the server started a replacement.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .procs import wait_for
from .test_multiworker_shared import SERVERS, Service, service

HERE = str(Path(__file__).resolve().parent)
FIRST = [["AAA", 100.0, 15.0, 10.0], ["BBB", 100.0, 51.0, 50.0], ["CCC", 10.0, 21.0, 20.0]]
SECOND = [["AAA", 300.0, 15.0, 14.0], ["BBB", -40.0, 51.0, 52.0], ["CCC", 0.0, 21.0, None]]


def _book(svc: Service, positions: list[list[Any]]) -> int:
    """The books into whichever worker takes this new connection; its pid."""
    body = json.dumps({"positions": positions}).encode()
    req = urllib.request.Request(f"{svc.base}/book", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(json.loads(r.read())["pid"])


def _two_workers(svc: Service) -> tuple[int, int]:
    """FIRST's books in one worker and SECOND's in another (the kernel spreads connections: a book that lands on
    the worker holding the other's replaces it there, and that one is sent again)."""
    held: dict[int, str] = {}
    books = {"first": FIRST, "second": SECOND}
    for _ in range(200):
        missing = [name for name in books if name not in held.values()]
        if not missing:
            by_name = {name: pid for pid, name in held.items()}
            return by_name["first"], by_name["second"]
        held[_book(svc, books[missing[0]])] = missing[0]
    raise AssertionError(f"the books did not land on two workers: {held}")


def _samples(svc: Service) -> dict[str, dict[str, float]]:
    """Per metric of the shared endpoint, each symbol's value (strategy ``s1``)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(svc.metrics() or ""):
        for x in fam.samples:
            if "symbol" in x.labels:
                out.setdefault(x.name, {})[x.labels["symbol"]] = x.value
    return out


def _rows(svc: Service) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = svc.snapshot().get("symbols", {})
    return rows


@pytest.mark.integration
@pytest.mark.parametrize("server", SERVERS)
def test_the_desks_average_entry_over_workers_is_cost_over_quantity(server: str, tmp_path: Path) -> None:
    args = ("--app-dir", HERE) if server == "uvicorn" else ("--pythonpath", HERE)
    with service(server, tmp_path, app="books_app:create_app", args=args) as svc:
        first, second = _two_workers(svc)
        procs = (svc.proc,)
        wait_for(
            lambda: _samples(svc).get("trading_position_quantity") == {"AAA": 400.0, "BBB": 60.0, "CCC": 10.0},
            "both workers' positions summed on /metrics",
            procs=procs,
        )
        got = _samples(svc)
        assert got["trading_position_avg_price"] == {"AAA": 13.0, "CCC": 20.0}, "cost / quantity; none for BBB"
        assert got["trading_pnl_unrealized"]["AAA"] == 800.0 == 400.0 * (15.0 - 13.0)
        wait_for(lambda: _rows(svc).get("AAA", {}).get("pos") == 400.0, "the live view's AAA position", procs=procs)
        rows = _rows(svc)
        assert {s: rows[s].get("avg") for s in ("AAA", "BBB", "CCC")} == {"AAA": 13.0, "BBB": None, "CCC": 20.0}
        assert rows["AAA"]["upnl"] == rows["AAA"]["pos"] * (rows["AAA"]["px"] - rows["AAA"]["avg"])

        # The second worker dies: its books leave the sums; the averages are the first worker's alone.
        os.kill(second, signal.SIGKILL)
        want = {"AAA": 100.0, "BBB": 100.0, "CCC": 10.0}
        wait_for(
            lambda: _samples(svc).get("trading_position_quantity") == want and first in svc.worker_pids(),
            "the killed worker's books gone from /metrics",
            procs=procs,
        )
        assert _samples(svc)["trading_position_avg_price"] == {"AAA": 10.0, "BBB": 50.0, "CCC": 20.0}
        wait_for(lambda: len(svc.worker_pids() - {second}) == 4, "a replacement worker in /metrics", procs=procs)
        got = _samples(svc)
        assert got["trading_position_quantity"] == want
        assert got["trading_position_avg_price"] == {"AAA": 10.0, "BBB": 50.0, "CCC": 20.0}
        wait_for(lambda: _rows(svc).get("AAA", {}).get("pos") == 100.0, "the live view without it", procs=procs)
        rows = _rows(svc)
        assert {s: rows[s].get("avg") for s in ("AAA", "BBB", "CCC")} == {"AAA": 10.0, "BBB": 50.0, "CCC": 20.0}


ES_FIRST = [["ESZ6", 2.0, 5000.0, 4990.0], ["CLK0", 3.0, -37.63, 18.27]]
ES_SECOND = [["ESZ6", -3.0, 5000.0, 5010.0], ["CLK0", 0.0, -37.63, None]]


@pytest.mark.integration
def test_a_worker_groups_notional_and_exposure_use_the_contract_multiplier(tmp_path: Path) -> None:
    """Each worker declares ES (50) and CL (1,000) at start-up; one is long 2 ES and 3 CL, another short 3 ES. The
    group's endpoint and live view add the workers' notionals up: ES -1 x 5,000 x 50 = -250,000 (before: -5,000),
    CL 3 x -37.63 x 1,000 = -112,890 (before: -112.89), and the desk's gross exposure is each worker's own gross
    summed, 2 x 250,000 + 112,890 + 750,000 (before: 1,362.89)."""
    env = {"BOOKS_CONTRACTS": json.dumps({"ESZ6": 50, "CLK0": 1000})}
    with service("uvicorn", tmp_path, app="books_app:create_app", args=("--app-dir", HERE), env=env) as svc:
        held: dict[int, str] = {}
        for _ in range(200):
            missing = [n for n in ("first", "second") if n not in held.values()]
            if not missing:
                break
            held[_book(svc, ES_FIRST if missing[0] == "first" else ES_SECOND)] = missing[0]
        assert sorted(held.values()) == ["first", "second"], held
        procs = (svc.proc,)
        wait_for(
            lambda: _samples(svc).get("trading_position_quantity") == {"ESZ6": -1.0, "CLK0": 3.0},
            "both workers' positions summed on /metrics",
            procs=procs,
        )
        got = _samples(svc)
        assert got["trading_position_notional"] == {"ESZ6": -250_000.0, "CLK0": 3.0 * -37.63 * 1000}
        assert got["trading_pnl_unrealized"]["ESZ6"] == 2 * 10 * 50 + -3 * -10 * 50
        from prometheus_client.parser import text_string_to_metric_families

        gross = [
            x.value
            for fam in text_string_to_metric_families(svc.metrics() or "")
            for x in fam.samples
            if x.name == "trading_exposure_gross"
        ]
        assert gross == [500_000.0 + 112_890.0 + 750_000.0]
        wait_for(lambda: _rows(svc).get("ESZ6", {}).get("pos") == -1.0, "the live view's ES position", procs=procs)
        snap = svc.snapshot()
        assert snap["symbols"]["ESZ6"]["ntl"] == -250_000.0
        assert snap["account"]["gross"] == 1_362_890.0
        assert snap["account"]["net"] == -250_000.0 + 3.0 * -37.63 * 1000
