"""Is there an OTLP receiver at a target? ``tradeobs doctor``'s collector check, in the receiver's own protocol.

>>> probe(otlp_for(settings, "traces"), "traces", timeout=2.0)      # doctest: +SKIP
Probe(ok=True, detail='an OTLP/gRPC receiver accepted an empty traces export')

A TCP connect says only that something listens: Prometheus on the OTLP port passed it. So this sends what the
agent's exporter sends, with nothing in it: for ``http/protobuf`` an empty ``Export*ServiceRequest`` POSTed
(``application/x-protobuf``) to the signal's URL, which an OTLP receiver answers 2xx; for ``grpc`` an empty
``Export`` call on the signal's service, with a short deadline. The headers (``otlp_headers``), the TLS choice
(``otlp_insecure``, an ``https`` endpoint) and the certificate files the OTLP exporters read
(``OTEL_EXPORTER_OTLP[_<SIGNAL>]_CERTIFICATE``, ``_CLIENT_CERTIFICATE``, ``_CLIENT_KEY``) are used as the
exporter uses them. No header value is ever part of a result: they may be secrets.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._parsers import url_basic_auth
from ..config import OtlpTarget
from .exporters import resolve
from .otel_private import http_error_text

__all__ = ["Probe", "probe"]

_GRPC_SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_DETAIL = 160  # characters of an error's own text shown
_HEADERS_FIX = (
    'set otlp_headers (TRADEOBS_OTLP_HEADERS, such as "authorization=Bearer <token>") to what the collector expects'
)


class Probe(NamedTuple):
    """``ok``: True (an OTLP receiver took the empty export), False (a failure), None (a doubt: a warning)."""

    ok: bool | None
    detail: str


def probe(target: OtlpTarget, signal: str, timeout: float) -> Probe:
    """Send an empty ``signal`` export to ``target`` and say what answered, within about ``timeout`` seconds for each
    step (resolving the name, connecting, the answer). Never raises."""
    grpc = target.protocol == "grpc"
    host, port, where = _where(target.endpoint, 443 if grpc or target.endpoint.startswith("https://") else 80)
    # The system resolver has no bound of its own (an unreachable DNS server, search domains tried in turn: tens of
    # seconds), and the connection and urllib both resolve the name: first resolve it within the timeout here.
    found = resolve(host, port, timeout)
    if isinstance(found, str):
        return Probe(False, f"cannot resolve the host of {where}: {found}")
    return _grpc(target, signal, timeout) if grpc else _http(target, signal, timeout)


def _where(url: str, default_port: int) -> tuple[str, int, str]:
    """``(host, port, "host:port")`` of an endpoint written as a URL or as ``host:port``; ``default_port`` when it
    names none."""
    parts = urllib.parse.urlsplit(url if "//" in url else "//" + url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or default_port
    except ValueError:  # not a number: the connection fails and says so
        port = default_port
    shown = f"[{host}]" if ":" in host else host
    return host, port, f"{shown}:{port}"


def _short(text: object) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= _DETAIL else s[: _DETAIL - 3] + "..."


class _TlsFiles(NamedTuple):
    ca: tuple[str, str] | None  # (environment variable, path)
    cert: tuple[str, str] | None
    key: tuple[str, str] | None


def _tls_files(signal: str) -> _TlsFiles:
    """The certificate files the OTLP exporter for ``signal`` reads: per-signal variables first, then generic."""

    def env(what: str) -> tuple[str, str] | None:
        for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_{what}", f"OTEL_EXPORTER_OTLP_{what}"):
            value = os.environ.get(name, "").strip()
            if value:
                return name, value
        return None

    return _TlsFiles(env("CERTIFICATE"), env("CLIENT_CERTIFICATE"), env("CLIENT_KEY"))


def _read(file: tuple[str, str] | None) -> bytes | None:
    if file is None:
        return None
    with open(file[1], "rb") as fh:
        return fh.read()


def _unreadable(files: _TlsFiles, exc: OSError) -> Probe:
    name, path = next((f for f in files if f is not None and f[1] == exc.filename), ("a certificate file", ""))
    return Probe(False, f"{name}={path!r}: cannot read it ({exc.strerror or exc}); expected a readable PEM file")


# --------------------------------------------------------------------------- OTLP/HTTP


def _http(t: OtlpTarget, signal: str, timeout: float) -> Probe:
    _, _, where = _where(t.endpoint, 443 if t.endpoint.startswith("https://") else 80)
    path = urllib.parse.urlsplit(t.endpoint).path or "/"
    context: ssl.SSLContext | None = None
    files = _tls_files(signal)
    if t.endpoint.startswith("https://"):
        try:
            context = ssl.create_default_context(cafile=files.ca[1] if files.ca else None)
            if files.cert is not None:
                context.load_cert_chain(files.cert[1], files.key[1] if files.key else None)
        except ssl.SSLError as exc:
            return Probe(False, f"the certificate files do not load: {_short(exc)}")
        except OSError as exc:
            return _unreadable(files, exc)
    headers = {**t.headers, "Content-Type": "application/x-protobuf"}
    url = _basic_auth_from_url(t.endpoint, headers)
    request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            status, reason, ctype = resp.status, resp.reason, resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, reason, ctype = exc.code, exc.reason, exc.headers.get("Content-Type", "") if exc.headers else ""
        try:
            body = http_error_text(exc.read(4096))
        except (OSError, http.client.HTTPException):  # the answer broke off: its status says enough
            body = ""
        exc.close()
    except urllib.error.URLError as exc:
        return _unreached(where, exc.reason, timeout, "OTLP/HTTP", "grpc")
    except (OSError, http.client.HTTPException) as exc:
        return _unreached(where, exc, timeout, "OTLP/HTTP", "grpc")
    if 200 <= status < 300:
        if ctype.split(";")[0].strip().lower() == "application/x-protobuf":
            return Probe(True, f"an OTLP/HTTP receiver accepted an empty {signal} export (HTTP {status})")
        return Probe(
            None,
            f"HTTP {status} at {path}, but not an OTLP answer (content-type {ctype or 'none'!r}, an OTLP receiver "
            "answers application/x-protobuf): is this an OTLP receiver?",
        )
    said = f"HTTP {status} {reason}".strip()
    if status in (401, 403):
        answer = said + (f": {_short(body)}" if body else "")
        return Probe(False, f"the OTLP receiver at {where} refuses the credentials ({answer}): {_HEADERS_FIX}")
    if status == 404:
        return Probe(
            False,
            f"no OTLP/HTTP receiver for {signal} at {path} on {where} ({said}): a wrong path (TRADEOBS_OTLP_ENDPOINT "
            f"is the receiver's base URL, the agent appends /v1/{signal}), a collector with no {signal} pipeline, "
            "or not an OTLP receiver",
        )
    if status in (429, 502, 503, 504):
        return Probe(False, f"the receiver at {where} is overloaded or failing: {said}")
    return Probe(False, f"something answers on {where} but it is not an OTLP receiver for {signal}: {said} at {path}")


def _basic_auth_from_url(url: str, headers: dict[str, str]) -> str:
    """``url`` without its ``user:password@``, which goes into ``headers`` as basic auth, as the exporter's HTTP
    client (requests) sends it; urllib took the user:password for part of the host ("cannot resolve the host")."""
    bare, credential = url_basic_auth(url)
    if credential is None:
        return url
    headers.pop("authorization", None)  # requests lets the URL's credentials win over the header
    headers["Authorization"] = "Basic " + credential
    return bare


def _unreached(where: str, why: Any, timeout: float, protocol: str, other: str) -> Probe:
    """No HTTP answer at all: nothing listens, no answer in time, TLS failed, or not HTTP."""
    if isinstance(why, ConnectionRefusedError):
        return Probe(False, f"nothing listens on {where} (connection refused)")
    if isinstance(why, (TimeoutError, socket.timeout)):
        return Probe(False, f"no answer from {where} within {timeout:g} s")
    if isinstance(why, ssl.SSLError):
        return Probe(False, f"TLS with {where} failed: {_short(why)}")
    if isinstance(why, socket.gaierror):
        return Probe(False, f"cannot resolve the host of {where}: {_short(why)}")
    if isinstance(why, (ConnectionResetError, http.client.HTTPException)):
        return Probe(
            False,
            f"something answers on {where} but it is not an {protocol} receiver ({type(why).__name__}: "
            f"{_short(why)}); an {'OTLP/gRPC' if other == 'grpc' else 'OTLP/HTTP'} port? then set "
            f"TRADEOBS_OTLP_PROTOCOL={other}",
        )
    return Probe(False, f"cannot reach {where}: {_short(why)}")


# --------------------------------------------------------------------------- OTLP/gRPC


def _grpc(t: OtlpTarget, signal: str, timeout: float) -> Probe:
    host, port, where = _where(t.endpoint, 443)  # gRPC's own default for a target without a port
    try:  # first, whether anything listens: gRPC's own errors for that are long
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return _unreached(where, exc, timeout, "OTLP/gRPC", "http/protobuf")
    try:
        import grpc
    except ImportError:  # a dependency of opentelemetry-exporter-otlp-proto-grpc: a broken install
        return Probe(None, f"something listens on {where}; grpcio is not installed, so it was not asked more")
    secure = not t.insecure or t.endpoint.startswith("https://")
    files = _tls_files(signal)
    try:
        channel = (
            grpc.secure_channel(
                where,
                grpc.ssl_channel_credentials(_read(files.ca), _read(files.key), _read(files.cert)),
            )
            if secure
            else grpc.insecure_channel(where)
        )
    except OSError as exc:
        return _unreadable(files, exc)
    try:
        call = channel.unary_unary(_GRPC_SERVICES[signal], request_serializer=None, response_deserializer=None)
        call(b"", timeout=timeout, metadata=tuple(t.headers.items()))
    except grpc.RpcError as exc:
        return _grpc_failure(where, signal, exc, timeout, t.endpoint if secure else "", t.headers)
    finally:
        channel.close()
    return Probe(True, f"an OTLP/gRPC receiver accepted an empty {signal} export" + (" (TLS)" if secure else ""))


def _grpc_failure(
    where: str, signal: str, exc: Any, timeout: float, endpoint: str, headers: Mapping[str, str]
) -> Probe:
    """What a failed ``Export`` call says; ``endpoint``: the target's when TLS was used, else empty."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    name = getattr(code, "name", str(code))
    details = str(exc.details() if callable(getattr(exc, "details", None)) else exc)
    if name == "UNIMPLEMENTED":
        return Probe(
            False,
            f"a gRPC server answers on {where} but takes no OTLP {signal} (UNIMPLEMENTED): not an OTLP receiver, or "
            f"one with no {signal} pipeline",
        )
    if name in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        answer = name + (f": {_short(details)}" if details else "")
        return Probe(False, f"the OTLP receiver at {where} refuses the credentials ({answer}): {_HEADERS_FIX}")
    if name == "INTERNAL" and "metadata" in details.lower():
        upper = sorted(h for h in headers if h != h.lower())
        return Probe(
            False,
            f"the request headers are not valid gRPC metadata ({_short(details)})"
            + (f": gRPC takes lowercase header names only, not {', '.join(upper)} (otlp_headers)" if upper else ""),
        )
    if name == "DEADLINE_EXCEEDED":
        return Probe(False, f"something accepts connections on {where} but gave no gRPC answer within {timeout:g} s")
    reason = _grpc_reason(details)
    lowered = reason.lower()
    if "http/2" in lowered or "http1" in lowered or "settings frame" in lowered:
        return Probe(
            False,
            f"something answers on {where} but it is not an OTLP/gRPC receiver: it does not speak HTTP/2 (an HTTP/1 "
            "server; if it is an OTLP/HTTP receiver, set TRADEOBS_OTLP_PROTOCOL=http/protobuf)",
        )
    if endpoint and ("ssl" in lowered or "tls" in lowered or "handshake" in lowered):
        fix = "an http:// endpoint" if endpoint.startswith("https://") else "TRADEOBS_OTLP_INSECURE=true"
        return Probe(False, f"TLS with {where} failed ({_short(reason)}); a plaintext receiver? then use {fix}")
    return Probe(False, f"something answers on {where} but the OTLP/gRPC call failed: {name}: {_short(reason)}")


def _grpc_reason(details: str) -> str:
    """gRPC's error text without its preamble: "failed to connect to all addresses; last error: UNKNOWN:
    ipv4:127.0.0.1:4317: Tls handshake failed ..." -> "Tls handshake failed ..."."""
    _, sep, last = details.partition("last error: ")
    text = last if sep else details
    head, sep, rest = text.partition(": ")  # a status name
    if sep and head.isupper():
        text = rest
    for family in ("ipv4:", "ipv6:", "unix:"):
        if text.startswith(family):
            text = text.split(": ", 1)[-1]
    return text
