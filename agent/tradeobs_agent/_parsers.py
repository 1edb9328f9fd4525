"""Value parsers for the settings table in :mod:`tradeobs_agent.config`.

>>> port = number(int, 0, 65535)
>>> port("9464"), port(9464)
(9464, 9464)
>>> port("ninety")
Traceback (most recent call last):
...
ValueError: an integer in [0, 65535]

Each parser takes a raw value (a string from the environment, a typed value
from an argument or the TOML file) and returns the typed value, or raises
``ValueError`` whose message says what is allowed. The same parser checks a
setting wherever it comes from, so ``tradeobs config check``, ``init()`` and
``live.create_app()`` accept and reject exactly the same values.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ._trading_day import TradingDay

__all__ = [
    "allowed",
    "base_url",
    "boolean",
    "choice",
    "choice_or_boolean",
    "csv",
    "endpoint",
    "headers",
    "host_header_name",
    "host_name",
    "host_names",
    "is_loopback_address",
    "is_loopback_name",
    "kv_map",
    "milliseconds",
    "nats_urls",
    "number",
    "optional_text",
    "origins",
    "otel_boolean",
    "regex_list",
    "text",
    "trading_day_start",
    "without_userinfo",
]

Parser = Callable[[Any], Any]


def allowed(parse: Parser) -> str:
    """What ``parse`` accepts, in words (its error message for a value nothing accepts)."""
    try:
        parse(object())
    except ValueError as exc:
        return str(exc)
    return "see `tradeobs docs configuration`"  # pragma: no cover - every parser rejects object()


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = raw.strip().lower() if isinstance(raw, str) else None
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError("a boolean: true or false (or 1/0, yes/no, on/off)")


def otel_boolean(raw: Any) -> bool:
    """A boolean ``OTEL_*`` variable as the OpenTelemetry specification reads it: ``true`` (any case) is true,
    ``false`` false; any other value is refused here (the spec says it is false, and a warning should say so), so
    ``OTEL_SDK_DISABLED=1`` does not turn off this agent while it leaves every other SDK on.

    >>> otel_boolean("TRUE"), otel_boolean("false")
    (True, False)
    """
    s = raw.strip().lower() if isinstance(raw, str) else None
    if s in ("true", "false"):
        return s == "true"
    raise ValueError("true or false (the OpenTelemetry specification's booleans: any other value means false)")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def number(kind: type, lo: float, hi: float, unit: str = "") -> Parser:
    """An ``int`` or ``float`` in ``[lo, hi]``; ``unit`` (e.g. ``"seconds"``) is named in the message.

    An integer setting refuses ``2000.5`` from any source (it is not silently truncated).
    """
    what = "an integer" if kind is int else "a number"
    allowed_text = f"{what} in [{_fmt(lo)}, {_fmt(hi)}]{' ' + unit if unit else ''}"

    def parse(raw: Any) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise ValueError(allowed_text)
        try:
            val: Any = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(allowed_text) from None
        if val != val or not lo <= val <= hi:
            raise ValueError(allowed_text)
        if kind is int:
            if isinstance(raw, int):
                return raw
            if not val.is_integer():
                raise ValueError(allowed_text)
            return int(val)
        return val

    return parse


def milliseconds(lo_s: float, hi_s: float) -> Parser:
    """A duration given in milliseconds (``OTEL_*`` variables) returned in seconds; the message uses milliseconds."""
    in_ms = number(float, lo_s * 1000, hi_s * 1000, "milliseconds")

    def parse(raw: Any) -> float:
        return float(in_ms(raw)) / 1000.0

    return parse


def choice(options: tuple[str, ...], upper: bool = False) -> Parser:
    allowed_text = "one of: " + ", ".join(options)

    def parse(raw: Any) -> str:
        if not isinstance(raw, str):
            raise ValueError(allowed_text)
        s = raw.strip().upper() if upper else raw.strip().lower()
        if s not in options:
            raise ValueError(allowed_text)
        return s

    return parse


def choice_or_boolean(options: tuple[str, ...], true: str, false: str) -> Parser:
    """One of ``options`` (any case), or a boolean as :func:`boolean` reads it, which means ``true`` / ``false``.

    >>> mode = choice_or_boolean(("auto", "on", "off"), "on", "off")
    >>> mode("Auto"), mode("TRUE"), mode("0"), mode(True)
    ('auto', 'on', 'off', 'on')
    """
    allowed_text = "one of: " + ", ".join(options) + f" (or a boolean: true/1/yes for {true}, false/0/no for {false})"

    def parse(raw: Any) -> str:
        if isinstance(raw, bool):
            return true if raw else false
        s = raw.strip().lower() if isinstance(raw, str) else None
        if s in options:
            return s
        if s in _TRUE:
            return true
        if s in _FALSE:
            return false
        raise ValueError(allowed_text)

    return parse


def text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 255:
        raise ValueError("a non-empty string of at most 255 characters")
    return raw.strip()


def trading_day_start(raw: Any) -> str:
    """When the trading day starts: ``HH:MM`` and an optional IANA zone, returned in its canonical form (an empty
    value: the server's local midnight, returned as ``""``).

    >>> trading_day_start(" 9:00  Asia/Tokyo "), trading_day_start("")
    ('09:00 Asia/Tokyo', '')
    """
    day = TradingDay.parse(raw)
    return "" if isinstance(raw, str) and not raw.strip() else day.text


def optional_text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("a string")
    return raw.strip()


def endpoint(raw: Any) -> str:
    allowed_text = "a URL such as http://localhost:4317"
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(allowed_text)
    s = raw.strip()
    if "://" not in s:
        s = "http://" + s
    u = urllib.parse.urlparse(s)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(allowed_text)
    try:
        u.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(allowed_text) from None
    return s


def base_url(raw: Any) -> str:
    """An http(s) URL to link to (e.g. Grafana, maybe under a path), without credentials, query or fragment.

    It is given to browsers, so a user:password in it would leak: refused. Trailing slashes are dropped.
    """
    allowed_text = "an http(s) URL such as https://grafana.example:3000 (no user:password, query or fragment)"
    if not isinstance(raw, str):
        raise ValueError(allowed_text)
    s = raw.strip()
    if not s:
        return ""
    u = urllib.parse.urlsplit(s)
    if u.scheme not in ("http", "https") or not u.hostname or u.username is not None or u.query or u.fragment:
        raise ValueError(allowed_text)
    if "#" in s or "?" in s:
        raise ValueError(allowed_text)
    try:
        u.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(allowed_text) from None
    return s.rstrip("/")


def without_userinfo(raw: Any) -> Any:
    """``raw`` as shown in a problem or an error: a URL's ``user:password@`` replaced (never logged)."""
    if not isinstance(raw, str) or "@" not in raw:
        return raw
    try:
        u = urllib.parse.urlsplit(raw.strip())
    except ValueError:
        return "<redacted>"
    if "@" not in u.netloc:
        return raw
    host = u.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((u.scheme, "<redacted>@" + host, u.path, u.query, u.fragment))


def basic_credential(userinfo: str) -> str:
    """The ``Basic`` credential of a URL's ``user:password`` (percent-decoded), as an HTTP client (requests) sends it.

    >>> basic_credential("algo-1:p%40ss")
    'YWxnby0xOnBAc3M='
    """
    user, _, password = userinfo.partition(":")
    raw = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def url_basic_auth(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@``, and their ``Basic`` credential (None when it has none).

    >>> url_basic_auth("http://algo-1:pw@collector:4317")
    ('http://collector:4317', 'YWxnby0xOnB3')
    """
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in u.netloc:
        return url, None
    userinfo, _, host = u.netloc.rpartition("@")
    return urllib.parse.urlunsplit((u.scheme, host, u.path, u.query, u.fragment)), basic_credential(userinfo)


NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def nats_urls_shown(raw: Any) -> Any:
    """NATS URLs as shown in a problem or an error: each one's ``user:password@`` or ``token@`` replaced.

    >>> nats_urls_shown("http://u:p@n1:4222,tok@n2:4222")
    'http://<redacted>@n1:4222,<redacted>@n2:4222'
    """
    if not isinstance(raw, str) or "@" not in raw:
        return raw
    out = []
    for part in raw.split(","):
        if "@" in part:
            scheme, sep, rest = part.partition("://")
            if not sep:
                scheme, rest = "", part
            part = f"{scheme}{sep}<redacted>@{rest.rpartition('@')[2]}"
        out.append(part)
    return ",".join(out)


def nats_urls(raw: Any) -> str:
    """NATS server URLs, comma-separated (a cluster); ``host:port`` alone means ``nats://host:port``. Empty: off."""
    allowed_text = "NATS server URLs such as nats://127.0.0.1:4222 (nats, tls, ws or wss), comma-separated"
    if not isinstance(raw, str):
        raise ValueError(allowed_text)
    out = []
    for part in raw.split(","):
        s = part.strip()
        if not s:
            continue
        if "://" not in s:
            s = "nats://" + s
        u = urllib.parse.urlsplit(s)
        try:
            u.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(allowed_text) from None
        if u.scheme not in NATS_SCHEMES or not u.hostname:
            raise ValueError(allowed_text)
        out.append(s)
    return ",".join(out)


def kv_map(raw: Any) -> dict[str, str]:
    """``k=v,k2=v2`` (W3C baggage-like, URL-decoded) or a mapping."""
    allowed_text = "comma-separated key=value pairs"
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if not isinstance(raw, str):
        raise ValueError(allowed_text)
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(allowed_text)
        out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return out


def multipliers(raw: Any) -> dict[str, float]:
    """Contract multipliers, ``ESZ6=50,CLF7=1000`` or a mapping: each symbol's value of one unit of quantity per point
    of price, a finite number > 0 (``trading.instrument``)."""
    allowed_text = (
        "comma-separated symbol=multiplier pairs, each multiplier a finite number > 0 (ESZ6=50,CLF7=1000; a symbol "
        "with a comma or an equals sign URL-encoded)"
    )
    try:
        pairs: Mapping[Any, Any] = raw if isinstance(raw, Mapping) else kv_map(raw)
    except ValueError:
        raise ValueError(allowed_text) from None
    out: dict[str, float] = {}
    for key, value in pairs.items():
        if not isinstance(key, str) or not key or isinstance(value, bool):
            raise ValueError(allowed_text)
        try:
            m = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(allowed_text) from None
        if not (m > 0.0 and m != float("inf")):  # NaN fails m > 0.0
            raise ValueError(allowed_text)
        out[key] = m
    return out


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)


def headers(raw: Any) -> dict[str, str]:
    """:func:`kv_map` whose keys are HTTP header names and whose values hold no control character (a CR/LF would
    inject a header, and gRPC and requests refuse it at every export instead of once, here). Names come out in lower
    case: HTTP does not mind, and gRPC refuses any other (``Authorization=Bearer ...`` failed every export with
    "Illegal header key"; the OTel SDK's own reading of ``OTEL_EXPORTER_OTLP_HEADERS`` lowers them too)."""
    allowed_text = "comma-separated name=value pairs: names are HTTP header names, values have no control characters"
    try:
        out = kv_map(raw)
    except ValueError:
        raise ValueError(allowed_text) from None
    for name, value in out.items():
        if not _HEADER_NAME.match(name) or any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
            raise ValueError(allowed_text)
    return {name.lower(): value for name, value in out.items()}


def csv(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, list | tuple):
        return tuple(str(x).strip() for x in raw if str(x).strip())
    if not isinstance(raw, str):
        raise ValueError("a comma-separated list")
    return tuple(x.strip() for x in raw.split(",") if x.strip())


_ORIGIN = re.compile(r"([a-z][a-z0-9+.-]*)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def origins(raw: Any) -> tuple[str, ...]:
    """CORS origins: each ``scheme://host[:port]``, as a browser sends it in ``Origin`` (lower case, no default port).

    Refused: ``*`` and ``null`` (the live stream may use cookies, and any web page can send ``Origin: null`` from a
    sandboxed iframe), and anything a browser's ``Origin`` never is (a path or a trailing ``/``, a wildcard, a user,
    no host): such an entry matched nothing, so the setting silently did nothing.
    """
    allowed_text = (
        "a comma-separated list of explicit origins, scheme://host[:port], such as https://desk.example "
        "('*', 'null', paths and wildcards are never allowed)"
    )
    return _each(raw, allowed_text, _origin)


def _origin(value: str) -> str | None:
    """One origin as a browser writes ``Origin``, or ``None`` when a browser never sends it so."""
    m = _ORIGIN.fullmatch(value.lower())
    if m is None:
        return None
    scheme, host, port = m.groups()
    if port is not None and int(port) > 65535:
        return None
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def _each(raw: Any, allowed_text: str, one: Callable[[str], str | None]) -> tuple[str, ...]:
    """A comma-separated list (:func:`csv`) with each entry made by ``one``; any entry it refuses (``None``), or a
    value that is no list, is ``ValueError(allowed_text)``."""
    try:
        values = csv(raw)
    except ValueError:
        raise ValueError(allowed_text) from None
    out = []
    for value in values:
        made = one(value)
        if made is None:
            raise ValueError(allowed_text)
        out.append(made)
    return tuple(out)


_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


def host_name(value: str) -> str | None:
    """``value`` as a ``Host`` header names it (lower case, no trailing dot, an IPv6 address without brackets), or
    ``None`` when it is no host name or IP address.

    >>> host_name("Desk.Example."), host_name("[::1]"), host_name("desk.example:8765")
    ('desk.example', '::1', None)
    """
    name = value.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    if ":" in name:
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    name = name.removesuffix(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def host_header_name(header: str) -> str | None:
    """The host name or IP address in a ``Host`` header, without its port, as ``live_allowed_hosts`` and
    ``prometheus_allowed_hosts`` list it, or ``None`` when it names none.

    >>> host_header_name("Desk.Example:8765"), host_header_name("[::1]:8765"), host_header_name("a b")
    ('desk.example', '::1', None)
    """
    value = header.strip()
    if value.startswith("["):
        value = value.partition("]")[0] + "]"
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return host_name(value)


def is_loopback_address(host: str) -> bool:
    """Whether an address (``127.0.0.1``, ``[::1]``, ``localhost``; a bind address, or the one a connection arrived
    on) is this machine only. ``::ffff:127.0.0.1`` too: a connection through 127.0.0.1 to a dual-stack server
    listening on ``::`` arrives on it."""
    name = host.strip().strip("[]")
    return name.lower() == "localhost" or _loopback_ip(name)


def is_loopback_name(name: str) -> bool:
    """Whether a ``Host`` name (as :func:`host_header_name` gives it) is loopback: ``localhost``, a ``*.localhost``
    name (RFC 6761: browsers resolve them to loopback themselves), 127.0.0.0/8, ``::1`` or an IPv4-mapped loopback
    address."""
    return name == "localhost" or name.endswith(".localhost") or _loopback_ip(name)


def _loopback_ip(text: str) -> bool:
    """Whether ``text`` is a loopback IP address: 127.0.0.0/8, ``::1``, or an IPv4-mapped one (``::ffff:127.0.0.1``)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def host_names(raw: Any) -> tuple[str, ...]:
    """Host names or IP addresses, as a browser puts them in ``Host`` (without the port): ``desk.example``,
    ``10.0.0.5``, ``[fd00::1]``. Kept in lower case, without a trailing dot or IPv6 brackets.

    Refused: a port, a scheme, a path, a wildcard (``*``, ``*.example``): such an entry would match no ``Host``, so the
    setting silently did nothing, or (a wildcard) would let any rebinding name through.
    """
    allowed_text = (
        "a comma-separated list of host names or IP addresses, such as desk.example,10.0.0.5 "
        "(no scheme, port, path or wildcard)"
    )
    return _each(raw, allowed_text, host_name)


def regex_list(raw: Any) -> tuple[str, ...]:
    """Regular expressions: a list, or a string holding a JSON array or a single pattern."""
    allowed_text = "a list of valid regular expressions (env: a JSON array, or one pattern)"
    if isinstance(raw, str):
        s = raw.strip()
        if s.startswith("["):
            try:
                raw = json.loads(s)
            except ValueError:
                raise ValueError(allowed_text) from None
        else:
            raw = [s] if s else []
    if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
        raise ValueError(allowed_text)
    for pattern in raw:
        try:
            re.compile(pattern)
        except re.error:
            raise ValueError(allowed_text) from None
    return tuple(raw)
