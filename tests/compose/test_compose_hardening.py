"""Container hardening of compose/docker-compose.yml, checked statically (there is no Docker engine here),
plus the part that runs natively: restore.sh as root with only the capabilities compose gives it.
(The Grafana password checks: test_compose_password.py.)

Every service: no-new-privileges, every capability dropped (added back only with a reason listed here),
an explicit non-root user (root only with a reason listed here), a read-only root filesystem with a
writable mount (volume or tmpfs) for each path the process writes, and no tmpfs it does not need.

WRITES is the evidence. "strace" rows: the same release run natively (the binaries the tests build,
Debian's prometheus 2.42 / alertmanager 0.25 / node-exporter 1.5 for the prom/* images) under
`strace -f -e trace=openat,mkdir,rename,unlink,...` with the compose config, every path opened for
writing listed (docs/deployment.md, "Container hardening", has the table). "source" rows: read from
the image's source, for the two components that cannot run here (Grafana, Loki: AGPL, images only).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import COMPOSE_DIR, DOCS, REPO, load_compose, require_binary

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

# service -> {path it writes: evidence}. A read-only service needs each on a writable mount.
WRITES: dict[str, dict[str, str]] = {
    "trading-demo": {},  # strace of `tradeobs demo`, TRADEOBS_LOG_DIR="": nothing (default ./logs: 5 files)
    "live-gateway": {},  # strace of `tradeobs live gateway` against nats-server: nothing
    "otel-collector": {"/var/lib/otelcol/queue": "strace: queue files and compaction's tempdb* (same directory)"},
    "otel-agent": {"/var/lib/otelcol/queue": "as otel-collector (compaction.directory = the queue directory)"},
    "otel-gateway-0": {"/var/lib/otelcol/queue": "as otel-collector"},
    "otel-gateway-1": {"/var/lib/otelcol/queue": "as otel-collector"},
    "prometheus": {"/prometheus": "strace: wal, chunks_head, queries.active, lock, snapshots (admin API)"},
    "alertmanager": {
        "/alertmanager": "strace: nflog, silences (and their temp files) in --storage.path",
        "/run/alertmanager": "render.sh writes the rendered config and the secret files there",
    },
    "grafana": {
        "/var/lib/grafana": "source: run.sh mkdirs GF_PATHS_PLUGINS there; grafana.db, csv/png/pdf dirs",
        "/tmp": "source: SQLite temp files (SQLITE_TMPDIR unset: first writable of /var/tmp, /usr/tmp, /tmp)",
    },
    "jaeger": {"/var/lib/jaeger": "strace: Badger keys/ and values/ (LOCK, MANIFEST, vlog, mem tables)"},
    "loki": {"/loki": "source: loki.yaml's paths and config_wrapper.go's path_prefix defaults (wal, rules-temp...)"},
    "nats": {"/data": "strace: JetStream store_dir (nats.conf)"},
    "node-exporter": {},  # strace of node_exporter with --path.rootfs and a textfile dir: nothing
    "backup": {
        "/backups": "backup.sh: the backup runs",
        "/textfile": "backup.sh: tradeobs_backup.prom",
        "/data/prometheus": "backup.sh removes the snapshot Prometheus wrote under snapshots/",
        "/tmp": "schedule.sh: /tmp/backup-last-ok, read by healthcheck.sh",
    },
    "thanos-receive-0": {"/var/thanos": "strace: receive TSDB (wal, chunks_head, blocks, lock) in --tsdb.path"},
    "thanos-receive-1": {"/var/thanos": "as thanos-receive-0"},
    "thanos-query": {},  # strace of `thanos query`: nothing
}

# Services that run as uid 0, and why. Nothing else may.
ROOT_SERVICES = {
    "backup": "reads the volumes of five services, each owned by another uid (some files owner-only), "
    "removes Prometheus' snapshot and writes the operator's host directory",
}
# Capabilities added back after cap_drop ALL, and why. Nothing else may add any.
ADDED_CAPABILITIES = {
    "backup": {"DAC_OVERRIDE": "root without capabilities is held to file permissions: see ROOT_SERVICES"},
}
# The user each upstream image declares (its Dockerfile's USER) and the data directory it owns for that user:
# a named volume mounted there copies that ownership, so compose's `user:` must be the same uid.
UPSTREAM_USER = {
    "prom/prometheus": ("65534", "/prometheus"),  # USER nobody; chown nobody /prometheus
    "prom/alertmanager": ("65534", "/alertmanager"),  # USER nobody; chown nobody /alertmanager
    "prom/node-exporter": ("65534", None),  # USER nobody
}
PROBE_DOCKERFILE = COMPOSE_DIR / "images" / "probe" / "Dockerfile"


def _uid(svc: dict[str, Any]) -> str:
    return str(svc["user"]).split(":")[0]


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """{target: "volume" | "bind" | "tmpfs"} for the writable mounts; read-only mounts are left out."""
    out = {}
    for vol in svc.get("volumes", []):
        source, rest = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):(.*)", vol).groups()  # type: ignore[union-attr]
        target, _, mode = rest.partition(":")
        if "ro" in mode.split(","):
            continue
        out[target] = "bind" if source.startswith(("./", "../", "/", "${")) else "volume"
    for t in svc.get("tmpfs", []):
        out[t.split(":")[0]] = "tmpfs"
    return out


def test_the_evidence_table_covers_every_service() -> None:
    assert set(WRITES) == set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_new_privileges_and_every_capability_dropped(name: str) -> None:
    svc = SERVICES[name]
    assert "no-new-privileges:true" in svc.get("security_opt", []), f"{name}: security_opt no-new-privileges"
    assert svc.get("cap_drop") == ["ALL"], f"{name}: cap_drop [ALL]"
    assert set(svc.get("cap_add", [])) == set(ADDED_CAPABILITIES.get(name, {})), f"{name}: cap_add without a reason"
    assert not svc.get("privileged"), name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_runs_as_an_explicit_non_root_user(name: str) -> None:
    """An explicit numeric `user:` on every service (an image's default can change under a tag bump);
    uid 0 only for the services listed with their reason."""
    svc = SERVICES[name]
    assert "user" in svc, f"{name}: no explicit user (the image's default may be root)"
    assert re.fullmatch(r"\d+(:\d+)?", str(svc["user"])), f"{name}: user {svc['user']!r} must be numeric uid[:gid]"
    is_root = _uid(svc) == "0"
    assert is_root == (name in ROOT_SERVICES), f"{name}: runs as uid {_uid(svc)}"


def _dockerfile_user(path: Path) -> str:
    users = re.findall(r"^USER\s+(\S+)\s*$", path.read_text(), re.M)
    assert users, f"{path} has no USER"
    return users[-1]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_user_owns_what_its_image_prepared(name: str) -> None:
    """The uid compose runs is the one the image made its data directory for: a fresh named volume copies
    the image directory's ownership, so a different uid could not write its own state."""
    svc = SERVICES[name]
    # live-gateway runs the image trading-demo builds
    build = svc.get("build") or next(
        (s["build"] for s in SERVICES.values() if s["image"] == svc["image"] and "build" in s), None
    )
    image = svc["image"].split(":")[0]
    if build and (COMPOSE_DIR / build["context"]).resolve() == PROBE_DOCKERFILE.parent:
        assert str(svc["user"]) == build["args"]["RUN_AS"], f"{name}: user != the probe build's RUN_AS"
        written = [p for p in WRITES[name] if _mounts(svc).get(p) == "volume"]
        assert all(p == build["args"]["DATA_DIR"] for p in written), f"{name}: {written} not the prepared DATA_DIR"
    elif build:
        dockerfile = (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve()
        assert str(svc["user"]) == _dockerfile_user(dockerfile), f"{name}: user != {dockerfile.name}'s USER"
        if dockerfile == REPO / "collector" / "Dockerfile":
            assert "chown -R 10001:10001 /var/lib/otelcol" in dockerfile.read_text()
            assert all(p.startswith("/var/lib/otelcol/") for p in WRITES[name]), name
        else:
            assert WRITES[name] == {}, f"{name}: its image prepares no directory to write"
    elif image in UPSTREAM_USER:
        uid, data_dir = UPSTREAM_USER[image]
        assert _uid(svc) == uid, f"{name}: user != {image}'s USER"
        assert [p for p in WRITES[name] if _mounts(svc).get(p) == "volume"] == ([data_dir] if data_dir else [])
    else:
        assert name in ROOT_SERVICES, f"{name}: upstream image {image} with no known user: add it to UPSTREAM_USER"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_read_only_root_with_a_writable_mount_for_each_written_path(name: str) -> None:
    svc = SERVICES[name]
    assert svc.get("read_only") is True, f"{name}: read_only"
    mounts = _mounts(svc)
    for path in WRITES[name]:
        assert path in mounts, f"{name} writes {path}: no writable volume or tmpfs there"
    # a tmpfs only where the service writes (no blanket /tmp), each with a size bound (it is memory)
    for t in svc.get("tmpfs", []):
        target, _, opts = t.partition(":")
        assert target in WRITES[name], f"{name}: tmpfs {target} that nothing writes"
        assert re.search(r"(^|,)size=\d+[km]?($|,)", opts), f"{name}: tmpfs {target} without size="
        # non-root users write these: state the mode rather than rely on the engine's default
        assert "mode=1777" in opts.split(","), f"{name}: tmpfs {target} without mode=1777"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_writes_nothing(name: str) -> None:
    """wget without -O writes the page into the working directory: on a read-only root that fails and the
    service would be reported unhealthy while it is fine."""
    test = SERVICES[name]["healthcheck"]["test"]
    if "wget" in test:
        i = test.index("-O")
        assert test[i + 1] == "/dev/null", f"{name}: healthcheck output must go to /dev/null"
    elif test[1] == "python":
        # compose/Dockerfile: no bytecode written next to the package
        assert "PYTHONDONTWRITEBYTECODE=1" in (COMPOSE_DIR / "Dockerfile").read_text()
    else:
        assert test[1:] == ["/bin/sh", "/opt/backup/healthcheck.sh"], name
        assert "/tmp/backup-last-ok" in (COMPOSE_DIR / "backup" / "healthcheck.sh").read_text()


def test_demo_writes_no_log_files_in_the_container() -> None:
    for name in ("trading-demo",):
        assert SERVICES[name]["environment"]["TRADEOBS_LOG_DIR"] == ""


# --- restore: ownership ---------------------------------------------------------------------------------------


def _owned_backup(tmp_path: Path) -> tuple[Path, Path]:
    """A backup whose Grafana volume holds files owned by Grafana's uid (472), as a real one does."""
    grafana = tmp_path / "grafana-src"
    (grafana / "plugins").mkdir(parents=True)
    (grafana / "grafana.db").write_bytes(b"sqlite")
    for p in (grafana, grafana / "plugins", grafana / "grafana.db"):
        os.chown(p, 472, 0)
    prom = tmp_path / "prom-src"
    prom.mkdir()
    (prom / "meta.json").write_text("{}")
    b = tmp_path / "tradeobs-20260101T000000Z"
    b.mkdir()
    busybox = require_binary("busybox")
    subprocess.run([busybox, "tar", "-czf", str(b / "prometheus.tar.gz"), "-C", str(prom), "."], check=True)
    subprocess.run([busybox, "tar", "-czf", str(b / "grafana.tar.gz"), "-C", str(grafana), "."], check=True)
    digest = subprocess.run(
        [busybox, "sha256sum", "./prometheus.tar.gz", "./grafana.tar.gz"], cwd=b, capture_output=True, text=True
    ).stdout
    (b / "MANIFEST").write_text(f"# tradeobs backup\n# sha256\n{digest}")
    return b, grafana


def _restore_with(caps: str, backup: Path, tmp_path: Path, target: str) -> subprocess.CompletedProcess[str]:
    """restore.sh as root with only `caps` (as compose's backup container: cap_drop ALL + cap_add)."""
    env = {
        "PATH": os.environ["PATH"],
        "PROMETHEUS_DATA_DIR": str(tmp_path / target / "prometheus"),
        "BACKUP_VOLUMES": f"grafana={tmp_path / target / 'grafana'}",
    }
    return subprocess.run(
        [
            require_binary("setpriv"),
            "--inh-caps=-all",
            f"--bounding-set=-all,{caps}",
            require_binary("busybox"),
            "sh",
            str(COMPOSE_DIR / "backup" / "restore.sh"),
            str(backup),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_restore_as_root_without_chown_refuses_instead_of_leaving_root_owned_files(tmp_path: Path) -> None:
    """Measured: busybox tar as root without CAP_CHOWN extracts every file owned by root and exits 0; Grafana
    (uid 472) then cannot write its grafana.db. restore.sh refuses before touching anything; with the
    capabilities docs/deployment.md's restore command adds, the owners come back."""
    if os.geteuid() != 0:
        pytest.fail("this test restores as root, as the compose backup container does: run the suite as root")
    backup, source = _owned_backup(tmp_path)

    res = _restore_with("+dac_override", backup, tmp_path, "bare")
    assert res.returncode != 0 and "--cap-add CHOWN --cap-add FOWNER" in res.stderr, res.stderr
    assert not (tmp_path / "bare" / "grafana").exists()

    res = _restore_with("+dac_override,+chown,+fowner", backup, tmp_path, "capable")
    assert res.returncode == 0, res.stderr
    restored = tmp_path / "capable" / "grafana" / "grafana.db"
    assert restored.read_bytes() == b"sqlite" and restored.stat().st_uid == 472
    assert (tmp_path / "capable" / "grafana" / "plugins").stat().st_uid == 472
    assert int(restored.stat().st_mtime) == int((source / "grafana.db").stat().st_mtime)  # tar keeps seconds
    deployment = (DOCS / "deployment.md").read_text()
    assert "--cap-add CHOWN --cap-add FOWNER" in deployment
