"""Where the log pipeline's redaction used to live: it is :mod:`tradeobs_agent.redaction` now (spans, metrics and
the live stream use it too); this module keeps the old import path working."""

from __future__ import annotations

from ..redaction import DEFAULT_KEY_PATTERN, DEFAULT_VALUE_PATTERNS, MASK, Redactor, default_redactor

__all__ = ["DEFAULT_KEY_PATTERN", "DEFAULT_VALUE_PATTERNS", "MASK", "Redactor", "default_redactor"]
