"""The group's shared directory: each member's snapshot file and lock, the leader's lock and socket, the totals
of members that exited.

>>> store = Store.open("/dev/shm", key, "algo-1")     # raises JoinError when the directory cannot be trusted
>>> store.write_part(data)                            # this member's latest snapshot (atomic)
>>> store.read_merged()                               # every member's snapshot, merged   # doctest: +SKIP

Layout (``<base>/tradeobs-<uid>/g-<hash of service and group key>/``; beside it, ``a-<hash>`` names the group directory
a group with that hash joins instead of its own: gunicorn's new arbiter after a ``USR2``, see ``Store.open``)::

    key.json          the group's key: service, starting process pid and start time
    leader.lock       flock held by the leader for as long as it lives
    leader.sock       the leader's Unix socket (live deliveries, scrape syncs)
    m-<member>.lock   flock held by each member for as long as it lives
    m-<member>.part   each member's latest snapshot (``metrics/wire.py``), replaced atomically
    m-<member>.leaving  (empty) the member's server has begun to stop: it is not to be counted on to lead
    c-<pid>-<child>.told  (empty) a ``spawn`` child of member pid recorded without ``init()`` (``pool_child``): that
                      member counts it and removes the file
    retired.part      the counters and histograms of members that exited, summed (written by the leader)

Why locks and not pids: the kernel releases a ``flock`` when its process dies, even by SIGKILL, and a pid can
be reused; a member whose lock can be taken is gone. A member's lock file appears under its final name only
once locked (it is locked under a temporary name, then renamed), so a lock that can be taken always means a
member that exited. The leader folds an exited member's counters and histograms into ``retired.part`` (noting
its id there first, so a fold interrupted half way is never counted twice) and removes its files; its gauges
and per-process series end with it.

Nothing found here is trusted: the base directory must be ours and closed to others (mode ``0700``), files
must be ours, a snapshot that does not decode (``wire.CorruptPart``) is left out (and removed once its member
is gone), and a group directory whose starting process is gone and whose members are all gone is a crashed
run's leftover: it is removed when any group of this user opens.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from ..._errors import warn_once
from ...metrics import Family, Part, Snapshot, merge
from ...metrics.wire import (
    FORMAT,
    HEADER_SIZE,
    REVISION,
    Columns,
    CorruptPart,
    Merger,
    Note,
    OtherFormat,
    PartReader,
    PartWriter,
    header_format,
    to_part,
)
from .detect import GroupKey, process_start

__all__ = ["JoinError", "Store", "atomic_write", "default_base", "private_dir", "publish_meta"]

FOLDED_KEEP = 1024
CHILD_REPORT = "c-"  # c-<parent pid>-<child pid>.told: a spawn child of that member recorded without init()
_STALE_SCAN = 64  # group directories looked at per open
# A Unix socket's address holds at most 107 bytes of path (Linux's sun_path is 108, with its NUL); a deeper
# multiprocess_dir reaches the socket through this process's descriptor of the group directory (socket_address).
_SUN_PATH_MAX = 107


class JoinError(Exception):
    """This process cannot use the shared directory; the message says why and what to change."""


_meta_source: Callable[[], Mapping[str, Any]] | None = None


def publish_meta(source: Callable[[], Mapping[str, Any]] | None) -> None:
    """What every member writes into its snapshot's meta besides its id, JSON-able and small (``agent.py``: its
    declared contract multipliers, ``{"multipliers": {...}}``, which the members reading them compare)."""
    global _meta_source
    _meta_source = source


def default_base() -> str:
    """``/dev/shm`` (memory, never disk) when it is usable, else the system's temporary directory."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def private_dir(path: Path, uid: int) -> None:
    """Create ``path`` (mode 0700) or check that it is a directory of ours that no one else can write."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise JoinError(f"cannot create {path}: {exc.strerror}") from None
    try:
        st = path.lstat()
    except OSError as exc:
        raise JoinError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise JoinError(f"{path} is not a directory (a symlink or file there is not trusted)")
    if st.st_uid != uid:
        raise JoinError(f"{path} belongs to uid {st.st_uid}, not to this process (uid {uid}); not trusted")
    if st.st_mode & 0o077:
        raise JoinError(f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}); not trusted")


def atomic_write(path: Path, data: bytes, pid: int) -> None:
    """Write ``path`` (mode 0600) through a temporary file beside it; one that cannot be written whole (a full disk)
    is removed, not left holding the space a later write needs (the group's directory then stayed full for good).
    Raises ``OSError``."""
    tmp = path.with_name(f".{path.name}.{pid}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Store:
    """One member's view of the group directory. Thread-safe."""

    def __init__(self, path: Path, key: GroupKey, member: str) -> None:
        self.path = path
        self.key = key
        self.member = member
        self.pid = os.getpid()
        self.uid = os.getuid()
        self._lock = threading.Lock()
        self._member_fd = -1
        self._leader_fd = -1
        self._dir_fd = -1  # O_PATH descriptor of self.path, opened only for a socket path too long to bind
        self._lock_fds: dict[str, int] = {}  # other members' lock files, for liveness checks
        self._files: dict[str, _File] = {}  # decoded snapshot files by member ("retired" for retired.part)
        self._writer = PartWriter(self.pid)
        self._merger = Merger(self._note)
        self._keys: dict[Any, Any] = {}  # attribute sets, shared by every member's reader (see PartReader)
        self._last = b""  # the last file written, less its header (a snapshot that changed nothing is not written)
        self.corrupt = 0  # files left out because they did not decode
        # Told of each thing a rolling deploy's mix of releases made this reader do (the group counts them by reason):
        # "older"/"newer" (a member's layout of another revision, read), "aggregation" (one this release does not
        # know: its stand-in used), "mixed" (members declare different ones), "format" (a file it cannot read: left
        # out, and neither folded nor removed, so a leader of that release counts it).
        self.on_mismatch: Callable[[str], None] | None = None
        self._multipliers_seen: tuple[tuple[int, int], ...] = ()  # (pid, id(meta)) of the members last compared
        self._multiplier_conflicts: set[str] = set()  # symbols counted and said as disagreed on
        self._meta_built: tuple[Mapping[str, Any] | None, dict[str, Any]] | None = None  # (the source's, ours): _meta

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, base: str, key: GroupKey, service: str, predecessor: GroupKey | None = None) -> Store:
        """The group's directory under ``base`` (created, or checked), this process joined as a member.

        ``predecessor``: the group this one continues (``detect.predecessor``: gunicorn's old arbiter after a
        ``USR2``). While that group's directory exists, ``key``'s group is that directory: a file ``a-<digest>`` in
        the user's directory names it, so the new arbiter's later workers, which no longer know the old arbiter
        (gunicorn forgets it when the old one exits), join it too."""
        uid = os.getuid()
        root = Path(base) / f"tradeobs-{uid}"
        try:
            # made when missing, as log_dir is (`tradeobs config check` passes a directory it can create); only the
            # tradeobs-<uid> directory in it must be private
            Path(base).mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError:
            raise JoinError(f"multiprocess_dir {base!r} is not a directory") from None
        except OSError as exc:
            raise JoinError(f"multiprocess_dir {base!r} cannot be created: {exc.strerror}") from None
        private_dir(root, uid)
        digest = _digest(service, key)
        path = _aliased(root, digest)
        if path is None and predecessor is not None:
            # the predecessor's own directory, or the one it continues in turn (a second USR2 after the first)
            before = _digest(service, predecessor)
            path = _aliased(root, before) or root / f"g-{before}"
            if path.is_dir() and not path.is_symlink():
                _write_alias(root, digest, path.name)
            else:
                path = None
        path = path or root / f"g-{digest}"
        # Crashed or stopped runs' groups go first: on a full /dev/shm their files hold the space this group's
        # key and snapshots need (removed after joining, they never were: the join failed for want of room).
        clean_stale(root, keep=path)
        private_dir(path, uid)
        store = cls(path, key, f"{os.getpid()}-{secrets.token_hex(4)}")
        store._write_key(service)
        store._join()
        return store

    def _write_key(self, service: str) -> None:
        doc = {"service": service, "pid": self.key.pid, "start": self.key.start, "kind": self.key.kind}
        target = self.path / "key.json"
        try:
            now = orjson.loads(target.read_bytes())
            if now == doc:
                return
            if now.get("service") == service and process_start(int(now["pid"])) == str(now["start"]):
                return  # a group this one continues (after a USR2): named by its arbiter while that one runs
        except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            pass  # missing or not ours: (re)written below
        self._atomic_write("key.json", orjson.dumps(doc))

    def _join(self) -> None:
        tmp = self.path / f".lock-{self.member}.{self.pid}.tmp"  # named as _remove_leftovers expects
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JoinError(f"cannot create a member lock in {self.path}: {exc.strerror}") from None
        try:
            if not _try_lock(fd):  # a fresh file nobody else has open: cannot happen, unless flock is unsupported
                raise JoinError(f"cannot lock files in {self.path}")
            os.rename(tmp, self.path / f"m-{self.member}.lock")
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise JoinError(f"{self.path} does not support file locks ({exc.strerror})") from None
            raise JoinError(f"cannot join {self.path}: {exc.strerror}") from None
        self._member_fd = fd

    # ------------------------------------------------------------------ writing
    def _atomic_write(self, name: str, data: bytes) -> None:
        atomic_write(self.path / name, data, self.pid)

    def publish(self, snapshot: Snapshot, force: bool = True) -> bool:
        """Write this member's snapshot (atomically), unless nothing changed since the last one (``force``:
        write anyway). Returns whether it wrote. Raises ``OSError`` (disk full ...)."""
        return self._write_part(self._writer.encode(snapshot, self._meta()), force)

    def publish_registry(
        self,
        registry: Any,
        extra: Sequence[Family] = (),
        force: bool = True,
        with_exemplars: bool = True,
        pause: Callable[[], object] | None = None,
    ) -> bool:
        """:meth:`publish` of ``registry`` (and ``extra`` families) read straight from its series (the fast path)."""
        data = self._writer.encode_registry(registry, extra, self._meta(), with_exemplars=with_exemplars, pause=pause)
        return self._write_part(data, force)

    def _meta(self) -> dict[str, Any]:
        """This member's id and what ``publish_meta``'s source gives, kept while the source gives the same object
        (it builds its part again only when that changed: ``agent._group_meta``)."""
        source = _meta_source() if _meta_source is not None else None
        if self._meta_built is not None and self._meta_built[0] is source:
            return self._meta_built[1]
        meta: dict[str, Any] = {"member": self.member}
        if source is not None:
            meta.update(source)
        self._meta_built = (source, meta)
        return meta

    def _write_part(self, data: bytes, force: bool) -> bool:
        body = memoryview(data)[HEADER_SIZE:]
        if not force and body == self._last:
            return False
        self._atomic_write(f"m-{self.member}.part", data)
        self._last = bytes(body)
        return True

    def child_reports(self) -> int:
        """How many of this member's ``spawn`` or ``forkserver`` children said, since the last call, that they
        recorded without ``init()`` (``pool_child``: ``c-<this pid>-<child pid>.told``); each is counted once (its
        file removed as it is read)."""
        prefix, n = f"{CHILD_REPORT}{self.pid}-", 0
        for name in os.listdir(self.path):
            if name.startswith(prefix) and name.endswith(".told"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path / name)
                    n += 1
        return n

    # ------------------------------------------------------------------ leadership
    def try_lead(self) -> bool:
        """Take the leader's lock if no live process holds it."""
        if self._leader_fd >= 0:
            return True
        fd = os.open(self.path / "leader.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if _try_lock(fd):
            self._leader_fd = fd
            return True
        os.close(fd)
        return False

    def release_lead(self) -> None:
        """Give the leader's lock back (this process could not lead: another member may)."""
        if self._leader_fd >= 0:
            os.close(self._leader_fd)
            self._leader_fd = -1

    @property
    def socket_path(self) -> str:
        return str(self.path / "leader.sock")

    @property
    def socket_address(self) -> str:
        """Where to bind or connect the leader's socket: :attr:`socket_path`, or, when that is longer than a
        Unix socket's address can be, the same file through this process's descriptor of the group directory
        (``/proc/self/fd/N/leader.sock``, Linux), so a deep ``multiprocess_dir`` works as a short one does.
        Raises ``OSError`` when the directory cannot be opened (the caller says so, as for a failed bind)."""
        path = self.socket_path
        if len(os.fsencode(path)) <= _SUN_PATH_MAX or not hasattr(os, "O_PATH"):
            return path  # elsewhere the bind or connect fails as before, and the member says why
        with self._lock:
            if self._dir_fd < 0:
                self._dir_fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            return f"/proc/self/fd/{self._dir_fd}/leader.sock"

    def remove_socket(self) -> None:
        """Leader only: remove whatever is at the socket's path (a dead leader's socket, or anything else)."""
        target = self.path / "leader.sock"
        with contextlib.suppress(FileNotFoundError):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()

    # ------------------------------------------------------------------ reading
    def members(self) -> list[str]:
        """Member ids with a snapshot file (live or not)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        return _member_ids(names, ".part")

    def alive(self, member: str) -> bool:
        """Whether ``member``'s process still holds its lock."""
        if member == self.member:
            return True
        fd = self._lock_fds.get(member)
        if fd is None:
            try:
                fd = os.open(self.path / f"m-{member}.lock", os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                return False  # no lock file: it exited and was cleaned, or never joined
            self._lock_fds[member] = fd
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True

    def newer_members(self, members: Collection[str]) -> list[str]:
        """Of ``members``, those whose snapshot file is of a later :data:`~wire.FORMAT` than this release writes: a
        worker of a later release, which reads this release's files (``wire.READS``) while this one cannot read its.
        Only its header's first bytes are read."""
        out = []
        for member in members:
            try:
                fd = os.open(self.path / f"m-{member}.part", os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue  # not published yet, or gone
            try:
                head = os.pread(fd, 8, 0)
            except OSError:
                continue
            finally:
                os.close(fd)
            fmt = header_format(head)
            if fmt is not None and fmt > FORMAT:
                out.append(member)
        return out

    def newer_staying(self) -> list[str]:
        """The other members of a later :data:`~wire.FORMAT` (:meth:`newer_members`) that are alive and have not said
        they are leaving: a worker of a later release, to hand the lead to. Every member that does not lead asks this
        at each of its polls, so no descriptor is kept (``alive`` keeps one per member it checks)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        leaving = set(_member_ids(names, ".leaving"))
        others = [m for m in _member_ids(names, ".part") if m != self.member and m not in leaving]
        return [m for m in self.newer_members(others) if _held(self.path / f"m-{m}.lock")]

    def _refused(self, cache_key: str) -> bool:
        f = self._files.get(cache_key)
        return f is not None and f.refused

    def _forget(self, member: str) -> None:
        fd = self._lock_fds.pop(member, None)
        if fd is not None:
            os.close(fd)
        self._files.pop(member, None)

    def _mismatch(self, reason: str) -> None:
        if self.on_mismatch is not None:
            self.on_mismatch(reason)

    def _note(self, note: Note) -> None:
        reason, family, declared, used = note
        self._mismatch(reason)
        if reason == "aggregation":
            warn_once(
                f"workers:aggregation:{family}",
                "tradeobs multiprocess: a worker of a later tradeobs release declares aggregation %r for %r, which "
                "this release does not know: merged as %r, the stand-in it declares (counted in "
                'tradeobs_agent_workers_mismatched_total{reason="aggregation"}; said once)',
                declared,
                family,
                used,
            )

    def _layout_read(self, name: str, cols: Columns) -> None:
        """A member's new layout was read: say once what a rolling deploy's mix of releases changes in it."""
        lay = cols.layout
        if lay.revision != REVISION:
            reason = "older" if lay.revision < REVISION else "newer"
            self._mismatch(reason)
            warn_once(
                f"workers:revision:{reason}",
                "tradeobs multiprocess: %s (pid %d) was written by an %s tradeobs release (snapshot revision %d; this "
                "one writes %d): merged (a rolling deploy; see `tradeobs docs agent`, Rolling deploys; counted in "
                'tradeobs_agent_workers_mismatched_total{reason="%s"}; said once)',
                name,
                cols.pid,
                "earlier" if reason == "older" else "later",
                lay.revision,
                REVISION,
                reason,
            )
        for note in lay.notes:
            self._note(note)

    def _read(self, name: str, cache_key: str, offer: Callable[[], None] | None = None) -> _File | None:
        """The decoded file ``name`` (decoded again only when it changed); None when missing or corrupt. ``offer``
        is called while a new layout is decoded (``PartReader.columns``)."""
        try:
            fd = os.open(self.path / name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            self._files.pop(cache_key, None)
            return None
        try:
            st = os.fstat(fd)
            # Not (inode, size, mtime): a file replaced within one clock tick (mtimes are coarse) by one of the same
            # size can get the freed inode number back, and would be taken for the one already read. Every file's
            # header holds its snapshot's time in ns and its body's CRC, so it tells one write from the next.
            sig = (st.st_ino, st.st_size, os.pread(fd, HEADER_SIZE, 0))
            cached = self._files.get(cache_key)
            if cached is not None and cached.sig == sig:
                return cached if cached.cols is not None else None
            if st.st_uid != self.uid or not stat.S_ISREG(st.st_mode):
                warn_once(f"workers:foreign:{name}", "tradeobs multiprocess: %s is not ours; left out", name)
                return None
            chunks = []
            left = st.st_size
            while left > 0:
                chunk = os.read(fd, left)
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        f = cached if cached is not None else _File(self._keys)
        f.sig = sig
        before = f.cols.layout if f.cols is not None else None
        was_refused, f.refused = f.refused, False
        try:
            f.cols, f.meta = f.reader.columns(b"".join(chunks), True, offer)
        except OtherFormat as exc:
            f.cols, f.meta, f.refused = None, {}, True
            if not was_refused:  # once per worker's file, not at each of its publishes (every 0.2-1 s)
                self._mismatch("format")
            warn_once(
                f"workers:format:{exc.format}",
                "tradeobs multiprocess: %s was written by a tradeobs release this one cannot read (%s): that worker "
                "is left out of /metrics and the live view until a worker of its release leads; its file is kept, "
                "not folded, so its counts are not lost (counted in "
                'tradeobs_agent_workers_mismatched_total{reason="format"}; see `tradeobs docs agent`, Rolling deploys)',
                name,
                exc,
            )
        except CorruptPart as exc:
            self.corrupt += 1
            f.cols, f.meta = None, {}
            warn_once(f"workers:corrupt:{cache_key}", "tradeobs multiprocess: %s is corrupt (%s); left out", name, exc)
        else:
            if f.cols is not None and f.cols.layout is not before:
                self._layout_read(name, f.cols)
        self._files[cache_key] = f
        return f if f.cols is not None else None

    def columns(self, offer: Callable[[], None] | None = None) -> list[Columns]:
        """Every member's latest snapshot (``live`` as their locks say) and the retired totals, as columns."""
        with self._lock:
            retired = self._read("retired.part", "retired")
            folded = set(retired.meta.get("folded", ())) if retired is not None else set()
            out: list[Columns] = []
            metas: list[tuple[int, dict[str, Any]]] = []
            members = self.members()
            for gone in set(self._files) - set(members) - {"retired"}:
                self._forget(gone)
            for member in members:
                if member in folded:
                    continue  # counted in retired.part already (a fold that stopped before removing it)
                f = self._read(f"m-{member}.part", member, offer)
                if f is not None and f.cols is not None:
                    live = self.alive(member)
                    out.append(f.cols if live else f.cols._replace(live=False))
                    if live:
                        metas.append((f.cols.pid, f.meta))
            self._compare_multipliers(metas)
            if retired is not None and retired.cols is not None:
                out.append(retired.cols._replace(live=False))
            return out

    def _compare_multipliers(self, metas: list[tuple[int, dict[str, Any]]]) -> None:
        """Live members that disagree on a symbol's contract multiplier (``trading.instrument``; one that never
        declared it has 1): the merged notionals and exposure add up one worker's 50x and another's 1x. Counted
        (``reason="multiplier"``) and said once per symbol, naming the values and the workers' pids. A member of a
        release that does not publish its multipliers is left out."""
        seen = tuple((pid, id(meta)) for pid, meta in metas)
        if seen == self._multipliers_seen:
            return
        self._multipliers_seen = seen
        tables = [(pid, m) for pid, meta in metas if isinstance(m := meta.get("multipliers"), dict)]
        if len(tables) < 2:
            return
        for symbol in sorted({s for _, m in tables for s in m} - self._multiplier_conflicts):
            by_value: dict[float, list[int]] = {}
            for pid, m in tables:
                by_value.setdefault(float(m.get(symbol, 1.0)), []).append(pid)
            if len(by_value) < 2:
                continue
            self._multiplier_conflicts.add(symbol)
            self._mismatch("multiplier")
            said = "; ".join(
                f"{value:g}{'' if any(symbol in m for p, m in tables if p in pids) else ' (not declared)'} in pid "
                + ", ".join(map(str, sorted(pids)))
                for value, pids in sorted(by_value.items())
            )
            warn_once(
                f"workers:multiplier:{symbol}",
                "tradeobs multiprocess: the workers disagree on the contract multiplier of %r: %s. The service's "
                "notionals and exposure of it add up different sizes; declare it in every worker at start-up "
                "(trading.instrument, or TRADEOBS_CONTRACT_MULTIPLIERS for every process; counted in "
                'tradeobs_agent_workers_mismatched_total{reason="multiplier"}; said once)',
                symbol,
                said,
                console=True,
            )

    def parts(self) -> list[Part]:
        """:meth:`columns` as whole snapshots."""
        return [to_part(c) for c in self.columns()]

    def read_merged(
        self,
        names: Collection[str] | None = None,
        offer: Callable[[], None] | None = None,
        exemplars: bool = True,
    ) -> Snapshot:
        """The whole group's snapshot from the files as they are now (only ``names`` when given; without exemplars
        with ``exemplars=False``: the live frame's); ``offer`` is called between slices of the merge
        (``Merger.merge``) and of a new layout's decoding."""
        cols = self.columns(offer)
        with self._lock:
            return self._merger.merge(cols, names, offer, exemplars)

    def live_member_ids(self) -> list[str]:
        """Members whose process holds its lock (this one included, once it has published)."""
        with self._lock:
            return [m for m in self.members() if self.alive(m)]

    def joined_member_ids(self) -> list[str]:
        """Members whose process holds its lock, whether or not they have published yet (this one included)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        published = set(_member_ids(names, ".part"))
        out: list[str] = []
        with self._lock:
            for m in _member_ids(names, ".lock"):
                if m in published or m == self.member or m in self._lock_fds:
                    if self.alive(m):  # keeps the lock file open, as for every member with a snapshot
                        out.append(m)
                elif _held(self.path / f"m-{m}.lock"):  # not kept open: it may never publish (nor be folded)
                    out.append(m)
        return out

    def mark_leaving(self) -> None:
        """Say that this member is going away (its server began to stop): the others stop counting on it to lead."""
        fd = os.open(self.path / f"m-{self.member}.leaving", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)

    def staying_member_ids(self) -> list[str]:
        """The other members whose process holds its lock and has not said it is leaving (:meth:`mark_leaving`)."""
        try:
            leaving = set(_member_ids(os.listdir(self.path), ".leaving"))
        except OSError:
            leaving = set()
        return [m for m in self.joined_member_ids() if m != self.member and m not in leaving]

    def live_members(self) -> int:
        return len(self.live_member_ids())

    # ------------------------------------------------------------------ the leader's housekeeping
    def fold_exited(self) -> list[str]:
        """Leader only: add the counters and histograms of exited members to ``retired.part``, then remove their
        files. Returns the members folded. Raises ``OSError`` when the directory cannot be written."""
        if self._leader_fd < 0:
            return []
        with self._lock:
            retired = self._read("retired.part", "retired")
            if retired is None and self._refused("retired"):
                return []  # the retired totals of a release this one cannot read: never replaced by fewer
            folded: list[str] = list(retired.meta.get("folded", ())) if retired is not None else []
            parts = [to_part(retired.cols)] if retired is not None and retired.cols is not None else []
            done: list[str] = []
            for member in self.members():
                if member == self.member or self.alive(member):
                    continue
                if member not in folded:
                    f = self._read(f"m-{member}.part", member)
                    if f is None and self._refused(member):
                        continue  # a release this one cannot read: kept for a leader of its release to fold
                    if f is not None and f.cols is not None:
                        parts.append(to_part(f.cols._replace(live=False)))
                    folded.append(member)
                done.append(member)
            if not done:
                return []
            total = merge(parts)  # of exited processes only the counters and histograms remain
            folded = folded[-FOLDED_KEEP:]
            self._atomic_write("retired.part", PartWriter(0).encode(total, {"folded": folded}))
            for member in done:
                for suffix in (".part", ".lock", ".leaving"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path / f"m-{member}{suffix}")
                self._forget(member)
            self._remove_leftovers()
            return done

    def _remove_leftovers(self) -> None:
        """Temporary files of processes that are gone, and anything that is not ours to keep."""
        known = {"key.json", "leader.lock", "leader.sock", "retired.part"}
        for name in os.listdir(self.path):
            if name in known or name.startswith("m-"):
                continue
            if name.startswith(CHILD_REPORT) and name.endswith(".told"):
                pid = name[len(CHILD_REPORT) :].split("-", 1)[0]
                if pid.isdigit() and process_start(int(pid)) != "gone":
                    continue  # for a member that has not read it yet (child_reports)
            if name.startswith(".") and name.endswith(".tmp"):
                pid = name.rsplit(".", 2)[-2]
                if pid.isdigit() and process_start(int(pid)) != "gone":
                    continue  # another member writing its file right now
            with contextlib.suppress(OSError):
                target = self.path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()

    # ------------------------------------------------------------------ leaving
    def close(self) -> None:
        """Leave: give up leadership and the member lock (the leader folds this member's counters)."""
        with self._lock:
            for fd in self._lock_fds.values():
                os.close(fd)
            self._lock_fds.clear()
            if self._leader_fd >= 0:
                os.close(self._leader_fd)
                self._leader_fd = -1
            if self._member_fd >= 0:
                os.close(self._member_fd)
                self._member_fd = -1
            if self._dir_fd >= 0:
                os.close(self._dir_fd)
                self._dir_fd = -1

    def forget_after_fork(self) -> None:
        """In a forked child: the inherited descriptors are the parent's locks. Close them without unlocking
        (an unlock would release the parent's lock: a flock belongs to the open file, shared after fork)."""
        for fd in (*self._lock_fds.values(), self._leader_fd, self._member_fd, self._dir_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._lock_fds.clear()
        self._leader_fd = self._member_fd = self._dir_fd = -1
        self._lock = threading.Lock()


class _File:
    """A decoded snapshot file and what identifies its version on disk."""

    __slots__ = ("cols", "meta", "reader", "refused", "sig")

    def __init__(self, keys: dict[Any, Any]) -> None:
        self.sig: tuple[int, int, bytes] = (0, 0, b"")
        self.reader = PartReader(keys)
        self.cols: Columns | None = None
        self.meta: dict[str, Any] = {}
        self.refused = False  # of another format (wire.OtherFormat): kept for a leader of its release


def _digest(service: str, key: GroupKey) -> str:
    return hashlib.sha256(f"{service}\0{key.pid}\0{key.start}".encode()).hexdigest()[:16]


def _aliased(root: Path, digest: str) -> Path | None:
    """The group directory that ``a-<digest>`` names (a group that continues another: ``Store.open``), if both are
    there and are what they claim; else None."""
    alias = root / f"a-{digest}"
    try:
        if not stat.S_ISREG(alias.lstat().st_mode):
            return None
        name = alias.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    target = root / name
    if not (name.startswith("g-") and "/" not in name and target.is_dir() and not target.is_symlink()):
        return None
    return target


def _write_alias(root: Path, digest: str, name: str) -> None:
    tmp = root / f".a-{digest}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, name.encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, root / f"a-{digest}")


def _group_dirs(root: Path) -> list[Path]:
    """The group directories under ``root`` (at most ``_STALE_SCAN``; none when it cannot be read)."""
    try:
        entries = sorted(root.iterdir())[:_STALE_SCAN]
    except OSError:
        return []
    return [d for d in entries if d.name.startswith("g-") and not d.is_symlink() and d.is_dir()]


def clean_stale(root: Path, keep: Path) -> list[Path]:
    """Remove group directories left by crashed runs: their starting process is gone (or its pid now names
    another process) and no member holds its lock. Returns what was removed."""
    removed: list[Path] = []
    for d in _group_dirs(root):
        if d == keep:
            continue
        try:
            key = orjson.loads((d / "key.json").read_bytes())
            now = process_start(int(key["pid"]))
            gone = now == "gone" or now != str(key["start"])  # not running, or its pid names another process
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            gone = True  # no readable key: whatever it was, it is not a group we can name
        if not gone or _any_locked(d):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    with contextlib.suppress(OSError):  # aliases (a-<digest>: Store.open) of groups that are gone
        for alias in root.glob("a-*"):
            if _aliased(root, alias.name[2:]) is None:
                with contextlib.suppress(OSError):
                    alias.unlink()
    return removed


class RunningGroup(NamedTuple):
    """A worker group with a live member, as ``tradeobs doctor`` shows it."""

    path: Path
    service: str
    kind: str  # how its workers were recognised: gunicorn, uvicorn, multiprocessing, fork, setting
    members: int  # processes holding their member lock
    leader: bool  # whether a live process holds the leader's lock (it serves the shared endpoint)
    size: int  # bytes of its files


def running_groups(base: str) -> list[RunningGroup]:
    """This user's worker groups under ``base`` that have a live member (a running service)."""
    out: list[RunningGroup] = []
    for d in _group_dirs(Path(base) / f"tradeobs-{os.getuid()}"):
        try:
            key = orjson.loads((d / "key.json").read_bytes())
            names = os.listdir(d)
        except (OSError, orjson.JSONDecodeError):
            continue  # being created or removed right now, or not a group
        members = sum(_held(d / f"m-{m}.lock") for m in _member_ids(names, ".lock"))
        if not members or not isinstance(key, dict):
            continue
        size = 0
        for name in names:
            with contextlib.suppress(OSError):  # a file replaced or removed meanwhile
                size += (d / name).lstat().st_size
        service, kind = str(key.get("service", "?")), str(key.get("kind", "?"))
        out.append(RunningGroup(d, service, kind, members, _held(d / "leader.lock"), size))
    return out


def _any_locked(d: Path) -> bool:
    """Whether a live process holds any lock in ``d`` (a member or the leader)."""
    return any(_held(lock) for lock in (*d.glob("m-*.lock"), d / "leader.lock"))


def _held(lock: Path) -> bool:
    """Whether a live process holds the lock file ``lock`` (False when there is none)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        return not _try_lock(fd)  # taken here, it is released with the descriptor
    finally:
        os.close(fd)


def _member_ids(names: Iterable[str], ext: str) -> list[str]:
    """Member ids from a group directory's file names ``m-<id><ext>`` (``.part``: snapshots, ``.lock``: locks), sorted.

    Sorted, not in ``os.listdir`` order: that order changes as members replace their files, and the merge plans
    (``wire.Merger``) are keyed by the members' order, so an unsorted list rebuilt a plan (~0.2 s at 4 workers x
    1,000 symbols) every few ticks."""
    return sorted(n[2 : -len(ext)] for n in names if n.startswith("m-") and n.endswith(ext))
