"""A ``spawn`` or ``forkserver`` child of a process that ran ``init()``, which records without calling it itself.

>>> mark(process, agent.pid, "algo-1")   # the parent, as it starts each multiprocessing child   # doctest: +SKIP

A child forked from the parent inherits its agent and joins its worker group (``agent._after_fork_in_child``).
A ``spawn`` child (the default on macOS and Windows, and on Linux from Python 3.14) or a ``forkserver`` child
starts from a fresh interpreter: it imports tradeobs but has no agent, and what it records (orders, fills,
counters, tradeobs logs, spans) goes nowhere. Before, that was silent: a ``ProcessPoolExecutor`` of such children
left the parent's ``/metrics`` with the parent's own counts only, and nothing said why.

The parent marks each child it starts (an attribute of the ``Process`` object, pickled with it to the child, where
unpickling it runs :func:`_started_by`). A child so marked checks, shortly after it starts, every 2 s after, and at
its exit, whether it recorded anything without ``init()``; if so it says once on stderr what it recorded (how many
series of which instruments) and what to do, and tells its parent through the parent's worker group directory (an
empty file ``c-<parent pid>-<child pid>.told``), which counts it in ``tradeobs.agent.children.uninitialised`` on
its ``/metrics``: a line on a pool's stderr is easily never read. Nothing of this runs in a process no tradeobs
parent started, nor in a forked child (it has its parent's agent and joins its group): no thread, no file, no cost.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..._errors import internal_error, warn_once
from ...metrics import GaugeFamily, HistogramFamily, Registry, SumFamily, get_registry
from .store import CHILD_REPORT, atomic_write

__all__ = ["ATTRIBUTE", "mark", "recorded"]

ATTRIBUTE = "_tradeobs_parent"  # on the Process object: a _Mark
FIRST_CHECK = 0.5  # seconds after the child starts: a pool task has usually recorded by then
CHECK_EVERY = 2.0
# Whether init() ran in this process (the agent's module sets it: this layer does not import the agent)
initialised: Callable[[], bool] = lambda: False  # noqa: E731


class _Mark:
    """What the parent sets on each child's ``Process``: pickled with it to a ``spawn`` or ``forkserver`` child,
    where unpickling it calls :func:`_started_by` (a forked child never unpickles it: it has its parent's agent)."""

    __slots__ = ("how", "pid", "report", "service")

    def __init__(self, pid: int, service: str, how: str, report: str) -> None:
        self.pid, self.service, self.how, self.report = pid, service, how, report

    def __reduce__(self) -> tuple[Callable[[int, str, str, str], None], tuple[int, str, str, str]]:
        return _started_by, (self.pid, self.service, self.how, self.report)


def mark(process: Any, pid: int, service: str, report: str = "") -> None:
    """Mark ``process``, about to be started by a process whose agent runs (pid ``pid``, service ``service``);
    ``report``: its worker group's directory, where the child tells it (empty: no group, told on stderr only)."""
    how = getattr(process, "_start_method", None)
    if how is None:  # a Process of the default context: its method (start() fixes it just after, as this does)
        mp = sys.modules.get("multiprocessing")
        how = mp.get_start_method() if mp is not None else None
    try:
        setattr(process, ATTRIBUTE, _Mark(pid, service, how or "spawn", report))
    except (AttributeError, TypeError):  # a Process subclass with __slots__: its child is not told
        pass


class _Watch:
    """The child's watch (one per process; multiprocessing's after-fork registry keeps a weak reference)."""

    def __init__(self) -> None:
        self.armed = False
        self.said = False
        self.stop = threading.Event()
        self.say: Callable[[], None] = lambda: None


_watch = _Watch()


def _started_by(pid: int, service: str, how: str, report: str = "") -> None:
    """In the child, as multiprocessing unpickles its ``Process`` (before its ``run()``): check what it records
    without ``init()`` shortly after it starts, every 2 s after, and at its exit (multiprocessing's finalizers: a
    ``forkserver`` child's are cleared as it starts, so they are registered again then)."""
    w = _watch
    if w.armed or how == "fork":
        return
    try:
        w.armed = True
        w.say = lambda: _check(w, pid, service, how, report)
        util = importlib.import_module("multiprocessing.util")
        util.Finalize(None, w.say, exitpriority=0)
        util.register_after_fork(w, lambda w: util.Finalize(None, w.say, exitpriority=0))
        threading.Thread(target=_checks, args=(w,), name="tradeobs-pool-child", daemon=True).start()
    except Exception as exc:  # never break the child
        internal_error("workers.pool_child", exc)


def _checks(w: _Watch) -> None:
    """A child that lives on (a pool's worker), or that its parent terminates (``Pool``'s ``with`` block sends
    SIGTERM: no exit code runs): told while it runs."""
    wait = FIRST_CHECK
    while not w.stop.wait(wait) and not w.said:
        w.say()
        wait = CHECK_EVERY


def _check(w: _Watch, parent: int, service: str, how: str, report: str) -> None:
    if w.said:
        return
    if initialised():  # init() ran here after all: nothing is dropped
        w.stop.set()
        return
    try:
        series, names = recorded(get_registry())
    except Exception as exc:
        internal_error("workers.pool_child", exc)
        return
    if not series:
        return
    w.said = True
    w.stop.set()
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    counted = _tell_parent(report, parent)
    warn_once(
        "workers:pool_child",
        "tradeobs: pid %d, a multiprocessing child started with %r by pid %d (which runs tradeobs_agent.init() for "
        "service %r), records with tradeobs without calling init() itself: %d series of %d instruments (%s) and its "
        "tradeobs logs and spans are dropped (on no /metrics, in no export or log file). A %r child starts a fresh "
        "interpreter without its parent's agent: call tradeobs_agent.init() in the child, e.g. "
        "ProcessPoolExecutor(initializer=...) or Pool(initializer=...) with a function that calls it; it then joins "
        "the parent's worker group (`tradeobs docs agent`, 'Process pools'). %s",
        os.getpid(),
        how,
        parent,
        service,
        series,
        len(names),
        shown,
        how,
        counted,
        console=True,
    )


def _tell_parent(report: str, parent: int) -> str:
    """Leave the parent a file in its worker group's directory, which it counts on its ``/metrics``; what was done,
    said on stderr."""
    if not report:
        return "Not counted on the parent's /metrics: it has no worker group (multiprocess off, or no usable dir)."
    try:
        atomic_write(Path(report) / f"{CHILD_REPORT}{parent}-{os.getpid()}.told", b"", os.getpid())
    except OSError as exc:
        return f"Not counted on the parent's /metrics: cannot write in {report}: {exc.strerror or exc}."
    return "Counted in tradeobs_agent_children_uninitialised_total on the parent's /metrics."


def recorded(registry: Registry) -> tuple[int, list[str]]:
    """How many series hold something recorded, and the names of their instruments (the agent's own left out)."""
    series, names = 0, []
    for family in registry.snapshot().families:
        if family.name.startswith("tradeobs."):
            continue
        if isinstance(family, SumFamily):
            n = sum(1 for p in family.points if p.value)
        elif isinstance(family, HistogramFamily):
            n = sum(1 for p in family.points if p.observed)
        elif isinstance(family, GaugeFamily):
            n = len(family.points)
        else:
            n = 0
        if n:
            series += n
            names.append(family.name)
    return series, names
