"""Exceptions raised by tradeobs.

Only programmer errors raise: an explicit bad argument to ``init()`` or to an
instrument constructor. Runtime problems (a dead collector, a full disk, odd
attribute values) never raise into the application; they are counted in the
``tradeobs.agent.*`` self-metrics instead.
"""

from __future__ import annotations

__all__ = ["TradeObsConfigError", "TradeObsError", "UnknownSettingError"]


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
        super().__init__(f"invalid setting {setting}={value!r}{where}: expected {allowed}")


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
