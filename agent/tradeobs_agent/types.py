"""Type aliases shared across the package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

AttributeValue: TypeAlias = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
Attributes: TypeAlias = Mapping[str, AttributeValue]
AttrKey: TypeAlias = tuple[tuple[str, str | bool | int | float], ...]
"""A normalised, hashable attribute set: sorted ``(key, value)`` pairs."""

__all__ = ["AttrKey", "AttributeValue", "Attributes"]
