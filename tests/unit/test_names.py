"""Close-name suggestions (tradeobs_agent._names)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tradeobs_agent._names import closest, did_you_mean, keywords_checked, keywords_checked_class
from tradeobs_agent.exceptions import TradeObsConfigError, UnknownSettingError

NAMES = ["service_name", "service_version", "otlp_endpoint", "log_dir", "live_token"]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("servce_name", "service_name"),  # a letter missing
        ("SERVICE_NAME", "service_name"),  # case
        ("service_nmae", "service_name"),  # swapped letters
        ("endpoint", "otlp_endpoint"),  # the prefix left out
        ("live_tokens", "live_token"),  # one letter too many
    ],
)
def test_closest_finds_what_was_meant(typo: str, meant: str) -> None:
    assert closest(typo, NAMES) == meant


def test_nothing_close_suggests_nothing() -> None:
    assert closest("qqq", NAMES) is None
    assert did_you_mean("qqq", NAMES) == ""
    assert did_you_mean("log_dr", NAMES) == "did you mean 'log_dir'?"
    assert did_you_mean("log_dr", NAMES, quote=str.upper) == "did you mean LOG_DIR?"


def test_keywords_checked_raises_a_type_error_that_is_also_a_config_error() -> None:
    @keywords_checked
    def configure(*, service_name: str = "x", log_dir: str = "logs") -> str:
        return service_name + log_dir

    assert configure(service_name="a", log_dir="b") == "ab"
    with pytest.raises(UnknownSettingError) as info:
        configure(log_dri="b")  # type: ignore[call-arg]
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, TradeObsConfigError) and isinstance(err, ValueError)
    assert str(err) == "configure() got an unexpected keyword argument 'log_dri'; did you mean 'log_dir'?"
    assert (err.setting, err.value) == ("log_dri", "b")
    with pytest.raises(UnknownSettingError, match="valid keywords: log_dir, service_name"):
        configure(zzz=1)  # type: ignore[call-arg]


def test_keywords_checked_class_keeps_positional_and_keyword_construction() -> None:
    @keywords_checked_class
    @dataclass(frozen=True)
    class Opts:
        host: str | None = None
        port: int | None = None

    assert Opts("h", 1) == Opts(host="h", port=1)
    with pytest.raises(
        UnknownSettingError, match=r"Opts\(\) got an unexpected keyword argument 'prot'; did you mean 'port'\?"
    ):
        Opts(prot=1)  # type: ignore[call-arg]
