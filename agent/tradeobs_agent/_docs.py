"""Where tradeobs' documentation is on this machine, for ``tradeobs docs``: the pages a message or a help text names.

A wheel's user has no clone: the help texts and messages pointed at ``docs/live.md`` and the like, which such a user
did not have (and the package names no URL: there is no public one). The pages are installed with the package
(pyproject.toml's ``data-files``: ``<environment>/share/doc/tradeobs/docs/``, README.md beside them, in the sdist
too), and every pointer names a page the way ``tradeobs docs NAME`` shows it. From a clone (``PYTHONPATH=agent``, an
editable install), the clone's own ``docs/`` next to the code is read.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

__all__ = ["directory", "pages", "title"]

_SHARE = "share/doc/tradeobs/docs"


def directory() -> Path | None:
    """The directory holding the pages (``<name>.md``), or None where they are not installed."""
    clone = Path(__file__).resolve().parents[2] / "docs"  # agent/tradeobs_agent/_docs.py -> the clone's docs/
    if (clone / "configuration.md").is_file():
        return clone
    try:
        files = importlib.metadata.distribution("tradeobs").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix().endswith(f"{_SHARE}/configuration.md"):
            found = Path(str(f.locate())).resolve().parent
            return found if found.is_dir() else None
    return None


def pages(where: Path | None = None) -> dict[str, Path]:
    """The pages by name (``live`` for ``live.md``), in name order."""
    where = directory() if where is None else where
    if where is None:
        return {}
    return {p.stem: p for p in sorted(where.glob("*.md"))}


def title(page: Path) -> str:
    """A page's title: its first ``# `` heading, else its name."""
    with page.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("# "):
                return line[2:].strip()
    return page.stem
