"""Memory and disk limits of the compose stack, as `docker-compose config` resolves them (base file, and with the
small-host override compose/docker-compose.small.yml).

- Every Go process collects harder before the kernel OOM-kills it at its container limit: GOMEMLIMIT set, at most 90%
  of the limit. Those that take data over OTLP (our collector, its tiers, Jaeger) also REFUSE it first: memory_limiter
  first in every pipeline, its hard limit at most 80% of the container limit (the process's RSS is about 50 MiB above
  it, memorylimiterprocessor's README), and GOMEMLIMIT between its soft and hard limits (the README: 80% of the hard
  limit). Without them Jaeger had no limit at all and none of the Go services had a GOMEMLIMIT.
- The small-host profile fits a 2 GiB host beside the trading bot, and its Prometheus with its backups fits a 40 GB
  disk; the base file's disk need is what docs/deployment.md says.

docs/deployment.md, "Resource sizing" and "Small host (2 GiB)", has the measurements (benchmarks/small_host.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import COMPOSE_DIR, DOCS, REPO, require_binary

SMALL = COMPOSE_DIR / "docker-compose.small.yml"

# Not Go: nothing to limit in the Go runtime (Python: the agent bounds its own queues, docs/agent.md).
NOT_GO = {"trading-demo": "Python", "live-gateway": "Python", "backup": "busybox sh, tar, gzip"}
# The OpenTelemetry Collector family: the config file each loads (host path).
OTEL_CONFIGS = {
    "otel-collector": REPO / "collector" / "otel-collector.yaml",
    "otel-agent": REPO / "collector" / "otel-collector-agent.yaml",
    "otel-gateway-0": REPO / "collector" / "otel-collector-gateway.yaml",
    "otel-gateway-1": REPO / "collector" / "otel-collector-gateway.yaml",
    "jaeger": COMPOSE_DIR / "jaeger" / "jaeger.yaml",
}
LIMITER_MAX = 0.80  # memory_limiter hard limit / container limit
# RSS beyond the Go heap of our collector: 100 MiB with a 30 MiB heap at 10 symbols (benchmarks/small_host.py;
# memorylimiterprocessor's README says about 50): at its hard limit the process must still be under its limit.
RSS_ABOVE_HEAP_MIB = 70
GOMEMLIMIT_MAX = 0.90  # GOMEMLIMIT / container limit

HOST_MIB = 2048
HOST_RESERVE_MIB = 512  # kernel, systemd, sshd, dockerd + containerd, and the bot itself (docs/deployment.md)
DISK_GB = 40
DISK_OTHER_GB = 10  # OS, images, Jaeger, Loki, the collector's queue, the bot's logs (docs/deployment.md)

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}
_UNITS |= {"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def _bytes(value: str) -> float:
    """Docker's memory (512M, 2G: powers of two), Go's GOMEMLIMIT (320MiB) and Prometheus' sizes (8GB: powers of
    two too, its docs) -> bytes."""
    m = re.fullmatch(r"([0-9.]+)\s*([a-zA-Z]*)", str(value).strip())
    assert m, value
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def _mib(value: str) -> float:
    return _bytes(value) / (1 << 20)


def _resolve(tmp: Path, small: bool) -> dict[str, Any]:
    """`docker-compose config` of the base file (+ the small override): merges, anchors and ${VAR:-default}
    resolved as compose resolves them, with .env.example as `cp` makes it compose/.env (its retention and
    backup settings must not undo the small profile's) and a password."""
    binary = require_binary("docker-compose")
    base = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    base.pop("name")  # Debian's docker-compose 1.29 predates it (test_compose_schema.py)
    (tmp / "docker-compose.yml").write_text(yaml.safe_dump(base, sort_keys=False))
    example = (COMPOSE_DIR / ".env.example").read_text()
    env = re.sub(r"(?m)^GRAFANA_ADMIN_PASSWORD=.*$", "GRAFANA_ADMIN_PASSWORD=Zq8x4test", example)
    (tmp / "test.env").write_text(env)
    files = ["-f", str(tmp / "docker-compose.yml")] + (["-f", str(SMALL)] if small else [])
    res = subprocess.run(
        [binary, "--project-directory", str(COMPOSE_DIR), "--env-file", str(tmp / "test.env"), *files, "config"],
        capture_output=True,
        text=True,
        cwd=COMPOSE_DIR,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    doc = yaml.safe_load(res.stdout)
    assert isinstance(doc, dict)
    return doc


_RESOLVED: dict[bool, dict[str, Any]] = {}
_TMP: list[pytest.TempPathFactory] = []


@pytest.fixture(autouse=True)
def _tmp_factory(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TMP[:] = [tmp_path_factory]


def _resolved(small: bool) -> dict[str, Any]:
    """_resolve, once per module run."""
    if small not in _RESOLVED:
        _RESOLVED[small] = _resolve(_TMP[0].mktemp("compose-small"), small)
    return _RESOLVED[small]


def _limit_mib(svc: dict[str, Any]) -> float:
    return _mib(svc["deploy"]["resources"]["limits"]["memory"])


def _env_value(text: str, env: dict[str, Any]) -> str:
    """``${env:NAME:-default}`` of a collector/Jaeger config, as the service's environment makes it."""
    m = re.fullmatch(r"\$\{env:(\w+):-([^}]*)\}", text.strip())
    if not m:
        return text
    return str(env.get(m.group(1), m.group(2)))


def _memory_limiter(config: Path, env: dict[str, Any]) -> tuple[float, float]:
    """(hard, soft) MiB of the config's memory_limiter, which must be first in every pipeline."""
    doc = yaml.safe_load(config.read_text())
    for name, pipeline in doc["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", f"{config.name}: {name} does not start with it"
    ml = doc["processors"]["memory_limiter"]
    hard = float(_env_value(str(ml["limit_mib"]), env))
    spike = float(_env_value(str(ml["spike_limit_mib"]), env))
    assert 0 < spike < hard, (config.name, hard, spike)
    return hard, hard - spike


@pytest.mark.parametrize("small", [False, True], ids=["base", "small"])
def test_every_go_service_yields_before_the_kernel_oom_kills_it(small: bool) -> None:
    services = _resolved(small)["services"]
    problems = []
    for name, svc in services.items():
        if name in NOT_GO:
            continue
        limit = _limit_mib(svc)
        env = svc.get("environment") or {}
        if "GOMEMLIMIT" not in env:
            problems.append(f"{name}: no GOMEMLIMIT (container limit {limit:.0f} MiB)")
            continue
        gomem = _mib(env["GOMEMLIMIT"])
        if gomem > GOMEMLIMIT_MAX * limit:
            problems.append(f"{name}: GOMEMLIMIT {gomem:.0f} MiB > {GOMEMLIMIT_MAX:.0%} of its {limit:.0f} MiB")
        if name in OTEL_CONFIGS:
            hard, soft = _memory_limiter(OTEL_CONFIGS[name], env)
            if hard > LIMITER_MAX * limit or hard + RSS_ABOVE_HEAP_MIB > limit:
                problems.append(
                    f"{name}: memory_limiter {hard:.0f} MiB > {LIMITER_MAX:.0%} of its {limit:.0f} MiB"
                    f" or {limit - RSS_ABOVE_HEAP_MIB:.0f} (the limit less the RSS above the heap)"
                )
            if not soft <= gomem <= hard:
                problems.append(f"{name}: GOMEMLIMIT {gomem:.0f} MiB outside memory_limiter's {soft:.0f}-{hard:.0f}")
    assert not problems, "\n".join(problems)


def test_every_service_is_classified() -> None:
    """A new service is either Go (and checked above) or listed as not Go with what it runs."""
    images = {n: str(s.get("image", "")) for n, s in _resolved(False)["services"].items()}
    assert {n for n, i in images.items() if "trading-demo" in i or "busybox" in i} == set(NOT_GO)
    assert {n for n, i in images.items() if "otelcol" in i or "jaeger" in i} == set(OTEL_CONFIGS)


def test_the_check_catches_a_service_without_a_limiter(tmp_path: Path) -> None:
    """The rule above can fail: Jaeger's config as it was (no memory_limiter) is caught."""
    doc = yaml.safe_load(OTEL_CONFIGS["jaeger"].read_text())
    doc["service"]["pipelines"]["traces"]["processors"].remove("memory_limiter")
    old = tmp_path / "jaeger.yaml"
    old.write_text(yaml.safe_dump(doc))
    with pytest.raises(AssertionError, match="does not start with it"):
        _memory_limiter(old, {})


def _starts_by_default(svc: dict[str, Any]) -> bool:
    return not svc.get("profiles")


def test_small_profile_fits_a_2_gib_host() -> None:
    """The limits of what starts without a profile add up to what a 2 GiB host has after the kernel, dockerd and the
    bot: with no swap, a container can use all of its limit without the host's OOM killer choosing the bot."""
    services = _resolved(True)["services"]
    started = {n: _limit_mib(s) for n, s in services.items() if _starts_by_default(s)}
    assert "trading-demo" not in started and "nats" not in started
    assert sum(started.values()) <= HOST_MIB - HOST_RESERVE_MIB, started
    # what the base file starts does not (docs/deployment.md: 8 GB recommended)
    base = _resolved(False)["services"]
    assert sum(_limit_mib(s) for s in base.values() if _starts_by_default(s)) > HOST_MIB
    # the live gateway still has its NATS when asked for
    assert services["nats"]["profiles"] == services["live-gateway"]["profiles"] == ["gateway"]


def _flag(svc: dict[str, Any], name: str) -> str:
    (value,) = [c.split("=", 1)[1] for c in svc["command"] if c.startswith(f"--{name}=")]
    return value


def _prometheus_and_backups_gb(small: bool) -> float:
    """The most Prometheus and the backups of it can hold: the TSDB at its size cap and BACKUP_KEEP archives of it
    (a snapshot of chunks that are compressed already: gzip saves little, docs/deployment.md)."""
    services = _resolved(small)["services"]
    size = _bytes(_flag(services["prometheus"], "storage.tsdb.retention.size")) / 1e9
    keep = int(services["backup"]["environment"]["BACKUP_KEEP"])
    return size * (1 + keep)


def test_small_profile_prometheus_and_backups_fit_a_40_gb_disk() -> None:
    """With HostDiskSpaceLow's 15% kept free and room for the rest (OS, images, traces, logs)."""
    assert _prometheus_and_backups_gb(True) <= DISK_GB * 0.85 - DISK_OTHER_GB


def test_small_profile_changes_only_the_retention_of_prometheus_command() -> None:
    base, small = (_resolved(s)["services"]["prometheus"]["command"] for s in (False, True))
    size = "--storage.tsdb.retention.size="
    assert [c for c in base if not c.startswith(size)] == [c for c in small if not c.startswith(size)]


def test_deployment_doc_asks_for_the_disk_the_defaults_can_fill() -> None:
    """docs/deployment.md's minimum disk holds Prometheus at its size cap and its BACKUP_KEEP backups (it said 20 GB
    while the defaults, 8GB and 7 backups, can hold 64 GB)."""
    text = (DOCS / "deployment.md").read_text()
    m = re.search(r"Minimum host: 2 vCPU, (\d+) GB RAM, (\d+) GB disk", text)
    assert m, "docs/deployment.md no longer states the minimum host"
    assert float(m.group(2)) >= _prometheus_and_backups_gb(False) + DISK_OTHER_GB
