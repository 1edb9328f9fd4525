"""Scrub secrets from text and attributes before any sink sees them.

>>> r = Redactor()
>>> r.text("GET /v2/orders APCA-API-SECRET-KEY: s3cr3tvalue")
'GET /v2/orders APCA-API-SECRET-KEY: [REDACTED]'
>>> r.attributes({"api_key": "abc", "symbol": "AAPL"})
{'api_key': '[REDACTED]', 'symbol': 'AAPL'}

The log pipeline runs this on its worker thread (never on the caller's); the
span exporters' scrubbing (``_internal/scrub.py``), the metric registry, the
resource and the live stream's events use the same rules (:func:`default_redactor`).
It sits low in the package (below ``logs``) so that all of them can. What it catches, and what it
does not, is listed in ``docs/logging.md``. In short:

* attribute **names** that look secret (``api_key``, ``apiKey``, ``secret``,
  ``client_secret``, ``password``, ``passwd``, ``token``, ``auth_token``,
  ``authorization``, ``cookie``, ``credential``, ``private_key``,
  ``APCA-API-KEY-ID``, ``APCA-API-SECRET-KEY``, ``account``,
  ``account_number``): the value is replaced, whatever it is;
* **values** in free text: ``Bearer``/``Basic`` credentials, ``key=value`` /
  ``key: value`` / ``"key": "value"`` pairs whose key looks secret (including
  the Alpaca headers), account numbers (8-17 digits after an account-ish
  word), passwords in URLs (``scheme://user:pass@``), JWTs and AWS access key ids.

Secret **values** the agent knows (``tradeobs_agent.secret_values``: the
broker keys in the environment, the agent's own tokens, anything passed to
``tradeobs_agent.register_secret``) are masked first, wherever they appear,
also bare (``"header: PKXYZ..."``). A secret the agent was never told about,
with no hint around it, is not caught; nor are secrets split across several
attributes or inside binary payloads. The collector's ``attributes/redact`` processor is a second line of
defence for OTLP; files only have this one.

Secret-named attributes are kept with the value ``[REDACTED]`` (the collector
deletes them): seeing that a key was sent is useful when debugging auth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import secret_values
from .secrets_keys import KEY_PATTERN, TEXT_KEY_PATTERN, TEXT_TRIGGERS

__all__ = ["DEFAULT_KEY_PATTERN", "DEFAULT_VALUE_PATTERNS", "MASK", "Redactor", "default_redactor"]

MASK = secret_values.MASK

# Both generated from the one list of secret keys the collector config shares (tradeobs_agent/secrets_keys.py).
DEFAULT_KEY_PATTERN = KEY_PATTERN  # matched (search) against attribute names
_SECRET_WORDS = TEXT_KEY_PATTERN

# (pattern, replacement, triggers) applied in order to every message and string attribute value. A rule runs
# only when the lower-cased text contains one of its trigger substrings: most log lines hold no secret, and a
# substring test is ~50x cheaper than a regex scan.
DEFAULT_VALUE_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # key=value, key: value, "key": "value", headers; an optional Bearer/Basic scheme is kept visible. A value
    # already masked (a known secret value, masked first) is left as it is.
    (
        r"(?i)((?<![A-Za-z0-9])(?:" + _SECRET_WORDS + r")[\"']?\s*[:=]\s*[\"']?)"
        r"((?:bearer|basic)\s+)?(?!\[REDACTED\])[^\s\"',;&}\]]+",
        r"\1\2" + MASK,
        TEXT_TRIGGERS,
    ),
    # A credential after the scheme word anywhere else ("sent Bearer abc...").
    (r"(?i)\b(bearer|basic)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}", r"\1 " + MASK, ("bearer", "basic")),
    # Account numbers: 8-17 digits shortly after an account-ish word.
    (
        r"(?i)(\b(?:account|acct)(?:[\s_.-]*(?:number|num|no|nbr|id|#))?\.?[\"']?\s*(?:[:=#]|is)?\s*[\"']?)"
        r"\d{8,17}\b",
        r"\1" + MASK,
        ("acc",),
    ),
    # user:password@ in URLs.
    (r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@", r"\1" + MASK + "@", ("://",)),
    # JSON Web Tokens.
    (r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}", MASK, ("eyj",)),
    # AWS access key ids.
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MASK, ("akia", "asia")),
)

_MAX_DEPTH = 6


class Redactor:
    """Scrubs text and attribute mappings.

    >>> Redactor(extra_patterns=[r"ORD-SECRET-\\d+"]).text("see ORD-SECRET-42")
    'see [REDACTED]'

    ``extra_patterns`` are added to the defaults: the whole match is replaced,
    or only the group named ``secret`` when the pattern has one. Pass
    ``defaults=False`` to use only your patterns. ``key_pattern`` replaces the
    regex for secret-looking attribute names. ``known_values=False`` leaves the
    known secret values (``tradeobs_agent.secret_values``) to someone else.
    Bad patterns raise ``ValueError``.
    """

    def __init__(
        self,
        extra_patterns: Iterable[str] = (),
        *,
        key_pattern: str | None = None,
        defaults: bool = True,
        known_values: bool = True,
    ) -> None:
        self._mask_values = secret_values.mask if known_values else None
        try:
            self._key = re.compile(key_pattern or DEFAULT_KEY_PATTERN)
            rules: list[tuple[re.Pattern[str], Any, tuple[str, ...]]] = []
            if defaults:
                rules.extend((re.compile(p), repl, trig) for p, repl, trig in DEFAULT_VALUE_PATTERNS)
            for p in extra_patterns:
                rx = re.compile(p)
                rules.append((rx, _group_mask if "secret" in rx.groupindex else MASK, ()))
        except re.error as exc:
            raise ValueError(f"invalid redaction pattern: {exc}") from None
        self._rules = tuple(rules)
        self._key_cache: dict[str, bool] = {}

    def is_secret_key(self, name: str) -> bool:
        """Whether an attribute called ``name`` holds a secret."""
        hit = self._key_cache.get(name)
        if hit is None:
            hit = self._key.search(name) is not None
            if len(self._key_cache) < 4096:
                self._key_cache[name] = hit
        return hit

    def text(self, s: str) -> str:
        """``s`` with every secret-looking value replaced by ``[REDACTED]``."""
        if len(s) < 5:
            return s
        if self._mask_values is not None:
            s = self._mask_values(s)  # known values first: a pattern below could cut a value in two
        low = s.lower()
        for rx, repl, triggers in self._rules:
            if triggers:
                for t in triggers:
                    if t in low:
                        break
                else:
                    continue
            s = rx.sub(repl, s)
        return s

    def value(self, key: str, v: Any, depth: int = 0) -> Any:
        """One attribute value: masked if ``key`` looks secret, else scrubbed (nested containers too)."""
        if self.is_secret_key(key):
            return MASK
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return MASK if self._mask_values is not None and secret_values.int_is_secret(v) else v
        if depth < _MAX_DEPTH:
            if isinstance(v, Mapping):
                return {str(k): self.value(str(k), x, depth + 1) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [self.value("", x, depth + 1) for x in v]
        return v

    def attributes(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of ``attrs``."""
        return {k: self.value(k, v) for k, v in attrs.items()}


def _group_mask(m: re.Match[str]) -> str:
    start, end = m.span("secret")
    base = m.start()
    whole = m.group(0)
    return whole[: start - base] + MASK + whole[end - base :]


_DEFAULT: Redactor | None = None


def default_redactor() -> Redactor:
    """A shared :class:`Redactor` with the built-in patterns and the known secret values."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor()
    return _DEFAULT
