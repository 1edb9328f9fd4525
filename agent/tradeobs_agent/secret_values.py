"""Secret *values* the agent knows, and the one function that masks them wherever they appear.

>>> from tradeobs_agent import secret_values
>>> secret_values.register_secret("PKTEST1234567890ABCD")
>>> secret_values.mask("header: PKTEST1234567890ABCD")
'header: [REDACTED]'

:mod:`tradeobs_agent.secrets_keys` decides which *names* hold a secret (``api_key=...``
is masked whatever the value). This module knows the values themselves, so a
bare value with no hint around it is masked too (``log.info("header: %s", key)``,
an exception message, a URL, a span attribute called ``note``). It learns them:

* from the environment (:func:`learn_environment`, run by ``init()`` and on
  first use): every variable in :data:`SECRET_ENV_VARS` (the broker and data
  vendor keys a trading service usually has), and every variable whose *name*
  is secret by :func:`tradeobs_agent.secrets_keys.is_secret_key` (``DB_PASSWORD``,
  ``AWS_SECRET_ACCESS_KEY``), except names ending in :data:`NOT_VALUE_SUFFIXES`
  (``*_FILE``, ``*_PATH``: they name where a secret is, not the secret);
* from the agent's own secret settings (``live_token``, the values of
  ``otlp_headers``), registered by ``init()``;
* from :func:`register_secret` (``tradeobs_agent.register_secret``), for values
  the application reads elsewhere (a vault, a file).

Each value is also masked URL-encoded (``quote``/``quote_plus``), the form it
takes in a query string. Values shorter than :data:`MIN_LENGTH` characters are
refused by :func:`register_secret` (masking every ``"abc"`` in every log line
would destroy the logs and protect nothing); from the environment, values
shorter than :data:`ENV_MIN_LENGTH` are skipped.

:func:`mask` is called by the log worker (``logs/redact.py``), the span exporters'
scrubbing (``_internal/scrub.py``), the metric registry when it binds an attribute
set, the resource, and the live stream's events: never on the thread that logs.
With no secret known it costs one comparison; with some, one substring test per
value (``str.__contains__``), which measured faster than one regex alternation
(``benchmarks/logging_hotpath.py`` reports the cost per record).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Mapping

from .secrets_keys import is_secret_key

__all__ = [
    "ENV_MIN_LENGTH",
    "MASK",
    "MIN_LENGTH",
    "NOT_VALUE_SUFFIXES",
    "SECRET_ENV_VARS",
    "contains",
    "int_is_secret",
    "learn_environment",
    "learned_from",
    "mask",
    "register_secret",
    "reset",
    "version",
]

MASK = "[REDACTED]"
MIN_LENGTH = 6
"""Shortest value :func:`register_secret` accepts."""
ENV_MIN_LENGTH = 8
"""Shortest environment value learned (shorter ones are flags and names: ``true``, ``prod``)."""

#: Well-known variables holding broker and market-data credentials. Names the secret-key list already matches
#: (``APCA_API_SECRET_KEY``: "secret") are here too, so the list documents what a trading service is expected to
#: have; the ones it does not match (account ids) are here because only this list catches them.
SECRET_ENV_VARS: tuple[str, ...] = (
    # Alpaca (the official SDKs' names, and the common alternatives)
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "APCA_OAUTH_TOKEN",
    "ALPACA_API_KEY",
    "ALPACA_API_KEY_ID",
    "ALPACA_API_SECRET",
    "ALPACA_API_SECRET_KEY",
    "ALPACA_SECRET_KEY",
    "ALPACA_ACCOUNT_ID",
    "ALPACA_ACCOUNT_NUMBER",
    # Interactive Brokers, Tradier, OANDA, Schwab, Tastytrade
    "IB_ACCOUNT",
    "IBKR_ACCOUNT_ID",
    "TRADIER_ACCESS_TOKEN",
    "TRADIER_ACCOUNT_ID",
    "OANDA_API_KEY",
    "OANDA_ACCESS_TOKEN",
    "OANDA_ACCOUNT_ID",
    "SCHWAB_APP_KEY",
    "SCHWAB_APP_SECRET",
    "TASTYTRADE_PASSWORD",
    # Crypto venues
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "BINANCE_SECRET_KEY",
    "COINBASE_API_KEY",
    "COINBASE_API_SECRET",
    "KRAKEN_API_KEY",
    "KRAKEN_API_SECRET",
    # Market data
    "POLYGON_API_KEY",
    "DATABENTO_API_KEY",
    "FINNHUB_API_KEY",
    "TIINGO_API_KEY",
    "IEX_TOKEN",
    "ALPHAVANTAGE_API_KEY",
)

#: A secret-looking variable name with one of these endings names where a secret is, not the secret.
NOT_VALUE_SUFFIXES: tuple[str, ...] = ("_FILE", "_PATH", "_DIR", "_DIRECTORY", "_URL_FILE")
NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})
"""Variables whose names look secret (``pwd``) but that the shell sets to the working directory: learnt as secrets,
every path under it in a traceback or a message became ``[REDACTED]``."""

_lock = threading.Lock()
_values: set[str] = set()  # what was registered or learned (stripped)
_sources: list[str] = []  # environment variable names learned from (names only, never values)
_variants: tuple[str, ...] = ()  # every form masked, longest first (a value inside another is masked last)
_shortest = 1 << 30
_digits: frozenset[str] = frozenset()  # values made only of digits: an int attribute can hold them
_version = 0
_env_learned = False


def register_secret(value: str) -> None:
    """Mask ``value`` wherever the agent writes or exports it, from now on.

    >>> import tradeobs_agent
    >>> tradeobs_agent.register_secret(vault.read("broker/secret"))     # doctest: +SKIP

    Raises ``TypeError`` for a non-string and ``ValueError`` for a value shorter
    than :data:`MIN_LENGTH` characters (neither message shows the value). Call it
    before ``tradeobs_agent.init()`` to have it masked in resource attributes too.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"register_secret(value): value must be a str, got {type(value).__name__} (pass str(value) for a number)"
        )
    stripped = value.strip()
    if len(stripped) < MIN_LENGTH:
        raise ValueError(
            f"register_secret(value): value must be at least {MIN_LENGTH} characters long (spaces around it do not "
            f"count); got {len(stripped)}. Shorter strings cannot be masked without masking ordinary text."
        )
    _add((stripped,))


def learn_environment(env: Mapping[str, str] | None = None) -> list[str]:
    """Learn secret values from ``env`` (default ``os.environ``); the names of the variables they came from."""
    global _env_learned
    env = os.environ if env is None else env
    found: list[tuple[str, str]] = []
    for name, raw in list(env.items()):
        upper = name.upper()
        if upper in NOT_SECRET_NAMES or (
            upper not in _WELL_KNOWN and (not is_secret_key(name) or upper.endswith(NOT_VALUE_SUFFIXES))
        ):
            continue
        value = raw.strip()
        if len(value) >= ENV_MIN_LENGTH:
            found.append((name, value))
    _add(tuple(v for _, v in found), tuple(n for n, _ in found))
    _env_learned = True
    return sorted({n for n, _ in found})


def learned_from() -> list[str]:
    """The environment variables secret values were learned from (for ``tradeobs config check``)."""
    with _lock:
        return sorted(set(_sources))


def _variants_of(value: str) -> set[str]:
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value, safe="")}
    forms.add(urllib.parse.quote(value))  # '/' kept, as in a path
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _add(values: tuple[str, ...], sources: tuple[str, ...] = ()) -> None:
    global _variants, _shortest, _digits, _version
    with _lock:
        _sources.extend(s for s in sources if s not in _sources)
        new = [v for v in values if v not in _values]
        if not new:
            return
        _values.update(new)
        forms: set[str] = set()
        for v in _values:
            forms |= _variants_of(v)
        ordered = tuple(sorted(forms, key=lambda f: (-len(f), f)))
        _digits = frozenset(v for v in _values if v.isascii() and v.isdigit())
        _shortest = min(len(f) for f in ordered)
        _variants = ordered
        _version += 1


def _ensure_learned() -> None:
    if not _env_learned:
        learn_environment()


def mask(text: str) -> str:
    """``text`` with every known secret value replaced by ``[REDACTED]``."""
    if not _env_learned:
        _ensure_learned()
    variants = _variants
    if not variants or len(text) < _shortest:
        return text
    for v in variants:
        if v in text:
            text = text.replace(v, MASK)
    return text


def contains(text: str) -> bool:
    """Whether ``text`` holds a known secret value."""
    if not _env_learned:
        _ensure_learned()
    return len(text) >= _shortest and any(v in text for v in _variants)


def int_is_secret(value: int) -> bool:
    """Whether an integer attribute's digits hold a known all-digit secret (an account number as an ``int``)."""
    digits = _digits
    if not digits:
        return False
    s = str(value)
    return len(s) >= MIN_LENGTH and any(d in s for d in digits)


def version() -> int:
    """Changes whenever a value is added: caches of masked text compare it."""
    if not _env_learned:
        _ensure_learned()
    return _version


def reset() -> None:
    """Forget every value (tests: ``tradeobs_agent.testing.reset``); the environment is learned again on next use."""
    global _variants, _shortest, _digits, _version, _env_learned
    with _lock:
        _values.clear()
        _sources.clear()
        _variants = ()
        _shortest = 1 << 30
        _digits = frozenset()
        _version += 1
        _env_learned = False


_WELL_KNOWN = frozenset(SECRET_ENV_VARS)
