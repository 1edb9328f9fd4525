"""Text every output can carry: UTF-8 without lone surrogates (from text decoded with ``surrogateescape``)."""

from __future__ import annotations

__all__ = ["as_utf8", "is_utf8"]


def is_utf8(s: str) -> bool:
    """Whether ``s`` can be written as UTF-8 (no lone surrogates)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_utf8(s: str) -> str:
    """``s`` with every lone surrogate replaced by ``?``."""
    return s.encode("utf-8", "replace").decode("utf-8")
