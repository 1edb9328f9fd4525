"""Fixtures for the compose deployment tests (helpers live in helpers.py)."""

from .helpers import procs  # noqa: F401  (re-exported fixture)
