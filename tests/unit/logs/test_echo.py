"""The stream loggers' echo on stderr (logs/_echo.py): the first few in full, then a count at most once an
interval; the clock is the caller's (the worker passes time.monotonic()), so no test waits."""

from __future__ import annotations

import io

from tradeobs_agent.logs._echo import StreamEcho
from tradeobs_agent.logs._format import Built


def _b(stream: str, message: str, stack: str | None = None) -> Built:
    fields: dict[str, object] = {"message": message}
    if stack:
        fields["exception.stacktrace"] = stack
    return Built(fields, stream, 30, 0, None, f"tradeobs.{stream}")


def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_the_first_few_in_full_then_one_count_line_per_interval_naming_the_files() -> None:
    out = io.StringIO()
    echo = StreamEcho("logs", first=2, interval=60.0, stream=out)
    echo.take([_b("risk", "r0"), _b("risk", "r1", "Traceback ...\nValueError: x"), _b("risk", "r2")], 0.0)
    assert _lines(out) == ["r0", "r1", "Traceback ...", "ValueError: x"]
    for t in range(1, 60):  # a desk's warning a second: held, counted, not printed
        echo.take([_b("risk", "r"), _b("execution", "x")] if t % 2 else [_b("risk", "r")], float(t))
    assert len(_lines(out)) == 4
    echo.tick(60.0)
    tail = (
        " (stderr shows the first 2, then this count at most once in 60 s; TRADEOBS_LOG_CONSOLE=true prints every line)"
    )
    assert _lines(out)[4:] == ["tradeobs: 60 more warnings in logs/risk.jsonl (risk), 30 in logs/execution.jsonl "
                               "(execution)" + tail]  # fmt: skip
    echo.take([_b("risk", "r")], 61.0)
    echo.tick(119.0)
    assert len(_lines(out)) == 5  # within the interval of the last count: held
    echo.tick(120.0)
    assert _lines(out)[5:] == ["tradeobs: 1 more warning in logs/risk.jsonl (risk)" + tail]
    assert (echo.printed, echo.held_total) == (2, 91)


def test_after_a_quiet_interval_the_next_ones_are_printed_in_full_again() -> None:
    out = io.StringIO()
    echo = StreamEcho(None, first=1, interval=60.0, stream=out)
    echo.take([_b("strategy", "a"), _b("strategy", "b")], 0.0)
    echo.tick(60.0)
    echo.tick(120.0)  # nothing held for a whole interval
    echo.take([_b("strategy", "c"), _b("strategy", "d")], 130.0)
    echo.tick(130.0, force=True)  # shutdown: the count now
    assert _lines(out)[0] == "a"
    assert _lines(out)[1].startswith("tradeobs: 1 more warning in the strategy stream (no log files) (")
    assert _lines(out)[2] == "c"
    assert _lines(out)[3].startswith("tradeobs: 1 more warning in the strategy stream (no log files) (")


def test_a_closed_stderr_is_not_raised_into_the_worker() -> None:
    out = io.StringIO()
    out.close()
    echo = StreamEcho("logs", stream=out)
    echo.take([_b("risk", "r0")], 0.0)
    assert echo.printed == 1
