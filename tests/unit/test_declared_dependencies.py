"""Every distribution the installed code imports is declared in pyproject.toml, by the package or by the extra of the
feature that needs it.

A module the agent imports that arrives only through another dependency (protobuf through opentelemetry-proto,
pydantic through FastAPI) breaks the day that dependency drops or loosens it, with an ImportError in the user's
service. Found by a newcomer's wheel install (2026-12-07): protobuf, grpcio, googleapis-common-protos and pydantic
were imported and not declared.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((REPO / "agent" / "tradeobs_agent").rglob("*.py")), *sorted((REPO / "agent").glob("*.py"))]
OURS = {"tradeobs_agent", "tradeobs_pytest", "tradeobs_cli"}
# Extras for the package's users (a feature's dependencies); "test" and "dashboards" are this repository's tools.
USER_EXTRAS = ("testing", "loadtest", "ops", "nats")
# Libraries of the user's own that the agent plugs into, imported only where they are in use, with the message that
# names what to install where one can be missing.
BRING_YOUR_OWN = {
    "structlog": "logs.structlog_processor runs inside the application's own structlog",
    "uvicorn-worker": "live.worker.UvicornWorker (gunicorn): falls back to uvicorn.workers, else says what to install",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in USER_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    return {_norm(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in reqs}


def _imports(path: Path) -> set[str]:
    """The absolute module names ``path`` imports (``import a.b``, ``from a.b import c``), anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] not in OURS and n.split(".")[0] not in sys.stdlib_module_names}


@cache
def _files(dist: str) -> frozenset[Path]:
    """The resolved paths of a distribution's Python files."""
    d = metadata.distribution(dist)
    return frozenset(Path(d.locate_file(f)).resolve() for f in d.files or () if f.suffix == ".py")


@cache
def _top_level() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    """The distributions that can give ``module``: the one whose files hold it (for a namespace package such as
    ``google.rpc``, a module in it), or, for a bare namespace with no file of its own (``opentelemetry``), every
    one that installs into it."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return set()
    candidates = _top_level().get(module.split(".")[0], [])
    if spec.origin not in (None, "built-in", "frozen", "namespace"):
        path = Path(spec.origin).resolve()
    else:
        inside = [p for loc in spec.submodule_search_locations or () for p in sorted(Path(loc).glob("*.py"))]
        if not inside:
            return {_norm(d) for d in candidates}
        path = inside[0].resolve()
    return {_norm(d) for d in candidates if path in _files(d)}


def test_every_imported_distribution_is_declared() -> None:
    declared = _declared() | set(BRING_YOUR_OWN)
    undeclared: dict[str, set[str]] = {}
    for path in SOURCES:
        for module in sorted(_imports(path)):
            dists = _distributions(module)
            assert dists, f"{path.relative_to(REPO)} imports {module}, which no installed distribution has"
            if not dists & declared:
                for dist in dists:
                    undeclared.setdefault(dist, set()).add(f"{path.relative_to(REPO)}: {module}")
    assert undeclared == {}, "imported but not declared in pyproject.toml (dependencies or a user extra): " + str(
        {d: sorted(where)[:3] for d, where in undeclared.items()}
    )


def test_the_check_finds_an_import_that_is_not_declared(tmp_path: Path) -> None:
    """The check itself: a module that imports what only arrives through another dependency is found."""
    src = tmp_path / "m.py"
    src.write_text("import google.protobuf.message\nfrom pydantic import BaseModel\nimport os\n")
    assert _imports(src) == {"google.protobuf.message", "pydantic"}
    assert _distributions("google.protobuf.message") == {"protobuf"}
    assert _distributions("google.rpc") == {"googleapis-common-protos"}
    assert _distributions("pydantic") == {"pydantic"}
    assert "opentelemetry-sdk" in _distributions("opentelemetry")
