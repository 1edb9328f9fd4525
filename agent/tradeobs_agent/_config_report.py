"""What resolving the configuration found: where each setting came from, and every problem.

>>> str(Problem("log_level", "chatty", "TRADEOBS_LOG_LEVEL", "one of: DEBUG, INFO"))
"ignoring TRADEOBS_LOG_LEVEL value 'chatty' for log_level: expected one of: DEBUG, INFO; using the default"
>>> str(Problem.unknown("TRADEOBS_SERVCE_NAME", "environment variable TRADEOBS_SERVCE_NAME", "did you mean X?"))
'unknown environment variable TRADEOBS_SERVCE_NAME is ignored; did you mean X?'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigReport", "Problem"]


@dataclass(frozen=True)
class Problem:
    """A bad value, or an unknown name, in the environment or the config file.

    ``setting`` is the setting (or, for an unknown name, the name as written),
    ``source`` where it was found, ``allowed`` what is allowed (or the closest
    valid name). ``message``, when set, is the whole text. An unknown name's
    value is never kept: it may be a secret (a misspelt token variable).
    """

    setting: str
    value: Any
    source: str
    allowed: str
    message: str = ""

    @classmethod
    def unknown(cls, name: str, what: str, hint: str) -> Problem:
        """``what`` names the thing and where it is: ``"key 'x' in tradeobs.toml"``; ``hint`` the closest name."""
        return cls(name, None, what, hint, f"unknown {what} is ignored" + (f"; {hint}" if hint else ""))

    def __str__(self) -> str:
        if self.message:
            return self.message
        return (
            f"ignoring {self.source} value {self.value!r} for {self.setting}: expected {self.allowed}; "
            f"using the default"
        )


@dataclass
class ConfigReport:
    """Where each setting came from, and every problem found while resolving."""

    sources: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    config_file: str | None = None

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")
