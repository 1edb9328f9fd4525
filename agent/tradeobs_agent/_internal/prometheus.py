"""The embedded Prometheus endpoint: the registry rendered straight to exposition text.

>>> renderer = Renderer(get_registry())                  # doctest: +SKIP
>>> renderer.render(openmetrics=False)[:40]              # doctest: +SKIP
b'# HELP trading_orders_submitted Orders s'

Intentional divergence from the usual OTel setup: SDK instruments still reach
the endpoint through ``opentelemetry-exporter-prometheus``, but tradeobs
instruments do not go through it. That path converts every point into OTel
``MetricsData`` and back into prometheus_client objects, about 1.2 s per scrape
at 1,000 symbols (7,000 series) on this machine; reading the series directly is
an order of magnitude cheaper. Names follow the same OTel -> Prometheus rules as
the Collector's exporter (``_total`` on counters, UCUM unit suffixes such as
``s`` -> ``_seconds``, ``1`` on a gauge -> ``_ratio``, ``{annotations}`` dropped),
so a dashboard query works against either. OpenMetrics scrapes (what Prometheus
asks for by default) also carry the histogram exemplars (trace and span ids).

prometheus_client's own exposition builds a ``Sample`` per line and escapes every
label on every scrape (about 10 us a line: 0.6 s at 1,000 symbols). Here each
series' label text is built once and cached, and lines are joined from
f-strings, so a scrape holds the GIL, which the trading loop needs, as briefly as
possible. SDK instruments (e.g. HTTP server metrics) are still rendered by
prometheus_client from the OTel reader's registry and appended.
"""

from __future__ import annotations

import gzip
import math
import re
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.sdk.resources import Resource

from ..metrics import BoundCounter, BoundGauge, BoundHistogram, Registry

_UNITS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "Hz": "hertz",
    "%": "percent",
    "Cel": "celsius",
}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_UNDERSCORES = re.compile(r"__+")


def _clean(name: str) -> str:
    out = _UNDERSCORES.sub("_", _INVALID.sub("_", name))
    return out if not out[:1].isdigit() else "_" + out


def unit_suffix(unit: str, kind: str) -> str:
    """The Prometheus suffix for an OTel unit (empty for none or annotations like ``{order}``)."""
    unit = re.sub(r"\{[^}]*\}", "", unit or "").strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind == "gauge" else ""
    if "/" in unit:
        num, _, den = unit.partition("/")
        per = {"s": "second", "m": "minute", "h": "hour", "d": "day"}.get(den, _clean(den))
        return f"{_UNITS.get(num, _clean(num))}_per_{per}" if num else f"per_{per}"
    return _UNITS.get(unit, _clean(unit))


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """``trading.order.submit_to_fill.latency`` + ``s`` -> ``trading_order_submit_to_fill_latency_seconds``.

    For counters the returned name excludes ``_total``: prometheus_client adds it.
    """
    base = _clean(name)
    suffix = unit_suffix(unit, kind)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if kind == "counter" and base.endswith("_total"):
        base = base[: -len("_total")]
    return base


def _label_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(items: Any) -> str:
    """``k="v",...`` for ``(key, value)`` pairs: names cleaned, values escaped."""
    return ",".join(f'{_clean(k)}="{_label_value(v)}"' for k, v in items)


def _num(v: float | int) -> str:
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


class Renderer:
    """Text for the registry's series, in Prometheus text 0.0.4 or OpenMetrics 1.0."""

    def __init__(self, registry: Registry, resource: Callable[[], Resource] | None = None) -> None:
        self.registry = registry
        self.resource = resource
        self._labels: dict[tuple[str, Any], str] = {}
        self._names: dict[str, str] = {}

    def _label_body(self, inst_name: str, series: Any) -> str:
        key = (inst_name, series.key)
        body = self._labels.get(key)
        if body is None:
            body = _labels(series.attributes.items())
            if len(self._labels) < 1_000_000:
                self._labels[key] = body
        return body

    def render(self, openmetrics: bool = False) -> bytes:
        reg = self.registry
        reg.run_collect_hooks()
        out: list[str] = []
        add = out.append
        if self.resource is not None:
            attrs = sorted(self.resource().attributes.items())
            body = _labels(attrs)
            # OpenMetrics names the family "target" (type info) and the sample target_info.
            add(
                "# HELP target Target metadata\n# TYPE target info"
                if openmetrics
                else "# HELP target_info Target metadata\n# TYPE target_info gauge"
            )
            add(f"target_info{{{body}}} 1")
        for inst in reg.instruments():
            series = inst.series()
            if not series:
                continue
            kind = "gauge" if inst.kind == "updowncounter" else inst.kind
            name = self._names.get(inst.name)
            if name is None:
                name = self._names[inst.name] = prometheus_name(inst.name, inst.unit, kind)
            doc = (inst.description or inst.name).replace("\\", "\\\\").replace("\n", "\\n")
            lines: list[str] = [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
            if kind == "counter":
                for s in series:
                    if isinstance(s, BoundCounter):
                        lb = self._label_body(inst.name, s)
                        lines.append(f"{name}_total{{{lb}}} {_num(s.value)}" if lb else f"{name}_total {_num(s.value)}")
            elif kind == "gauge":
                for s in series:
                    value = s.value if isinstance(s, BoundGauge | BoundCounter) else None
                    if value is not None:
                        lb = self._label_body(inst.name, s)
                        lines.append(f"{name}{{{lb}}} {_num(value)}" if lb else f"{name} {_num(value)}")
            else:
                for s in series:
                    if isinstance(s, BoundHistogram):
                        self._histogram(lines, name, inst.name, s, openmetrics)
            if len(lines) > 2:
                out.extend(lines)
        if openmetrics:
            add("# EOF")
        return ("\n".join(out) + "\n").encode()

    def _histogram(self, lines: list[str], name: str, inst_name: str, s: BoundHistogram, om: bool) -> None:
        counts, total, _, _ = s.snapshot()
        exemplars = dict(s.exemplars) if om else {}
        lb = self._label_body(inst_name, s)
        sep = "," if lb else ""
        cumulative = 0
        bounds = s._bounds
        for i, c in enumerate(counts):
            cumulative += c
            le = _num(bounds[i]) if i < len(bounds) else "+Inf"
            line = f'{name}_bucket{{{lb}{sep}le="{le}"}} {cumulative}'
            ex = exemplars.get(i)
            if ex is not None:
                value, t_ns, trace_id, span_id = ex
                line += f' # {{trace_id="{trace_id:032x}",span_id="{span_id:016x}"}} {_num(value)} {t_ns / 1e9:.3f}'
            lines.append(line)
        braces = f"{{{lb}}}" if lb else ""
        lines.append(f"{name}_count{braces} {cumulative}")
        lines.append(f"{name}_sum{braces} {_num(total)}")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass


def serve(host: str, port: int, renderer: Renderer, sdk_registry: Any) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on a daemon thread: the registry's text, then the SDK instruments'."""
    from prometheus_client import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics\n"]
        om = "application/openmetrics-text" in environ.get("HTTP_ACCEPT", "")
        try:
            ours = renderer.render(openmetrics=om)
            sdk = (generate_openmetrics if om else generate_latest)(sdk_registry)
        except Exception as exc:  # a broken scrape must not kill the server thread
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"scrape failed: {exc!r}\n".encode()]
        if om:
            body = ours[: -len(b"# EOF\n")] + sdk  # the SDK part ends with the one # EOF
            ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8"
        else:
            body = ours + sdk
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        headers = [("Content-Type", ctype)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    server = make_server(host, port, app, _Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="tradeobs-prometheus", daemon=True)
    thread.start()
    return server, thread
