"""The compose profiles of docs/scaling.md: `tiers` (agent collector -> 2 gateways) and `store` (Thanos).

No Docker engine here: the wiring is checked statically against the configs the services load (every
host name, port and setting one service relies on is the one the other sets), and the configs are
validated by the real binaries (otelcol-tradeobs validate with compose's environment, promtool).
tests/integration/test_collector_tiers.py and test_metrics_store.py run the same configs natively.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.integration.procs import find_binary
from tests.integration.thanos import REPLICA_LABEL, remote_write_config

from .helpers import COMPOSE_DIR, GRAFANA_DIR, PROM_DIR, REPO, load_compose, require_binary

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
TIERS = {"otel-agent", "otel-gateway-0", "otel-gateway-1"}
STORE = {"thanos-receive-0", "thanos-receive-1", "thanos-query"}
GATEWAYS = ("otel-gateway-0", "otel-gateway-1")
RECEIVERS = ("thanos-receive-0", "thanos-receive-1")


def _yaml_defaults(config: Path) -> dict[str, str]:
    return dict(re.findall(r"\$\{env:(TRADEOBS_[A-Z0-9_]+):-([^}]*)\}", config.read_text()))


def _flags(svc: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for arg in svc["command"][1:]:
        key, _, value = arg.partition("=")
        out.setdefault(key, []).append(value)
    return out


def _config_of(svc: dict[str, Any]) -> Path:
    """The repo file a collector service loads (its --config, through its bind mount)."""
    (arg,) = svc["command"]
    in_container = arg.removeprefix("--config=")
    (mount,) = [v for v in svc["volumes"] if v.split(":")[1] == in_container]
    return (COMPOSE_DIR / mount.split(":")[0]).resolve()


def test_profiles_hold_exactly_the_scaling_services() -> None:
    profiles = {name: svc.get("profiles") for name, svc in SERVICES.items()}
    assert {n for n, p in profiles.items() if p == ["tiers"]} == TIERS
    assert {n for n, p in profiles.items() if p == ["store"]} == STORE
    # the services without a profile depend on nothing that needs one of these
    for name, svc in SERVICES.items():
        if not profiles[name]:
            assert not set(svc.get("depends_on", {})) & (TIERS | STORE), name


def test_agent_finds_the_gateways_by_dns() -> None:
    agent = SERVICES["otel-agent"]
    config = _config_of(agent)
    assert config == REPO / "collector" / "otel-collector-agent.yaml"
    defaults = _yaml_defaults(config)
    env = {**defaults, **agent["environment"]}
    assert set(agent["environment"]) - {"GOMEMLIMIT"} <= set(defaults), set(agent["environment"]) - set(defaults)
    assert env["TRADEOBS_GATEWAY_RESOLVER"] == "dns"
    for gw in GATEWAYS:
        svc = SERVICES[gw]
        # every gateway answers to the name the agent resolves, on the port it dials
        assert svc["networks"]["tradeobs"]["aliases"] == [env["TRADEOBS_GATEWAY_DNS_NAME"]]
        assert svc["environment"]["TRADEOBS_OTLP_GRPC_ENDPOINT"] == f"0.0.0.0:{env['TRADEOBS_GATEWAY_DNS_PORT']}"
        assert agent["depends_on"][gw] == {"condition": "service_healthy"}
    # services reach the agent's listeners (inside the network and on loopback)
    assert env["TRADEOBS_OTLP_GRPC_ENDPOINT"] == "0.0.0.0:4317"
    assert any(p.endswith(":4317") for p in agent["ports"])
    queue = env["TRADEOBS_COLLECTOR_STORAGE_DIR"]
    assert f"otelcol-agent-queue:{queue}" in agent["volumes"]


def test_gateways_export_to_the_stores_and_each_has_its_own_queue() -> None:
    queues = set()
    for gw in GATEWAYS:
        svc = SERVICES[gw]
        config = _config_of(svc)
        assert config == REPO / "collector" / "otel-collector-gateway.yaml"
        defaults = _yaml_defaults(config)
        # GOMEMLIMIT is the Go runtime's (tests/compose/test_small_host.py), not the config's
        assert set(svc["environment"]) - {"GOMEMLIMIT"} <= set(defaults), set(svc["environment"]) - set(defaults)
        env = {**defaults, **svc["environment"]}
        assert (
            env["TRADEOBS_TRACES_OTLP_ENDPOINT"]
            == SERVICES["otel-collector"]["environment"]["TRADEOBS_TRACES_OTLP_ENDPOINT"]
        )
        assert env["TRADEOBS_LOGS_OTLPHTTP_ENDPOINT"] == "http://loki:3100/otlp"
        assert (
            f"http://127.0.0.1:{env['TRADEOBS_HEALTH_CHECK_ENDPOINT'].rsplit(':', 1)[1]}/" in svc["healthcheck"]["test"]
        )
        (queue,) = [v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == env["TRADEOBS_COLLECTOR_STORAGE_DIR"]]
        queues.add(queue)
        # memory_limiter below the container limit
        assert int(env["TRADEOBS_MEMORY_LIMIT_MIB"]) < 1024
        assert svc["deploy"]["resources"]["limits"]["memory"] == "1G"
    assert len(queues) == len(GATEWAYS), "two gateways on one queue file would lock each other out"


def test_tier_configs_validate_with_composes_environment(tmp_path: Path) -> None:
    """The real otelcol-tradeobs accepts each tier's config with exactly the environment compose gives it."""
    binary = find_binary("otelcol-tradeobs")
    for name in ("otel-agent", "otel-gateway-0"):
        svc = SERVICES[name]
        env = {k: str(v) for k, v in svc["environment"].items() if not str(v).startswith("${")}
        env["TRADEOBS_COLLECTOR_STORAGE_DIR"] = str(tmp_path / name)
        res = subprocess.run(
            [binary, "validate", f"--config={_config_of(svc)}"],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, (name, res.stderr[-2000:])


def test_prometheus_scrapes_every_tier_by_dns() -> None:
    for file in ("prometheus.yml", "prometheus-store.yml"):
        jobs = {j["job_name"]: j for j in yaml.safe_load((PROM_DIR / file).read_text())["scrape_configs"]}
        (exporter,) = jobs["otelcol-exporter"]["dns_sd_configs"]
        assert exporter["names"] == ["otel-gateway"] and exporter["type"] == "A"
        gw_env = {**_yaml_defaults(_config_of(SERVICES["otel-gateway-0"])), **SERVICES["otel-gateway-0"]["environment"]}
        assert exporter["port"] == int(gw_env["TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT"].rsplit(":", 1)[1])
        (own,) = jobs["otelcol"]["dns_sd_configs"]
        assert set(own["names"]) == {"otel-gateway", "otel-agent"}
        agent_env = {**_yaml_defaults(_config_of(SERVICES["otel-agent"])), **SERVICES["otel-agent"]["environment"]}
        assert (
            own["port"]
            == int(gw_env["TRADEOBS_COLLECTOR_METRICS_PORT"])
            == int(agent_env["TRADEOBS_COLLECTOR_METRICS_PORT"])
        )


def test_store_config_is_composes_prometheus_plus_remote_write() -> None:
    """prometheus-store.yml differs from prometheus.yml only by remote_write, which has the settings the
    native store test uses and targets a receive node's remote-write listener."""
    plain = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    store = yaml.safe_load((PROM_DIR / "prometheus-store.yml").read_text())
    (rw,) = store.pop("remote_write")
    assert store == plain
    (expected,) = yaml.safe_load(remote_write_config(rw["url"]))["remote_write"]
    assert rw == expected
    receive = _flags(SERVICES["thanos-receive-0"])
    port = receive["--remote-write.address"][0].rsplit(":", 1)[1]
    assert rw["url"] == f"http://thanos-receive-0:{port}/api/v1/receive"
    promtool = require_binary("promtool")
    res = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROM_DIR / "prometheus-store.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # Prometheus picks it from compose/.env
    mounts = SERVICES["prometheus"]["volumes"]
    assert "./prometheus/${PROMETHEUS_CONFIG-prometheus.yml}:/etc/prometheus/prometheus.yml:ro" in mounts


def test_thanos_receivers_form_one_hashring_with_replication() -> None:
    ring = json.loads((COMPOSE_DIR / "thanos" / "hashring.json").read_text())
    (only,) = ring
    endpoints = only["endpoints"]
    replicas = set()
    for name in RECEIVERS:
        svc = SERVICES[name]
        f = _flags(svc)
        assert svc["command"][0] == "receive"
        assert f["--receive.local-endpoint"] == [f"{name}:{f['--grpc-address'][0].rsplit(':', 1)[1]}"]
        assert f["--receive.local-endpoint"][0] in endpoints
        assert f["--receive.replication-factor"] == [str(len(RECEIVERS))]
        assert "./thanos/hashring.json:" + f["--receive.hashrings-file"][0] + ":ro" in svc["volumes"]
        (label,) = f["--label"]
        key, _, value = label.partition("=")
        assert key == REPLICA_LABEL
        replicas.add(value)
        data = svc["build"]["args"]["DATA_DIR"]
        assert f["--tsdb.path"][0].startswith(data + "/")
        assert f"{name}:{data}" in svc["volumes"]
    assert sorted(endpoints) == sorted(f"{n}:10901" for n in RECEIVERS)
    assert len(replicas) == len(RECEIVERS)
    query = _flags(SERVICES["thanos-query"])
    assert SERVICES["thanos-query"]["command"][0] == "query"
    assert sorted(query["--endpoint"]) == sorted(endpoints)
    assert query["--query.replica-label"] == [REPLICA_LABEL]
    assert "--query.partial-response" in query
    assert query["--deduplication.func"] == ["chain"]  # as tests/integration/thanos.py runs it


def test_thanos_image_is_the_release_the_tests_build() -> None:
    built = re.search(r"^THANOS_VERSION=(v[0-9.]+)$", (REPO / "scripts" / "build-thanos.sh").read_text(), re.M)
    assert built
    for name in STORE:
        args = SERVICES[name]["build"]["args"]
        assert args["BASE_IMAGE"] == f"quay.io/thanos/thanos:{built.group(1)}"
        assert SERVICES[name]["image"] == f"tradeobs/thanos:{built.group(1)}-probe"


def test_grafana_offers_the_query_tier() -> None:
    ds = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml").read_text())
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    thanos = by_uid["thanos"]
    assert thanos["type"] == "prometheus" and not thanos.get("isDefault")
    port = _flags(SERVICES["thanos-query"])["--http-address"][0].rsplit(":", 1)[1]
    assert thanos["url"] == f"http://thanos-query:{port}"
    assert (
        thanos["jsonData"]["exemplarTraceIdDestinations"]
        == by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    )
