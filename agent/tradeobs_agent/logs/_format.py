"""Worker side: turn a captured entry into one structured, redacted record. Never raises.

>>> b = RecordBuilder(Redactor(), {"service.name": "algo-1"})        # doctest: +SKIP
>>> rec = b.build(entry)                                             # doctest: +SKIP
>>> rec.fields["message"], rec.stream                                # doctest: +SKIP
('order o-1 filled', 'execution')

Bad input always produces a record: ``%``-format mismatches, broken
``__str__``/``__repr__``, bytes, recursive or unserializable objects and huge
messages are turned into text with a marker, and ``tradeobs.error`` names
what went wrong (``format_error``, ``truncated``, ``unserializable``...).
"""

from __future__ import annotations

import logging
import numbers
import sys
import time
import traceback
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from opentelemetry import trace

from .. import secret_values
from .._errors import internal_error
from ..redaction import MASK, URL_ATTRIBUTES, Redactor, flat_auth_fields
from . import links
from ._capture import _RESERVED, EXPORTED, PRINTED, STREAMS, RawCapture

__all__ = ["MAX_ATTRS", "MAX_MESSAGE", "Built", "RecordBuilder", "dumps", "safe_str"]

MAX_MESSAGE = 32 * 1024
"""Longer messages are cut here, with a ``...[truncated N chars]`` marker."""
MAX_VALUE = 8 * 1024
MAX_ATTRS = 64
# Text field values up to _TEXT_LEN characters keep their redacted text, in two generations of _TEXTS entries: the
# redaction (1-1.5 us each: a dozen rule groups' gates) runs once per distinct value, not once per line. At most
# ~2 x 1,024 x 64 characters (~0.3 MiB); one-off values pass through.
_TEXT_LEN = 64
_TEXTS = 1024
"""Extra attributes kept per record (the OTel SDK's default limit is 128)."""
_MAX_DEPTH = 5
_MAX_ITEMS = 100
_LEVEL_NAMES = {5: "TRACE", 25: "SUCCESS"}
_OTEL_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
RESERVED_FIELDS = frozenset(
    {"timestamp", "level", "stream", "logger", "message", "trace_id", "span_id", "trace_flags", "thread"}
    | {"service.name", "service.instance.id", "tradeobs.error"}
    | {"exception.type", "exception.message", "exception.stacktrace"}
)


def safe_str(obj: Any, limit: int = MAX_VALUE) -> str:
    """``str(obj)``, else ``repr(obj)``, else a marker; never raises; cut at ``limit``."""
    try:
        s = obj if type(obj) is str else str.__str__(obj) if isinstance(obj, str) else str(obj)
    except Exception:
        try:
            s = repr(obj)
        except Exception as exc:
            s = f"<unprintable {_type_name(obj)}: {_type_name(exc)}>"
    if not isinstance(s, str):  # a __str__ returning non-str raises TypeError above; belt and braces
        s = f"<unprintable {_type_name(obj)}>"
    return s if len(s) <= limit else s[:limit] + f"...[truncated {len(s) - limit} chars]"


_MARGIN = 4096  # the longest secret a cut could halve: text this far past a cut is redacted before it


def redacted_cut(redactor: Any, s: str, limit: int) -> str:
    """``s`` redacted, then cut at ``limit`` characters with a marker: cut first, a secret across the cut would be
    half left (too short for its pattern or its known value to match)."""
    if len(s) <= limit:
        return str(redactor.text(s))
    head = redactor.text(s[: limit + _MARGIN])
    keep = min(limit, len(head) - _MARGIN) if len(s) > limit + _MARGIN else limit
    return f"{head[:keep]}...[truncated {len(s) - keep} chars]"


def safe_repr(obj: Any, limit: int = 1000) -> str:
    try:
        s = repr(obj)
    except Exception as exc:
        s = f"<unprintable {_type_name(obj)}: {_type_name(exc)}>"
    return s if len(s) <= limit else s[:limit] + "..."


def _type_name(obj: Any) -> str:
    try:
        return type(obj).__name__
    except Exception:  # pragma: no cover
        return "object"


def _plain_number(v: Any) -> Any:
    """numpy's scalars (``numpy.int64``, ``numpy.float64``, ``numpy.float32``) and int or float subclasses (an
    ``IntEnum``) as the plain ``int`` or ``float``, so the JSON file and OTLP both carry a number: the file wrote
    numpy's as text, and OTLP a ``numpy.float64`` as a double but a ``numpy.int64`` as text. ``Decimal`` and
    ``Fraction`` are left to be written as text, which keeps them exact. Anything else is returned as it is."""
    try:
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, float) or (isinstance(v, numbers.Real) and not isinstance(v, numbers.Rational)):
            return float(v)
    except Exception:  # a hostile __int__/__float__: bad input, written by the paths below as before
        return v
    return v


def clean(v: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
    """A JSON-safe copy of ``v``: primitives as is, containers bounded, anything else as a safe string."""
    tv = type(v)
    if tv is not int and tv is not float and tv is not bool and v is not None:
        v = _plain_number(v)
    if v is None or isinstance(v, bool | int | float):
        if (isinstance(v, float) and v != v) or v in (float("inf"), float("-inf")):
            return str(v)
        if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
            return str(v)
        return v
    if isinstance(v, str):
        return v if len(v) <= MAX_VALUE else v[:MAX_VALUE] + f"...[truncated {len(v) - MAX_VALUE} chars]"
    if isinstance(v, bytes | bytearray | memoryview):
        return clean(bytes(v[:MAX_VALUE]).decode("utf-8", "backslashreplace"), depth)
    if isinstance(v, Mapping | list | tuple | set | frozenset):
        if depth >= _MAX_DEPTH:
            return "<too deep>"
        seen = seen or set()
        if id(v) in seen:
            return "<recursion>"
        seen.add(id(v))
        try:
            if isinstance(v, Mapping):
                out = {}
                for i, (k, x) in enumerate(v.items()):
                    if i >= _MAX_ITEMS:
                        out["..."] = f"{len(v) - _MAX_ITEMS} more"
                        break
                    out[k if isinstance(k, str) else safe_str(k, 200)] = clean(x, depth + 1, seen)
                return out
            items = []
            for i, x in enumerate(v):
                if i >= _MAX_ITEMS:
                    items.append(f"...{len(v) - _MAX_ITEMS} more")
                    break
                items.append(clean(x, depth + 1, seen))
            return items
        except Exception as exc:  # a mapping whose items() raises, a list mutated while we read it
            return f"<unreadable {_type_name(v)}: {_type_name(exc)}>"
        finally:
            seen.discard(id(v))
    if type(v).__module__.startswith(("numpy", "pandas")):
        plain = _numpy_or_pandas(v)
        if plain is not v:
            out = clean(plain, depth, seen)
            if type(plain) is list and len(v) > _MAX_ITEMS and type(out) is list:  # an array's first items
                out.append(f"...{len(v) - _MAX_ITEMS} more")
            return out
    return safe_str(v)


def _numpy_or_pandas(v: Any) -> Any:
    """numpy's ``bool_`` as a ``bool``, pandas' missing values (``NA``, ``NaT``) as ``None`` (JSON ``null``), and a
    numpy array of one dimension as a list (its first ``_MAX_ITEMS`` items, then how many more); ``v`` itself for
    anything else (written as its text). They were text: ``"True"``, ``"<NA>"``, ``"[0 1 2]"``."""
    name = type(v).__name__
    try:
        if name == "bool" or name == "bool_":
            return bool(v)
        if name == "NAType" or name == "NaTType":
            return None
        if name == "ndarray":
            if v.ndim == 0:
                return v.item()
            if v.ndim != 1:  # a matrix: numpy's own text, which it abbreviates
                return v
            first: list[Any] = v[:_MAX_ITEMS].tolist()  # clean() says how many more
            return first
    except Exception:  # a subclass whose methods raise: bad input, written as its text
        return v
    return v


class Built:
    """One structured record, ready for the sinks."""

    __slots__ = (
        "context",
        "exported",
        "fields",
        "levelno",
        "logger",
        "otel_attrs",
        "printed",
        "span_context",
        "stream",
        "ts_ns",
    )

    def __init__(
        self,
        fields: dict[str, Any],
        stream: str,
        levelno: int,
        ts_ns: int,
        context: Any,
        logger: str,
        span_context: Any = None,
        printed: bool = False,
        exported: bool = False,
    ) -> None:
        self.fields = fields
        self.stream = stream
        self.levelno = levelno
        self.ts_ns = ts_ns
        self.context = context
        self.logger = logger
        self.otel_attrs: dict[str, Any] | None = None
        # The record's span context: its current span's in ``context``, or the trace a correlation id or its
        # exception names (``links``). None: not looked up (the sinks look in ``context``).
        self.span_context = span_context
        self.printed = printed  # the logger's own handlers print it (a server's error log): not on our console
        self.exported = exported  # an OpenTelemetry logging handler of the application's emits it to our provider

    @property
    def severity_text(self) -> str:
        name = str(self.fields.get("level", "INFO"))
        return _OTEL_SEVERITY_TEXT.get(name, name)


class RecordBuilder:
    """Formats, redacts and structures captured entries (worker thread only)."""

    def __init__(self, redactor: Redactor, resource_fields: Mapping[str, Any]) -> None:
        self.redactor = redactor
        self.resource_fields = dict(resource_fields)
        self._stream_cache: dict[str, str] = {}
        self._ts_sec = -1
        self._ts_prefix = ""
        # A text field value -> its redacted text, for values that repeat (symbols, an order's id on each of its
        # lines): two generations of _TEXTS entries (see _texts_now), valid for one redactor and one set of known
        # secret values (secret_values.version()).
        self._texts: dict[str, str] = {}
        self._texts_old: dict[str, str] = {}
        self._texts_for: tuple[Redactor, int] | None = None

    # -- pieces
    def stream_of(self, name: str) -> str:
        s = self._stream_cache.get(name)
        if s is None:
            s = "service"
            if name.startswith("tradeobs"):
                s = "system"
                for stream in STREAMS:
                    prefix = "tradeobs." + stream
                    if name == prefix or name.startswith(prefix + "."):
                        s = stream
                        break
            if len(self._stream_cache) < 10_000:
                self._stream_cache[name] = s
        return s

    def timestamp(self, ts_ns: int) -> str:
        sec, ns = divmod(ts_ns, 1_000_000_000)
        if sec != self._ts_sec:
            self._ts_sec = sec
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._ts_prefix}.{ns // 1000:06d}Z"

    @staticmethod
    def message(msg: Any, args: Any, errors: list[str], secret_key: Any = None) -> str:
        if type(msg) is str:  # nearly every record: the checks below, which cost ~1 us a line, skipped
            pass
        elif isinstance(msg, bytes | bytearray):
            msg = bytes(msg[: MAX_MESSAGE * 4]).decode("utf-8", "backslashreplace")
        else:
            # a str subclass as is: its own __str__/__format__ (an f-string below calls them) may raise
            msg = str.__str__(msg) if isinstance(msg, str) else safe_str(msg, MAX_MESSAGE * 4)
        if args:
            if type(args) is tuple:
                for a in args:  # a loop, not any() over a generator: ~1 us a line less (benchmarks/apply_cost.py)
                    if isinstance(a, Decimal):
                        args = tuple(_tame(x) for x in args)
                        break
            try:
                # Mapping is an ABC: isinstance() against it runs abc's __instancecheck__; a plain str argument
                # or the usual tuple of arguments is never one, so it is not asked (same result, less CPU)
                if (
                    isinstance(args, tuple)
                    and len(args) == 1
                    and type(args[0]) is not str
                    and isinstance(args[0], Mapping)
                    and args[0]
                ):
                    args = args[0]  # logging's "%(name)s" with one mapping argument
                if type(args) is not tuple and isinstance(args, Mapping) and secret_key is not None:
                    # "%(password)s" (a stdlib record holds the mapping itself): the value under a secret name
                    # never reaches the text, which has no "password=" left for a pattern to see.
                    args = {k: MASK if type(k) is str and secret_key(k) else v for k, v in args.items()}
                text = str(msg % args)
            except Exception as exc:
                errors.append("format_error")
                parts = ", ".join(safe_repr(a) for a in (args if isinstance(args, tuple) else (args,)))
                text = f"{msg} <format error: {_type_name(exc)}: {safe_str(exc, 200)}> args=({parts})"
        else:
            text = msg
        if len(text) > MAX_MESSAGE:
            errors.append("truncated")  # cut by the caller, after redaction (redacted_cut)
        return text

    # -- the whole record
    def build(self, e: RawCapture) -> Built:
        ts_ns, levelno, name, msg, args, extra, exc_info, ctx, corr, tid, thread, record = e
        errors: list[str] = []
        span_ctx = None
        printed = extra is PRINTED
        exported = extra is EXPORTED
        try:
            thread_name = thread.name if thread is not None else str(tid) if tid else None
            if record is not None:
                ts_ns = int(record.created * 1e9)
                msg, args, exc_info, thread_name = record.msg, record.args, record.exc_info, record.threadName
                extra = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
                if printed:  # a server's own record: uvicorn's ``color_message`` is its message with ANSI colours
                    extra.pop("color_message", None)
                if record.exc_text and not exc_info:
                    exc_info = record.exc_text
                if record.stack_info:
                    extra["stack_info"] = record.stack_info
            red = self.redactor
            text = redacted_cut(red, self.message(msg, args, errors, red.is_secret_key), MAX_MESSAGE)
            level = logging.getLevelName(levelno) if levelno not in _LEVEL_NAMES else _LEVEL_NAMES[levelno]
            if not isinstance(level, str) or level.startswith("Level "):
                level = _LEVEL_NAMES.get(levelno, f"LEVEL{levelno}")
            stream = self.stream_of(name)
            if extra:
                chosen = _stream_in(extra, errors)
                if chosen is not None:
                    stream = chosen
            fields: dict[str, Any] = {
                "timestamp": self.timestamp(ts_ns),
                "level": level,
                "stream": stream,
                "logger": name,
                "message": text,
            }
            if ctx:
                span_ctx = trace.get_current_span(ctx).get_span_context()
            if corr and links.resolvers:
                span_ctx = self._linked(corr, span_ctx)
            if exc_info and (span_ctx is None or not span_ctx.is_valid):
                span_ctx = links.exception_span(exc_info) or span_ctx
            if span_ctx is not None and span_ctx.is_valid:
                fields["trace_id"] = f"{span_ctx.trace_id:032x}"
                fields["span_id"] = f"{span_ctx.span_id:016x}"
            fields.update(self.resource_fields)
            if corr:
                if links.record_ids:
                    more = self._more_ids(corr, span_ctx)
                    if more:
                        self._add(fields, more, errors)  # first: the record's own ids win a clash
                self._add(fields, corr, errors)
            if extra:
                self._add(fields, extra, errors)
            if exc_info:
                self._exception(fields, exc_info)
            if thread_name:
                fields["thread"] = thread_name
        except Exception as exc:  # a bug here: counted (raised under tests); the record is still written
            internal_error("logs.build", exc)
            fields = {
                "timestamp": self.timestamp(time.time_ns()),
                "level": "ERROR",
                "stream": "system",
                "logger": safe_str(name, 200),
                "message": f"<record could not be built: {_type_name(exc)}>",
            }
            errors.append("build_error")
            stream, levelno, span_ctx = "system", logging.ERROR, None
        if errors:
            fields["tradeobs.error"] = ",".join(errors)
        return Built(fields, stream, levelno, ts_ns, ctx, name, span_ctx, printed, exported)

    @staticmethod
    def _linked(corr: Mapping[str, Any], span_ctx: Any) -> Any:
        """The span context after the registered trace resolvers (``links``) saw the correlation ids."""
        for key, resolve in links.resolvers:
            value = corr.get(key)
            if value is None:
                continue
            try:
                found = resolve(value, span_ctx)
            except Exception as exc:  # a resolver must not raise: a bug (ours or a registered one's)
                internal_error("logs.trace_resolver", exc)
                continue
            if found is not None:
                span_ctx = found
        return span_ctx

    @staticmethod
    def _more_ids(corr: Mapping[str, Any], span_ctx: Any) -> Mapping[str, Any] | None:
        """The ids the registered ``links.record_ids`` functions give for the correlation ids, or None (the mappings
        they return are read, never changed: an order gives the same one for each of its lines)."""
        out: Mapping[str, Any] | None = None
        for key, ids_of in links.record_ids:
            value = corr.get(key)
            if value is None:
                continue
            try:
                more = ids_of(value, span_ctx)
            except Exception as exc:  # must not raise: a bug (ours or a registered one's)
                internal_error("logs.record_ids", exc)
                continue
            if more:
                out = more if out is None else {**out, **more}
        return out

    def _add(self, fields: dict[str, Any], attrs: Any, errors: list[str]) -> None:
        red = self.redactor
        try:
            items = list(attrs.items())
        except Exception:
            errors.append("unreadable_extra")
            return
        n = 0
        texts: dict[str, str] | None = None
        flat = flat_auth_fields(attrs if type(attrs) is dict else dict(items))  # ws.message.key beside its secret
        for k, v in items:
            if not isinstance(k, str):
                k = safe_str(k, 200)
            if k in RESERVED_FIELDS:
                k = "extra." + k
            if k == "extra.stream" or k == "stream":
                continue
            if n >= MAX_ATTRS:
                errors.append("too_many_attributes")
                break
            n += 1
            if red.is_secret_key(k) or (flat is not None and k in flat):
                fields[k] = "[REDACTED]"
                continue
            tv = type(v)
            if tv is str:
                if len(v) <= _TEXT_LEN:
                    if texts is None:
                        texts = self._texts_now(red)
                    t = texts.get(v)
                    if t is None:
                        t = self._texts_old.get(v)
                        if t is None:
                            t = red.text(v)
                        texts = self._keep_text(v, t)
                    fields[k] = t
                else:
                    fields[k] = red.text(v) if len(v) <= MAX_VALUE else redacted_cut(red, v, MAX_VALUE)
                if k in URL_ATTRIBUTES:  # url.query's first parameter (no "?" before it)
                    fields[k] = red.query_start(fields[k])
                continue
            if tv is int or tv is bool or tv is float or v is None:
                if tv is int:
                    if not -(2**63) <= v < 2**64:
                        v = clean(v)
                    elif red.value(k, v) is MASK:  # an account number given as an int, when one is known
                        v = MASK
                fields[k] = v
                continue
            cv = clean(v)
            if not isinstance(cv, str | float | bool) and cv is not None:  # an int too (a numpy.int64 made plain):
                cv = red.value(k, cv)  # a known secret value given as a number is masked, as a plain int is above
            elif isinstance(cv, str):
                cv = red.text(cv)
            fields[k] = cv

    def _texts_now(self, red: Redactor) -> dict[str, str]:
        """The current generation of remembered value texts, emptied (both) when the redactor or the known
        secret values changed since they were made: a value registered as secret later is masked from then on."""
        now = (red, secret_values.version())
        if self._texts_for != now:
            self._texts_for = now
            self._texts, self._texts_old = {}, {}
        return self._texts

    def _keep_text(self, v: str, t: str) -> dict[str, str]:
        """Remember ``t`` for ``v`` in the current generation (a new one when full; the one before is dropped)."""
        texts = self._texts
        if len(texts) >= _TEXTS:
            self._texts_old, self._texts = texts, {}
            texts = self._texts
        texts[v] = t
        return texts

    def _exception(self, fields: dict[str, Any], exc_info: Any) -> None:
        try:
            if isinstance(exc_info, str):
                stack = exc_info
            else:
                etype, value, tb = exc_info
                fields["exception.type"] = getattr(etype, "__name__", safe_str(etype))
                fields["exception.message"] = redacted_cut(self.redactor, safe_str(value, sys.maxsize), 2000)
                stack = "".join(traceback.format_exception(etype, value, tb))
        except Exception as exc:
            stack = f"<traceback unavailable: {_type_name(exc)}>"
        fields["exception.stacktrace"] = redacted_cut(self.redactor, stack, MAX_MESSAGE * 2)


def _stream_in(extra: Any, errors: list[str]) -> str | None:
    """``extra["stream"]`` when it names a stream; hostile or odd ``extra`` objects are bad input, not bugs."""
    try:
        value = extra.get("stream")
    except Exception:  # not a mapping, or a mapping whose get() raises: _add() says "unreadable_extra"
        return None
    return value if type(value) is str and value in STREAMS else None


_HUGE_EXPONENT = 4300  # sys.get_int_max_str_digits(): "%d" of a larger Decimal fails anyway, after the work


def _tame(arg: Any) -> Any:
    """A ``Decimal`` too large to format with ``%d``/``%x`` as its text: ``"%d" % Decimal("1E+999999")`` spends
    about a minute of CPU building the integer (holding the GIL) before it fails; the text fails ``%d`` at once
    (a format error, recorded) and prints as itself with ``%s``."""
    try:
        if arg.is_finite() and arg.adjusted() > _HUGE_EXPONENT:
            return str(arg)
    except Exception:  # a Decimal subclass whose methods raise: hostile input, formatted by the fallback path
        return safe_str(arg)
    return arg


def _default(obj: Any) -> Any:
    return safe_str(obj)


_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def dumps(fields: dict[str, Any]) -> bytes:
    """One JSON line. Falls back to a scrubbed copy if orjson refuses (lone surrogates, ...)."""
    try:
        return orjson.dumps(fields, default=_default, option=_OPTS)  # type: ignore[no-any-return]
    except TypeError:  # orjson.JSONEncodeError: lone surrogates, integers past 64 bits, too deep...
        pass  # the scrubbed copy below
    try:
        fixed = _fix_strings(clean(fields))
        fixed["tradeobs.error"] = (str(fields.get("tradeobs.error", "")) + ",unserializable").lstrip(",")
        return orjson.dumps(fixed, default=_default, option=_OPTS)  # type: ignore[no-any-return]
    except TypeError:  # even the scrubbed copy: a marker line, so the file stays valid JSON lines
        return orjson.dumps(  # type: ignore[no-any-return]
            {"timestamp": fields.get("timestamp"), "message": "<unserializable record>", "tradeobs.error": "serialize"},
            option=_OPTS,
        )


def _fix_strings(v: Any) -> Any:
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, dict):
        return {_fix_strings(k): _fix_strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_fix_strings(x) for x in v]
    return v
