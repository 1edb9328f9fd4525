"""Exceptions raised by tradeobs.

Only programmer errors raise: an explicit bad argument to ``init()`` or to an
instrument constructor. Runtime problems (a dead collector, a full disk, odd
attribute values) never raise into the application; they are counted in the
``tradeobs.agent.*`` self-metrics instead.
"""

from __future__ import annotations

__all__ = ["TradeObsConfigError", "TradeObsError"]


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
