"""Structural invariants of compose/docker-compose.yml (no Docker engine needed).

These encode the production-readiness floor: healthchecks, limits, restart
policy, stop_grace_period, pinned images, rotated logs, loopback-only ports,
named volumes, secrets only from .env.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import COMPOSE_DIR, REPO, load_compose

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

EXPECTED_SERVICES = {
    "trading-demo",
    "otel-collector",
    "prometheus",
    "alertmanager",
    "grafana",
    "jaeger",
    "loki",
    "node-exporter",
    "backup",
    "nats",
    "live-gateway",
    # profile `tiers` (tests/compose/test_scaling.py)
    "otel-agent",
    "otel-gateway-0",
    "otel-gateway-1",
    # profile `store`
    "thanos-receive-0",
    "thanos-receive-1",
    "thanos-query",
}
# services whose state must survive `docker compose down` (named volume)
STATEFUL = {
    "otel-collector": "/var/lib/otelcol/queue",
    "prometheus": "/prometheus",
    "alertmanager": "/alertmanager",
    "grafana": "/var/lib/grafana",
    "jaeger": "/var/lib/jaeger",
    "loki": "/loki",
    "nats": "/data",
    "otel-agent": "/var/lib/otelcol/queue",
    "otel-gateway-0": "/var/lib/otelcol/queue",
    "otel-gateway-1": "/var/lib/otelcol/queue",
    "thanos-receive-0": "/var/thanos",
    "thanos-receive-1": "/var/thanos",
}
PINNED = re.compile(r"^[a-z0-9][a-z0-9._/-]*:(?!latest$)[A-Za-z0-9][A-Za-z0-9._-]*$")
SECRET_KEY = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|CREDENTIAL)", re.I)


def _dockerfile_froms(path: Path, args: dict[str, str]) -> list[str]:
    froms = []
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*FROM\s+(\S+)", line, re.I)
        if m:
            ref = m.group(1)
            for k, v in args.items():
                ref = ref.replace("${" + k + "}", v).replace("$" + k, v)
            froms.append(ref)
    return froms


def test_all_services_present() -> None:
    assert set(SERVICES) == EXPECTED_SERVICES


def test_project_name_and_network() -> None:
    assert COMPOSE["name"] == "tradeobs"
    for name, svc in SERVICES.items():
        if name.startswith("otel-gateway-"):
            # the gateways share the name the agent tier resolves (test_scaling.py)
            assert svc["networks"] == {"tradeobs": {"aliases": ["otel-gateway"]}}, name
        else:
            assert svc.get("networks") == ["tradeobs"], name


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_service_has_production_basics(name: str) -> None:
    svc = SERVICES[name]
    assert svc.get("restart") == "unless-stopped", f"{name}: restart"
    assert re.fullmatch(r"\d+(s|m)", str(svc.get("stop_grace_period", ""))), f"{name}: stop_grace_period"

    hc = svc.get("healthcheck")
    assert hc and not hc.get("disable"), f"{name}: healthcheck"
    assert isinstance(hc["test"], list) and hc["test"][0] in ("CMD", "CMD-SHELL"), name
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in hc, f"{name}: healthcheck.{key}"
    assert "curl" not in " ".join(hc["test"]), f"{name}: images here have no curl"

    limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
    assert float(limits.get("cpus", 0)) > 0, f"{name}: cpu limit"
    assert re.fullmatch(r"\d+[MG]", str(limits.get("memory", ""))), f"{name}: memory limit"

    logging = svc.get("logging", {})
    assert logging.get("driver") == "json-file", f"{name}: logging driver"
    assert logging.get("options", {}).get("max-size") and logging["options"].get("max-file"), f"{name}: log rotation"


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_images_are_pinned(name: str) -> None:
    svc = SERVICES[name]
    image = svc.get("image")
    assert image and PINNED.match(image), f"{name}: image {image!r} must have a pinned tag"
    build = svc.get("build")
    if build:
        ctx = (COMPOSE_DIR / build["context"]).resolve()
        dockerfile = ctx / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        args = {k: str(v) for k, v in (build.get("args") or {}).items()}
        for ref in _dockerfile_froms(dockerfile, args):
            if ref.isidentifier():  # a build stage name
                continue
            assert PINNED.match(ref), f"{name}: {dockerfile.name} FROM {ref!r} not pinned"


def test_probe_images_use_their_pinned_busybox() -> None:
    """Scratch/distroless images get busybox from images/probe; their
    healthcheck must call it by absolute path (there is no shell/PATH)."""
    probe_dockerfile = COMPOSE_DIR / "images" / "probe" / "Dockerfile"
    for name, svc in SERVICES.items():
        build = svc.get("build")
        if not build or (COMPOSE_DIR / build["context"]).resolve() != probe_dockerfile.parent:
            continue
        args = build["args"]
        assert PINNED.match(args["BASE_IMAGE"]), name
        assert args["RUN_AS"] and args["DATA_DIR"].startswith("/"), name
        assert svc["healthcheck"]["test"][:2] == ["CMD", "/usr/local/bin/busybox"], name
        # the data dir the image prepares is the one the volume is mounted on
        if name in STATEFUL:
            assert args["DATA_DIR"] == STATEFUL[name], name


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_ports_bound_to_loopback(name: str) -> None:
    for port in SERVICES[name].get("ports", []):
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_internal_only_services_are_not_published() -> None:
    # Prometheus has the admin API enabled: it must stay on the internal network.
    for name in ("prometheus", "loki", "jaeger", "node-exporter", "backup"):
        assert "ports" not in SERVICES[name], name


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_bind_mounts_exist_and_volumes_are_declared(name: str) -> None:
    declared = set(COMPOSE.get("volumes", {}))
    for vol in SERVICES[name].get("volumes", []):
        source = vol.split(":")[0]
        if source.startswith(("./", "../", "/")):
            if source.startswith("/") or source.startswith("${"):
                continue  # host paths (node-exporter rootfs)
            # a file chosen in compose/.env (${VAR-default}): its default must exist
            path = (COMPOSE_DIR / re.sub(r"\$\{[A-Z0-9_]+-([^}]*)\}", r"\1", source)).resolve()
            if "backups" in source:
                continue  # created by up.sh / the backup service
            assert path.exists(), f"{name}: mounted {source} does not exist in the repo"
            assert str(path).startswith(str(REPO)), f"{name}: {source} outside the repo"
        elif source.startswith("${"):
            continue
        else:
            assert source in declared, f"{name}: volume {source} not declared"
    if name in STATEFUL:
        targets = {v.split(":")[1]: v.split(":")[0] for v in SERVICES[name]["volumes"]}
        assert targets.get(STATEFUL[name]) in declared, f"{name}: state not on a named volume"


def test_backup_service_sees_every_stateful_volume() -> None:
    backup = SERVICES["backup"]
    mounted = {v.split(":")[0]: v.split(":")[1] for v in backup["volumes"]}
    env = backup["environment"]
    listed = dict(e.split("=", 1) for e in env["BACKUP_VOLUMES"].split())
    for name in ("grafana", "loki", "jaeger", "alertmanager"):
        assert mounted[f"{name}-data"] == listed[name], name
    assert mounted["prometheus-data"] == env["PROMETHEUS_DATA_DIR"]
    assert env["PROMETHEUS_URL"] == "http://prometheus:9090"
    # the collector queue is transient data in flight, and so are NATS's live events: not backed up on purpose
    assert "otelcol-queue" not in mounted and "nats-data" not in mounted


def test_no_inline_secrets() -> None:
    for name, svc in SERVICES.items():
        env = svc.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        for key, value in env.items():
            if SECRET_KEY.search(key):
                assert isinstance(value, str) and re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", value), (
                    f"{name}: {key} must come from .env, got {value!r}"
                )
                # a default for a secret would be a secret in git
                assert ":-" not in value or value.endswith(":-}"), f"{name}: {key} has a default"


def test_env_example_covers_required_variables_and_env_is_ignored() -> None:
    text = (COMPOSE_DIR / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = dict(
        line.split("=", 1)
        for line in (COMPOSE_DIR / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), required - set(example)
    assert {"GRAFANA_ADMIN_PASSWORD", "ALERT_WEBHOOK_URL", "ALERT_SMTP_PASSWORD"} <= set(example)
    assert set(example) <= used, f".env.example documents unused variables: {set(example) - used}"
    for path in ("compose/.env", "compose/backups/tradeobs-x"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"{path} must be git-ignored"


def test_demo_service() -> None:
    svc = SERVICES["trading-demo"]
    assert svc["build"] == {"context": "..", "dockerfile": "compose/Dockerfile"}
    env = svc["environment"]
    # the single collector unless compose/.env sends the demo through the tiers (otel-agent)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://${TRADEOBS_DEMO_COLLECTOR:-otel-collector}:4317"
    assert env["TRADEOBS_OTLP_ENDPOINT"] == env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert any(k.startswith("TRADEOBS_") for k in env)
    # the live page links orders and fills to this compose's Grafana, on the port the host publishes
    published = SERVICES["grafana"]["ports"][0].rsplit(":", 1)[0]  # "127.0.0.1:${GRAFANA_PORT:-3000}"
    assert env["TRADEOBS_LIVE_GRAFANA_URL"] == f"http://{published}"
    test = svc["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"] and "/healthz" in test[-1]
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text()
    assert 'CMD ["tradeobs", "demo", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert "pyproject.toml" in dockerfile and 'pip install ".[nats]"' in dockerfile
    assert svc["depends_on"]["otel-collector"]["condition"] == "service_healthy"


def _yaml_defaults() -> dict[str, str]:
    """{TRADEOBS_* variable: its default} as written in collector/otel-collector.yaml."""
    config = (REPO / "collector" / "otel-collector.yaml").read_text()
    return dict(re.findall(r"\$\{env:(TRADEOBS_[A-Z0-9_]+):-([^}]*)\}", config))


# Read by the Go runtime, not by the config: tests/compose/test_small_host.py checks it.
GO_RUNTIME_ENV = frozenset({"GOMEMLIMIT"})


def _config_env(svc: dict[str, Any]) -> dict[str, Any]:
    """A service's environment without the Go runtime's variables: what its config file reads."""
    return {k: v for k, v in svc["environment"].items() if k not in GO_RUNTIME_ENV}


def test_collector_env_matches_documented_variables() -> None:
    """Every TRADEOBS_* variable compose sets is one the collector config
    documents and reads, listeners bind 0.0.0.0, backends are the compose ones."""
    read_by_config = set(_yaml_defaults())
    svc = SERVICES["otel-collector"]
    env = _config_env(svc)
    for key in env:
        assert key in read_by_config, f"{key} is not read by collector/otel-collector.yaml"
    for key in (
        "TRADEOBS_OTLP_GRPC_ENDPOINT",
        "TRADEOBS_OTLP_HTTP_ENDPOINT",
        "TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT",
        "TRADEOBS_HEALTH_CHECK_ENDPOINT",
    ):
        assert env[key].startswith("0.0.0.0:"), key
    assert env["TRADEOBS_COLLECTOR_METRICS_HOST"] == "0.0.0.0"
    assert env["TRADEOBS_TRACES_OTLP_ENDPOINT"] == "jaeger:4317"
    assert env["TRADEOBS_LOGS_OTLPHTTP_ENDPOINT"] == "http://loki:3100/otlp"
    queue_dir = env["TRADEOBS_COLLECTOR_STORAGE_DIR"]
    assert any(v.startswith("otelcol-queue:") and v.split(":")[1] == queue_dir for v in svc["volumes"])
    assert "../collector/otel-collector.yaml:/etc/otelcol/otel-collector.yaml:ro" in svc["volumes"]
    assert svc["command"] == ["--config=/etc/otelcol/otel-collector.yaml"]
    # health check probes the port the health_check extension listens on
    port = env["TRADEOBS_HEALTH_CHECK_ENDPOINT"].rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{port}/" in svc["healthcheck"]["test"]


def test_compose_never_silently_overrides_a_yaml_default() -> None:
    """Compose sets only what must differ in containers, and exactly the variables the YAML header
    lists for compose: a literal value equal to the YAML default would shadow a later edit of that
    default (as TRADEOBS_TRACES_EXPORTERS once did). Values from compose/.env (${...}) are
    operator settings, passed through on purpose."""
    defaults = _yaml_defaults()
    env = _config_env(SERVICES["otel-collector"])
    for key, value in env.items():
        if not str(value).startswith("${"):
            assert str(value) != defaults[key], f"compose re-sets the YAML default {key}={value}: drop it"
    config = (REPO / "collector" / "otel-collector.yaml").read_text()
    header = config[config.index("#   compose (") : config.index("#   tests:")]
    assert set(re.findall(r"TRADEOBS_[A-Z0-9_]+", header)) == set(env)
    assert "TRADEOBS_TRACES_EXPORTERS" not in env and "TRADEOBS_LOGS_EXPORTERS" not in env


def test_collector_image_is_our_distribution() -> None:
    """compose builds otelcol-tradeobs from collector/builder-config.yaml with scripts/build-collector.sh
    (multi-stage), and runs it with collector/otel-collector.yaml."""
    svc = SERVICES["otel-collector"]
    assert svc["build"] == {"context": "..", "dockerfile": "collector/Dockerfile"}
    assert svc["image"].startswith("tradeobs/otelcol-tradeobs:")
    dockerfile = (REPO / "collector" / "Dockerfile").read_text()
    froms = _dockerfile_froms(REPO / "collector" / "Dockerfile", {})
    assert len(froms) == 2 and froms[0].startswith("golang:"), froms  # build stage, runtime stage
    assert "COPY collector/builder-config.yaml collector/" in dockerfile
    assert "bash scripts/build-collector.sh" in dockerfile
    assert "COPY --from=build /otelcol-tradeobs /usr/local/bin/otelcol-tradeobs" in dockerfile
    assert "COPY collector/otel-collector.yaml /etc/otelcol/otel-collector.yaml" in dockerfile
    assert 'ENTRYPOINT ["/usr/local/bin/otelcol-tradeobs"]' in dockerfile
    # the runtime stage has the wget the healthcheck calls, and prepares the queue dir for its user
    assert froms[1].startswith("busybox:")
    assert svc["healthcheck"]["test"][:2] == ["CMD", "wget"]
    assert "chown -R 10001:10001 /var/lib/otelcol" in dockerfile and "USER 10001:10001" in dockerfile
    assert STATEFUL["otel-collector"].startswith("/var/lib/otelcol/")
    # the build context holds exactly what the Dockerfile copies
    ignore = (REPO / "collector" / "Dockerfile.dockerignore").read_text().split()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert allowed == {
        "collector/builder-config.yaml",
        "collector/otel-collector.yaml",
        "scripts/build-collector.sh",
        "scripts/_cached-build.sh",
    }
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M))
    assert {f for c in copied for f in c.split()} == allowed


def test_jaeger_is_the_release_and_config_the_tests_build() -> None:
    """compose's trace store is the Jaeger v2 the integration tests build (scripts/build-jaeger.sh),
    loading compose/jaeger/jaeger.yaml (run natively by tests/integration/test_jaeger_compose.py),
    with its ports, data directory and retention wired to the rest of the stack."""
    svc = SERVICES["jaeger"]
    # Jaeger tags each release twice on one commit: v1.N.P (the Go module the tests build) and
    # v2.(N-63).P (the v2 binary and image), e.g. v1.76.0 = v2.13.0.
    built = re.search(r"^JAEGER_VERSION=v1\.(\d+)\.(\d+)$", (REPO / "scripts" / "build-jaeger.sh").read_text(), re.M)
    assert built, "JAEGER_VERSION not found in scripts/build-jaeger.sh"
    image = f"jaegertracing/jaeger:2.{int(built.group(1)) - 63}.{built.group(2)}"
    assert svc["build"]["args"]["BASE_IMAGE"] == image
    assert svc["image"] == f"tradeobs/jaeger:{image.split(':')[1]}-probe"
    assert "./jaeger/jaeger.yaml:/etc/jaeger/jaeger.yaml:ro" in svc["volumes"]
    assert svc["command"] == ["--config=/etc/jaeger/jaeger.yaml"]

    config = (COMPOSE_DIR / "jaeger" / "jaeger.yaml").read_text()
    read_by_config = set(re.findall(r"\$\{env:(JAEGER_[A-Z0-9_]+)", config))
    env = _config_env(svc)
    assert set(env) == read_by_config, set(env) ^ read_by_config
    assert "badger:" in config and "memory:" not in config
    for key in (k for k in env if k.endswith("_ENDPOINT")):
        assert env[key].startswith("0.0.0.0:"), key
    port = {k: v.rsplit(":", 1)[1] for k, v in env.items() if k.endswith("_ENDPOINT")}
    # Badger lives on the named volume; retention is a setting with a default
    assert env["JAEGER_BADGER_DIR"] == STATEFUL["jaeger"] == svc["build"]["args"]["DATA_DIR"]
    assert env["JAEGER_SPAN_TTL"] == "${JAEGER_SPAN_TTL:-168h}"
    assert f"http://127.0.0.1:{port['JAEGER_HEALTH_ENDPOINT']}/status" in svc["healthcheck"]["test"]
    # the collector exports to its OTLP/gRPC port, Prometheus scrapes its telemetry port
    collector_env = SERVICES["otel-collector"]["environment"]
    assert collector_env["TRADEOBS_TRACES_OTLP_ENDPOINT"] == f"jaeger:{port['JAEGER_OTLP_GRPC_ENDPOINT']}"
    assert SERVICES["otel-collector"]["depends_on"]["jaeger"]["condition"] == "service_healthy"
    import yaml

    prom = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert f"jaeger:{env['JAEGER_METRICS_PORT']}" in targets
    # Grafana's Jaeger datasource talks to its query port
    ds = yaml.safe_load((COMPOSE_DIR / "grafana/provisioning/datasources/datasources.yml").read_text())
    (jaeger_ds,) = [d for d in ds["datasources"] if d["type"] == "jaeger"]
    assert jaeger_ds["url"] == f"http://jaeger:{port['JAEGER_QUERY_HTTP_ENDPOINT']}"


def test_nothing_left_of_tempo() -> None:
    """Tempo was replaced by Jaeger: no service, config, volume, datasource or doc names it."""
    for path in [COMPOSE_DIR.rglob("*"), (REPO / "docs").glob("*.md"), [REPO / "README.md"]]:
        for f in path:
            if f.is_file() and f.suffix in {".yml", ".yaml", ".json", ".md", ".sh", ""}:
                assert not re.search(r"\btempo\b", f.read_text(errors="replace"), re.I), f"{f} still mentions Tempo"


def test_prometheus_flags() -> None:
    cmd = SERVICES["prometheus"]["command"]
    flags = {c.split("=", 1)[0] for c in cmd}
    assert {
        "--web.enable-admin-api",
        "--storage.tsdb.retention.time",
        "--storage.tsdb.retention.size",
        "--enable-feature",
    } <= flags
    assert "--enable-feature=exemplar-storage" in cmd
    assert "--config.file=/etc/prometheus/prometheus.yml" in cmd
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus:v3.")


def test_scrape_targets_match_compose_ports() -> None:
    import yaml

    prom = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    env = {**_yaml_defaults(), **SERVICES["otel-collector"]["environment"]}
    exporter_port = env["TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT"].rsplit(":", 1)[1]
    assert f"otel-collector:{exporter_port}" in targets
    assert f"otel-collector:{env['TRADEOBS_COLLECTOR_METRICS_PORT']}" in targets
    for host in ("alertmanager:9093", "grafana:3000", "loki:3100", "jaeger:8888", "node-exporter:9100"):
        assert host in targets
    exporter_job = next(j for j in prom["scrape_configs"] if j["job_name"] == "otelcol-exporter")
    assert exporter_job["honor_labels"] is True  # keep job/instance from service.name


def test_grafana_mounts_match_provisioning() -> None:
    import yaml

    svc = SERVICES["grafana"]
    provider = yaml.safe_load((COMPOSE_DIR / "grafana/provisioning/dashboards/dashboards.yml").read_text())[
        "providers"
    ][0]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in svc["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in svc["volumes"]
    assert svc["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_up_script_is_the_documented_command() -> None:
    up = (COMPOSE_DIR / "up.sh").read_text()
    assert 'docker compose -f "$here/docker-compose.yml" up -d' in up
    deployment = (REPO / "docs" / "deployment.md").read_text()
    assert "docker compose -f compose/docker-compose.yml up -d" in deployment


def test_nats_is_the_release_the_tests_build_with_jetstream_and_a_volume() -> None:
    svc = SERVICES["nats"]
    built = re.search(r"^NATS_VERSION=v(\S+)$", (REPO / "scripts" / "build-nats.sh").read_text(), re.M)
    # the upstream alpine image, rebuilt with /data owned by its unprivileged user (images/probe)
    assert built and svc["build"]["args"]["BASE_IMAGE"] == f"nats:{built.group(1)}-alpine"
    assert svc["image"] == f"tradeobs/nats:{built.group(1)}-alpine-probe"
    assert svc["build"]["args"]["DATA_DIR"] == "/data" and svc["build"]["args"]["RUN_AS"] == svc["user"]
    assert svc["command"] == ["--config", "/etc/nats/nats.conf"]
    assert "./nats/nats.conf:/etc/nats/nats.conf:ro" in svc["volumes"]
    conf = (COMPOSE_DIR / "nats" / "nats.conf").read_text()
    assert re.search(r"store_dir:\s*/data", conf) and "nats-data:/data" in svc["volumes"]
    assert "js-enabled-only=true" in svc["healthcheck"]["test"][-1] and "http: 0.0.0.0:8222" in conf
    assert SERVICES["trading-demo"]["environment"]["TRADEOBS_LIVE_NATS_URL"] == "nats://nats:4222"


def test_gateway_profile_runs_the_gateway_against_nats() -> None:
    svc = SERVICES["live-gateway"]
    assert svc["profiles"] == ["gateway"]
    assert svc["image"] == SERVICES["trading-demo"]["image"]  # the package, with the [nats] extra
    cmd = svc["command"]
    assert cmd[:3] == ["tradeobs", "live", "gateway"] and cmd[cmd.index("--nats") + 1] == "nats://nats:4222"
    assert svc["depends_on"]["nats"]["condition"] == "service_healthy"
    port = cmd[cmd.index("--port") + 1]
    assert (
        svc["ports"] == [f"127.0.0.1:${{LIVE_GATEWAY_PORT:-{port}}}:{port}"]
        and f":{port}/" in svc["healthcheck"]["test"][-1]
    )
    # no other service is in this profile (the scaling profiles `tiers` and `store`: test_scaling.py)
    assert [n for n, s in SERVICES.items() if "gateway" in s.get("profiles", [])] == ["live-gateway"]


def test_nats_config_is_valid_for_the_built_server(tmp_path: Path) -> None:
    """The real nats-server (the release compose runs) accepts compose/nats/nats.conf."""
    from tests.integration.procs import find_binary

    out = subprocess.run(
        [find_binary("nats-server"), "-t", "-c", str(COMPOSE_DIR / "nats" / "nats.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "is valid" in out.stdout + out.stderr, out.stdout + out.stderr


def _up_script(tmp_path: Path) -> tuple[Path, Callable[..., subprocess.CompletedProcess[str]]]:
    """A copy of compose/up.sh and .env.example in ``tmp_path``, and a function that runs it with its arguments
    against a ``docker`` that only prints the call (no engine here)."""
    import os
    import shutil

    here = tmp_path / "compose"
    here.mkdir()
    for name in ("up.sh", ".env.example"):
        shutil.copy(COMPOSE_DIR / name, here / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\necho "docker $*"\n')
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def up(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(here / "up.sh"), *args], env=env, capture_output=True, text=True, timeout=30)

    return here, up


def test_up_script_creates_env_once_and_says_at_every_start_while_alerts_reach_no_one(tmp_path: Path) -> None:
    """A stack that starts but can page no one looks healthy: up.sh says so until the destinations are set."""
    here, up = _up_script(tmp_path)

    first = up()
    assert first.returncode == 0, first.stderr
    assert f"docker compose -f {here}/docker-compose.yml up -d --build" in first.stdout
    assert "Grafana admin password" in first.stdout and (here / ".env").stat().st_mode & 0o077 == 0
    for said in ("ALERT_WEBHOOK_URL", "ALERT_DEADMANSSWITCH_URL", "TRADEOBS_RUNBOOK_URL"):
        assert f"WARNING: {said}" in first.stderr, first.stderr
    text = (here / ".env").read_text()
    text = re.sub(r"(?m)^ALERT_WEBHOOK_URL=.*$", "ALERT_WEBHOOK_URL=https://hooks.example.net/t", text)
    text = re.sub(r"(?m)^ALERT_DEADMANSSWITCH_URL=.*$", "ALERT_DEADMANSSWITCH_URL=https://hb.example.net/x", text)
    text = re.sub(r"(?m)^TRADEOBS_RUNBOOK_URL=.*$", "TRADEOBS_RUNBOOK_URL=https://wiki.example.net/rb", text)
    (here / ".env").write_text(text)
    again = up()
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert "Created" not in again.stdout  # .env is created once


def test_up_script_starts_the_small_host_profile_and_counts_phones_as_alert_destinations(tmp_path: Path) -> None:
    """``up.sh --small`` adds the small-host override (before, only a hand-typed ``docker compose -f … -f …``
    could); and a desk that set Telegram but no webhook was told its alerts reach no one, when only its warnings
    do (critical alerts go to email and the phones too)."""
    here, up = _up_script(tmp_path)

    small = up("--small", "--wait")
    assert small.returncode == 0, small.stderr
    assert (
        f"docker compose -f {here}/docker-compose.yml -f {here}/docker-compose.small.yml up -d --build --wait"
        in small.stdout
    )
    assert "WARNING: ALERT_WEBHOOK_URL in" in small.stderr and "alerts reach no one" in small.stderr
    text = (here / ".env").read_text()
    text = re.sub(r"(?m)^ALERT_TELEGRAM_BOT_TOKEN=.*$", "ALERT_TELEGRAM_BOT_TOKEN=123:abc", text)
    assert "ALERT_TELEGRAM_BOT_TOKEN=123:abc" in text, "the example .env has no ALERT_TELEGRAM_BOT_TOKEN line"
    (here / ".env").write_text(text)
    phone = up()
    assert f"docker compose -f {here}/docker-compose.yml up -d --build" in phone.stdout
    assert "alerts reach no one" not in phone.stderr, phone.stderr
    assert "warnings reach no one (critical alerts go to ALERT_TELEGRAM_BOT_TOKEN)" in phone.stderr, phone.stderr
    assert (COMPOSE_DIR / "docker-compose.small.yml").is_file()
