"""Every collector, Jaeger, Prometheus and Alertmanager config in the repo is
checked with the real tool that will load it:

- collector configs      -> otelcol-tradeobs validate --config
- Jaeger configs         -> jaeger validate --config
- Prometheus configs     -> promtool check config  (also checks their rule_files)
- Alertmanager configs   -> amtool check-config  (not templates with a render.sh)

The globs pick up new files (e.g. compose/**) without editing this module.
The configs the test fixtures generate are checked too, so each check always
has at least one real case.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .procs import (
    ALERTMANAGER_TEST_CONFIG,
    COLLECTOR_CONFIG,
    JAEGER_CONFIG,
    REPO,
    _clean_env,
    collector_env,
    find_binary,
    prometheus_config,
)

pytestmark = pytest.mark.integration

_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", "build", "dist"}


def _repo_files(patterns: tuple[str, ...]) -> list[Path]:
    found: set[Path] = set()
    for pattern in patterns:
        for p in REPO.glob(pattern):
            rel = p.relative_to(REPO)
            if p.is_file() and not _SKIP_DIRS.intersection(rel.parts):
                found.add(p)
    return sorted(found)


def _is_builder_or_jaeger(p: Path) -> bool:
    return p.name.startswith(("builder-config", "jaeger"))


def _is_overlay(p: Path) -> bool:
    """collector/otel-collector.<name>.yaml: an overlay, loaded only after
    otel-collector.yaml (a second --config), never alone."""
    return p.parent == COLLECTOR_CONFIG.parent and p.name.startswith("otel-collector.") and p != COLLECTOR_CONFIG


def collector_overlays() -> list[Path]:
    return _repo_files(("collector/otel-collector.*.yaml", "collector/otel-collector.*.yml"))


def collector_configs() -> list[Path]:
    files = _repo_files(
        (
            "collector/*.yaml",
            "collector/*.yml",
            "compose/**/*otel*.yaml",
            "compose/**/*otel*.yml",
            "compose/**/*collector*.yaml",
            "compose/**/*collector*.yml",
        )
    )
    return [p for p in files if not _is_builder_or_jaeger(p) and not _is_overlay(p)]


def jaeger_configs() -> list[Path]:
    return _repo_files(("**/jaeger*.yaml", "**/jaeger*.yml"))


def prometheus_configs() -> list[Path]:
    return _repo_files(("**/prometheus*.yml", "**/prometheus*.yaml"))


def alertmanager_configs() -> list[Path]:
    """Alertmanager configs, except templates rendered by a render.sh beside
    them (Alertmanager does not expand env vars; compose/alertmanager renders
    its template at start and tests/compose checks the renderings)."""
    files = _repo_files(("**/alertmanager*.yml", "**/alertmanager*.yaml"))
    return [p for p in files if not (p.parent / "render.sh").exists()]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_clean_env(), **(env or {})},
        cwd=REPO,
    )


def _assert_ok(res: subprocess.CompletedProcess[str], what: str) -> None:
    assert res.returncode == 0, f"{what} failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}"


def test_discovery_finds_the_shipped_configs() -> None:
    """Guard against a glob silently matching nothing."""
    assert COLLECTOR_CONFIG in collector_configs()
    assert JAEGER_CONFIG in jaeger_configs()
    assert (REPO / "collector" / "builder-config.yaml") not in collector_configs()
    assert REPO / "collector" / "otel-collector.auth.yaml" in collector_overlays()
    assert not set(collector_overlays()) & set(collector_configs())


@pytest.mark.parametrize("config", collector_configs(), ids=_ids(collector_configs()))
def test_collector_config_validates(config: Path) -> None:
    binary = find_binary("otelcol-tradeobs")
    _assert_ok(_run([binary, "validate", "--config", f"file:{config}"]), f"validate {config}")


def _overlay_env(tmp_path: Path) -> dict[str, str]:
    """What the overlays' headers say must be set: a token, a certificate and its key."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_text("placeholder\n")
    key.write_text("placeholder\n")
    return {
        "TRADEOBS_COLLECTOR_TOKEN": "validate-only",
        "TRADEOBS_TLS_CERT_FILE": str(cert),
        "TRADEOBS_TLS_KEY_FILE": str(key),
    }


_OVERLAY_CASES = [[p] for p in collector_overlays()] + [collector_overlays()]


@pytest.mark.parametrize("overlays", _OVERLAY_CASES, ids=["+".join(p.name for p in case) for case in _OVERLAY_CASES])
def test_collector_overlays_validate_on_the_main_config(overlays: list[Path], tmp_path: Path) -> None:
    """Each overlay, and all of them together, on top of otel-collector.yaml as
    docs/collector.md runs them (a --config per file, in order)."""
    assert overlays, "no collector overlay found"
    binary = find_binary("otelcol-tradeobs")
    argv = [binary, "validate", "--config", f"file:{COLLECTOR_CONFIG}"]
    for overlay in overlays:
        argv += ["--config", f"file:{overlay}"]
    _assert_ok(_run(argv, _overlay_env(tmp_path)), f"validate {[p.name for p in overlays]}")


def test_collector_config_validates_with_test_env(tmp_path: Path) -> None:
    """The env the fixtures use (logs to file) also yields a valid config."""
    binary = find_binary("otelcol-tradeobs")
    env = collector_env(tmp_path, "127.0.0.1:1")
    res = _run([binary, "validate", "--config", f"file:{COLLECTOR_CONFIG}"], env)
    _assert_ok(res, "validate with test env")


def _compose_collector_envs() -> list[tuple[str, dict[str, str]]]:
    """(compose file:service, environment) of every compose service that mounts
    collector/otel-collector.yaml; `${VAR:-default}` resolves to its default."""
    import yaml

    found = []
    for f in _repo_files(("compose/**/docker-compose*.yml", "compose/**/compose*.yml")):
        doc = yaml.safe_load(f.read_text()) or {}
        for name, svc in (doc.get("services") or {}).items():
            volumes = [str(v.get("source", v) if isinstance(v, dict) else v) for v in svc.get("volumes") or []]
            if not any("otel-collector.yaml" in v for v in volumes):
                continue
            env = svc.get("environment") or {}
            if isinstance(env, list):
                env = dict(e.split("=", 1) for e in env if "=" in e)
            resolved = {k: re.sub(r"\$\{[A-Za-z0-9_]+:?-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
            found.append((f"{f.relative_to(REPO)}:{name}", resolved))
    return found


def test_collector_config_validates_with_compose_env() -> None:
    """The compose stack mounts collector/otel-collector.yaml with its own env
    (e.g. TRADEOBS_*_EXPORTERS naming exporter IDs): that combination must be
    valid too, so renaming a component here cannot silently break compose."""
    if not (REPO / "compose").is_dir():
        return
    cases = _compose_collector_envs()
    assert cases, "no compose service mounts collector/otel-collector.yaml"
    binary = find_binary("otelcol-tradeobs")
    for where, env in cases:
        res = _run([binary, "validate", "--config", f"file:{COLLECTOR_CONFIG}"], env)
        _assert_ok(res, f"validate with the environment of {where}")


def test_agent_tier_config_validates_with_each_resolver() -> None:
    """collector/otel-collector-agent.yaml picks its load_balancing exporters by TRADEOBS_GATEWAY_RESOLVER:
    both values give a valid config, and a wrong one fails naming the exporter it would need."""
    binary = find_binary("otelcol-tradeobs")
    agent = REPO / "collector" / "otel-collector-agent.yaml"
    for resolver in ("static", "dns"):
        env = {"TRADEOBS_GATEWAY_RESOLVER": resolver, "TRADEOBS_GATEWAY_ENDPOINTS": "[gateway-1:4317, gateway-2:4317]"}
        _assert_ok(_run([binary, "validate", "--config", f"file:{agent}"], env), f"validate agent tier ({resolver})")
    res = _run([binary, "validate", "--config", f"file:{agent}"], {"TRADEOBS_GATEWAY_RESOLVER": "dsn"})
    # the collector names the first pipeline it checks, in no fixed order
    assert res.returncode != 0 and re.search(r"load_balancing/(traces|metrics|logs)_dsn", res.stderr + res.stdout)


def test_collector_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    """The validation above can fail: an unknown exporter in a pipeline."""
    binary = find_binary("otelcol-tradeobs")
    env = {"TRADEOBS_LOGS_EXPORTERS": "[no_such_exporter]"}
    res = _run([binary, "validate", "--config", f"file:{COLLECTOR_CONFIG}"], env)
    assert res.returncode != 0
    assert "no_such_exporter" in res.stderr + res.stdout


def test_collector_has_exactly_the_components_we_ship() -> None:
    """The binary contains what builder-config.yaml lists (and the config uses)."""
    binary = find_binary("otelcol-tradeobs")
    res = _run([binary, "components"])
    _assert_ok(res, "components")
    for name in (
        "otlp",
        "memory_limiter",
        "batch",
        "attributes",
        "transform",
        "filter",
        "resource",
        "prometheus",
        "otlp_grpc",
        "otlp_http",
        "file",
        "debug",
        "health_check",
        "pprof",
        "zpages",
        "file_storage",
        "load_balancing",
        "tail_sampling",
    ):
        assert f"- name: {name}\n" in res.stdout, f"component {name} missing:\n{res.stdout}"


@pytest.mark.parametrize("config", jaeger_configs(), ids=_ids(jaeger_configs()))
def test_jaeger_config_validates(config: Path) -> None:
    binary = find_binary("jaeger")
    _assert_ok(_run([binary, "validate", "--config", f"file:{config}"]), f"jaeger validate {config}")


def _prometheus_cases() -> list[pytest.param]:
    cases = [pytest.param(p, id=str(p.relative_to(REPO))) for p in prometheus_configs()]
    cases.append(pytest.param(None, id="generated-test-config"))
    return cases


@pytest.mark.parametrize("config", _prometheus_cases())
def test_promtool_check_config(config: Path | None, tmp_path: Path) -> None:
    if config is None:
        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config("127.0.0.1:8889", "127.0.0.1:8888", "127.0.0.1:9093"))
    promtool = find_binary("promtool")
    _assert_ok(_run([promtool, "check", "config", str(config)]), f"promtool check config {config}")


def _alertmanager_cases() -> list[pytest.param]:
    cases = [pytest.param(p, id=str(p.relative_to(REPO))) for p in alertmanager_configs()]
    cases.append(pytest.param(None, id="generated-test-config"))
    return cases


@pytest.mark.parametrize("config", _alertmanager_cases())
def test_amtool_check_config(config: Path | None, tmp_path: Path) -> None:
    if config is None:
        config = tmp_path / "alertmanager.yml"
        config.write_text(ALERTMANAGER_TEST_CONFIG)
    amtool = find_binary("amtool")
    _assert_ok(_run([amtool, "check-config", str(config)]), f"amtool check-config {config}")
