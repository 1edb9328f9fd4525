"""Run a benchmark's ``--child`` in this tree and in a git revision of the agent, rounds taking turns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def before_and_now(script: str, before: str, rounds: int, child_args: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``{"before": [...], "now": [...]}``: the JSON each ``python script --child *child_args`` printed last, with
    the agent of revision ``before`` (``git archive`` of its ``agent/``) and of this tree, ``rounds`` times each,
    alternating, so both see the same machine."""
    results: dict[str, list[dict[str, Any]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        git = ["git", "-C", str(ROOT), "archive", before, "agent"]
        archive = subprocess.run(git, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        paths = {"before": str(Path(tmp) / "agent"), "now": str(ROOT / "agent")}
        for _ in range(rounds):
            for name in ("before", "now"):
                env = {**os.environ, "PYTHONPATH": paths[name]}
                cmd = [sys.executable, script, "--child", *child_args]
                out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))
    return results
