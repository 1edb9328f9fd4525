"""Shared helpers for the compose deployment tests.

There is no Docker engine here: compose is validated statically (structure,
the Compose JSON schema, `docker-compose config`) and every component that
has a native binary (promtool, amtool, prometheus, alertmanager, the backup
scripts under busybox) is run for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._util import free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
PROM_DIR = COMPOSE_DIR / "prometheus"
AM_DIR = COMPOSE_DIR / "alertmanager"
GRAFANA_DIR = COMPOSE_DIR / "grafana"
BACKUP_DIR = COMPOSE_DIR / "backup"
DOCS = REPO / "docs"

# Debian package that provides each binary; installed for CI by
# scripts/install.d/20-apt.sh.
_PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "docker-compose": "docker-compose",
    "busybox": "busybox",
    "go": "golang (scripts/install.d/30-collector.sh needs it too)",
}

# Built from the Go module proxy by an install step, linked into $TRADEOBS_CACHE/bin.
_BUILT = {
    "alertmanager-compose": "scripts/install.d/45-alertmanager.sh",
    "amtool-compose": "scripts/install.d/45-alertmanager.sh",
}


def require_binary(name: str) -> str:
    """Path of a binary the test needs; FAILS (never skips) when missing."""
    path = shutil.which(name)
    if path is None and name in _BUILT:
        pytest.fail(
            f"{name} is not built: run `bash {_BUILT[name]}`, $TRADEOBS_CACHE/bin on PATH (scripts/test.sh does both)",
            pytrace=False,
        )
    if path is None:
        pkg = _PACKAGES.get(name, name)
        pytest.fail(
            f"{name} is not installed: run `apt-get install -y {pkg}` (install step scripts/install.d/20-apt.sh)",
            pytrace=False,
        )
    return path


def load_compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


def wait_until(check: Callable[[], Any], what: str, deadline_s: float = 60.0) -> Any:
    """Poll `check` until it returns a truthy value; fail with `what` after
    the deadline. The deadline only bounds a hang; it is not a measurement."""
    end = time.monotonic() + deadline_s
    last_exc: BaseException | None = None
    while time.monotonic() < end:
        try:
            result = check()
        except (httpx.HTTPError, OSError) as exc:
            last_exc = exc
        else:
            if result:
                return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what} (last error: {last_exc!r})")


class Proc:
    """A real process on loopback, logged to a file, stopped at teardown."""

    def __init__(self, args: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env if env is not None else os.environ.copy(),
        )

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        if self.popen.poll() is not None:
            pytest.fail(f"{self.args[0]} exited with {self.popen.returncode}:\n{self.log_text()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


@pytest.fixture
def procs() -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(args: list[str], log: Path, **kw: Any) -> Proc:
        p = Proc(args, log, **kw)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.stop()


def start_prometheus(
    start: Callable[..., Proc],
    tmp: Path,
    name: str,
    config: str,
    data_dir: Path,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Proc, str]:
    """Start Debian's prometheus on a free loopback port; return (proc, base URL)."""
    binary = require_binary("prometheus")
    port = free_port()
    cfg = tmp / f"{name}.yml"
    cfg.write_text(config.replace("__PORT__", str(port)))
    proc = start(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            *(extra or []),
        ],
        tmp / f"{name}.log",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        proc.assert_running()
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

    wait_until(ready, f"{name} ready")
    return proc, url


def load_dashgen() -> Any:
    """The dashboard generator package (compose/grafana/dashgen), importable without installing it."""
    import importlib
    import sys

    path = str(GRAFANA_DIR)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("dashgen")


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP handler that writes no access log line on stderr."""

    def log_message(self, *args: Any) -> None:
        pass


class LocalServer:
    """A stand-in for a service Alertmanager sends to (a webhook, SMTP, Telegram's API): ``server_cls`` with
    ``handler`` on a free 127.0.0.1 port (:attr:`address`), serving on a daemon thread until :meth:`close`."""

    def __init__(self, server_cls: Any, handler: Any) -> None:
        self.server = server_cls(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
