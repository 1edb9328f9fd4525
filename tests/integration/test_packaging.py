"""The package as a user gets it: a wheel built from the sources, installed (not editable) into a fresh venv.

The rest of the suite runs the editable install (``pip install -e .``), which reads the source tree, so a file
left out of the wheel (the dashboard's static files, ``py.typed``), a missing console script or bad metadata
shows only here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

from tests._util import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "tradeobs_agent"


def _sources(tmp_path: Path) -> Path:
    """A copy of what the build reads: building in the checkout would leave build/ and *.egg-info there (and a
    stale build/lib would put files into the wheel that the sources no longer have)."""
    src = tmp_path / "src"
    src.mkdir()
    # the package's top-level modules (the pytest plugin, the console script's entry point) with the rest
    top = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "agent").glob("*.py"))]
    docs = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "docs").glob("*.md"))]  # installed with it
    for name in ("pyproject.toml", "README.md", "LICENSE", *top, *docs):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(
        REPO / "agent" / PACKAGE,
        src / "agent" / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the sources it was built from)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = _sources(tmp)
    dist = tmp / "dist"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (whl,) = dist.glob("tradeobs-*.whl")
    return whl, src


@pytest.mark.integration
def test_the_wheel_holds_every_package_file_the_console_script_and_an_spdx_license(wheel: tuple[Path, Path]) -> None:
    """The license was a TOML table (``{ text = ... }``), which setuptools says is deprecated and refuses from
    2027-02-18 (seen building the wheel as a newcomer): it is an SPDX expression now."""
    whl, src = wheel
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(f"{info}/METADATA").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    wanted = {p.relative_to(src / "agent").as_posix() for p in (src / "agent" / PACKAGE).rglob("*") if p.is_file()}
    assert {f"{PACKAGE}/py.typed", f"{PACKAGE}/live/static/index.html", f"{PACKAGE}/live/static/live.js"} <= wanted
    assert sorted(wanted - names) == []
    assert sorted(n for n in names if n.startswith(f"{PACKAGE}/") and n not in wanted) == []
    # nothing beside the package but its two top-level modules, the documentation (README.md and docs/*.md, in
    # share/doc/tradeobs/: `tradeobs docs`) and the metadata: no tests, benchmarks, scripts, collector or compose
    # files, no egg-info
    top = {p.name for p in (src / "agent").glob("*.py")}
    assert top == {"tradeobs_pytest.py", "tradeobs_cli.py"}, top
    share = f"{info.removesuffix('.dist-info')}.data/data/share/doc/tradeobs/"
    docs = {share + "README.md", *(share + "docs/" + p.name for p in (src / "docs").glob("*.md"))}
    assert len(docs) > 10 and docs <= names
    assert sorted(n for n in names if not n.startswith((f"{PACKAGE}/", f"{info}/")) and n not in top | docs) == []
    # the console script's entry point, a module outside the package: Ctrl-C while the package loads is quiet
    assert re.search(r"(?m)^tradeobs = tradeobs_cli:main$", entry_points), entry_points
    assert "tradeobs_cli.py" in names
    # pytest's plugin, loaded wherever tradeobs is installed: its module, outside the package (importing it imports
    # nothing of the agent), named as its entry point is
    assert "tradeobs_pytest.py" in names
    assert re.search(r"(?ms)^\[pytest11\]\ntradeobs_pytest = tradeobs_pytest$", entry_points), entry_points
    assert re.search(r"(?m)^License-Expression: Apache-2\.0$", metadata), metadata[:800]
    # The license's text ships with the wheel (Apache-2.0 was declared with no LICENSE file: a newcomer's review)
    assert re.search(r"(?m)^License-File: LICENSE$", metadata), metadata[:800]
    assert f"{info}/licenses/LICENSE" in names
    assert re.search(r"(?m)^Requires-Python: >=3\.11$", metadata)
    # py.typed ships, and the index says so (a newcomer's look at the metadata: the classifier was missing)
    assert re.search(r"(?m)^Classifier: Typing :: Typed$", metadata), metadata[:800]


@pytest.mark.integration
def test_the_installed_wheel_runs_the_demo_and_serves_its_dashboard(wheel: tuple[Path, Path], tmp_path: Path) -> None:
    """``pip install`` of the wheel (its dependencies are this environment's: the venv sees them, and nothing of
    the checkout), then ``tradeobs demo``: the page and every file it loads come from the installed package."""
    whl, _ = wheel
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py, tradeobs = env_dir / "bin" / "python", env_dir / "bin" / "tradeobs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_")) and k != "PYTHONPATH"}
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(whl)], check=True, env=env, timeout=300
    )
    where = subprocess.run(
        [str(py), "-c", "import tradeobs_agent; print(tradeobs_agent.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where  # the wheel's copy, not the checkout's
    port, prom_port = free_port(), free_port()
    proc = subprocess.Popen(
        [str(tradeobs), "demo", "--port", str(port), "--prometheus-port", str(prom_port), "--duration", "120"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/telemetry/"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"tradeobs demo exited with {proc.returncode}:\n{proc.stdout.read() if proc.stdout else ''}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, "the installed demo serves", limit=60)
        with urllib.request.urlopen(base, timeout=5) as r:
            page = r.read().decode()
        assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page)
        assert len(assets) >= 4, page[:500]
        for asset in assets:
            with urllib.request.urlopen(base + asset, timeout=5) as r:
                assert r.status == 200 and len(r.read()) > 0, asset
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=5) as r:
            assert b"trading_" in r.read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert f"live dashboard   {base}" in out, out


# Sends this process SIGINT as the console script imports the command's module: Ctrl-C in the second the package
# takes to load (importlib's frames then fill a KeyboardInterrupt traceback), without depending on when.
_INTERRUPT_THE_IMPORT = """
import importlib.abc, os, signal, sys

class _Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tradeobs_agent.cli":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _Interrupt())
"""


@pytest.mark.integration
def test_ctrl_c_while_the_installed_command_loads_exits_quietly(wheel: tuple[Path, Path], tmp_path: Path) -> None:
    """``tradeobs demo`` and Ctrl-C at once (a newcomer in the wrong directory): the console script imported
    ``tradeobs_agent.cli``, about a second of loading OpenTelemetry, before any of the command's code could catch
    the interrupt, and printed a KeyboardInterrupt traceback of importlib's frames (exit -2). The entry point is a
    module outside the package now (``tradeobs_cli``): it exits 130 without a word."""
    whl, _ = wheel
    env_dir, env = _wheel_venv(whl, tmp_path)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_INTERRUPT_THE_IMPORT)
    res = subprocess.run(
        [str(env_dir / "bin" / "tradeobs"), "demo"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(hook)},
        cwd=tmp_path,
        timeout=120,
    )
    assert (res.returncode, res.stdout, res.stderr) == (130, "", "")
    assert not (tmp_path / "logs").exists()  # nothing started


@pytest.mark.integration
def test_the_installed_wheel_shows_every_page_its_help_texts_name(wheel: tuple[Path, Path], tmp_path: Path) -> None:
    """Help texts and messages pointed at docs/*.md, which a wheel's user did not have (and the package names no
    URL: there is none). The pages are installed with it (share/doc/tradeobs/docs/, README.md beside them) and
    `tradeobs docs NAME` shows each page a help text names, from any directory."""
    whl, src = wheel
    env_dir, env = _wheel_venv(whl, tmp_path)
    share = env_dir / "share" / "doc" / "tradeobs"
    assert sorted(p.name for p in (share / "docs").glob("*.md")) == sorted(p.name for p in (src / "docs").glob("*.md"))
    assert (share / "README.md").read_text() == (src / "README.md").read_text()  # its docs/x.md links resolve there
    tradeobs = str(env_dir / "bin" / "tradeobs")
    listing = subprocess.run([tradeobs, "docs"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert f"in {share.resolve()}/docs/:" in listing.stdout, listing.stdout
    helps = "".join(
        subprocess.run([tradeobs, *cmd, "--help"], capture_output=True, text=True, env=env, timeout=120).stdout
        for cmd in (["live", "gateway"], ["collector"], ["docs"])
    )
    named = set(re.findall(r"`tradeobs docs ([a-z][a-z-]*)`", helps))
    assert named >= {"scaling", "collector", "live"}, helps
    assert "docs/" not in helps.replace("share/doc/tradeobs/docs/", "").replace("its docs/", "")
    for page in named:
        shown = subprocess.run([tradeobs, "docs", page], capture_output=True, text=True, env=env, timeout=120)
        assert shown.returncode == 0 and shown.stdout == (src / "docs" / f"{page}.md").read_text(), page


def _wheel_venv(whl: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A venv (with this interpreter's site-packages for the dependencies) with the wheel installed, and an
    environment without this checkout's settings or PYTHONPATH."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_")) and k != "PYTHONPATH"}
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(whl)],
        check=True,
        env=env,
        timeout=300,
    )
    return env_dir, env
