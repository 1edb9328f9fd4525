"""A stream logger's warnings on stderr, throttled: the first few in full, then a count at most once an interval.

>>> echo = StreamEcho("logs")                         # the pipeline's worker owns it; doctest: +SKIP
>>> echo.take(built_warnings, time.monotonic())       # the first FIRST printed, the rest held and counted
>>> echo.tick(time.monotonic())                       # "tradeobs: 12 more warnings in logs/risk.jsonl (risk) ..."

The stream loggers (``get_logger("strategy")``) write to their own files, which a bot's terminal does not show:
a warning of any other logger that no handler takes is printed by Python's last resort (and by the capture in
its place), but "order o-7 rejected by risk" never reached the terminal the bot ran in. Echoed one for one, a
desk's per-order warnings flooded it instead (431 lines in one minute of the demo during a collector outage).
So: the first :data:`FIRST` are printed as the last resort prints (the message, then the traceback, as written
to the files: formatted safely on the worker and redacted), the rest are counted per stream and said in one line
at most once per :data:`INTERVAL` seconds, naming the files they are in. After an interval without any, the next
ones are printed in full again (a new incident shows its first lines). Only the worker thread calls this: the
caller never waits for stderr, and what is held is a count per stream (at most the five streams).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ._format import Built

__all__ = ["FIRST", "INTERVAL", "StreamEcho"]

FIRST = 5  # printed in full, before the count takes over
INTERVAL = 60.0  # seconds: at most one count line in this long


class StreamEcho:
    """The throttle and the printing (worker thread only). ``log_dir``: where the stream files are (``None``: no
    files, the count names the stream only). ``stream``: where to print (``None``: ``sys.stderr`` at each print,
    as ``logging.lastResort`` does)."""

    def __init__(
        self, log_dir: str | None, *, first: int = FIRST, interval: float = INTERVAL, stream: Any = None
    ) -> None:
        self.log_dir = log_dir
        self.first = first
        self.interval = interval
        self.stream = stream
        self.shown = 0  # printed in full since the last quiet interval
        self.held: dict[str, int] = {}  # per stream: not printed, not yet counted in a line
        self.said_at: float | None = None  # time.monotonic() of the last line printed
        self.printed = 0  # in full, in all
        self.held_total = 0  # counted instead, in all

    def take(self, built: list[Built], now: float) -> None:
        """Print or count ``built`` (warnings or worse of the stream loggers that no handler took)."""
        lines = []
        for b in built:
            if self.shown < self.first:
                self.shown += 1
                self.printed += 1
                lines.append(_text(b))
            else:
                self.held[b.stream] = self.held.get(b.stream, 0) + 1
                self.held_total += 1
        if lines:
            self.said_at = now
            self._print("\n".join(lines))
        self.tick(now)

    def tick(self, now: float, *, force: bool = False) -> None:
        """At most once an interval: the count of what was held, in one line. ``force``: now (shutdown)."""
        said = self.said_at
        if said is None or (not force and now - said < self.interval):
            return
        if not self.held:
            self.shown = 0  # a whole interval without one: the next are printed in full again
            return
        items = sorted(self.held.items(), key=lambda kv: (-kv[1], kv[0]))  # the most first
        self.held.clear()
        self.said_at = now
        (stream, n), rest = items[0], items[1:]
        head = f"tradeobs: {n} more warning{'s' if n != 1 else ''} in {self._where(stream)}"
        parts = [head, *(f"{m} in {self._where(s)}" for s, m in rest)]
        self._print(
            ", ".join(parts)
            + f" (stderr shows the first {self.first}, then this count at most once in {self.interval:g} s; "
            "TRADEOBS_LOG_CONSOLE=true prints every line)"
        )

    def _where(self, stream: str) -> str:
        if self.log_dir:
            return f"{os.path.join(self.log_dir, stream + '.jsonl')} ({stream})"
        return f"the {stream} stream (no log files)"

    def _print(self, text: str) -> None:
        out = self.stream if self.stream is not None else sys.stderr
        try:
            out.write(text + "\n")
            out.flush()
        except (OSError, ValueError, AttributeError):  # stderr closed, gone or None (pythonw): nothing to print on
            return


def _text(b: Built) -> str:
    """As ``logging.lastResort`` prints a record: the message, then its traceback (both as in the files)."""
    text = str(b.fields.get("message", ""))
    stack = b.fields.get("exception.stacktrace")
    return f"{text}\n{stack}".rstrip("\n") if stack else text
