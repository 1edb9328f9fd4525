"""Records logged before the log pipeline runs (``init()`` building the agent): kept, bounded, then written."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tests.unit.logs._logs_helpers import Env
from tradeobs_agent.logs._early import LIMIT, EarlyRecords


def test_records_before_the_pipeline_are_written_once_bounded_and_not_printed_again(
    make_env: Callable[..., Env], capsys: pytest.CaptureFixture[str]
) -> None:
    """What init() said before its pipeline ran (a Prometheus port in use) reached stderr and never the JSON logs.
    They are written now with their own level and logger, at most LIMIT of them (the rest counted as dropped), and
    the console sink does not print them a second time: Python's last resort or the application's handler did."""
    early = EarlyRecords.attach()
    try:
        log = logging.getLogger("tradeobs.early_test")
        log.info("not a warning: not kept")
        for i in range(LIMIT + 5):
            log.warning("early %d", i)
        logging.getLogger("my_app").error("the application's, before init()")
    finally:
        early.detach()
    env = make_env(console=True)
    capsys.readouterr()
    early.hand_to(env.pipeline)
    env.flush()
    system = [(x["level"], x["message"]) for x in env.lines("system") if x["logger"] == "tradeobs.early_test"]
    assert system == [("WARNING", f"early {i}") for i in range(LIMIT)]
    assert [x["message"] for x in env.lines("service") if x["logger"] == "my_app"] == []  # past the bound too
    assert env.counter("tradeobs.agent.logs.dropped", reason="queue_full") == 6
    assert "early 0" not in capsys.readouterr().err


def test_the_application_error_before_init_is_in_its_stream(make_env: Callable[..., Env]) -> None:
    early = EarlyRecords.attach()
    try:
        logging.getLogger("my_app").error("the application's, before init()")
    finally:
        early.detach()
    env = make_env()
    early.hand_to(env.pipeline)
    env.flush()
    assert [(x["level"], x["message"]) for x in env.lines("service")] == [("ERROR", "the application's, before init()")]
