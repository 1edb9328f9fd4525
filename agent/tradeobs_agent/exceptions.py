"""Exceptions raised by tradeobs.

Only programmer errors raise: an explicit bad argument to ``init()`` or to an
instrument constructor. Runtime problems (a dead collector, a full disk, odd
attribute values) never raise into the application; they are counted in the
``tradeobs.agent.*`` self-metrics instead.
"""

from __future__ import annotations

__all__ = ["TradeObsConfigError", "TradeObsError", "UnknownSettingError", "shown_value"]


class TradeObsError(Exception):
    """Base class for every tradeobs exception."""


class TradeObsConfigError(TradeObsError, ValueError):
    """A setting has a value that is not allowed.

    >>> err = TradeObsConfigError("otlp_protocol", "udp", "one of: grpc, http/protobuf")
    >>> str(err)
    "invalid setting otlp_protocol='udp': expected one of: grpc, http/protobuf"
    """

    def __init__(self, setting: str, value: object, allowed: str, source: str = "argument") -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed
        self.source = source
        where = "" if source == "argument" else f" (from {source})"
        super().__init__(f"invalid setting {setting}={shown_value(value)}{where}: expected {allowed}")


SHOWN_MAX = 200
"""Characters of a bad value's ``repr`` an error message shows."""


def shown_value(value: object) -> str:
    """``repr(value)`` for an error message: cut at :data:`SHOWN_MAX` characters, and a marker when it raises."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__: the message still names the setting and what is allowed
        return f"<{type(value).__name__} whose repr() fails>"
    if type(text) is not str:
        text = str.__str__(text)
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX]}... ({len(text)} characters)"


class UnknownSettingError(TradeObsConfigError, TypeError):
    """An unknown keyword (``init(servce_name=...)``): a ``TypeError``, as Python raises, that says what was meant.

    >>> str(UnknownSettingError("init() got an unexpected keyword argument 'x'", "x", 1, "did you mean 'y'?"))
    "init() got an unexpected keyword argument 'x'"
    """

    def __init__(self, message: str, setting: str, value: object, allowed: str) -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed
        self.source = "argument"
        Exception.__init__(self, message)
