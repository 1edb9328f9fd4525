"""Is this process one of several workers of one service, and which group is it in?

>>> key = detect("auto")          # None in a plain single-process service   # doctest: +SKIP
>>> key.kind, key.pid                                                         # doctest: +SKIP
('uvicorn', 4121)

A group is named by the process that started the workers (the gunicorn
arbiter, the uvicorn supervisor, the parent that forked or started them):
every worker finds the same name by itself, so no per-worker environment is
needed. With the setting ``multiprocess``:

* ``auto`` (the default): a gunicorn worker (``init()`` runs while gunicorn's
  ``Arbiter.spawn_worker`` is on the main thread's stack), a ``multiprocessing``
  child (``uvicorn --workers`` starts its workers so, as do ``Pool`` and
  ``Process``), or a child forked (``os.fork``) from a process that had imported
  tradeobs, while that parent is still alive; anything else is a single
  process and nothing changes;
* ``on``: always a group, named by the parent process (for process managers
  this module does not recognise, e.g. one that runs N copies of a script;
  under systemd the parent is pid 1, and copies of one service there form one
  group). The group lives as long as that parent: a copy started again later
  under the same parent adds to what the earlier copies counted, as a
  respawned worker does;
* ``off``: never.

With ``auto`` and ``on``, gunicorn's arbiter that ran ``init()`` itself (``--preload``: it imports the
application before it forks the workers) is not a worker (:func:`starts_workers`): its workers join the group
it names, as without ``--preload``, and it takes no part (no member file, never the leader, no endpoint).

The parent's start time (``/proc/<pid>/stat``) is part of the name, so a new
run whose arbiter reuses an old pid never joins the old run's group.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GroupKey",
    "detect",
    "parent_of",
    "predecessor",
    "process_start",
    "server_leaving",
    "server_replacing",
    "server_workers",
    "starting_workers",
    "starts_workers",
    "this_process",
    "uvicorn_exits_on_sigterm",
    "uvicorn_server",
]

_forked_from = 0  # set in a child forked after this module was imported: the parent's pid


def _mark_fork_child() -> None:
    global _forked_from
    _forked_from = os.getppid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_fork_child)


@dataclass(frozen=True)
class GroupKey:
    """The process that started the group's workers: ``kind`` says how it was recognised."""

    kind: str  # gunicorn | uvicorn | multiprocessing | fork | setting
    pid: int
    start: str  # the process's start time as the kernel counts it ('' where unknown)

    @property
    def name(self) -> str:
        return f"{self.pid}-{self.start}"


def process_start(pid: int) -> str:
    """The start time of ``pid`` (clock ticks since boot, Linux), ``''`` where unknown, ``'gone'`` if it is not
    running. Together with the pid it names a process uniquely, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return "gone" if os.path.isdir("/proc/self") else _alive_or_gone(pid)
    except OSError:
        return _alive_or_gone(pid)
    # the command name (field 2) is in parentheses and may hold spaces: fields after the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""


def _alive_or_gone(pid: int) -> str:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except OSError:  # EPERM: it exists (another user's)
        return ""
    return ""


def this_process() -> GroupKey:
    """This process as a group's key (a process that forks workers after ``init()`` names the group)."""
    pid = os.getpid()
    return GroupKey("fork", pid, process_start(pid))


def _key(kind: str, pid: int) -> GroupKey | None:
    start = process_start(pid)
    return None if start == "gone" or pid <= 1 else GroupKey(kind, pid, start)


def _gunicorn_role() -> str:
    """``worker`` when gunicorn's arbiter forked this process (its worker runs inside ``Arbiter.spawn_worker``),
    ``arbiter`` when this is the arbiter itself (other code of ``gunicorn/arbiter.py`` on the main thread's stack:
    with ``--preload`` it imports the application in ``Arbiter.setup``, before it forks any worker), else ``''``."""
    if "gunicorn.arbiter" not in sys.modules:
        return ""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    role = ""
    while frame is not None:
        code = frame.f_code
        if code.co_filename.replace("\\", "/").endswith("gunicorn/arbiter.py"):
            if code.co_name == "spawn_worker":
                return "worker"
            role = "arbiter"
        frame = frame.f_back
    return role


def _in_gunicorn_worker() -> bool:
    return _gunicorn_role() == "worker"


def starts_workers(mode: str) -> bool:
    """Whether this process only starts the group's workers and is none of them: the gunicorn arbiter, when the
    application (and ``init()`` with it) is loaded there before the fork (``--preload``). It names the group
    (its workers find it as their parent, as without ``--preload``), but serves no requests, so it neither
    counts as a worker nor leads."""
    return mode != "off" and _gunicorn_role() == "arbiter"


def detect(mode: str) -> GroupKey | None:
    """The group this process belongs to under setting ``multiprocess=mode``, or None (a single process)."""
    if mode == "off":
        return None
    ppid = os.getppid()
    if _in_gunicorn_worker():
        return _key("gunicorn", ppid)
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        return _key("uvicorn" if "uvicorn.supervisors.multiprocess" in sys.modules else "multiprocessing", parent.pid)
    if _forked_from and _forked_from == ppid:
        return _key("fork", ppid)
    if mode == "on":
        # Copies of one script started by the same parent; under systemd (or any copy reparented to init) that
        # parent is pid 1, which is one too (init's own start time names the group; detection above never uses
        # pid 1: there it means the real parent died). Without a parent to read, this process on its own.
        key = _key("setting", ppid) if ppid > 1 else _init_key()
        return key or GroupKey("setting", os.getpid(), process_start(os.getpid()))
    return None


def predecessor(key: GroupKey) -> GroupKey | None:
    """The group ``key``'s workers continue: the old gunicorn arbiter that re-executed this one (``USR2``, a binary
    upgrade), while it still runs. Both arbiters then run workers side by side on the same sockets; the new one's
    workers join the old group (``Store.open``), so one leader serves one endpoint and the totals go on instead of
    starting again from zero. gunicorn names the old arbiter in ``GUNICORN_PID`` in the new one's environment (and so
    in its workers') until the old one exits; it must be the new arbiter's parent. None otherwise."""
    if key.kind != "gunicorn":
        return None
    try:
        old = int(os.environ.get("GUNICORN_PID", "0"))
    except ValueError:
        return None
    if old <= 1 or old == key.pid or parent_of(key.pid) != old:
        return None
    return _key("gunicorn", old)


def parent_of(pid: int) -> int:
    """The parent pid of ``pid`` (``/proc``), 0 where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rfind(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _init_key() -> GroupKey | None:
    start = process_start(1)
    return None if start == "gone" else GroupKey("setting", 1, start)


def server_leaving() -> bool:
    """Whether this process's uvicorn server (a ``uvicorn --workers`` worker, or gunicorn's ``UvicornWorker``) has
    begun to stop: asked to exit (SIGTERM or SIGINT: a reload, a scale-down, a stop) or past its request limit
    (gunicorn's ``--max-requests``, uvicorn's ``--limit-max-requests``). From then on the worker only finishes its
    open requests and exits: the group should not count on it to lead (see ``group.py``).

    The server is found as the live view finds it, through the SIGTERM handler uvicorn installs while it serves
    (its ``handle_exit``); False for any other server, or before uvicorn serves."""
    server = uvicorn_server()
    return server is not None and (server.should_exit is True or _past_request_limit(server))


def server_replacing() -> bool:
    """Whether this process's uvicorn server stops because it is past its request limit, not asked to: then its
    gunicorn arbiter or uvicorn supervisor starts a worker in its place (uvicorn's within half a second of a
    worker's exit), as for every other worker that reached its limit."""
    server = uvicorn_server()
    return server is not None and server.should_exit is not True and _past_request_limit(server)


def uvicorn_server() -> Any:
    """uvicorn's ``Server`` when it installed the SIGTERM handler (as sse-starlette finds it), else None."""
    try:
        handler = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        return None
    server = getattr(handler, "__self__", None)
    return server if hasattr(server, "should_exit") else None


def uvicorn_exits_on_sigterm(server: Any) -> bool:
    """Whether uvicorn's ``server`` stopped on a SIGTERM, which it raises again once it has stopped (with the handler
    it found before serving put back): the process is about to end without ``atexit``.

    Assumes: ``Server.handle_exit`` appends each signal to ``server._captured_signals``, which ``capture_signals``
    raises again after the server stopped (uvicorn >= 0.29). An older or changed uvicorn says False: the agent then
    shuts down at exit as before."""
    captured = getattr(server, "_captured_signals", None)
    return isinstance(captured, list) and signal.SIGTERM in captured


def _past_request_limit(server: object) -> bool:
    # uvicorn >= 0.30 draws its limit (plus jitter) once, at its first tick, into a cached property: read only what it
    # drew (calling the property from this thread would draw one of its own); older ones read the config's.
    limit = vars(server).get("limit_max_requests")
    if limit is None and not isinstance(getattr(type(server), "limit_max_requests", None), functools.cached_property):
        limit = getattr(getattr(server, "config", None), "limit_max_requests", None)
    state = getattr(server, "server_state", None)
    total = getattr(state, "total_requests", None)
    return isinstance(limit, int) and isinstance(total, int) and total >= limit


def starting_workers(key: GroupKey, known: Collection[int]) -> list[int]:
    """Workers of ``key``'s group that are starting: running workers of the gunicorn arbiter or uvicorn supervisor
    that named the group, other than this process and the pids ``known`` (members, and members that left: these
    have started already). Empty for other kinds of group (their parent may be a shell or init, whose other
    children are not workers) and where ``/proc`` does not list children.

    A gunicorn arbiter's children are its workers; a uvicorn supervisor's are its workers (``multiprocessing``
    spawn children) and ``multiprocessing``'s resource tracker, which is none."""
    return [k for k in server_workers(key) if k not in known]


def server_workers(key: GroupKey) -> list[int]:
    """The running workers of the gunicorn arbiter or uvicorn supervisor that named ``key``'s group, other than
    this process (see :func:`starting_workers`)."""
    if key.kind not in ("gunicorn", "uvicorn"):
        return []
    try:
        with open(f"/proc/{key.pid}/task/{key.pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except (OSError, ValueError):
        return []
    me = os.getpid()
    return [k for k in kids if k != me and _running(k) and _a_worker(key.kind, k)]


def _a_worker(kind: str, pid: int) -> bool:
    if kind == "gunicorn":
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"multiprocessing.spawn" in f.read()
    except OSError:
        return False


def _running(pid: int) -> bool:
    """Alive and not a zombie (a worker that exited, not reaped yet by its server)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
