"""Secret canary: known secrets go in through every door of a real service; none comes out of the process.

The service is ``canary_app.py`` under a real uvicorn, with the agent exporting to our collector running a config
with NO redaction processor (``collector/otel-collector.yaml`` with ``attributes/redact`` and ``transform/redact``
taken out of every pipeline, and file exporters for all three signals plus the debug exporter at ``detailed``):
what the collector writes is exactly what left the agent. The secrets (a broker key id and secret in the
environment as Alpaca's SDK reads them, a password in ``DB_PASSWORD``, a bearer token and an account number the
service registers with ``tradeobs_agent.register_secret``, an OTLP header token, the live stream's secret) are
put in log messages, arguments, keyword arguments and ``extra``, exception messages and tracebacks, span
attributes and events, request headers and query strings, metric attributes, order rejects (metrics, spans, live
events) and resource attributes. Then every output is searched, for each secret and its URL-encoded forms: what
the collector wrote (logs, traces, metrics files, its Prometheus page, its debug output), every file in the
agent's log directory, its trace file, its ``/metrics``, the live stream, ``/snapshot`` and ``/history``.

So that the test cannot pass by writing nothing, it also checks that each output holds the records that carried
the secrets, with ``[REDACTED]`` where a secret was.
"""

from __future__ import annotations

import gzip
import json
import secrets
import string
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradeobs_agent.live import auth

from .agent_proc import agent_env, unique_service
from .procs import (
    COLLECTOR_CONFIG,
    READY_TIMEOUT,
    CollectorProc,
    ManagedProcess,
    free_port,
    http_get,
    read_otlp_json_logs,
    start_collector,
    wait_for,
)

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
REDACTION_PROCESSORS = ("attributes/redact", "transform/redact")


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def canaries() -> dict[str, str]:
    """Fresh secrets, shaped like the real ones (the broker secret with '/' and '+', as base64 secrets have)."""
    upper = string.ascii_uppercase + string.digits
    return {
        "broker key id": "PK" + _random(upper, 18),
        "broker secret": _random(string.ascii_letters + string.digits, 18) + "/+" + _random(string.ascii_letters, 20),
        "password": "pw-" + _random(string.ascii_letters + string.digits, 14),
        "bearer token": "tok_" + _random(string.ascii_letters + string.digits, 28),
        "account number": str(secrets.randbelow(9 * 10**11) + 10**11),
        "otlp header token": "otlp_" + _random(string.ascii_letters + string.digits, 24),
        "live secret": "live_" + _random(string.ascii_letters + string.digits, 24),
    }


def forms(value: str) -> set[str]:
    """A secret as it could appear: as is, and URL-encoded (a query string, a URL attribute)."""
    return {
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        urllib.parse.quote(value),
    }


def find_leaks(
    secrets_by_name: dict[str, str], forms_of: Callable[[str], set[str]], outputs: dict[str, str]
) -> list[str]:
    """Each form (``forms_of``) of each secret found in an output, with the text around it."""
    leaks = []
    for what, value in secrets_by_name.items():
        for form in forms_of(value):
            for where, text in outputs.items():
                if form in text:
                    at = text.index(form)
                    leaks.append(f"{what} ({form!r}) in {where}: ...{text[max(0, at - 120) : at + 40]!r}...")
    return leaks


def unredacted_config(workdir: Path) -> Path:
    """Our collector config without its redaction processors, writing every signal to files and to the debug log."""
    cfg = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    cfg["exporters"]["file/traces"] = {
        "path": str(workdir / "traces.jsonl"),
        "format": "json",
        "flush_interval": "200ms",
    }
    cfg["exporters"]["file/metrics"] = {
        "path": str(workdir / "metrics.jsonl"),
        "format": "json",
        "flush_interval": "200ms",
    }
    cfg["exporters"]["debug"] = {"verbosity": "detailed"}
    pipelines = cfg["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        pipeline["processors"] = [p for p in pipeline["processors"] if p not in REDACTION_PROCESSORS]
        assert not set(REDACTION_PROCESSORS) & set(pipeline["processors"]), name
    pipelines["traces"]["exporters"] = ["file/traces", "debug"]
    pipelines["metrics"]["exporters"] = ["prometheus", "file/metrics", "debug"]
    pipelines["logs"]["exporters"] = ["file/logs", "debug"]
    path = workdir / "otel-collector.unredacted.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _request(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return int(exc.code), body


def _stream(url: str, token: str, seconds: float) -> bytes:
    """The live stream's bytes for ``seconds`` (a real EventSource-like client: Authorization: Bearer)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
    out = b""
    deadline = time.monotonic() + seconds
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        while time.monotonic() < deadline:
            chunk = r.read1(65536)
            if not chunk:
                break
            out += chunk
    return out


def _files_text(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (rotated .gz ones decompressed)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        out[str(path)] = data.decode("utf-8", "replace")
    return out


def _spans(path: Path) -> list[dict[str, Any]]:
    spans = []
    for line in path.read_text().splitlines() if path.exists() else []:
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                spans.extend(ss.get("spans", []))
    return spans


def _attrs(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: next(iter(kv.get("value", {}).values()), None) for kv in kvs}


def test_no_secret_leaves_the_process(tmp_path: Path) -> None:
    c = canaries()
    coll_dir = tmp_path / "collector"
    coll_dir.mkdir()
    config = unredacted_config(coll_dir)
    with start_collector(coll_dir, "127.0.0.1:1", config=config) as collector:
        _run_and_search(c, collector, tmp_path)


def _run_and_search(c: dict[str, str], collector: CollectorProc, tmp_path: Path) -> None:
    service = unique_service("canary")
    port = free_port()
    env = agent_env(collector, tmp_path, service)
    env.update(
        {
            "APCA_API_KEY_ID": c["broker key id"],
            "APCA_API_SECRET_KEY": c["broker secret"],
            "DB_PASSWORD": c["password"],
            "CANARY_REGISTER": json.dumps([c["bearer token"], c["account number"]]),
            "TRADEOBS_OTLP_HEADERS": f"authorization=Bearer%20{c['otlp header token']}",
            "TRADEOBS_LIVE_TOKEN": c["live secret"],
            "TRADEOBS_TRACES_FILE": str(tmp_path / "tracefile" / "traces.jsonl"),
            # the FastAPI instrumentation records these request headers as span attributes
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "Authorization,Cookie,X-API-Key,APCA-API-.*",
            "OTEL_RESOURCE_ATTRIBUTES": (
                f"deploy.note={c['bearer token']},api_key={urllib.parse.quote(c['broker secret'], safe='')},"
                f"owner.ref={c['account number']}"
            ),
        }
    )
    argv = [sys.executable, "-m", "uvicorn", "canary_app:app", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess("canary", argv, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    outputs: dict[str, str] = {}
    try:
        wait_for(lambda: _request(f"{base}/info")[0] == 200, "the canary service", READY_TIMEOUT, procs=(proc,))
        prometheus_url = json.loads(_request(f"{base}/info")[1])["prometheus"]
        query = urllib.parse.urlencode(
            {
                "api_key": c["broker secret"],
                "password": c["password"],
                "acct": c["account number"],
                "q": c["broker key id"],
            }
        )
        headers = {
            "Authorization": f"Bearer {c['bearer token']}",
            "APCA-API-KEY-ID": c["broker key id"],
            "APCA-API-SECRET-KEY": c["broker secret"],
            "Cookie": f"session={c['password']}",
            "X-API-Key": c["broker secret"],
        }
        for _ in range(3):
            assert _request(f"{base}/leak?{query}", headers)[0] == 200
        assert _request(f"{base}/boom?token={c['bearer token']}", headers)[0] == 500

        live_token = auth.make_token(c["live secret"], ttl=300)
        bearer = {"Authorization": f"Bearer {live_token}"}
        status, snapshot = _request(f"{base}/telemetry/snapshot", bearer)
        assert status == 200
        outputs["live /snapshot"] = snapshot.decode()
        outputs["live /stream"] = _stream(f"{base}/telemetry/stream", live_token, 2.5).decode()
        assert "event: frame" in outputs["live /stream"]
        status, history = _request(f"{base}/telemetry/history", bearer)
        assert status == 200
        outputs["live /history"] = history.decode()
        assert '"kind":"reject"' in outputs["live /history"]  # the reject events reached the live view (scrubbed)

        # What the collector received: the records that carried the secrets, with the secrets masked.
        def collector_logs() -> list[dict[str, Any]] | None:
            recs = [
                r for r in read_otlp_json_logs(collector.logs_file) if r["_resource"].get("service.name") == service
            ]
            bodies = " ".join(str(r.get("body")) for r in recs)
            return recs if "login" in bodies and "Exception in ASGI application" in bodies else None

        logs = wait_for(collector_logs, "the canary's log records in the collector's file", procs=(proc,))
        (login,) = [r for r in logs if r.get("body", {}).get("stringValue") == "login"][:1]
        assert login["_attributes"]["password"] == "[REDACTED]" and login["_attributes"]["user"] == "alice"
        assert login["_resource"]["api_key"] == "[REDACTED]" and login["_resource"]["deploy.note"] == "[REDACTED]"
        otel_api = next(r for r in logs if r.get("eventName", "").startswith("broker.login"))
        assert otel_api["eventName"] == "broker.login key=[REDACTED]"
        assert otel_api["_attributes"]["broker"]["auth"] == {"secret_key": "[REDACTED]", "token": "[REDACTED]"}
        assert otel_api["_attributes"]["broker"]["venue"] == "alpaca"

        def leak_span() -> dict[str, Any] | None:
            found = [s for s in _spans(coll_dir(collector) / "traces.jsonl") if s["name"] == "GET /leak"]
            return found[0] if found else None

        span = wait_for(leak_span, "the /leak request's span in the collector's trace file", procs=(proc,))
        attrs = _attrs(span["attributes"])
        assert attrs["broker.key"] == "[REDACTED]" and attrs["note"] == "password is [REDACTED]"
        assert attrs["order.ref"] == "[REDACTED]"
        assert "[REDACTED]" in str(attrs.get("http.url", attrs.get("url.query", "")))
        assert {e["name"] for e in span["events"]} >= {"auth", "exception"}
        assert attrs["http.request.header.x_api_key"] == "[REDACTED]"  # captured, masked by its name

        def scraped() -> str | None:
            status, body = http_get(f"{collector.prometheus_exporter_url}/metrics")
            text = body.decode()
            return text if status == 200 and "canary_requests" in text and "rejected" in text else None

        outputs["collector prometheus page"] = wait_for(scraped, "the canary's metrics on the collector's page")
        assert 'client="[REDACTED]"' in outputs["collector prometheus page"]
        status, body = http_get(prometheus_url)
        assert status == 200
        outputs["agent /metrics"] = body.decode()
        assert 'client="[REDACTED]"' in outputs["agent /metrics"]
    finally:
        proc.stop()  # SIGTERM: the agent flushes and closes its files
    outputs["canary process output (uvicorn)"] = proc.log_path.read_text(errors="replace")
    collector.stop()
    for path, text in _files_text(coll_dir(collector)).items():
        if not path.endswith(".yaml"):
            outputs[f"collector wrote {path}"] = text
    for path, text in _files_text(tmp_path / "logs").items():
        outputs[f"agent log file {path}"] = text
    traces_file = _files_text(tmp_path / "tracefile")
    assert traces_file and any("GET /leak" in t for t in traces_file.values())
    for path, text in traces_file.items():
        outputs[f"agent trace file {path}"] = text
    assert any("[REDACTED]" in t for k, t in outputs.items() if "agent log file" in k)

    leaks = find_leaks(c, forms, outputs)
    assert not leaks, "secrets left the process:\n" + "\n".join(leaks)


def coll_dir(collector: CollectorProc) -> Path:
    return collector.logs_file.parent
