"""Warn once per key: a repeated runtime problem is logged the first time, then only counted.

>>> warn_once("export:traces", "collector unreachable at %s", "localhost:4317")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading

_log = logging.getLogger("tradeobs")
_MAX_KEYS = 10_000
_seen: set[str] = set()
_lock = threading.Lock()


def warn_once(key: str, msg: str, *args: object, level: int = logging.WARNING) -> bool:
    """Log ``msg`` the first time ``key`` is seen; return whether it was logged.

    The set of keys is bounded: past ``_MAX_KEYS`` distinct keys nothing more is logged.
    """
    with _lock:
        if key in _seen or len(_seen) >= _MAX_KEYS:
            return False
        _seen.add(key)
    try:
        _log.log(level, msg, *args)
    except Exception:  # logging must never raise into the caller
        pass
    return True


def reset() -> None:
    """Forget every key (tests)."""
    with _lock:
        _seen.clear()
