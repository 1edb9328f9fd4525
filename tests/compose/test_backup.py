"""Backup/restore round trip against a real Prometheus (Debian 2.42).

backup.sh runs twice: natively (curl) and under busybox only (sh, wget, tar,
gzip, sha256sum: the toolset of the compose `backup` container)."""

from __future__ import annotations

import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest

from .helpers import BACKUP_DIR, require_binary, start_prometheus, wait_until

SELF_SCRAPE = """
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: backup-test
    static_configs:
      - targets: ["127.0.0.1:__PORT__"]
        labels: {marker: "%s"}
"""
NO_SCRAPE = "global: {scrape_interval: 1m}\n"


def _busybox_path(tmp: Path) -> str:
    bindir = tmp / "busybox-bin"
    if not bindir.exists():
        bindir.mkdir()
        subprocess.run([require_binary("busybox"), "--install", "-s", str(bindir)], check=True)
    return str(bindir)


def run_script(
    script: str, env: dict[str, str], tmp: Path, busybox_only: bool, *args: str
) -> subprocess.CompletedProcess[str]:
    if busybox_only:
        full = {**env, "PATH": _busybox_path(tmp)}
        cmd = [require_binary("busybox"), "sh", str(BACKUP_DIR / script), *args]
    else:
        require_binary("curl")
        full = {**env, "PATH": os.environ["PATH"]}
        cmd = ["sh", str(BACKUP_DIR / script), *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=300)


def _query(url: str, expr: str, at: float | None = None) -> list:  # type: ignore[type-arg]
    params = {"query": expr}
    if at is not None:
        params["time"] = str(at)
    r = httpx.get(f"{url}/api/v1/query", params=params, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]  # type: ignore[no-any-return]


@pytest.mark.integration
@pytest.mark.parametrize("busybox_only", [False, True], ids=["native-curl", "busybox-wget"])
def test_backup_restore_round_trip(tmp_path: Path, procs, busybox_only: bool) -> None:  # type: ignore[no-untyped-def]
    marker = uuid.uuid4().hex
    data = tmp_path / "prom-data"
    _, url = start_prometheus(procs, tmp_path, "source", SELF_SCRAPE % marker, data, ["--web.enable-admin-api"])
    found = wait_until(lambda: _query(url, f'up{{marker="{marker}"}}'), "self-scrape sample")
    sample_time = float(found[0]["value"][0])

    grafana = tmp_path / "grafana"
    (grafana / "plugins").mkdir(parents=True)
    (grafana / "grafana.db").write_bytes(b"sqlite-bytes")
    textfile = tmp_path / "textfile"
    out = tmp_path / "backups"
    env = {
        "PROMETHEUS_URL": url,
        "PROMETHEUS_DATA_DIR": str(data),
        "BACKUP_DIR": str(out),
        "BACKUP_KEEP": "3",
        "BACKUP_VOLUMES": f"grafana={grafana}",
        "BACKUP_TEXTFILE_DIR": str(textfile),
    }
    res = run_script("backup.sh", env, tmp_path, busybox_only)
    assert res.returncode == 0, res.stderr
    backup = Path(res.stdout.strip().splitlines()[-1])
    assert backup.parent == out and backup.name.startswith("tradeobs-")

    # the snapshot tarball holds TSDB blocks; the snapshot dir was cleaned up
    snap = backup / "prometheus.tar.gz"
    assert snap.is_file()
    with tarfile.open(snap) as tf:
        names = tf.getnames()
    assert any(n.endswith("/meta.json") for n in names), names
    assert not list((data / "snapshots").iterdir())
    assert (backup / "grafana.tar.gz").is_file()
    manifest = (backup / "MANIFEST").read_text()
    assert "prometheus.tar.gz" in manifest and "grafana.tar.gz" in manifest

    # the metrics file is valid exposition format
    prom_file = textfile / "tradeobs_backup.prom"
    check = subprocess.run(
        [require_binary("promtool"), "check", "metrics"], input=prom_file.read_text(), capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tradeobs_backup_last_run_success 1" in prom_file.read_text()

    # restore into fresh dirs and serve the restored TSDB from a second Prometheus
    restored = tmp_path / "restored-data"
    grafana2 = tmp_path / "grafana-restored"
    renv = {"PROMETHEUS_DATA_DIR": str(restored), "BACKUP_VOLUMES": f"grafana={grafana2}"}
    res = run_script("restore.sh", renv, tmp_path, busybox_only, str(backup))
    assert res.returncode == 0, res.stderr
    assert (grafana2 / "grafana.db").read_bytes() == b"sqlite-bytes"
    assert (grafana2 / "plugins").is_dir()

    _, url2 = start_prometheus(procs, tmp_path, "restored", NO_SCRAPE, restored)
    series = _query(url2, f'up{{marker="{marker}"}}', at=sample_time)
    assert series and series[0]["metric"]["job"] == "backup-test", series


@pytest.mark.integration
def test_rotation_keeps_newest(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "prom-data"
    _, url = start_prometheus(procs, tmp_path, "source", NO_SCRAPE, data, ["--web.enable-admin-api"])
    out = tmp_path / "backups"
    env = {"PROMETHEUS_URL": url, "PROMETHEUS_DATA_DIR": str(data), "BACKUP_DIR": str(out), "BACKUP_KEEP": "2"}
    made = []
    for _ in range(4):
        res = run_script("backup.sh", env, tmp_path, busybox_only=False)
        assert res.returncode == 0, res.stderr
        made.append(res.stdout.strip().splitlines()[-1])
    left = sorted(str(p) for p in out.iterdir())
    assert left == sorted(made[-2:])


@pytest.mark.integration
def test_backup_fails_cleanly_without_admin_api(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "prom-data"
    _, url = start_prometheus(procs, tmp_path, "source", NO_SCRAPE, data)  # no admin API
    out = tmp_path / "backups"
    textfile = tmp_path / "textfile"
    env = {
        "PROMETHEUS_URL": url,
        "PROMETHEUS_DATA_DIR": str(data),
        "BACKUP_DIR": str(out),
        "BACKUP_TEXTFILE_DIR": str(textfile),
    }
    res = run_script("backup.sh", env, tmp_path, busybox_only=False)
    assert res.returncode != 0
    assert "admin-api" in res.stderr
    assert list(out.iterdir()) == []  # no partial backup left behind
    assert "tradeobs_backup_last_run_success 0" in (textfile / "tradeobs_backup.prom").read_text()


def _fake_backup(tmp: Path) -> Path:
    b = tmp / "tradeobs-20260101T000000Z"
    (tmp / "content").mkdir()
    (tmp / "content" / "x").write_text("x")
    b.mkdir()
    with tarfile.open(b / "prometheus.tar.gz", "w:gz") as tf:
        tf.add(tmp / "content", arcname=".")
    digest = subprocess.run(
        ["sha256sum", "./prometheus.tar.gz"], cwd=b, capture_output=True, text=True, check=True
    ).stdout
    (b / "MANIFEST").write_text(f"# tradeobs backup\n# sha256\n{digest}")
    return b


def test_restore_refuses_non_empty_target_and_corrupt_backups(tmp_path: Path) -> None:
    b = _fake_backup(tmp_path)
    target = tmp_path / "target"
    target.mkdir()
    (target / "old").write_text("old")
    env = {"PROMETHEUS_DATA_DIR": str(target)}
    res = run_script("restore.sh", env, tmp_path, True, str(b))
    assert res.returncode != 0 and "not empty" in res.stderr
    res = run_script("restore.sh", env, tmp_path, True, "--force", str(b))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in target.iterdir()) == ["x"]

    with (b / "prometheus.tar.gz").open("ab") as f:
        f.write(b"corruption")
    res = run_script("restore.sh", env, tmp_path, True, "--force", str(b))
    assert res.returncode != 0 and "checksum" in res.stderr
    assert (target / "x").read_text() == "x"  # untouched


@pytest.mark.integration
def test_a_volume_written_while_archived_is_backed_up_with_a_warning(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    """Run from cron on the host (docs/deployment.md, "Cron instead of the service"), backup.sh archives live Jaeger
    and Loki volumes with GNU tar, which exits 1 when a file changed while it read it: every night's backup failed
    (measured: Badger's memtable file, benchmarks/small_host.py). Now it is a warning, and the backup is made.

    A thread appends to a file of the volume until the backup ends; a run where tar happened to read the file
    between two appends proves nothing, so the backup runs until one run met a change (GNU tar said so)."""
    import threading

    assert b"GNU tar" in subprocess.run(["tar", "--version"], capture_output=True, check=True).stdout
    data = tmp_path / "prom-data"
    _, url = start_prometheus(procs, tmp_path, "source", NO_SCRAPE, data, ["--web.enable-admin-api"])
    volume = tmp_path / "jaeger"
    volume.mkdir()
    growing = volume / "00001.mem"
    growing.write_bytes(os.urandom(1 << 20) * 32)  # 32 MiB: tar takes a while to read it
    out = tmp_path / "backups"
    env = {
        "PROMETHEUS_URL": url,
        "PROMETHEUS_DATA_DIR": str(data),
        "BACKUP_DIR": str(out),
        "BACKUP_KEEP": "1",
        "BACKUP_VOLUMES": f"jaeger={volume}",
    }
    stop = threading.Event()

    def append() -> None:
        with growing.open("ab") as f:
            while not stop.is_set():
                f.write(b"x" * 4096)
                f.flush()

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    try:
        for _ in range(20):
            res = run_script("backup.sh", env, tmp_path, busybox_only=False)
            assert res.returncode == 0, res.stderr
            if "file changed as we read it" in res.stderr:
                break
        else:
            pytest.fail("GNU tar never saw the file change in 20 backups")
    finally:
        stop.set()
        writer.join()
    assert "warning: archived while written (live volume)" in res.stderr
    backup = Path(res.stdout.strip().splitlines()[-1])
    with tarfile.open(backup / "jaeger.tar.gz") as tf:
        assert "./00001.mem" in tf.getnames()
    assert "jaeger.tar.gz" in (backup / "MANIFEST").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("busybox_only", [False, True], ids=["native-curl", "busybox-wget"])
def test_a_backup_that_would_fill_the_disk_is_refused_and_leaves_nothing(
    tmp_path: Path,
    procs,  # type: ignore[no-untyped-def]
    busybox_only: bool,
) -> None:
    """A backup lands a whole copy of the stores on the disk they write to: on a nearly full disk it filled it and
    stopped Prometheus, Jaeger and Loki writing. Below BACKUP_MIN_FREE_PCT free it is refused, says why, leaves no
    partial backup, and reports a failed run (what BackupTooOld pages on)."""
    data = tmp_path / "prom-data"
    _, url = start_prometheus(procs, tmp_path, "source", NO_SCRAPE, data, ["--web.enable-admin-api"])
    out = tmp_path / "backups"
    out.mkdir()
    textfile = tmp_path / "textfile"
    fs = os.statvfs(out)
    floor = min(100, fs.f_bavail * 100 // fs.f_blocks + 1)  # more than is free now, whatever this disk holds
    env = {
        "PROMETHEUS_URL": url,
        "PROMETHEUS_DATA_DIR": str(data),
        "BACKUP_DIR": str(out),
        "BACKUP_TEXTFILE_DIR": str(textfile),
        "BACKUP_MIN_FREE_PCT": str(floor),
    }
    res = run_script("backup.sh", env, tmp_path, busybox_only)
    assert res.returncode != 0, res.stderr
    assert f"not enough disk for a backup in {out}" in res.stderr and f"BACKUP_MIN_FREE_PCT={floor}%" in res.stderr
    assert list(out.iterdir()) == []
    assert "tradeobs_backup_last_run_success 0" in (textfile / "tradeobs_backup.prom").read_text()
    bad = run_script("backup.sh", {**env, "BACKUP_MIN_FREE_PCT": "5%"}, tmp_path, busybox_only)
    assert bad.returncode != 0 and "BACKUP_MIN_FREE_PCT must be an integer from 0 to 100, got '5%'" in bad.stderr
    ok = run_script("backup.sh", {**env, "BACKUP_MIN_FREE_PCT": "0"}, tmp_path, busybox_only)  # 0: never refused
    assert ok.returncode == 0, ok.stderr
    assert "tradeobs_backup_last_run_success 1" in (textfile / "tradeobs_backup.prom").read_text()
