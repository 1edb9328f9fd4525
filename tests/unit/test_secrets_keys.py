"""One list of secret keys (tradeobs_agent/secrets_keys.py) generates every redaction regex.

The committed collector configs must be exactly what scripts/gen_redaction.py
writes from the list, and the agent's log redaction must treat exactly the same
attribute names and ``key=value`` keys as secret as the collector's regexes do.
(tests/integration/test_redaction_keys.py checks the same with the real collector.)
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.unit.logs.test_redact_and_input import _FORMATS, _KEPT, _SCHEME_CREDENTIALS, _SCHEME_WORDS
from tradeobs_agent import redaction, secrets_keys
from tradeobs_agent.logs import Redactor
from tradeobs_agent.logs.redact import MASK

REPO = Path(__file__).resolve().parents[2]


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_redaction", REPO / "scripts" / "gen_redaction.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_redaction"] = mod
    spec.loader.exec_module(mod)
    return mod


gen = _gen()


def key_corpus() -> list[str]:
    """Attribute names: every listed key in several spellings and contexts, plus near misses."""
    names: set[str] = set()
    for k in secrets_keys.SECRET_KEYS:
        words = k.words.split()
        spellings = {
            "_".join(words),
            "-".join(words),
            ".".join(words),
            "".join(words),
            words[0] + "".join(w.title() for w in words[1:]),
            "-".join(words).upper(),
        }
        for s in spellings:
            names |= {s, f"x-{s}", f"client_{s}", f"http.request.header.{s}", f"{s}_id", f"{s}s", f"my{s}"}
            names |= {f"broker.{s}", f"broker.{s}.venue"}  # a nested entry, flattened by the collector
    names |= {
        "order.id",
        "symbol",
        "gen_ai.usage.input_tokens",
        "max_tokens",
        "tokenizer",
        "account_type",
        "account_id",
        "accounting",
        "APCA_API_BASE_URL",
        "pwd_changed_at",
        "keyboard",
        "secretary",  # contains "secret": deleted, a deliberate over-match
        "APCA-API-KEY-ID",
        "APCA-API-SECRET-KEY",
        "authToken",
        "refreshToken",
        "Cookie",
        "cloud.account.id",
        "broker.account_type",
        # captured headers: a key, signature, auth or session part is secret under ".header." only
        "http.request.header.ocp_apim_subscription_key",
        "http.request.header.x_auth_key",
        "http.request.header.cb_access_sign",
        "http.request.header.x_session_id",
        "http.request.header.authority",
        "http.request.header.keep_alive",
        "http.request.header.x_request_id",
        "http.response.header.content_type",
        "order.key",
    }
    return sorted(names)


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')  # a double-quoted OTTL string literal, escapes and all


def _redact_statements(path: Path) -> list[str]:
    """Every OTTL statement of the ``transform/redact`` processor in the collector config ``path``."""
    procs = yaml.safe_load(path.read_text())["processors"]["transform/redact"]
    return [
        stmt
        for group in ("trace_statements", "metric_statements", "log_statements")
        for ctx in procs.get(group, [])
        for stmt in ctx["statements"]
    ]


def _collector_regexes(path: Path) -> tuple[list[str], list[str]]:
    """(attribute-name regexes, log-body regexes) as the collector reads them from ``path``."""
    procs = yaml.safe_load(path.read_text())["processors"]
    keys = [a["pattern"] for a in procs["attributes/redact"]["actions"] if "pattern" in a]
    bodies = []
    for stmt in _redact_statements(path):
        literals = [bytes(s, "utf-8").decode("unicode_escape") for s in _QUOTED.findall(stmt)]
        if stmt.startswith("delete_matching_keys(") and "Keys(" not in stmt:  # not a flattened auth message's
            keys.append(literals[0])
        elif stmt.startswith("replace_pattern(log.body"):
            bodies.append(literals[0])
    # `$$` is a literal `$` once the collector has read the file
    return [k.replace("$$", "$") for k in keys], [b.replace("$$", "$") for b in bodies]


def _collector_body_replacement(path: Path) -> str:
    """The log-body replace_pattern's replacement in ``path``, for Python's re.sub (`${1}` -> `\\g<1>`)."""
    stmts = [stmt for stmt in _redact_statements(path) if stmt.startswith("replace_pattern(log.body")]
    assert len(stmts) == len(gen.value_rules()[0]), stmts  # the first is the key=value rule
    literal = _QUOTED.findall(stmts[0])[1]
    return re.sub(r"\$\{(\d+)\}", r"\\g<\1>", literal.replace("$$", "$"))


def test_committed_collector_configs_are_what_the_list_generates() -> None:
    files = gen.generated_files()
    assert REPO / "collector" / "otel-collector.yaml" in files
    for path in files:
        text = path.read_text()
        assert gen.rewrite(text, str(path)) == text, (
            f"{path} differs from agent/tradeobs_agent/secrets_keys.py: run `python scripts/gen_redaction.py`"
        )
    assert gen.main(["--check"]) == 0


def test_the_check_fails_on_a_hand_edited_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = (REPO / "collector" / "otel-collector.yaml").read_text()
    edited = src.replace("passphrase|", "passphrase|pin|", 1)
    assert edited != src
    bad = tmp_path / "otel-collector.yaml"
    bad.write_text(edited)
    assert gen.main(["--check", str(bad)]) == 1
    assert "passphrase|pin|" in capsys.readouterr().out
    assert gen.main([str(bad)]) == 0  # rewriting repairs it
    assert bad.read_text() == src


def test_rewrite_refuses_a_file_without_the_markers() -> None:
    with pytest.raises(ValueError, match="BEGIN GENERATED redaction"):
        gen.rewrite("processors: {}\n", "x.yaml")


def test_every_collector_regex_comes_from_the_list() -> None:
    keys, bodies = _collector_regexes(REPO / "collector" / "otel-collector.yaml")
    # attributes/redact (after transform/redact, which flattens span, log record and data point attributes) + nine
    # delete_matching_keys: resource and scope (3 signals each), span event, exemplar, a map body (after flattening)
    assert len(keys) == 10
    assert set(keys) == {secrets_keys.KEY_PATTERN}
    assert bodies[0] == gen.body_pattern()


def test_agent_and_collector_agree_on_secret_attribute_names() -> None:
    keys, _ = _collector_regexes(REPO / "collector" / "otel-collector.yaml")
    redactor = Redactor()
    corpus = key_corpus()
    disagree = [n for n in corpus if redactor.is_secret_key(n) != (re.search(keys[0], n) is not None)]
    assert disagree == []
    # the corpus has both kinds
    assert 100 < sum(map(secrets_keys.is_secret_key, corpus)) < len(corpus) - 10


def test_the_list_means_what_the_docs_say() -> None:
    secret = [
        "api_key",
        "apiKey",
        "X-Api-Key",
        "client_secret",
        "password",
        "db.passwd",
        "pwd",
        "Authorization",
        "http.request.header.authorization",
        "cookie",
        "auth_token",
        "x-auth-token",
        "accessToken",
        "token",
        "APCA-API-KEY-ID",
        "APCA-API-SECRET-KEY",
        "account",
        "account_number",
        "acct",
        "broker.account",  # {"broker": {"account": ...}} flattened by the collector
        "broker.acct_no",
        "http.request.header.ocp_apim_subscription_key",  # a captured header's name (HEADER_KEY_PATTERN)
        "http.request.header.x_auth_key",
        "http.request.header.cb_access_sign",
        "http.request.header.x_session_id",
    ]
    kept = [
        "http.request.header.authority",
        "http.request.header.keep_alive",
        "http.request.header.x_request_id",
        "order.key",
        "cloud.account.id",
        "broker.account_type",
        "order.id",
        "gen_ai.usage.input_tokens",
        "max_tokens",
        "account_type",
        "account_id",
        "APCA_API_BASE_URL",
    ]
    assert [k for k in secret if not secrets_keys.is_secret_key(k)] == []
    assert [k for k in kept if secrets_keys.is_secret_key(k)] == []


def text_corpus() -> list[str]:
    keys = []
    for k in secrets_keys.SECRET_KEYS:
        words = k.words.split()
        keys += ["_".join(words), "-".join(words).upper(), "".join(words)]
    return sorted({*keys, "input_tokens", "max_tokens", "order_id", "symbol", "secret_key", "APCA-API-SECRET-KEY"})


@pytest.mark.parametrize("form", ["{k}=s3cr3tvalue", "{k}: s3cr3tvalue", '{{"{k}": "s3cr3tvalue"}}'])
def test_agent_and_collector_mask_the_same_keys_in_text(form: str) -> None:
    """Log bodies: the collector's replace_pattern (as RE2 reads it; these patterns mean the same in
    Python) and the agent's Redactor mask ``key=value`` for the same keys."""
    _, bodies = _collector_regexes(REPO / "collector" / "otel-collector.yaml")
    replacement = _collector_body_replacement(REPO / "collector" / "otel-collector.yaml")
    redactor = Redactor()
    masked = []
    for key in text_corpus():
        text = "order rejected " + form.format(k=key) + " qty=5"
        # the key=value rule, then the others (an account-number name's value is masked by an account rule)
        collector = collector_text(re.sub(bodies[0], replacement, text))
        agent = redactor.text(text)
        assert collector == agent, "the collector masks a log body otherwise than the agent"
        assert "qty=5" in collector and "qty=5" in agent
        if "s3cr3tvalue" not in agent:
            masked.append(key)
    assert {"api_key", "PASSWORD", "secret_key", "APCA-API-SECRET-KEY", "token"} <= set(masked)
    assert not {"input_tokens", "max_tokens", "order_id", "account"} & set(masked)
    assert {"account_number", "ACCT-NO"} <= set(masked)  # as the attributes of those names are


def test_text_keys_cover_the_alpaca_headers_and_skip_token_counts() -> None:
    r = Redactor()
    assert r.text("APCA-API-KEY-ID: PKABC123") == f"APCA-API-KEY-ID: {MASK}"
    assert r.text("secret_key=abc") == f"secret_key={MASK}"
    assert r.text("cookie: sid=abc") == f"cookie: {MASK}"
    assert r.text("input_tokens=12 max_tokens=100") == "input_tokens=12 max_tokens=100"


def test_patterns_use_only_syntax_re2_reads_the_same() -> None:
    rules, _ = gen.value_rules()
    for p in (secrets_keys.KEY_PATTERN, secrets_keys.TEXT_KEY_PATTERN, *(rx for rx, _ in rules)):
        assert "(?<" not in p and "(?=" not in p and "(?!" not in p, p  # no look-around
        assert not re.search(r"\\[1-9]", p), p  # no backreferences
        assert "\\Z" not in p, p  # RE2 spells the end of the text \z


# ---------------------------------------------------------------- secret values (the agent's value rules)


_GOOGLE_KEY = "AIzaSyA-" + "x1" * 15 + "abc"
_STRIPE_KEY = "sk_live_51HxYzAbCdEfGhIjKlMnOp"


# The agent's rules whose RE2 form is written by hand (redaction.RE2_FORMS): URL-encoded pairs and URLs, curl -u.
# (text, the secret, what the agent and the collector write). Before, the collector had none of them: each secret
# reached the exporters of a service without the agent.
_HAND_TRANSLATED = [
    ("ran curl -u alice:hunter2x https://api.example/v2", "hunter2x", "ran curl -u alice:[REDACTED] https://api.example/v2"),
    ("ran ['curl', '--user', 'bob:pa55word', 'https://x']", "pa55word", "ran ['curl', '--user', 'bob:[REDACTED]', 'https://x']"),
    ("curl --proxy-user=cy:s3cr3tpx -ucl:zzpw1 x", "s3cr3tpx", "curl --proxy-user=cy:[REDACTED] -ucl:[REDACTED] x"),
    ("curl -ucarl:zzpw123 x", "zzpw123", "curl -ucarl:[REDACTED] x"),
    ("curl '-u', 'bob:pw with space'", "pw with space", "curl '-u', 'bob:[REDACTED]'"),
    ("GET /x?r=api_key%3Dsk-abcdef123456 ok", "sk-abcdef123456", "GET /x?r=api_key%3D[REDACTED] ok"),
    ("cb?state=a%3D1%26password%3Dhunter2x%26b%3D2", "hunter2x", "cb?state=a%3D1%26password%3D[REDACTED]%26b%3D2"),
    ("x%3Dpassword%3Dhunter3%26token%3Dabc987", "abc987", "x%3Dpassword%3D[REDACTED]%26token%3D[REDACTED]"),
    ("twice api_key%253Dabc123def%2526x%253D1", "abc123def", "twice api_key%253D[REDACTED]%2526x%253D1"),
    ("q=%7B%22token%22%3A%20%22tok999xyz%22%7D", "tok999xyz", "q=%7B%22token%22%3A%20%22[REDACTED]%22%7D"),
    ("q=password%3DBasic%20hunter2y&x=1", "hunter2y", "q=password%3DBasic%20[REDACTED]&x=1"),
    ("password%3D%2Fab%2Bcd%26x", "%2Fab%2Bcd", "password%3D[REDACTED]%26x"),
    ("next=https%3A%2F%2Fbot%3Apw5ecret%40db.example", "pw5ecret", "next=https%3A%2F%2Fbot%3A[REDACTED]%40db.example"),
    ("next=https%3A%2F%2F%3Aredispw9%40cache", "redispw9", "next=https%3A%2F%2F%3A[REDACTED]%40cache"),
    ("n=https%253A%252F%252Fbob%253Apw77x%2540h", "pw77x", "n=https%253A%252F%252Fbob%253A[REDACTED]%2540h"),
]  # fmt: skip
_HAND_TRANSLATED_KEPT = [
    "docker run -u 1000:1000 img; sudo -u postgres psql",
    "input%5Ftokens=12 max%5Ftokens%3D40 symbol%3DAAPL%26qty%3D100 next=https%3A%2F%2Fbroker.example%2Fv2",
    "Authorization%3A%20Bearer%20[REDACTED] password%3D[REDACTED]%26x curl -u alice:[REDACTED]",  # masked already
]


def test_the_hand_written_re2_forms_mask_what_the_agent_masks() -> None:
    agent = Redactor(known_values=False)
    for text, secret, expected in _HAND_TRANSLATED:
        assert secret in text and secret not in expected
        assert agent.text(text) == expected, text
        assert collector_text(text) == expected, text
        assert agent.text(expected) == collector_text(expected) == expected, text
    for text in _HAND_TRANSLATED_KEPT:
        assert agent.text(text) == text
        assert collector_text(text) == text


# Secrets known by their shape alone, with no key word near them, and websocket auth messages (a dict's repr, JSON).
# A Kraken API secret (base64 of 64 bytes) and a Binance API secret (64 letters and digits), made up
_KRAKEN_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
_BINANCE_SECRET = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
_SHAPES = [
    ("API key PKABCDEF1234567890XY rejected", "PKABCDEF1234567890XY"),
    ("alpaca live AK7Y3N2Q9W4E8R1T6U5Z in use", "AK7Y3N2Q9W4E8R1T6U5Z"),
    ("{'action': 'auth', 'key': 'PKTEST1234567890ABCD', 'secret': 'x'}", "PKTEST1234567890ABCD"),
    ('{"action": "auth", "key": "my-paper-key-0001", "secret": "s3cr3t"}', "my-paper-key-0001"),
    ('{"key": "my-paper-key-0002", "secret": "s3cr3t", "action": "auth"}', "my-paper-key-0002"),
    ('ws send {"action":"auth","params":"polyKEY12345abc"}', "polyKEY12345abc"),
    ("{'type': 'subscribe', 'key': 'cbkey-777', 'passphrase': 'pp', 'signature': 'sig'}", "cbkey-777"),
    # broker secrets with no prefix of their own, masked by the name or URL they come with: request-signing headers
    # (Kraken, Coinbase, OKX, Bybit, Gemini), an OAuth 1.0a signature (IB's Web API), b64secret= in a client's repr,
    # IB's Flex Web Service token, a Binance listen key as a field and in its stream URL
    (f"{{'API-Key': 'kr-key-1', 'API-Sign': '{_KRAKEN_SECRET}'}}", _KRAKEN_SECRET),
    (f"CB-ACCESS-SIGN: {_KRAKEN_SECRET[:44]} CB-ACCESS-TIMESTAMP: 1700000000", _KRAKEN_SECRET[:44]),
    (f"X-BAPI-SIGN={_BINANCE_SECRET.lower()}&X-BAPI-SIGN-TYPE=2", _BINANCE_SECRET.lower()),
    (f"X-GEMINI-SIGNATURE: {_BINANCE_SECRET.lower()}", _BINANCE_SECRET.lower()),
    ('Authorization: OAuth oauth_consumer_key="TESTCONS", oauth_signature="c2lnbmF0dXJlMTIz%3D"', "c2lnbmF0dXJlMTIz"),
    (f"AuthenticatedClient(key='cb-key-1', b64secret='{_KRAKEN_SECRET}', passphrase='pp')", _KRAKEN_SECRET),
    (
        "GET https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService/SendRequest?t=123456789012345678901234"
        "&q=987654&v=3",
        "123456789012345678901234",
    ),
    ("GetStatement failed: /FlexStatementService.SendRequest?q=1&t=998877665544332211 timeout", "998877665544332211"),
    (f'{{"listenKey": "{_BINANCE_SECRET[:60]}"}}', _BINANCE_SECRET[:60]),
    (f"connect wss://stream.binance.com:9443/ws/{_BINANCE_SECRET[:60]} closed", _BINANCE_SECRET[:60]),
]
# ... and what looks a little like them: a trace id, a UUID, hashes, order ids, a "key" that is no auth message's.
_SHAPES_KEPT = [
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "order 61e69015-8549-4bfd-b9c3-01e75de48cd5 filled client_order_id=cid-42",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 sha256 "
    "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "PKG-1234 PKABCDEF1234 AKAMAI-EDGE pk_test AK47 upper PKABCDEF1234567890XYZ",
    '{"key": "AAPL", "value": 187.5}',
    "{'action': 'subscribe', 'key': 'bars', 'symbols': ['AAPL']}",
    "{'action': 'auth'} {'key': 'MSFT'}",
    # the signing and URL rules' look-alikes: a signature's type, a word, a public stream, other Flex parameters
    "X-BAPI-SIGN-TYPE: 2 signature=valid sign: buy design=v2 signed=true",
    # a trade's own sign fields, named as a signing header is (all masked before 2026-12-07)
    "fill side_sign: -1 pos-sign: long order_sign=1 exec_sign=B trade_sign=-1 qty_sign: - venue_sign: NYSE",
    "{'order_id': 'ORD-20240102-000123', 'side_sign': 'sell', 'X-Order-Sign': 'v2'}",
    "wss://stream.binance.com:9443/ws/btcusdt@trade /stream?streams=btcusdt@depth/ethusdt@trade",
    "FlexWebService/SendRequest?q=987654&v=3 t=123 ?t=5",
]

# Secrets bare after their key word in a sentence, with no ":" or "=" (kept before 2026-12-07), and what reads like
# them: the key word before words, a date, a count, a key file's path, a crypto token's address, "key" alone.
_PROSE = [
    (
        "using secret 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a now",
        "3f9a8b7c6d5e4f3a2b1c0d9e8f7",
    ),
    ("Authorization failed for token abcdef0123456789abcdef0123456789", "abcdef0123456789abcdef0123456789"),
    (f"Binance api key {_BINANCE_SECRET} invalid", _BINANCE_SECRET),
    ("secret key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rejected", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("api secret is 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5'", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"),
    ("session token 61e69015-8549-4bfd-b9c3-01e75de48cd5 expired", "61e69015-8549-4bfd-b9c3-01e75de48cd5"),
    ("login with password hunter2xyz, retrying", "hunter2xyz"),
    ("using passphrase Tr0ub4dor&3horse for the key", "Tr0ub4dor&3horse"),
]
_PROSE_KEPT = [
    "token expired_for_all_sessions_today, api key rejected, password reset for trader01",
    "token refreshed at 2026-12-07T02:20:24Z, access token expires in 3600s, secret rotation scheduled",
    "password policy v2, password length 12, password updated_2026-12-07",
    "loading private key /etc/keys/alpaca-prod2.pem",
    "swap token_address 0x6B175474E89094C44Da98b954EedeAC495271d0F input_tokens 12345678901234567890",
    "cache key 61e69015-8549-4bfd-b9c3-01e75de48cd5 idempotency key ORD20240102000123abc",
    "order 61e69015-8549-4bfd-b9c3-01e75de48cd5 client_order_id cid-42x venue_order_id 8f3c2a1b4d5e6f7a",
]


# Secrets with no key word before them in a URL, as a client library's exception or a server's access log echoes it
# (kept before 2026-12-07): a query parameter whose one-word name ends in "token" or a credential's "key", auth=; a
# Telegram bot token and a Slack webhook's secret in the path; the path segment after webhook(s)/hook(s) (a
# TradingView alert's receiver, Discord's webhook after its numeric id); a DSN's password with "@" or "/" in it.
_TELEGRAM = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
_URL_SECRETS = [
    (
        "Client error '401 Unauthorized' for url 'https://api.example/v1/quote?symbol=AAPL&apitoken=JIjKRonXRKhd4Ozr'",
        "JIjKRonXRKhd4Ozr",
    ),
    ("GET /v1/bars?auth=tSp3yKWg0Kv2uYuV&symbol=MSFT 401", "tSp3yKWg0Kv2uYuV"),
    ("GET https://api.example/x?accesskey=ak-99-zz-qq&q=1", "ak-99-zz-qq"),
    (
        "HTTPSConnectionPool(host='api.telegram.org', port=443): Max retries exceeded with url: "
        f"/bot{_TELEGRAM}/sendMessage (Caused by ConnectTimeoutError)",
        _TELEGRAM.split(":")[1],
    ),
    ("POST https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/8plReLUNQK5vyNk9WlGyNctw 404", "8plReLUNQK5vyNk9Wl"),
    (
        "discord: https://discord.com/api/webhooks/123456789012345678/bWO-M0KSbz5wv2heJdipjoqe4jWe6o84T8b7TrCDbvfRuE",
        "bWO-M0KSbz5wv2heJdipjoqe4jWe6o84T8b7TrCDbvfRuE",
    ),
    ('127.0.0.1:39358 - "POST /webhook/rHtycPcledWG5pTw7hZYzkOGukvws508 HTTP/1.1" 200', "rHtycPcledWG5pTw7hZ"),
    ("alert to https://alerts.example.com/v1/hooks/61e69015-8549-4bfd-b9c3-01e75de48cd5 failed", "61e69015-8549"),
    ("could not connect to postgresql://trader:aB3/xY+z9Q==@db:5432/orders", "xY+z9Q=="),
    ("connecting postgres://trader:p@ssW0rd99@db:5432/orders", "ssW0rd99"),
    # both "@" and "/": up to the last "@" before the host (RFC 3986), where the first "@" left "ss/w0rd" or "dZ7"
    ("connecting postgres://trader:p@ss/w0rd@db:5432/orders", "ss/w0rd"),
    ("s3 dsn s3://AKIDEXAMPLE:ab/c9@dZ7@bucket.example/key failed", "dZ7"),
    # a password whose piece before a "/" is digits read as a port, and was kept whole (2026-12-07)
    ("could not connect to postgres://u:12/ab@db", "12/ab"),
    ("pool error mysql+pymysql://bot:2024/08/x7@db.internal:3306/trades", "2024/08/x7"),
    ("redis://:90210/Zq@cache:6379/0 timed out", "90210/Zq"),
]
_URL_SECRETS_KEPT = [
    "?symbol=AAPL&side=buy&key_figure=1&monkey=2&keyword=x&sigma=0.2&authority=x&tokens=5",
    "POST /webhooks/orders 200 /hooks/alpaca/trade_updates /webhook/ORD-20240102-000123",
    "POST /webhooks/fills/61e69015-8549-4bfd-b9c3-01e75de48cd5 200 GET /bot/status /services/trading/orders",
    "wss://stream.binance.com:9443/ws/btcusdt@trade https://host:8443/path/user@example.com http://[::1]:8080/x@y",
    "nats://n1:4222,tls://<redacted>@n2:4222 nats://n1:4222,nats://n2:4222/x@y",  # a list of URLs: no password
    # a DSN's real port, with no "@" after it; a web URL's port with "@"s in its path (the digits rule is for DSNs)
    "postgres://db:5432/orders redis://cache:6379/0 mysql://db.internal:3306/t https://desk:8443/u/12/ab@x",
    # masked already; a host with a dot, a port or [, and the "@"s in its path after it, are not the password's
    "https://u:[REDACTED]@api.example.com/v1/users/ann@example.com/orders https://u:[REDACTED]@db:5432/x@y",
    "wss://u:[REDACTED]@stream.example.com/stream?streams=btcusdt@depth/ethusdt@trade http://u:[REDACTED]@[::1]/x@y",
]


def value_corpus() -> tuple[list[tuple[str, str]], list[str]]:
    """([(text holding a secret, the secret)], [look-alikes the agent keeps]): one of each value format the
    collector masks too, with the agent's own format and look-alike cases (tests/unit/logs/test_redact_and_input.py)."""
    masked = [
        (f"GET https://api.example/x?key={_GOOGLE_KEY}", _GOOGLE_KEY),
        (f"charge failed: {_STRIPE_KEY} declined", _STRIPE_KEY),
        (f"{_STRIPE_KEY} {_STRIPE_KEY[:-1]}Z", _STRIPE_KEY[8:-1]),  # two in a row, one space apart
        ("login password=hunter2hunter2 qty=5", "hunter2hunter2"),
        ('{"api_key": "k-123456789", "symbol": "AAPL"}', "k-123456789"),
        ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        ("sent basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("proxy Basic YWJjOmRlZmdo ok", "YWJjOmRlZmdo"),
        ("acct# 99887766 rejected", "99887766"),
        ("postgres://bot:pw123secret@db:5432/x", "pw123secret"),
        ("jwt eyJhbGciOi.eyJzdWIiOi.abcdefgh", "eyJzdWIiOi"),
        ("aws AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- ok", "MIIEpAIBAAKCAQEA"),
        ("cut -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG", "MIIEvQIBADANBgkqhkiG"),
    ]
    masked += [(text, secret) for text, secret, _ in _HAND_TRANSLATED]
    masked += _SHAPES
    masked += _PROSE
    masked += _URL_SECRETS
    for text, expected in (*_FORMATS, *_SCHEME_CREDENTIALS):
        # the secret: what the agent's expected output lost
        gone = [w for w in re.split(r"[\s&?]", text) if w and w not in expected]
        masked.append((text, gone[0]))
    kept = [
        *_KEPT,
        "order_id=ORD-20240102-000123 symbol=AAPL side=buy qty=100 px=187.5 key=MSFT",
        "input_tokens=12 max_tokens=100 tokenizer=bpe keyboard=us",
        "order 1234567890 filled qty=100 account_type=margin",
        "https://broker.example/v2/orders?symbol=AAPL&limit=10 sk_live sk-momentum",
        *_SCHEME_WORDS,
        "Authorization: Bearer [REDACTED] and Authorization: basic [REDACTED]",  # masked already
        *_HAND_TRANSLATED_KEPT,
        *_SHAPES_KEPT,
        *_PROSE_KEPT,
        *_URL_SECRETS_KEPT,
    ]
    return masked, kept


def _python(rx: str, repl: str) -> tuple[re.Pattern[str], str]:
    """An RE2 rule as Python reads it (\\z is \\Z, ${1} is \\g<1>): these rules mean the same in both."""
    return re.compile(rx.replace("\\z", "\\Z")), re.sub(r"\$\{(\d+)\}", r"\\g<\1>", repl)


def collector_text(text: str) -> str:
    for rx, repl in gen.value_rules()[0]:
        p, r = _python(rx, repl)
        text = p.sub(r, text)
    return text


def test_the_collector_value_rules_mask_what_the_agent_masks_and_keep_what_it_keeps() -> None:
    masked, kept = value_corpus()
    agent = Redactor(known_values=False)
    for text, secret in masked:
        assert secret in text
        assert secret not in agent.text(text), text
        assert collector_text(text) == agent.text(text), text
        # a record the agent masked already passes the collector as it is
        assert collector_text(agent.text(text)) == agent.text(text), text
    for text in kept:
        assert agent.text(text) == text
        assert collector_text(text) == text
    # and the agent's value rules on everything its own tests say about them
    for text, expected in _FORMATS:
        assert collector_text(text) == expected


def test_masked_text_is_masked_text_in_the_agent_and_in_the_collector() -> None:
    """Scrubbing twice (a line logged again; the agent's output through the collector) changes nothing."""
    masked, _ = value_corpus()
    agent = Redactor(known_values=False)
    for text, _secret in masked:
        once = agent.text(text)
        assert agent.text(once) == once, text
        assert collector_text(once) == once, text
        assert collector_text(collector_text(text)) == collector_text(text), text


_QUERY_ATTRS = [
    (f"key={_GOOGLE_KEY}&q=AAPL", "key=[REDACTED]&q=AAPL"),
    ("sig=AbC%2Fd%3D&se=2030", "sig=[REDACTED]&se=2030"),
    ("signature=9f86d081884c7d65&timestamp=1", "signature=[REDACTED]&timestamp=1"),
    ("X-Amz-Signature=fe5f80f77d5fa3be", "X-Amz-Signature=[REDACTED]"),
    ("symbol=AAPL&key=k-abc123&sig=zz9", "symbol=AAPL&key=[REDACTED]&sig=[REDACTED]"),
    ("key=[REDACTED]&sig=[REDACTED]", "key=[REDACTED]&sig=[REDACTED]"),
    ("symbol=AAPL&limit=10", "symbol=AAPL&limit=10"),
    ("https://h/p?key=abc123&x=1", "https://h/p?key=[REDACTED]&x=1"),
    ("apitoken=JIjKRonXRKhd4Ozr&symbol=AAPL", "apitoken=[REDACTED]&symbol=AAPL"),
    ("auth=tSp3yKWg&symbol=AAPL", "auth=[REDACTED]&symbol=AAPL"),
    ("monkey=2&keyword=x&authority=y", "monkey=2&keyword=x&authority=y"),
]


def _url_statements(path: Path) -> dict[str, list[str]]:
    """{"<context path>[<key>]": [the replace_pattern statements on that attribute]} of a collector config."""
    found: dict[str, list[str]] = {}
    for stmt in _redact_statements(path):
        m = re.match(r'replace_pattern\(([a-z.]+)\["([a-z.]+)"\], ', stmt)
        if m:
            found.setdefault(f"{m.group(1)}[{m.group(2)}]", []).append(stmt[m.end() :])
    return found


def test_the_collector_masks_a_url_query_attribute_from_its_first_parameter_as_the_agent_does() -> None:
    rx, repl = gen.url_rule()
    for config in gen.generated_files():
        found = _url_statements(config)
        assert sorted(found) == sorted(
            f"{ctx}[{key}]"
            for ctx in ("span.attributes", "spanevent.attributes", "log.attributes", "datapoint.attributes")
            for key in redaction.URL_ATTRIBUTES
        ), config
        for stmts in found.values():
            literals = [s.replace("$$", "$") for s in _QUOTED.findall(stmts[0])]
            assert [json.loads(f'"{s}"') for s in literals] == [rx, repl]
    agent = Redactor(known_values=False)
    start, r = _python(rx, repl)
    for key in sorted(redaction.URL_ATTRIBUTES):
        for text, expected in _QUERY_ATTRS:
            assert agent.value(key, text) == expected, (key, text)
            assert start.sub(r, collector_text(text)) == expected, (key, text)
    # anywhere else "key=AAPL" is a word
    assert agent.value("message", "key=AAPL") == collector_text("key=AAPL") == "key=AAPL"


def test_every_agent_value_rule_is_in_the_collector_or_listed_as_left_out() -> None:
    rules, left_out = gen.value_rules()
    # the rules RE2 cannot read as written have their RE2 form written by hand (redaction.RE2_FORMS: curl -u as two
    # rules); none is left out (the (name, value) pair rule and the percent-encoded keys are functions, not
    # DEFAULT_VALUE_PATTERNS: the generated comment says the collector has not them)
    hand = [p for p, _, _ in redaction.DEFAULT_VALUE_PATTERNS if p in redaction.RE2_FORMS]
    assert len(hand) == 3
    extra = sum(len(redaction.RE2_FORMS[p]) - 1 for p in hand)
    assert left_out == []
    assert len(rules) == len(redaction.DEFAULT_VALUE_PATTERNS) + extra
    config = REPO / "collector" / "otel-collector.yaml"
    text = config.read_text()
    assert "header list's repr" in text and "percent-encoded" in text
    found: dict[str, list[str]] = {}
    for stmt in _redact_statements(config):
        m = re.match(r"(replace_pattern|replace_all_patterns)\(([a-z._]+),", stmt)
        if m:
            found.setdefault(m.group(2), []).append(stmt)
    assert sorted(found) == [
        "datapoint.attributes",
        "exemplar.filtered_attributes",
        "log.attributes",
        "log.body",
        "log.event_name",
        "resource.attributes",
        "scope.attributes",
        "span.attributes",
        "span.name",
        "span.status.message",
        "spanevent.attributes",
        "spanevent.name",
    ]
    # a map body's values: as attributes are (after the string body's statements)
    body_map = [st for st in found["log.body"] if st.endswith(" where IsMap(log.body)")]
    assert body_map == found["log.body"][len(rules) :]
    found["log.body"] = found["log.body"][: len(rules)]
    found["log.body (a map)"] = [st.removesuffix(" where IsMap(log.body)") for st in body_map]
    for where in ("span.status.message", "log.event_name"):  # only when there is one
        assert all(st.endswith(f' where {where} != ""') for st in found[where]), where
        found[where] = [st.removesuffix(f' where {where} != ""') for st in found[where]]
    texts = {"log.body", "span.name", "span.status.message", "spanevent.name", "log.event_name"}
    for target, stmts in found.items():
        literals = [[s.replace("$$", "$") for s in _QUOTED.findall(st)] for st in stmts]
        if target not in texts:
            assert {lit[0] for lit in literals} == {"value"}
            literals = [lit[1:] for lit in literals]
        decoded = [tuple(json.loads(f'"{s}"') for s in lit) for lit in literals]
        # the resource's and scope's attribute values in each of the three signals' pipelines
        assert decoded == rules * (3 if target in ("resource.attributes", "scope.attributes") else 1), target


def test_the_translation_refuses_what_re2_cannot_read() -> None:
    for p in (r"(?<=x)a", r"(a)\1", r"(?(1)a|b)", r"a(?!b)c", r"x(?<![a-z])y"):
        with pytest.raises(gen.Untranslatable):
            gen.re2_rule(p, MASK)
    assert gen.re2_rule(r"(?i)(k=)(?!\[REDACTED\])[^&]+", r"\1" + MASK) == (
        r"(?i)(k=)(?:\[REDACTED\]|[^&]+)",
        "${1}" + MASK,
    )
    assert gen.re2_rule(r"\bab+(?![a-z_-])", MASK) == (r"\bab+($|[^a-z_-])", MASK + "${1}")
    # the "no masked value after a scheme word" lookahead is dropped after the scheme group (RE2 prefers the group),
    # refused anywhere else
    scheme = r"((?:bearer|basic)\s+)?"
    lookahead = r"(?!(?:bearer|basic)\s+\[REDACTED\])"
    assert gen.re2_rule(r"(k: )" + scheme + lookahead + r"(?!\[REDACTED\])[^ ]+", r"\1\2" + MASK) == (
        r"(k: )" + scheme + r"(?:\[REDACTED\]|[^ ]+)",
        "${1}${2}" + MASK,
    )
    with pytest.raises(gen.Untranslatable):
        gen.re2_rule(r"(k: )" + lookahead + r"[^ ]+", r"\1" + MASK)


# The transform/redact processor runs with error_mode: ignore, so a statement that failed on a record would let that
# record go on unmasked (a warning in the collector's log only). These functions never fail on a record: they skip
# what they cannot read (replace_pattern and replace_all_patterns a value that is no string; flatten and
# delete_matching_keys take any map; set copies any value), on fixed paths with literal regexes compiled at start;
# the conditions are string comparisons and the type checks that keep the map functions off a body that is no map.
# tests/integration/test_redaction_nested.py sends every value shape OTLP allows through the real collector and
# checks its log for failed statements. Before adding a function (Decode, ParseJSON, Int...) or a condition here,
# read its code for the errors it returns at run time: one that can fail needs a guard that makes it unable to.
_NEVER_FAIL = {"flatten", "delete_matching_keys", "replace_all_patterns", "replace_pattern", "set"}


# A flattened websocket auth message (ws.message.key beside ws.message.secret): Keys() of a map is the list of its
# names, which IsMatch reads as JSON text (strings only), on a map (attributes; a body only after IsMap: "and" stops at
# the first false, or every text body would fail in test_no_redaction_statement_fails_on_odd_values). IsMatch on the
# map itself was not used: it would write every value as JSON (a NaN, bytes, text that is not UTF-8), not checked.
def _conditions() -> set[str]:
    auth = {
        f"IsMatch(Keys({m}), {gen._ottl_string(redaction.FLAT_AUTH_SIBLING_PATTERN)})"
        for m in ("resource.attributes", "span.attributes", "spanevent.attributes", "log.attributes", "log.body")
    }
    return {
        "IsMap(log.body)",
        "IsList(log.body)",
        'span.status.message != ""',
        'log.event_name != ""',
        *(c for c in auth if "log.body" not in c),
        *(f"IsMap(log.body) and {c}" for c in auth if "log.body" in c),
    }


def test_collector_redaction_uses_only_statements_that_cannot_fail_on_a_record() -> None:
    for path in gen.generated_files():
        for stmt in _redact_statements(path):
            editor, _, where = stmt.partition(" where ")
            assert editor.split("(", 1)[0] in _NEVER_FAIL, f"{path.name}: {stmt[:120]}"
            code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', editor)  # the string literals (the regexes) left out
            assert not re.search(r"\b[A-Z]\w*\(", code), f"{path.name}: a converter in {stmt[:120]}"
            assert not where or where in _conditions(), f"{path.name}: {stmt[:120]}"


def test_a_flattened_auth_message_key_is_deleted_beside_a_secret_entry_in_every_record_map() -> None:
    """The collector cannot look at a flattened map's siblings' values, only at its keys (Keys()): ws.message.key is
    deleted where the same map has a secret, passphrase or signature entry (tests/integration/test_redaction_nested.py
    sends them through the real collector)."""
    for path in gen.generated_files():
        auth = [st for st in _redact_statements(path) if "Keys(" in st]
        targets = sorted(re.match(r"delete_matching_keys\(([a-z.]+),", st).group(1) for st in auth)  # type: ignore[union-attr]
        assert targets == [
            "log.attributes",
            "log.body",
            *["resource.attributes"] * 3,  # in each signal's pipeline
            "span.attributes",
            "spanevent.attributes",
        ], path.name
    field, sibling = re.compile(redaction.FLAT_AUTH_FIELD_PATTERN), re.compile(redaction.FLAT_AUTH_SIBLING_PATTERN)
    assert [
        k for k in ("ws.message.key", "key", "msg.params", "keys", "cache.key_count", "monkey") if field.search(k)
    ] == [
        "ws.message.key",
        "key",
        "msg.params",
    ]
    for keys, auth_message in [
        (["ws.message.action", "ws.message.key", "ws.message.secret"], True),
        (["type", "key", "passphrase"], True),
        (["msg.signature", "msg.key"], True),
        (["cache.key", "cache.hits"], False),
        (["order.secretary", "key"], False),
        (["secret_santa", "key"], False),
    ]:
        assert (sibling.search(json.dumps(keys, separators=(",", ":"))) is not None) == auth_message, keys
