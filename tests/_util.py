"""Small helpers for tests: free loopback ports."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_endpoint() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago, so connects are refused)."""
    return f"http://127.0.0.1:{free_port()}"
