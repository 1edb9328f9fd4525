"""``tradeobs collector``: check, reload and migrate a collector config safely.

    tradeobs collector check [FILE] [--env native|compose]   validate with the real binary, print the
                                                             effective config, lint what validate misses
    tradeobs collector reload [FILE] [--pid PID | --pid-file F]   check with the running collector's own
                                                             binary, environment and directory, then SIGHUP
    tradeobs collector migrate-queue [FILE] [--dry-run]      carry disk queues over an exporter rename

``otelcol-tradeobs validate`` accepts configs that silently lose or leak data,
so ``check`` also reports (error = ``reload`` refuses):

* ``unused-processor``: a processor defined but in no pipeline (error for a
  redaction processor: the data it should clean leaves the collector as is);
* ``pipeline-without-redaction``: a pipeline that skips a redaction processor;
* ``redaction-out-of-sync``: the redaction regexes differ from each other
  (error) or from the agent's list in ``tradeobs_agent.secrets_keys`` (warning);
* ``deprecated-exporter-type``: a queued exporter still named with a
  deprecated alias (``otlp``, ``otlphttp``), whose rename would strand its queue;
* ``stranded-queue``: a queue file in the storage directory that no exporter
  of this config will read (error when ``migrate-queue`` can carry it over).

A HUP reload re-reads the config in the same process, keeping the disk queues;
the collector *exits* if the new config is invalid, which is why ``reload``
checks first and never signals a collector whose new config fails the check.
See docs/collector.md ("Editing the config safely").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._internal.collector_config import Lint, lint, migrate_queues
from .secrets_keys import is_secret_key

__all__ = ["CheckResult", "CollectorToolError", "Deployment", "build_parser", "check_config", "main"]

DEFAULT_CONFIG = "collector/otel-collector.yaml"
DEFAULT_PID_FILE = ".tradeobs/collector/otelcol.pid"
DEFAULT_COMPOSE_FILE = "compose/docker-compose.yml"
DEFAULT_COMPOSE_SERVICE = "otel-collector"
BINARY = "otelcol-tradeobs"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class CollectorToolError(Exception):
    """A usage or environment problem (exit status 2), e.g. no collector binary."""


@dataclass
class CheckResult:
    valid: bool
    validate_output: str
    effective: dict[str, Any] | None
    effective_yaml: str
    lints: list[Lint] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.valid and not any(lint.level == "error" for lint in self.lints)


# --------------------------------------------------------------------------- the binary and its environment


def find_binary(explicit: str | None = None) -> str:
    """``--binary``, ``$TRADEOBS_COLLECTOR_BIN``, ``otelcol-tradeobs`` on PATH, or the build cache's copy."""
    candidates = [explicit, os.environ.get("TRADEOBS_COLLECTOR_BIN")]
    for c in candidates:
        if c:
            if os.access(c, os.X_OK):
                return c
            raise CollectorToolError(f"collector binary {c!r} is not an executable file")
    found = shutil.which(BINARY)
    if found:
        return found
    cache = Path(os.environ.get("TRADEOBS_CACHE") or Path.home() / ".cache" / "tradeobs")
    cached = cache / "bin" / BINARY
    if os.access(cached, os.X_OK):
        return str(cached)
    raise CollectorToolError(
        f"{BINARY} not found (--binary, TRADEOBS_COLLECTOR_BIN, PATH, {cached}); "
        "build it with scripts/build-collector.sh"
    )


def _run(binary: str, args: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _interpolate(value: str, env: Mapping[str, str], where: str) -> str:
    """Docker Compose variable syntax: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?msg}, ${VAR?msg}."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        val = env.get(name)
        if op in (":-", "-"):
            return arg if (val is None or (op == ":-" and val == "")) else val
        if op in (":?", "?") and (val is None or (op == ":?" and val == "")):
            raise CollectorToolError(f"{where}: variable {name} is required: {arg or 'not set'}")
        return val or ""

    pattern = r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
    return re.sub(pattern, sub, value)


def _read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip("'\"")
    return out


@dataclass(frozen=True)
class Deployment:
    """Where and how the collector runs: its environment, working directory and config file."""

    kind: str  # native | compose | process
    env: dict[str, str]
    cwd: Path
    config: Path
    description: str
    queue_dir_visible: bool = True


def native_deployment(config: Path) -> Deployment:
    return Deployment("native", dict(os.environ), Path.cwd(), config, "native: this shell's environment and directory")


def compose_deployment(config: Path | None, compose_file: Path, service: str, env_file: Path | None) -> Deployment:
    """The environment Docker Compose gives ``service`` (interpolated as compose does: shell, then .env)."""
    try:
        import yaml
    except ImportError:
        raise CollectorToolError(
            "--env compose reads the compose file with PyYAML: pip install 'tradeobs[ops]'"
        ) from None

    if not compose_file.is_file():
        raise CollectorToolError(f"--compose-file {compose_file}: no such file")
    doc = yaml.safe_load(compose_file.read_text()) or {}
    svc = (doc.get("services") or {}).get(service)
    if svc is None:
        known = ", ".join(sorted(doc.get("services") or {}))
        raise CollectorToolError(f"--compose-service {service!r} is not in {compose_file} (services: {known})")
    env_file = env_file or compose_file.parent / ".env"
    variables = {**(_read_env_file(env_file) if env_file.is_file() else {}), **os.environ}
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw if "=" in item)
    where = f"{compose_file} service {service}"
    env = {str(k): _interpolate(str(v), variables, where) for k, v in raw.items() if v is not None}
    if config is None:
        config = _compose_config_source(svc, compose_file.parent)
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
    desc = f"compose: {compose_file} service {service}" + (f", {env_file}" if env_file.is_file() else "")
    return Deployment("compose", {**base, **env}, compose_file.parent, config, desc, queue_dir_visible=False)


def _compose_config_source(svc: Mapping[str, Any], compose_dir: Path) -> Path:
    """The host file bind-mounted where the service's ``--config`` points."""
    args = svc.get("command") or []
    target = next((a.split("=", 1)[1] for a in args if str(a).startswith("--config=")), None)
    target = target.removeprefix("file:") if target else None
    for vol in svc.get("volumes") or []:
        parts = str(vol).split(":")
        if len(parts) >= 2 and parts[1] == target:
            return (compose_dir / parts[0]).resolve()
    raise CollectorToolError(f"cannot tell which host file the compose service mounts at {target}; pass FILE")


def process_deployment(pid: int, config: Path | None) -> Deployment:
    """The running collector's own environment, working directory and (unless given) config file."""
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        environ = (proc / "environ").read_bytes().split(b"\0")
        cwd = Path(os.readlink(proc / "cwd"))
    except FileNotFoundError:
        raise CollectorToolError(f"no process with pid {pid}") from None
    except PermissionError:
        raise CollectorToolError(f"not allowed to inspect pid {pid} (run as the collector's user)") from None
    argv = [a.decode(errors="replace") for a in cmdline if a]
    if not argv or "otelcol" not in Path(argv[0]).name:
        raise CollectorToolError(f"pid {pid} is not a collector ({' '.join(argv)[:80]!r}); stale pid file?")
    env = dict(e.decode(errors="replace").split("=", 1) for e in environ if b"=" in e)
    if config is None:
        config = _config_from_argv(argv, pid)
        config = config if config.is_absolute() else cwd / config
    return Deployment("process", env, cwd, config, f"the running collector, pid {pid} (its environment and cwd {cwd})")


def _config_from_argv(argv: list[str], pid: int) -> Path:
    for i, a in enumerate(argv):
        value = argv[i + 1] if a == "--config" and i + 1 < len(argv) else a.removeprefix("--config=")
        if a == "--config" or a.startswith("--config="):
            if value.startswith("file:") or ":" not in value:
                return Path(value.removeprefix("file:"))
            raise CollectorToolError(f"pid {pid} reads its config from {value!r}, not a file; pass FILE")
    raise CollectorToolError(f"pid {pid} has no --config argument; pass FILE")


# --------------------------------------------------------------------------- check


def check_config(binary: str, dep: Deployment) -> CheckResult:
    """Validate ``dep.config`` with ``binary`` in ``dep``'s environment, then lint the effective config."""
    if not dep.config.is_file():
        raise CollectorToolError(f"config file {dep.config}: no such file")
    cfg = f"file:{dep.config.resolve()}"
    res = _run(binary, ["validate", "--config", cfg], dep.env, dep.cwd)
    if res.returncode != 0:
        return CheckResult(False, (res.stderr + res.stdout).strip(), None, "")
    printed = _run(binary, ["print-config", "--config", cfg, "--format", "json"], dep.env, dep.cwd)
    as_yaml = _run(binary, ["print-config", "--config", cfg], dep.env, dep.cwd)
    if printed.returncode != 0:
        raise CollectorToolError(f"{binary} print-config failed: {printed.stderr.strip()[:500]}")
    effective = json.loads(printed.stdout)
    result = CheckResult(True, (res.stderr + res.stdout).strip(), effective, as_yaml.stdout)
    result.lints = lint(effective, dep.cwd, queue_dir_visible=dep.queue_dir_visible)
    return result


# --------------------------------------------------------------------------- reload


def _read_pid(pid: int | None, pid_file: str | None) -> int:
    if pid is not None:
        return pid
    path = Path(pid_file or os.environ.get("TRADEOBS_COLLECTOR_PID_FILE") or DEFAULT_PID_FILE)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise CollectorToolError(
            f"pid file {path} not found: pass --pid PID or --pid-file PATH (or set TRADEOBS_COLLECTOR_PID_FILE)"
        ) from None
    if not text.isdigit():
        raise CollectorToolError(f"pid file {path} holds {text[:40]!r}, not a process id")
    return int(text)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return int(r.status), r.read().decode(errors="replace")
    except OSError:
        return 0, ""


def _local(endpoint: str) -> str:
    host, _, port = endpoint.rpartition(":")
    return f"{'127.0.0.1' if host in ('', '0.0.0.0', '[::]', '::') else host}:{port}"


def _healthy(cfg: Mapping[str, Any]) -> bool | None:
    endpoint = ((cfg.get("extensions") or {}).get("health_check") or {}).get("endpoint")
    return None if not endpoint else _get(f"http://{_local(endpoint)}/")[0] == 200


def _instance_id(cfg: Mapping[str, Any]) -> str | None:
    """service.instance.id on the self-telemetry page: the collector draws a new one at every (re)start."""
    readers = (((cfg.get("service") or {}).get("telemetry") or {}).get("metrics") or {}).get("readers") or []
    for r in readers:
        prom = ((r.get("pull") or {}).get("exporter") or {}).get("prometheus") or {}
        if prom.get("port"):
            endpoint = f"{prom.get('host') or ''}:{prom['port']}"
            _, text = _get(f"http://{_local(endpoint)}/metrics")
            m = re.search(r'target_info\{[^}]*service_instance_id="([^"]+)"', text)
            return m.group(1) if m else None
    return None


def reload(pid: int, result: CheckResult, timeout: float) -> tuple[bool, str]:
    """SIGHUP ``pid`` (whose new config passed the check), then wait until it runs the new config.

    Done means: the process is alive, its service.instance.id (self-telemetry page) changed, and its
    health_check answers 200; without those endpoints configured, alive one second after the signal.
    """
    cfg = result.effective or {}
    before = _instance_id(cfg)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGHUP)
    while time.monotonic() < t0 + timeout:
        time.sleep(0.02)
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return False, f"the collector (pid {pid}) exited after the reload: read its log"
        restarted = before is None or _instance_id(cfg) not in (None, before)
        healthy = _healthy(cfg)
        if restarted and (healthy or (healthy is None and (before is not None or time.monotonic() - t0 > 1))):
            return True, f"reloaded pid {pid}: running the new config after {(time.monotonic() - t0) * 1000:.0f} ms"
    return False, f"pid {pid} got SIGHUP but did not come back healthy with a new instance id within {timeout:.0f}s"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


# --------------------------------------------------------------------------- output and CLI


def _print_env(dep: Deployment) -> None:
    refs: dict[str, str | None] = {}
    for line in dep.config.read_text().splitlines():
        if not line.lstrip().startswith("#"):
            for m in _ENV_REF.finditer(line):
                refs.setdefault(m.group(1), m.group(2))
    if not refs:
        return
    print(f"environment ({dep.description}):")
    width = max(map(len, refs))
    for name, default in sorted(refs.items()):
        if name in dep.env:
            value = "<set>" if is_secret_key(name) else dep.env[name]
            print(f"  {name:<{width}}  {value}")
        else:
            print(f"  {name:<{width}}  {default if default is not None else '(unset)'}  (default)")


def _print_result(result: CheckResult, show_config: bool) -> None:
    if not result.valid:
        print("validate: FAILED")
        print("  " + result.validate_output.replace("\n", "\n  "))
        return
    print("validate: ok")
    if show_config:
        print("--- effective config (as the collector resolves it; secrets redacted) ---")
        print(result.effective_yaml.rstrip())
        print("---")
    for item in result.lints:
        print(f"{item.level:<7}  {item.code:<27}  {item.message}")
    errors = sum(1 for x in result.lints if x.level == "error")
    warnings = len(result.lints) - errors
    print(f"{errors} error(s), {warnings} warning(s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tradeobs collector",
        description="Check, reload and migrate a collector config (`tradeobs docs collector`, 'Editing the config "
        "safely').",
    )
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", title="commands", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "file",
            nargs="?",
            default=None,
            metavar="FILE",
            help=f"collector config (default: $TRADEOBS_COLLECTOR_CONFIG, else {DEFAULT_CONFIG})",
        )
        sp.add_argument(
            "--binary",
            metavar="PATH",
            help=f"collector binary (default: $TRADEOBS_COLLECTOR_BIN, else {BINARY} on PATH, else the build cache's)",
        )

    def target(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--env",
            choices=("native", "compose"),
            default="native",
            help="the deployment's environment: this shell's (native) or the compose service's (default: %(default)s)",
        )
        sp.add_argument(
            "--compose-file", default=DEFAULT_COMPOSE_FILE, help="with --env compose (default: %(default)s)"
        )
        sp.add_argument(
            "--compose-service", default=DEFAULT_COMPOSE_SERVICE, help="with --env compose (default: %(default)s)"
        )
        sp.add_argument(
            "--env-file",
            default=None,
            metavar="PATH",
            help="with --env compose: the .env compose reads (default: .env next to the compose file)",
        )

    check = sub.add_parser(
        "check",
        help="validate with the real binary, print the effective config, lint (exit 1)",
        description="Validate FILE with the real collector binary in the deployment's environment, print the "
        "effective config (secrets redacted), and lint what validate misses: a redaction processor left out of a "
        "pipeline, redaction patterns out of sync, a queued exporter under a deprecated name, a stranded disk queue. "
        "Exit 1 on an error.",
    )
    common(check)
    target(check)
    check.add_argument(
        "--no-print-config",
        dest="print_config",
        action="store_false",
        help="do not print the effective config (default: print it)",
    )

    rel = sub.add_parser(
        "reload",
        help="check the running collector's new config, and only then send SIGHUP",
        description="Check FILE as the running collector will load it (its own binary, environment and directory); "
        "only if the check passes send it SIGHUP and wait until it runs the new config (same process, disk queues "
        "kept). A collector whose new config fails the check is not signalled (a raw kill -HUP would make it exit).",
    )
    common(rel)
    rel.add_argument("--pid", type=int, default=None, help="the collector's pid (default: read the pid file)")
    rel.add_argument(
        "--pid-file",
        default=None,
        metavar="PATH",
        help=f"file holding the collector's pid (default: $TRADEOBS_COLLECTOR_PID_FILE, else {DEFAULT_PID_FILE})",
    )
    rel.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the collector to run the new config (default: %(default)s)",
    )
    rel.add_argument("--print-config", action="store_true", help="print the effective config (default: do not)")

    mig = sub.add_parser(
        "migrate-queue",
        help="carry disk queues over to renamed exporters (collector stopped)",
        description="With the collector stopped: rename the disk queue files of exporters renamed in FILE (such as "
        "otlp/traces to otlp_grpc/traces) so the new names read what the old ones queued. Exit 1 on a problem.",
    )
    common(mig)
    target(mig)
    mig.add_argument("--dry-run", action="store_true", help="only say what would be renamed (default: rename)")
    return p


def _deployment(args: argparse.Namespace) -> Deployment:
    config = Path(args.file) if args.file else None
    if args.env == "compose":
        env_file = Path(args.env_file) if args.env_file else None
        return compose_deployment(config, Path(args.compose_file), args.compose_service, env_file)
    return native_deployment(config or Path(os.environ.get("TRADEOBS_COLLECTOR_CONFIG") or DEFAULT_CONFIG))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except CollectorToolError as exc:
        print(f"tradeobs collector {args.cmd}: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.cmd == "reload":
        pid = _read_pid(args.pid, args.pid_file)
        dep = process_deployment(pid, Path(args.file).resolve() if args.file else None)
        # The running collector's own binary (the components it will load), unless it was replaced on disk.
        exe = os.readlink(f"/proc/{pid}/exe")
        binary = args.binary or (exe if os.access(exe, os.X_OK) else find_binary(None))
    else:
        dep = _deployment(args)
        if not dep.config.is_file() and dep.kind == "native" and dep.config == Path(DEFAULT_CONFIG):
            # The default names this repository's config, so it exists only at the root of a checkout: from an
            # installed wheel (or any other directory) say what to pass instead.
            raise CollectorToolError(
                f"config file {dep.config}: no such file (the default is the config in a tradeobs checkout, "
                "read from its root): pass your collector's config as FILE, or set TRADEOBS_COLLECTOR_CONFIG"
            )
        if not dep.config.is_file():  # before the binary is looked for: the file named is the first thing to fix
            raise CollectorToolError(f"config file {dep.config}: no such file")
        binary = find_binary(args.binary)
    if not dep.config.is_file():
        raise CollectorToolError(f"config file {dep.config}: no such file")
    print(f"config:      {dep.config}\nbinary:      {binary}")
    if args.cmd == "migrate-queue":
        if dep.kind == "compose":
            raise CollectorToolError("queue files live in the compose volume: run this inside the collector container")
        result = check_config(binary, dep)
        if not result.valid or result.effective is None:
            _print_result(result, False)
            return 1
        done, problems = migrate_queues(result.effective, dep.cwd, args.dry_run)
        for line in done:
            print(("would rename " if args.dry_run else "renamed ") + line)
        for line in problems:
            print(f"error    {line}")
        if not done and not problems:
            print("nothing to migrate")
        return 1 if problems else 0
    _print_env(dep)
    result = check_config(binary, dep)
    _print_result(result, args.print_config)
    if args.cmd == "check":
        return 0 if result.ok else 1
    if not result.ok:
        print(f"NOT reloaded: fix the errors above (pid {pid} keeps running its current config)")
        return 1
    ok, message = reload(pid, result, args.timeout)
    print(message)
    return 0 if ok else 1
