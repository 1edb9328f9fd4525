"""Servers' error logs (uvicorn.error, gunicorn.error) reach the pipeline once, and are still printed once.

With the servers' real logging set-up: uvicorn's own ``LOGGING_CONFIG`` through ``dictConfig`` and
gunicorn's own ``glogging.Logger``. The processes themselves: tests/integration/test_server_errors.py.
"""

from __future__ import annotations

import copy
import io
import logging
import logging.config
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tradeobs_agent
from tests.unit.logs._logs_helpers import Env
from tradeobs_agent.logs._capture import SERVER_LOGGERS, ServerLogCapture

_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")


@pytest.fixture(autouse=True)
def _restore_server_loggers() -> Iterator[None]:
    """These loggers are process-wide: put back what the test's configuration changed."""
    saved = {}
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        saved[name] = (list(lg.handlers), list(lg.filters), lg.propagate, lg.level, lg.disabled)
    yield
    for name, (handlers, filters, propagate, level, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.filters[:] = filters
        lg.propagate, lg.level, lg.disabled = propagate, level, disabled


def _uvicorn_logging(stream: io.StringIO) -> None:
    """uvicorn's default logging set-up (``uvicorn.config.LOGGING_CONFIG``); its stderr handler writes to ``stream``."""
    from uvicorn.config import LOGGING_CONFIG

    cfg: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    cfg["handlers"]["default"]["stream"] = stream
    cfg["handlers"]["access"]["stream"] = io.StringIO()
    logging.config.dictConfig(cfg)


def _raise_and_log(logger: str, marker: str) -> None:
    try:
        raise RuntimeError(marker)
    except RuntimeError as exc:
        logging.getLogger(logger).error("Exception in ASGI application\n", exc_info=exc)


def _records(env: Env, marker: str) -> tuple[list[dict[str, Any]], list[Any]]:
    env.flush()
    lines = [r for r in env.lines("service") if marker in r.get("exception.stacktrace", "")]
    otlp = [r for r in env.otlp_records() if marker in str((r.attributes or {}).get("exception.stacktrace", ""))]
    return lines, otlp


@pytest.mark.parametrize("order", ["uvicorn_configures_first", "agent_starts_first"])
def test_uvicorn_error_is_captured_once_and_printed_once(make_env: Callable[..., Env], order: str) -> None:
    printed = io.StringIO()
    if order == "uvicorn_configures_first":  # `uvicorn app:app`: logging is set up, then the app (and init()) imported
        _uvicorn_logging(printed)
        env = make_env()
    else:  # uvicorn.run() from a script that called init() first: dictConfig replaces the handlers, keeps filters
        env = make_env()
        _uvicorn_logging(printed)
    assert logging.getLogger("uvicorn.error").propagate and not logging.getLogger("uvicorn").propagate
    _raise_and_log("uvicorn.error", "boom-uvicorn")
    lines, otlp = _records(env, "boom-uvicorn")
    assert len(lines) == 1 and len(otlp) == 1
    [rec] = lines
    assert rec["logger"] == "uvicorn.error" and rec["level"] == "ERROR" and rec["stream"] == "service"
    assert rec["message"] == "Exception in ASGI application\n" and rec["exception.type"] == "RuntimeError"
    assert "Traceback (most recent call last)" in rec["exception.stacktrace"]
    assert printed.getvalue().count("RuntimeError: boom-uvicorn") == 1  # uvicorn's own handler, as before
    # Its other records too; uvicorn's `color_message` (the same text with ANSI colours) is not kept.
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 42, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )
    env.flush()
    [started] = [r for r in env.lines("service") if r["message"] == "Started server process [42]"]
    assert "color_message" not in started
    assert printed.getvalue().count("Started server process") == 1


def test_gunicorn_error_log_and_uvicorn_worker_are_captured_once(env: Env, tmp_path: Path) -> None:
    """gunicorn's own Logger (``gunicorn.error``, ``propagate = False``) and what ``UvicornWorker`` does to
    ``uvicorn.error`` (gunicorn's handlers, ``propagate = False``), both after the agent started."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "gunicorn-error.log"))
    glog = Logger(cfg)
    try:
        _gunicorn_and_worker(env, glog, tmp_path)
    finally:
        for h in glog.error_log.handlers + glog.access_log.handlers:
            h.close()


def _gunicorn_and_worker(env: Env, glog: Any, tmp_path: Path) -> None:
    uv = logging.getLogger("uvicorn.error")  # uvicorn_worker.UvicornWorker.__init__
    uv.handlers = glog.error_log.handlers
    uv.setLevel(glog.error_log.level)
    uv.propagate = False
    assert not glog.error_log.propagate
    _raise_and_log("uvicorn.error", "boom-worker")
    try:
        raise ValueError("boom-gunicorn")
    except ValueError:
        glog.error_log.exception("Error handling request /x")
    for h in glog.error_log.handlers:
        h.flush()
    text = (tmp_path / "gunicorn-error.log").read_text()
    for marker, last_line in (
        ("boom-worker", "RuntimeError: boom-worker"),
        ("boom-gunicorn", "ValueError: boom-gunicorn"),
    ):
        lines, otlp = _records(env, marker)
        assert len(lines) == 1 and len(otlp) == 1, marker
        assert text.count(last_line) == 1  # gunicorn's error log prints it, once
    assert {r["logger"] for r in env.lines("service") if "exception.type" in r} == {"uvicorn.error", "gunicorn.error"}


def test_a_server_logger_that_propagates_is_captured_by_the_root_handler_only(env: Env) -> None:
    """``uvicorn --log-config`` with ``propagate: true`` (or ``log_config=None``): the root handler sees it."""
    logging.getLogger("uvicorn").propagate = True
    _raise_and_log("uvicorn.error", "boom-propagated")
    lines, otlp = _records(env, "boom-propagated")
    assert len(lines) == 1 and len(otlp) == 1


def test_our_console_does_not_print_what_the_server_printed(
    make_env: Callable[..., Env], capsys: pytest.CaptureFixture[str]
) -> None:
    printed = io.StringIO()
    _uvicorn_logging(printed)
    env = make_env(console=True)
    assert env.pipeline.console is not None
    _raise_and_log("uvicorn.error", "boom-console")
    logging.getLogger("my.app").warning("an app warning")  # through the root handler: on our console
    env.flush()
    err = capsys.readouterr().err
    assert "an app warning" in err
    assert "boom-console" not in err
    assert printed.getvalue().count("RuntimeError: boom-console") == 1
    assert len(_records(env, "boom-console")[0]) == 1


def test_shutdown_removes_the_filters_and_a_new_agent_has_one_each(make_env: Callable[..., Env]) -> None:
    def ours(name: str) -> list[Any]:
        return [f for f in logging.getLogger(name).filters if isinstance(f, ServerLogCapture)]

    make_env()
    assert all(len(ours(n)) == 1 for n in SERVER_LOGGERS)
    tradeobs_agent.shutdown()
    assert all(not ours(n) for n in SERVER_LOGGERS)
    env = make_env()
    assert all(len(ours(n)) == 1 for n in SERVER_LOGGERS)
    logging.getLogger("uvicorn").propagate = False
    logging.getLogger("uvicorn").handlers = [logging.NullHandler()]
    _raise_and_log("uvicorn.error", "boom-again")
    assert len(_records(env, "boom-again")[0]) == 1
