"""A Grafana admin password everyone can read (the old .env.example's change-me) must not run unnoticed.

.env.example carries none (compose refuses an empty one: test_compose_schema.py runs `docker-compose config`
on it); compose/up.sh and Grafana's compose entrypoint refuse the published defaults. Both run here for real:
up.sh with a recording `docker`, the entrypoint under busybox sh as in the image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import COMPOSE_DIR, load_compose, require_binary

SERVICES = load_compose()["services"]


def _grafana_guard(password: str | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run Grafana's compose entrypoint for real (busybox sh, as in the image), the image's /run.sh replaced
    by a command that says it started."""
    svc = SERVICES["grafana"]
    entrypoint = [arg.replace("$$", "$") for arg in svc["entrypoint"]]  # compose's escaping of a literal $
    assert entrypoint[0] == "/usr/local/bin/busybox" and svc["command"] == ["/run.sh"]
    env = {"PATH": os.environ["PATH"]}
    if password is not None:
        env["GF_SECURITY_ADMIN_PASSWORD"] = password
    return subprocess.run(
        [require_binary("busybox"), *entrypoint[1:], "echo", "grafana started"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("password", ["change-me", "", None, "admin"])
def test_grafana_refuses_a_published_default_password(password: str | None, tmp_path: Path) -> None:
    res = _grafana_guard(password, tmp_path)
    assert res.returncode == 1 and "grafana started" not in res.stdout
    assert "refusing to start: GRAFANA_ADMIN_PASSWORD" in res.stderr


def test_grafana_starts_with_a_password_of_its_own(tmp_path: Path) -> None:
    res = _grafana_guard("Zq8generated4test", tmp_path)
    assert res.returncode == 0 and res.stdout == "grafana started\n", res.stderr


def _up(tmp_path: Path, env_text: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    here = tmp_path / "compose"
    here.mkdir()
    for name in ("up.sh", ".env.example"):
        shutil.copy(COMPOSE_DIR / name, here / name)
    if env_text is not None:
        (here / ".env").write_text(env_text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\necho "docker $*"\n')  # no engine here: record the call
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    res = subprocess.run(["sh", str(here / "up.sh")], env=env, capture_output=True, text=True, timeout=30)
    return res, here


@pytest.mark.parametrize("value", ["change-me", '"change-me"', ""])
def test_up_sh_refuses_a_known_or_empty_password(tmp_path: Path, value: str) -> None:
    """An .env copied from the old .env.example (change-me), or from the new one by hand without filling it in."""
    example = (COMPOSE_DIR / ".env.example").read_text()
    res, _ = _up(tmp_path, re.sub(r"(?m)^GRAFANA_ADMIN_PASSWORD=.*$", f"GRAFANA_ADMIN_PASSWORD={value}", example))
    assert res.returncode == 1
    assert "ERROR: GRAFANA_ADMIN_PASSWORD" in res.stderr and "docker compose" not in res.stdout


def test_up_sh_generates_a_password_that_passes_its_own_check(tmp_path: Path) -> None:
    res, here = _up(tmp_path, None)
    assert res.returncode == 0, res.stderr
    assert "docker compose" in res.stdout
    (pw,) = re.findall(r"(?m)^GRAFANA_ADMIN_PASSWORD=(.*)$", (here / ".env").read_text())
    assert re.fullmatch(r"[A-Za-z0-9]{24}", pw)
