"""File sink: rotation by size and age, gzip, retention; failure isolation (unwritable dir, full disk)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.unit.logs._logs_helpers import Env
from tradeobs_agent.logs import get_logger
from tradeobs_agent.logs._sinks import FileSink


def _rotated(d: Path, stream: str) -> list[Path]:
    return sorted(p for p in d.glob(f"{stream}.*.jsonl*") if p.name != f"{stream}.jsonl")


def test_size_rotation_gzip_and_retention(make_env) -> None:
    env: Env = make_env(max_bytes=2048, backup_count=2)
    log = get_logger("execution")
    for i in range(200):
        log.info("record %04d padding %s", i, "x" * 40)
    env.flush()
    env.pipeline.shutdown(10.0)  # waits for the compressor too
    rotated = _rotated(env.dir, "execution")
    assert len(rotated) == 2 and all(p.name.endswith(".jsonl.gz") for p in rotated)
    for p in rotated:
        lines = gzip.decompress(p.read_bytes()).decode().splitlines()
        assert lines and all(json.loads(x)["stream"] == "execution" for x in lines)
        assert p.stat().st_mode & 0o777 == 0o640, oct(p.stat().st_mode)  # as the live file: not world-readable
    assert (env.dir / "execution.jsonl").stat().st_mode & 0o777 == 0o640
    assert (env.dir / "execution.jsonl").stat().st_size <= 2048
    current = [json.loads(x) for x in (env.dir / "execution.jsonl").read_text().splitlines()]
    assert current[-1]["message"].startswith("record 0199")


def test_age_rotation(make_env) -> None:
    env: Env = make_env(rotate_seconds=3600, backup_count=5)
    log = get_logger("risk")
    log.info("old")
    env.flush()
    env.pipeline.files._files["risk"].opened -= 7200  # the file is now two hours old
    log.info("new")
    env.flush()
    env.pipeline.shutdown(10.0)
    [rotated] = _rotated(env.dir, "risk")
    assert json.loads(gzip.decompress(rotated.read_bytes()))["message"] == "old"
    assert [json.loads(x)["message"] for x in (env.dir / "risk.jsonl").read_text().splitlines()] == ["new"]


def test_a_wall_clock_stepped_back_does_not_make_retention_delete_the_newest_file(
    make_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotated files are named by their UTC time and retention deletes the first names. After NTP stepped the clock
    back 10 minutes, the next rotated file was named before the ones rotated just earlier, and retention deleted it:
    the newest logs (those of the incident that made someone fix the clock) were gone, older ones kept."""
    env: Env = make_env(rotate_seconds=3600, backup_count=2)
    gmtime = time.gmtime
    monkeypatch.setattr(time, "gmtime", lambda s=None: gmtime(time.time_ns() // 10**9 if s is None else s))
    log = get_logger("risk")
    t0 = 1_800_000_000 * 10**9
    for message, wall in (("one", None), ("two", t0), ("three", t0 + 60 * 10**9), ("four", t0 - 540 * 10**9)):
        if wall is not None:
            monkeypatch.setattr(time, "time_ns", lambda wall=wall: wall)
            env.pipeline.files._files["risk"].opened -= 7200  # old enough to rotate at this record
        log.info(message)
        env.flush()
    env.pipeline.shutdown(10.0)
    kept = [json.loads(gzip.decompress(p.read_bytes()))["message"] for p in _rotated(env.dir, "risk")]
    assert kept == ["two", "three"]
    assert [json.loads(x)["message"] for x in (env.dir / "risk.jsonl").read_text().splitlines()] == ["four"]


def test_a_rotated_name_after_a_restart_is_after_the_files_already_there(make_env, monkeypatch) -> None:
    """The newest rotated name is read from the directory: a process started after the clock went back names its
    first rotated file after the earlier process's."""
    env: Env = make_env(rotate_seconds=3600, backup_count=5)
    gmtime = time.gmtime
    monkeypatch.setattr(time, "gmtime", lambda s=None: gmtime(time.time_ns() // 10**9 if s is None else s))
    env.dir.mkdir(parents=True, exist_ok=True)
    (env.dir / "risk.20300101T000000123456789.jsonl.gz").write_bytes(gzip.compress(b'{"message": "before"}\n'))
    get_logger("risk").info("one")
    env.flush()
    monkeypatch.setattr(time, "time_ns", lambda: 1_800_000_000 * 10**9)  # 2027, before that name
    env.pipeline.files._files["risk"].opened -= 7200
    get_logger("risk").info("two")
    env.flush()
    env.pipeline.shutdown(10.0)
    names = [p.name for p in _rotated(env.dir, "risk")]
    assert names == ["risk.20300101T000000123456789.jsonl.gz", "risk.20300101T000000123456790.jsonl.gz"]


def test_a_step_of_the_wall_clock_does_not_rotate_by_age(make_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The age of a file was read on the wall clock: a step forward of 2 hours rotated a file opened a second ago
    (rotate_seconds 3600), a step back of 2 hours kept one 3 hours old."""
    env: Env = make_env(rotate_seconds=3600, backup_count=5)
    log = get_logger("risk")
    log.info("one")
    env.flush()
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() + 7200)
    log.info("two")
    env.flush()
    env.pipeline.shutdown(10.0)
    assert _rotated(env.dir, "risk") == []
    assert [json.loads(x)["message"] for x in (env.dir / "risk.jsonl").read_text().splitlines()] == ["one", "two"]


def test_backup_count_zero_keeps_no_rotated_files(make_env) -> None:
    env: Env = make_env(max_bytes=1024, backup_count=0)
    for i in range(100):
        get_logger("system").info("r %d %s", i, "y" * 50)
    env.flush()
    env.pipeline.shutdown(10.0)
    assert _rotated(env.dir, "system") == []


@pytest.mark.faults
def test_unwritable_dir_other_sinks_continue(make_env, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be")
    env: Env = make_env(dir=str(blocker / "logs"))
    get_logger("execution").info("still exported")
    env.flush()
    assert "still exported" in [r.body for r in env.otlp_records()]
    assert env.counter("tradeobs.agent.sink.errors", sink="file") >= 1


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


@pytest.mark.faults
def test_full_disk_is_counted_and_writing_resumes(make_env, tmp_path: Path) -> None:
    """A real 64 KiB tmpfs: fill it, log (file fails, OTLP continues), free it, logging resumes."""
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "64k")
    try:
        env: Env = make_env(dir=str(mnt))
        log = get_logger("execution")
        log.info("before full")
        env.flush()
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        for i in range(50):
            log.info("while full %d %s", i, "z" * 200)
        env.flush()
        assert env.counter("tradeobs.agent.sink.errors", sink="file") >= 1
        bodies = [r.body for r in env.otlp_records()]
        assert sum(1 for b in bodies if str(b).startswith(("before full", "while full"))) == 51  # OTLP got all
        filler.unlink()
        deadline = time.monotonic() + 60  # back-off is at most 30 s; poll, do not assert on timing
        while time.monotonic() < deadline:
            log.info("after free")
            env.flush()
            if any(r["message"] == "after free" for r in env.lines("execution")):
                break
            time.sleep(0.2)
        messages = [r["message"] for r in env.lines("execution")]  # every line parses: partial lines were ended
        assert messages[0] == "before full" and "after free" in messages
        env.pipeline.shutdown(5.0)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _all_lines(d: Path) -> list[dict[str, object]]:
    out = []
    for p in sorted(d.glob("*.jsonl*")):
        data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        out += [json.loads(x) for x in data.splitlines() if x.strip()]
    return out


@pytest.mark.faults
def test_rotation_on_a_full_disk_counts_skipped_records_only(make_env, tmp_path: Path) -> None:
    """A file rotated while the disk is full cannot be gzipped: the plain rotated file is kept (its lines are not
    lost), retention still applies, and the failure is counted apart (``sink="file_gzip"``), not as a skipped
    record: ``sink.errors{sink="file"}`` is exactly the records missing from the files.

    Regression: the failed gzip was counted in ``sink.errors{sink="file"}`` as a skipped record (one more than
    were skipped) and skipped the retention pass.
    """
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "64k")
    try:
        env: Env = make_env(dir=str(mnt), max_bytes=4096, backup_count=5)
        log = get_logger("execution")
        logged = 0
        current = mnt / "execution.jsonl"
        while not current.exists() or current.stat().st_size < 3500:  # close to max_bytes, not past it
            log.info("before %03d %s", logged, "p" * 200)
            logged += 1
            env.flush()
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for chunk in (1 << 16, 1 << 12):
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * chunk):
                        pass
        finally:
            os.close(fd)
        for i in range(40):  # the next write passes max_bytes: the file is rotated, and the new one cannot grow
            log.info("full %03d %s", i, "q" * 200)
            logged += 1
        env.flush()
        assert env.pipeline.files.compressor.stop(10.0)  # the gzip attempt is done
        rotated = _rotated(mnt, "execution")
        assert [p.name.endswith(".jsonl") for p in rotated] == [True], rotated  # kept, not gzipped
        written = [r for r in _all_lines(mnt) if str(r["message"]).startswith(("before", "full"))]
        assert env.counter("tradeobs.agent.sink.errors", sink="file") == logged - len(written) > 0
        assert env.counter("tradeobs.agent.sink.errors", sink="file_gzip") == 1
        env.pipeline.shutdown(5.0)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_file_moved_away_by_logrotate_is_followed_by_a_new_one(env: Env) -> None:
    """logrotate without copytruncate (mv, then create): every later line went to the moved file, none to the
    new one a log shipper reads."""
    log = get_logger("execution")
    log.info("before")
    env.flush()
    (env.dir / "execution.jsonl").rename(env.dir / "execution.jsonl.1")
    (env.dir / "execution.jsonl").touch()
    log.info("after")
    env.flush()
    assert [r["message"] for r in env.lines("execution")] == ["after"]
    moved = [json.loads(x)["message"] for x in (env.dir / "execution.jsonl.1").read_text().splitlines()]
    assert moved == ["before"]
    assert env.counter("tradeobs.agent.sink.errors", sink="file") == 0


def test_a_log_directory_deleted_while_open_is_created_again_and_the_loss_counted(env: Env) -> None:
    """The directory deleted under the open files: every later line went to a deleted file, uncounted."""
    log = get_logger("execution")
    log.info("first")
    env.flush()
    log.info("second")
    env.flush()
    shutil.rmtree(env.dir)
    log.info("third")  # the write that finds the file gone: into the new file
    env.flush()
    assert [r["message"] for r in env.lines("execution")] == ["third"]
    # "second" went to the deleted file after the last check ("first" was checked when "second" was written)
    assert env.counter("tradeobs.agent.sink.errors", sink="file") == 1


def test_a_file_truncated_in_place_keeps_its_lines_and_its_size(env: Env) -> None:
    """logrotate's copytruncate: the same file, written at its new end; rotation by size counts from there."""
    log = get_logger("execution")
    log.info("before")
    env.flush()
    os.truncate(env.dir / "execution.jsonl", 0)
    log.info("after")
    env.flush()
    assert [r["message"] for r in env.lines("execution")] == ["after"]
    assert env.pipeline.files._files["execution"].size == (env.dir / "execution.jsonl").stat().st_size


@pytest.mark.faults
def test_console_failure_is_isolated(env: Env) -> None:
    from tradeobs_agent.logs._sinks import ConsoleSink

    class Broken:
        def write(self, s: str) -> int:
            raise OSError(5, "I/O error")

        def flush(self) -> None:
            pass

    env.pipeline.console = ConsoleSink(env.pipeline._selfm.sink_errors.bind(sink="console"), Broken())
    get_logger("execution").info("x")
    env.flush()
    assert env.counter("tradeobs.agent.sink.errors", sink="console") >= 1
    assert [r["message"] for r in env.lines("execution")] == ["x"]
    assert len(env.otlp_records()) >= 1


def test_console_lines_cannot_be_forged_or_drive_the_terminal(env: Env) -> None:
    """A message, an argument, a logger name or a field from outside (a client's order id, a venue's reason) holding
    a newline, a carriage return, ANSI escapes or a right-to-left override is one console line with them escaped: it
    cannot print a fake record under it, clear the screen, retitle the terminal or reorder what is read."""
    import io

    from tradeobs_agent.logs._sinks import ConsoleSink

    out = io.StringIO()
    env.pipeline.console = ConsoleSink(env.pipeline._selfm.sink_errors.bind(sink="console"), out)
    forged = "\n2026-12-05T07:00:00.000000Z ERROR    risk        tradeobs.risk: kill switch engaged"
    ansi = "\x1b[2J\x1b[31mred\x1b]0;title\x07\rover\u202egnp.exe\x85\u2028"
    get_logger("execution").warning("order %s" + forged, "cid-1" + ansi, extra={"venue": "v" + forged + ansi})
    get_logger("execution").info("plain\ttab é 中")
    env.flush()
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2, lines
    assert not any(c in text for c in "\x1b\x07\r\x85\u2028\u202e")
    first = lines[0]
    assert first.count("kill switch engaged") == 2  # in the message and in the field, on the record's own line
    assert "\\n2026-12-05T07:00:00" in first and "\\x1b[2J" in first and "\\u202e" in first and "\\r" in first
    assert lines[1].endswith("plain\ttab é 中  thread=MainThread")
    # the files keep the record as it was
    (rec,) = [r for r in env.lines("execution") if r["message"].startswith("order")]
    assert rec["message"] == "order cid-1" + ansi + forged


def test_console_values_with_spaces_or_quotes_are_quoted_logfmt_style(env: Env) -> None:
    """A field's value that is not one bare word is quoted, logfmt's way, so the line splits back into its fields:
    ``strategy=mm & hedge`` read as a field ``strategy=mm`` and two stray words. Before (2026-12-07) every value was
    printed bare; one bare word (``venue=binance``, a number) still is."""
    import io
    import re

    from tradeobs_agent.logs._sinks import ConsoleSink

    out = io.StringIO()
    env.pipeline.console = ConsoleSink(env.pipeline._selfm.sink_errors.bind(sink="console"), out)
    fields = {
        "strategy": "mm & hedge",
        "venue": "binance",
        "qty": 0.5,
        "reason": 'say "no" \\ then\nstop\tnow',
        "eq": "a=b",
        "empty": "",
        "path": "C:\\tmp",
    }
    get_logger("execution").info("filled", extra=fields)
    env.flush()
    (line,) = out.getvalue().splitlines()
    assert 'strategy="mm & hedge"' in line and "  venue=binance  " in line and "  qty=0.5  " in line, line
    assert 'reason="say \\"no\\" \\\\ then\\nstop\\tnow"' in line, line
    assert 'eq="a=b"' in line and 'empty=""' in line and 'path="C:\\\\tmp"' in line, line
    # a logfmt reader gets every value back as it was logged
    pairs = re.findall(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)', line.split(": filled", 1)[1])
    unquote = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    read = {k: re.sub(r"\\(.)", lambda m: unquote[m.group(1)], v[1:-1]) if v.startswith('"') else v for k, v in pairs}
    assert {k: read[k] for k in fields} == {k: str(v) for k, v in fields.items()}, read


def test_console_field_names_from_outside_cannot_forge_a_line_or_split_a_field(env: Env) -> None:
    """A field's name holding a newline (``extra={"a\\nFAKE=1": 2}``) started a forged line of its own on the console,
    and ``order id=1`` read as a stray word and a field ``id``: such characters in a name are written ``_``. The
    files keep the name as it was."""
    import io

    from tradeobs_agent.logs._sinks import ConsoleSink

    out = io.StringIO()
    env.pipeline.console = ConsoleSink(env.pipeline._selfm.sink_errors.bind(sink="console"), out)
    fields = {"order id": 1, "a\n2026-12-05T07:00:00Z ERROR": 2, "k=v": 3, 'q"x\\y': 4, "\u2028": 5, "plain.key": 6}
    get_logger("execution").info("filled", extra=fields)
    env.flush()
    (line,) = out.getvalue().splitlines()
    extras = line.split(": filled  ", 1)[1].split("  ")
    assert extras[:6] == ["order_id=1", "a_2026-12-05T07:00:00Z_ERROR=2", "k_v=3", "q_x_y=4", "_=5", "plain.key=6"], (
        line
    )
    (rec,) = [r for r in env.lines("execution") if r["message"] == "filled"]
    assert {k: rec[k] for k in fields} == fields


def test_after_fork_child_logs_with_its_own_instance_id(env: Env) -> None:
    get_logger("execution").info("parent")
    env.flush()
    pid = os.fork()
    if pid == 0:  # child: the agent's fork hook restarted the pipeline
        code = 1
        try:
            get_logger("execution").info("child")
            code = 0 if env.pipeline.flush(10.0) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    recs = {r["message"]: r for r in env.lines("execution")}
    assert recs["child"]["service.instance.id"] != recs["parent"]["service.instance.id"]


# --------------------------------------------------------------------------- processes sharing a log directory


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n


def _stream_lines(d: Path) -> list[bytes]:
    """Every line of a stream's files: the current one, rotated ones, gzipped ones (not the rotation journal)."""
    out: list[bytes] = []
    for p in sorted(d.glob("execution*.jsonl*")):
        out += (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()).splitlines()
    return out


def test_a_line_after_another_process_rotated_the_file_goes_to_the_new_one(tmp_path: Path) -> None:
    """Two agents writing one log directory (two services started in one project directory, a forked worker) write
    the same files. One rotated the file and its compressor gzipped and deleted it; the other went on appending to
    the deleted file until its once-a-second check: those lines were lost, and counted nowhere (or, the check come,
    lines that were safe in the .gz counted as lost). Each batch now takes the file's lock and checks under it that
    the path still names its file. Two sinks of one process have two open files, whose locks exclude each other as
    two processes' do: the steps in a fixed order, no timing."""
    a_err, b_err, gz = _Count(), _Count(), _Count()
    a = FileSink(str(tmp_path), 1024, 0, 100, a_err, gz)
    b = FileSink(str(tmp_path), 1024, 0, 100, b_err, gz)
    a.start()
    b.start()
    b.write("execution", [b'{"p": "b", "i": 0}\n'])  # b has the file open
    a_lines = [b'{"p": "a", "i": %d, "pad": "%s"}\n' % (i, b"x" * 60) for i in range(30)]
    for line in a_lines:  # past 1,024 bytes: a rotates the file
        a.write("execution", [line])
    a.close(30.0)  # its compressor has gzipped the rotated file and deleted it
    assert list(tmp_path.glob("execution.*.jsonl.gz"))
    b.write("execution", [b'{"p": "b", "i": 1}\n'])
    b.close(30.0)
    lines = _stream_lines(tmp_path)
    wanted = [line.rstrip(b"\n") for line in [*a_lines, b'{"p": "b", "i": 0}\n', b'{"p": "b", "i": 1}\n']]
    assert sorted(lines) == sorted(wanted)
    assert (a_err.n, b_err.n, gz.n) == (0, 0, 0)


_WRITER = """
import os, sys, time
from tradeobs_agent.logs._sinks import FileSink

class Count:
    n = 0
    def add(self, n):
        self.n += n

directory, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
errors, gz = Count(), Count()
sink = FileSink(directory, 4096, 0, 100_000, errors, gz)
sink.start()
while not os.path.exists(go):  # both start writing together
    time.sleep(0.01)
i = 0
while i < n:
    k = min(1 + i % 7, n - i)  # batches of 1 to 7 lines, as the log worker writes them
    sink.write("execution", [b'{"p": "%s", "i": %d, "pad": "%s"}\\n' % (tag.encode(), j, b"x" * (j % 50))
                             for j in range(i, i + k)])
    i += k
sink.close(60)
print(errors.n, gz.n)
"""


def test_two_processes_writing_one_log_directory_keep_every_line_whole_and_once(tmp_path: Path) -> None:
    """Two processes appending to and rotating the same files (4 KiB each: hundreds of rotations): every line of
    both is in the files once and whole, nothing is counted as lost, and no rotation fails (each process renamed
    the path the other had just renamed: "cannot rotate log file ... No such file or directory")."""
    import sys

    d, go, n = tmp_path / "logs", tmp_path / "go", 20_000
    d.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(d), tag, str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in "ab"
    ]
    try:
        time.sleep(0.5)  # not a threshold: they write together or one after the other, the check is the same
        go.write_text("")
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [(p.returncode, out, err) for p, (out, err) in zip(procs, results, strict=True)] == [(0, "0 0\n", "")] * 2
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for line in _stream_lines(d):
        record = json.loads(line)  # whole lines only
        seen[record["p"]].append(record["i"])
    assert {tag: sorted(ids) for tag, ids in seen.items()} == {"a": list(range(n)), "b": list(range(n))}
