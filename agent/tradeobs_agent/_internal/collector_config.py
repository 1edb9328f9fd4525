"""The collector config lints behind ``tradeobs collector check``, and the disk-queue files.

>>> lint({"processors": {"attributes/redact": {}}, "service": {"pipelines": {}}}, Path("."))[0].code
'unused-processor'

Everything works on the *effective* config, the JSON ``otelcol print-config``
prints (environment resolved, defaults filled in), so a lint sees what the
collector will run. Queue files follow the ``file_storage`` extension's naming
(``exporter_<type>_<name>_<signal>``, unsafe characters as ``~XXXX``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..secrets_keys import KEY_PATTERN

__all__ = [
    "TYPE_ALIASES",
    "Lint",
    "QueueFile",
    "lint",
    "migrate_queues",
    "queue_file_name",
    "queue_files",
    "stranded_queues",
]

# Deprecated exporter type aliases -> their current names (collector v0.161+).
TYPE_ALIASES = {"otlp": "otlp_grpc", "otlphttp": "otlp_http"}


@dataclass(frozen=True)
class Lint:
    level: str  # "error" (tradeobs collector reload refuses) or "warning"
    code: str
    message: str


def _pipelines(cfg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict((cfg.get("service") or {}).get("pipelines") or {})


def _is_redaction(component_id: str) -> bool:
    """attributes/redact, transform/redact, the contrib ``redaction`` processor..."""
    return "redact" in component_id


def lint(cfg: Mapping[str, Any], cwd: Path, queue_dir_visible: bool = True) -> list[Lint]:
    """Problems ``otelcol validate`` does not report, in the effective config (print-config JSON).

    ``cwd``: the collector's working directory (relative storage paths); ``queue_dir_visible``: whether the
    queue files can be read from here (not for a compose volume).
    """
    out: list[Lint] = []
    pipelines = _pipelines(cfg)
    processors = dict(cfg.get("processors") or {})
    used = {p for pl in pipelines.values() for p in pl.get("processors") or []}
    for pid in sorted(set(processors) - used):
        if _is_redaction(pid):
            out.append(
                Lint(
                    "error",
                    "unused-processor",
                    f"redaction processor {pid} is defined but in no pipeline: "
                    "the data it should clean leaves the collector unredacted",
                )
            )
        else:
            out.append(Lint("warning", "unused-processor", f"processor {pid} is defined but in no pipeline"))
    redaction = sorted(p for p in processors if _is_redaction(p) and p in used)
    for name, pl in sorted(pipelines.items()):
        missing = [p for p in redaction if p not in (pl.get("processors") or [])]
        if missing:
            out.append(
                Lint("error", "pipeline-without-redaction", f"pipeline {name} does not run {', '.join(missing)}")
            )
        order = list(pl.get("processors") or [])
        both = "attributes/redact" in order and "transform/redact" in order
        if both and order.index("attributes/redact") < order.index("transform/redact"):
            out.append(
                Lint(
                    "error",
                    "redaction-out-of-order",
                    f"pipeline {name} runs attributes/redact before transform/redact: the secret-named entries "
                    "of nested maps and lists (broker.api_key once flattened) are deleted only when "
                    "attributes/redact runs after transform/redact flattened them",
                )
            )
    out += _lint_redaction_regexes(processors)
    out += _lint_queues(cfg, cwd, queue_dir_visible)
    return out


def _key_regexes(processors: Mapping[str, Any]) -> dict[str, set[str]]:
    """{regex: {where it is used}} for every attribute-name redaction regex of the redaction processors."""
    found: dict[str, set[str]] = {}
    for pid, conf in processors.items():
        if not _is_redaction(pid) or not isinstance(conf, Mapping):
            continue
        for action in conf.get("actions") or []:
            if action.get("pattern") and action.get("action") == "delete":
                found.setdefault(action["pattern"], set()).add(f"{pid} actions")
        for group in ("trace_statements", "metric_statements", "log_statements"):
            for ctx in conf.get(group) or []:
                for stmt in ctx.get("statements") or []:
                    # the unconditional ones: a delete with a where clause is another rule (a websocket auth
                    # message's key, deleted beside a secret entry), not the secret-key list
                    m = re.match(r'\s*delete_matching_keys\([^,]+,\s*"((?:[^"\\]|\\.)*)"\)\s*$', stmt)
                    if m:
                        regex = json.loads('"' + m.group(1) + '"')
                        found.setdefault(regex, set()).add(f"{pid} {group} ({ctx.get('context')})")
    return found


def _lint_redaction_regexes(processors: Mapping[str, Any]) -> list[Lint]:
    found = _key_regexes(processors)
    if len(found) > 1:
        detail = "; ".join(
            f"{sorted(w)[0]}{' +' + str(len(w) - 1) if len(w) > 1 else ''}: {r[:60]}..." for r, w in found.items()
        )
        return [Lint("error", "redaction-out-of-sync", f"{len(found)} different secret-key regexes: {detail}")]
    if found and KEY_PATTERN not in found:
        return [
            Lint(
                "warning",
                "redaction-out-of-sync",
                "the secret-key regex differs from the agent's list (tradeobs_agent/secrets_keys.py): the agent "
                "and the collector redact different keys; regenerate with scripts/gen_redaction.py",
            )
        ]
    return []


# --------------------------------------------------------------------------- disk queues


def _sanitize(name: str) -> str:
    """file_storage's file-name escaping: unsafe characters become ~XXXX (hex code point)."""
    return "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else f"~{ord(c):04X}" for c in name)


def queue_file_name(exporter_id: str, signal: str) -> str:
    """The file a persistent sending queue of ``exporter_id`` in a ``signal`` pipeline lives in."""
    typ, _, name = exporter_id.partition("/")
    return _sanitize(f"exporter_{typ}_{name}_{signal}")


@dataclass(frozen=True)
class QueueFile:
    exporter: str
    signal: str
    storage: str  # file_storage extension id
    path: Path


def _signal(pipeline_id: str) -> str:
    return pipeline_id.split("/", 1)[0]


def queue_files(cfg: Mapping[str, Any], cwd: Path) -> Iterator[QueueFile]:
    """The queue files the exporters of this config read and write (exporters in a pipeline, queue on disk)."""
    exporters = dict(cfg.get("exporters") or {})
    extensions = dict(cfg.get("extensions") or {})
    for pl_id, pl in sorted(_pipelines(cfg).items()):
        for exp in pl.get("exporters") or []:
            queue = (exporters.get(exp) or {}).get("sending_queue") or {}
            storage = queue.get("storage")
            if not queue.get("enabled", True) or not storage:
                continue
            directory = Path((extensions.get(storage) or {}).get("directory") or "/var/lib/otelcol/file_storage")
            directory = directory if directory.is_absolute() else cwd / directory
            yield QueueFile(exp, _signal(pl_id), storage, directory / queue_file_name(exp, _signal(pl_id)))


def _legacy_ids(exporter_id: str) -> list[str]:
    typ, _, name = exporter_id.partition("/")
    return [f"{old}/{name}" if name else old for old, new in TYPE_ALIASES.items() if new == typ]


def stranded_queues(cfg: Mapping[str, Any], cwd: Path) -> list[tuple[Path, QueueFile | None]]:
    """Queue files in the storage directories that no exporter of ``cfg`` reads.

    Each comes with the exporter that ``migrate-queue`` would hand it to (a legacy alias of an exporter whose own
    file does not exist yet), or None.
    """
    wanted = list(queue_files(cfg, cwd))
    expected = {q.path for q in wanted}
    dirs = {q.path.parent for q in wanted}
    out: list[tuple[Path, QueueFile | None]] = []
    for d in sorted(dirs):
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if not f.is_file() or not f.name.startswith("exporter_") or f in expected:
                continue
            heir = next(
                (
                    q
                    for q in wanted
                    if q.path.parent == d
                    and not q.path.exists()
                    and f.name in {queue_file_name(old, q.signal) for old in _legacy_ids(q.exporter)}
                ),
                None,
            )
            out.append((f, heir))
    return out


def _lint_queues(cfg: Mapping[str, Any], cwd: Path, queue_dir_visible: bool) -> list[Lint]:
    out: list[Lint] = []
    for q in queue_files(cfg, cwd):
        typ, _, name = q.exporter.partition("/")
        if typ in TYPE_ALIASES:
            new = f"{TYPE_ALIASES[typ]}/{name}" if name else TYPE_ALIASES[typ]
            out.append(
                Lint(
                    "warning",
                    "deprecated-exporter-type",
                    f"exporter {q.exporter} uses the deprecated type {typ!r}; renaming it to {new} moves its "
                    f"queue to {queue_file_name(new, q.signal)}: rename it with the collector stopped, then "
                    "run `tradeobs collector migrate-queue` before starting it",
                )
            )
    if not queue_dir_visible:
        return out
    for path, heir in stranded_queues(cfg, cwd):
        size = path.stat().st_size
        if heir is not None:
            out.append(
                Lint(
                    "error",
                    "stranded-queue",
                    f"{path} ({size} bytes) is the queue of {heir.exporter} under its old name: this config "
                    "would not read it. Stop the collector and run `tradeobs collector migrate-queue`",
                )
            )
        else:
            out.append(
                Lint(
                    "warning",
                    "stranded-queue",
                    f"{path} ({size} bytes) belongs to no exporter of this config: the data in it is never "
                    "sent. Put the exporter back in its pipeline until it drains, or delete the file",
                )
            )
    return out


def _locked(path: Path) -> bool:
    """Whether a process (a running collector: bbolt flocks its file) holds ``path``."""
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def migrate_queues(cfg: Mapping[str, Any], cwd: Path, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """Rename legacy-named queue files to the exporters that replace them -> (done, problems)."""
    done: list[str] = []
    problems: list[str] = []
    for path, heir in stranded_queues(cfg, cwd):
        if heir is None:
            continue
        if _locked(path):
            problems.append(f"{path} is open in a running collector: stop it first")
            continue
        if not dry_run:
            os.rename(path, heir.path)
        done.append(f"{path.name} -> {heir.path.name} ({heir.exporter}, {heir.signal})")
    for q in queue_files(cfg, cwd):
        for old in _legacy_ids(q.exporter):
            legacy = q.path.parent / queue_file_name(old, q.signal)
            if q.path.exists() and legacy.exists():
                problems.append(
                    f"both {legacy.name} and {q.path.name} exist: {q.exporter} already started with an empty queue; "
                    f"to deliver {legacy.name}, run the collector once with the exporter named {old} until it drains"
                )
    return done, problems
