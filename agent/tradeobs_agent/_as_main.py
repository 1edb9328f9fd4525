"""Ctrl-C while ``python -m tradeobs_agent ...`` loads: exit 130 without a word, as the ``tradeobs`` script does.

``python -m tradeobs_agent`` imports the package (``__init__``: about a second of loading OpenTelemetry, more on a
loaded machine) before ``__main__`` runs, so nothing in ``__main__`` can catch a Ctrl-C in that second: it printed a
``KeyboardInterrupt`` traceback of importlib's and runpy's frames (exit -2). The console script avoids this with an
entry point outside the package (``agent/tradeobs_cli.py``); ``-m`` has no such place, so the package imports this
module first, which calls :func:`guard_the_load`. That acts only when this interpreter was started as
``python -m tradeobs_agent`` (a program of the user's that imports the package keeps Python's own Ctrl-C), and only
where Ctrl-C still has Python's default handler (not where it is ignored, as under ``nohup``, or handled by the
user's code): until ``__main__`` calls :func:`hand_over`, Ctrl-C raises ``SystemExit(130)``, which Python ends on
quietly. A Ctrl-C before the package's first line (Python's own start, runpy) is Python's, as for any script.

Imports nothing but the interpreter's own modules: it runs before anything else of the package.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

__all__ = ["guard_the_load", "hand_over"]

_NAMES = ("tradeobs_agent", "tradeobs_agent.__main__")


def _started_as_us() -> bool:
    """``python [options] -m tradeobs_agent [args]``: while runpy locates the module, ``sys.argv`` is ``["-m", *args]``
    and ``sys.orig_argv`` ends with the module's name (or ``-mNAME``) then the same args."""
    if sys.argv[:1] != ["-m"]:
        return False
    orig = sys.orig_argv
    at = len(orig) - len(sys.argv)  # the module's name, just before the args
    if at < 1:
        return False
    token = orig[at]
    if token in _NAMES:
        before = orig[at - 1]
        return before.startswith("-") and not before.startswith("--") and before.endswith("m")
    return token.startswith("-") and not token.startswith("--") and token.endswith(tuple("m" + n for n in _NAMES))


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(130)  # 130: a Ctrl-C, as a shell reports it; SystemExit prints nothing


def guard_the_load() -> None:
    """Under ``python -m tradeobs_agent``, Ctrl-C exits 130 quietly until :func:`hand_over`."""
    if _started_as_us() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop)


def hand_over() -> None:
    """Give Ctrl-C back to Python (``KeyboardInterrupt``), for the command's own handling of it."""
    if signal.getsignal(signal.SIGINT) is _stop:
        signal.signal(signal.SIGINT, signal.default_int_handler)


guard_the_load()
