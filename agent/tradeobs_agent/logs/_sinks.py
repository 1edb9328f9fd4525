"""The three sinks the log worker writes to. Each is isolated: a failure is counted and warned once.

>>> files = FileSink("logs", 50 << 20, rotate_seconds=86400, backup_count=10, errors=c, gzip_errors=g)  # doctest: +SKIP
>>> files.write("execution", [b'{"message": "filled"}\\n'])                            # doctest: +SKIP

* :class:`FileSink` - JSON lines, one file per stream: ``<dir>/<stream>.jsonl``
  (``market_data``, ``strategy``, ``risk``, ``execution``, ``system``) and
  ``<dir>/service.jsonl`` for every other logger. A file is rotated when it
  would pass ``max_bytes`` or is older than ``rotate_seconds``: it is renamed
  ``<stream>.<UTC time>.jsonl``, gzipped by a low-priority thread and only the
  newest ``backup_count`` rotated files are kept. An unwritable directory or a
  full disk makes the file sink skip records (each counted in
  ``tradeobs.agent.sink.errors{sink="file"}``) and retry with back-off; when
  the disk has room again writing resumes. A rotated file that cannot be
  gzipped (a full disk) is kept uncompressed, counted apart in
  ``tradeobs.agent.sink.errors{sink="file_gzip"}`` (no record is lost).
  A file another program moves away or deletes (logrotate, ``rm -r logs``) is
  noticed at the next batch and its path written again (:meth:`_File._watch`). Processes sharing the
  directory write each batch under the file's lock (:meth:`_File._lock`): whole lines, one rotation per file.
* :class:`OtlpSink` - ``Logger.emit()`` on the agent's OTel ``LoggerProvider``
  (its ``BatchLogRecordProcessor`` ships to the collector). Intentional
  divergence, for CPU: when every processor is the SDK's ``BatchLogRecordProcessor``
  and the result is the same (see :class:`_BatchEmit`), the record goes straight
  into the processors' batch queues, skipping the SDK's per-record wrapper
  objects and copies (about half the sink's cost).
* :class:`ConsoleSink` - one readable line per record on ``stderr``.
"""

from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import gzip
import os
import queue
import re
import shutil
import stat
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from .. import secret_values
from .._errors import on_console, warn_once
from .._internal import fastpath, gil, otel_private
from ._format import Built, safe_str

__all__ = ["ConsoleSink", "FileSink", "OtlpSink"]

_MAX_BACKOFF = 30.0


_told: set[tuple[str, str]] = set()
_told_lock = threading.Lock()


def _tell_console(directory: str, error: str, text: str) -> None:
    """Print a log file's failure on stderr too, once per directory and error, unless the log reaches the console.

    The warning itself goes to the log, whose files are what fails: with no console handler (the agent's own
    ``tradeobs.*`` records are not echoed as Python's last resort would) it reached no one, and ``tradeobs demo``
    named a ``logs/`` that was never written.
    """
    with _told_lock:
        if (directory, error) in _told:
            return
        _told.add((directory, error))
    if on_console():
        return
    with contextlib.suppress(OSError, ValueError):  # stderr closed or gone: nothing to print on
        print(f"tradeobs: {secret_values.mask(text)}", file=sys.stderr, flush=True)


def _newest_rotated(directory: str, stream: str) -> int:
    """The time (epoch ns) in the name of ``stream``'s newest rotated file in ``directory`` (0 for none)."""
    prefix = stream + "."
    newest = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for f in names:
        stamp = f[len(prefix) : len(prefix) + 24]
        if not f.startswith(prefix) or len(stamp) != 24 or stamp[8] != "T" or not (stamp[:8] + stamp[9:]).isdigit():
            continue
        try:
            sec = calendar.timegm(time.strptime(stamp[:15], "%Y%m%dT%H%M%S"))
        except ValueError:  # digits that are no time (a file of someone else's)
            continue
        newest = max(newest, sec * 1_000_000_000 + int(stamp[15:]))
    return newest


# The files a stream's rotations renamed, "<st_dev> <st_ino>" a line, appended by whichever process rotated
# (``<dir>/.<stream>.rotated``): a process that finds the file it wrote gone from every name (``st_nlink`` 0) reads
# it to tell a file another process rotated (its lines are in the rotated file, then its .gz) from one deleted (its
# last lines lost, counted). Kept to its last lines once it passes _JOURNAL_MAX bytes.
_JOURNAL_MAX = 64 * 1024
_JOURNAL_TAIL = 4096


def _journal(directory: str, stream: str) -> str:
    return os.path.join(directory, f".{stream}.rotated")


def _note_rotated(directory: str, stream: str, st: os.stat_result) -> None:
    path = _journal(directory, stream)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, f"{st.st_dev} {st.st_ino}\n".encode())  # one line, one write: whole with O_APPEND
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > _JOURNAL_MAX:  # its last lines are all a reader needs
        tmp = f"{path}.{os.getpid()}"
        with open(path, "rb") as f:
            f.seek(size - _JOURNAL_TAIL)
            tail = f.read().partition(b"\n")[2]
        with open(tmp, "wb") as f:
            f.write(tail)
        os.replace(tmp, path)


def _was_rotated(directory: str, stream: str, st: os.stat_result) -> bool:
    """Whether a process noted the file ``st`` describes as rotated (renamed, then gzipped), not deleted."""
    try:
        with open(_journal(directory, stream), "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - _JOURNAL_MAX))
            return f"{st.st_dev} {st.st_ino}".encode() in f.read().splitlines()
    except OSError:
        return False


class _File:
    """One append-only JSON-lines file with size/age rotation."""

    def __init__(self, sink: FileSink, stream: str) -> None:
        self.sink = sink
        self.stream = stream
        self.path = os.path.join(sink.directory, f"{stream}.jsonl")
        self.fd: int | None = None
        self.size = 0
        self.opened = 0.0
        self.retry_at = 0.0
        self.backoff = 0.5
        self.failing = False
        self.unwatched = 0  # records written since the last _watch
        self.rotated_ns: int | None = None  # the newest rotated file's time in its name (read from the directory)
        self.ident = (0, 0)  # (st_dev, st_ino) of the open file

    def _open(self) -> None:
        os.makedirs(self.sink.directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
        try:
            st = os.fstat(fd)
            self.size = st.st_size
            if self.size and os.pread(fd, 1, self.size - 1) != b"\n":
                # An earlier write was cut short (disk full): end that partial line first.
                os.write(fd, b"\n")
                self.size += 1
        except OSError:
            os.close(fd)
            raise
        self.fd = fd
        self.ident = (st.st_dev, st.st_ino)  # which file it is: the path still names it when stat(path) says so
        self.opened = time.monotonic()  # its age on the monotonic clock: a step of the wall clock moves no rotation

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Write ``lines``, rotating between lines when the next one would pass ``max_bytes``."""
        limit = self.sink.max_bytes
        pending: list[bytes] = []
        pending_bytes = 0
        for line in lines:
            if pending and self.size + pending_bytes + len(line) > limit:
                self.write(b"".join(pending), len(pending))
                pending, pending_bytes = [], 0
            pending.append(line)
            pending_bytes += len(line)
        if pending:
            self.write(b"".join(pending), len(pending))

    def write(self, data: bytes, n_records: int) -> bool:
        now = time.monotonic()
        if self.fd is None and now < self.retry_at:
            self.sink.errors.add(n_records)
            return False
        try:
            self._lock()
        except OSError as exc:
            self._failed(exc, n_records, now)
            return False
        try:
            return self._write_locked(data, n_records, now)
        finally:
            if self.fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _lock(self) -> None:
        """Open the path's file if needed and hold its lock (``flock``), the path still naming it.

        Other processes may write the same file: a second service started in the same directory, a forked worker.
        Each batch is written under the file's lock, and under it the sink checks that the path still names the file
        it has open (:meth:`_watch`, on every batch here): another process that rotated it renamed it under the same
        lock, so no line goes to a file after its rotation, which its compressor then gzips and deletes (such lines
        were lost), no two processes rotate the same file, and the size is the file's own, not one process's share.
        """
        for _ in range(8):  # another rotation between two looks: try again, a few times
            if self.fd is None:
                self._open()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)  # type: ignore[arg-type]
            except OSError as exc:  # a file system without locks (some network mounts): written as before
                warn_once(f"logs:lock:{self.path}", "cannot lock log file %s (%s); writing it unlocked", self.path, exc)
            self._watch()  # closes the file if its path now names another file, or none
            if self.fd is not None:
                return
        raise OSError(errno.EAGAIN, "the file was replaced at every look")

    def _write_locked(self, data: bytes, n_records: int, now: float) -> bool:
        if self.size and (
            self.size + len(data) > self.sink.max_bytes
            or (self.sink.rotate_seconds and now - self.opened >= self.sink.rotate_seconds)
        ):
            self._rotate()
            if self.fd is None:
                try:
                    self._lock()
                except OSError as exc:
                    self._failed(exc, n_records, now)
                    return False
        view = memoryview(data)
        start = self.size
        try:
            while view:
                written = os.write(self.fd, view)  # type: ignore[arg-type]
                self.size += written
                view = view[written:]
        except OSError as exc:
            if self.size > start and self.fd is not None:  # drop the partial batch: the file stays valid JSON lines
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, start)
                    self.size = start
            self._failed(exc, n_records, now)
            return False
        self.unwatched += n_records
        if self.failing:
            self.failing = False
            self.backoff = 0.5
            import logging

            logging.getLogger("tradeobs.logs").info("log file %s is writable again; file logging resumed", self.path)
        return True

    def _watch(self) -> None:
        """Close the open file if its path no longer names it (the next write opens the path again).

        Another program may move the file away (logrotate without ``copytruncate``), delete it, or delete the
        whole directory: the sink kept appending to what it had open, lines a log shipper reading the path never
        saw, or that nobody could read at all. Checked at every batch, under the file's lock (one ``stat`` call,
        and an ``fstat`` when the path names another file; see :meth:`_lock`). A file deleted while open took the
        lines written to it since the last check with it (its last batch): they are counted as skipped
        (``sink.errors{sink=file}``). A file truncated in place (``copytruncate``) is the same file, written at
        its new end (``O_APPEND``); its size is taken again so that rotation by size counts from there.
        """
        unwatched, self.unwatched = self.unwatched, 0
        try:
            st = os.stat(self.path)  # one call per batch when it is the same file, as it nearly always is
        except FileNotFoundError:
            st = None
        except OSError:
            return  # cannot tell (the directory unreadable): writing says what is wrong, if anything
        if st is not None and (st.st_dev, st.st_ino) == self.ident:
            self.size = st.st_size  # the file's, with what other processes wrote
            return
        try:
            fst = os.fstat(self.fd)  # type: ignore[arg-type]
        except OSError:
            return
        self.close()
        import logging

        if fst.st_nlink == 0 and not _was_rotated(self.sink.directory, self.stream, fst):
            # deleted: the lines written to it since the last check are gone
            self.sink.errors.add(unwatched)
            msg = (
                "log file %s was deleted while open (or its directory was); it is created again; the %d record(s) "
                "written to it since its previous batch are lost, counted in tradeobs.agent.sink.errors{sink=file}"
            )
            if warn_once(f"logs:file:{self.path}:deleted", msg, self.path, unwatched):
                _tell_console(self.sink.directory, "deleted", msg % (self.path, unwatched))
        else:
            logging.getLogger("tradeobs.logs").info(
                "log file %s was moved or replaced by another program or process (log rotation); writing to the new %s",
                self.path,
                self.path,
            )

    def _failed(self, exc: OSError, n_records: int, now: float) -> None:
        self.close()
        self.sink.errors.add(n_records)
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, _MAX_BACKOFF)
        self.failing = True
        name = errno.errorcode.get(exc.errno or 0, "error")
        msg = (
            "cannot write log file %s (%s); file logging for it is paused and retried, other sinks continue; "
            "skipped records are counted in tradeobs.agent.sink.errors{sink=file}. The directory is the setting "
            "log_dir (TRADEOBS_LOG_DIR; empty: no log files)"
        )
        if warn_once(f"logs:file:{self.path}:{name}", msg, self.path, exc):
            _tell_console(self.sink.directory, name, msg % (self.path, exc))

    def _rotate(self) -> None:
        """Rename the file, still open and locked (another process's next batch then finds its path names a new
        file), then close it: the next write opens the path again."""
        # The name's UTC time never goes back: after the wall clock was stepped back (NTP, an operator) a file named
        # by the clock sorted before the files rotated just before it, and retention, which deletes the first names,
        # deleted the newest logs and kept older ones.
        ns = time.time_ns()
        last = self.rotated_ns
        if last is None:
            last = self.rotated_ns = _newest_rotated(self.sink.directory, self.stream)
        if ns <= last:
            ns = last + 1
        self.rotated_ns = ns
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 1_000_000_000)) + f"{ns % 1_000_000_000:09d}"
        target = os.path.join(self.sink.directory, f"{self.stream}.{stamp}.jsonl")
        try:
            os.rename(self.path, target)
        except OSError as exc:
            warn_once(f"logs:rotate:{self.path}", "cannot rotate log file %s (%s)", self.path, exc)
            return  # written on, rotated at a later batch
        try:
            _note_rotated(self.sink.directory, self.stream, os.fstat(self.fd))  # type: ignore[arg-type]
        except OSError as exc:  # another process writing this stream may count its last batch as lost: said once
            warn_once(f"logs:journal:{self.path}", "cannot note the rotation of log file %s (%s)", self.path, exc)
        self.close()
        self.size = 0
        self.sink.compressor.submit(self.stream, target)


class Compressor:
    """A low-priority thread that gzips rotated files and applies the retention count.

    Its failures (compressing, pruning) are counted in ``errors`` (``tradeobs.agent.sink.errors{sink="file_gzip"}``),
    apart from the file sink's skipped records: a rotated file that cannot be compressed keeps its lines.
    """

    def __init__(self, directory: str, backup_count: int, errors: Any, label: str = "file_gzip") -> None:
        self.directory = directory
        self.backup_count = backup_count
        self.errors = errors
        self.label = label
        self._jobs: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tradeobs-log-gzip", daemon=True)
        self._thread.start()

    def submit(self, stream: str, path: str) -> None:
        self._jobs.put((stream, path))

    def stop(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        self._jobs.put(None)
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # lower this thread's CPU priority (Linux: per-thread nice)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            stream, path = job
            try:
                if self.backup_count > 0:
                    self._gzip(path)
            except Exception as exc:  # e.g. a full disk: the rotated file stays as it is, no line is lost
                self.errors.add(1)
                warn_once(
                    f"logs:gzip:{type(exc).__name__}",
                    "cannot compress rotated log file %s (%s); it is kept uncompressed; counted in "
                    "tradeobs.agent.sink.errors{sink=%s}",
                    path,
                    exc,
                    self.label,
                )
            try:
                self._prune(stream)
            except Exception as exc:
                self.errors.add(1)
                warn_once(f"logs:prune:{type(exc).__name__}", "cannot prune rotated log files in %s (%s)", path, exc)

    @staticmethod
    def _gzip(path: str) -> None:
        tmp = path + ".gz.tmp"
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)  # the log file's own (0640): not the umask's 0644
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
            with (
                open(path, "rb") as src,
                os.fdopen(fd, "wb") as raw,
                gzip.GzipFile(os.path.basename(path), "wb", 6, raw) as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, path + ".gz")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.unlink(path)

    def _prune(self, stream: str) -> None:
        prefix = stream + "."
        rotated = sorted(
            f
            for f in os.listdir(self.directory)
            if f.startswith(prefix)
            and f != stream + ".jsonl"
            and (f.endswith(".jsonl.gz") or f.endswith(".jsonl"))
            and f[len(prefix) : len(prefix) + 1].isdigit()
        )
        excess = len(rotated) - self.backup_count
        for f in rotated[: max(0, excess)]:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, f))


class FileSink:
    """Per-stream JSON-lines files; see the module docstring."""

    name = "file"

    def __init__(
        self,
        directory: str,
        max_bytes: int,
        rotate_seconds: int,
        backup_count: int,
        errors: Any,
        gzip_errors: Any,
        gzip_label: str = "file_gzip",
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        self.rotate_seconds = rotate_seconds
        self.errors = errors  # BoundCounter sink.errors{sink="file"}: records skipped
        self.gzip_errors = gzip_errors  # sink.errors{sink="file_gzip"}: rotated files left uncompressed
        self.compressor = Compressor(self.directory, backup_count, gzip_errors, gzip_label)
        self._files: dict[str, _File] = {}

    def start(self) -> None:
        self.compressor.start()

    def write(self, stream: str, lines: Sequence[bytes]) -> None:
        f = self._files.get(stream)
        if f is None:
            f = self._files[stream] = _File(self, stream)
        f.write_lines(lines)

    def paths(self) -> dict[str, str]:
        return {s: f.path for s, f in self._files.items()}

    def close(self, timeout: float = 1.0) -> None:
        for f in self._files.values():
            f.close()
        self.compressor.stop(timeout)

    def after_fork(self) -> None:
        for f in self._files.values():
            f.close()
        old = self.compressor
        self.compressor = Compressor(self.directory, old.backup_count, self.gzip_errors, old.label)
        self.compressor.start()


class OtlpSink:
    """Emit each record through the OTel SDK ``Logger`` so the provider's processors export it."""

    name = "otlp"

    def __init__(self, provider: Any, errors: Any) -> None:
        from opentelemetry.trace import (
            INVALID_SPAN_CONTEXT,
            NonRecordingSpan,
            SpanContext,
            get_current_span,
            set_span_in_context,
        )

        from .._internal.otlp_encode import Encoded, encode_log_record
        from .._version import __version__

        self._logger = provider.get_logger("tradeobs.logs", __version__)
        self._record = otel_private.ApiLogRecord
        self._severity = otel_private.severity_from_std
        self.errors = errors
        self._batch = _BatchEmit.for_logger(self._logger)
        self._new = object.__new__
        self._sev_cache: dict[int, Any] = {}
        self._sev_values: dict[int, int] = {}  # levelno -> its SeverityNumber's value (no enum property per record)
        self._span_context_type = SpanContext
        self._invalid = INVALID_SPAN_CONTEXT
        self._current_span = get_current_span
        self._set_span = set_span_in_context
        self._non_recording = NonRecordingSpan
        self._encode = encode_log_record
        self._encoded_cls = Encoded

    def emit(self, b: Built) -> None:
        if b.exported or b.logger.startswith("opentelemetry"):
            # The SDK's own warnings would feed back into the exporter that raised them; a record that an
            # OpenTelemetry logging handler of the application's emitted to this provider would be exported twice.
            return
        f = b.fields
        attrs = b.otel_attrs
        if attrs is None:
            attrs = otel_attributes(f)
        try:
            batch = self._batch
            if batch is not None and batch.accepts(attrs):
                if batch.encoded:
                    batch.put(self._encoded(b, attrs))
                else:
                    batch.emit(self._fast_record(b, attrs))
                return
            record = self._record(
                timestamp=b.ts_ns,
                observed_timestamp=time.time_ns(),
                context=self._context_of(b),
                severity_text=b.severity_text,
                severity_number=self._severity(b.levelno),
                body=f["message"],
                attributes=attrs,
            )
            self._logger.emit(record)
        except Exception as exc:  # the SDK or an exporter of yours raising: counted, the worker keeps going
            self.errors.add(1)
            warn_once(f"logs:otlp:{type(exc).__name__}", "cannot hand a log record to OpenTelemetry (%r)", exc)

    def _span_context(self, b: Built) -> Any:
        sc = b.span_context  # the builder's: the context's current span, or a trace that ``links`` found
        if sc is None:  # no context, or a Built made without the builder's look-up
            sc = self._current_span(b.context).get_span_context() if b.context else self._invalid
        return sc

    def _context_of(self, b: Built) -> Any:
        """``b.context``, with the record's span in it when that is another one (an order's trace, ``links``)."""
        ctx = b.context
        sc = b.span_context
        if sc is not None and sc.is_valid and (not ctx or self._current_span(ctx).get_span_context() != sc):
            ctx = self._set_span(self._non_recording(sc), ctx or None)
        return ctx

    def _severity_number(self, levelno: int) -> Any:
        sev = self._sev_cache.get(levelno)
        if sev is None:
            sev = self._sev_cache[levelno] = self._severity(levelno)
        return sev

    def _encoded(self, b: Built, attrs: dict[str, Any]) -> Any:
        """The record :meth:`_fast_record` makes, written straight to its OTLP entry (see ``_BatchEmit``)."""
        sc = self._span_context(b)
        if type(sc) is self._span_context_type:  # a 6-tuple: unpacked without its properties
            trace_id, span_id, _, flags, _, _ = sc
        else:
            trace_id, span_id, flags = sc.trace_id, sc.span_id, sc.trace_flags
        levelno = b.levelno
        sev = self._sev_values.get(levelno)
        if sev is None:
            sev = self._sev_values[levelno] = self._severity_number(levelno).value
        lg = self._logger
        data = self._encode(
            b.ts_ns, time.time_ns(), sev, b.severity_text, b.fields["message"], attrs, int(flags), trace_id, span_id
        )
        return self._encoded_cls(data, lg.resource, lg.instrumentation_scope)

    def _fast_record(self, b: Built, attrs: dict[str, Any]) -> Any:
        """The API ``LogRecord`` that ``LogRecord(timestamp=..., context=b.context, ...)`` builds, without its
        keyword call and second span look-up: ``b.span_context`` is the builder's look-up of the same context,
        or the trace a correlation id or the exception names, which ``trace_id=``/``span_id=`` would give
        (no context: the worker thread's own, which never holds a span)."""
        rec: Any = self._new(self._record)
        sc = self._span_context(b)
        rec.timestamp = b.ts_ns
        rec.observed_timestamp = time.time_ns()
        rec.context = None  # _BatchEmit.emit replaces it with an empty Context, as on_emit does
        rec.trace_id = sc.trace_id
        rec.span_id = sc.span_id
        rec.trace_flags = sc.trace_flags
        rec.severity_text = b.severity_text
        rec.severity_number = self._severity_number(b.levelno)
        rec.body = b.fields["message"]
        rec.attributes = attrs
        rec.event_name = None
        rec.exception = None
        return rec


class _BatchEmit:
    """Hand API ``LogRecord`` s straight to the SDK batch processors' queues, when that is exact.

    ``Logger.emit`` wraps the record in a ``ReadWriteLogRecord`` (bounding the
    attributes again), and each ``BatchLogRecordProcessor.on_emit`` copies it,
    clears its context and wraps it in a ``ReadableLogRecord`` for its queue.
    With only batch processors, an enabled SDK logger without internal metrics
    (``_internal/fastpath.decide``), and attributes that the default limits leave
    untouched (at most the count limit, no length limit, no empty key), the
    ``ReadableLogRecord`` made here is the one they would queue. Otherwise
    :meth:`accepts` says no, and the record goes through ``Logger.emit``.
    """

    __slots__ = (
        "_bps",
        "_context",
        "_dropped",
        "_limits",
        "_logger",
        "_max_attrs",
        "_multi",
        "_procs",
        "_readable",
        "_room",
        "encoded",
    )

    def __init__(self, logger: Any, encoded: bool) -> None:
        from opentelemetry.context import Context

        from ..metrics import get_registry

        self._logger = logger
        self._context = Context
        self._readable = otel_private.ReadableLogRecord
        self._multi, self._procs = otel_private.log_processors(logger)  # a new tuple when a processor is added
        self._bps = tuple(otel_private.batch_processor(p) for p in self._procs)
        # Every processor exports with the fast OTLP encoder (the agent's own pipeline): queue the records
        # already encoded (otlp_encode.Encoded) instead of SDK records for that encoder to read later.
        self.encoded = encoded
        self._dropped = get_registry().self_metrics.items_dropped.bind(signal="logs", reason="queue_full")
        self._room = gil.QueueRoom()
        self._limits = limits = otel_private.logger_limits(logger)
        self._max_attrs: int = (
            limits.max_log_record_attributes
            if limits.max_log_record_attribute_length is None and limits.max_log_record_attributes is not None
            else -1
        )

    @classmethod
    def for_logger(cls, logger: Any) -> _BatchEmit | None:
        plan = fastpath.decide("logs", logger)
        return cls(logger, plan.encoded) if plan.exact else None

    def accepts(self, attrs: dict[str, Any]) -> bool:
        return (
            otel_private.log_processors(self._logger)[1] is self._procs
            and len(attrs) <= self._max_attrs
            and "" not in attrs
            and self._logger.resource is not None
        )

    def emit(self, record: Any) -> None:
        lg = self._logger
        record.context = self._context()  # as on_emit does: no reference to the (possibly large) context
        readable = self._readable(
            log_record=record,
            resource=lg.resource,
            instrumentation_scope=lg.instrumentation_scope,
            limits=self._limits,
        )
        self.put(readable)

    def put(self, readable: Any) -> None:
        """Into every batch processor's queue, as ``on_emit`` puts it there; a full queue gets a moment to make room
        (``otel_private.batch_put``: a burst larger than the queue is exported, not dropped)."""
        room = self._room
        for bp in self._bps:
            if not room.put(otel_private.batch_put, bp, readable):
                # Still full (e.g. the collector is down and the retry buffer is full): the SDK would build and log
                # a "Queue full" warning for every record. Counted instead; the oldest was dropped, as the SDK does.
                self._dropped.add(1)


# Fields that are OTLP record fields or resource attributes, not log attributes.
_NOT_ATTRIBUTES = frozenset(
    {"timestamp", "level", "message", "trace_id", "span_id", "service.name", "service.instance.id"}
)


_NOT_ATTRIBUTES_LIST = tuple(_NOT_ATTRIBUTES)
_PLAIN = frozenset({str, int, float, bool})


def otel_attributes(fields: dict[str, Any]) -> dict[str, Any]:
    # The usual line, every other value of a plain type (exact types): a copy without the record's own fields, its
    # values' types checked in C; what the loop below gives then, in the same order (~1 us a line less than it).
    out = fields.copy()
    pop = out.pop
    for k in _NOT_ATTRIBUTES_LIST:
        pop(k, None)
    if _PLAIN.issuperset(map(type, out.values())):
        return out
    out = {}
    plain = _PLAIN
    skip = _NOT_ATTRIBUTES
    for k, v in fields.items():
        if type(v) in plain:  # the usual case, one set lookup (exact types; subclasses take the checks below)
            if k not in skip:
                out[k] = v
            continue
        if k in skip or v is None:
            continue
        if isinstance(v, str | bool | int | float) or (
            isinstance(v, list) and v and all(type(x) is type(v[0]) for x in v) and isinstance(v[0], str | int | float)
        ):
            out[k] = v
        else:
            import orjson

            try:
                out[k] = orjson.dumps(v, default=safe_str).decode()
            except Exception:
                out[k] = safe_str(v)
    return out


class ConsoleSink:
    """Readable lines for development: ``time LEVEL stream logger: message  key=value ...``; a value that is empty
    or holds a space, ``=``, ``"``, ``\\`` or a control character is quoted, logfmt's way (:func:`_value`); such a
    character in a field's name is written ``_`` (:func:`_key`)."""

    name = "console"

    _SKIP = frozenset({"timestamp", "level", "stream", "logger", "message", "service.name", "service.instance.id"})

    def __init__(self, errors: Any, stream: Any = None) -> None:
        self.errors = errors
        self._stream = stream

    def write(self, batch: Sequence[Built]) -> None:
        out = self._stream or sys.stderr
        lines = []
        for b in batch:
            if b.printed:  # its logger's own handlers printed it already (uvicorn's, gunicorn's error log)
                continue
            f = b.fields
            extras = "  ".join(f"{_key(k)}={_value(v)}" for k, v in f.items() if k not in self._SKIP)
            lines.append(
                f"{f['timestamp']} {f['level']:<8} {f['stream']:<11} {one_line(f['logger'])}: {one_line(f['message'])}"
                + (f"  {extras}" if extras else "")
                + "\n"
            )
        if not lines:
            return
        try:
            out.write("".join(lines))
            out.flush()
        except Exception as exc:
            self.errors.add(len(lines))
            warn_once(f"logs:console:{type(exc).__name__}", "cannot write log lines to the console (%r)", exc)


# A field's value printed as it is: no space, "=", quote, backslash or control character (logfmt's bare value).
_BARE = re.compile(r'[^\s="\\]+')
_IN_QUOTES = str.maketrans({"\\": "\\\\", '"': '\\"', "\t": "\\t"})


def _value(v: Any) -> str:
    """A field's value for the console, logfmt's way: as it is when it is one bare word (``venue=binance``,
    ``qty=0.5``), else in double quotes with ``\\`` and ``"`` escaped and control characters written as
    :func:`one_line` writes them (``strategy="mm & hedge"``, ``reason="say \\"no\\"\\n"``): ``strategy=mm & hedge``
    could not be told from a field ``hedge`` after it, nor ``k=a=b`` be split, by a reader or a log parser."""
    text = safe_str(v, 500)
    if text and text.isprintable() and _BARE.fullmatch(text):
        return text
    return '"' + one_line(text.translate(_IN_QUOTES)) + '"'


_NOT_IN_KEY = re.compile(r'[\s="\\]')


def _key(k: Any) -> str:
    """A field's name for the console, one logfmt key: a space, ``=``, ``"``, ``\\`` or control character in it written
    ``_`` (``order_id=1``). Printed as it was, a name from outside (``extra={"a\\nFAKE": 1}``) started a forged line of
    its own, and ``order id=1`` read as a stray word and a field ``id``. The files keep the name as it was."""
    text = k if type(k) is str else safe_str(k, 200)
    if text.isprintable() and _BARE.fullmatch(text):
        return text
    return _NOT_IN_KEY.sub("_", _CONTROL.sub("_", text)) or "_"


# C0 controls but tab, DEL, C1 controls (U+0085 is a line break to some readers), the Unicode line and paragraph
# separators, and the bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def one_line(s: Any) -> str:
    """``s`` as one console line that cannot drive the terminal: newlines, carriage returns, escape sequences and
    bidirectional overrides written as ``\\n``, ``\\r``, ``\\x1b``, ``\\u202e`` (text from outside, in a message or a
    field, could otherwise print a fake record under its own, clear the screen or reorder what is read)."""
    text: str = s if type(s) is str else safe_str(s, 500)
    if text.isprintable():  # the usual case: nothing to escape (tab is not printable: it is looked at, and kept)
        return text
    return _CONTROL.sub(_escape, text)
