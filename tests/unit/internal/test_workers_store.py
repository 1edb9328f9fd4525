"""_internal/workers/store.py: the shared directory is trusted only when it is ours; crashed runs are cleaned."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from tradeobs_agent._internal.workers import store as store_module
from tradeobs_agent._internal.workers.detect import GroupKey, process_start
from tradeobs_agent._internal.workers.store import JoinError, Store
from tradeobs_agent.metrics import Registry
from tradeobs_agent.metrics.wire import HEADER_SIZE, PartWriter


def _key(pid: int | None = None) -> GroupKey:
    pid = os.getpid() if pid is None else pid
    return GroupKey("setting", pid, process_start(pid))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _counted(n: int) -> Registry:
    reg = Registry()
    reg.counter("orders").bind(side="buy").add(n)
    reg.gauge("pos", aggregation="sum").bind(symbol="X").set(n)
    reg.self_metrics.exports_failed.add(1, {"exporter": "otlp"})
    return reg


def _orders(store: Store) -> float:
    return sum(p.value for p in store.read_merged().numbers("orders"))


def test_members_publish_and_one_reads_them_all(tmp_path: Path) -> None:
    a = Store.open(str(tmp_path), _key(), "svc")
    b = Store.open(str(tmp_path), _key(), "svc")  # another member (its own locks), same directory
    try:
        assert a.path == b.path and a.member != b.member
        a.publish(_counted(2).snapshot())
        b.publish(_counted(3).snapshot())
        assert _orders(a) == 5 and _orders(b) == 5
        assert {p.attributes["pid"] for p in a.read_merged().numbers("tradeobs.agent.exports.failed")} == {os.getpid()}
        assert a.live_members() == 2
        assert not a.publish(_counted(2).snapshot(), force=False)  # nothing changed: not written again
    finally:
        a.close()
        b.close()


def test_an_exited_members_counters_are_folded_once_and_its_gauges_end(tmp_path: Path) -> None:
    a = Store.open(str(tmp_path), _key(), "svc")
    b = Store.open(str(tmp_path), _key(), "svc")
    try:
        assert a.try_lead() and not b.try_lead()
        a.publish(_counted(2).snapshot())
        b.publish(_counted(3).snapshot())
        b.close()  # b's process exits (its lock goes with it)
        assert _orders(a) == 5  # still counted from its file, before any fold
        assert a.fold_exited() == [b.member]
        assert not (a.path / f"m-{b.member}.part").exists() and not (a.path / f"m-{b.member}.lock").exists()
        merged = a.read_merged()
        assert _orders(a) == 5
        assert [p.value for p in merged.numbers("pos")] == [2]  # b's position ended with it
        assert a.fold_exited() == []
        # A fold that stopped after writing retired.part but before removing the member's file:
        # the member's id is in retired.part, so its file is never counted twice, and the next fold removes it.
        c = Store.open(str(tmp_path), _key(), "svc")
        c.publish(_counted(4).snapshot())
        c.close()
        data = (a.path / f"m-{c.member}.part").read_bytes()
        a.fold_exited()
        (a.path / f"m-{c.member}.part").write_bytes(data)
        assert _orders(a) == 9
        assert a.fold_exited() == [c.member] and _orders(a) == 9
    finally:
        a.close()


def test_a_corrupt_snapshot_is_left_out_said_once_and_removed_when_its_member_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = Store.open(str(tmp_path), _key(), "svc")
    try:
        a.try_lead()
        a.publish(_counted(2).snapshot())
        (a.path / "m-999999-deadbeef.part").write_bytes(b"TOBS\1\0" + os.urandom(200))  # format 1
        (a.path / "m-999999-deadbeef.lock").write_bytes(b"")
        good = PartWriter(7).encode(_counted(50).snapshot())
        (a.path / "m-999998-cafecafe.part").write_bytes(good[:-10])  # torn
        with caplog.at_level(logging.WARNING, "tradeobs"):
            assert _orders(a) == 2
            assert _orders(a) == 2
        assert a.corrupt == 2
        assert caplog.text.count("is corrupt") == 2  # once per file, not per read
        assert sorted(a.fold_exited()) == ["999998-cafecafe", "999999-deadbeef"]
        assert sorted(p.name for p in a.path.iterdir() if p.name.startswith("m-")) == [
            f"m-{a.member}.lock",
            f"m-{a.member}.part",
        ]
    finally:
        a.close()


def test_a_stale_socket_or_temporary_files_are_replaced_by_the_leader(tmp_path: Path) -> None:
    a = Store.open(str(tmp_path), _key(), "svc")
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(a.socket_address)  # a leader that died leaves its socket behind
        s.close()
        (a.path / ".m-x.part.999999.tmp").write_bytes(b"half")  # written by a process that is gone
        (a.path / "unexpected").mkdir()
        assert a.try_lead()
        a.remove_socket()
        assert not os.path.exists(a.socket_path)
        a.publish(_counted(1).snapshot())
        b = Store.open(str(tmp_path), _key(), "svc")
        b.publish(_counted(1).snapshot())
        b.close()
        a.fold_exited()
        assert not (a.path / ".m-x.part.999999.tmp").exists() and not (a.path / "unexpected").exists()
    finally:
        a.close()


def test_a_spawn_childs_report_is_counted_once_by_its_parent_and_kept_by_the_leader_until_then(tmp_path: Path) -> None:
    """A ``spawn`` child that recorded without ``init()`` leaves ``c-<parent pid>-<child pid>.told`` (``pool_child``);
    the leader's clean-up kept nothing it did not know, so a report could go before its parent counted it. Now the
    leader keeps a live parent's reports, removes a gone parent's, and the parent counts each once."""
    a = Store.open(str(tmp_path), _key(), "svc")
    try:
        mine, gone = a.path / f"c-{os.getpid()}-4242.told", a.path / f"c-{_dead_pid()}-4343.told"
        mine.write_bytes(b"")
        gone.write_bytes(b"")
        assert a.try_lead()
        b = Store.open(str(tmp_path), _key(), "svc")
        b.publish(_counted(1).snapshot())
        b.close()
        assert a.fold_exited() == [b.member]  # the leader's clean-up, once a member exited
        assert mine.exists() and not gone.exists()
        assert a.child_reports() == 1 and not mine.exists()
        assert a.child_reports() == 0  # counted once
    finally:
        a.close()


def test_a_members_contract_multipliers_are_built_again_only_when_one_is_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each snapshot a member writes (every second, five a second while the live view is watched) carries its
    declared contract multipliers, which the members compare. The table was copied under its lock and put in a new
    meta at every snapshot, though declarations are made once at start-up; now the same table is published until a
    declaration changes it, and a declaration reaches the next snapshot."""
    from tradeobs_agent import agent as agent_module
    from tradeobs_agent import trading
    from tradeobs_agent.trading import contracts

    monkeypatch.setattr(store_module, "_meta_source", agent_module._group_meta)  # as init() sets it
    a = Store.open(str(tmp_path), _key(), "svc")
    try:
        trading.instrument("ESZ6", multiplier=50)
        first = a._meta()
        a.publish(_counted(1).snapshot())
        assert a._meta() is first and a._meta()["multipliers"] is first["multipliers"]  # nothing changed: kept
        trading.instrument("ESZ6", multiplier=50)  # the same declaration again: nothing changes
        assert a._meta() is first
        trading.instrument("CLF7", multiplier=1000)  # a new one: built again, and on the next snapshot
        assert a._meta() is not first and a._meta()["multipliers"] == {"ESZ6": 50.0, "CLF7": 1000.0}
        a.publish(_counted(1).snapshot())
        b = Store.open(str(tmp_path), _key(), "svc")
        try:
            b.read_merged()
            assert b._files[a.member].meta["multipliers"] == {"ESZ6": 50.0, "CLF7": 1000.0}
        finally:
            b.close()
    finally:
        a.close()
        contracts.reset()


def test_a_crashed_runs_group_is_removed_a_live_one_kept(tmp_path: Path) -> None:
    dead = Store.open(str(tmp_path), _key(_dead_pid()), "old")  # its starting process is gone
    dead.publish(_counted(1).snapshot())
    dead.close()  # ... and so are its members
    alive = Store.open(str(tmp_path), _key(_dead_pid()), "other")  # gone too, but a member still runs
    garbage = tmp_path / f"tradeobs-{os.getuid()}" / "g-0000000000000000"
    garbage.mkdir()
    (garbage / "key.json").write_bytes(b"{not json")
    try:
        fresh = Store.open(str(tmp_path), _key(), "new")
        try:
            assert not dead.path.exists() and not garbage.exists()
            assert alive.path.exists()
        finally:
            fresh.close()
    finally:
        alive.close()


@pytest.mark.parametrize("problem", ["open to others", "a symlink", "a file", "another owner"])
def test_a_directory_that_is_not_ours_is_never_trusted(tmp_path: Path, problem: str) -> None:
    root = tmp_path / f"tradeobs-{os.getuid()}"
    if problem == "open to others":
        root.mkdir(mode=0o700)
        os.chmod(root, 0o777)
        match = "open to other users"
    elif problem == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        root.symlink_to(tmp_path / "elsewhere")
        match = "not a directory"
    elif problem == "a file":
        root.write_bytes(b"")
        match = "not a directory"
    else:
        if os.getuid() != 0:
            pytest.fail("this case needs root to give the directory to another user; run it as root (CI does)")
        root.mkdir(mode=0o700)
        os.chown(root, 12345, 12345)
        match = "belongs to uid 12345"
    with pytest.raises(JoinError, match=match):
        Store.open(str(tmp_path), _key(), "svc")


def test_a_missing_multiprocess_dir_is_made_as_log_dir_is_and_a_file_there_is_refused(tmp_path: Path) -> None:
    """``tradeobs config check`` passes a ``multiprocess_dir`` it can create; the workers refused it ("is not a
    directory"), each ran on its own, and the service's endpoint showed one worker's numbers."""
    base = tmp_path / "run" / "mp"
    store = Store.open(str(base), _key(), "svc")
    try:
        assert store.path.parent == base / f"tradeobs-{os.getuid()}" and store.path.is_dir()
    finally:
        store.close()
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(JoinError, match="is not a directory"):
        Store.open(str(tmp_path / "afile"), _key(), "svc")
    with pytest.raises(JoinError, match="cannot be created"):
        Store.open(str(tmp_path / "afile" / "mp"), _key(), "svc")


class _Disk:
    """``os`` for ``store.py`` on a full disk: a write puts a few bytes in its file, then fails with ENOSPC, for as long
    as ``full()`` says so (the tmpfs of /dev/shm when the snapshots no longer fit)."""

    def __init__(self, full: Any) -> None:
        self.full = full

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        if self.full():
            os.write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)


def _temporary_files(path: Path) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(".tmp"))


def test_a_snapshot_the_disk_has_no_room_for_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker's half-written temporary file held the space its next write needed: the directory stayed full.
    a = Store.open(str(tmp_path), _key(), "svc")
    try:
        a.publish(_counted(1).snapshot())
        monkeypatch.setattr(store_module, "os", _Disk(lambda: True))
        with pytest.raises(OSError, match="No space"):
            a.publish(_counted(2).snapshot())
        monkeypatch.undo()
        assert _temporary_files(a.path) == []
        assert _orders(a) == 1  # the last snapshot written is still the one read
        a.publish(_counted(3).snapshot())
        assert _orders(a) == 3
    finally:
        a.close()


def test_a_crashed_runs_group_is_removed_before_a_new_group_needs_the_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A service stopped (or crashed) with /dev/shm full: the next start of any service could not write its group's
    # key, so none of its workers joined, and the dead group that held the space was never removed.
    dead = Store.open(str(tmp_path), _key(_dead_pid()), "old")
    dead.publish(_counted(1).snapshot())
    dead.close()
    monkeypatch.setattr(store_module, "os", _Disk(dead.path.exists))  # full while the dead group's files are there
    fresh = Store.open(str(tmp_path), _key(), "new")
    try:
        assert not dead.path.exists()
        fresh.publish(_counted(2).snapshot())
        assert _orders(fresh) == 2 and _temporary_files(fresh.path) == []
    finally:
        fresh.close()


def test_key_file_names_the_group(tmp_path: Path) -> None:
    a = Store.open(str(tmp_path), _key(), "svc")
    try:
        key = orjson.loads((a.path / "key.json").read_bytes())
        assert key == {"service": "svc", "pid": os.getpid(), "start": process_start(os.getpid()), "kind": "setting"}
        other = Store.open(str(tmp_path), _key(), "another-service")
        assert other.path != a.path
        other.close()
    finally:
        a.close()


def test_a_file_replaced_by_one_of_the_same_inode_size_and_mtime_is_read_again(tmp_path: Path) -> None:
    """A member's new file can get the inode number its last one freed, with the same size and, within one
    clock tick, the same mtime: the reader must still take the new values. Built by hand: rewritten in place,
    its mtime set back."""
    a = Store.open(str(tmp_path), _key(), "svc")
    b = Store.open(str(tmp_path), _key(), "svc")
    try:
        b.publish(_counted(1).snapshot())
        assert _orders(a) == 1
        part = b.path / f"m-{b.member}.part"
        before = part.stat()
        newer = PartWriter(os.getpid()).encode(_counted(2).snapshot(), b._meta())  # the meta it writes
        assert len(newer) == before.st_size
        with open(part, "r+b") as f:  # the same inode, the same size ...
            f.write(newer)
        os.utime(part, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and the same mtime
        assert part.stat().st_ino == before.st_ino and part.stat().st_mtime_ns == before.st_mtime_ns
        assert _orders(a) == 2
    finally:
        a.close()
        b.close()


def test_members_are_read_in_one_order_so_the_merge_plan_is_kept(tmp_path: Path) -> None:
    """``os.listdir`` order changes as members replace their files (on tmpfs, the default ``/dev/shm``, the last
    renamed comes first); read in that order, the leader built a new merge plan (0.2 s at 4 workers x 1,000
    symbols) every few ticks. Members come sorted, and one plan serves."""
    base = tmp_path
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # where groups live by default
        base = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="tradeobs-test-"))
    stores = [Store.open(str(base), _key(), "svc") for _ in range(4)]
    regs = [_counted(i + 1) for i in range(4)]
    try:
        for s, reg in zip(stores, regs, strict=True):
            s.publish(reg.snapshot())
        lead = stores[0]
        assert lead.members() == sorted(lead.members())
        plans = lead._merger._plans
        for n in range(1, 7):  # every member writes again, in another order each time: new files, new entries
            order = stores[n % 4 :] + stores[: n % 4]
            for s in reversed(order) if n % 2 else order:
                regs[stores.index(s)].counter("orders").bind(side="buy").add(1)
                s.publish(regs[stores.index(s)].snapshot())
            assert _orders(lead) == 10 + 4 * n
            assert len(plans) == 1
    finally:
        for s in stores:
            s.close()
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


def test_every_members_attribute_sets_are_one_object_so_the_plan_compares_them_by_identity(tmp_path: Path) -> None:
    """The leader's readers share one cache of attribute sets: the same set is one object in every member's
    layout, so a new merge plan (a worker met a new symbol) finds the members' common series by identity, not
    by walking each key (at 4 workers x 1,000 symbols, half the plan's time). The merge is the same."""
    stores = [Store.open(str(tmp_path), _key(), "svc") for _ in range(3)]
    try:
        for n, s in enumerate(stores):
            reg = _counted(n + 1)
            reg.counter("orders").bind(side="sell").add(1)
            s.publish(reg.snapshot())
        cols = stores[0].columns()
        keys = [{f[1]: [k for k, _, _ in f[6]] for f in c.layout.families} for c in cols]
        first = keys[0]["orders"]
        assert len(first) == 2
        for other in keys[1:]:
            assert all(a is b for a, b in zip(first, other["orders"], strict=True))
        assert _orders(stores[0]) == 1 + 2 + 3 + 3
    finally:
        for s in stores:
            s.close()


def _other_format(data: bytes) -> bytes:
    return data[:4] + (2).to_bytes(2, "little") + data[6:]  # the header's format: a release this one cannot read


def test_a_snapshot_of_a_release_this_one_cannot_read_is_left_out_counted_and_kept_for_its_own_leader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker of a release whose snapshot format this one does not read (a rolling deploy): left out, said once
    and counted, and, once it has exited, neither folded nor removed: a leader of its release counts it later.
    Before, it was "corrupt" and its file was removed at the fold, its counts lost for good. The retired totals of
    such a release are never replaced by this one's (fewer) either."""
    a = Store.open(str(tmp_path), _key(), "svc")
    reasons: list[str] = []
    a.on_mismatch = reasons.append
    try:
        assert a.try_lead()
        a.publish(_counted(2).snapshot())
        newer = f"m-{_dead_pid()}-0badf00d"
        (a.path / f"{newer}.part").write_bytes(_other_format(PartWriter(7).encode(_counted(50).snapshot())))
        (a.path / f"{newer}.lock").write_bytes(b"")
        with caplog.at_level(logging.WARNING, "tradeobs"):
            assert _orders(a) == 2
            assert _orders(a) == 2
        assert caplog.text.count("cannot read (snapshot format 2; this release reads format 1)") == 1
        assert reasons == ["format"] and a.corrupt == 0
        assert a.fold_exited() == []
        assert (a.path / f"{newer}.part").exists()
        retired = _other_format(PartWriter(0).encode(_counted(40).snapshot(), {"folded": []}))
        (a.path / "retired.part").write_bytes(retired)
        b = Store.open(str(tmp_path), _key(), "svc")
        b.publish(_counted(3).snapshot())
        b.close()
        assert a.fold_exited() == []  # would replace the other release's retired totals with b's alone
        assert (a.path / "retired.part").read_bytes() == retired
    finally:
        a.close()


def test_a_snapshot_of_a_release_this_one_cannot_read_is_counted_once_while_its_worker_publishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """That worker rewrites its file at every publish (every 0.2-1 s): each version is left out, but the worker is
    counted once (``tradeobs_agent_workers_mismatched_total{reason="format"}``), not once per publish (before: 3 of 3
    versions counted here, a second's worth a second for each such worker)."""
    a = Store.open(str(tmp_path), _key(), "svc")
    reasons: list[str] = []
    a.on_mismatch = reasons.append
    try:
        a.publish(_counted(2).snapshot())
        newer = a.path / f"m-{os.getpid()}-0badf00d.part"
        for n in (50, 51, 52):  # three publishes of the same worker
            newer.write_bytes(_other_format(PartWriter(7).encode(_counted(n).snapshot())))
            assert _orders(a) == 2
        assert reasons == ["format"]
        other = a.path / f"m-{os.getpid()}-0c0ffee0.part"  # a second worker of that release: counted too
        other.write_bytes(_other_format(PartWriter(8).encode(_counted(5).snapshot())))
        assert _orders(a) == 2
        assert reasons == ["format", "format"]
        both = [f"{os.getpid()}-0badf00d", f"{os.getpid()}-0c0ffee0"]
        assert a.newer_members([*both, a.member]) == both  # what a worker checks before it campaigns
        assert a.newer_staying() == []  # ... of those alive (these two have no process holding a lock)
        b = Store.open(str(tmp_path), _key(), "svc")  # a live member of a later release
        try:
            (b.path / f"m-{b.member}.part").write_bytes(_other_format(PartWriter(9).encode(_counted(1).snapshot())))
            assert a.newer_staying() == [b.member] and b.newer_staying() == []
            b.mark_leaving()
            assert a.newer_staying() == []  # leaving: not one to hand the lead to
        finally:
            b.close()
    finally:
        a.close()


def test_an_earlier_releases_snapshot_is_merged_and_counted_once_per_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = Store.open(str(tmp_path), _key(), "svc")
    reasons: list[str] = []
    a.on_mismatch = reasons.append
    try:
        data = PartWriter(7).encode(_counted(5).snapshot())
        n = int.from_bytes(data[24:28], "little")
        doc = orjson.loads(data[HEADER_SIZE : HEADER_SIZE + n])
        del doc["revision"]  # as the releases before revision 2 wrote it
        raw = orjson.dumps(doc)
        header = bytearray(data[:HEADER_SIZE])
        header[24:28] = len(raw).to_bytes(4, "little")
        header[28:32] = zlib.crc32(raw).to_bytes(4, "little")
        (a.path / f"m-{_dead_pid()}-0ld0ld00.part").write_bytes(bytes(header) + raw + data[HEADER_SIZE + n :])
        a.publish(_counted(2).snapshot())
        with caplog.at_level(logging.WARNING, "tradeobs"):
            assert _orders(a) == 7
            assert _orders(a) == 7
        assert reasons == ["older"]
        assert caplog.text.count("written by an earlier tradeobs release (snapshot revision 1; this one writes 2)") == 1
    finally:
        a.close()


def test_a_group_that_continues_another_joins_its_directory_and_later_members_find_it(tmp_path: Path) -> None:
    """gunicorn's USR2: the new arbiter's workers name the old arbiter as ``predecessor`` and join its group; its
    later workers (gunicorn no longer names the old one) find that group through the alias the first ones wrote."""
    old_key = _key()
    new_key = GroupKey("gunicorn", _dead_pid(), "1")  # another process (its liveness plays no part here)
    old = Store.open(str(tmp_path), old_key, "svc")
    first = Store.open(str(tmp_path), new_key, "svc", predecessor=old_key)
    later = Store.open(str(tmp_path), new_key, "svc")  # no predecessor named any more
    try:
        assert first.path == later.path == old.path
        first.publish(_counted(2).snapshot())
        later.publish(_counted(3).snapshot())
        old.publish(_counted(1).snapshot())
        assert _orders(old) == 6
        assert orjson.loads((old.path / "key.json").read_bytes())["pid"] == old_key.pid  # named by the live one
        # the promoted master upgraded again: its workers follow the alias to the same group
        newer = Store.open(str(tmp_path), GroupKey("gunicorn", _dead_pid(), "2"), "svc", predecessor=new_key)
        assert newer.path == old.path
        newer.close()
        other = Store.open(str(tmp_path), _key(), "another service", predecessor=old_key)  # never another service's
        assert other.path != old.path
        other.close()
    finally:
        for s in (old, first, later):
            s.close()
    shutil.rmtree(old.path)
    fresh = Store.open(str(tmp_path), _key(), "fresh")  # the alias of a group that is gone is removed
    fresh.close()
    assert not list(old.path.parent.glob("a-*"))
