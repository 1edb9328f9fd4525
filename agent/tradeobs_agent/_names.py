"""Close-name suggestions for misspelt settings, variables, file keys and keywords.

>>> did_you_mean("servce_name", ["service_name", "service_version"])
"did you mean 'service_name'?"
>>> @keywords_checked
... def configure(*, service_name: str = "x") -> str:
...     return service_name
>>> try:
...     configure(servce_name="algo-1")
... except TypeError as exc:
...     print(exc)
configure() got an unexpected keyword argument 'servce_name'; did you mean 'service_name'?

Python 3.11 names a wrong keyword but suggests nothing; a typo in ``init()``
should cost the user seconds, not a trip to the docs, so ``init()`` and the
option dataclasses check their keywords first (a few microseconds, once per call).
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from .exceptions import UnknownSettingError

__all__ = ["closest", "did_you_mean", "keywords_checked", "keywords_checked_class", "keywords_checked_with"]

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name`` (case-insensitive), or ``None`` when nothing is close."""
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if not match:
        # A prefix or suffix that went missing ("endpoint" for "otlp_endpoint") is not a typo
        # that difflib scores well, but it is the obvious suggestion.
        low = name.lower()
        hits = sorted(c for c in by_lower if len(low) >= 3 and (c.endswith(low) or low.endswith(c)))
        match = hits[:1]
    return by_lower[match[0]] if match else None


def did_you_mean(name: str, candidates: Iterable[str], quote: Callable[[str], str] = repr) -> str:
    """``"did you mean 'x'?"``, or ``""`` when no candidate is close."""
    best = closest(name, candidates)
    return f"did you mean {quote(best)}?" if best is not None else ""


def _unknown(
    owner: str, name: str, value: Any, valid: Iterable[str], hint_for: Callable[[str], str | None] | None = None
) -> UnknownSettingError:
    valid = sorted(valid)
    hint = (hint_for(name) if hint_for else None) or did_you_mean(name, valid) or "valid keywords: " + ", ".join(valid)
    return UnknownSettingError(f"{owner}() got an unexpected keyword argument {name!r}; {hint}", name, value, hint)


def keywords_checked(fn: Callable[P, R]) -> Callable[P, R]:
    """Make an unknown keyword raise :class:`UnknownSettingError` (a ``TypeError``) with the closest valid one."""
    return keywords_checked_with(None)(fn)


def keywords_checked_with(hint_for: Callable[[str], str | None] | None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """:func:`keywords_checked`, asking ``hint_for(name)`` first for a hint better than the closest keyword
    (``init(prometheus_port=...)``: a setting's name, given where its option group goes)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        params = inspect.signature(fn).parameters
        valid = frozenset(n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for name in kwargs:
                if name not in valid:
                    raise _unknown(fn.__name__, name, kwargs[name], valid, hint_for)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def keywords_checked_class(cls: C) -> C:
    """The same check for a class's ``__init__`` (the option dataclasses)."""
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]
    params = inspect.signature(init).parameters
    valid = frozenset(n for n, p in params.items() if n != "self" and p.kind != p.VAR_KEYWORD)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for name in kwargs:
            if name not in valid:
                raise _unknown(cls.__name__, name, kwargs[name], valid)
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls
