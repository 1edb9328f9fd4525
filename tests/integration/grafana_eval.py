"""Run a provisioned dashboard's queries the way Grafana 12 would, against real Prometheus and Jaeger.

    >>> ev = Evaluator(prometheus_url, jaeger_url, datasources)          # doctest: +SKIP
    >>> variables = ev.resolve_variables(dash, choose={"job": "svc"})    # doctest: +SKIP
    >>> for q in ev.queries(dash, variables): ev.run(q)                   # doctest: +SKIP

What "as Grafana would" means here (Grafana 12: the Prometheus and Jaeger datasources):

- Template variables (frontend): a ``label_values(<selector>, <label>)`` query variable is resolved
  with ``/api/v1/label/<label>/values?match[]=<selector>`` over the time range, a ``query_result(<expr>)``
  one with an instant query at the end of the range (:meth:`Evaluator.query_result`), then its ``regex``
  (:func:`apply_variable_regex`) and its ``sort`` (:func:`sort_variable_options`); variables are resolved in
  order, each with the ones before it; ``$var``, ``${var}`` and ``[[var]]`` are replaced; for the Prometheus
  datasource a multi-value or include-All variable's values are regex-escaped (``prometheusSpecialRegexEscape``),
  several join as ``(a|b)``, "All" becomes its ``allValue`` verbatim; other variables only get ``\\`` and ``'``
  escaped. For the Loki
  datasource (``lokiSpecialRegexEscape``) the same characters but ``'`` are escaped and several values
  join as ``a|b``; All is its ``allValue`` too (which is why it must not match the empty string: Loki
  refuses a stream selector without a matcher that needs a non-empty value, see
  :func:`loki_selector_problem`).
- Intervals (backend, promlib): ``$__interval`` = the panel's step = max(roundInterval(range /
  maxDataPoints), the datasource's ``timeInterval`` (scrape interval), roundInterval(range / 11000));
  ``$__rate_interval`` = max(step + scrape interval, 4 x scrape interval); ``$__range`` = the range in
  whole seconds + "s"; ``$__interval_ms``, ``$__range_ms``, ``$__range_s`` likewise.
  maxDataPoints is the panel's pixel width: here its grid width on a 1920 px wide screen
  (80 px per grid column), the one approximation (a wider screen gives a smaller step).
- A target with ``instant`` (and not ``range``) is an instant query at the end of the range; every
  other target is a range query with that step. A query "has data" when some series has a
  finite value (``histogram_quantile`` of no observations is NaN: an empty panel to a person).
- Jaeger targets: ``queryType: search`` -> the datasource's search, otherwise the trace-id query,
  both through :func:`procs.jaeger_search` / :func:`procs.jaeger_trace`.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import yaml

from .procs import REPO, http_get, jaeger_search, jaeger_trace

GRAFANA = REPO / "compose" / "grafana"
DATASOURCES: list[dict[str, Any]] = yaml.safe_load(
    (GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text()
)["datasources"]
"""compose's provisioned Grafana datasources, what an :class:`Evaluator` is given."""

GRID_COLUMN_PX = 1920 / 24
SAFE_RESOLUTION = 11000
DEFAULT_SCRAPE = 15.0


def round_interval(ms: float) -> int:
    """Grafana's rangeutil.roundInterval (milliseconds in, a "nice" interval in ms out)."""
    steps = (
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1500, 1000),
        (3500, 2000),
        (7500, 5000),
        (12500, 10000),
        (17500, 15000),
        (25000, 20000),
        (45000, 30000),
        (90000, 60000),
        (210000, 120000),
        (450000, 300000),
        (750000, 600000),
        (1050000, 900000),
        (1500000, 1200000),
        (2700000, 1800000),
        (5400000, 3600000),
        (9000000, 7200000),
        (16200000, 10800000),
        (32400000, 21600000),
        (86400000, 43200000),
        (604800000, 86400000),
        (1814400000, 604800000),
        (3628800000, 2592000000),
    )
    for below, value in steps:
        if ms < below:
            return value
    return 31536000000


def parse_duration(text: str) -> float:
    """Grafana/Prometheus duration ("15s", "6h", "1m30s") -> seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def format_interval(seconds: float) -> str:
    """promlib's intervalv2.FormatDuration: the largest whole unit ("20s", "1m", "2h")."""
    ms = round(seconds * 1000)
    for unit, size in (("y", 31536000000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole milliseconds ("35s", "1m0s", "1h0m0s", "500ms")."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3600000)
    m, rem = divmod(rem, 60000)
    s = f"{rem // 1000}" + (f".{rem % 1000:03d}".rstrip("0") if rem % 1000 else "") + "s"
    if h:
        return f"{h}h{m}m{s}"
    if m:
        return f"{m}m{s}"
    return s


def _prom_special_regex_escape(value: str) -> str:
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


def _prom_regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def _loki_special_regex_escape(value: str) -> str:
    return re.sub(r"[$^*{}\[\]+?.()|]", lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


_LOKI_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def loki_selector_problem(expr: str) -> str | None:
    """Why Loki refuses the stream selector of ``expr`` (the ``{...}`` it starts with), or None.

    Loki's parser (``errAtleastOneEqualityMatcherRequired``) needs at least one ``=`` or ``=~`` matcher
    whose value the empty string does not satisfy: ``{app=~".*"}`` alone is refused ("queries require
    at least one regexp or equality matcher that does not have an empty-compatible value"),
    ``{app=~".+"}`` is fine."""
    m = re.match(r"\s*\{([^}]*)\}", expr)
    if not m:
        return f"no stream selector in {expr!r}"
    matchers = _LOKI_MATCHER.findall(m.group(1))
    for _, op, quoted in matchers:
        value = json.loads(f'"{quoted}"')
        if (op == "=" and value != "") or (op == "=~" and re.fullmatch(value, "") is None):
            return None
    return f"{expr!r}: no matcher needs a non-empty value ({matchers}); Loki refuses such a selector"


_LOKI_TOKEN = re.compile(r'\s*(?:([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"|(and|or)\b|([(),|]))')


def loki_match(expr: str, record: dict[str, Any]) -> bool:
    """A LogQL query of stream matchers and label filter stages (``| name op "value"``, combined with ``and``, ``,``,
    ``or`` and parentheses; ``and`` binds tighter than ``or``, as in Loki's grammar), on one OTLP record of the
    collector's file exporter (``read_otlp_json_logs``) as Loki's OTLP ingestion indexes it: resource service.name
    -> service_name; record attributes and the trace id -> structured metadata, dots -> _. A label the record lacks
    is the empty string, as in LogQL. Anything else (a line filter, a parser) is refused, not guessed."""
    labels = {k.replace(".", "_"): str(v) for k, v in {**record["_resource"], **record["_attributes"]}.items()}
    if record.get("traceId"):
        labels["trace_id"] = record["traceId"]
    selector = re.match(r"\s*\{([^}]*)\}", expr)
    assert selector, f"no stream selector in {expr!r}"
    tokens: list[tuple[str, ...]] = []
    rest = expr[selector.end() :]
    while rest.strip():
        m = _LOKI_TOKEN.match(rest)
        assert m, f"unsupported LogQL at {rest!r}: {expr}"
        name, op, quoted, word, punct = m.groups()
        tokens.append((name, op, quoted) if name else (word or punct,))
        rest = rest[m.end() :]
    pos = 0

    def holds(name: str, op: str, quoted: str) -> bool:
        value, have = json.loads(f'"{quoted}"'), labels.get(name, "")
        return {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]

    def peek() -> tuple[str, ...] | None:
        return tokens[pos] if pos < len(tokens) else None

    def factor() -> bool:
        nonlocal pos
        t = peek()
        assert t is not None, f"LogQL ends early: {expr}"
        pos += 1
        if t == ("(",):
            v = either()
            assert peek() == (")",), f"unbalanced parenthesis: {expr}"
            pos += 1
            return v
        assert len(t) == 3, f"unexpected {t[0]!r}: {expr}"
        return holds(*t)

    def both() -> bool:
        nonlocal pos
        v = factor()
        while peek() in (("and",), (",",)):
            pos += 1
            v = factor() and v
        return v

    def either() -> bool:
        nonlocal pos
        v = both()
        while peek() == ("or",):
            pos += 1
            v = both() or v
        return v

    ok = all(holds(*m) for m in _LOKI_MATCHER.findall(selector.group(1)))
    while pos < len(tokens):
        assert peek() == ("|",), f"a stage must start with |: {expr}"
        pos += 1
        ok = either() and ok
    return ok


def apply_variable_regex(regex: str, values: list[str]) -> list[str]:
    """A query variable's ``regex`` on its values, as Grafana does: ``/pattern/flags``; a value it does not
    match is dropped; one it matches becomes the first capture group (the named group ``value`` when
    there is one), else the whole match; duplicates go, the first kept in place (lodash ``uniqBy``). The variable's
    ``sort`` comes after (:func:`sort_variable_options`)."""
    m = re.fullmatch(r"/(.*)/([gimsuy]*)", regex, re.S)
    assert m, f"not a /regex/: {regex!r}"
    pattern = re.compile(m.group(1).replace("(?<value>", "(?P<value>"), re.I if "i" in m.group(2) else 0)
    out: dict[str, None] = {}
    for v in values:
        hit = pattern.search(v)
        if hit is None:
            continue
        if "value" in pattern.groupindex:
            out[hit.group("value")] = None
        else:
            out[hit.group(1) if pattern.groups else hit.group(0)] = None
    return list(out)


def sort_variable_options(sort: int, options: list[str]) -> list[str]:
    """A query variable's options in the order of its ``sort``, as Grafana's ``metricNamesToVariableValues`` puts
    them (lodash ``sortBy``, stable): 0 as the datasource gave them, 1/2 alphabetical by code point (``BTC/USDT`` ...
    ``SOL:USDC`` before ``btc_jpy``), 5/6 alphabetical on the lower-cased text (``btc_jpy`` next to ``BTC/USDT``)."""
    if sort == 0:
        return list(options)
    if sort in (1, 2):
        return sorted(options, reverse=sort == 2)
    if sort in (5, 6):
        return sorted(options, key=str.lower, reverse=sort == 6)
    raise AssertionError(f"variable sort {sort}: not emulated here")


class NotOffered(ValueError):
    """A query variable does not (yet) offer the value to select: its label_values query finds no such series."""


@dataclass
class Variable:
    name: str
    values: list[str]  # the selection; ["$__all"] for All
    multi_or_all: bool
    all_value: str | None = None
    options: list[str] = field(default_factory=list)


@dataclass
class Query:
    """One target of one panel, with everything substituted."""

    dashboard: str  # uid
    panel: str  # title (as written, variables unreplaced)
    ref: str
    kind: str  # prometheus | jaeger | loki
    target: dict[str, Any]  # the substituted target
    instant: bool = False
    start: float = 0.0
    end: float = 0.0
    step: float = 0.0
    exemplar: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dashboard, self.panel, self.ref)

    def describe(self) -> str:
        what = self.target.get("expr") or {k: v for k, v in self.target.items() if k not in ("datasource", "refId")}
        return f"{self.dashboard} / {self.panel!r} / {self.ref}: {what}"


class Evaluator:
    def __init__(self, prometheus_url: str, jaeger_url: str, datasources: list[dict[str, Any]]) -> None:
        self.prometheus_url = prometheus_url
        self.jaeger_url = jaeger_url
        self.ds = {d["uid"]: d for d in datasources}
        # the Prometheus datasource panels get by default: the default one, else the first of that type
        prom = self.default_datasource("prometheus")
        self.scrape = (
            parse_duration(prom.get("jsonData", {}).get("timeInterval", ""))
            if prom.get("jsonData", {}).get("timeInterval")
            else DEFAULT_SCRAPE
        )

    def default_datasource(self, kind: str) -> dict[str, Any]:
        """The datasource of type ``kind`` Grafana falls back on: the default one if of that type, else the first."""
        of_kind = [d for d in self.ds.values() if d["type"] == kind]
        if not of_kind:
            raise ValueError(f"no datasource of type {kind} among {sorted(self.ds)}")
        return next((d for d in of_kind if d.get("isDefault")), of_kind[0])

    def datasource_variable(self, v: dict[str, Any], chosen: list[str] | str | None = None) -> Variable:
        """A datasource variable as Grafana resolves it: its options are the datasources of its type; its value is
        ``chosen``, else the current one if it is an option, else the default datasource (if of that type), else
        the first."""
        options = [uid for uid, d in self.ds.items() if d["type"] == v["query"]]
        cur = v.get("current", {}).get("value")
        if chosen is None:
            # no datasource of the type at all (a Grafana without Jaeger): no value, and its panels find none
            chosen = cur if cur in options else self.default_datasource(str(v["query"]))["uid"] if options else ""
        return Variable(v["name"], [chosen] if isinstance(chosen, str) else list(chosen), False, None, options)

    def datasource(self, ref: dict[str, Any], variables: dict[str, Variable], where: str) -> dict[str, Any]:
        """The datasource a panel, target or variable's ``{"type", "uid"}`` reference resolves to, as Grafana resolves
        it: a ``${var}`` uid through the datasource variable, then by uid. A uid this Grafana has no datasource of
        is what Grafana shows as "Datasource ... was not found" in the panel: an error here."""
        uid = self.interpolate(str(ref.get("uid", "")), variables, "datasource")
        if uid not in self.ds:
            raise ValueError(f"{where}: datasource {ref} ({uid!r}) was not found; datasources here: {sorted(self.ds)}")
        ds = self.ds[uid]
        if ds["type"] != ref.get("type", ds["type"]):
            raise ValueError(f"{where}: datasource {uid!r} is of type {ds['type']}, the reference says {ref['type']}")
        return ds

    # ------------------------------------------------------------------ time
    @staticmethod
    def time_range(dash: dict[str, Any], now: float | None = None) -> tuple[float, float]:
        t = dash["time"]
        assert t["to"] == "now" and t["from"].startswith("now-"), t
        end = time.time() if now is None else now
        return end - parse_duration(t["from"].removeprefix("now-")), end

    def step(self, panel: dict[str, Any], start: float, end: float) -> float:
        range_ms = (end - start) * 1000
        max_points = panel.get("maxDataPoints") or panel["gridPos"]["w"] * GRID_COLUMN_PX
        calculated = round_interval(range_ms / max_points) / 1000
        min_interval = parse_duration(panel["interval"]) if panel.get("interval") else self.scrape
        safe = round_interval(range_ms / SAFE_RESOLUTION) / 1000
        return max(calculated, min_interval, safe)

    # ------------------------------------------------------------------ variables
    def _prom_get(self, path: str, params: dict[str, Any]) -> Any:
        # Prometheus' own query timeout (2 minutes): a slow query is a slow query, not a failed one
        url = f"{self.prometheus_url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        status, body = http_get(url, timeout=120)
        data = json.loads(body)
        if status != 200 or data.get("status") != "success":
            raise ValueError(f"prometheus {path} {params} failed: {status} {body[:500]!r}")
        return data["data"]

    def resolve_variables(
        self, dash: dict[str, Any], choose: dict[str, list[str] | str], start: float, end: float
    ) -> dict[str, Variable]:
        """Each variable's options (query variables asked of Prometheus) and a selection: ``choose``
        where given (it must be an option of a query variable), else All, else the current value."""
        out: dict[str, Variable] = {}
        for v in dash.get("templating", {}).get("list", []):
            name, kind = v["name"], v["type"]
            multi_or_all = bool(v.get("multi") or v.get("includeAll"))
            options: list[str] = []
            if kind == "query" and isinstance(v.get("datasource"), dict):
                self.datasource(v["datasource"], out, f"{dash['uid']}: variable {name}")
            if kind == "datasource":
                out[name] = self.datasource_variable(v, choose.get(name))
                continue
            if kind == "query" and (m := re.fullmatch(r"query_result\((.+)\)", str(v["query"]), re.S)):
                options = self.query_result(m.group(1), out, start, end)
                if v.get("regex"):
                    options = apply_variable_regex(str(v["regex"]), options)
            elif kind == "query":
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", str(v["query"]))
                assert m, f"{dash['uid']}: variable {name}: unsupported query {v['query']!r}"
                selector = self.interpolate(m.group(1), out, "prometheus")
                options = self._prom_get(
                    f"/api/v1/label/{m.group(2)}/values",
                    {"match[]": selector, "start": int(start), "end": int(end)},
                )
                if v.get("regex"):
                    options = apply_variable_regex(str(v["regex"]), options)
            if kind == "query":
                options = sort_variable_options(int(v.get("sort", 0)), options)
            elif kind == "custom":
                options = [o.strip() for o in str(v["query"]).split(",")]
            chosen = choose.get(name)
            if chosen is not None:
                values = [chosen] if isinstance(chosen, str) else list(chosen)
                missing = set(values) - set(options) - ({"$__all"} if v.get("includeAll") else set())
                if kind == "query" and missing:
                    raise NotOffered(f"{dash['uid']}: variable {name} offers {options}, not {sorted(missing)}")
            elif v.get("includeAll"):
                values = ["$__all"]
            elif v.get("current", {}).get("value"):
                cur = v["current"]["value"]
                values = cur if isinstance(cur, list) else [cur]
            else:
                values = options[:1]
            out[name] = Variable(name, values, multi_or_all, v.get("allValue"), options)
        return out

    def query_result(self, expr: str, variables: dict[str, Variable], start: float, end: float) -> list[str]:
        """A ``query_result(<expr>)`` variable's values before its regex: ``expr`` with the variables and
        ``$__range`` (``$__range_s``, ``$__range_ms``) replaced, run as an instant query at the end of the range
        rounded up to a second (``getPrometheusTime(range.to, true)``), each series as Grafana writes it:
        ``<name>{<label>="<value>",...} <value> <timestamp ms>`` (the labels as Prometheus returns them)."""
        expr = self.intervals(self.interpolate(expr, variables, "prometheus"), self.scrape, end - start)
        data = self._prom_get("/api/v1/query", {"query": expr, "time": math.ceil(end)})
        if data["resultType"] in ("scalar", "string"):
            return [str(data["result"][1] or "")]
        out = []
        for s in data["result"]:
            labels = {k: v for k, v in s["metric"].items() if k != "__name__"}
            text = s["metric"].get("__name__", "") + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
            ms = float(s["value"][0]) * 1000
            out.append(f"{text} {s['value'][1]} {int(ms) if ms.is_integer() else ms}")
        return out

    @staticmethod
    def interpolate(text: str, variables: dict[str, Variable], ds_type: str) -> str:
        def value(var: Variable) -> str:
            if var.values == ["$__all"]:
                if var.all_value is not None:
                    return var.all_value
                vals = var.options
            else:
                vals = var.values
            if ds_type == "loki":
                if not var.multi_or_all:
                    return vals[0] if vals else ""
                return "|".join(_loki_special_regex_escape(x) for x in vals)
            if ds_type != "prometheus":
                return ",".join(vals) if len(vals) != 1 else vals[0]
            if not var.multi_or_all:
                return _prom_regular_escape(vals[0] if vals else "")
            escaped = [_prom_special_regex_escape(x) for x in vals]
            return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2) or m.group(3)
            return value(variables[name]) if name in variables else m.group(0)

        return re.sub(r"\$(\w+)|\$\{(\w+)\}|\[\[(\w+)\]\]", sub, text)

    # ------------------------------------------------------------------ queries
    def queries(
        self,
        dash: dict[str, Any],
        variables: dict[str, Variable],
        start: float,
        end: float,
        kinds: frozenset[str] | None = None,
    ) -> list[Query]:
        """Every target of every panel (of the datasource types ``kinds`` only, when given: a Grafana without Jaeger
        or Loki shows their panels as "datasource not found", the others as usual)."""
        out = []
        # datasource variables not given: as Grafana resolves them
        variables = {
            **{
                v["name"]: self.datasource_variable(v)
                for v in dash.get("templating", {}).get("list", [])
                if v["type"] == "datasource"
            },
            **variables,
        }
        for panel in dash["panels"]:
            if panel["type"] == "row":
                continue
            panel_ds = panel["datasource"]
            if kinds is not None and panel_ds.get("type") not in kinds:
                continue
            self.datasource(panel_ds, variables, f"{dash['uid']} / {panel['title']!r}")
            for t in panel["targets"]:
                ds = t.get("datasource", panel_ds)
                kind = self.datasource(ds, variables, f"{dash['uid']} / {panel['title']!r} / {t['refId']}")["type"]
                q = Query(dash["uid"], panel["title"], t["refId"], kind, dict(t), start=start, end=end)
                if kind == "prometheus":
                    q.step = self.step(panel, start, end)
                    q.instant = bool(t.get("instant")) and not t.get("range")
                    q.exemplar = bool(t.get("exemplar"))
                    q.target["expr"] = self.intervals(self.interpolate(t["expr"], variables, kind), q.step, end - start)
                else:
                    for k, v in t.items():
                        if isinstance(v, str) and k not in ("refId",):
                            q.target[k] = self.interpolate(v, variables, kind)
                out.append(q)
        return out

    def intervals(self, expr: str, step: float, range_s: float) -> str:
        rate = max(step + self.scrape, 4 * self.scrape)
        range_rounded = round(range_s)
        for var, value in (
            ("$__interval_ms", str(round(step * 1000))),
            ("$__interval", format_interval(step)),
            ("$__range_ms", str(round(range_s * 1000))),
            ("$__range_s", str(range_rounded)),
            ("$__range", f"{range_rounded}s"),
            ("$__rate_interval", go_duration(rate)),
        ):
            expr = expr.replace(var, value).replace("${" + var[1:] + "}", value)
        return expr

    def run(self, q: Query) -> list[Any]:
        """The query's result: Prometheus series with a finite value, or Jaeger traces."""
        if q.kind == "prometheus":
            if q.instant:
                data = self._prom_get("/api/v1/query", {"query": q.target["expr"], "time": q.end})
                series = data["result"]
                return [s for s in series if math.isfinite(float(s["value"][1]))]
            start = math.floor(q.start / q.step) * q.step
            data = self._prom_get(
                "/api/v1/query_range", {"query": q.target["expr"], "start": start, "end": q.end, "step": q.step}
            )
            return [s for s in data["result"] if any(math.isfinite(float(v)) for _, v in s["values"])]
        if q.kind == "jaeger":
            t = q.target
            if t.get("queryType") == "search":
                return jaeger_search(
                    self.jaeger_url,
                    t["service"],
                    operation=t.get("operation"),
                    tags=t.get("tags"),
                    min_duration=t.get("minDuration"),
                    max_duration=t.get("maxDuration"),
                    limit=t.get("limit"),
                    start_s=q.start,
                    end_s=q.end,
                )
            trace = jaeger_trace(self.jaeger_url, t["query"])
            return [trace] if trace else []
        raise ValueError(f"{q.describe()}: no {q.kind} datasource runs natively")

    def exemplars(self, q: Query) -> list[dict[str, Any]]:
        """Exemplars of a Prometheus target over its range (what the panel draws as dots)."""
        data = self._prom_get(
            "/api/v1/query_exemplars", {"query": q.target["expr"], "start": q.start, "end": q.end + 60}
        )
        return [e for series in data for e in series.get("exemplars", [])]

    def exemplar_rows(self, q: Query) -> list[dict[str, str]]:
        """The panel's exemplars as the rows of Grafana's exemplar frame: Time (ms), Value, then a field per
        label, the series' and the exemplar's (what a data link's ``${__data.fields.<label>}`` reads)."""
        data = self._prom_get(
            "/api/v1/query_exemplars", {"query": q.target["expr"], "start": q.start, "end": q.end + 60}
        )
        return [
            {
                **series.get("seriesLabels", {}),
                **e["labels"],
                "Time": str(round(float(e["timestamp"]) * 1000)),
                "Value": str(e["value"]),
            }
            for series in data
            for e in series.get("exemplars", [])
        ]


# ---------------------------------------------------------------------- links of the Jaeger datasource
def provisioned(value: str) -> str:
    """A value of a provisioning file as Grafana uses it: ``$$`` is a literal ``$`` (``$name`` is expanded from
    the environment, which the correlation templates never use)."""
    return value.replace("$$", "$")


def jaeger_span_tags(trace: dict[str, Any], span: dict[str, Any]) -> list[tuple[str, Any]]:
    """The tags Grafana's trace view knows a Jaeger span by (``getSpanTags``): its process's tags, then its own,
    then spanId, traceId, name, duration. The Jaeger datasource fills the process tags from
    ``processes[span.processID].tags`` of ``/api/traces/<id>``, which never holds ``service.name`` (Jaeger keeps
    it as the process's ``serviceName``)."""
    process = trace["processes"][span["processID"]]
    return [
        *((t["key"], t["value"]) for t in process.get("tags", [])),
        *((t["key"], t["value"]) for t in span.get("tags", [])),
        ("spanId", span["spanID"]),
        ("traceId", span["traceID"]),
        ("name", span["operationName"]),
        ("duration", span["duration"]),
    ]


def formatted_tags(span_tags: list[tuple[str, Any]], mapping: list[dict[str, str]]) -> str:
    """``$__tags`` of a trace-to-metrics query (``getFormattedTags``): each span tag that the datasource maps,
    as ``<label or key>="<value>"``, joined by ", "; a mapped tag the span lacks is left out."""
    out = []
    for key, value in span_tags:
        m = next((m for m in mapping if m["key"] == key), None)
        if m is not None:
            out.append(f'{m.get("value") or m["key"]}="{value}"')
    return ", ".join(out)


def traces_to_metrics_links(
    jaeger_ds: dict[str, Any], trace: dict[str, Any], span: dict[str, Any]
) -> list[tuple[str, str, float, float]]:
    """The span's "metrics" links as Grafana builds them from the Jaeger datasource's ``tracesToMetrics``
    -> [(name, PromQL, start s, end s)]: each query with ``$__tags`` replaced, over the span's time range
    shifted by spanStartTimeShift / spanEndTimeShift (default -2m / 2m)."""
    t2m = jaeger_ds["jsonData"]["tracesToMetrics"]
    tags = formatted_tags(jaeger_span_tags(trace, span), t2m.get("tags") or [])
    start = span["startTime"] / 1e6 + (_shift(t2m["spanStartTimeShift"]) if t2m.get("spanStartTimeShift") else -120)
    end = (span["startTime"] + span["duration"]) / 1e6 + (
        _shift(t2m["spanEndTimeShift"]) if t2m.get("spanEndTimeShift") else 120
    )
    return [(q["name"], provisioned(q["query"]).replace("$__tags", tags), start, end) for q in t2m["queries"]]


def _shift(text: str) -> float:
    return -parse_duration(text[1:]) if text.startswith("-") else parse_duration(text)


# ---------------------------------------------------------------------- data links
def data_link(
    url: str,
    *,
    value: str,
    fields: dict[str, str],
    start: float,
    end: float,
    variables: dict[str, Variable] | None = None,
) -> tuple[str, dict[str, list[str]]]:
    """A data link's URL as Grafana builds it for a click on ``value`` -> (path, query parameters).

    ``${__value.raw}`` is the value clicked; ``${__data.fields.<name>}`` the row's field of that name (an exemplar
    frame has one per series and exemplar label; a Jaeger search row has traceID, traceName, startTime, duration);
    ``${__url_time_range}`` the panel's range as ``from=<ms>&to=<ms>``; ``${<var>:queryparam}`` the dashboard
    variable as ``var-<name>=<value>`` per selected value (``$__all`` for All). A field the row lacks, which
    Grafana would make "" (an empty variable at the other end), is a broken link: asserted here."""

    def sub(m: re.Match[str]) -> str:
        name, fmt = m.group(1), m.group(2)
        if name == "__value.raw":
            return urllib.parse.quote(value, safe="")
        if name == "__url_time_range":
            return f"from={round(start * 1000)}&to={round(end * 1000)}"
        if name.startswith("__data.fields."):
            key = name.removeprefix("__data.fields.")
            return urllib.parse.quote(fields[key], safe="") if key in fields else m.group(0)
        if fmt == "queryparam" and variables is not None and name in variables:
            return "&".join(f"var-{name}={urllib.parse.quote(v, safe='')}" for v in variables[name].values)
        return m.group(0)

    out = re.sub(r"\$\{([\w.]+)(?::(\w+))?\}", sub, url)
    assert "$" not in urllib.parse.unquote(out.replace("%24__all", "")), f"unresolved in the link: {out}"
    parsed = urllib.parse.urlsplit(out)
    return parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True)


def dashboard_choice(params: dict[str, list[str]]) -> tuple[dict[str, list[str] | str], float, float]:
    """A dashboard URL's parameters -> (the variables it selects, from, to in seconds)."""
    choose: dict[str, list[str] | str] = {}
    for key, values in params.items():
        if key.startswith("var-"):
            choose[key.removeprefix("var-")] = values[0] if len(values) == 1 else values
    return choose, int(params["from"][0]) / 1000, int(params["to"][0]) / 1000
