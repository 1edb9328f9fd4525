"""Bad input, generated (hypothesis) and hand-picked: nothing raises into the host service.

Each class of input gets either a clear error naming what is wrong (a programmer's explicit argument: an
``init()`` setting, an instrument name, ``register_secret``) or is sanitised and counted (environment and file
settings, metric attributes and values, log calls). The live stream's and the OTLP endpoint's bad input are in
tests/unit/live/test_app.py and tests/integration/test_collector_auth.py.
"""

from __future__ import annotations

import contextlib
import decimal
import io
import logging
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tradeobs_agent
from tradeobs_agent import secret_values
from tradeobs_agent._errors import internal_error_counts
from tradeobs_agent.config import FIELDS, resolve_settings
from tradeobs_agent.exceptions import TradeObsConfigError
from tradeobs_agent.metrics import Registry
from tradeobs_agent.metrics._registry import MAX_ATTR_LEN


@pytest.fixture(autouse=True)
def _stdlib_handle_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest's log-capture handlers re-raise a formatting error (a hostile ``__repr__`` in a record's arguments)
    where every stdlib handler reports it on stderr and goes on: give them the stdlib's behaviour here, so these
    tests see what a service sees. ``test_host_handlers_on_the_root_logger`` adds a host's own stdlib handler."""
    import _pytest.logging

    monkeypatch.setattr(_pytest.logging.LogCaptureHandler, "handleError", logging.Handler.handleError)


@contextlib.contextmanager
def agent_handler_only() -> Iterator[None]:
    """The agent as the only handler (pytest's capture handlers, added for the test's call, taken off the root
    logger meanwhile): the records take the agent's own path, as in a service whose logging ``init()`` set up."""
    root = logging.getLogger()
    taken = [h for h in root.handlers if type(h).__module__.startswith("_pytest")]
    for h in taken:
        root.removeHandler(h)
    try:
        yield
    finally:
        for h in taken:
            root.addHandler(h)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- hostile objects


class Boom(Exception):
    pass


class BadStr:
    def __str__(self) -> str:
        raise Boom("__str__")

    def __repr__(self) -> str:
        raise Boom("__repr__")


class BadEverything(BadStr):
    def __eq__(self, other: object) -> bool:
        raise Boom("__eq__")

    def __hash__(self) -> int:
        raise Boom("__hash__")

    def __bool__(self) -> bool:
        raise Boom("__bool__")

    def __len__(self) -> int:
        raise Boom("__len__")

    def __format__(self, spec: str) -> str:
        raise Boom("__format__")

    def __lt__(self, other: object) -> bool:
        raise Boom("__lt__")

    def __gt__(self, other: object) -> bool:
        raise Boom("__gt__")


class BadStrGoodRepr(BadEverything):
    """As hostile as :class:`BadEverything` except ``repr()``, which hypothesis needs to report an example
    (the hand-picked tests use the ones whose ``repr()`` raises too)."""

    def __repr__(self) -> str:
        return "BadStrGoodRepr()"


class HostileStr(str):
    def __str__(self) -> str:
        raise Boom("str subclass __str__")


class HostileMapping(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise Boom("items")

    def get(self, *a: Any) -> Any:
        raise Boom("get")

    def __iter__(self) -> Iterator[Any]:
        raise Boom("__iter__")


def _recursive_list() -> list[Any]:
    x: list[Any] = [1]
    x.append(x)
    return x


def _recursive_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


HOSTILE = [BadStr(), BadEverything(), HostileStr("hostile"), _recursive_list(), _recursive_dict(), object(),
           b"\xff\xfe bytes", bytearray(b"x"), {1, 2}, frozenset(), type, print, Ellipsis, NotImplemented,
           complex(1, 2), decimal.Decimal("NaN"), decimal.Decimal("1e999999"), 10**40, -(10**40),
           "x" * 100_000, "\ud800 lone surrogate", "\x00nul", "e\u0301 \U0001f600 \u202e rtl"]  # fmt: skip


def one_of_objects(objs: list[Any]) -> st.SearchStrategy[Any]:
    """Like ``st.sampled_from``, which hashes its elements (some of these refuse)."""
    return st.integers(0, len(objs) - 1).map(lambda i: objs[i])


GIVEN_HOSTILE = [h for h in HOSTILE if not isinstance(h, BadStr)] + [BadStrGoodRepr()]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary(max_size=20)
    | st.decimals(allow_nan=True, allow_infinity=True)
)
values = st.recursive(
    scalars, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch, max_size=3), max_leaves=8
) | one_of_objects(GIVEN_HOSTILE)
keys = st.text(max_size=12) | st.sampled_from(["password", "api_key", "token", "symbol", "", "x" * 400])


# --------------------------------------------------------------------------- config


@SETTINGS
@given(data=st.data())
def test_any_explicit_setting_value_is_accepted_or_a_clear_error(data: st.DataObject) -> None:
    f = data.draw(st.sampled_from(FIELDS), label="field")
    value = data.draw(values, label="value")
    try:
        settings_, _report = resolve_settings(env={}, **{f.name: value})
    except TradeObsConfigError as err:
        assert err.setting == f.name
        assert f.name in str(err) and "expected" in str(err) and err.allowed
        if f.secret and isinstance(value, str) and len(value) >= 4:
            assert value not in str(err), "a secret setting's value was shown"
    else:
        assert hasattr(settings_, f.name)


@SETTINGS
@given(data=st.data())
def test_any_environment_value_is_used_or_a_problem_never_raises(data: st.DataObject) -> None:
    f = data.draw(st.sampled_from(FIELDS), label="field")
    raw = data.draw(st.text() | st.sampled_from(["nan", "inf", "-1", "1e309", "0x10", " ", "true false", "=,="]))
    raw = raw.replace("\x00", "")  # the OS refuses NUL in the environment
    s, report = resolve_settings(env={f.env: raw})
    for p in report.problems:
        assert p.setting == f.name and p.source == f.env, p
        assert f.env in str(p)
        if f.secret and len(raw.strip()) >= 4:
            assert raw.strip() not in str(p)
    if report.problems:
        assert getattr(s, f.name) == f.default


@SETTINGS
@given(data=st.data())
def test_any_file_value_is_used_or_a_problem_never_raises(data: st.DataObject, tmp_path_factory: Any) -> None:
    f = data.draw(st.sampled_from(FIELDS), label="field")
    toml_values = st.recursive(
        st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
        lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), ch, max_size=3),
        max_leaves=5,
    )
    value = data.draw(toml_values, label="value")
    cfg = Path(tmp_path_factory.mktemp("cfg")) / "tradeobs.toml"
    cfg.write_text(f"{f.name} = {_toml(value)}\n", encoding="utf-8")
    assert tomllib.loads(cfg.read_text(encoding="utf-8"))  # the test wrote valid TOML
    s, report = resolve_settings(env={}, config_file=str(cfg))
    for p in report.problems:
        assert p.setting == f.name, p
        assert f.name in str(p)
    if report.problems:
        assert getattr(s, f.name) == f.default


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{_toml(k)} = {_toml(x)}" for k, x in v.items()) + "}"


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    "name", ["", "1abc", "has space", "ünïcode", "x" * 256, "a;b", None, 42, b"bytes", HostileStr("has space")]
)
def test_bad_instrument_name_is_a_clear_error(name: Any) -> None:
    reg = Registry()
    with pytest.raises(ValueError, match="invalid instrument name"):
        reg.counter(name)


@pytest.mark.parametrize("unit", ["µs", "x" * 64, None, 5, BadStr()])
def test_bad_unit_is_dropped_and_counted(unit: Any) -> None:
    reg = Registry()
    c = reg.counter("orders.sent", unit)
    assert c.unit == ""
    assert reg.self_metrics.invalid.bind(instrument="orders.sent", reason="unit").value == 1


@SETTINGS
@given(attrs=st.dictionaries(keys, values, max_size=5) | one_of_objects([HostileMapping(a=1), BadStrGoodRepr()]),
       amount=scalars | one_of_objects(GIVEN_HOSTILE))  # fmt: skip
def test_any_attributes_and_values_are_sanitised_never_raise(attrs: Any, amount: Any) -> None:
    reg = Registry()
    for inst, call in (
        (reg.counter("c"), "add"),
        (reg.updown_counter("u"), "add"),
        (reg.gauge("g"), "set"),
        (reg.histogram("h"), "record"),
    ):
        getattr(inst, call)(amount, attrs)
        getattr(inst, call)(1, attrs)
        for series in inst.series():
            for k, v in series.attributes.items():
                assert type(k) is str and len(k) <= MAX_ATTR_LEN
                assert type(v) in (str, bool, int, float), (k, v)
                if type(v) is float:
                    assert math.isfinite(v)
                if type(v) is str:
                    assert len(v) <= MAX_ATTR_LEN
                if k in ("password", "api_key", "token"):
                    assert v == "[REDACTED]"
    snap = reg.snapshot()
    assert snap.get("c") is not None


def test_bad_values_are_counted_not_recorded() -> None:
    reg = Registry()
    c, g, h = reg.counter("c"), reg.gauge("g"), reg.histogram("h")
    bad = [math.nan, math.inf, -math.inf, "3", None, BadEverything(), decimal.Decimal("NaN"), 10**400, -(10**400)]
    for v in bad:
        c.add(v)  # type: ignore[arg-type]
        g.set(v)  # type: ignore[arg-type]
        h.record(v)  # type: ignore[arg-type]
    c.add(-1)
    assert c.bind().value == 0 and h.bind().point().observed == 0 and g.bind().value is None
    invalid = {i: reg.self_metrics.invalid.bind(instrument=i, reason="value").value for i in ("c", "g", "h")}
    assert invalid == {"c": len(bad) + 1, "g": len(bad), "h": len(bad)}


def test_a_dropped_value_is_named_as_given_with_what_is_allowed(caplog: pytest.LogCaptureFixture) -> None:
    """The warning named the value after its failed conversion: ``counter.bind(...).add("1")`` said
    "dropped or fixed value None", which names neither what was passed nor what would have been taken."""
    reg = Registry()
    c, g, h = reg.counter("fills"), reg.gauge("px"), reg.histogram("notional")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        c.bind(symbol="AAPL").add("1")  # type: ignore[arg-type]
        g.bind(symbol="AAPL").set(None)  # type: ignore[arg-type]
        h.bind(symbol="AAPL").record(decimal.Decimal("NaN"))
        c.bind(symbol="AAPL").add(-2)
        c.bind(symbol="AAPL").add(decimal.Decimal("0.1"))  # taken
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "instrument 'fills': dropped value 1 (str): a measurement is a finite non-negative number "
        "(int, float, Decimal, numpy)",
        "instrument 'px': dropped value None (NoneType): a measurement is a finite number (int, float, Decimal, numpy)",
        "instrument 'notional': dropped value NaN (Decimal): a measurement is a finite number "
        "(int, float, Decimal, numpy)",
    ]  # said once per instrument: the negative amount is counted, not said again
    assert reg.self_metrics.invalid.bind(instrument="fills", reason="value").value == 2
    assert c.bind(symbol="AAPL").value == 0.1


def test_a_number_past_any_float_is_counted_and_every_output_still_renders() -> None:
    """10**400 is a finite int: no float, sum or exposition holds it. It used to make every scrape fail."""
    from tradeobs_agent._internal.prometheus import Renderer

    reg = Registry()
    c, g, h, u = reg.counter("c"), reg.gauge("g"), reg.histogram("h"), reg.updown_counter("u")
    c.add(10**400)
    g.set(10**400)
    h.record(-(10**400))
    u.add(-(10**400))
    big = reg.counter("big").bind()
    for _ in range(3):
        big.add(10**308)  # each finite; their sum is past the largest float
    assert h.bind().point().observed == 0 and g.bind().value is None
    for i in ("c", "g", "h", "u"):
        assert reg.self_metrics.invalid.bind(instrument=i, reason="value").value == 1
    text = b"".join(Renderer(reg).render_chunks(openmetrics=False, eof=True)).decode()
    assert "big_total +Inf" in text


def test_a_lone_surrogate_in_a_label_is_replaced_counted_and_every_output_still_renders() -> None:
    """Text decoded with surrogateescape: no output format can carry it; one such label made every scrape fail."""
    from tradeobs_agent._internal.prometheus import Renderer
    from tradeobs_agent.metrics.wire import PartWriter

    reg = Registry()
    reg.counter("orders").bind(symbol="\ud800", **{"k\udc80": "v"}).add(2)
    (series,) = reg.counter("orders").series()
    assert series.attributes == {"k?": "v", "symbol": "?"}
    assert reg.self_metrics.invalid.bind(instrument="orders", reason="attribute_not_utf8").value == 1
    assert reg.self_metrics.invalid.bind(instrument="orders", reason="attribute_key_not_utf8").value == 1
    for om in (False, True):
        text = b"".join(Renderer(reg).render_chunks(openmetrics=om, eof=True)).decode()
        assert 'orders_total{k_="v",symbol="?"} 2' in text  # a label name's '?' is '_' there
    PartWriter(1).encode(reg.snapshot())  # a worker's snapshot for its group (JSON layout): no error


def test_a_lone_surrogate_in_an_event_is_replaced_so_every_reader_can_write_it() -> None:
    import orjson

    from tradeobs_agent.events import EventBus

    bus = EventBus()
    bus.publish("fill", order_id="id\udcff", qty=1, nested={"a": ["x\udc80", 2]})
    bus.publish("fill", order_id="plain", qty=1)
    first, second = bus.since(0)
    assert first.data == {"order_id": "id?", "qty": 1, "nested": {"a": ["x?", 2]}}
    assert second.data == {"order_id": "plain", "qty": 1}
    orjson.dumps([e.data for e in (first, second)])


# --------------------------------------------------------------------------- log calls


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Any]:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    from tradeobs_agent.testing import reset

    exporter = InMemoryLogRecordExporter()
    a = tradeobs_agent.init(
        service_name="bad-input",
        otlp=False,
        prometheus=False,
        live=False,
        log_exporters=[exporter],
        logs=tradeobs_agent.LogOptions(dir=str(tmp_path / "logs"), console=False),
    )
    a.test_exporter = exporter
    yield a
    reset()


def _lines(agent: Any) -> str:
    assert agent.logs.flush(10.0)
    return "".join(p.read_text(errors="replace") for p in sorted(Path(agent.settings.log_dir).glob("*.jsonl")))


@SETTINGS
@given(msg=values, args=st.lists(values, max_size=3), kwargs=st.dictionaries(
    st.sampled_from(["password", "note", "symbol", "msg", "level", "args", "exc_info", "stack_info", "stacklevel",
                     "extra"]), values, max_size=3))  # fmt: skip
def test_any_log_call_never_raises(agent: Any, msg: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Every call returns; the worker builds a record for each (a bug there re-raises in the worker under tests,
    which pytest reports, and is counted in internal_error_counts())."""
    log = tradeobs_agent.get_logger("system")
    with agent_handler_only():
        for method in (log.debug, log.info, log.warning, log.error, log.exception, log.critical):
            method(msg, *args, **kwargs)
        log.log(30, msg, *args, **kwargs)
    assert agent.logs.flush(10.0)
    assert internal_error_counts() == {}


def test_hand_picked_hostile_objects_in_every_position(agent: Any) -> None:
    """Also the objects whose repr() raises (hypothesis cannot report those)."""
    log = tradeobs_agent.get_logger("system")
    n = 0
    with agent_handler_only():
        for h in HOSTILE:
            for kw in ({}, {"note": h}, {"extra": h}, {"exc_info": h}, {"stack_info": h}, {"stacklevel": h}):
                log.info(h, h, **kw)
                log.info("m %s %r %d", h, h, h, **kw)  # %d of Decimal("1E+999999"): no minute-long stall
                log.exception(h, **kw)
                n += 3
    assert agent.logs.flush(10.0)
    assert internal_error_counts() == {}
    written = _lines(agent).count('"logger":"tradeobs.system"')
    assert written == n, (written, n)


def test_host_handlers_on_the_root_logger(agent: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """With a host application's handler on the root logger, records take the stdlib path: hostile calls still
    return, the agent still writes every record, and the host handler's formatting errors are the stdlib's own
    report on stderr (``--- Logging error ---``), never an exception in the caller."""
    host = logging.StreamHandler(io.StringIO())
    with agent_handler_only():
        logging.getLogger().addHandler(host)
    try:
        log = tradeobs_agent.get_logger("system")
        n = 0
        for h in HOSTILE:
            for kw in ({}, {"note": h}, {"extra": h}, {"exc_info": h}, {"stack_info": h}, {"stacklevel": h}):
                log.info("m %s %r", h, h, **kw)
                log.warning(h, **kw)
                n += 2
        log.info("login", password="hunter2-hunter2")
        text = _lines(agent)
    finally:
        logging.getLogger().removeHandler(host)
    assert "--- Logging error ---" in capsys.readouterr().err  # the host handler's errors: the stdlib's report
    assert text.count('"logger":"tradeobs.system"') == n + 1
    assert "hunter2-hunter2" not in text and "hunter2-hunter2" not in host.stream.getvalue()
    assert internal_error_counts() == {}


def test_keyword_arguments_are_attributes_with_secrets_masked(agent: Any) -> None:
    log = tradeobs_agent.get_logger("system")
    log.info("login", password="hunter2-hunter2", user="bob", msg="kw-msg", level="kw-level")
    log.warning("odd", extra=["not", "a", "dict"], stack_info=BadEverything(), exc_info=BadEverything())
    log.error("recursive %s %r", _recursive_list(), _recursive_dict(), note=BadStr())
    text = _lines(agent)
    assert "hunter2-hunter2" not in text
    assert '"password":"[REDACTED]"' in text and '"user":"bob"' in text and "kw-msg" in text
    assert '"message":"odd"' in text and '"message":"login"' in text
    otlp = agent.test_exporter.get_finished_logs()
    assert "hunter2-hunter2" not in repr([dict(r.log_record.attributes or {}) for r in otlp])


def test_known_secret_values_are_masked_bare_in_messages_arguments_and_exceptions(agent: Any) -> None:
    tradeobs_agent.register_secret("PKBARE0123456789ZZ")
    secret = "sk/+secret value 42"
    tradeobs_agent.register_secret(secret)
    log = tradeobs_agent.get_logger("execution")
    log.info("header: %s", "PKBARE0123456789ZZ")
    log.info("url https://x/y?k=%s", "sk%2F%2Bsecret%20value%2042")
    try:
        raise RuntimeError(f"broker said no to {secret}")
    except RuntimeError:
        log.exception("failed", note=f"with {secret}")
    text = _lines(agent)
    for leaked in ("PKBARE0123456789ZZ", secret, "sk%2F%2Bsecret%20value%2042"):
        assert leaked not in text
    assert text.count("[REDACTED]") >= 4


@pytest.mark.parametrize(("value", "error"), [(123456789, TypeError), (None, TypeError), ("short", ValueError),
                                              ("   abc   ", ValueError)])  # fmt: skip
def test_register_secret_refuses_bad_values_without_showing_them(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="register_secret") as info:
        tradeobs_agent.register_secret(value)
    if isinstance(value, str):
        assert value.strip() not in str(info.value)


def test_secret_values_from_the_environment_not_paths_or_flags() -> None:
    secret_values.reset()
    try:
        learned = secret_values.learn_environment(
            {
                "APCA_API_KEY_ID": "PKENV0123456789",
                "ALPACA_ACCOUNT_NUMBER": "987654321012",
                "DB_PASSWORD": "pw-from-env-1",
                "DB_PASSWORD_FILE": "/run/secrets/db-password",
                "API_TOKEN": "true",
                "HOME": "/root/not-a-secret",
                "PWD": "/srv/algo/working-dir",  # the shell's working directory: 'pwd' is no password here
                "OLDPWD": "/srv/algo/previous-dir",
            }
        )
        assert learned == ["ALPACA_ACCOUNT_NUMBER", "APCA_API_KEY_ID", "DB_PASSWORD"]
        assert secret_values.mask("File /srv/algo/working-dir/run.py") == "File /srv/algo/working-dir/run.py"
        assert secret_values.mask("a PKENV0123456789 b 987654321012 c pw-from-env-1") == (
            "a [REDACTED] b [REDACTED] c [REDACTED]"
        )
        assert secret_values.mask("/run/secrets/db-password true /root/not-a-secret") == (
            "/run/secrets/db-password true /root/not-a-secret"
        )
        assert secret_values.int_is_secret(987654321012) and not secret_values.int_is_secret(42)
    finally:
        secret_values.reset()


# --------------------------------------------------------------------------- OTLP endpoints and headers


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("otlp_endpoint", "ftp://collector:4317"),
        ("otlp_endpoint", "http://"),
        ("otlp_endpoint", "http://[::1"),
        ("otlp_endpoint", "http://collector:99999"),
        ("otlp_endpoint", "   "),
        ("otlp_endpoint", 4317),
        ("otlp_headers", "authorization"),
        ("otlp_headers", "=Bearer abc"),
        ("otlp_headers", "x-a=b\r\ninjected: 1"),
        ("otlp_headers", "bad name=1"),
        ("otlp_headers", {"authorization": BadStr()}),
        ("otlp_headers", {"x-ok": "line\nbreak"}),
        ("resource_attributes", {"a": BadStr()}),
    ],
)
def test_malformed_otlp_endpoints_and_headers(setting: str, value: Any) -> None:
    """As arguments: a clear error naming the setting (never a header's value); from the environment: a problem,
    the default kept, never raises."""
    with pytest.raises(TradeObsConfigError) as info:
        resolve_settings(env={}, **{setting: value})
    assert info.value.setting == setting and "expected" in str(info.value)
    if setting == "otlp_headers":
        assert "Bearer abc" not in str(info.value) and "injected" not in str(info.value)
    if isinstance(value, str) and value.strip():  # an empty variable is "not set"
        var = {"otlp_endpoint": "TRADEOBS_OTLP_ENDPOINT", "otlp_headers": "TRADEOBS_OTLP_HEADERS"}[setting]
        s, report = resolve_settings(env={var: value.replace("\r\n", "%0D%0A")})
        assert [p.setting for p in report.problems] == [setting]
        assert getattr(s, setting) == next(f.default for f in FIELDS if f.name == setting)
