"""The ``OTEL_*`` environment variables OpenTelemetry reads, and the closest one to a misspelt name.

>>> near_miss("OTEL_EXPORTER_OTLP_ENDPIONT", otel_variables())          # doctest: +SKIP
'OTEL_EXPORTER_OTLP_ENDPOINT'

The names come from the installed opentelemetry packages' ``environment_variables`` modules (the API's, the SDK's,
the instrumentation's, and any other distribution named ``opentelemetry-*`` that ships one), not from a list kept
here: an upgrade that adds a variable is known at once. Other tools share the ``OTEL_`` prefix (an
instrumentation's ``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``, a collector's own settings), so a name that is not known
is not a problem in itself: only one within a typo or two of a known name is (:func:`near_miss`).

:func:`mask_sdk_resource_lines`: the OTel SDK parses ``OTEL_RESOURCE_ATTRIBUTES`` when ``import tradeobs_agent``
imports its logs module (a class attribute there is ``Resource.create({})``), and prints a malformed pair as it is,
before ``init()`` runs: ``Invalid key value resource attribute pair token:s3cr3t`` put the secret on the terminal
and did not name the variable. ``init()`` reports the value itself, masked, in ``logs/system.jsonl``
(``config.resolve_settings``).

An application that imports the SDK before ``tradeobs_agent`` (``import opentelemetry.sdk._logs``, a framework that
does) gets the SDK's line before this module can install its filter: the pair is on stderr as it is, and nothing
here can take it back. :func:`sdk_loaded_first` tells ``resolve_settings`` so, which then says so (masked) next to
the bad value, with the two fixes: the variable written as ``key=value`` pairs, ``tradeobs_agent`` imported first.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Iterable

__all__ = ["mask_sdk_resource_lines", "near_miss", "otel_variables", "sdk_loaded_first"]


@functools.cache
def otel_variables() -> frozenset[str]:
    """Every ``OTEL_*`` name defined in an installed opentelemetry ``environment_variables`` module."""
    names: set[str] = set()
    for module in _modules():
        try:
            m = importlib.import_module(module)
        except ImportError:  # a distribution's file list that does not match what is importable: nothing to read
            continue
        names |= {v for v in vars(m).values() if isinstance(v, str) and v.startswith("OTEL_") and v.isupper()}
    return frozenset(names)


def _modules() -> list[str]:
    """The ``environment_variables`` modules under the ``opentelemetry`` namespace package, wherever its portions
    are installed (a walk of its directories: ~0.1 s; ``importlib.metadata``'s file lists took 5 s here)."""
    import os

    import opentelemetry

    found = {"opentelemetry.environment_variables", "opentelemetry.sdk.environment_variables"}
    for top in list(getattr(opentelemetry, "__path__", ())):
        for here, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".") and d != "proto"]
            parts = ["opentelemetry", *os.path.relpath(here, top).replace(os.sep, "/").split("/")]
            base = ".".join(p for p in parts if p != ".")
            if "environment_variables.py" in files or (
                "environment_variables" in dirs
                and os.path.isfile(os.path.join(here, "environment_variables", "__init__.py"))
            ):
                found.add(f"{base}.environment_variables")
    return sorted(found)


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely misspells: the same in another case, or within 2 edits (a letter
    missing, added, changed, or two swapped: ``ENDPIONT``), 1 for a short name. None when nothing is that close."""
    upper = name.upper()
    allowed = 1 if len(upper) < 12 else 2
    best: tuple[int, str] | None = None
    for k in known:
        if abs(len(k) - len(upper)) > allowed:
            continue
        d = _distance(upper, k, allowed)
        if d <= allowed and (best is None or (d, k) < best):
            best = (d, k)
    return best[1] if best is not None else None


def _distance(a: str, b: str, limit: int) -> int:
    """Edits from ``a`` to ``b``, counting a swap of two neighbours as one (optimal string alignment); anything
    past ``limit`` is ``limit + 1``."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[len(b)]


_SDK_RESOURCE_LOGGER = "opentelemetry.sdk.resources"
_BAD_PAIR = "Invalid key value resource attribute pair"


class _MaskedResourceLines(logging.Filter):
    """On the SDK's resources logger: its lines with secret-looking pairs masked, and its complaint about a pair
    naming the variable and what is allowed. The record is changed in place, for every handler (the last resort)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .redaction import default_redactor

        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a message the SDK could not format: the stdlib reports it as it would
            return True
        text = default_redactor().text(text)
        if text.startswith(_BAD_PAIR):
            text += " (in OTEL_RESOURCE_ATTRIBUTES: expected comma-separated key=value pairs)"
        record.msg, record.args = text, None
        return True


def mask_sdk_resource_lines() -> None:
    """Install :class:`_MaskedResourceLines` once (``import tradeobs_agent`` does, before it imports the SDK)."""
    logger = logging.getLogger(_SDK_RESOURCE_LOGGER)
    if not any(isinstance(f, _MaskedResourceLines) for f in logger.filters):
        logger.addFilter(_MaskedResourceLines())


def sdk_loaded_first() -> bool:
    """Whether the SDK's resources module was loaded before this module (so before :func:`mask_sdk_resource_lines`):
    its complaint about a bad ``OTEL_RESOURCE_ATTRIBUTES`` pair may have reached stderr unmasked."""
    return _SDK_FIRST


_SDK_FIRST = _SDK_RESOURCE_LOGGER in sys.modules  # the logger's name is its module's
mask_sdk_resource_lines()  # at import: ``tradeobs_agent/__init__`` imports this module before the SDK
