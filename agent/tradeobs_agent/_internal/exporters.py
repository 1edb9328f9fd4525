"""Small wrappers around OTel exporters: never raise, count every outcome, say each outage, leak no secret.

Behaviour is added around the upstream exporters, not by forking them. Each outage of an exporter (its exports
went from working to failing) is said twice in the ``tradeobs`` log: when it begins (what failed, where) and when
it ends (how long it lasted, the failed attempts, what was kept and what dropped); in between there are only
counts in ``tradeobs.agent.exports.failed`` / ``tradeobs.agent.items.dropped``. A flapping collector cannot flood
the log: at most one outage per exporter is said per :attr:`_Counting.message_interval` (a minute), and the next
one said counts those that were not. The first outage said in a process is also printed on stderr (and its end)
when the log does not reach the console, as a configuration problem is. A collector that is down fails every signal
at once: the outages of the agent's exporters of one endpoint that begin within :data:`_GROUP_MOMENT` of the first
are said as ONE line naming the signals (:class:`_Group`), not one line per signal in the same words.

A batch of spans or log records the collector refuses as too large (its ``max_recv_msg_size_mib`` /
``max_request_body_size``) is no outage: sending it again whole cannot succeed, and kept for retries it held every
later batch behind it until it expired. It is sent again at once in two halves, each split the same way while it is
refused, so only an item too large by itself is dropped, counted (``tradeobs.agent.items.dropped{reason="too_large"}``);
the first refusal of each exporter is said once with the setting to change (:meth:`_Counting._split_too_large`).
A metrics export refused as too large is not split (the agent already sends metrics in requests of at most 3 MiB).

Other refusals the collector answers, which sending the same request again cannot change
(:func:`otel_private.grpc_refusal`, :func:`otel_private.http_refusal`), are told apart by what can change them:

* ``unauthorized`` (gRPC ``UNAUTHENTICATED``/``PERMISSION_DENIED``, HTTP 401/403): the token can be fixed on the
  collector's side while the service runs, so it is an outage: batches are kept in the retry buffer and sent again
  with back-off, the outage is said at once (also within another outage, past the once-a-minute limit, and on stderr
  when the log does not reach it) with the collector's answer and the setting (``otlp_headers``), and what the buffer
  finally gives up is counted as ``reason="unauthorized"``, not ``expired``/``retry_buffer_full``.
* ``unimplemented`` (gRPC ``UNIMPLEMENTED``, HTTP 404/405/501: no receiver for the signal there) and ``rejected``
  (``INVALID_ARGUMENT`` and the like, other HTTP 4xx): the batch is dropped at once, counted with that reason, so
  later batches are not held behind it; the first refusal of each kind is said once per exporter, naming the signal,
  the target and the setting. No outage (the collector answers).

Before, each of them was an outage said as "export failed", its batch kept at the head of the buffer until it expired.

``wrong_protocol`` (:func:`otel_private.grpc_wrong_protocol`, :func:`otel_private.http_wrong_protocol`): the other
protocol's receiver answered (gRPC sent to an OTLP/HTTP port, or the reverse). The SDK gives up at that first answer
(it retried it for its whole timeout); it is an outage said at once with the fix (``TRADEOBS_OTLP_PROTOCOL``), in
full once per receiver, and at shutdown the exporter is given up at once (what it keeps counted,
``reason="shutdown"``), not retried for the shutdown's bound.

Every failed export is said with the cause the exporter hook saw (``gRPC UNAVAILABLE: ...``, ``ConnectionError:
Connection refused``); the SDK's own lines about an export the agent makes are debug records
(:class:`DuplicateFilter`), so the console shows the failure once, in the agent's words.

An export the server accepts may answer OTLP ``partial_success``: it rejected some of the items
(:func:`otel_private.partial_success`, over gRPC and HTTP). Those are counted as dropped (``reason=
"rejected_by_server"``, not as exported), never sent again (the OTLP specification), and the first such answer of each
exporter is said once with the server's message (made safe to log, secrets masked); a warning with nothing rejected
is said once too. The export is a success: no outage.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import secret_values
from .._errors import Throttle, internal_error, on_console
from ..metrics import SelfMetrics
from . import otel_private
from .delivery import Delivery
from .otel_private import LogRecordExporter, LogRecordExportResult
from .otlp_encode import install_fast_log_encoding, install_fast_metric_encoding, install_fast_span_encoding
from .scrub import scrub_logs, scrub_metrics, scrub_spans

_LIVE: weakref.WeakSet[_Counting] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked worker starts with empty delivery buffers (the parent's batches are the parent's to send), and with no
    outage waiting to be said (the parent's to say; its timer thread is not in the child)."""
    _groups.clear()
    for exp in list(_LIVE):
        if exp.delivery is not None:
            exp.delivery.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Retry(NamedTuple):
    """How a span or log exporter keeps batches through a collector outage (``delivery.Delivery``)."""

    max_items: int
    max_age: float


def reachable(target: str, timeout: float = 0.3) -> bool:
    """Whether something accepts a TCP connection at an OTLP ``target`` (``http://host:port/...`` or ``host:port``)."""
    return not_answering(target, timeout) is None


def not_answering(target: str, timeout: float = 0.3, default_port: int | None = None) -> str | None:
    """Why nothing accepts a TCP connection at an OTLP ``target``, or None when something does. A target that names
    no port is checked at ``default_port`` (by default 443 for ``https``, else 4317): the port its exporter connects
    to (:attr:`_Counting.check_port`).

    Bounded by about twice ``timeout``: the host name is resolved on a daemon thread given ``timeout`` seconds (the
    system resolver has no time limit of its own: a slow DNS server held a shutdown for its whole bound), then the
    connection, to each address found in turn, gets ``timeout`` seconds in all. A resolution that has not finished
    by then is left to finish on its own.
    """
    url = urllib.parse.urlsplit(target if "//" in target else "//" + target)
    host = url.hostname or "localhost"
    try:
        port = url.port or default_port or (443 if url.scheme == "https" else 4317)
    except ValueError:  # a port that is not a number: nothing is listening there
        return "its port is not a number"
    found = resolve(host, port, timeout)
    if isinstance(found, str):
        return found
    why = "no address"
    end = time.monotonic() + timeout
    for family, kind, proto, _, addr in found:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(addr)
                return None
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
    return why


def resolve(host: str, port: int, timeout: float) -> list[Any] | str:
    """``socket.getaddrinfo`` for a TCP connection, given ``timeout`` seconds; on failure, why (a short phrase:
    :class:`Unresolved` when the name did not resolve in time). The system resolver has no bound of its own."""
    out: list[Any] = []
    error: list[str] = []

    def run() -> None:
        try:
            out.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:  # unknown name, no network, a name IDNA refuses
            error.append(f"{host} does not resolve ({exc})")

    t = threading.Thread(target=run, name="tradeobs-resolve", daemon=True)
    try:
        t.start()
    except RuntimeError:  # no new threads at interpreter shutdown (Python 3.12.0-3.12.1 atexit): resolve here
        run()
        return error[0] if error else out
    t.join(timeout)
    if t.is_alive():
        return Unresolved(f"{host} did not resolve within {timeout:g}s")
    return error[0] if error else out


class Unresolved(str):
    """:func:`not_answering`'s reason when the host name did not resolve within the check's bound: nothing is known
    of the collector. A slow resolver (a Kubernetes search-domain lookup) in front of a collector that answers is
    common: at shutdown such an exporter is not given up (it keeps the shutdown's deadline to deliver)."""


_REFUSED_CREDENTIALS = "the collector refuses the credentials (TRADEOBS_OTLP_HEADERS)"


def abandon_unreachable(deadline: float) -> list[str]:
    """Before the providers shut down: exporters whose collector does not answer give up now; the targets.

    A shutdown with the collector down would otherwise wait its whole bound in export retries; so would one whose
    collector refused its credentials at its last export (``unauthorized``), which give up now too. What those
    exporters still held is counted as dropped (``reason="shutdown"``), and why they gave up is kept for the
    shutdown message (:func:`take_shutdown_losses`). The check is bounded: a collector whose host name does not
    resolve within its short bound is not given up (it may well answer: :class:`Unresolved`). The others get
    ``deadline`` (a ``time.monotonic()`` value) to deliver what they keep.
    """
    _say_groups()  # outages that began and wait for the other signals: said before what the shutdown gives up
    checked: dict[str, str | None] = {}
    gone: list[str] = []
    for exp in list(_LIVE):
        if exp.closed:
            continue
        exp.deadline = deadline
        if exp._unauthorized:  # refused its credentials at its last export: the token will not change by then
            exp.gone_because = _REFUSED_CREDENTIALS
            exp.abandon()
            gone.append(exp.target)
            continue
        if exp.wrong_protocol is not None:  # the other protocol's receiver answered its last export: so it will now
            exp.gone_because = exp.wrong_protocol
            exp.abandon()
            gone.append(exp.target)
            continue
        key = f"{exp.target} {exp.check_port}"
        if key not in checked:
            checked[key] = not_answering(exp.target, default_port=exp.check_port)
        why = checked[key]
        if why is not None and not isinstance(why, Unresolved):  # a name still resolving: the deadline decides
            exp.gone_because = f"the collector did not answer at shutdown: {why}"
            exp.abandon()
            gone.append(exp.target)
    return gone


def give_up_all() -> None:
    """The shutdown ran out of time: what every exporter still keeps is counted as dropped (``reason="shutdown"``)
    now, on the caller's thread, so nothing the process loses at exit goes uncounted: its batch processor's
    queue (no longer exported), its kept batches and the batch it is sending."""
    _say_groups()
    for exp in list(_LIVE):
        if exp.batch is not None:
            n = otel_private.batch_abandon(exp.batch)
            if n:
                exp._dropped("shutdown", n)
        if exp.delivery is not None:
            exp.delivery.close(0.0, deliver=False)
            exp.delivery.settle(0.0)


def settle_deliveries(timeout: float) -> None:
    """After a shutdown that finished: wait (at most ``timeout`` s) for batches still being sent; one that has not
    come back by then is counted as dropped (``reason="shutdown"``) before the process exits."""
    deadline = time.monotonic() + timeout
    for exp in list(_LIVE):
        if exp.delivery is not None:
            exp.delivery.settle(max(0.0, deadline - time.monotonic()))


def take_shutdown_losses() -> dict[tuple[str, str], tuple[int, str | None]]:
    """Items the exporters gave up at shutdown since the last call, by ``(signal, target)``, with why the collector
    was given up at once (None: it was not; the shutdown's bound ran out): the agent's last word on exit."""
    out: dict[tuple[str, str], tuple[int, str | None]] = {}
    for exp in list(_LIVE):
        n, exp.lost_at_shutdown = exp.lost_at_shutdown, 0
        if n:
            key = (exp.signal, exp.target)
            before, why = out.get(key, (0, None))
            out[key] = (before + n, why or exp.gone_because)
    return out


def failing_targets() -> list[str]:
    """The OTLP targets whose last export failed (the live view's health, ``tradeobs doctor``)."""
    return sorted({exp.target for exp in list(_LIVE) if exp.last_error is not None})


def flush_deliveries(timeout: float) -> bool:
    """Wait (at most ``timeout`` s) until every exporter's kept batches are delivered or given up."""
    deadline = time.monotonic() + timeout
    ok = True
    for exp in list(_LIVE):
        if exp.delivery is not None:
            ok = exp.delivery.flush(max(0.0, deadline - time.monotonic())) and ok
    return ok


_log = logging.getLogger("tradeobs")
_REJECTED_BY_SERVER = "rejected_by_server"
_ITEMS = {"traces": "spans", "logs": "log records", "metrics": "points"}
_NO_CAUSE = "export failed"  # what a failed export is said as when the exporter gave no reason
_BATCH_SIZE = {"traces": "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "logs": "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"}
_console_lock = threading.Lock()
_console_told = False  # the first outage said in this process went to the console (see _Counting._say)
_console_kinds: set[str] = set()  # failures said in full once per process ("wrong_protocol <host:port>")
_GROUP_MOMENT = 2.0
"""Seconds: outages of the agent's exporters of one endpoint beginning this soon after the first are said together."""
_groups: dict[str, _Group] = {}  # host:port -> the outages beginning there, not said yet (under _console_lock)


def _endpoint_of(target: str) -> str:
    return urllib.parse.urlsplit(target if "//" in target else "//" + target).netloc


class _Outage:
    """One outage of one exporter: from its first failed export after a working one (or none) to the next success."""

    __slots__ = ("began", "console", "dropped", "failures", "said", "wall")

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.wall = time.time()
        self.failures = 1
        self.dropped = 0
        self.said = False  # its beginning was logged (else: one more not said, counted in the next one said)
        self.console = False  # its beginning was printed on stderr: its end is too


class _Group:
    """The outages of one endpoint's exporters (one per signal) that began within :data:`_GROUP_MOMENT` of the first:
    said as ONE line naming the signals, when every exporter of the agent sending there has failed or the moment is
    over, whichever comes first. A collector that is down failed every signal at once, and each said the outage in the
    same words: up to three lines on the console for one fact."""

    __slots__ = ("members", "timer")

    def __init__(self) -> None:
        # (exporter, its outage, the cause, what happens to its batches, the rest of its line)
        self.members: list[tuple[_Counting, _Outage, str, str, str]] = []
        self.timer: threading.Timer | None = None


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _say_group(key: str, group: _Group) -> None:
    """Say a group's outages as one line (the first exporter's words when it is alone)."""
    with _console_lock:
        if _groups.get(key) is not group:
            return  # said already (complete, recovered, shut down) by another thread
        del _groups[key]
    if group.timer is not None:
        group.timer.cancel()
    order = list(_ITEMS)  # traces, logs, metrics: the same line however the signals' exports interleaved
    members = sorted(group.members, key=lambda m: order.index(m[0].signal) if m[0].signal in order else len(order))
    first = members[0][0]
    signals = [m[0].signal for m in members]
    targets = {m[0].target for m in members}
    target = targets.pop() if len(targets) == 1 else f"{urllib.parse.urlsplit(first.target).scheme or 'http'}://{key}"
    causes = list(dict.fromkeys(m[2] for m in members))
    cause = causes[0] if len(causes) == 1 else "; ".join(f"{m[0].signal}: {m[2]}" for m in members)
    keeps_by: dict[str, list[str]] = {}
    for m in members:
        keeps_by.setdefault(m[3], []).append(m[0].signal)
    keeps = (
        next(iter(keeps_by))
        if len(keeps_by) == 1
        else "; ".join(f"{_and(sigs)}: {what}" for what, sigs in keeps_by.items())
    )
    text = (
        f"tradeobs: cannot export {_and(signals)} to {target} ({cause}): an outage began; the service keeps "
        f"running, {keeps}; failures are counted in tradeobs.agent.exports.failed"
    )
    text += "".join(dict.fromkeys(m[4] for m in members))
    printed = first._say(text, first=True)
    for m in members:
        m[1].console = printed or m[1].console


def _say_groups(exp: _Counting | None = None) -> None:
    """Say now what waits in the groups (all, or only ``exp``'s): at shutdown, or when ``exp`` recovers."""
    with _console_lock:
        waiting = [(k, g) for k, g in _groups.items() if exp is None or any(m[0] is exp for m in g.members)]
    for key, group in waiting:
        _say_group(key, group)


class _Counting:
    """What every wrapper does: count each export call and item, say each outage, never raise."""

    message_interval = 60.0
    """Seconds: at most one outage of an exporter is said per interval; the next one said counts the others."""

    def __init__(self, inner: Any, signal: str, target: str, selfm: SelfMetrics) -> None:
        _LIVE.add(self)
        self.inner = inner
        self.signal = signal
        self.target = target
        attrs = {"signal": signal, "exporter": type(inner).__name__}
        self._ok = selfm.exports_succeeded.bind(**attrs)
        self._failed = selfm.exports_failed.bind(**attrs)
        self._exported = selfm.items_exported.bind(**attrs)
        self._dropped_counter = selfm.items_dropped
        self.last_error: str | None = None
        self.last_success: float | None = None
        self.delivery: Delivery | None = None
        self.deadline: float | None = None  # set at shutdown: deliver kept batches until then
        self.batch: Any = None  # the SDK batch processor that exports through this one (set by its builder)
        self.closed = False
        self.inner_closed = False  # the upstream exporter was shut down: a send failing now is our own doing
        self.lost_at_shutdown = 0
        self.gone_because: str | None = None  # why its collector was given up at shutdown (abandon_unreachable)
        self._state = threading.Lock()
        self._outage: _Outage | None = None
        self._throttle = Throttle()  # outages said: at most one per message_interval
        self._said_wall = 0.0  # time.time() of the last outage said
        self.not_before = 0.0  # the collector's last throttling hint: no export before this time.monotonic() value
        self.hint: float | None = None  # that hint, in seconds (None: the last refusal came without one)
        self.refused_too_large: str | None = None  # set during an export the collector refused as too large
        self._said_too_large = False
        self.refusal: tuple[str, str] | None = None  # set during an export refused for good: (kind, the answer)
        self._unauthorized = False  # the last export was refused for its credentials: what is given up says so
        self.wrong_protocol: str | None = None  # the other protocol's receiver answered its last export: why to say
        self.cause: str | None = None  # what the last failed attempt got (the exporter hook's words), this export
        self._said_refusals: set[str] = set()  # the kinds of refusal said (once per exporter)
        self.rejected = 0  # items the server rejected in the exports it accepted (partial success), this export
        self.rejected_said: str | None = None  # its error_message (made safe to log)
        self.grouped = False  # built by the agent beside its other signals' exporters: an outage of their endpoint
        # beginning for several of them at once is said as one line (_Group); set by the builder (providers)

    @property
    def check_port(self) -> int:
        """The port the exporter connects to when its target names none, as ``tradeobs doctor`` probes it: 443 for
        OTLP/gRPC (gRPC's own default) and ``https``, 80 for OTLP/HTTP over ``http``. The shutdown's check used 4317
        for both: an OTLP/HTTP endpoint such as ``http://otel-gateway`` (port 80) was given up at shutdown when
        nothing listened on 4317 there, and what its batch processor still held counted as dropped."""
        if ".grpc" in type(self.inner).__module__ or self.target.startswith("https://"):
            return 443
        return 80 if "://" in self.target else 4317

    def watch_hints(self) -> None:
        """After the fast encoder is installed (it replaces the gRPC stub this wraps)."""
        otel_private.watch_throttling(
            self.inner, self._throttled, self._refusing_too_large, self._refusing, self._partially, self._attempt_failed
        )

    def _attempt_failed(self, detail: str) -> None:
        self.cause = detail

    def _export_inner(self, *args: Any, **kw: Any) -> Any:
        """``inner.export``, marked as the agent's: what the SDK logs meanwhile about its failure is the agent's to
        say (:class:`DuplicateFilter` turns it into a debug record; the cause is in the agent's own message)."""
        self.cause = None
        _inside.exporter = self
        try:
            return self.inner.export(*args, **kw)
        finally:
            _inside.exporter = None

    def _partially(self, rejected: int, message: str) -> None:
        """An accepted request's answer said ``partial_success`` (each request of the export adds its own)."""
        self.rejected += rejected
        if message and not self.rejected_said:
            self.rejected_said = message

    def _accepted(self, ok: bool, n: int) -> int:
        """After an export of ``n`` items (``ok``: accepted): how many the server rejected in its partial success,
        counted as dropped (``reason="rejected_by_server"``; the OTLP specification: not to be sent again) and said
        once per exporter (its warnings without a rejection, once as well). A failed export may hold some: a metrics
        export sent as several requests whose first ones the server took before a later one failed."""
        rejected, said = min(self.rejected, n), self.rejected_said
        self.rejected, self.rejected_said = 0, None
        if not (rejected or said):  # also for a failed export: a request of it taken before another one failed
            return 0
        if rejected:
            self._dropped(_REJECTED_BY_SERVER, rejected)
        kind = _REJECTED_BY_SERVER if rejected else "server_warning"
        with self._state:
            if kind in self._said_refusals:
                return rejected
            self._said_refusals.add(kind)
        items = _ITEMS.get(self.signal, "items")
        answer = f": {secret_values.mask(said)}" if said else " (with no message)"
        if rejected:
            text = (
                f"tradeobs: the OTLP server at {self.target} accepted {self.signal} but rejected {rejected} of "
                f"{n} {items}{answer}. The OTLP specification forbids sending them again: they are dropped, counted "
                f'in tradeobs.agent.items.dropped{{signal="{self.signal}", reason="{_REJECTED_BY_SERVER}"}}, and so '
                "is every later rejection of this kind (later ones are not said). The server's log or its answer says "
                "why (a backend's limits: attributes, span or record size, timestamps out of range, a quota)"
            )
        else:
            text = (
                f"tradeobs: the OTLP server at {self.target} accepted every {items[:-1]} of {self.signal} with a "
                f"warning{answer} (said once; nothing was dropped)"
            )
        self._say(text, first=False, console=bool(rejected) and not on_console())
        return rejected

    def _refusing_too_large(self, detail: str) -> None:
        self.refused_too_large = detail

    def _refusing(self, kind: str, detail: str) -> None:
        self.refusal = (kind, detail)

    def _refused_for_good(self, n: int, lost: int) -> bool:
        """The collector refused an export of ``n`` items (``lost`` of them lost if not kept) with :attr:`refusal`.
        ``unauthorized``: a failed export, kept (False); else the items are dropped now, counted (True)."""
        assert self.refusal is not None
        kind, detail = self.refusal
        if kind == "wrong_protocol":
            return self._wrong_protocol_refused(n, lost, detail)
        self.wrong_protocol = None
        if kind == "unauthorized":
            self._unauthorized = True
            self._outcome(False, n, self._unauthorized_text(detail), lost, tell="unauthorized")
            if self.deadline is not None and self.delivery is not None:
                # Refused during the shutdown: the token will not change by its end; no more attempts (a flush
                # waiting for one gives up now) and what is kept is counted as the shutdown's.
                self.gone_because = _REFUSED_CREDENTIALS
                self.not_before = time.monotonic() + self.delivery.max_age
            return False
        self._unauthorized = False
        self._failed.add(1)
        with self._state:
            self.last_error = f"{kind}: {detail}"
        if lost:
            self._dropped(kind, lost)
        self._tell_refused(kind, detail, n, lost)
        return True

    def _wrong_protocol_refused(self, n: int, lost: int, detail: str) -> bool:
        """The other protocol's receiver answered (gRPC sent to an OTLP/HTTP port, or the reverse): a failed export,
        kept (False) in case the service's collector is changed while it runs, said at once with the fix. At
        shutdown what is kept is given up at once (counted, ``reason="shutdown"``), not retried for the shutdown's
        whole bound: a newcomer's script hung for it at exit."""
        grpc = ".grpc" in type(self.inner).__module__
        mine, other = ("gRPC", "HTTP") if grpc else ("HTTP", "gRPC")
        setting = "http/protobuf" if grpc else "grpc"
        self.wrong_protocol = (
            f"it answers in HTTP/{1 if grpc else 2} only, as an OTLP/{other} receiver does, and this exporter sends "
            f"OTLP/{mine}"
        )
        text = (
            f"{self.wrong_protocol}; {detail}. Set TRADEOBS_OTLP_PROTOCOL={setting}, or give the collector's "
            f"OTLP/{mine} port ({4317 if grpc else 4318} by default) in TRADEOBS_OTLP_ENDPOINT"
        )
        self._outcome(False, n, text, lost, tell="wrong_protocol")
        if self.deadline is not None and self.delivery is not None:
            # Answered so during the shutdown: nothing will change by its end; no more attempts (a flush waiting
            # for one gives up now) and what is kept is counted as the shutdown's.
            self.gone_because = self.wrong_protocol
            self.not_before = time.monotonic() + self.delivery.max_age
        return False

    def _unauthorized_text(self, detail: str) -> str:
        setting = f"OTEL_EXPORTER_OTLP_HEADERS or OTEL_EXPORTER_OTLP_{self.signal.upper()}_HEADERS"
        return (
            f"the collector refused the credentials: {detail}; the agent sends the headers of otlp_headers "
            f"(TRADEOBS_OTLP_HEADERS; {setting} work too): set it to what the collector expects, such as "
            '"authorization=Bearer <token>"'
        )

    def _tell_refused(self, kind: str, detail: str, n: int, lost: int) -> None:
        """Say the first refusal of ``kind`` (``unimplemented``, ``rejected``) of this exporter."""
        with self._state:
            if kind in self._said_refusals:
                return
            self._said_refusals.add(kind)
        items = _ITEMS.get(self.signal, "items")
        http = "://" in self.target and ".grpc" not in type(self.inner).__module__
        sig = self.signal.upper()
        if kind == "unimplemented":
            what = f"does not take {self.signal}"
            if http and " 404" in detail:
                fix = (
                    f"no OTLP/HTTP receiver answers at that URL: TRADEOBS_OTLP_ENDPOINT is the receiver's base URL "
                    f"(such as http://collector:4318, the agent appends /v1/{self.signal}), "
                    f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT is used as given; or the collector has no {self.signal} "
                    "pipeline (its receiver serves only the signals of its pipelines)"
                )
            else:
                fix = (
                    f"the collector has no {self.signal} pipeline (its OTLP receiver serves only the signals of its "
                    f"pipelines), or this is not an OTLP receiver: add a {self.signal} pipeline, or send "
                    f"{self.signal} elsewhere with OTEL_EXPORTER_OTLP_{sig}_ENDPOINT"
                )
        else:
            what = f"rejected {self.signal}"
            fix = (
                "it refuses the request as it is (the collector's log says why; a collector whose exporter has no "
                "sending queue passes its backend's refusal on)"
            )
        if self.signal in _BATCH_SIZE:
            fate = f"the {n} {items} were dropped"
        else:
            fate = f"the export of {n} {items} failed ({lost} delta points dropped; cumulative points lose nothing)"
        self._say(
            f"tradeobs: the collector at {self.target} {what} ({detail}): {fix}. Sending them again cannot succeed: "
            f'{fate}, counted in tradeobs.agent.items.dropped{{signal="{self.signal}", reason="{kind}"}}, and so '
            "is every export refused this way (later ones are not said)"
            + ("; later batches are not held back." if self.signal in _BATCH_SIZE else "."),
            first=False,
            console=not on_console(),
        )

    def _split_too_large(self, items: Sequence[Any], detail: str, send: Callable[[Sequence[Any]], bool]) -> bool:
        """The collector refused ``items`` as too large: ``send`` each half again (a half refused too is split the
        same way), down to a single item, which is dropped (counted). A half that fails otherwise (an outage
        meanwhile) goes back to the retry buffer on its own, so what was delivered is not sent twice; with no buffer,
        False. True when done with ``items``."""
        self._failed.add(1)
        if len(items) == 1:
            self._too_large(1, 1, detail)
            return True
        self._too_large(len(items), 0, detail)
        mid = len(items) // 2
        done = True
        for part in (items[:mid], items[mid:]):
            if not send(part):
                if self.delivery is not None:
                    self.delivery.submit(list(part))
                else:
                    done = False
        return done

    def _too_large(self, n: int, lost: int, detail: str) -> None:
        """The collector refused an export of ``n`` items as too large: ``lost`` of them are dropped (counted,
        ``reason="too_large"``), and the first refusal of this exporter is said with its cause and what to change.
        The collector answers: this is no outage."""
        if lost:
            self._dropped("too_large", lost)
        with self._state:
            said, self._said_too_large = self._said_too_large, True
        if said:
            return
        items = _ITEMS.get(self.signal, "items")
        grpc = ".grpc" in type(self.inner).__module__
        limit = (
            "its OTLP receiver's max_recv_msg_size_mib (receivers.otlp.protocols.grpc, 4 MiB by default)"
            if grpc
            else "its OTLP receiver's max_request_body_size (receivers.otlp.protocols.http, 20 MiB by default) or "
            "the body size limit of a proxy in front of it"
        )
        if self.signal in _BATCH_SIZE:
            fix = (
                f"raise {limit}, or send smaller batches: {_BATCH_SIZE[self.signal]} (512 {items} by default; the "
                "agent has no batch size setting of its own, the SDK's batch processor reads this variable)"
            )
            lost_text = (
                f"the {n} {items} are sent again in smaller parts (only one too large by itself is dropped, counted "
                'in tradeobs.agent.items.dropped{reason="too_large"}), at the cost of more requests'
            )
        else:
            fix = (
                f"raise {limit} to at least 4 MiB: the agent sends metrics in requests of at most 3 MiB"
                if grpc
                else f"raise {limit}"
            )
            lost_text = (
                f"the export of {n} {items} failed ({lost} delta points dropped, counted in "
                'tradeobs.agent.items.dropped{reason="too_large"}; cumulative points are in every export and lose '
                "nothing once one passes)"
            )
        self._say(
            f"tradeobs: the collector at {self.target} refused {self.signal} as too large ({detail}): {lost_text}. "
            f"To fix it, {fix}. Later refusals of this exporter are only counted.",
            first=True,
        )

    def _throttled(self, delay: float) -> None:
        """The collector refused with a throttling hint (``Retry-After``, ``RetryInfo``): wait ``delay`` seconds."""
        self.hint = delay
        self.not_before = time.monotonic() + delay

    def _refused(self, before: float) -> str | None:
        """What a failed export is said as when the collector asked for a pause during it (``not_before`` moved)."""
        if self.not_before == before or self.hint is None:
            return None
        return f"refused, the collector asked to wait {self.hint:g} s before sending again"

    def _outcome(
        self, ok: bool, n: int, error: str | None = None, lost: int | None = None, tell: str | None = None
    ) -> None:
        """Count one export of ``n`` items; on failure without a retry buffer, ``lost`` of them (default all)
        are dropped. ``tell``: a kind of failure said at once the first time (see :meth:`_failing`)."""
        if ok:
            self._unauthorized = False
            self.wrong_protocol = None
            self._ok.add(1)
            self._exported.add(n)
            self.last_success = time.time()
            if self.last_error is not None:
                self._recovered()
            return
        self._failed.add(1)
        if not self.inner_closed:
            # Not after the agent shut the exporter down: a send cut short by that ("gRPC CANCELLED: Channel
            # closed!") is no outage, and the shutdown says what was not delivered.
            self._failing(error or _NO_CAUSE, tell)
        lost = n if lost is None else lost
        if self.delivery is None and lost:  # nothing keeps the batch: it is lost
            self._dropped("export_failed", lost)

    def _failing(self, error: str, tell: str | None = None) -> None:
        """A failed export: the beginning of an outage (said, at most once per ``message_interval``), or more of one.
        A failure of kind ``tell`` (``unauthorized``) not said before by this exporter is said now, whatever the
        limit, also within an outage that began otherwise, and on stderr when the log does not reach it."""
        with self._state:
            self.last_error = error
            force = tell is not None and tell not in self._said_refusals
            if force:
                self._said_refusals.add(str(tell))
            outage = self._outage
            began = outage is None
            unsaid: int | None = 0
            if outage is not None:
                outage.failures += 1
                if not force:
                    return
            else:
                outage = self._outage = _Outage()
                unsaid = self._throttle.allow(outage.began, self.message_interval)
                if unsaid is None and not force:
                    return
            outage.said = True
            last, self._said_wall = self._said_wall, outage.wall
        keeps = "batches are kept and sent again when it answers" if self.delivery is not None else "retries go on"
        if tell == "unauthorized":
            kept = (
                f"batches are kept (up to {self.delivery.max_items} {_ITEMS.get(self.signal, 'items')} for "
                f"{_duration(self.delivery.max_age)}) and sent again until it takes them"
                if self.delivery is not None
                else "delta points are dropped"
            )
            keeps = f'{kept}; what is given up is counted in tradeobs.agent.items.dropped{{reason="unauthorized"}}'
        if tell == "wrong_protocol":
            keeps = (
                "batches are kept and sent again (in case the receiver there is changed); at exit what is kept is "
                'given up at once, counted in tradeobs.agent.items.dropped{reason="shutdown"}'
                if self.delivery is not None
                else "retries go on"
            )
        which = "an outage began" if began else f"the outage that began at {_clock(outage.wall)} goes on"
        text = (
            f"tradeobs: cannot export {self.signal} to {self.target} ({error}): {which}; the service keeps "
            f"running, {keeps}; failures are counted in tradeobs.agent.exports.failed"
        )
        if error == _NO_CAUSE:
            # The exporter said only that it failed (gRPC against an OTLP/HTTP port, a proxy that is no collector):
            # the doctor's probe tells those apart.
            text += ". To see why, run `tradeobs doctor` with this service's settings: it checks what answers there"
        if unsaid:
            text += (
                f". {unsaid} more outage(s) of this exporter began after the one said at {_clock(last)} and were not "
                f"said one by one (at most one is said per {_duration(self.message_interval)})"
            )
        if force and tell == "wrong_protocol":
            # Said in full once per receiver: each signal's exporter meets the same one; the others in short.
            where = urllib.parse.urlsplit(self.target if "//" in self.target else "//" + self.target).netloc
            with _console_lock:
                first_here = f"wrong_protocol {where}" not in _console_kinds
                _console_kinds.add(f"wrong_protocol {where}")
            if not first_here:
                text = (
                    f"tradeobs: cannot export {self.signal} to {self.target} either: {self.wrong_protocol} (said "
                    f"above, with the fix); failures are counted in tradeobs.agent.exports.failed"
                )
            outage.console = self._say(text, first=False, console=first_here and not on_console()) or outage.console
        elif force:
            outage.console = self._say(text, first=False, console=not on_console()) or outage.console
        elif self.grouped:
            self._join_group(outage, error, keeps, text)
        else:
            outage.console = self._say(text, first=True)

    def _join_group(self, outage: _Outage, error: str, keeps: str, text: str) -> None:
        """The beginning of an outage, said with those of the other signals' exporters of the same endpoint that begin
        within :data:`_GROUP_MOMENT` (:class:`_Group`)."""
        key = _endpoint_of(self.target)
        rest = text.split("; failures are counted in tradeobs.agent.exports.failed", 1)[1]
        waits = True
        with _console_lock:
            group = _groups.get(key)
            if group is None:
                group = _groups[key] = _Group()
                timer = threading.Timer(_GROUP_MOMENT, _say_group, (key, group))
                timer.daemon = True
                try:
                    timer.start()
                    group.timer = timer
                except RuntimeError:
                    # No new thread at interpreter shutdown (Python 3.12+ refuses one in an atexit handler, where an
                    # export failing in the last flush begins its outage): said at once, not after the moment.
                    waits = False
            group.members.append((self, outage, error, keeps, rest))
            joined = {id(m[0]) for m in group.members}
            siblings = [e for e in list(_LIVE) if e.grouped and not e.closed and _endpoint_of(e.target) == key]
            complete = all(id(e) in joined for e in siblings)
        if complete or not waits:
            _say_group(key, group)

    def _recovered(self) -> None:
        """A successful export after failed ones: the end of the outage, said if its beginning was."""
        _say_groups(self)  # its beginning first, if it still waits for the other signals
        with self._state:
            outage, self._outage = self._outage, None
            self.last_error = None
        if outage is None or not outage.said:
            return
        items = _ITEMS.get(self.signal, "items")
        parts = [f"{outage.failures} failed export attempt(s)"]
        if self.delivery is not None:
            parts.append(f"{len(self.delivery)} {items} kept are being sent now")
        counted = " (counted in tradeobs.agent.items.dropped)" if outage.dropped else ""
        parts.append(f"{outage.dropped} {items} dropped{counted}")
        self._say(
            f"tradeobs: {self.signal} export to {self.target} recovered: the outage that began at "
            f"{_clock(outage.wall)} lasted {_duration(time.monotonic() - outage.began)}; " + ", ".join(parts),
            first=False,
            console=outage.console,
        )

    def _say(self, text: str, *, first: bool, console: bool = False) -> bool:
        """Log ``text`` (a warning, which starts with ``tradeobs:`` as every line the agent prints on stderr does, by
        whichever way it gets there: this print, the application's handlers or Python's last-resort handler); print it
        on stderr as well when it is the first outage said in this process (or the end of that one) and the log does
        not reach the console. Returns whether it was printed."""
        global _console_told
        _log.warning("%s", text)
        if first:
            with _console_lock:
                if _console_told:
                    return False
                _console_told = True
            console = not on_console()
        if not console:
            return False
        try:
            print(secret_values.mask(text), file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed or gone (a daemon): the line is in the log all the same
            return False
        return True

    def _dropped(self, reason: str, n: int) -> None:
        if self._unauthorized and reason in ("expired", "retry_buffer_full", "export_failed"):
            reason = "unauthorized"  # given up while the collector refused the credentials: that is why
        if reason == "shutdown":
            self.lost_at_shutdown += n
        with self._state:
            if self._outage is not None:
                self._outage.dropped += n
        self._dropped_counter.add(n, {"signal": self.signal, "reason": reason})

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Exception as exc:  # an upstream exporter's shutdown/flush raising is a bug there; never ours to raise
            internal_error(f"exporter.{self.signal}.{getattr(fn, '__name__', 'call')}", exc)
            return None

    def _keep(self, retry: Retry | None, send: Any, selfm: SelfMetrics) -> None:
        if retry is None or retry.max_items <= 0:
            return
        queued = selfm.queue_size.bind(queue=f"otlp_{self.signal}")
        selfm.queue_capacity.bind(queue=f"otlp_{self.signal}").set(retry.max_items)
        self.delivery = Delivery(
            self.signal, send, retry.max_items, retry.max_age, self._dropped, queued.set, lambda: self.not_before
        )

    def abandon(self) -> None:
        """Give up now (the collector does not answer): kept batches are counted as dropped, retries stop."""
        if self.closed:
            return
        self.closed = True
        _say_groups(self)
        if self.delivery is not None:
            self.delivery.close(0.0, deliver=False)
        self.inner_closed = True
        self._call(self.inner.shutdown)

    def shutdown(self, *args: Any, **kw: Any) -> None:
        if self.closed:  # abandoned already, or shut down twice
            return
        self.closed = True
        _say_groups(self)  # an outage beginning that waits for the other signals: said before the shutdown's lines
        if self.delivery is not None:
            left = 0.0 if self.deadline is None else self.deadline - time.monotonic()
            self.delivery.close(max(0.0, left))
        self.inner_closed = True
        self._call(self.inner.shutdown, *args, **kw)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        if self.delivery is not None and not self.delivery.flush(timeout_millis / 1000):
            return False
        result = self._call(getattr(self.inner, "force_flush", lambda **_: True), timeout_millis=timeout_millis)
        return result is not False  # an exporter with nothing to flush returns None


class CountingSpanExporter(_Counting, SpanExporter):
    """Counts outcomes and keeps batches through outages; an OTLP/gRPC exporter gets the cheaper encoder."""

    def __init__(self, inner: Any, signal: str, target: str, selfm: SelfMetrics, retry: Retry | None = None) -> None:
        super().__init__(inner, signal, target, selfm)
        self.fast_encoding = install_fast_span_encoding(inner)
        self.watch_hints()
        self._keep(retry, self._send, selfm)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if not self.fast_encoding:  # the fast encoder scrubs as it encodes; the reference one does not
            spans = scrub_spans(spans)
        if self.delivery is not None:
            self.delivery.submit(list(spans))
            return SpanExportResult.SUCCESS  # accepted: delivered by the sender thread, or counted when dropped
        return SpanExportResult.SUCCESS if self._send(spans) else SpanExportResult.FAILURE

    def _send(self, spans: Sequence[Any]) -> bool:
        """Export ``spans``; True when done with them (delivered, or refused as too large: dropped)."""
        before = self.not_before
        self.refused_too_large = None
        self.refusal = None
        self.rejected, self.rejected_said = 0, None
        try:
            result = self._export_inner(spans)
        except Exception as exc:  # an exporter bug must not kill the worker thread
            self._outcome(False, len(spans), repr(exc))
            return False
        ok = bool(result == SpanExportResult.SUCCESS)
        if not ok and self.refused_too_large is not None:
            return self._split_too_large(spans, self.refused_too_large, self._send)
        if not ok and self.refusal is not None:
            return self._refused_for_good(len(spans), len(spans))
        rejected = self._accepted(ok, len(spans))
        self._outcome(ok, len(spans) - rejected, None if ok else self._refused(before) or self.cause)
        return ok


class CountingLogExporter(_Counting, LogRecordExporter):
    """Counts outcomes and keeps batches through outages; an OTLP/gRPC exporter gets the cheaper encoder."""

    def __init__(self, inner: Any, signal: str, target: str, selfm: SelfMetrics, retry: Retry | None = None) -> None:
        super().__init__(inner, signal, target, selfm)
        self.fast_encoding = install_fast_log_encoding(inner)
        self.watch_hints()
        self._keep(retry, self._send, selfm)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        if not self.fast_encoding:  # the fast encoder scrubs as it encodes; the reference one does not
            batch = scrub_logs(batch)
        if self.delivery is not None:
            self.delivery.submit(list(batch))
            return LogRecordExportResult.SUCCESS
        return LogRecordExportResult.SUCCESS if self._send(batch) else LogRecordExportResult.FAILURE

    def _send(self, batch: Sequence[Any]) -> bool:
        """Export ``batch``; True when done with it (delivered, or refused as too large: dropped)."""
        before = self.not_before
        self.refused_too_large = None
        self.refusal = None
        self.rejected, self.rejected_said = 0, None
        try:
            result = self._export_inner(batch)
        except Exception as exc:
            self._outcome(False, len(batch), repr(exc))
            return False
        ok = bool(result == LogRecordExportResult.SUCCESS)
        if not ok and self.refused_too_large is not None:
            return self._split_too_large(batch, self.refused_too_large, self._send)
        if not ok and self.refusal is not None:
            return self._refused_for_good(len(batch), len(batch))
        rejected = self._accepted(ok, len(batch))
        self._outcome(ok, len(batch) - rejected, None if ok else self._refused(before) or self.cause)
        return ok


class CountingMetricExporter(_Counting, MetricExporter):
    def __init__(self, inner: MetricExporter, signal: str, target: str, selfm: SelfMetrics) -> None:
        _Counting.__init__(self, inner, signal, target, selfm)
        self.fast_encoding = install_fast_metric_encoding(inner)
        self.watch_hints()
        temporality, aggregation = otel_private.exporter_preferences(inner)
        MetricExporter.__init__(self, preferred_temporality=temporality, preferred_aggregation=aggregation)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any) -> MetricExportResult:
        # Points are counted after the export: the registry's families (otlp_encode.FamilyData) are read, and
        # their points counted, when they are encoded.
        if self.closed:  # given up at shutdown (abandon_unreachable, which said why): the last collection is not sent
            self._failed.add(1)
            lost = _delta_points(metrics_data)
            if lost:
                self._dropped("shutdown", lost)
            return MetricExportResult.FAILURE
        if time.monotonic() < self.not_before:  # the collector asked for a pause: not sent (cumulative: no loss)
            left = self.not_before - time.monotonic()
            self._outcome(
                False,
                _points(metrics_data),
                f"not sent: the collector asked to wait {self.hint or 0:g} s ({left:.1f} s left)",
                _delta_points(metrics_data),
            )
            return MetricExportResult.FAILURE
        if not self.fast_encoding:  # the fast encoder scrubs as it encodes; the reference one does not
            metrics_data = scrub_metrics(metrics_data)
        before = self.not_before
        self.refused_too_large = None
        self.refusal = None
        self.rejected, self.rejected_said = 0, None
        error: str | None = None
        try:
            result = self._export_inner(metrics_data, timeout_millis=timeout_millis, **kw)
        except Exception as exc:
            result, error = MetricExportResult.FAILURE, repr(exc)
        ok = result == MetricExportResult.SUCCESS
        points = _points(metrics_data)
        taken = otel_private.split_taken(self.inner)  # a split export's requests the server took, this call
        rejected = self._accepted(ok, points)
        if ok:
            self._outcome(True, points - rejected)
            return result  # type: ignore[no-any-return]
        # Failed, maybe after the server took its first requests (an export past 3 MiB goes as several): what they
        # held is exported (less what the server rejected, counted above), the rest failed; each point once.
        took, took_delta = _request_points(taken)
        if took > rejected:
            self._exported.add(took - rejected)
        left, lost = points - took, max(0, _delta_points(metrics_data) - took_delta)
        if self.refused_too_large is not None:
            self._failed.add(1)
            self._too_large(left, lost, self.refused_too_large)
        elif self.refusal is not None:
            self._refused_for_good(left, lost)
        else:
            self._outcome(False, left, error or self._refused(before) or self.cause, lost)
        return MetricExportResult.FAILURE


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _points(metrics_data: MetricsData) -> int:
    return sum(
        len(m.data.data_points) for rm in metrics_data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    )


def _request_points(requests: Sequence[bytes]) -> tuple[int, int]:
    """(points, delta points) in serialized ``ExportMetricsServiceRequest`` messages (read only for a failed
    export whose first requests arrived: rare, and a few MiB at most)."""
    if not requests:
        return 0, 0
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    points = delta = 0
    for raw in requests:
        for rm in ExportMetricsServiceRequest.FromString(raw).resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind is None:
                        continue
                    data = getattr(m, kind)
                    n = len(data.data_points)
                    points += n
                    if getattr(data, "aggregation_temporality", 0) == 1:  # AGGREGATION_TEMPORALITY_DELTA
                        delta += n
    return points, delta


def _delta_points(metrics_data: MetricsData) -> int:
    """The points a failed export loses. Cumulative points (all of the trading layer's, the OTLP exporter's
    default) and gauges lose nothing: the next export carries their values, and the failure is counted in
    ``tradeobs.agent.exports.failed``; delta points carry counts no later export repeats."""
    return sum(
        len(m.data.data_points)
        for rm in metrics_data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if getattr(m.data, "aggregation_temporality", None) == AggregationTemporality.DELTA
    )


class DuplicateFilter(logging.Filter):
    """Let a repeated message from the OTel SDK/exporters through once per window; count the rest.

    Also turns the SDK's "Queue full, dropping ..." warnings into counts of dropped items.
    """

    def __init__(self, selfm: SelfMetrics, window: float = 300.0) -> None:
        super().__init__()
        self._selfm = selfm
        self._window = window
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if record.levelno > logging.DEBUG and getattr(_inside, "exporter", None) is not None:
            # The SDK's own words about an export the agent makes ("Transient error ... retrying", "Failed to
            # export ..."): the agent says that failure once, with its cause (the exporter hook's words), so this is
            # a debug record (in the agent's log at debug level), not a second and third line on the console.
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if msg.startswith(_SHUTDOWN_CHATTER):
            # The exporter was shut down under a retry or a last batch; that export's failure is counted by the
            # wrapper around it (exports.failed, and items.dropped where nothing keeps the batch).
            return False
        if msg.startswith("Queue full"):
            self._selfm.items_dropped.add(1, {"signal": _signal_of(record), "reason": "queue_full"})
        key = (record.name, msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._window:
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
        record.exc_info = None  # one line, no traceback storm
        record.exc_text = None
        return True


_inside = threading.local()  # .exporter: the _Counting whose inner.export this thread is in (see _export_inner)

_SHUTDOWN_CHATTER = (
    "Shutdown in progress, aborting retry",
    "Exporter already shutdown, ignoring",
    "Shutdown called, ignoring",
)


def _signal_of(record: logging.LogRecord) -> str:
    text = " ".join(str(a) for a in (record.args or ()))
    for s in ("span", "log", "metric"):
        if s in text.lower():
            return {"span": "traces", "log": "logs", "metric": "metrics"}[s]
    return "unknown"


OTEL_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk._logs._internal.export",
)


def install_duplicate_filter(selfm: SelfMetrics) -> DuplicateFilter:
    f = DuplicateFilter(selfm)
    for name in OTEL_LOGGERS:
        logging.getLogger(name).addFilter(f)
    return f


def remove_duplicate_filter(f: DuplicateFilter) -> None:
    for name in OTEL_LOGGERS:
        logging.getLogger(name).removeFilter(f)
