"""The compose collector image is built the way the tests' binary is (no Docker engine here: its
build step runs natively, from exactly the build context collector/Dockerfile.dockerignore lets in)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .helpers import REPO, require_binary

DOCKERFILE = REPO / "collector" / "Dockerfile"


def _context_files() -> list[str]:
    lines = (REPO / "collector" / "Dockerfile.dockerignore").read_text().split()
    return [line[1:] for line in lines if line.startswith("!")]


def test_build_step_from_the_image_context_gives_the_tests_binary(tmp_path: Path) -> None:
    """scripts/build-collector.sh, run from a copy of the image's build context, finds everything it
    hashes there and lands on the same cache key as the binary the integration tests run."""
    require_binary("go")
    for rel in _context_files():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, tmp_path / rel)
    cache = Path(os.environ.get("TRADEOBS_CACHE") or Path.home() / ".cache" / "tradeobs")
    res = subprocess.run(
        ["bash", "scripts/build-collector.sh"],
        cwd=tmp_path,
        env={**os.environ, "TRADEOBS_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stderr
    built = Path(res.stdout.strip().splitlines()[-1])
    assert built.resolve() == (cache / "bin" / "otelcol-tradeobs").resolve()
    assert not (tmp_path / "collector" / "_build").exists()  # built in a scratch dir, as in the image


def test_image_go_toolchain_matches_the_one_that_builds_the_tests_binary() -> None:
    go = subprocess.run([require_binary("go"), "env", "GOVERSION"], capture_output=True, text=True, check=True)
    local = re.match(r"go(\d+\.\d+)", go.stdout.strip())
    image = re.search(r"^FROM golang:(\d+\.\d+)\.\d+-", DOCKERFILE.read_text(), re.M)
    assert local and image
    assert image.group(1) == local.group(1), "bump FROM golang:... in collector/Dockerfile with the local Go"
