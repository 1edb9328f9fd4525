"""Say a problem once, and handle an internal error the one way: count it, warn once, re-raise under tests.

>>> warn_once("export:traces", "collector unreachable at %s", "localhost:4317")  # doctest: +SKIP
>>> try:
...     1 / 0
... except ZeroDivisionError as exc:
...     internal_error("demo.site", exc)                                       # doctest: +SKIP

Two kinds of trouble, kept apart on purpose:

* A **runtime problem** the agent expects (a dead collector, a full disk, a
  hostile attribute value) is handled where it happens, counted in the
  ``tradeobs.agent.*`` self-metric that describes it, and said once with
  :func:`warn_once`.
* An **internal error** is an exception the code did not expect: a bug of
  ours, or an upstream change under us. :func:`internal_error` counts it in
  ``tradeobs.agent.internal_errors{site}``, logs it once per site with its
  traceback, and, in strict mode, re-raises it so a test fails instead of the
  bug being swallowed. Strict mode is on under pytest when tradeobs' plugin
  ``tradeobs_pytest`` is loaded (pytest loads it wherever tradeobs is
  installed; :func:`pytest_plugin_flag`), with :func:`set_strict`, or with
  ``TRADEOBS_INTERNAL_ERRORS=raise`` in the environment (read at each error,
  so subprocesses of a test inherit it).

Outside strict mode nothing here ever raises: the trading process keeps running.
This module sits below every other one (it imports nothing of the package), so
the metric registry registers itself as the counter (:func:`set_counter`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator

__all__ = [
    "Throttle",
    "handlers_reached",
    "internal_error",
    "internal_error_counts",
    "on_console",
    "pytest_plugin_flag",
    "reset",
    "set_console_check",
    "set_counter",
    "set_strict",
    "strict",
    "warn_once",
]

_log = logging.getLogger("tradeobs")
_MAX_KEYS = 10_000
_seen: set[str] = set()
_lock = threading.Lock()
_counts: dict[str, int] = {}
_strict: bool | None = None  # set_strict's; None: as tradeobs' pytest plugin says (off outside pytest)
_counter: Callable[[str], None] | None = None
_console_check: Callable[[], bool] | None = None
ENV_STRICT = "TRADEOBS_INTERNAL_ERRORS"
PYTEST_PLUGIN = "tradeobs_pytest"


def warn_once(
    key: str,
    msg: str,
    *args: object,
    level: int = logging.WARNING,
    exc: BaseException | None = None,
    console: bool = False,
) -> bool:
    """Log ``msg`` the first time ``key`` is seen; return whether it was logged.

    The set of keys is bounded: past ``_MAX_KEYS`` distinct keys nothing more is logged.
    ``exc`` adds its traceback to the one line. ``console``: print it on stderr too when the log does not reach
    the console (a problem someone must fix, which the log files alone would keep from whoever runs the service).
    """
    with _lock:
        if key in _seen or len(_seen) >= _MAX_KEYS:
            return False
        _seen.add(key)
    # logging.Logger.log never raises for a bad handler: Handler.handleError reports on stderr.
    _log.log(level, msg, *args, exc_info=exc)
    if console and not on_console():
        text = msg % args if args else msg
        with contextlib.suppress(OSError, ValueError):  # stderr closed or gone (a daemon): the line is in the log
            print(text if text.startswith("tradeobs") else f"tradeobs: {text}", file=sys.stderr, flush=True)
    return True


def internal_error(site: str, exc: BaseException) -> None:
    """An unexpected exception in tradeobs at ``site``: count it, warn once with the traceback; re-raise if strict.

    Call it from the ``except`` block that caught ``exc``.
    """
    with _lock:
        if site in _counts or len(_counts) < _MAX_KEYS:
            _counts[site] = _counts.get(site, 0) + 1
    counter = _counter
    if counter is not None:
        counter(site)
    warn_once(
        f"internal:{site}",
        "tradeobs internal error at %s: %r. The service keeps running; this is counted in "
        "tradeobs.agent.internal_errors and shown once. Please report it.",
        site,
        exc,
        exc=exc,
    )
    if strict():
        raise exc


def strict() -> bool:
    """True when internal errors re-raise (tests): ``TRADEOBS_INTERNAL_ERRORS=raise``, else :func:`set_strict`'s
    choice, else what tradeobs' pytest plugin says (on under it)."""
    if os.environ.get(ENV_STRICT, "").strip().lower() == "raise":
        return True
    if _strict is not None:
        return _strict
    return pytest_plugin_flag("STRICT_ERRORS")


def set_strict(on: bool | None) -> None:
    """Make :func:`internal_error` re-raise (``True``) or not (``False``), whatever tradeobs' pytest plugin says;
    ``None``: as it says."""
    global _strict
    _strict = on


def pytest_plugin_flag(name: str) -> bool:
    """A flag of tradeobs' pytest plugin (``tradeobs_pytest.STRICT_ERRORS``, ``.TEST_DEFAULTS``) when pytest loaded it
    in this process, else False. Read from ``sys.modules``: the agent never imports pytest, and the plugin, loaded in
    every pytest run where tradeobs is installed, imports nothing of the agent."""
    plugin = sys.modules.get(PYTEST_PLUGIN)
    return plugin is not None and getattr(plugin, name, False) is True


def set_counter(counter: Callable[[str], None] | None) -> None:
    """Where :func:`internal_error` counts: ``counter(site)`` (the process registry installs its self-metric)."""
    global _counter
    _counter = counter


def set_console_check(check: Callable[[], bool] | None) -> None:
    """How :func:`on_console` knows while the agent's log pipeline runs (it registers its own ``on_console``)."""
    global _console_check
    _console_check = check


def on_console() -> bool:
    """Whether a warning logged on the ``tradeobs`` logger now is printed on the console (stderr or stdout).

    While the agent's log pipeline runs, it says (its console sink, or the application's console handler). Without
    it: a stdlib stream handler on stderr/stdout on the way to the root logger, or no handler at all (then the
    stdlib's last resort prints warnings on stderr).
    """
    check = _console_check
    if check is not None:
        return check()
    if not _log.isEnabledFor(logging.WARNING):
        return False
    found = False
    for h in handlers_reached(_log):
        if getattr(h, "stands_in_for_last_resort", False):
            continue  # logs._early.EarlyRecords during init(): it prints what no other handler takes, as Python would
        found = True
        if (
            isinstance(h, logging.StreamHandler)
            and getattr(h, "stream", None) in (sys.stderr, sys.stdout)
            and h.level <= logging.WARNING
        ):
            return True
    return not found and logging.lastResort is not None


class Throttle:
    """At most one message per ``interval`` seconds; the ones held back are counted, for the next one said to say
    how many. (Each outage of an exporter, of the NATS connection: said when it begins, at most one a minute.)"""

    __slots__ = ("_at", "_held")

    def __init__(self) -> None:
        self._at: float | None = None  # when the last one was said (time.monotonic())
        self._held = 0

    def allow(self, now: float, interval: float) -> int | None:
        """None: hold this one back (counted); else it is said, and this is how many were held back since the last."""
        if self._at is not None and now - self._at < interval:
            self._held += 1
            return None
        self._at = now
        held, self._held = self._held, 0
        return held


def handlers_reached(logger: logging.Logger) -> Iterator[logging.Handler]:
    """The handlers a record of ``logger`` reaches, in the order ``Logger.callHandlers`` walks them (up the
    hierarchy until a logger that does not propagate); none of them means Python's last resort prints it."""
    c: logging.Logger | None = logger
    while c is not None:
        yield from c.handlers
        if not c.propagate:
            break
        c = c.parent


def internal_error_counts() -> dict[str, int]:
    """Internal errors so far in this process, by site."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget every key and count (tests)."""
    with _lock:
        _seen.clear()
        _counts.clear()
