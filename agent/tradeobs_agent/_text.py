"""Text every output can carry: UTF-8 without lone surrogates (from text decoded with ``surrogateescape``); and
orjson's output sized to its length, for what is kept or gathered by the hundred."""

from __future__ import annotations

__all__ = ["as_utf8", "is_utf8", "right_sized"]


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


def right_sized(b: bytes) -> bytes:
    """``b`` (an ``orjson.dumps`` result) copied into an allocation of its own length.

    orjson (3.12 here) returns its write buffer, which it does not shrink: a 300-byte line holds a 4 kB
    allocation (1 kB with 3.11), 1.5 kB holds 16 kB. Transient output does not mind; what is kept (a cached
    form) or gathered by the hundred before one write (a batch's lines) does: 512 spans' JSON held 2 MB for a
    270 kB line. The copy costs ~0.2 us.
    """
    return bytes(memoryview(b))
