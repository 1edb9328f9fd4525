"""Who serves a Prometheus port: the record an endpoint leaves when it listens, and the answer a process whose port
is in use gives (the same service started twice: two gunicorn masters, two ``python bot.py``).

>>> rec = claim(host, port, service, base, group=("g-ab12", 4021, "gunicorn"))  # after binding  # doctest: +SKIP
>>> release(rec)                                                                 # on stop        # doctest: +SKIP
>>> who(port, service, base)   # "pid 4107, the leader of ... serves that port"                   # doctest: +SKIP

The record is ``<base>/tradeobs-<uid>/p-<port>.json`` (the directory the worker groups use, mode ``0700``): the
serving leader's pid and start time, its service and its worker group. Only a worker group's leader writes one: a
single process writes no file of tradeobs' own (issue 11), so it is found by its socket and named by its pid and
command. It is believed only while
it is exact: that pid runs with that start time (a crashed run's record, or a reused pid, is not) *and* that process
holds a listening socket on the port (``/proc/net/tcp*`` names the socket, ``/proc/<pid>/fd`` whose it is). Without
a record to believe, the processes of this user are searched for the socket, and the one found is named as it is.
Linux; elsewhere nothing is found and the warning says so.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import NamedTuple

from .workers.detect import parent_of, process_start
from .workers.store import JoinError, atomic_write, private_dir

__all__ = ["Record", "claim", "held_here", "release", "user_dir", "who"]

_SCAN_MAX = 4096  # processes looked at for the socket, at most (said once, when a port is found in use)


class Record(NamedTuple):
    path: Path
    pid: int
    start: str


def user_dir(base: str) -> Path | None:
    """``<base>/tradeobs-<uid>`` (created 0700), or None when it is not ours alone (nothing recorded or believed):
    the worker groups' own check of that directory (``store.private_dir``)."""
    uid = os.getuid()
    root = Path(base) / f"tradeobs-{uid}"
    try:
        private_dir(root, uid)
    except JoinError:
        return None
    return root


def claim(host: str, port: int, service: str, base: str, group: tuple[str, int, str] | None = None) -> Record | None:
    """Record that this process serves ``port`` (``group``: the directory name, starting pid and kind of the worker
    group it leads). None when it could not be written (the warning then finds the process by its socket), and
    for a single process (``group`` None): a single-process service writes no file of tradeobs' own (issue 11)."""
    if group is None or port <= 0:
        return None
    root = user_dir(base)
    if root is None:
        return None
    pid = os.getpid()
    start = process_start(pid)
    doc: dict[str, object] = {"pid": pid, "start": start, "service": service, "host": host, "port": port}
    doc["group"], doc["started_by"], doc["kind"] = group
    path = root / f"p-{port}.json"
    try:
        atomic_write(path, json.dumps(doc).encode(), pid)
    except OSError:
        return None
    return Record(path, pid, start)


def release(rec: Record | None) -> None:
    """Remove the record if it still names this process (a later server of the port may have replaced it)."""
    if rec is None:
        return
    doc = _read(rec.path)
    if doc is not None and doc.get("pid") == rec.pid and str(doc.get("start")) == rec.start:
        with contextlib.suppress(OSError):
            rec.path.unlink()


def _read(path: Path) -> dict[str, object] | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on TCP ``port`` (any address, IPv4 and IPv6) in this network namespace."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            # local_address is HEXADDR:HEXPORT; state 0A is LISTEN; field 9 the inode
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                found.add(f[9])
    return found


def _holds(pid: int, inodes: set[str]) -> bool:
    want = {f"socket:[{i}]" for i in inodes}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in want:
                return True
    return False


def _holders(inodes: set[str]) -> list[int]:
    """This user's processes holding one of ``inodes`` (others' descriptors cannot be read)."""
    try:
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        return []
    me = os.getpid()
    return [p for p in pids[:_SCAN_MAX] if p != me and _holds(p, inodes)]


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    text = " ".join(" ".join(a.decode(errors="replace").split()) for a in argv)
    return text if len(text) <= 120 else text[:117] + "..."


def held_here(port: int) -> bool:
    """Whether this very process listens on TCP ``port``: a server of the application's own on the port the agent was
    given (prometheus_client's ``start_http_server``, the OpenTelemetry Prometheus exporter that
    ``OTEL_METRICS_EXPORTER=prometheus`` starts, its web server)."""
    inodes = listening_inodes(port)
    return bool(inodes) and _holds(os.getpid(), inodes)


def who(port: int, service: str, base: str, group: tuple[str, int, str] | None = None) -> str:
    """Who serves ``port``, for the warning of a process that could not bind it: this process itself (a server of the
    application's own), the tradeobs process recorded there (its pid, service and worker group) when that record is
    exact, else the process found holding the port. ``group``: this process's worker group, as :func:`claim` takes it;
    a holder that is another worker of the process that started it (gunicorn's master), but not of this group, is in
    another group of the same master, which a reload that changed the settings naming the group makes
    (:func:`_same_master`)."""
    started_by = group[1] if group is not None else 0
    inodes = listening_inodes(port)  # read once: this process's own sockets, then the record's and the others'
    if inodes and _holds(os.getpid(), inodes):
        # Before, this case read "a process that is not this user's (or is in another container) holds it: no
        # process of this user does. ... Stop the duplicate": this process was left out of the search
        return (
            f"this process itself listens on it (pid {os.getpid()}: a server of the application's own, such as "
            f"prometheus_client's start_http_server, the OpenTelemetry Prometheus exporter that "
            f"OTEL_METRICS_EXPORTER=prometheus starts, or its web server): two endpoints cannot share one port"
        )
    root = user_dir(base)
    doc = _read(root / f"p-{port}.json") if root is not None else None
    ignored = ""
    if doc is not None:
        try:
            pid, start = int(str(doc["pid"])), str(doc["start"])
        except (KeyError, ValueError):
            pid, start = 0, ""
        if pid > 0 and start and process_start(pid) == start and _holds(pid, inodes):
            if started_by > 0 and parent_of(pid) == started_by and group is not None and doc.get("group") != group[0]:
                return _same_master(pid, started_by)
            return _named(pid, doc, service)
        ignored = f" (the record of pid {pid}, which no longer serves it, was not believed)"
    holders = _holders(inodes) if inodes else []
    siblings = [p for p in holders if started_by > 0 and parent_of(p) == started_by]
    if siblings:
        return _same_master(siblings[0], started_by)
    if holders:
        named = ", ".join(f"pid {p} ({_command(p)})" for p in holders[:3])
        # only a worker group's leader records its port (a single process writes no file: issue 11), so an
        # unrecorded holder may be this service's single process started before, or another program
        return f"{named} holds it (another program, or a single process of this service started before){ignored}"
    return (
        f"a process that is not this user's (or is in another container) holds it: no process of this user "
        f"does{ignored}"
    )


def _same_master(pid: int, master: int) -> str:
    """The port is held by another worker of this group's own master, in another worker group: the master's workers
    disagree on the settings that name the group (the shared directory, the service name), which only a reload that
    changed them does (gunicorn's HUP re-reads its config, ``raw_env`` too; the earlier workers keep theirs)."""
    return (
        f"pid {pid}, a worker of this group's own master (pid {master}), holds it: that worker is in another "
        f"tradeobs worker group, so this master's workers disagree on TRADEOBS_MULTIPROCESS_DIR or "
        f"TRADEOBS_SERVICE_NAME (a reload that changed them). The earlier workers' group serves its own totals until "
        f"they exit (its leader up to 20 s after), then this group's leader takes the port, and its totals start "
        f"again from its own workers' counts (a counter reset to Prometheus): keep both settings across reloads"
    )


def _named(pid: int, doc: dict[str, object], service: str) -> str:
    theirs = str(doc.get("service"))
    same = theirs == service
    if "group" in doc:
        what = (
            f"the leader of {'its other' if same else 'the'} tradeobs worker group started by pid "
            f"{doc.get('started_by')} ({doc.get('kind')})"
        )
    else:
        what = f"a single tradeobs process ({_command(pid)}), not in a worker group"
    if same:
        return f"service {service!r} runs twice on this host: pid {pid}, {what}, serves that port"
    return f"service {theirs!r} is configured with this port too: pid {pid}, {what}, serves it"
