"""``right_sized``: orjson's output copied into an allocation of its own length, for what is kept or batched."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import orjson

from tradeobs_agent._text import right_sized

_LINE = {"timestamp": "2026-12-05T13:30:00.123456Z", "level": "info", "message": "order demo-1-42 filled", "qty": 100}


def _held(make: Callable[[], bytes], n: int = 500) -> int:
    """Bytes the allocator holds for ``n`` kept results of ``make()``."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(n)]
        held = tracemalloc.get_traced_memory()[0] - base
        assert len(kept) == n
        return held
    finally:
        tracemalloc.stop()


def test_the_copy_is_equal_and_holds_its_length_not_orjsons_buffer() -> None:
    raw = orjson.dumps(_LINE)
    same = right_sized(raw)
    assert same == raw and type(same) is bytes
    size = len(raw)
    trimmed = _held(lambda: right_sized(orjson.dumps(_LINE)))
    assert trimmed < 500 * (size + 100), f"{trimmed / 500:.0f} bytes held for each {size}-byte line"


def test_orjson_alone_holds_more_than_the_line_which_is_why_it_exists() -> None:
    """If a new orjson returns output sized to its length, this fails, and ``right_sized`` can go."""
    size = len(orjson.dumps(_LINE))
    raw = _held(lambda: orjson.dumps(_LINE))
    assert raw > 500 * 2 * size, f"{raw / 500:.0f} bytes held for each {size}-byte line: orjson trims its output now"
