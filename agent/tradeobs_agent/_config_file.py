"""The config file: ``tradeobs.toml``, or ``[tool.tradeobs]`` in ``pyproject.toml``, flattened to setting names.

>>> flat, problems = flatten({"otlp": {"endpoint": "http://c:4317"}, "logs": {"dir": ""}}, "t.toml", ["log_dir"])
>>> flat
{'otlp_endpoint': 'http://c:4317', 'log_dir': ''}

Keys are setting names (``service_name = "algo-1"``). A table is a section,
flattened the way ``init()`` groups its arguments, so a file and the code read
alike: ``[otlp] endpoint`` is ``otlp_endpoint``, ``[logs] dir`` is ``log_dir``
(as ``LogOptions(dir=...)``), ``[metrics] export_interval`` is
``metric_export_interval``, ``[tracing] sampler`` is ``traces_sampler``, and
``enabled = false`` in a group (or ``live = false`` at the top) switches that
subsystem off, as ``init(live=False)`` does. Any setting can also be split at an
underscore (``[log] dir``, ``[traces] sampler``). Unknown keys and sections are
problems that name the closest valid one; their values are never shown.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import environment_variables as ev
from ._config_report import ConfigReport, Problem
from ._names import did_you_mean
from .exceptions import shown_value
from .options import _GROUPS

__all__ = ["flatten", "load", "sections"]


def sections(names: Collection[str]) -> dict[str, dict[str, str]]:
    """``{section: {key: setting}}`` for every section a file may use."""
    out: dict[str, dict[str, str]] = {}
    for name in names:
        parts = name.split("_")
        for i in range(1, len(parts)):
            out.setdefault("_".join(parts[:i]), {})["_".join(parts[i:])] = name
    for group, (cls, prefix, switch, renames) in _GROUPS.items():
        keys = out.setdefault(group, {})
        for f in fields(cls):
            keys[f.name] = renames.get(f.name, prefix + f.name)
        if switch is not None:
            keys["enabled"] = switch
    return out


def flatten(data: Mapping[str, Any], where: str, names: Collection[str]) -> tuple[dict[str, Any], list[Problem]]:
    """``{setting: raw value}`` from a parsed TOML document, and a problem per unknown key or section."""
    secs = sections(names)
    flat: dict[str, Any] = {}
    problems: list[Problem] = []
    # Suggested for a misspelt section: init()'s groups and the first word of every setting.
    section_names = set(_GROUPS) | {n.split("_")[0] for n in names if "_" in n}

    def walk(section: str, table: Mapping[str, Any]) -> None:
        keys = secs.get(section, {}) if section else {n: n for n in names}
        for key, value in table.items():
            setting = keys.get(key)
            if setting is None and not section and key in _GROUPS and isinstance(value, bool):
                setting = _GROUPS[key][2]  # live = false, as init(live=False)
                if setting is None or value:
                    continue  # tracing/metrics have no switch; true changes nothing
            if setting is not None:
                flat[setting] = value
                continue
            sub = f"{section}_{key}" if section else key
            if isinstance(value, Mapping) and sub in secs:
                walk(sub, value)
            elif isinstance(value, Mapping):
                if sub == "tradeobs":  # [tool.tradeobs] written as in pyproject.toml, without "tool."
                    hint = "settings go at the top of this file, with no [tradeobs] header (or under [tool.tradeobs])"
                else:
                    hint = did_you_mean(sub, section_names, quote=lambda s: f"[{s}]")
                problems.append(Problem.unknown(sub, f"section [{sub}] in {where}", hint))
            elif section:
                if key in names or key in _GROUPS:  # TOML puts every key after a [table] header into that table
                    hint = f"{key!r} belongs at the top, before the first [section]"
                else:
                    hint = did_you_mean(key, keys)
                problems.append(Problem.unknown(sub, f"key {key!r} in [{section}] of {where}", hint))
            else:
                problems.append(Problem.unknown(key, f"key {key!r} in {where}", did_you_mean(key, names)))

    walk("", data)
    return flat, problems


def load(
    path_arg: str | os.PathLike[str] | None,
    label: str,
    env: Mapping[str, str],
    names: Collection[str],
    report: ConfigReport,
) -> dict[str, Any]:
    """Read the config file into ``{setting: raw value}``; problems go to ``report``.

    ``path_arg`` is the file given by the caller (``label`` says how: ``--file``,
    ``config_file``), else ``TRADEOBS_CONFIG_FILE``, else ``./tradeobs.toml``,
    else ``[tool.tradeobs]`` in ``./pyproject.toml``.
    """
    explicit = os.fspath(path_arg) if path_arg else env.get(ev.TRADEOBS_CONFIG_FILE, "").strip() or None
    if not path_arg:
        label = ev.TRADEOBS_CONFIG_FILE
    candidates = [Path(explicit)] if explicit else [Path("tradeobs.toml"), Path("pyproject.toml")]
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:  # unreadable (permissions), a name refused (too long), not text
            why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or type(exc).__name__
            report.problems.append(
                Problem(
                    "config_file",
                    str(path),
                    label,
                    "a readable file",
                    f"{label} {shown_value(str(path))}: {why}; not read",
                )
            )
            return {}
        if text is None:
            if explicit:
                report.problems.append(
                    Problem(
                        "config_file",
                        str(path),
                        label,
                        "an existing file",
                        f"{label} {shown_value(str(path))}: no such file",
                    )
                )
            continue
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            report.problems.append(
                Problem("config_file", str(path), label, "valid TOML", f"{path}: not valid TOML ({exc}); not read")
            )
            return {}
        tool = data.get("tool", {}).get("tradeobs") if isinstance(data.get("tool"), dict) else None
        if path.name == "pyproject.toml" or tool is not None:
            # [tradeobs] for [tool.tradeobs]: said, not skipped; beside a [tool.tradeobs] too, where the settings
            # added to it (log_level = "DEBUG") were lost with "no problems"
            if isinstance(data.get("tradeobs"), dict):
                text = f"{path}: a [tradeobs] table is ignored; in {path.name} the settings go under [tool.tradeobs]"
                report.problems.append(Problem("config_file", str(path), label, "a [tool.tradeobs] table", text))
            if tool is None:
                if explicit and not isinstance(data.get("tradeobs"), dict):
                    text = f"{path}: no [tool.tradeobs] table"
                    report.problems.append(Problem("config_file", str(path), label, "a [tool.tradeobs] table", text))
                continue
            data, where = tool, f"{path} [tool.tradeobs]"
        else:
            where = str(path)
        report.config_file = str(path)
        flat, problems = flatten(data, where, names)
        report.problems.extend(problems)
        return flat
    return {}
