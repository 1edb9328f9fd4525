"""What the fleet gateway says about its NATS connection.

The connection itself, with a real nats-server: tests/integration/test_live_gateway.py.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from tradeobs_agent import cli
from tradeobs_agent.live.gateway import GatewayHub


def test_each_nats_reconnect_is_said_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    """The disconnect is warned of; the gateway used to say nothing when NATS was back."""
    hub = GatewayHub("nats://trader:hunter2@127.0.0.1:1")

    async def connection() -> None:
        hub._resubscribe = asyncio.Event()
        await hub._on_reconnected()  # the first connect: nothing was lost, nothing to say
        for _ in range(2):
            await hub._on_disconnected()
            await hub._on_disconnected()  # the client library may report a disconnect more than once
            assert hub.gstats["nats"] == 0
            await hub._on_nats_reconnected()
            assert hub.gstats["nats"] == 1 and hub._resubscribe.is_set()  # and it re-subscribes

    with caplog.at_level(logging.INFO, logger="tradeobs"):
        asyncio.run(connection())
    said = [r for r in caplog.records if "NATS" in r.getMessage()]
    assert [(r.name, r.levelno) for r in said] == [("tradeobs.live", logging.INFO)] * 2
    for r in said:
        assert re.search(r"NATS at nats://127\.0\.0\.1:1 reconnected after \d+\.\d s", r.getMessage())
        assert "hunter2" not in r.getMessage() and "trader" not in r.getMessage()


def test_the_gateway_command_shows_tradeobs_info_lines_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a handler, only warnings reached stderr (Python's last resort): the reconnect line was lost."""
    log = logging.getLogger("tradeobs")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in the command: nothing configured
    monkeypatch.setattr(log, "handlers", [])
    level = log.level
    try:
        cli._say_info_on_stderr()
        logging.getLogger("tradeobs.live").info("tradeobs gateway: NATS at nats://h:4222 reconnected")
        logging.getLogger("tradeobs.live").debug("not this")
        assert capsys.readouterr().err == "tradeobs gateway: NATS at nats://h:4222 reconnected\n"
        configured = logging.StreamHandler()
        monkeypatch.setattr(log, "handlers", [configured])
        log.setLevel(logging.WARNING)
        cli._say_info_on_stderr()  # logging configured by the user: left as it is
        assert log.handlers == [configured] and log.level == logging.WARNING
    finally:
        log.setLevel(level)
