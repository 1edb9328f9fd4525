"""Redaction on every sink and bridge; bad input always yields a record and never raises."""

from __future__ import annotations

import io
import logging
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger as loguru_logger

from tests.unit.logs._logs_helpers import Env
from tradeobs_agent.logs import Redactor, StructlogProcessor, get_logger, loguru_sink, structlog_processor
from tradeobs_agent.logs._sinks import ConsoleSink

SECRETS = ["s3cr3t-KEY-abcdef", "PKTESTKEYID12345", "hunter2hunter2", "123456789012", "tok.en-value-999"]
MESSAGE = (
    "call broker APCA-API-KEY-ID: PKTESTKEYID12345 APCA-API-SECRET-KEY=s3cr3t-KEY-abcdef "
    "Authorization: Bearer tok.en-value-999 password=hunter2hunter2 account number 123456789012"
)


def _assert_clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"secret {s!r} leaked: {text}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api_key=abc123", "api_key=[REDACTED]"),
        ('{"client_secret": "xyz"}', '{"client_secret": "[REDACTED]"}'),
        ("APCA-API-SECRET-KEY: abc", "APCA-API-SECRET-KEY: [REDACTED]"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]"),
        ("sent bearer abcdEFGH1234", "sent bearer [REDACTED]"),
        ("acct# 99887766", "acct# [REDACTED]"),
        ("account_number=1234567890123", "account_number=[REDACTED]"),
        # an account id of 8-17 digits is a broker account number: masked (docs/logging.md); Alpaca's UUID is kept
        ("account_id=12345678", "account_id=[REDACTED]"),
        ("account_id=904837e3-3b76-47ec-b432-046db621571b", "account_id=904837e3-3b76-47ec-b432-046db621571b"),
        ("postgres://bot:pw123@db:5432/x", "postgres://bot:[REDACTED]@db:5432/x"),
        ("jwt eyJhbGciOi.eyJzdWIiOi.abcdefgh", "jwt [REDACTED]"),
        ("order 1234567890 filled qty=100", "order 1234567890 filled qty=100"),  # not account-ish: kept
        ("input_tokens=12", "input_tokens=12"),  # not a token
    ],
)
def test_default_patterns(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


_DEFAULT = Redactor()
_WITH_EXTRA = Redactor([r"ORD-\d+"])
_GATES = sorted({t for first, _ in _DEFAULT._groups for t in first})


def _text_gate_by_gate(r: Redactor, s: str) -> str:
    """``Redactor.text`` as it was before its one-search fast path: every group's first gate tested in turn."""
    from tradeobs_agent.redaction import _passes

    if len(s) < 5:
        return s
    if r._mask_values is not None:
        s = r._mask_values(s)
    low = s.lower()
    for first, rules in r._groups:
        if any(t in low for t in first):
            for apply, more in rules:
                if not more or _passes(more, low):
                    s = apply(s)
    return s


@given(
    st.lists(
        st.one_of(st.sampled_from([*_GATES, "=", ": ", " ", "abcDEF123456", "ORD-42", "pass%77ord%3D"]), st.text()),
        max_size=8,
    )
)
@settings(max_examples=400, deadline=None)
def test_text_equals_testing_each_gate_in_turn(parts: list[str]) -> None:
    """One search for any first gate decides that no rule applies: the same text as testing the gates one by one,
    for texts made of every gate (in any case), secrets' shapes and anything else; with an ungated pattern too."""
    s = "".join(parts)
    for r in (_DEFAULT, _WITH_EXTRA):
        assert r.text(s) == _text_gate_by_gate(r, s)
        assert r.text(s.upper()) == _text_gate_by_gate(r, s.upper())


def test_the_one_search_finds_every_gate_of_every_rule() -> None:
    """What the fast path rests on: a text holding any rule group's first gate is found by the one search (so it
    takes the loop), wherever the gate is in it, for the default rules and with an ungated pattern."""
    for r in (_DEFAULT, _WITH_EXTRA):
        for first, _ in r._groups:
            for t in first:
                for text in (t, f"x{t}", f"{t}y", f"some text {t}=abc {t}"):
                    assert r._any_gate(text) is not None, (t, text)
    assert _DEFAULT._any_gate("order demo-12345 filled 5.0 sym01 @ 100.0100") is None  # a text that skips the rules


def test_secret_looking_attribute_names() -> None:
    r = Redactor()
    for k in ("api_key", "apiKey", "APCA-API-KEY-ID", "password", "auth_token", "account_number", "Authorization"):
        assert r.is_secret_key(k), k
    for k in ("order_id", "symbol", "gen_ai.usage.input_tokens", "account_type"):
        assert not r.is_secret_key(k), k
    assert r.attributes({"nested": {"token": "x", "ok": "y"}}) == {"nested": {"token": "[REDACTED]", "ok": "y"}}


def test_configurable_patterns(make_env) -> None:
    assert Redactor([r"ORD-\d+"]).text("id ORD-42") == "id [REDACTED]"
    assert Redactor([r"pin (?P<secret>\d+)"], defaults=False).text("pin 1234 api_key=x") == "pin [REDACTED] api_key=x"
    env = make_env(redact_patterns=[r"internal-\w+"])
    get_logger("system").info("host internal-db1 ok")
    env.flush()
    assert env.lines("system")[0]["message"] == "host [REDACTED] ok"


def test_bad_pattern_is_a_config_error() -> None:
    import tradeobs_agent

    with pytest.raises(tradeobs_agent.TradeObsConfigError, match="log_redact_patterns"):
        tradeobs_agent.init(
            otlp=False, prometheus=False, live=False, logs=tradeobs_agent.LogOptions(redact_patterns=["("])
        )


def test_scrubbed_in_file_otlp_and_console(env: Env) -> None:
    console = io.StringIO()
    env.pipeline.console = ConsoleSink(env.pipeline._selfm.sink_errors.bind(sink="console"), console)
    get_logger("execution").info(
        "msg %s", MESSAGE, extra={"api_key": "s3cr3t-KEY-abcdef", "note": "password: hunter2hunter2", "symbol": "AAPL"}
    )
    env.flush()
    [rec] = env.lines("execution")
    _assert_clean((env.dir / "execution.jsonl").read_text())
    assert rec["api_key"] == "[REDACTED]" and rec["symbol"] == "AAPL"
    [otel] = env.otlp_records()
    _assert_clean(str(otel.body) + repr(dict(otel.attributes)))
    _assert_clean(console.getvalue())
    assert "symbol=AAPL" in console.getvalue()


def test_scrubbed_in_exceptions(env: Env) -> None:
    try:
        raise RuntimeError("login failed password=hunter2hunter2")
    except RuntimeError:
        get_logger("system").exception("auth")
    env.flush()
    _assert_clean((env.dir / "system.jsonl").read_text())


def test_loguru_bridge_routes_and_scrubs(env: Env) -> None:
    from tradeobs_agent.logs import correlate

    sink_id = loguru_logger.add(loguru_sink, serialize=False)
    try:
        with correlate(order_id="o-7"):
            loguru_logger.bind(stream="execution", api_key="s3cr3t-KEY-abcdef").info("loguru {}", MESSAGE)
        loguru_logger.warning("plain loguru")
    finally:
        loguru_logger.remove(sink_id)
    env.flush()
    [rec] = env.lines("execution")
    assert rec["message"].startswith("loguru call broker") and rec["order_id"] == "o-7"
    assert rec["api_key"] == "[REDACTED]"
    _assert_clean((env.dir / "execution.jsonl").read_text())
    [svc] = env.lines("service")
    assert svc["level"] == "WARNING" and svc["message"] == "plain loguru"
    _assert_clean(repr([(r.body, dict(r.attributes)) for r in env.otlp_records()]))


def test_structlog_bridge_routes_and_scrubs(env: Env) -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog_processor],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        slog = structlog.get_logger()
        slog.warning(MESSAGE, stream="risk", password="hunter2hunter2", limit=5)
        structlog.configure(
            processors=[StructlogProcessor(drop=False), structlog.processors.KeyValueRenderer()],
            logger_factory=structlog.PrintLoggerFactory(out),
        )
        structlog.get_logger().info("kept", stream="risk")
    finally:
        structlog.reset_defaults()
    env.flush()
    first, second = env.lines("risk")
    assert first["level"] == "WARNING" and first["limit"] == 5 and first["password"] == "[REDACTED]"
    _assert_clean((env.dir / "risk.jsonl").read_text())
    assert second["message"] == "kept"
    assert "kept" in out.getvalue() and MESSAGE not in out.getvalue()  # drop=True swallowed the first


# ---------------------------------------------------------------- bad input


class BrokenStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Unserializable:
    __slots__ = ()


def _recursive() -> list[object]:
    a: list[object] = [1]
    a.append(a)
    return a


def _recursive_dict() -> dict[str, object]:
    d: dict[str, object] = {"k": 1}
    d["self"] = d
    return d


@pytest.mark.parametrize(
    ("msg", "args", "extra", "marker"),
    [
        ("a %s %s", (1,), None, "format_error"),
        ("a %d", ("x",), None, "format_error"),
        ("a %s", (BrokenStr(),), None, "format_error"),
        (BrokenStr(), (), None, None),
        (b"bytes \xff msg", (), None, None),
        ("x" * 100_000, (), None, "truncated"),
        ("%s", ("y" * 100_000,), None, "truncated"),
        ("recursive %s", (_recursive(),), {"r": _recursive(), "d": _recursive_dict()}, None),
        ("obj", (), {"o": Unserializable(), "b": b"\x00\xff", "broken": BrokenStr(), "big": 2**80}, None),
        ("nan", (), {"f": float("nan"), "s": "\ud800 lone surrogate"}, None),
        ("%(a)s and %(b)s", ({"a": 1},), None, "format_error"),
    ],
)
def test_bad_input_produces_a_record(env: Env, msg: object, args: tuple[object, ...], extra, marker) -> None:
    log = get_logger("execution")
    log.info(msg, *args, extra=extra)  # must not raise
    logging.getLogger("plain").info(msg, *args, extra=extra)  # the handler path, too
    env.flush()
    for stream in ("execution", "service"):
        [rec] = env.lines(stream)
        assert isinstance(rec["message"], str)
        if marker:
            assert marker in rec["tradeobs.error"]
    assert len(env.otlp_records()) == 2


def test_huge_message_is_truncated_with_a_marker(env: Env) -> None:
    get_logger("execution").info("x" * 100_000)
    env.flush()
    [rec] = env.lines("execution")
    assert rec["message"].endswith("...[truncated 67232 chars]")


@pytest.mark.parametrize("where", ["message", "extra", "exception"])
def test_a_secret_across_a_truncation_point_is_masked_whole(env: Env, where: str) -> None:
    """Cut first, then redacted, a secret across the cut left its first half in the file."""
    import tradeobs_agent
    from tradeobs_agent.logs._format import MAX_MESSAGE, MAX_VALUE

    secret = "vaultsecret987ABCDEF"
    tradeobs_agent.register_secret(secret)
    log = get_logger("execution")
    if where == "message":
        log.info("x" * (MAX_MESSAGE - 10) + secret)
    elif where == "extra":
        log.info("order", extra={"note": "y" * (MAX_VALUE - 10) + secret})
    else:
        try:
            raise ValueError("z" * 1990 + secret)
        except ValueError:
            log.exception("failed")
    env.flush()
    text = (env.dir / "execution.jsonl").read_text()
    assert secret[:6] not in text and "truncated" in text
    for cut in (secret[:10], secret[:5]):  # no piece of it either
        assert cut not in text, cut


def test_a_secret_named_mapping_argument_is_masked_in_the_message(env: Env) -> None:
    """logging's "%(name)s" with one mapping: the text after formatting has no 'password=' for a pattern to see."""
    creds = {"user": "ada", "password": "hunter2-x", "token": "tk-123456"}
    get_logger("execution").info("login %(user)s %(password)s %(token)s", creds)
    logging.getLogger("myapp.auth").warning("login %(user)s %(password)s %(token)s", creds)  # a stdlib record
    env.flush()
    messages = [rec["message"] for rec in env.lines("execution") + env.lines("service")]
    assert messages == ["login ada [REDACTED] [REDACTED]"] * 2, messages


def _written(env: Env) -> str:
    """Everything the records would leave as: the JSON-lines files and the OTLP bodies and attributes."""
    env.flush()
    files = "".join(p.read_text() for p in sorted(env.dir.glob("*.jsonl")))
    return files + repr([(r.body, dict(r.attributes)) for r in env.otlp_records()])


def test_a_header_list_is_masked_by_its_names(env: Env) -> None:
    """A header list logged with %s, or passed in extra, showed its secret values: ('X-Api-Key', 'abc123secret')
    has no "key=" or "key:" for a pattern to see."""
    log = get_logger("execution")
    headers = [("X-Api-Key", "abc123secret"), ("Accept", "json"), ("Authorization", "Basic dXNlcjpwYXNz")]
    log.info("headers %s", headers)
    log.info("headers %s", ((b"x-auth-token", b"zzz999tok"),))
    log.info("json %s", '[["Cookie","sess=abcdef1"],["Accept","json"]]')
    logging.getLogger("myapp.http").warning("headers %s", headers)
    log.info("sent", extra={"headers": headers, "pair": ("client_secret", 987654321), "note": str(headers)})
    logging.getLogger("myapp.http").warning("sent", extra={"headers": headers})
    text = _written(env)
    for secret in ("abc123secret", "dXNlcjpwYXNz", "zzz999tok", "sess=abcdef1", "987654321"):
        assert secret not in text, secret
    [first, *_] = env.lines("execution")
    assert first["message"] == (
        "headers [('X-Api-Key', '[REDACTED]'), ('Accept', 'json'), ('Authorization', 'Basic [REDACTED]')]"
    )
    sent = env.lines("execution")[-1]
    assert sent["headers"] == [["X-Api-Key", "[REDACTED]"], ["Accept", "json"], ["Authorization", "[REDACTED]"]]
    assert sent["pair"] == ["client_secret", "[REDACTED]"]
    # pairs whose names are not secret are kept, as are token counts
    log.info("pairs %s %s", [("symbol", "AAPL"), ("input_tokens", "12")], ["password", "email", "x"])
    env.flush()
    assert env.lines("execution")[-1]["message"] == (
        "pairs [('symbol', 'AAPL'), ('input_tokens', '12')] ['password', 'email', 'x']"
    )


def test_curl_user_credentials_are_masked(env: Env) -> None:
    """curl's -u/--user name:password had no secret word next to it: the password reached the files and OTLP."""
    log = get_logger("execution")
    log.info("ran curl -u alice:hunter2x https://api.example/v2/account")
    log.info("ran %s", ["curl", "--user", "bob:pa55word", "https://x"])
    logging.getLogger("myapp.ops").warning("cmd", extra={"cmd": "curl --proxy-user=carol:s3cr3tpx -ucarl:zzpw123 x"})
    log.info("docker run -u 1000:1000 img")  # no curl: a uid:gid
    text = _written(env)
    for secret in ("hunter2x", "pa55word", "s3cr3tpx", "zzpw123"):
        assert secret not in text, secret
    messages = [r["message"] for r in env.lines("execution")]
    assert messages == [
        "ran curl -u alice:[REDACTED] https://api.example/v2/account",
        "ran ['curl', '--user', 'bob:[REDACTED]', 'https://x']",
        "docker run -u 1000:1000 img",
    ]
    assert env.lines("service")[0]["cmd"] == "curl --proxy-user=carol:[REDACTED] -ucarl:[REDACTED] x"


def test_url_encoded_credentials_are_masked(env: Env) -> None:
    """password%3Dhunter2 (a query string inside a parameter, a form body) and an encoded URL's user:password
    had no "password=" or "://" for a pattern to see."""
    log = get_logger("execution")
    log.info("GET https://h/cb?state=a%3D1%26password%3Dhunter2x%26b%3D2 and api_key%253Dabc123def")
    log.info("body q=%7B%22token%22%3A%20%22tok999xyz%22%7D next=https%3A%2F%2Fbot%3Apw5ecret%40db.example%2F")
    logging.getLogger("myapp.http").warning("sent", extra={"url": "https://h/x?r=Authorization%3ABearer+abcd1234ef"})
    log.info("GET https://h/bars?start=2024-01-02T14%3A30%3A00Z&limit=10")  # nothing secret: kept
    text = _written(env)
    for secret in ("hunter2x", "abc123def", "tok999xyz", "pw5ecret", "abcd1234ef"):
        assert secret not in text, secret
    messages = [r["message"] for r in env.lines("execution")]
    assert messages == [
        "GET https://h/cb?state=a%3D1%26password%3D[REDACTED]%26b%3D2 and api_key%253D[REDACTED]",
        "body q=%7B%22token%22%3A%20%22[REDACTED]%22%7D next=https%3A%2F%2Fbot%3A[REDACTED]%40db.example%2F",
        "GET https://h/bars?start=2024-01-02T14%3A30%3A00Z&limit=10",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api%5Fkey=abc123", "api%5Fkey=[REDACTED]"),
        ("api%5fkey=abc123", "api%5fkey=[REDACTED]"),
        ("pass%77ord=hunter2x", "pass%77ord=[REDACTED]"),
        ("login %70assword: hunter2x ok", "login %70assword: [REDACTED] ok"),  # the first letter encoded
        ('{"api%5Fkey": "abc123"}', '{"api%5Fkey": "[REDACTED]"}'),
        ("Authoriz%61tion: Bearer abc.def", "Authoriz%61tion: Bearer [REDACTED]"),
        ("x api%5fkey%3Dabc123 y", "x api%5fkey%3D[REDACTED] y"),
        ("/cb?q=a%3D1%26client%5Fsecr%65t%3Dxyz789%26b%3D2", "/cb?q=a%3D1%26client%5Fsecr%65t%3D[REDACTED]%26b%3D2"),
        ("q=api%255Fkey%253Dabc123%2526b", "q=api%255Fkey%253D[REDACTED]%2526b"),  # encoded twice
        ("%22to%6Ben%22%3A%20%22tok999%22", "%22to%6Ben%22%3A%20%22[REDACTED]%22"),
        ("user%5Fname=ada%26api%5Fkey%3Dabc123", "user%5Fname=ada%26api%5Fkey%3D[REDACTED]"),  # in a kept value
        ("Authoriz%61tion: Bearer [REDACTED]", "Authoriz%61tion: Bearer [REDACTED]"),  # masked already: as it is
        # decoded, not a secret key: kept
        ("user%5Fname=ada", "user%5Fname=ada"),
        ("input%5Ftokens=12 max%5Ftokens%3D40", "input%5Ftokens=12 max%5Ftokens%3D40"),
        ("cpu 100%25 key%5Fcount=3", "cpu 100%25 key%5Fcount=3"),
    ],
)
def test_a_url_encoded_key_name_is_recognised(text: str, expected: str) -> None:
    """A character of the key name percent-encoded (api%5Fkey=, pass%77ord=) hid the key from every pattern: the
    value reached the output in clear."""
    assert Redactor().text(text) == expected


def test_a_url_encoded_key_name_is_masked_in_messages_and_extra(env: Env) -> None:
    log = get_logger("execution")
    log.info("GET https://h/v2?api%5Fkey=abc123secret&limit=10")
    logging.getLogger("myapp.http").warning("sent", extra={"body": "user=ada&pass%77ord=hunter2hunter2"})
    text = _written(env)
    for secret in ("abc123secret", "hunter2hunter2"):
        assert secret not in text, secret
    assert env.lines("execution")[0]["message"] == "GET https://h/v2?api%5Fkey=[REDACTED]&limit=10"
    assert env.lines("service")[0]["body"] == "user=ada&pass%77ord=[REDACTED]"


def test_a_list_of_two_field_names_is_kept_and_a_header_pair_still_masked(env: Env) -> None:
    """["password", "email"] (a form's required fields) was taken for a (name, value) pair, in a message and in
    extra: "email" was masked and the record lost it. A pair's value is masked unless it is itself a field name."""
    r = Redactor()
    for names in (["password", "email"], ("api_key", "API-SECRET"), ["Authorization", "Cookie"], ["token", "user_id"]):
        assert r.value("", names) == list(names), names
        assert r.text(repr(names)) == repr(names), names
    assert r.text('missing ["Password", "E-Mail"]') == 'missing ["Password", "E-Mail"]'
    # real pairs, and a value that is no field name: masked as before
    assert r.value("", [("X-Api-Key", "abc")]) == [["X-Api-Key", "[REDACTED]"]]
    assert r.value("", ("password", "emails")) == ["password", "[REDACTED]"]
    assert r.value("", ("client_secret", 987654321)) == ["client_secret", "[REDACTED]"]
    assert r.text("[('X-Api-Key', 'abc')]") == "[('X-Api-Key', '[REDACTED]')]"
    assert r.text('["Authorization", "Bearer token"]') == '["Authorization", "Bearer [REDACTED]"]'
    log = get_logger("execution")
    log.info("missing %s", ["password", "email"])
    log.info("form", extra={"required": ("password", "email"), "header": ("Authorization", "Bearer abc123tok")})
    logging.getLogger("myapp.http").warning("headers %s", [("X-Api-Key", "abc123secret")])
    text = _written(env)
    for secret in ("abc123tok", "abc123secret"):
        assert secret not in text, secret
    missing, form = env.lines("execution")
    assert missing["message"] == "missing ['password', 'email']"
    assert form["required"] == ["password", "email"] and form["header"] == ["Authorization", "[REDACTED]"]
    assert env.lines("service")[0]["message"] == "headers [('X-Api-Key', '[REDACTED]')]"


def test_numpy_numbers_in_extra_are_numbers_in_file_and_otlp_and_decimals_stay_exact(env: Env) -> None:
    """Values from a pandas pipeline were text in the JSON file ('qty': '3', 'px': '0.1') and, in OTLP, a
    numpy.float64 a double but a numpy.int64 text: one field, two types. A Decimal stays text, exact; a known secret
    value given as a numpy integer is still masked."""
    from tradeobs_agent import secret_values

    secret_values.register_secret("987654321012")
    try:
        get_logger("execution").info(
            "fill",
            extra={"qty": np.int64(3), "px": np.float64(0.1), "d": Decimal("0.1"), "ref": np.int64(987654321012)},
        )
        env.flush()
    finally:
        secret_values.reset()
    [rec] = env.lines("execution")
    assert (rec["qty"], rec["px"], rec["d"], rec["ref"]) == (3, 0.1, "0.1", "[REDACTED]")
    assert type(rec["qty"]) is int and type(rec["px"]) is float
    [otel] = env.otlp_records()
    attrs = dict(otel.attributes)
    assert (attrs["qty"], attrs["px"], attrs["d"], attrs["ref"]) == (3, 0.1, "0.1", "[REDACTED]")
    assert type(attrs["qty"]) is int and type(attrs["px"]) is float


def test_pandas_values_in_extra_are_json_values_in_file_and_otlp(env: Env) -> None:
    """A row of a DataFrame logged as it is: numpy's bool_ was the text "True", pandas' missing values "<NA>" and
    "NaT", an array "[0 1 2]" (numpy's text, abbreviated past 1,000 items). Now a boolean, null (no attribute in
    OTLP, which has no null), and a list (its first 100 items, then how many more); a matrix keeps numpy's text."""
    get_logger("execution").info(
        "row",
        extra={
            "flag": np.bool_(True),
            "na": pd.NA,
            "nat": pd.NaT,
            "arr": np.arange(3),
            "long": np.arange(250),
            "px": np.float32(0.5),
            "one": np.array(7),
            "m": np.eye(2),
        },
    )
    env.flush()
    [rec] = env.lines("execution")
    assert rec["flag"] is True and rec["na"] is None and rec["nat"] is None
    assert rec["arr"] == [0, 1, 2] and rec["long"] == [*range(100), "...150 more"]
    assert rec["px"] == 0.5 and rec["one"] == 7 and rec["m"] == "[[1. 0.]\n [0. 1.]]"
    [otel] = env.otlp_records()
    attrs = dict(otel.attributes)
    assert attrs["flag"] is True and "na" not in attrs and "nat" not in attrs
    assert list(attrs["arr"]) == [0, 1, 2] and attrs["one"] == 7


# A URL's key/sig/signature query parameters, and secrets known by their prefix: masked (they passed before). The
# values below are made up, in each format's shape.
_GOOGLE_KEY = "AIzaSyA-" + "x1" * 15 + "abc"  # AIza + 35
_FORMATS = [
    (f"https://maps.example/api?key={_GOOGLE_KEY}&q=AAPL", "https://maps.example/api?key=[REDACTED]&q=AAPL"),
    (
        "GET /api/v3/order?symbol=BTCUSDT&side=BUY&timestamp=1700000000&signature=9f86d081884c7d659a2feaa0c55ad015",
        "GET /api/v3/order?symbol=BTCUSDT&side=BUY&timestamp=1700000000&signature=[REDACTED]",
    ),
    (
        "https://a.blob.example/c?sv=2022-11-02&sig=AbC%2Fd%3D&se=x",
        "https://a.blob.example/c?sv=2022-11-02&sig=[REDACTED]&se=x",
    ),
    ("s3 ?X-Amz-Date=1&X-Amz-Signature=fe5f80f77d5fa3be", "s3 ?X-Amz-Date=1&X-Amz-Signature=[REDACTED]"),
    ("charging with sk_live_51HxYzAbCdEfGhIjKlMnOp", "charging with [REDACTED]"),
    # a URL's password with no user name (Redis's redis://:password@host), was kept
    ("cache at redis://:ufjLJBw4weYLXYAuw2gxn@cache:6379/0", "cache at redis://:[REDACTED]@cache:6379/0"),
    # a quoted value with spaces (a passphrase), whole: only its first word was masked
    ('settings passphrase="correct horse battery staple" ok', 'settings passphrase="[REDACTED]" ok'),
    ("{'password': 'hunter 2 x', 'user': 'bob smith'}", "{'password': '[REDACTED]', 'user': 'bob smith'}"),
    # ... also after a mask at the very start of the text (a line masked before, logged again)
    ("[REDACTED] sent, passphrase='battery horse staple'", "[REDACTED] sent, passphrase='[REDACTED]'"),
    ("restricted rk_test_4eC39HqLyjWDarjtT1zdp7dc", "restricted [REDACTED]"),
    ("ci token ghp_" + "a1" * 18 + " used", "ci token [REDACTED] used"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "[REDACTED]"),
    ("slack xoxb-1234567890-abcdefghij ok", "slack [REDACTED] ok"),
    ("llm sk-proj-abcdefghijklmnopqrstuvwx and sk-ant-api03-abcdefghijklmnopqrstu", "llm [REDACTED] and [REDACTED]"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY----- loaded", "[REDACTED] loaded"),
    # an account number with letters after an account-number name (the attribute of that name is masked too)
    ("order rejected account_number=PA3QZ1XK8W2M qty=5", "order rejected account_number=[REDACTED] qty=5"),
    ('{"acct_no": "U1234567"}', '{"acct_no": "[REDACTED]"}'),
    # the credential after an Authorization scheme other than Bearer/Basic (Tiingo's and Django REST framework's
    # "Token", "ApiKey", Azure's "SharedKey account:signature"): only the scheme word was masked, the key was kept
    (
        "GET /tiingo/daily/aapl/prices Authorization: Token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "GET /tiingo/daily/aapl/prices Authorization: [REDACTED] [REDACTED]",
    ),
    ("authorization_header=ApiKey k3y9ZqPLmn77 sent", "authorization_header=[REDACTED] [REDACTED] sent"),
    # a key's words apart, as an error message writes them: was kept
    ("broker said: invalid API key: PKQ3ZXW7LM2N8RT5YV4C", "broker said: invalid API key: [REDACTED]"),
    ("loaded signing private key = a1b2C3d4e5 from vault", "loaded signing private key = [REDACTED] from vault"),
    (
        "Authorization: SharedKey desk:ctzMq410TV3wS7upTBcunJTDLEJwMAZuFPfr0mrrA08= x-ms-date: now",
        "Authorization: [REDACTED] [REDACTED] x-ms-date: now",
    ),
]
# Ordinary trading and programming words that look a little like them: kept.
_KEPT = [
    'order cid-42 AAPL buy 100 @ 187.25 strategy="mean reversion" note=\'risk check passed\' venue="alpaca paper"',
    '{"token": "", "note": "hello world", "symbol": "AAPL"} ws://:9000/feed http://host:8080/x',
    "key=AAPL primary key figure; signature check passed; sig=3",
    "?symbol=AAPL&side=buy&key_figure=1&monkey=2&keyword=x&sigma=0.2",
    "desk_live_pnl=5 task_live_orders=2 sk-1 strategy=sk-momentum ghost_orders=3 xox",
    "the order sk_live fill; risk key limit hit; private key rotation scheduled",
    "account number: unknown; account no: 5; account_type=margin account_id=904837e3-3b76-47ec-b432-046db621571b",
    "the api key rotation is done; access token count 3; rapid key: 5",
]


@pytest.mark.parametrize(("text", "expected"), _FORMATS)
def test_query_signatures_and_prefixed_secret_formats_are_masked(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize("text", _KEPT)
def test_words_that_only_look_like_those_formats_are_kept(text: str) -> None:
    assert Redactor().text(text) == text


def test_words_after_an_authorization_value_are_kept() -> None:
    """After "authorization:" the first word is taken for the value (masked); the words after it, unless one is a
    credential (a scheme's: test_query_signatures_and_prefixed_secret_formats_are_masked), are kept."""
    assert Redactor().text("authorization: denied for order cid-42 by risk") == (
        "authorization: [REDACTED] for order cid-42 by risk"
    )


# After the words Bearer/Basic: a credential (base64 of user:password, a JWT, a hex or opaque token) is masked, a word
# is not. "basic" and "bearer" are ordinary words in a trading desk's logs ("bearer bonds", "basic strategy").
_SCHEME_CREDENTIALS = [
    ("sent Basic dXNlcjpwYXNzd29yZA== upstream", "sent Basic [REDACTED] upstream"),  # base64 of user:password
    ("proxy basic YWJjOmRlZmdo ok", "proxy basic [REDACTED] ok"),  # base64 of abc:defgh: letters only, mixed case
    ("sent Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "sent Bearer [REDACTED]"),  # a JWT
    ("retry with bearer 9f86d081884c7d659a2feaa0c55ad015", "retry with bearer [REDACTED]"),  # hex
    ("BEARER ya29.a0AfH6SMBx-token_value", "BEARER [REDACTED]"),  # an opaque token
    ("sent bearer abcdEFGH1234", "sent bearer [REDACTED]"),
    ("sent Bearer\tAbCdEfGhIjKl next", "sent Bearer\t[REDACTED] next"),  # the whitespace kept as it was
    # an opaque token in one case: no word is 20 letters long without a "-" or "." (was kept before)
    ("retrying with Bearer ylqygzpadtgwkooiuuhoszxr", "retrying with Bearer [REDACTED]"),
    ("sent BASIC KQZPWMVRTLXJHBNCFGDSYAEU", "sent BASIC [REDACTED]"),
]
_SCHEME_WORDS = [
    "basic strategy rebalanced",
    "bearer instruments excluded from the universe",
    "Basic Strategy: BEARER INSTRUMENTS, basic mean-reversion.",
    "bearer bonds matured 2030-01-15; basic 2024-01-02 report; basic 60/40 portfolio",
    "sent bearer abcdefghijkl",  # all letters: a word, as far as any rule can tell
    "bearer token expired; Bearer token refreshed; basic auth disabled",
    "basic mean-reversion-strategy-for-large-caps, bearer instruments.excluded.from.universe",
]


@pytest.mark.parametrize(("text", "expected"), _SCHEME_CREDENTIALS)
def test_a_credential_after_bearer_or_basic_is_masked(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize("text", _SCHEME_WORDS)
def test_a_word_after_bearer_or_basic_is_kept(text: str) -> None:
    assert Redactor().text(text) == text


def test_masking_masked_text_leaves_it_as_it_is() -> None:
    """A line logged again (or scrubbed twice: the agent, then the collector) reads the same: "Authorization: Bearer
    [REDACTED]" stayed no "Authorization: [REDACTED] [REDACTED]", nor an encoded one "[REDACTED]]"."""
    r = Redactor()
    texts = [
        MESSAGE,
        *(t for t, _ in _SCHEME_CREDENTIALS),
        *(t for t, _ in _FORMATS),
        "Authorization: Bearer abc.def",
        "Authorization: basic dXNlcjpwYXNz",
        '{"authorization": "Bearer abc123"}',
        "headers [('Authorization', 'Basic dXNlcjpwYXNz')]",
        "https://h/x?r=Authorization%3ABearer+abcd1234ef",
        "q=password%3DBasic%20hunter2x&x=1",
        "Authoriz%61tion: Bearer abc.def",
    ]
    for text in texts:
        once = r.text(text)
        assert once != text, text
        assert r.text(once) == once, text
    assert r.text("Authorization: Bearer [REDACTED]") == "Authorization: Bearer [REDACTED]"
    assert r.text("Authorization: Basic  [REDACTED]") == "Authorization: Basic  [REDACTED]"
    assert r.text("x?r=Authorization%3ABearer+[REDACTED]") == "x?r=Authorization%3ABearer+[REDACTED]"


# OpenTelemetry's url.query holds a query string without its "?": its first parameter has no "?" or "&" before it.
_GOOGLE_KEY_Q = "AIzaSyB" + "q7" * 16 + "Zz"  # AIza + 35 (the prefix rule masks it anywhere; sig= has no prefix)


@pytest.mark.parametrize("key", ["url.query", "url.full", "http.url", "http.target"])
def test_a_query_string_attribute_is_masked_from_its_first_parameter(key: str) -> None:
    r = Redactor()
    attrs = {key: "sig=sv2022abcDEF%2Fz&se=2030&key=k-987xyz", "message": "key=AAPL sig=3 signature=ok"}
    assert r.attributes(attrs) == {key: "sig=[REDACTED]&se=2030&key=[REDACTED]", "message": attrs["message"]}
    assert r.value(key, "signature=9f86d081884c7d65&x=1") == "signature=[REDACTED]&x=1"
    assert r.value(key, "key=[REDACTED]&x=1") == "key=[REDACTED]&x=1"
    assert r.value("db.query", "key=abc123&x=1") == "key=abc123&x=1"  # not a URL attribute
    assert Redactor(defaults=False).value(key, "key=abc123") == "key=abc123"


def test_a_query_string_attribute_is_masked_in_log_files_and_spans(env: Env) -> None:
    from tradeobs_agent._internal.scrub import scrub_attributes

    get_logger("execution").info("GET quotes", extra={"url.query": "key=qk-123abc&symbol=AAPL", "q": "key=AAPL"})
    env.flush()
    line = env.lines("execution")[0]
    assert (line["url.query"], line["q"]) == ("key=[REDACTED]&symbol=AAPL", "key=AAPL")
    record = env.otlp_records()[0]
    assert (record.attributes["url.query"], record.attributes["q"]) == ("key=[REDACTED]&symbol=AAPL", "key=AAPL")
    attrs = {"url.query": "sig=Zx9-Yw8&sp=r", "http.target": "/p?signature=abc123", "note": "sig=Zx9"}
    assert scrub_attributes(attrs) == {"url.query": "sig=[REDACTED]&sp=r", "http.target": "/p?signature=[REDACTED]",
                                       "note": "sig=Zx9"}  # fmt: skip
    kept = {"url.query": "symbol=AAPL&limit=10"}
    assert scrub_attributes(kept) is kept


def test_a_value_seen_before_is_masked_once_registered_as_a_secret(env: Env) -> None:
    """The builder remembers the redacted text of values that repeat (a symbol, an order's id on each of its lines):
    a value registered as a secret after it was seen is masked from then on, on every sink, and a secret-looking value
    stays masked on every line it is on."""
    from tradeobs_agent import secret_values

    log = get_logger("execution")
    try:
        for _ in range(2):
            log.info("before", extra={"ref": "ACCT-77665544", "note": "password=hunter2hunter2"})
        env.flush()  # built (and remembered) before the value is known
        secret_values.register_secret("ACCT-77665544")
        for _ in range(2):
            log.info("after", extra={"ref": "ACCT-77665544", "note": "password=hunter2hunter2"})
        env.flush()
    finally:
        secret_values.reset()
    lines = env.lines("execution")
    assert [r["ref"] for r in lines] == ["ACCT-77665544"] * 2 + ["[REDACTED]"] * 2
    assert [r["note"] for r in lines] == ["password=[REDACTED]"] * 4
    otel = [dict(r.attributes) for r in env.otlp_records()]
    assert [a["ref"] for a in otel] == ["ACCT-77665544"] * 2 + ["[REDACTED]"] * 2


def test_a_container_deeper_than_the_redactor_looks_leaves_as_the_mask() -> None:
    """Past its depth bound ``Redactor.value`` returned a nested map as it was: an OTel logs API body or attribute
    nested 7 levels down left the process with its secrets (the log pipeline's own records are cut at 5 first)."""
    deep: dict[str, object] = {"account": "PA3X9Y1234", "note": "password=hunter2"}
    for _ in range(7):
        deep = {"next": deep}
    out = Redactor().value("ctx", deep)
    assert "PA3X9Y1234" not in str(out) and "hunter2" not in str(out)
    for _ in range(6):
        out = out["next"]
    assert out == "[REDACTED]"
    # within the bound, entries are masked one by one and the rest kept
    assert Redactor().value("ctx", {"next": {"account": "PA3X9Y1234", "venue": "NYSE"}}) == {
        "next": {"account": "[REDACTED]", "venue": "NYSE"}
    }


def test_nested_attributes_of_an_otel_api_log_record_are_scrubbed_on_both_export_paths() -> None:
    """The OTel logs API takes maps and lists of maps as attribute values. The fast encoder (OTLP/gRPC, the trace
    file) and the scrub for the other exporters (OTLP/HTTP) masked only top-level strings: ``{"broker": {"api_key":
    ...}}`` and ``["x", {"password": ...}]`` were exported as they were."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from tradeobs_agent._internal.otlp_encode import encode_logs
    from tradeobs_agent._internal.scrub import scrub_logs

    exporter = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attrs = {
        "broker": {"api_key": "k-abc123secret", "venue": "NYSE", "deep": {"note": "token=abc123secret"}},
        "args": ["x", {"password": "hunter2secret"}, ["--password", "hunter2secret"]],
    }
    lp.get_logger("t").emit(body="hello", attributes=attrs, event_name="login password=hunter2secret")
    (readable,) = exporter.get_finished_logs()
    lp.shutdown()
    req = ExportLogsServiceRequest()
    req.ParseFromString(encode_logs([readable]))
    (scrubbed,) = scrub_logs([readable])
    for wire in (str(req), str(scrubbed.log_record.attributes) + str(scrubbed.log_record.event_name)):
        assert "abc123secret" not in wire and "hunter2secret" not in wire, wire
        assert "NYSE" in wire


def test_the_one_search_for_any_rule_gate_finds_every_gate_term() -> None:
    """The search that skips a text no rule's first gate is in (``Redactor._any_gate``, built by ``_any_of`` with
    terms grouped by their first character and terms that hold another left out) finds each term, inside a line."""
    from tradeobs_agent.redaction import _any_of

    r = Redactor(known_values=False)
    terms = {t for first, _rules in r._groups for t in first}
    assert "hook" in terms and "/bot" in terms
    for t in terms:
        assert r._any_gate(f"order 42 filled {t} qty=5") is not None, t
    assert r._any_gate("signal aapl buy qty=100 px=187.25 strategy=mean-reversion") is None
    assert _any_of(["key=", "key", "k_live_", "%"]) == "%|k(?:_live_|ey)"
    assert _any_of(["abc", ""]) == ""  # an ungated rule: every text
