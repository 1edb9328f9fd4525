"""The embedded Prometheus endpoint: the registry's snapshot as exposition text.

>>> renderer = Renderer(get_registry())                  # doctest: +SKIP
>>> renderer.render(openmetrics=False)[:40]              # doctest: +SKIP
b'# HELP trading_orders_submitted Orders s'

**Names.** An instrument gets exactly the name, unit suffix and label keys that
``opentelemetry-exporter-prometheus`` gives it (its own mapping functions, via
``otel_private.prometheus_mapping``, and prometheus_client's family rules for the
unit suffix and ``_total``), so a tradeobs instrument and an SDK instrument on the
same endpoint follow one convention (``tests/unit/test_prometheus.py`` holds the
two together for every case). The Collector's Prometheus exporter agrees with
that mapping except for unit ``1`` on a gauge (it appends ``_ratio``), which is
why no tradeobs instrument uses unit ``1`` on a gauge.

**Validity.** Both formats are valid to the letter (checked with prometheus_client's
OpenMetrics parser and ``promtool check metrics``): every family has HELP text; a
histogram with buckets below zero (``trading.order.slippage``) or that recorded a
negative value has no ``_sum`` (and so no ``_count``), as OpenMetrics 1.0 requires:
its buckets are there (``le="+Inf"`` counts every value) and the OTLP export keeps
the signed sum; OpenMetrics scrapes carry
``# UNIT`` lines and the histogram exemplars (trace and span ids).

**Intentional divergence, and why:** prometheus_client's exposition code builds a
``Sample`` per line and escapes every label on every scrape; at 1,000 symbols
(7,000 series) that is several times slower than this renderer, which caches each
series' label text and joins f-strings, holding the GIL (which the trading loop
needs) as briefly as possible (``benchmarks/cardinality.py`` measures both on the
same snapshot). :class:`PrometheusCollector` gives the same snapshot as
prometheus_client metric families, for a ``CollectorRegistry`` of your own (and
the tests compare the two outputs sample for sample). SDK instruments (e.g. HTTP
server metrics) are rendered by prometheus_client from the OTel reader's registry
and appended.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Literal
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.sdk.resources import Resource

from .._errors import internal_error, warn_once
from .._parsers import host_header_name, host_name, is_loopback_address, is_loopback_name
from ..metrics import (
    GaugeFamily,
    Histogram,
    HistogramFamily,
    HistogramPoint,
    Instrument,
    Registry,
    Snapshot,
    SumFamily,
)
from . import otel_private
from .gil import Slices
from .scrub import scrub_labels

__all__ = [
    "PrometheusCollector",
    "Renderer",
    "client_families",
    "foreign_host",
    "host_refused",
    "label_name",
    "prometheus_name",
    "serve",
]

PromType = Literal["counter", "gauge", "histogram"]

MAX_CONNECTIONS = 32
"""Connections the endpoint serves at once (a thread each, in the trading process); one past it is closed at once.
Prometheus scrapes one at a time per target; a few more for people and tools."""
READ_TIMEOUT = 10.0
"""Seconds of silence a connection gets: to send the rest of its request, or to read more of the answer."""
_RESERVED_HISTOGRAM_LABEL = "le"
_CHUNK_LINES = 1024  # a scrape's text is encoded this many lines at a time, the GIL offered in between
_names: dict[tuple[str, str, str], tuple[str, str]] = {}
_label_names: dict[str, str] = {}


def prometheus_name(name: str, unit: str, kind: PromType) -> str:
    """The family name ``opentelemetry-exporter-prometheus`` gives an instrument (counters without ``_total``).

    >>> prometheus_name("trading.order.submit_to_fill.latency", "s", "histogram")
    'trading_order_submit_to_fill_latency_seconds'
    """
    return _family_name(name, unit, kind)[0]


def _family_name(name: str, unit: str, kind: PromType) -> tuple[str, str]:
    """``(family name, mapped unit)``, cached."""
    key = (name, unit, kind)
    hit = _names.get(key)
    if hit is None:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        m = otel_private.prometheus_mapping()
        mapped = m.map_unit(unit or "")
        cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}[kind]
        hit = (cls(m.sanitize_full_name(name), "", labels=(), unit=mapped).name, mapped)
        if len(_names) < 100_000:
            _names[key] = hit
    return hit


def label_name(key: str) -> str:
    """The label name the exporter gives an attribute key (``venue:id`` -> ``venue_id``)."""
    out = _label_names.get(key)
    if out is None:
        out = otel_private.prometheus_mapping().sanitize_attribute(key) or "_"
        if len(_label_names) < 100_000:
            _label_names[key] = out
    return out


def _labels(attributes: Mapping[str, Any], histogram: bool) -> dict[str, str]:
    """Label name -> raw value, sorted by name: keys mapped as the exporter maps them.

    Keys that map to one label name (``a.b``, ``a-b`` and ``a_b`` are all ``a_b``) keep every value, joined with
    ``;`` in the order of the original keys, as the OTel spec's Prometheus compatibility says (the last value
    won, the others silently dropped):

    >>> _labels({"a_b": "y", "a.b": "x"}, False)
    {'a_b': 'x;y'}
    """
    labels: dict[str, str] = {}
    for k, v in sorted(attributes.items(), key=lambda kv: kv[0]):
        name = label_name(k)
        if histogram and name == _RESERVED_HISTOGRAM_LABEL:
            name = "attr_le"  # `le` is the bucket label: an attribute named so would make the family invalid
        value = "true" if v is True else "false" if v is False else str(v)
        labels[name] = value if name not in labels else f"{labels[name]};{value}"
    return dict(sorted(labels.items()))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(attributes: Mapping[str, Any], histogram: bool = False) -> str:
    """``k="v",...`` for one series, as the exporter writes it (sorted label names, escaped values)."""
    return ",".join(f'{k}="{_escape(v)}"' for k, v in _labels(attributes, histogram).items())


def _num(v: float | int) -> str:
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "+Inf" if v > 0 else "-Inf"
    try:
        return repr(float(v))
    except OverflowError:  # an integer sum past the largest float (every amount was finite)
        return "+Inf" if v > 0 else "-Inf"


def _help(text: str, om: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if om else text


def _has_sum(signed: bool, p: HistogramPoint) -> bool:
    """OpenMetrics: a histogram with negative buckets (or a negative value, so a sum that can fall) has no sum,
    and ``_count`` appears exactly when ``_sum`` does (the ``+Inf`` bucket still counts every value)."""
    return not signed and not p.min < 0


class _Text:
    """One scrape's lines, family by family: from snapshot families (a
    :class:`~tradeobs_agent.metrics.SnapshotVisitor`) or straight from the registry's instruments
    (:meth:`instrument`), offering the GIL to the trading thread between points (``offer``)."""

    def __init__(self, renderer: Renderer, om: bool, offer: Callable[[], None]) -> None:
        self.r = renderer
        self.om = om
        self.offer = offer
        self.lines: list[str] = []
        self.chunks: list[bytes] = []  # the lines so far, encoded a chunk at a time (see _point_done)

    def _point_done(self) -> None:
        """After each point: offer the GIL, and encode the lines once there are enough of them. Joining and
        encoding a whole scrape's text at the end (16 MB at 1,000 symbols) would hold the GIL for tens of ms."""
        self.offer()
        if len(self.lines) >= _CHUNK_LINES:
            self.chunks.append(("\n".join(self.lines) + "\n").encode("utf-8", "replace"))  # lone surrogates: '?'
            self.lines.clear()

    def chunks_done(self) -> list[bytes]:
        """Everything written, encoded."""
        if self.lines:
            self.chunks.append(("\n".join(self.lines) + "\n").encode("utf-8", "replace"))
            self.lines.clear()
        return self.chunks

    def _header(self, name: str, description: str, unit: str, kind: str) -> str:
        fam, mapped = _family_name(name, unit, kind)  # type: ignore[arg-type]
        # OpenMetrics names a counter family without its `_total`; the text format names it as its sample.
        meta = fam + "_total" if kind == "counter" and not self.om else fam
        lines = self.lines
        lines.append(f"# HELP {meta} {_help(description or name, self.om)}")
        lines.append(f"# TYPE {meta} {kind}")
        if self.om and mapped:
            lines.append(f"# UNIT {fam} {mapped}")
        return fam

    def sum(self, f: SumFamily) -> None:
        self._numbers(f.name, f.description, f.unit, f.monotonic, f.points)

    def gauge(self, f: GaugeFamily) -> None:
        self._numbers(f.name, f.description, f.unit, False, f.points)

    def histogram(self, f: HistogramFamily) -> None:
        self._histogram(f.name, f.description, f.unit, f.bounds, f.points)

    def instrument(self, inst: Instrument[Any]) -> None:
        """``inst``'s family as its snapshot family would be written, each point made, written and dropped in
        turn (:meth:`~tradeobs_agent.metrics.Instrument.points`): no family's points are kept alive."""
        if isinstance(inst, Histogram):
            self._histogram(inst.name, inst.description, inst.unit, inst.bounds, inst.points())
        else:
            self._numbers(inst.name, inst.description, inst.unit, inst.kind == "counter", inst.points())

    def _numbers(self, name: str, description: str, unit: str, counter: bool, points: Iterable[Any]) -> None:
        lines = self.lines
        mark = len(lines)
        fam = self._header(name, description, unit, "counter" if counter else "gauge") + ("_total" if counter else "")
        add, label, done = lines.append, self.r.label_body, self._point_done
        written = False
        for p in points:
            written = True
            lb = label(name, p.key, p.attributes)
            add(f"{fam}{{{lb}}} {_num(p.value)}" if lb else f"{fam} {_num(p.value)}")
            done()
        if not written:  # no series, or gauges never set: no family, as in a snapshot
            del lines[mark:]

    def _histogram(
        self, name: str, description: str, unit: str, bounds: tuple[float, ...], points: Iterable[HistogramPoint]
    ) -> None:
        lines = self.lines
        mark = len(lines)
        fam = self._header(name, description, unit, "histogram")
        add, om, done = lines.append, self.om, self._point_done
        les = [*(_num(b) for b in bounds), "+Inf"]
        signed = bool(bounds) and bounds[0] < 0
        written = False
        for p in points:
            written = True
            lb = self.r.label_body(name, p.key, p.attributes, histogram=True)
            sep = "," if lb else ""
            exemplars = p.exemplars if om else {}
            cumulative = 0
            for i, c in enumerate(p.counts):
                cumulative += c
                line = f'{fam}_bucket{{{lb}{sep}le="{les[i]}"}} {cumulative}'
                ex = exemplars.get(i)
                if ex is not None:
                    line += (
                        f' # {{trace_id="{ex.trace_id:032x}",span_id="{ex.span_id:016x}"}} '
                        f"{_num(ex.value)} {ex.time_ns / 1e9:.3f}"
                    )
                add(line)
            if _has_sum(signed, p):
                braces = f"{{{lb}}}" if lb else ""
                add(f"{fam}_count{braces} {cumulative}")
                add(f"{fam}_sum{braces} {_num(p.sum)}")
            done()
        if not written:
            del lines[mark:]


class Renderer:
    """Text for the registry's snapshot, in Prometheus text 0.0.4 or OpenMetrics 1.0.

    ``source`` replaces the registry's own snapshot: in a worker group, the whole service's (every worker's
    snapshot merged, SDK instruments included).
    """

    def __init__(
        self,
        registry: Registry,
        resource: Callable[[], Resource] | None = None,
        source: Callable[[], Snapshot] | None = None,
    ) -> None:
        self.registry = registry
        self.resource = resource
        self.source = source
        self._labels: dict[tuple[str, Any, bool], str] = {}

    def label_body(self, name: str, key: Any, attributes: Mapping[str, Any], histogram: bool = False) -> str:
        """The label text of one series, built once and cached (bounded)."""
        ck = (name, key, histogram)
        body = self._labels.get(ck)
        if body is None:
            body = _label_text(attributes, histogram)
            if len(self._labels) < 1_000_000:
                self._labels[ck] = body
        return body

    def render(self, openmetrics: bool = False, snapshot: Snapshot | None = None) -> bytes:
        """One scrape's body; ``snapshot`` defaults to a fresh one of the registry (or of ``source``)."""
        return b"".join(self.render_chunks(openmetrics, snapshot))

    def render_chunks(
        self, openmetrics: bool = False, snapshot: Snapshot | None = None, eof: bool = True
    ) -> list[bytes]:
        """:meth:`render`'s body in pieces, to be sent as they are: joining them is a copy of the whole body
        (16 MB at 1,000 symbols), with the GIL held. ``eof=False``: OpenMetrics without its ``# EOF`` line,
        for a body that goes on (the SDK instruments' part ends with it)."""
        slices = Slices()
        text = _Text(self, openmetrics, slices.offer)
        if self.resource is not None:
            body = _label_text(dict(sorted(self.resource().attributes.items())))
            # OpenMetrics names the family "target" (type info) and the sample target_info.
            text.lines.append(
                "# HELP target Target metadata\n# TYPE target info"
                if openmetrics
                else "# HELP target_info Target metadata\n# TYPE target_info gauge"
            )
            text.lines.append(f"target_info{{{body}}} 1")
        if snapshot is None and self.source is None:
            # Straight from the instruments, one point alive at a time (Instrument.points): a snapshot's points,
            # all alive until the last line, reach the collector's oldest generation at 1,000 symbols and set off
            # full collections, which stop the trading thread for tens of milliseconds.
            self.registry.run_collect_hooks()
            for inst in self.registry.instruments():
                text.instrument(inst)
        else:
            snap = snapshot if snapshot is not None else self.source()  # type: ignore[misc]
            for _ in snap.accept(text):
                pass
        if openmetrics and eof:
            text.lines.append("# EOF")
        return text.chunks_done()


class _ClientFamilies:
    """Snapshot families -> prometheus_client metric families (a :class:`~tradeobs_agent.metrics.SnapshotVisitor`)."""

    def sum(self, f: SumFamily) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        cls = CounterMetricFamily if f.monotonic else GaugeMetricFamily
        return self._numbers(cls, f, "counter" if f.monotonic else "gauge")

    def gauge(self, f: GaugeFamily) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        return self._numbers(GaugeMetricFamily, f, "gauge")

    def _numbers(self, cls: Any, f: SumFamily | GaugeFamily, kind: PromType) -> Any:
        name, unit = _family_name(f.name, f.unit, kind)
        fam = _Family(lambda names: cls(name, f.description or f.name, labels=names, unit=unit))
        for p in f.points:
            fam.add(_labels(p.attributes, False), p.value)
        return fam.first

    def histogram(self, f: HistogramFamily) -> Any:
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.samples import Exemplar

        name, unit = _family_name(f.name, f.unit, "histogram")
        fam = _Family(lambda names: HistogramMetricFamily(name, f.description or f.name, labels=names, unit=unit))
        les = [*(_num(b) for b in f.bounds), "+Inf"]
        for p in f.points:
            buckets: list[Any] = []
            cumulative = 0
            for i, c in enumerate(p.counts):
                cumulative += c
                ex = p.exemplars.get(i)
                if ex is None:
                    buckets.append((les[i], cumulative))
                else:
                    e = Exemplar(
                        {"trace_id": f"{ex.trace_id:032x}", "span_id": f"{ex.span_id:016x}"},
                        ex.value,
                        float(f"{ex.time_ns / 1e9:.3f}"),
                    )
                    buckets.append((les[i], cumulative, e))
            fam.add(_labels(p.attributes, True), buckets, p.sum if _has_sum(f.signed, p) else None)
        return fam.first


class _Family:
    """One prometheus_client family whose series may have different label names (``side`` on one, ``venue`` on
    another): a prometheus_client family pairs every series' values with the label names it was created with,
    so ``{venue="XNAS"}`` came out as ``{side="XNAS"}`` and a label the first series lacked was dropped. Each set
    of names gets a family of its own; their samples go to the first one (``first``), in the points' order."""

    def __init__(self, make: Callable[[list[str]], Any]) -> None:
        self.make = make
        self.first: Any = None
        self._by_names: dict[tuple[str, ...], Any] = {}

    def add(self, labels: Mapping[str, str], *value: Any) -> None:
        names = tuple(labels)
        fam = self._by_names.get(names)
        if fam is None:
            fam = self._by_names[names] = self.make(list(names))
            if self.first is None:
                self.first = fam
        before = len(fam.samples)
        fam.add_metric(list(labels.values()), *value)
        if fam is not self.first:
            self.first.samples.extend(fam.samples[before:])


class PrometheusCollector:
    """The registry as a prometheus_client collector: ``CollectorRegistry().register(PrometheusCollector(reg))``.

    The same snapshot and names as the embedded endpoint, rendered by prometheus_client's own exposition code
    (for an application that already serves a prometheus_client registry; several times slower at high series
    counts than the embedded endpoint).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        return client_families(self.registry.snapshot())


def client_families(snapshot: Snapshot) -> Iterator[Any]:
    """A snapshot as prometheus_client metric families (names, labels and rules as :class:`Renderer`)."""
    for fam in snapshot.accept(_ClientFamilies()):
        if fam is not None:
            yield fam


class _Server(ThreadingMixIn, WSGIServer):
    """The stdlib's threading WSGI server, bounded: a thread per connection, at most ``MAX_CONNECTIONS`` of them.

    Unbounded, a client that sends part of a request and then nothing held a thread of the trading process for ever
    (200 such connections were 200 threads, still there after 12 s; at about 300, new connections waited tens of
    seconds to be accepted). The handler's socket has a ``READ_TIMEOUT`` (:class:`_Quiet`), so a served connection
    ends within that much silence; one past ``MAX_CONNECTIONS`` is closed unanswered. ``refused(reason)`` counts
    both (``busy``, ``timeout``)."""

    daemon_threads = True
    refused: Callable[[str], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.max_connections = MAX_CONNECTIONS  # read at start: a test may set it smaller
        self._active = 0
        self._count = threading.Lock()
        super().__init__(*args, **kwargs)

    def count(self, reason: str) -> None:
        if self.refused is not None:
            self.refused(reason)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count:
            busy = self._active >= self.max_connections
            if not busy:
                self._active += 1
        if busy:
            self.count("busy")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # its thread ends in process_request_thread
        except BaseException:  # no thread started (none left): nothing will end it
            with self._count:
                self._active -= 1
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count:
                self._active -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request that failed outside the app (which counts its own errors): the socketserver printed a traceback
        on stderr for each. A client silent for ``READ_TIMEOUT`` or gone is counted; anything else is ours."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, TimeoutError):
            self.count("timeout")
        elif isinstance(exc, OSError):  # the client went away mid-request: nothing to answer
            return
        elif exc is not None:
            internal_error("prometheus.request", exc)


_LOCAL_ADDRESS = "tradeobs.local_address"


class _Answer(ServerHandler):
    """wsgiref's handler, whose errors go to the server's count: the app catches and counts its own, so what reaches
    here is a client that stopped reading the answer (a write silent for ``READ_TIMEOUT``), which wsgiref printed on
    stderr as a traceback."""

    server: _Server | None = None

    def log_exception(self, exc_info: Any) -> None:
        if self.server is not None:
            self.server.count("timeout" if isinstance(exc_info[1], TimeoutError) else "error")


class _Quiet(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        # Request reads and answer writes through the connection's files; read now: a test may set it smaller.
        self.connection.settimeout(READ_TIMEOUT)

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass

    def handle(self) -> None:
        """``WSGIRequestHandler.handle`` (Python 3.11-3.13), with :class:`_Answer` for its handler."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # an error code has been sent
            return
        handler = _Answer(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]  # as in WSGIRequestHandler.handle
            self.get_stderr(),
            self.get_environ(),
            multithread=False,
        )
        handler.server = self.server if isinstance(self.server, _Server) else None
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's backpointer for logging
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def get_environ(self) -> dict[str, Any]:
        """WSGI's environ, plus the address the connection arrived on (as the ASGI ``scope["server"]``): on a
        server listening on 0.0.0.0, a request from this machine through 127.0.0.1 arrives on loopback."""
        environ: dict[str, Any] = super().get_environ()
        try:
            environ[_LOCAL_ADDRESS] = str(self.connection.getsockname()[0])
        except OSError:  # the connection is already gone: nothing to answer
            environ[_LOCAL_ADDRESS] = ""
        return environ


class _Documented:
    """The SDK instruments' families (a prometheus_client registry), each with HELP text: an instrument made without a
    description (common in libraries) had an empty HELP, which ``promtool check metrics`` refuses ("no help text");
    it gets its name, as the agent's own families without a description do. Their label values are scrubbed as
    every attribute leaving the process is (``scrub.scrub_labels``): the OTel reader renders the SDK's points as
    recorded, and ``counter.add(1, {"api_key": ...})`` or a ``password=...`` value was on the page in clear (the
    agent's own instruments mask theirs when a series is bound)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        for family in self.registry.collect():
            if not family.documentation.strip():
                family.documentation = family.name
            samples = family.samples
            for i, sample in enumerate(samples):
                labels = scrub_labels(sample.labels)
                if labels is not sample.labels:
                    samples[i] = sample._replace(labels=dict(labels))
            yield family


def foreign_host(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request to the endpoint on a loopback address is refused for its ``Host`` header (DNS rebinding).

    A web page the desk user visits can make its own name resolve to 127.0.0.1 and read ``/metrics`` (positions,
    P&L, orders) as its own origin; its requests still carry its name in ``Host``. Served: a loopback name or
    address (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``: what Prometheus sends for a ``127.0.0.1:PORT`` or
    ``localhost:PORT`` target), a name in ``allowed`` (``prometheus_allowed_hosts``), or no ``Host`` at all (HTTP/1.0
    clients; a browser always sends one). The same rule as the live view's (``live.auth.foreign_host``).

    >>> foreign_host("localhost:9464", frozenset()), foreign_host("rebind.example:9464", frozenset())
    (False, True)
    """
    if header is None:
        return False
    name = host_header_name(header)
    return name is None or not (is_loopback_name(name) or name in allowed)


def host_refused(name: str | None) -> str:
    """The 403 body for a refused ``Host``: the setting, and the exact value to put in it."""
    if name is None:
        setting = "Add the host name, without the port, to prometheus_allowed_hosts (TRADEOBS_PROMETHEUS_ALLOWED_HOSTS)"
    else:
        setting = (
            f"Add {name} to prometheus_allowed_hosts (TRADEOBS_PROMETHEUS_ALLOWED_HOSTS={name}; the name only, no port)"
        )
    return (
        "this host name is not allowed: the Prometheus endpoint on a loopback address answers only localhost and "
        f"loopback addresses (a guard against DNS rebinding). {setting}, or scrape 127.0.0.1:PORT or localhost:PORT\n"
    )


def serve(
    host: str,
    port: int,
    renderer: Renderer,
    sdk_registry: Any,
    allowed_hosts: Iterable[str] = (),
    refused: Callable[[str], None] | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on a daemon thread: the registry's text, then the SDK instruments' (``sdk_registry``,
    a prometheus_client registry; None when the renderer's snapshot already holds them).

    A request that arrived on a loopback address whose ``Host`` is no loopback name, not in ``allowed_hosts`` and
    not the name the server listens by (``host``) gets 403 (:func:`foreign_host`; ``refused("host")`` counts it). On
    any other address (a container scraped by its service name on its interface's address) the port is reachable
    from elsewhere without any rebinding: not checked. Connections are bounded (:class:`_Server`: ``refused("busy")``,
    ``refused("timeout")``)."""
    from prometheus_client import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    sdk_part = _Documented(sdk_registry) if sdk_registry is not None else None
    bound_name = host_name(host)  # the name it listens by (an /etc/hosts alias of this machine) is the user's own
    allowed = frozenset(allowed_hosts) | ({bound_name} if bound_name else set())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        on_loopback = is_loopback_address(environ.get(_LOCAL_ADDRESS, ""))
        if on_loopback and foreign_host(environ.get("HTTP_HOST"), allowed):
            header = str(environ.get("HTTP_HOST"))
            name = host_header_name(header)
            if refused is not None:
                refused("host")
            warn_once(
                "prometheus:host",
                "tradeobs: the Prometheus endpoint refused a request for Host %s (loopback address: a web page may be "
                "using DNS rebinding to read the metrics). If that is a name you scrape this endpoint by, add it to "
                "prometheus_allowed_hosts (TRADEOBS_PROMETHEUS_ALLOWED_HOSTS=%s). Counted in "
                "tradeobs.agent.prometheus.refused; said once",
                ascii(header[:100]),
                name or "NAME",
            )
            refusal = host_refused(name).encode()
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(refusal))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [refusal]
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics\n"]
        om = "application/openmetrics-text" in environ.get("HTTP_ACCEPT", "")
        try:
            sdk = (generate_openmetrics if om else generate_latest)(sdk_part) if sdk_part is not None else b""
            # OpenMetrics has one # EOF, at the very end: the SDK part's when there is one
            body = [*renderer.render_chunks(openmetrics=om, eof=not sdk), sdk]
        except Exception as exc:  # a broken scrape is a bug; it must not kill the server thread
            internal_error("prometheus.scrape", exc)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"scrape failed: {exc!r}\n".encode()]
        if om:
            ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8"
        else:
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        headers = [("Content-Type", ctype)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            gz = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: the gzip format
            body = [*(gz.compress(chunk) for chunk in body), gz.flush()]
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(sum(len(chunk) for chunk in body))))
        start_response("200 OK", headers)
        return body  # sent a piece at a time, never joined into one copy

    server = make_server(host, port, app, _Server, handler_class=_Quiet)
    server.refused = refused
    thread = threading.Thread(target=server.serve_forever, name="tradeobs-prometheus", daemon=True)
    thread.start()
    return server, thread
