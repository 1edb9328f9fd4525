"""An application's own logging set-up, before or after init(): found by a user's review, each case in a process of
its own (the root logger is the process's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env["TRADEOBS_LOG_DIR"] = str(tmp_path / "logs")
    head = "import logging, logging.config, time, tradeobs_agent\n"
    return subprocess.run([sys.executable, "-c", head + code], capture_output=True, text=True, timeout=60, env=env)


def _messages(tmp_path: Path, stream: str) -> list[str]:
    path = tmp_path / "logs" / f"{stream}.jsonl"
    return [json.loads(line)["message"] for line in path.read_text().splitlines()] if path.exists() else []


def test_dictconfig_after_init_no_longer_turns_the_capture_off_and_says_so(tmp_path: Path) -> None:
    """dictConfig (disable_existing_loggers defaults to True) disabled every tradeobs logger and removed the root
    handler: from then on nothing reached the JSON files or OTLP, not even the agent's own warnings, silently. Then
    the pipeline put them back within a second, and what was logged in that second was lost (a service's start-up
    lines): now they are back as dictConfig returns, whatever name it was imported by."""
    proc = _run(
        tmp_path,
        """
from logging.config import dictConfig  # bound before init(), as many applications do
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
log = tradeobs_agent.get_logger("execution")
dictConfig({"version": 1, "root": {"level": "INFO", "handlers": []}})
log.error("order o-1 rejected")
logging.getLogger("myapp").warning("app line")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert "order o-1 rejected" in _messages(tmp_path, "execution")
    assert "app line" in _messages(tmp_path, "service")
    [said] = [m for m in _messages(tmp_path, "system") if "after init()" in m]
    assert said.startswith("tradeobs: logging.config.dictConfig() after init() removed the agent's capture handler")
    assert "disabled 8 tradeobs logger(s)" in said and "no record was missed" in said


def test_the_workers_look_during_a_dictconfig_leaves_the_saying_to_the_dictconfig_call(tmp_path: Path) -> None:
    """The log worker looks once a second whether the capture is still attached. A look that began just before a
    dictConfig (it read "no configuration under way", then waited for logging's lock) went on as dictConfig returned,
    beside the call's own look: a loaded run said it twice, the worker's line blaming a set-up "by a name imported
    before init()" and saying records may have been missed, which they were not. Here that look is held at exactly
    that point until dictConfig has configured (still inside the call)."""
    proc = _run(
        tmp_path,
        """
import threading
from tradeobs_agent.logs import pipeline
real_configure, real_get = logging.config.DictConfigurator.configure, logging.getLogger
waiting, go = threading.Event(), threading.Event()
def configure(self):  # under the agent's hook (set before init()), which looks as this returns
    real_configure(self)  # configured (the capture handler removed), logging's lock released
    go.set()
    look.join(20)
logging.config.DictConfigurator.configure = configure
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
def held(name=None):
    if name == "tradeobs" and threading.current_thread().name == "look":
        waiting.set()
        go.wait(20)
    return real_get(name)
logging.getLogger = held
look = threading.Thread(target=pipeline._current._check_attached, name="look")
look.start()
waiting.wait(20)  # the look is under way, no configuration yet
logging.config.dictConfig({"version": 1, "root": {"level": "INFO", "handlers": []}})
tradeobs_agent.get_logger("execution").error("order o-1 rejected")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert "order o-1 rejected" in _messages(tmp_path, "execution")
    said = [m for m in _messages(tmp_path, "system") if "after init()" in m]
    assert [m[:60] for m in said] == ["tradeobs: logging.config.dictConfig() after init() removed t"], said


def test_basicconfig_after_init_sets_up_the_console_it_was_asked_for(tmp_path: Path) -> None:
    """basicConfig does nothing when the root logger has a handler, and after init() it had the capture's: the
    application's console format and level were silently not applied (its warnings came out bare, its INFO lines
    not at all). Now it is configured as if the capture were not there, and the capture stays."""
    proc = _run(
        tmp_path,
        """
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
logging.basicConfig(level=logging.INFO, format="BASIC %(levelname)s %(message)s")
logging.getLogger("myapp").info("app line")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert "BASIC INFO app line" in proc.stderr.splitlines()
    assert _messages(tmp_path, "service") == ["app line"]
    assert not [m for m in _messages(tmp_path, "system") if "after init()" in m]  # nothing of the agent's changed


def test_dictconfig_before_init_keeps_what_init_says_and_blames_no_set_up_after_init(tmp_path: Path) -> None:
    """The docs ask for the application's logging set-up before init(); dictConfig there (disable_existing_loggers
    by default) disabled the agent's loggers, which exist from the import on: what init() said (here a bad
    setting) reached nobody, and a second later the agent warned that logging was "configured again after init()"."""
    proc = _run(
        tmp_path,
        """
import os
os.environ["TRADEOBS_LOG_QUEUE_SIZE"] = "lots"
logging.config.dictConfig({"version": 1, "root": {"level": "INFO", "handlers": []}})
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
time.sleep(1.6)  # the pipeline looks once a second
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    system = _messages(tmp_path, "system")
    assert any("TRADEOBS_LOG_QUEUE_SIZE" in m for m in system), system
    assert not [m for m in system if "configured again after init()" in m], system


def test_with_no_logging_set_up_warnings_still_reach_stderr_masked(tmp_path: Path) -> None:
    """Python prints a WARNING that no handler takes on stderr (logging.lastResort); the capture handler on the root
    ended that, so an application with no set-up of its own lost its warnings and errors from the console."""
    proc = _run(
        tmp_path,
        """
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
logging.getLogger("myapp").error("broker down, api_key=abc123secret")
logging.getLogger("myapp").info("not on the console: INFO, as before")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "broker down" in line]
    assert lines == ["broker down, api_key=[REDACTED]"], proc.stderr
    assert "not on the console" not in proc.stderr
    assert "broker down, api_key=[REDACTED]" in _messages(tmp_path, "service")


def test_a_stream_loggers_warnings_reach_stderr_throttled_the_first_five_then_a_count(tmp_path: Path) -> None:
    """A bot's log.warning("order %s rejected by risk") on get_logger("strategy") went to strategy.jsonl only: the
    terminal the bot ran in said nothing, unlike for a warning of any other logger. Echoed one for one (tried
    before), a desk's per-order warnings flooded it: the demo printed 431 lines in a minute of a collector outage.
    Now the first five warnings-or-worse of the stream loggers (a child of a stream on the standard path too) are
    printed as Python's last resort prints them, redacted, and the rest counted in one line naming their file (at
    shutdown here; during the run at most once a minute). With the console sink on, it prints each once, no count."""
    code = """
logs = tradeobs_agent.LogOptions(console=CONSOLE)
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False, logs=logs)
log = tradeobs_agent.get_logger("strategy")
logging.getLogger("tradeobs.execution.broker").error("a child of a stream, on the standard path")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("signal failed")
for i in range(10):
    log.warning("order c%d rejected by risk, api_key=abc123secret", i)
log.info("not on the console: INFO")
tradeobs_agent.shutdown()
"""
    proc = _run(tmp_path, code.replace("CONSOLE", "False"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    tb = lines.index("Traceback (most recent call last):")
    assert lines[: tb - 1] == ["a child of a stream, on the standard path"], proc.stderr
    assert lines[tb - 1] == "signal failed" and lines[tb + 1 :].index("ZeroDivisionError: division by zero") >= 0
    rest = lines[lines.index("ZeroDivisionError: division by zero") + 1 :]
    assert rest[:3] == [f"order c{i} rejected by risk, api_key=[REDACTED]" for i in range(3)], proc.stderr
    logs = tmp_path / "logs"
    assert rest[3:] == [
        f"tradeobs: 7 more warnings in {logs / 'strategy.jsonl'} (strategy) (stderr shows the first 5, then this "
        "count at most once in 60 s; TRADEOBS_LOG_CONSOLE=true prints every line)"
    ], proc.stderr
    assert "abc123secret" not in proc.stderr
    assert len(_messages(tmp_path, "strategy")) == 12  # every one in the file
    proc = _run(tmp_path, code.replace("CONSOLE", "True"))
    assert proc.returncode == 0, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "c4" in line]) == 1, proc.stderr
    assert "more warnings" not in proc.stderr and "abc123secret" not in proc.stderr


def test_a_stream_loggers_warnings_are_not_echoed_when_the_applications_handler_prints_them(tmp_path: Path) -> None:
    """basicConfig before init(): the application's console handler prints the stream loggers' warnings in its own
    format; the agent neither prints them again nor counts them."""
    proc = _run(
        tmp_path,
        """
logging.basicConfig(format="APP %(levelname)s %(message)s")
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
for i in range(8):
    tradeobs_agent.get_logger("risk").warning("order c%d rejected by risk", i)
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if "rejected" in ln or "more warning" in ln] == [
        f"APP WARNING order c{i} rejected by risk" for i in range(8)
    ], proc.stderr


def test_an_application_handler_takes_its_warnings_and_they_are_not_printed_twice(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        """
logging.basicConfig(level=logging.INFO, format="APP %(levelname)s %(message)s")
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
logging.getLogger("myapp").error("broker down")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "broker down" in line] == ["APP ERROR broker down"]


def test_a_root_logger_at_notset_is_left_as_it_is_and_a_changed_level_comes_back_as_it_was(tmp_path: Path) -> None:
    """init() set a root at NOTSET (an explicit "everything": basicConfig(level=0), loguru's interception) to INFO,
    so the application's DEBUG lines stopped reaching its own handlers; shutdown() then left it at WARNING."""
    proc = _run(
        tmp_path,
        """
root = logging.getLogger()
root.setLevel(logging.NOTSET)
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
during = root.level
logging.getLogger("myapp").debug("debug line")
tradeobs_agent.shutdown()
after_notset = root.level
root.setLevel(logging.WARNING)
tradeobs_agent.testing.reset()
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
raised = root.level
tradeobs_agent.shutdown()
print(during, after_notset, raised, root.level)
""".replace("import logging", "import logging, tradeobs_agent.testing"),
    )
    assert proc.returncode == 0, proc.stderr
    during, after_notset, raised, after = map(int, proc.stdout.split())
    assert (during, after_notset) == (0, 0)
    assert (raised, after) == (20, 30)  # Python's default WARNING: raised to INFO for the capture, then put back
    assert "debug line" not in _messages(tmp_path, "service")  # the capture still takes INFO and up


def test_log_files_that_cannot_be_written_are_said_on_stderr_once_while_the_service_runs(tmp_path: Path) -> None:
    """With ``logs`` a file, not a directory, ``tradeobs demo`` named ``logs/`` in its banner and wrote nothing,
    without a word: the file sink's warning went only to the log (those very files), as the agent's own records are
    not echoed on stderr. It is printed there once (for the directory, not per stream), while the service runs."""
    (tmp_path / "logs").write_text("not a directory\n")
    proc = _run(
        tmp_path,
        """
import sys
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
for stream in ("execution", "strategy", "market_data"):
    tradeobs_agent.get_logger(stream).info("a line for %s", stream)
time.sleep(1.5)  # the worker writes (and fails) in the background
print("--- shutdown", file=sys.stderr, flush=True)
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    running = proc.stderr.partition("--- shutdown")[0]
    said = [line for line in running.splitlines() if "cannot write log file" in line]
    assert len(said) == 1, proc.stderr
    assert said[0].startswith(f"tradeobs: cannot write log file {tmp_path / 'logs'}/"), said
    assert "TRADEOBS_LOG_DIR" in said[0]


_OTEL_HANDLER_HEAD = """
import warnings
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's LoggingHandler, still what services use
mem = InMemoryLogRecordExporter()
"""

_OTEL_HANDLER_TAIL = """
logging.getLogger("shop.api").warning("order o-1 rejected")
tradeobs_agent.get_logger("execution").warning("order o-2 rejected")
tradeobs_agent.shutdown()
bodies = [r.log_record.body for r in mem.get_finished_logs()]
print("COUNTS", bodies.count("order o-1 rejected"), bodies.count("order o-2 rejected"))
"""


def test_an_otel_logging_handler_of_the_application_and_the_agent_export_each_record_once(tmp_path: Path) -> None:
    """The service set up its own OpenTelemetry logs before init() (a LoggerProvider, the SDK's LoggingHandler on
    the root logger): the agent adopted that provider and its OTLP sink emitted every record to it again, so the
    application's collector received each line twice (measured with a real collector: 6 lines for 3 requests)."""
    proc = _run(
        tmp_path,
        _OTEL_HANDLER_HEAD
        + """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
provider = LoggerProvider()
provider.add_log_record_processor(SimpleLogRecordProcessor(mem))
set_logger_provider(provider)
logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
"""
        + _OTEL_HANDLER_TAIL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "COUNTS 1 1" in proc.stdout, proc.stdout + proc.stderr
    assert "order o-1 rejected" in _messages(tmp_path, "service")  # the JSON files still get every line
    assert "order o-2 rejected" in _messages(tmp_path, "execution")


def test_an_otel_logging_handler_added_after_init_takes_the_agents_provider_once(tmp_path: Path) -> None:
    """LoggingHandler() after init() emits to the global provider, the agent's: each record reached it twice."""
    proc = _run(
        tmp_path,
        _OTEL_HANDLER_HEAD
        + """
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False, log_exporters=[mem])
logging.getLogger().addHandler(LoggingHandler())
time.sleep(1.6)  # the pipeline looks once a second
"""
        + _OTEL_HANDLER_TAIL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "COUNTS 1 1" in proc.stdout, proc.stdout + proc.stderr


def test_a_console_handler_configured_after_init_turns_the_agents_console_output_off(tmp_path: Path) -> None:
    """With log_console on and no console handler at init(), the agent prints every record; a dictConfig after
    init() that puts a console handler on the root made every line print twice (ours and the application's), which
    init() avoids when that handler is there first."""
    proc = _run(
        tmp_path,
        """
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False,
                    logs=tradeobs_agent.LogOptions(console=True))
logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
    "formatters": {"p": {"format": "APP %(message)s"}},
    "handlers": {"c": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "p"}},
    "root": {"level": "INFO", "handlers": ["c"]}})
logging.getLogger("myapp").warning("app line 1")
time.sleep(1.5)  # the old code's look, once a second, put its handler back, its console output with it
logging.getLogger("myapp").warning("app line 2")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    printed = [line for line in proc.stderr.splitlines() if "app line" in line]
    assert printed == ["APP app line 1", "APP app line 2"], proc.stderr
    assert _messages(tmp_path, "service") == ["app line 1", "app line 2"]


def test_a_worker_group_the_agent_cannot_join_is_said_in_the_system_log_and_on_stderr_once(tmp_path: Path) -> None:
    """What the worker group said as init() opened it (a directory it cannot use) was logged before the agent's log
    pipeline existed: on stderr by Python's lastResort, but never in the system log or over OTLP, where whoever
    runs the service looks; which worker leads was in it or not by a race with the group's thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env.update(
        TRADEOBS_LOG_DIR=str(tmp_path / "logs"), TRADEOBS_MULTIPROCESS="on", TRADEOBS_MULTIPROCESS_DIR=str(not_a_dir)
    )
    code = "import tradeobs_agent\ntradeobs_agent.init(service_name='svc', otlp=False, prometheus=False, live=False)\n"
    code += "tradeobs_agent.shutdown()\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    said = [m for m in _messages(tmp_path, "system") if "cannot join its service's worker group" in m]
    assert len(said) == 1 and "is not a directory" in said[0], _messages(tmp_path, "system")
    assert len([x for x in proc.stderr.splitlines() if "cannot join" in x]) == 1, proc.stderr


def test_structlog_processor_in_a_structlog_set_up_on_the_standard_library_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """structlog configured the usual way for a service that has stdlib handlers (``logger_factory=structlog.stdlib.
    LoggerFactory()``, a renderer last), with tradeobs' ``structlog_processor`` added as docs/logging.md showed. Before:
    the processor dropped each event, so the service's own log file got no structlog line (0 of 2); with
    ``StructlogProcessor(drop=False)`` each line reached tradeobs twice (the processor's copy and the root capture's).
    Now the processor passes such events on and says so once: one line each, in the service's file and in tradeobs."""
    for drop in (True, False):
        out = tmp_path / f"drop-{drop}"
        out.mkdir()
        proc = _run(
            out,
            f"""
import structlog
from tradeobs_agent.logs import StructlogProcessor
handler = logging.FileHandler({str(out / "their.log")!r})
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel("INFO")
structlog.configure(
    processors=[structlog.stdlib.add_logger_name, structlog.stdlib.add_log_level, StructlogProcessor(drop={drop}),
                structlog.processors.JSONRenderer()],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
log = structlog.get_logger("shop.orders")
log.info("order placed", order_id="o-1")
log.warning("order rejected", order_id="o-2")
tradeobs_agent.shutdown()
""",
        )
        assert proc.returncode == 0, proc.stderr
        theirs = (out / "their.log").read_text().splitlines()
        assert [("o-1" in x, "o-2" in x) for x in theirs if "order " in x] == [(True, False), (False, True)], theirs
        ours = [m for m in _messages(out, "service") if "order " in m]
        assert len(ours) == 2 and "o-1" in ours[0] and "o-2" in ours[1], ours
        said = [m for m in _messages(out, "system") if "structlog_processor" in m]
        assert len(said) == 1 and "logger 'shop.orders'" in said[0] and "Remove it" in said[0], said


def test_loguru_sink_beside_the_intercept_handler_recipe_captures_each_line_once(tmp_path: Path) -> None:
    """A service on loguru with its README's InterceptHandler (the standard library's records logged again through
    loguru) adds tradeobs and its ``loguru_sink``. Before: each stdlib line reached tradeobs twice, once from the root
    logger's capture and once through loguru, the second under the logger name loguru gave it ("__main__"). Now the
    sink leaves out the records the capture takes, and says so once; the service's own loguru sink still gets all."""
    proc = _run(
        tmp_path,
        f"""
import inspect
from loguru import logger
from tradeobs_agent.logs import loguru_sink

class InterceptHandler(logging.Handler):
    def emit(self, record):
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())

logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
logger.remove()
logger.add({str(tmp_path / "their.log")!r}, format="{{level}} {{message}}")
tradeobs_agent.init(service_name="svc", otlp=False, prometheus=False, live=False)
logger.add(loguru_sink)
logging.getLogger("shop.fills").warning("fill f-1 late")
logger.info("order o-1 placed")
tradeobs_agent.shutdown()
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert "deadlock" not in proc.stderr, proc.stderr
    theirs = (tmp_path / "their.log").read_text()
    assert "WARNING fill f-1 late" in theirs and "INFO order o-1 placed" in theirs, theirs
    lines = [json.loads(x) for x in (tmp_path / "logs" / "service.jsonl").read_text().splitlines()]
    mine = [(x["logger"], x["message"]) for x in lines if "f-1" in x["message"] or "o-1" in x["message"]]
    assert mine == [("shop.fills", "fill f-1 late"), ("__main__", "order o-1 placed")], mine
    said = [m for m in _messages(tmp_path, "system") if "InterceptHandler" in m]
    assert len(said) == 1 and "'shop.fills'" in said[0], said
