"""The trading instrument table: docs/metrics.md lists every instrument with the name Prometheus really serves."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import tradeobs_agent
from tradeobs_agent.trading import telemetry
from tradeobs_agent.trading.instruments import SPECS, TradingInstruments

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
_ROW = re.compile(
    r"^\| `(?P<name>[^`]+)` \| (?P<kind>\w+) \| `(?P<unit>[^`]*)` \| (?P<attrs>[^|]+) \|[^|]+\| (?P<agg>\w+) "
    r"\| `(?P<prom>[^`]+)` \|$"
)


def _doc_rows() -> dict[str, re.Match[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = _ROW.match(line)
        if m:
            rows[m["name"]] = m
    return rows


def test_every_instrument_is_documented_with_its_type_unit_attributes_and_aggregation() -> None:
    rows = _doc_rows()
    assert set(rows) == {s.name for s in SPECS}
    for spec in SPECS:
        row = rows[spec.name]
        assert (row["kind"], row["unit"], row["agg"]) == (spec.kind, spec.unit, spec.aggregation), spec.name
        documented = tuple(a.strip(" `") for a in row["attrs"].split(",") if a.strip(" `—"))
        assert documented == spec.attributes, spec.name


def test_documented_prometheus_names_are_what_the_endpoint_serves() -> None:
    agent = tradeobs_agent.init(
        service_name="test-docs",
        otlp=False,
        logs=False,
        live=False,
        prometheus=tradeobs_agent.PrometheusOptions(host="127.0.0.1", port=0),
    )
    # A TradingTelemetry an earlier test left alive in this process (a demo engine) keeps its collect hook on the
    # process registry, which testing.reset() restarts in place: it would unset trading.eventloop.stall (no lag
    # monitor of its own runs) before the endpoint renders the value set below.
    for live in telemetry._live():
        live.close()
    inst = TradingInstruments(agent.registry)
    for spec in SPECS:
        bound = getattr(inst, spec.attr).bind(**dict.fromkeys(spec.attributes, "x"))
        if spec.kind == "counter":
            bound.add(1)
        elif spec.kind == "gauge":
            bound.set(1)
        else:
            bound.record(0.5)
    assert agent.prometheus_url is not None
    with urllib.request.urlopen(agent.prometheus_url, timeout=10) as resp:
        text = resp.read().decode()
    served = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE))
    negative = {s.name for s in SPECS if s.bounds and s.bounds[0] < 0}
    for name, row in _doc_rows().items():
        prom = row["prom"]
        wanted = {prom}
        if row["kind"] == "histogram":
            # prometheus_client leaves out _sum and _count when a histogram has negative buckets (slippage)
            wanted = {f"{prom}_bucket"} if name in negative else {f"{prom}_bucket", f"{prom}_count", f"{prom}_sum"}
        assert wanted <= served, (name, wanted - served)


def test_every_instrument_is_documented_with_its_description() -> None:
    """The table's description column says what the instrument's own description says (backticks aside): a change
    of meaning (what a tick is, which outcomes end an open order) reaches both."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| `([^`]+)` \| \w+ \| `[^`]*` \| [^|]+ \|([^|]+)\|", line)
        if m:
            rows[m[1]] = m[2].strip().replace("`", "")
    for spec in SPECS:
        assert rows[spec.name] == spec.description, spec.name
