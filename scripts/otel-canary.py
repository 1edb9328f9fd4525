#!/usr/bin/env python3
"""Run the unit suite against another OpenTelemetry release and say which of the agent's assumptions broke.

    python scripts/otel-canary.py                 # the newest opentelemetry-sdk on the index
    python scripts/otel-canary.py 1.46.0          # a given release (its matching 0.Nb instrumentation packages)
    python scripts/otel-canary.py --keep ...      # keep the venv (under ~/.cache/tradeobs/otel-canary/<version>)

It makes a separate venv, installs this checkout's dependencies with every ``opentelemetry-*`` package at the
chosen release (ignoring the pins in pyproject.toml), then:

1. evaluates ``otel_private.ASSUMPTIONS`` there and lists each one that does not hold;
2. diffs the SDK source each assumption mirrors (this environment's release vs the canary's) and prints the
   diff of every function that changed;
3. runs ``tests/unit`` and prints the summary.

Exit status 0 only when nothing broke. The upgrade procedure (docs/upgrading-opentelemetry.md) starts here.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TRADEOBS_CACHE", Path.home() / ".cache" / "tradeobs")) / "otel-canary"
# Core packages share the SDK's version; the contrib packages are released as 0.<sdk minor + 21>b<n>.
CORE = ["opentelemetry-api", "opentelemetry-sdk", "opentelemetry-proto", "opentelemetry-exporter-otlp",
        "opentelemetry-exporter-otlp-proto-common", "opentelemetry-exporter-otlp-proto-grpc",
        "opentelemetry-exporter-otlp-proto-http"]  # fmt: skip
CONTRIB = ["opentelemetry-exporter-prometheus", "opentelemetry-instrumentation", "opentelemetry-instrumentation-asgi",
           "opentelemetry-instrumentation-fastapi", "opentelemetry-semantic-conventions", "opentelemetry-util-http",
           "opentelemetry-test-utils"]  # fmt: skip

DUMP = r"""
import importlib, inspect, json, sys
sys.path.insert(0, sys.argv[1])
from tradeobs_agent._internal import otel_private as o
out = {"sdk": o.sdk_version(), "broken": list(o.broken_assumptions()), "sources": {}}
for a in o.ASSUMPTIONS:
    for target in a.sources:
        module, _, qualname = target.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            out["sources"][target] = inspect.getsource(obj)
        except Exception as exc:
            out["sources"][target] = f"<missing: {type(exc).__name__}: {exc}>"
print(json.dumps(out))
"""


def pip_index_newest(package: str, prefix: str = "") -> str:
    """The newest version pip can see (works with a mirror that has no JSON API)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "--pre", package], capture_output=True, text=True, check=True
    ).stdout
    versions = [v.strip() for v in out.split("Available versions:")[1].splitlines()[0].split(",")]
    return next(v for v in versions if v.startswith(prefix))


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("version", nargs="?", help="opentelemetry-sdk release (default: the newest)")
    ap.add_argument("--keep", action="store_true", help="keep the venv for inspection")
    ap.add_argument("--no-tests", action="store_true", help="only the assumptions and the source diff")
    args = ap.parse_args()

    version = args.version or pip_index_newest("opentelemetry-sdk")
    minor = int(version.split(".")[1])
    contrib_prefix = f"0.{minor + 21}b"
    contrib = pip_index_newest("opentelemetry-exporter-prometheus", contrib_prefix)
    print(f"canary: opentelemetry {version}, instrumentation {contrib}")

    venv = CACHE / version if args.keep else Path(tempfile.mkdtemp(prefix="otel-canary-"))
    py = venv / "bin" / "python"
    if not py.exists():
        run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # Everything the checkout needs (with its pins), then OpenTelemetry moved to the canary release.
    run([*pip, "-e", f"{ROOT}[test]"], check=True)
    pins = [f"{p}=={version}" for p in CORE] + [f"{p}=={contrib}" for p in CONTRIB]
    run([*pip, "--no-deps", *pins], check=True)

    here = json.loads(run([sys.executable, "-c", DUMP, str(ROOT / "agent")], capture_output=True, check=True).stdout)
    there = json.loads(run([str(py), "-c", DUMP, str(ROOT / "agent")], capture_output=True, check=True).stdout)
    broken = 0
    print(f"\n== assumptions on opentelemetry-sdk {there['sdk']} (this checkout pins {here['sdk']})")
    for name in there["broken"]:
        print(f"  BROKEN  {name}")
        broken += 1
    if not there["broken"]:
        print("  every assumption holds")
    print("\n== SDK source the fast paths mirror")
    for target, src in sorted(there["sources"].items()):
        old = here["sources"].get(target, "")
        if src == old:
            print(f"  same     {target}")
            continue
        broken += 1
        print(f"  CHANGED  {target}")
        diff = difflib.unified_diff(old.splitlines(), src.splitlines(), here["sdk"], there["sdk"], lineterm="", n=2)
        print("\n".join("           " + line for line in diff))
    if not args.no_tests:
        print("\n== tests/unit on the canary")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = run([str(py), "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env)
        broken += proc.returncode != 0
    if not args.keep:
        import shutil

        shutil.rmtree(venv, ignore_errors=True)
    print(f"\ncanary: {'NOTHING BROKE' if not broken else f'{broken} thing(s) to review'} on opentelemetry {version}")
    return 0 if not broken else 1


if __name__ == "__main__":
    sys.exit(main())
