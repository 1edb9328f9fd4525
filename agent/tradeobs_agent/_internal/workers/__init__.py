"""Multi-process mode: the worker processes of one service share one Prometheus endpoint and one live view.

>>> store = open_store(settings, detect(settings.multiprocess))   # None: a single process (nothing changes)
>>> group = Group(store, registry, bus, ...); group.start()        # agent.init() does both   # doctest: +SKIP

Modules: ``detect`` (is this a worker, and of which group), ``store`` (the
shared directory: snapshot files, locks, exited workers' totals), ``channel``
(framed messages on the leader's Unix socket), ``group`` (the member thread:
publish, elect, and for the leader serve, fold and produce live frames).
``docs/agent.md`` ("Several worker processes") explains the design and what
happens when things go wrong.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from ..._errors import warn_once
from ...config import Settings
from .detect import GroupKey, detect, predecessor, starts_workers, this_process
from .group import HANDOVER_WAIT, Endpoint, Group, LiveRole
from .store import JoinError, RunningGroup, Store, default_base, running_groups

__all__ = [
    "HANDOVER_WAIT",
    "Endpoint",
    "Group",
    "GroupKey",
    "JoinError",
    "LiveRole",
    "RunningGroup",
    "Store",
    "default_base",
    "detect",
    "open_store",
    "running_groups",
    "starts_workers",
    "this_process",
]


def open_store(
    settings: Settings, key: GroupKey | None, later: list[Callable[[], object]] | None = None
) -> Store | None:
    """The group's shared directory for ``key`` (None: not a worker); a worker that cannot join says so once,
    naming why, and goes on as a single process (its own endpoint and live view). ``later``: say it when the caller
    runs what it collects there (``init()``: once its log pipeline runs, or the system log never had it)."""
    if key is None:
        return None
    base = settings.multiprocess_dir or default_base()
    try:
        return Store.open(base, key, settings.service_name, predecessor(key))
    except (JoinError, OSError) as exc:
        say = functools.partial(
            warn_once,
            "workers:join",
            "tradeobs multiprocess: this worker (pid %d, %s) cannot join its service's worker group: %s. It serves "
            "its own metrics and live view only. Set TRADEOBS_MULTIPROCESS_DIR to a directory of yours (mode 0700), "
            "or TRADEOBS_MULTIPROCESS=off to silence this.",
            os.getpid(),
            _HOW.get(key.kind, key.kind),
            _short(exc),
            console=True,
        )
        if later is None:
            say()
        else:
            later.append(say)
        return None


_HOW = {
    "gunicorn": "a gunicorn worker",
    "uvicorn": "a uvicorn worker",
    "multiprocessing": "a multiprocessing child",
    "fork": "a forked child",
    "setting": "grouped by TRADEOBS_MULTIPROCESS=on",
}


def _short(exc: BaseException) -> str:
    """The reason, with a path that is too long to read cut in the middle (``[Errno 36] File name too long``)."""
    text = str(exc)
    return text if len(text) <= 300 else text[:150] + " ... " + text[-100:]
