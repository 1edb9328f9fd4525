"""The log pipeline: a bounded queue, one worker thread, three sinks.

>>> pipeline = install_logging(agent)     # done by tradeobs_agent.init(); doctest: +SKIP
>>> pipeline.flush(2.0)                   # everything logged so far is written and handed to OTel
True
>>> pipeline.shutdown(2.0)                # doctest: +SKIP

The calling thread only captures (see ``_capture``). The worker thread
(``tradeobs-logs``) formats with orjson, redacts, writes the JSON-lines files,
emits OTLP records and console lines. It polls the queue every
:data:`_POLL` seconds instead of being signalled per record, so ``logger.info``
never touches a lock or a condition variable on the normal path, and a steady
trickle of records is handled in a few larger batches per second (fewer wake-ups,
fewer ``write`` syscalls, less GIL traffic against the trading thread) rather than
one wake-up per record. ``flush()`` and a queue passing half its capacity wake the
worker at once.

Full queue: ``drop_newest`` (default) or ``drop_oldest``, or ``block`` for at
most ``log_block_timeout`` seconds. Every drop is counted in
``tradeobs.agent.logs.dropped{reason=...}`` and summed up in one warning per
:attr:`LogPipeline.drop_warning_interval` seconds, written by the worker
straight to the sinks (it never goes through the full queue).

``shutdown(timeout)`` stops capturing, lets the worker drain and close the
files, and returns within ``timeout`` seconds whatever happens; records still
queued then are counted as ``reason="shutdown"``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .. import _errors
from .._internal.gil import Slices
from .._text import right_sized
from ..redaction import Redactor
from . import _capture
from ._capture import (
    PRINTED,
    SERVER_LOGGERS,
    STREAMS,
    CaptureHandler,
    LogQueue,
    ServerLogCapture,
    capture,
    emits_to,
    handlers_of,
)
from ._echo import StreamEcho
from ._format import Built, RecordBuilder, dumps, safe_repr
from ._server_scrub import ServerLogScrub
from ._sinks import ConsoleSink, FileSink, OtlpSink, otel_attributes

__all__ = ["LogPipeline", "install_logging"]

_log = logging.getLogger("tradeobs.logs")
_BATCH = 512
# Seconds between polls of an idle queue; records wait at most this long to be written. 0.2 s (was 0.05):
# at the demo's ~250 lines/s the worker's CPU per record fell from ~43 to ~29 us (fewer wake-ups, larger
# batches, one write per stream per batch), -0.4 pp of a core; OTLP ships logs once a second anyway.
_POLL = 0.2
_CHECK_EVERY = 1.0  # seconds between checks that logging was not configured again under the capture
# A backlog past this share of the queue: the worker is falling behind, and stops offering the GIL until it is
# below again. A trading thread that keeps the GIL busy takes it back for a whole switch interval (5 ms) at
# every offer, which left the worker one slice (gil.BUDGET) in 5 ms: ~170 records/s (measured; ~10,000 without
# offers), so a busy loop that logged got most of its records dropped. Behind, the trading thread waits for
# the worker up to the interpreter's switch interval, as it would without slices, and nothing is dropped
# until the worker's own rate is passed.
_BEHIND = 1 / 8


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class LogPipeline:
    """Owns the queue, the worker and the sinks. Build it with :func:`install_logging`."""

    drop_warning_interval = 10.0

    def __init__(self, agent: Any, *, console_stream: Any = None) -> None:
        s = agent.settings
        self._agent = agent
        self.settings = s
        selfm = agent.registry.self_metrics
        self._registry = agent.registry
        self._selfm = selfm
        self.queue = LogQueue(s.log_queue_size, s.log_queue_policy, s.log_block_timeout, selfm.logs_dropped)
        self.redactor = Redactor(s.log_redact_patterns)
        self.builder = RecordBuilder(self.redactor, self._resource_fields())
        self.files: FileSink | None = None
        if s.log_dir:
            self.files = FileSink(
                s.log_dir,
                s.log_max_bytes,
                s.log_rotate_seconds,
                s.log_backup_count,
                selfm.sink_errors.bind(sink="file"),
                selfm.sink_errors.bind(sink="file_gzip"),
            )
        self.otlp: OtlpSink | None = None
        self.otlp_provider = agent.logger_provider
        if agent.logger_provider is not None:
            self.otlp = OtlpSink(agent.logger_provider, selfm.sink_errors.bind(sink="otlp"))
        self.console: ConsoleSink | None = None
        if s.log_console:
            self.console = ConsoleSink(selfm.sink_errors.bind(sink="console"), console_stream)
        self.handler = CaptureHandler(self.queue)
        self.echo = StreamEcho(s.log_dir or None)  # the stream loggers' warnings on stderr, throttled (worker only)
        self.handler.on_close = self._check_soon  # a logging configuration closing every handler: look at once
        self.queue.handler = self.handler
        self.server_filters = [ServerLogCapture(self.queue, logging.getLogger(n)) for n in SERVER_LOGGERS]
        self.server_scrub = ServerLogScrub()  # secrets out of what uvicorn/gunicorn print themselves
        self._wake = threading.Event()
        self.queue.wake = self._wake.set
        self._stopping = False
        self._abandon = False
        self._left_lock = threading.Lock()
        self._left_counted = False  # what the worker never processed is counted once (shutdown() or abandon())
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.worker_cpu = 0.0
        self._reported_drops = 0
        self._last_report = time.monotonic()
        self._root_level_set: int | None = None
        self._root_level_before = logging.WARNING
        self._checked_at = 0.0  # monotonic time of the last _check_attached
        self._check_now = False  # set by _check_soon: the worker looks at its next wake-up
        self._qsize = selfm.queue_size.bind(queue="logs")
        self._qcap = selfm.queue_capacity.bind(queue="logs")
        self._shutdown_drops = selfm.logs_dropped.bind(reason="shutdown")
        self._collect_hook = self._set_gauges
        self._thread_hook_before: Callable[[Any], Any] = threading.excepthook

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LogPipeline:
        if self.files is not None:
            self.files.start()
        self._start_worker()
        self._registry.add_collect_hook(self._collect_hook)
        self._attach()
        self._thread_hook_before = threading.excepthook  # chained: it still prints (or does what the app set)
        threading.excepthook = self._thread_excepthook
        return self

    def take_early(self, kept: list[tuple[logging.LogRecord, Any]], dropped: int) -> None:
        """The records logged while ``init()`` built the agent, before this pipeline ran (:mod:`._early`): written
        with their own time; already printed (or handed to the application's handlers), so the console sink skips
        them. ``dropped``: past its bound, counted as a full queue (``tradeobs.agent.logs.dropped``)."""
        level = self.handler.level
        for record, context in kept:
            if record.levelno >= level:
                entry = (0, record.levelno, record.name, None, None, PRINTED, None, context, None, 0, None, record)
                self.queue.put(entry)
        if dropped:
            self._selfm.logs_dropped.bind(reason="queue_full").add(dropped)
        self._wake.set()

    def _start_worker(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tradeobs-logs", daemon=True)
        self._thread.start()

    def on_console(self) -> bool:
        """Whether a record logged now is printed on the console: by our console sink, or by a console handler of the
        application's on the root logger (:meth:`_echo` leaves the agent's own ``tradeobs.*`` records out)."""
        return self.console is not None or _has_console_handler(logging.getLogger())

    def _echo(self, record: logging.LogRecord) -> None:
        """An application's WARNING-and-up record that no other handler takes, on stderr as ``logging.lastResort``
        prints it (the message, then the traceback), known secret values and secret-looking pairs masked."""
        import sys

        try:
            text = record.getMessage()
        except Exception as exc:  # the application's own format error (or a hostile __str__): as stdlib says it
            text = f"{safe_repr(record.msg)} (could not be formatted: {safe_repr(exc)})"
        if record.exc_info and record.exc_info[0] is not None:
            try:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            except Exception as exc:  # an exception whose text raises: bad input, never raised into the caller
                text += f"\n(the traceback could not be formatted: {safe_repr(exc)})"
        try:
            sys.stderr.write(self.redactor.text(text) + "\n")
        except (OSError, ValueError):  # stderr closed or gone: nothing to print on
            return

    def _check_soon(self) -> None:
        """The capture handler was closed while capturing: ``dictConfig``/``fileConfig`` close every handler before
        they replace them, ``basicConfig(force=True)`` the root's. The worker looks at once (it waits for the
        configuration to end on logging's lock) instead of within a second: for the calls :func:`_hook_configuration`
        does not see (a ``fileConfig`` or ``basicConfig`` imported by name before ``init()``)."""
        self._check_now = True
        self._wake.set()

    def _attach(self) -> None:
        # The application's logging set-up made before init(), as this module's docs ask, disabled the agent's
        # loggers when it ran with disable_existing_loggers (dictConfig's and fileConfig's default): they exist from
        # the import of tradeobs_agent on. Enabled here, or what init() says (a bad setting, the providers it
        # adopted, no collector) reached nobody, and a second later the agent blamed a set-up "after init()".
        _enable_own_loggers()
        root = logging.getLogger()
        for h in list(root.handlers):  # a handler left by an earlier pipeline (re-init): never two of ours
            if isinstance(h, CaptureHandler) and h is not self.handler:
                root.removeHandler(h)
        if self.console is not None and _has_console_handler(root):
            self.console = None  # the application already prints logs; do not print every line twice
            _log.info("tradeobs: a console handler is already installed on the root logger; not adding ours")
        self.handler.last_resort = self._echo if self.console is None else None  # our console sink prints them all
        root.addHandler(self.handler)
        self._look_for_otel_handlers()
        self.server_scrub.install()
        for f in self.server_filters:  # uvicorn's and gunicorn's error logs do not propagate to the root
            for old in [x for x in f.logger.filters if isinstance(x, ServerLogCapture) and x is not f]:
                f.logger.removeFilter(old)
            f.logger.addFilter(f)
        level = logging.getLevelName(self.settings.log_level)
        # The capture takes log_level and up (callHandlers checks a handler's level), whatever the root passes: a
        # root at NOTSET (an explicit "everything": basicConfig(level=0), loguru's interception) stays as it is.
        self.handler.setLevel(level)
        if root.level == logging.WARNING and level < logging.WARNING:  # Python's default: INFO would not pass
            self._root_level_set, self._root_level_before = level, root.level
            root.setLevel(level)
        from ._capture import STREAMS, get_logger

        for stream in STREAMS:
            lg = get_logger(stream)
            if lg.level == logging.NOTSET:
                lg.setLevel(level)
        _capture.set_active(self.queue)
        global _current
        _current = self
        _hook_configuration()
        _errors.set_console_check(self.on_console)  # what the agent says on stderr itself (an export outage)

    def _check_attached(self, by: str | None = None) -> None:
        """Logging configured again after ``init()`` (``logging.config.dictConfig``/``fileConfig``, which disable the
        loggers that exist unless told otherwise, or ``basicConfig(force=True)``, which removes the root's handlers)
        turned the capture off without a word: no JSON, no OTLP, not even the agent's own warnings. The capture
        handler goes back on the root logger and tradeobs' own loggers are enabled again (the application's other
        loggers are left as configured), said once.

        ``by``: the configuration call that just returned, on its caller's thread (:func:`_hook_configuration`):
        put back before the caller logs again, so nothing is missed. Without it (the worker's look, at once after
        the handler was closed and once a second) records logged in between were not captured."""
        if _capture.active() is not self.queue:
            return
        if by is None:
            logging.getLogger("tradeobs")  # takes logging's lock: waits for a configuration under way to end
        # One look at a time. The worker's gives way to a hooked configuration call's, which looks before its count
        # goes down: the worker, waiting for logging's lock, once read the count before dictConfig began and looked
        # as dictConfig returned, beside its caller: both said it (one blaming a set-up "by a name imported before")
        with _checking:
            if by is None and _configuring:
                return  # a hooked configuration call is running: it looks itself as it returns
            self._check_attached_locked(by)

    def _check_attached_locked(self, by: str | None) -> None:
        self._look_for_otel_handlers()
        done: list[str] = []
        enabled = _enable_own_loggers()
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
            done.append("removed the agent's capture handler from the root logger")
        if enabled:
            done.append(f"disabled {enabled} tradeobs logger(s)")
        if self.console is not None and _has_console_handler(root):
            # the rule of _attach: the application prints logs now, and every line would be printed twice
            self.console = None
            self.handler.last_resort = self._echo
            done.append("added a console handler to the root logger (the agent's console output is off)")
        if not done:
            return
        if by is not None:
            _errors.warn_once(
                "logs:reconfigured",
                "tradeobs: %s after init() %s: the capture is back as it returned, no record was missed (your "
                "handlers, formatters and other loggers are as you configured them). Configure logging before init() "
                "to leave the agent's set-up alone",
                by,
                " and ".join(done),
                level=logging.INFO,
            )
            return
        _errors.warn_once(
            "logs:reconfigured:late",
            "tradeobs: logging was configured again after init() (fileConfig or basicConfig(force=True) called by a "
            "name imported before init(), or the root logger's handlers changed by hand): it %s; put back now, but "
            "records logged in between may not have been captured. Configure logging before init(), or call "
            "logging.config.fileConfig and logging.basicConfig by those names (the agent then puts its capture back "
            "as they return)",
            " and ".join(done),
            console=True,
        )

    def _look_for_otel_handlers(self) -> None:
        """An OpenTelemetry ``logging`` handler of the application's (its own set-up before ``init()``, whose
        logger provider the agent adopted; ``LoggingHandler()`` added after ``init()``, which takes the global
        provider, the agent's; ``opentelemetry-instrument``'s) already emits the records it takes to the agent's
        logger provider: the OTLP sink then leaves those records out, or the collector received each line twice
        (once from each). The handler is the application's and stays as it is; the JSON files still get every
        line. Looked for at start and once a second, with the reconfiguration check."""
        provider = self.otlp_provider
        found = None
        if provider is not None:
            loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
            for lg in loggers:
                if any(emits_to(h, provider) for h in getattr(lg, "handlers", ())):
                    found = provider
                    break
        before, self.handler.bridged = self.handler.bridged, found
        if found is not None and before is None:
            _log.info(
                "tradeobs: an OpenTelemetry logging handler of the application's emits to the agent's logger "
                "provider; the log pipeline does not send the records it takes over OTLP again (they are still "
                "written to the JSON files)"
            )

    def uncaught(self, exc: BaseException, *, ending: bool, process: str | None = None) -> None:
        """An exception nothing caught, which Python prints on stderr only: the cause of a crash (``ending``: it ends
        the process, CRITICAL, logger ``__main__``; a ``multiprocessing`` child's, named by ``process``, logger
        ``multiprocessing``) or of a thread's end (ERROR, logger ``threading``) was in no log file and no log
        store. Written through the queue with its traceback, linked to the trace of the span it escaped when there
        is one; not printed again (Python, or multiprocessing, prints it)."""
        name = threading.current_thread().name
        if process is not None:
            what, logger = f"process {process!r} is ending", "multiprocessing"
        elif ending:
            what, logger = "the process is ending", "__main__"
        else:
            what, logger = f"thread {name!r} ended", "threading"
        entry = capture(
            time.time_ns(),
            logging.CRITICAL if ending else logging.ERROR,
            logger,
            "%s on an uncaught exception: %s",
            (what, type(exc).__name__),
            PRINTED,
            (type(exc), exc, exc.__traceback__),
        )
        self.queue.put(entry)
        self._wake.set()

    def _thread_excepthook(self, args: Any) -> None:
        try:
            if args.exc_type is not SystemExit and args.exc_value is not None:  # SystemExit ends a thread quietly
                self.uncaught(args.exc_value, ending=False)
        except Exception as exc:
            _errors.internal_error("logs.thread_excepthook", exc)
        self._thread_hook_before(args)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout`` s) until everything captured before this call is written and emitted."""
        t = self._thread
        if t is None or not t.is_alive():
            return False
        token = _Flush()
        self.queue.dq.append(token)
        self._wake.set()
        return token.done.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop capturing, drain, close files; bounded by ``timeout`` seconds. Returns True if fully drained."""
        global _current
        deadline = time.monotonic() + max(0.0, timeout)
        if _current is self:
            _current = None
        if _capture.active() is self.queue:
            _capture.set_active(None)
            _errors.set_console_check(None)
        root = logging.getLogger()
        root.removeHandler(self.handler)
        for f in self.server_filters:
            f.logger.removeFilter(f)
        self.server_scrub.uninstall()
        if self._root_level_set is not None and root.level == self._root_level_set:
            root.setLevel(self._root_level_before)
        self._registry.remove_collect_hook(self._collect_hook)
        if threading.excepthook == self._thread_excepthook:  # not replaced since: put back what it chained to
            threading.excepthook = self._thread_hook_before
        self._stopping = True
        self._wake.set()
        drained = True
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._abandon = True  # the worker stops after its current batch; the rest is counted
                drained = False
        if not drained:
            self._count_left()
        if self.files is not None and drained:
            self.files.close(max(0.0, deadline - time.monotonic()))
        return drained

    def abandon(self) -> int:
        """The agent's shutdown ran out of its bound (the process exits next): the worker stops after its current
        batch, and what it never processed is counted as dropped (``reason="shutdown"``); how many records that is
        (0 if :meth:`shutdown` counted them already)."""
        self._abandon = True
        return self._count_left()

    def _count_left(self) -> int:
        with self._left_lock:
            if self._left_counted:
                return 0
            self._left_counted = True
            left = sum(1 for e in list(self.queue.dq) if not isinstance(e, _Flush))
        if left:
            self._shutdown_drops.add(left)
        return left

    def after_fork(self) -> None:
        """In a forked child: fresh queue, locks, threads and file handles; the parent's backlog stays the parent's."""
        self.queue.after_fork()
        self._wake = threading.Event()
        self.queue.wake = self._wake.set
        self.builder.resource_fields = self._resource_fields()
        if self.files is not None:
            self.files.after_fork()
        if not self._stopping:
            self._start_worker()

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks and health checks."""
        return {
            "processed": self.processed,
            "dropped": self.queue.total_dropped,
            "queued": len(self.queue.dq),
            "worker_cpu_seconds": self.worker_cpu,
            "echoed": self.echo.printed,  # stream loggers' warnings printed on stderr in full
            "echo_held": self.echo.held_total,  # and counted in a line instead
        }

    def _resource_fields(self) -> dict[str, Any]:
        attrs = self._agent.resource.attributes
        return {k: attrs[k] for k in ("service.name", "service.instance.id") if k in attrs}

    def _set_gauges(self) -> None:
        self._qsize.set(len(self.queue.dq))
        self._qcap.set(self.queue.capacity)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        self.queue.worker_ident = threading.get_ident()
        dq = self.queue.dq
        cpu0 = time.thread_time()
        while not self._abandon:
            if dq is not self.queue.dq:  # pragma: no cover - replaced after fork
                dq = self.queue.dq
            if dq:
                batch = []
                pop = dq.popleft
                try:
                    for _ in range(_BATCH):
                        batch.append(pop())
                except IndexError:
                    pass
                self._process(batch)
                self.worker_cpu = time.thread_time() - cpu0
                if len(batch) == _BATCH:
                    continue  # more waiting: keep draining
            self._maybe_report_drops()
            self.echo.tick(time.monotonic())
            if self._stopping:
                if dq:
                    continue
                break
            now = time.monotonic()
            if self._check_now or now - self._checked_at >= _CHECK_EVERY:
                self._checked_at = now
                self._check_now = False
                self._check_attached()
            self._wake.wait(_POLL)
            self._wake.clear()
        self._maybe_report_drops(force=True)
        self.echo.tick(time.monotonic(), force=True)  # what was held is counted before the process ends
        self.worker_cpu = time.thread_time() - cpu0

    def _process(self, batch: list[Any]) -> None:
        built: list[Built] = []
        flushes: list[_Flush] = []
        build = self.builder.build
        # A trading thread woken meanwhile takes the GIL within a slice, not after the batch; unless the worker
        # is behind (_BEHIND).
        offer = _no_offer if len(self.queue.dq) >= self.queue.capacity * _BEHIND else Slices().offer
        echo: list[Built] = []
        for e in batch:
            if isinstance(e, _Flush):
                flushes.append(e)
                continue
            b = build(e)
            built.append(b)
            if b.levelno >= logging.WARNING and type(e) is tuple and _stream_logger(b.logger) and self._unprinted(e):
                echo.append(b)
            offer()
        if built:
            self._write(built, offer)
        if echo:
            self.echo.take(echo, time.monotonic())
        self.processed += len(built)
        self._maybe_report_drops()  # before releasing flush() callers, so they see the warning too
        for f in flushes:
            f.done.set()

    def _unprinted(self, e: Any) -> bool:
        """Whether nothing prints this stream logger's record but :attr:`echo` (worker thread): no console sink, no
        handler of the application's on its way (Python's last resort would print it), and not the bridges' (loguru,
        structlog: a ``Captured``, printed through their own library)."""
        lr = logging.lastResort
        if self.console is not None or self.handler.last_resort is None or lr is None or e[1] < lr.level:
            return False
        record = e[11]
        if record is None:
            return True  # the fast path: taken only when the capture is the one handler on its way
        if e[5] is PRINTED:
            return False
        return not any(h is not self.handler for h in handlers_of(record.name))

    def _write(self, built: list[Built], offer: Callable[[], None] | None = None) -> None:
        offer = offer or Slices().offer
        if self.files is not None:
            by_stream: dict[str, list[bytes]] = defaultdict(list)
            for b in built:
                by_stream[b.stream].append(right_sized(dumps(b.fields)))  # a backlog's batch: 4 kB a line, not 0.3
                offer()
            for stream, lines in by_stream.items():
                try:
                    self.files.write(stream, lines)
                except Exception:  # pragma: no cover - FileSink handles OSError itself
                    self.files.errors.add(len(lines))
        if self.otlp is not None:
            for b in built:
                b.otel_attrs = otel_attributes(b.fields)
                self.otlp.emit(b)
                offer()
        console = self.console  # read once: a reconfiguration may turn it off meanwhile (_check_attached)
        if console is not None:
            console.write(built)

    def _maybe_report_drops(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < self.drop_warning_interval:
            return
        total = self.queue.total_dropped
        n = total - self._reported_drops
        elapsed = now - self._last_report
        self._last_report = now
        if n <= 0:
            return
        self._reported_drops = total
        entry = capture(
            time.time_ns(),
            logging.WARNING,
            "tradeobs.logs",
            "%d log records dropped in the last %.0fs (queue capacity %d, policy %s); "
            "counted in tradeobs.agent.logs.dropped",
            (n, elapsed, self.queue.capacity, self.queue.policy),
        )
        self._write([self.builder.build(entry)])  # straight to the sinks, never through the full queue


_current: LogPipeline | None = None  # the pipeline that attached last (its queue is _capture.active() while it runs)
_configuring = 0  # hooked configuration calls running (their caller looks as they return, not the worker)
_configuring_lock = threading.Lock()
_checking = threading.RLock()  # one look at the capture's attachment at a time (LogPipeline._check_attached)
_hooked = False


def _hook_configuration() -> None:
    """Once per process: ``logging.config.dictConfig`` (by any name it was imported as: the hook is on
    ``DictConfigurator.configure``, which it calls; uvicorn's ``--log-config``, gunicorn's and Django's go through
    it), ``logging.config.fileConfig`` and ``logging.basicConfig`` put the capture back as they return, on the
    caller's thread (:meth:`LogPipeline._check_attached`). The pipeline looked once a second: a service that
    configured logging in its start-up, after ``init()``, lost the lines it logged in that second (its start-up
    lines, the agent's own). The original runs unchanged and what it raises is raised as before."""
    global _hooked
    if _hooked:
        return
    _hooked = True
    import logging.config

    configurator = logging.config.DictConfigurator
    configurator.configure = _after(configurator.configure, "logging.config.dictConfig()")  # type: ignore[method-assign]
    logging.config.fileConfig = _after(logging.config.fileConfig, "logging.config.fileConfig()")
    logging.basicConfig = _after(logging.basicConfig, "logging.basicConfig()", _basic_config)


def _basic_config(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``basicConfig`` does nothing when the root logger has a handler, and after ``init()`` it has the capture's:
    the application's console output (format, level, stream) was silently not set up. Called as if the capture were
    not there (it is put back as it returns)."""
    pipeline = _current
    root = logging.getLogger()
    if pipeline is None or _capture.active() is not pipeline.queue or root.handlers != [pipeline.handler]:
        return original(*args, **kwargs)
    root.removeHandler(pipeline.handler)
    try:
        return original(*args, **kwargs)
    finally:
        root.addHandler(pipeline.handler)


def _after(original: Callable[..., Any], what: str, call: Callable[..., Any] | None = None) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def configure(*args: Any, **kwargs: Any) -> Any:
        global _configuring
        with _configuring_lock:  # two threads configuring at once must not lose a count (the worker would never look)
            _configuring += 1
        try:
            return original(*args, **kwargs) if call is None else call(original, *args, **kwargs)
        finally:
            pipeline = _current
            try:
                if pipeline is not None:  # looked before the count goes down: the worker leaves it to this look
                    pipeline._check_attached(by=what)
            except Exception as exc:  # a bug of ours: never into the application's logging set-up
                _errors.internal_error("logs.reconfigured", exc)
            finally:
                with _configuring_lock:
                    _configuring -= 1

    return configure


def _stream_logger(name: str) -> bool:
    """A stream logger's (``tradeobs.strategy``, ``tradeobs.execution.broker``): not the agent's own ``tradeobs.*``."""
    return name.startswith("tradeobs.") and name[9:].partition(".")[0] in STREAMS


def _no_offer() -> None:
    """The worker is behind: it keeps the GIL until the interpreter's switch interval takes it."""


def _enable_own_loggers() -> int:
    """Enable the ``tradeobs.*`` loggers a logging configuration disabled; how many it enabled."""
    enabled = 0
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if (name == "tradeobs" or name.startswith("tradeobs.")) and getattr(lg, "disabled", False):
            lg.disabled = False  # type: ignore[union-attr]
            enabled += 1
    return enabled


def _has_console_handler(root: logging.Logger) -> bool:
    import sys

    for h in root.handlers:
        if type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.stdout):
            return True
    return False


def install_logging(agent: Any, *, console_stream: Any = None) -> LogPipeline:
    """Build and start the pipeline for ``agent`` (``init()`` calls this when ``logs_enabled``)."""
    old = _capture.active()
    if old is not None and old.handler is not None:  # a pipeline from an agent that was never shut down
        logging.getLogger().removeHandler(old.handler)
    return LogPipeline(agent, console_stream=console_stream).start()
