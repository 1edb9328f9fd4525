"""The unit suite on every supported Python besides the one the full suite runs on (scripts/test.sh runs this).

    python -m nox            # unit-3.12, unit-3.13 (interpreters found by scripts/install.d/15-pythons.sh)

The full suite (integration, e2e, compose) runs on 3.11, the minimum supported version, in the main
environment; `pyproject.toml` lists 3.11, 3.12 and 3.13 as supported.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["unit"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session(python=["3.12", "3.13"])
def unit(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    workers = os.environ.get("TRADEOBS_TEST_WORKERS", "3")  # as scripts/test.sh: pytest-xdist workers
    session.run("python", "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider", "-n", workers, *session.posargs)
