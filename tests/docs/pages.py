"""Read the documentation pages: fenced blocks, their sections and markers, inline code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Covered by the issue-16 tests (runbook commands, alert rules, the collector's config).
NOT_HERE = frozenset({"docs/runbook.md", "docs/alerts.md", "docs/collector.md"})
RUN = frozenset({"bash", "sh", "python"})
CHECKED = frozenset({"toml"})
NOT_RUN = frozenset({"text", "mermaid"})
FRAGMENT = "<!-- docs: fragment -->"
OUTPUT = "<!-- docs: output -->"

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_INLINE = re.compile(r"(?<!`)`(tradeobs(?: [^`]*)?)`(?!`)")
# Other commands in prose: `docker compose ...`, `python benchmarks/x.py`, `python3 -m venv ...`, `compose/up.sh`.
_INLINE_OTHER = re.compile(r"(?<!`)`((?:docker compose|python3?) [^`]*|(?:\./|compose/)[^` ]+\.sh)`(?!`)")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    section: int  # index of the ``##`` section the block is in (0 = before the first)
    fragment: bool = False
    output: bool = False  # sample output of the command just before

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass
class Page:
    path: str
    root: Path = REPO
    blocks: list[Block] = field(default_factory=list)
    inline: list[tuple[int, str]] = field(default_factory=list)  # (line, `tradeobs ...` span)
    inline_other: list[tuple[int, str]] = field(default_factory=list)  # (line, other command span)

    @property
    def text(self) -> str:
        return (self.root / self.path).read_text(encoding="utf-8")


# READMEs of directories a newcomer opens first: what is there and the commands to use it.
DIRECTORY_READMES = ("compose/README.md",)


def pages() -> list[str]:
    """The pages in scope: README.md, docs/*.md (except those covered elsewhere) and the directories' READMEs."""
    docs = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))
    return ["README.md", *[d for d in docs if d not in NOT_HERE], *DIRECTORY_READMES]


def parse(path: str, root: Path = REPO) -> Page:
    page = Page(path, root)
    lines = page.text.splitlines()
    section = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        if m is None:
            if line.startswith("## ") or (line.startswith("# ") and i > 0):
                section += 1
            for span in _INLINE.findall(line):
                page.inline.append((i + 1, span))
            for span in _INLINE_OTHER.findall(line):
                page.inline_other.append((i + 1, span))
            i += 1
            continue
        start, lang, body = i, m.group(2), []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise AssertionError(f"{path}:{start + 1}: unclosed fence")
        marker = lines[start - 1].strip() if start > 0 else ""
        block = Block(path, start + 1, lang, "\n".join(body) + "\n", section, marker == FRAGMENT, marker == OUTPUT)
        page.blocks.append(block)
        i += 1
    return page


def commands(block: Block) -> list[str]:
    """The command lines of a shell block: comments dropped, ``\\`` continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(_strip_comment(pending + line).strip())
        pending = ""
    assert not pending, f"{block.where}: a line ends with '\\' and nothing follows"
    return [c for c in out if c]


def _strip_comment(line: str) -> str:
    """``cmd   # comment`` -> ``cmd`` (a ``#`` inside quotes is kept)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line
