"""The one list of secret keys, and the redaction regexes generated from it.

>>> from tradeobs_agent.secrets_keys import is_secret_key
>>> is_secret_key("apiKey"), is_secret_key("x-auth-token"), is_secret_key("gen_ai.usage.input_tokens")
(True, True, False)

Every redaction regex in the project comes from :data:`SECRET_KEYS`:

* :data:`KEY_PATTERN` decides which attribute *names* are secret. The agent's
  log redaction (``tradeobs_agent.logs.redact``) masks their values; the
  collector (``collector/otel-collector.yaml``: ``attributes/redact`` and the
  ``delete_matching_keys`` statements of ``transform/redact``) deletes them.
* :data:`TEXT_KEY_PATTERN` is the alternation of keys whose value is masked in
  free text (``key=value``, ``key: value``, ``"key": "value"``): in the agent's
  log messages and, through the first of ``redaction.DEFAULT_VALUE_PATTERNS``
  (translated to RE2 by ``scripts/gen_redaction.py``), in the collector's
  ``replace_pattern`` on log bodies and ``replace_all_patterns`` on attributes.

To add a key: add it below, run ``python scripts/gen_redaction.py`` (rewrites
the generated section of ``collector/*.yaml``) and commit both;
``tests/unit/test_secrets_keys.py`` fails while they differ, and
``tradeobs collector check`` reports a config whose regexes disagree.

The patterns use only syntax that Python's ``re`` and Go's RE2 (the
collector) read the same way: no look-around, no backreferences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "HEADER_KEY_PATTERN",
    "KEY_PATTERN",
    "SECRET_KEYS",
    "TEXT_KEY_PATTERN",
    "TEXT_TRIGGERS",
    "TEXT_WORDS_PATTERN",
    "SecretKey",
    "is_secret_key",
    "key_pattern",
    "text_key_pattern",
    "text_triggers",
    "text_words_pattern",
]

Match = Literal["anywhere", "word", "whole"]

_SEP = "[._-]?"  # what a space in SecretKey.words stands for: api key -> api_key, api-key, api.key, apiKey
_TEXT_SEP = "[._ -]?"  # ... and in text also a space: "invalid api key: PK..." (followed by ":" or "=" to be masked)


@dataclass(frozen=True)
class SecretKey:
    """One secret key.

    ``words``: lower case, a space stands for an optional ``.``, ``_`` or ``-``
    (so ``"api key"`` also matches ``apiKey``). ``match``: where in an
    attribute name the words must appear:

    * ``anywhere``: ``client_secret``, ``X-Api-Key``, ``db.password``;
    * ``word``: as a whole dot/underscore/dash-separated part of the name
      (``auth_token``, ``x-auth-token``, ``token``, but not ``input_tokens``);
    * ``whole``: the entire name (``pwd``, ``account``; ``account_type`` is not secret).

    ``in_text``: also mask ``words=value`` in free text (log messages, log bodies).
    """

    words: str
    match: Match = "anywhere"
    in_text: bool = True

    def regex(self, sep: str = _SEP) -> str:
        return sep.join(re.escape(w) for w in self.words.split())


#: The list. Order does not matter.
SECRET_KEYS: tuple[SecretKey, ...] = (
    SecretKey("api key"),
    SecretKey("access key"),
    SecretKey("secret"),
    SecretKey("password"),
    SecretKey("passwd"),
    SecretKey("passphrase"),
    SecretKey("authorization"),
    SecretKey("cookie"),
    SecretKey("credential"),
    # Also Alpaca's APCA-API-KEY-ID and APCA-API-SECRET-KEY headers (through "api key" and "secret"),
    # but not APCA_API_BASE_URL.
    SecretKey("private key"),
    # Coinbase Pro's and Kraken clients' b64secret (the base64 API secret): "secret" after a digit is no word
    # start in text, so b64secret='...' in a client's repr was kept.
    SecretKey("b64 secret"),
    # A Binance user-data stream's listenKey (whoever has it reads the account's orders and balances).
    SecretKey("listen key"),
    # "token" only as a word: gen_ai.usage.input_tokens, max_tokens are token *counts*.
    SecretKey("token", "word"),
    SecretKey("auth token", "word"),
    SecretKey("access token", "word"),
    SecretKey("refresh token", "word"),
    SecretKey("id token", "word"),
    SecretKey("bearer token", "word"),
    SecretKey("session token", "word"),
    SecretKey("csrf token", "word"),
    SecretKey("pwd", "whole"),
    # Brokerage account numbers. Whole names only (account_type, account_id are not secret); in text the
    # agent masks 8-17 digit account numbers after an account-ish word instead (logs/redact.py).
    SecretKey("account", "whole", in_text=False),
    SecretKey("account number", "whole", in_text=False),
    SecretKey("account no", "whole", in_text=False),
    SecretKey("account num", "whole", in_text=False),
    SecretKey("account nbr", "whole", in_text=False),
    SecretKey("acct", "whole", in_text=False),
    SecretKey("acct number", "whole", in_text=False),
    SecretKey("acct no", "whole", in_text=False),
    SecretKey("acct num", "whole", in_text=False),
    SecretKey("acct nbr", "whole", in_text=False),
)


# A captured HTTP header (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST and the like: the instrumentations
# record it as http.request.header.<name>, lower case, "-" as "_") whose name ends in a key, a signature, an auth or
# a session part holds a credential even where the list above does not say so: Azure's Ocp-Apim-Subscription-Key,
# X-Auth-Key, Coinbase's CB-ACCESS-SIGN, X-Session-Id. Only under ".header.", where such a name is a header's.
HEADER_KEY_PATTERN = r"\.header\.([a-z0-9]+[_-])*([a-z0-9]*key|auth|sign|signature|session|sid)([_-][a-z0-9]+)*$"


def key_pattern(keys: tuple[SecretKey, ...] = SECRET_KEYS) -> str:
    """Case-insensitive regex, *searched* in an attribute name, that matches when the name is secret."""
    anywhere = [k.regex() for k in keys if k.match == "anywhere"]
    word = [k.regex() for k in keys if k.match == "word"]
    whole = [k.regex() for k in keys if k.match == "whole"]
    parts = [*anywhere, HEADER_KEY_PATTERN]
    if word:
        parts.append("(^|[._-])(" + "|".join(word) + ")($|[._-])")
    if whole:
        # the whole name, or its last dot-separated part: a nested entry's flattened name (broker.account)
        parts.append("(^|\\.)(" + "|".join(whole) + ")$")
    return "(?i)(" + "|".join(parts) + ")"


def text_key_pattern(keys: tuple[SecretKey, ...] = SECRET_KEYS) -> str:
    """Regex (no flags, no capture groups) for the key of a ``key=value`` pair in text whose value is secret.

    A key may go on with more name parts after a separator (``secret_key``, ``APCA-API-SECRET-KEY``,
    ``password_hash``), but not with letters (``input_tokens`` is not a token). In text the words of a key may also
    be apart (``invalid api key: PK...``, ``access token = ...``, as an error message writes them).
    """
    words = "|".join(k.regex(_TEXT_SEP) for k in keys if k.in_text)
    return "(?:" + words + ")(?:[._-][a-z0-9]+)*"


def text_words_pattern(keys: tuple[SecretKey, ...] = SECRET_KEYS) -> str:
    """Regex (no flags, no capture groups) of the key words alone, with no further name parts (``token``,
    ``api key``; not ``token_address``): a key written in a sentence, its value after a space
    (``redaction._PROSE_SECRET``)."""
    return "(?:" + "|".join(k.regex(_TEXT_SEP) for k in keys if k.in_text) + ")"


def text_triggers(keys: tuple[SecretKey, ...] = SECRET_KEYS) -> tuple[str, ...]:
    """Lower-case substrings one of which every text holding a secret key contains (a cheap pre-check)."""
    return tuple(sorted({k.words.split()[-1] for k in keys if k.in_text}))


KEY_PATTERN = key_pattern()
TEXT_KEY_PATTERN = text_key_pattern()
TEXT_TRIGGERS = text_triggers()
TEXT_WORDS_PATTERN = text_words_pattern()

_KEY_RX = re.compile(KEY_PATTERN)


def is_secret_key(name: str) -> bool:
    """Whether an attribute called ``name`` holds a secret (what the agent masks and the collector deletes)."""
    return _KEY_RX.search(name) is not None
