"""Our collector with bearer-token auth and TLS on its OTLP receivers, against the agent's real exporters.

The collector runs ``collector/otel-collector.yaml`` with the shipped overlays ``otel-collector.auth.yaml`` and
``otel-collector.tls.yaml`` (``--config`` three times, as docs/collector.md says), a certificate this test makes
(a throw-away CA and a server certificate for 127.0.0.1 signed by it, with ``cryptography``) and a random token.
An agent process (``auth_probe.py``: ``tradeobs_agent.init()`` from its environment, one span, ``shutdown()``)
then tries, over OTLP/gRPC and OTLP/HTTP:

* no token: refused (the span never reaches the collector's file; the agent counts a failed export);
* a wrong token: refused the same way;
* the right token but without trusting the test CA: the TLS handshake fails, refused;
* the right token and the test CA (``OTEL_EXPORTER_OTLP_CERTIFICATE``): accepted, the span is in the file.

A refusal is proven both ways: the agent counted ``tradeobs.agent.exports.failed`` and no exported item, and the
collector wrote no span of that name, while the accepted span of the same run IS in the same file (so "nothing
arrived" cannot be a broken pipeline). Also: the overlay refuses to start with no token configured.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .agent_proc import unique_service
from .procs import COLLECTOR_CONFIG, REPO, _clean_env, collector_env, find_binary, start_collector, wait_for

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
AUTH_OVERLAY = REPO / "collector" / "otel-collector.auth.yaml"
TLS_OVERLAY = REPO / "collector" / "otel-collector.tls.yaml"


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, and a server certificate for 127.0.0.1/localhost signed by it (PEM files)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradeobs test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _traces_to_file(workdir: Path) -> Path:
    """otel-collector.yaml with traces written to a file (no trace store needed); the overlays go on top."""
    cfg = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    cfg["exporters"]["file/traces"] = {
        "path": str(workdir / "traces.jsonl"),
        "format": "json",
        "flush_interval": "100ms",
    }
    cfg["service"]["pipelines"]["traces"]["exporters"] = ["file/traces"]
    path = workdir / "otel-collector.base.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _span_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines() if path.exists() else []:
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                names.update(s["name"] for s in ss.get("spans", []))
    return names


def _probe(env: dict[str, str], name: str, workdir: Path) -> dict[str, Any]:
    """Run auth_probe.py (one span called ``name``) with ``env``; what the agent counted."""
    full = {**_clean_env(), **env, "TRADEOBS_SERVICE_NAME": unique_service("auth"), "TRADEOBS_PROMETHEUS_PORT": "0",
            "TRADEOBS_LOG_DIR": str(workdir / "logs"), "TRADEOBS_OTLP_TIMEOUT": "3"}  # fmt: skip
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the CA file the OTLP/HTTP exporter passes it
    # (docs/collector.md says so): a host that sets them would test its own trust store, not ours.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        full.pop(var, None)
    r = subprocess.run(
        [sys.executable, str(HERE / "auth_probe.py"), name], env=full, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-3000:]
    counts: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    counts["stderr"] = r.stderr
    return counts


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_requires_the_token_and_tls(protocol: str, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    token = secrets.token_urlsafe(24)
    workdir = tmp_path / "collector"
    workdir.mkdir()
    env = collector_env(workdir, "127.0.0.1:1")
    env.update(
        {
            "TRADEOBS_COLLECTOR_TOKEN": token,
            "TRADEOBS_TLS_CERT_FILE": str(certs["cert"]),
            "TRADEOBS_TLS_KEY_FILE": str(certs["key"]),
        }
    )
    traces = workdir / "traces.jsonl"
    with start_collector(
        workdir, "", config=_traces_to_file(workdir), env=env, overlays=(AUTH_OVERLAY, TLS_OVERLAY)
    ) as c:
        if protocol == "grpc":
            endpoint = f"https://{c.otlp_grpc_endpoint}"
        else:
            endpoint = c.otlp_http_endpoint.replace("http://", "https://")
        base = {"TRADEOBS_OTLP_ENDPOINT": endpoint, "TRADEOBS_OTLP_PROTOCOL": protocol}
        trusted = {**base, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(certs["ca"])}
        bearer = f"authorization=Bearer {token}"
        tries = {
            "no-token": trusted,
            "wrong-token": {**trusted, "TRADEOBS_OTLP_HEADERS": f"authorization=Bearer {secrets.token_urlsafe(24)}"},
            "untrusted-ca": {**base, "TRADEOBS_OTLP_HEADERS": bearer},
            "accepted": {**trusted, "TRADEOBS_OTLP_HEADERS": bearer},
            # as most people write it: gRPC refuses a header name with capitals, so every export failed
            "accepted-capitalized": {**trusted, "TRADEOBS_OTLP_HEADERS": f"Authorization=Bearer {token}"},
        }
        results = {name: _probe(e, f"probe-{name}", tmp_path / name) for name, e in tries.items()}
        wait_for(
            lambda: {"probe-accepted", "probe-accepted-capitalized"} <= _span_names(traces),
            "the accepted spans in the collector's file",
        )
        arrived = _span_names(traces)
    for name, r in results.items():
        if name.startswith("accepted"):
            assert r["exported"] == 1 and r["failed"] == 0 and r["dropped"] == 0, r
        else:
            assert f"probe-{name}" not in arrived, name
            assert r["exported"] == 0 and r["failed"] >= 1 and r["dropped"] == 1, (name, r)
        assert token not in r["stderr"], f"the token appeared in the agent's output ({name})"
        # gRPC's C core printed one line per failed TLS handshake, past the agent's once-only outage message
        assert "Handshake failed" not in r["stderr"], (name, r["stderr"][-2000:])
    assert token not in c.proc.log_path.read_text(errors="replace"), "the token appeared in the collector's log"


def test_auth_overlay_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = {**_clean_env(), **collector_env(tmp_path, "127.0.0.1:1"), "TRADEOBS_COLLECTOR_TOKEN": ""}
    r = subprocess.run(
        [find_binary("otelcol-tradeobs"), "validate", "--config", f"file:{COLLECTOR_CONFIG}", "--config",
         f"file:{AUTH_OVERLAY}"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode != 0
    assert "bearertokenauth/agents" in r.stderr and "no bearer token" in r.stderr, r.stderr
