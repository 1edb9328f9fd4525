"""The ``tradeobs`` console script's entry point: the command (``tradeobs_agent.cli``), quiet on Ctrl-C from the start.

The script imports its entry point before any of the command's code runs, and ``tradeobs_agent.cli`` loads the agent
and OpenTelemetry (about a second, more on a loaded machine): Ctrl-C in that second, or in the argument parsing that
follows, printed a ``KeyboardInterrupt`` traceback of importlib's frames (a newcomer's ``tradeobs demo`` stopped at
once, 2026-12-07). Outside the package, so that importing it imports nothing else first; the command's own code
stops quietly on Ctrl-C as before (exit status 130, as a shell reports it).
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> int:
    """Run ``tradeobs`` with ``sys.argv``; Ctrl-C before the command took over the signal exits 130 without a word."""
    try:
        from tradeobs_agent.cli import main as command

        return command()
    except KeyboardInterrupt:
        return 130
