"""The ``tradeobs`` command.

tradeobs demo [--host 127.0.0.1] [--port 8000] [--symbols 10] ...   the instrumented paper-trading demo
tradeobs config check [--file tradeobs.toml]     resolved settings, their sources, every problem (exit 1)
tradeobs config docs [--write FILE]              the settings table as Markdown
tradeobs doctor [--service-url URL]              what answers: OTLP receiver, Prometheus, the service's live stream
tradeobs loadtest ...                            SSE fan-out load test (tradeobs docs live)
tradeobs collector check|reload|migrate-queue    safe collector config edits (tradeobs docs collector)
tradeobs live gateway [--nats URL] [--port 8765] the fleet's live view from NATS JetStream (tradeobs docs scaling)
tradeobs docs [PAGE]                             the documentation installed with tradeobs: its pages, or one
tradeobs --version

``tradeobs`` or ``tradeobs config`` alone prints its help and exits 2, like any
other usage error. Every option's help states its default.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from ._parsers import allowed
from ._version import __version__
from .config import FIELDS, describe, otlp_for, resolve_settings, shown_url


def _port(text: str) -> int:
    """An ``argparse`` type: a TCP port, 0 to 65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535 (0 picks any free port), not {text!r}")
    return port


def _seconds(text: str) -> float:
    """An ``argparse`` type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _count(text: str) -> int:
    """An ``argparse`` type: a whole number from 1 up."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 up, not {text!r}")
    return value


def _rate(lowest: float) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number of times a second, ``lowest`` or more (``inf`` hung the demo)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not lowest <= value < math.inf:
            raise argparse.ArgumentTypeError(f"must be a number per second from {lowest:g} up, not {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``tradeobs`` argument parser (``loadtest`` has its own: ``tradeobs loadtest --help``)."""
    parser = argparse.ArgumentParser(prog="tradeobs", description="Observability for Python trading systems.")
    parser.add_argument("--version", action="version", version=f"tradeobs {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", title="commands")
    parser.set_defaults(help_text=parser.format_help)  # shown when no command is given

    demo = sub.add_parser(
        "demo",
        help="run the paper-trading demo service, fully instrumented (no collector needed)",
        description="Run the paper-trading demo service, fully instrumented, until Ctrl-C (or --duration).",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    demo.add_argument(
        "--port", type=_port, default=8000, help="port to listen on; 0 picks any free port (default: %(default)s)"
    )
    demo.add_argument(
        "--prometheus-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="port of the Prometheus endpoint; 0 picks any free port (default: the prometheus_port setting, 9464)",
    )
    demo.add_argument(
        "--symbols",
        type=_count,
        default=10,
        metavar="COUNT",
        help="how many symbols to trade (a count, not names): AAPL, MSFT, ... then SYM0010, ... (default: %(default)s)",
    )
    demo.add_argument(
        "--tick-hz",
        type=_rate(0.1),
        default=10.0,
        help="market-data steps per second, each ticks every symbol (default: %(default)s)",
    )
    demo.add_argument("--orders-hz", type=_rate(0.0), default=2.0, help="orders per second (default: %(default)s)")
    demo.add_argument(
        "--seed", type=int, default=None, help="random seed for a repeatable market (default: none, a new one per run)"
    )
    demo.add_argument(
        "--duration",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: none, run until Ctrl-C or SIGTERM)",
    )

    cfg = sub.add_parser(
        "config", help="inspect configuration", description="Inspect the configuration the agent would resolve here."
    )
    cfg_sub = cfg.add_subparsers(dest="config_cmd", metavar="COMMAND", title="commands")
    cfg.set_defaults(help_text=cfg.format_help)
    check = cfg_sub.add_parser(
        "check",
        help="print resolved settings, their sources and every problem; exit 1 on problems",
        description="Resolve the settings exactly as init() would in this directory and environment; print each "
        "with its source and every problem (bad values, unknown TRADEOBS_* variables, unknown file keys); "
        "exit 1 if there is one.",
    )
    check.add_argument(
        "--file",
        default=None,
        metavar="PATH",
        help="config file to read (default: $TRADEOBS_CONFIG_FILE, else ./tradeobs.toml, else [tool.tradeobs] in "
        "./pyproject.toml)",
    )
    docs = cfg_sub.add_parser(
        "docs", help="print the settings reference as Markdown", description="Print the settings table as Markdown."
    )
    docs.add_argument(
        "--write",
        metavar="FILE",
        default=None,
        help="replace the generated table between the markers in FILE instead of printing (default: print)",
    )

    doctor = sub.add_parser(
        "doctor",
        help="check what the configured agent can reach",
        description="Check what the agent configured here can reach: the OTLP receiver (an empty export of each "
        "signal, in its protocol), the Prometheus endpoint, the service's live stream (with --service-url); and "
        "the configuration itself. Exit 1 if a check fails.",
    )
    doctor.add_argument(
        "--service-url",
        default=None,
        metavar="URL",
        help="base URL of the running service, where /telemetry is mounted, such as http://127.0.0.1:8000, or the "
        "dashboard's URL, http://127.0.0.1:8000/telemetry/ (default: none, the live stream is not checked)",
    )
    doctor.add_argument(
        "--timeout", type=_seconds, default=2.0, metavar="SECONDS", help="per-check timeout (default: %(default)s)"
    )

    docs = sub.add_parser(
        "docs",
        help="list the documentation installed with tradeobs, or print one page",
        description="The documentation installed with tradeobs (in the environment's share/doc/tradeobs/docs/; "
        "from a clone, its docs/): without PAGE, each page's name, title and file; with it, the page's text "
        "(Markdown), to read with a pager: tradeobs docs live | less. Help texts and messages name pages this "
        "way: `tradeobs docs live`, Security, is the section Security of that page.",
    )
    docs.add_argument(
        "page", nargs="?", default=None, metavar="PAGE", help="a page's name, such as live (default: list)"
    )

    sub.add_parser("loadtest", help="SSE fan-out load test (tradeobs loadtest --help)", add_help=False)
    sub.add_parser(
        "collector", help="check, reload and migrate the collector config (tradeobs collector --help)", add_help=False
    )

    live = sub.add_parser("live", help="the live view across services and hosts", description="The fleet live view.")
    live_sub = live.add_subparsers(dest="live_cmd", metavar="COMMAND", title="commands")
    live.set_defaults(help_text=live.format_help)
    gw = live_sub.add_parser(
        "gateway",
        help="serve the merged live view of every agent publishing to NATS (needs tradeobs[nats])",
        description="Serve the live view of every agent that publishes to NATS JetStream (live_nats_url): the "
        "same /stream, /snapshot, /history and dashboard as an agent's /telemetry, merged per service and strategy "
        "with fleet totals. Stateless: run several behind any load balancer. Auth and CORS come from "
        "TRADEOBS_LIVE_TOKEN and TRADEOBS_LIVE_CORS_ORIGINS, as for an agent. See `tradeobs docs scaling`.",
    )
    gw.add_argument(
        "--nats",
        default=None,
        metavar="URL",
        help="NATS server URL(s), comma-separated (default: $TRADEOBS_LIVE_NATS_URL)",
    )
    gw.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    gw.add_argument(
        "--port", type=_port, default=8765, help="port to listen on; 0 picks any free port (default: %(default)s)"
    )
    gw.add_argument("--hz", type=float, default=None, help="frames per second (default: live_hz, 10)")
    gw.add_argument(
        "--max-clients", type=int, default=None, help="stream clients before 503 (default: live_max_clients, 5000)"
    )
    gw.add_argument(
        "--phase-ms",
        type=float,
        default=40.0,
        help="wait at most this many ms after the agents' wall-clock tick for their frames; the merged frame goes "
        "out as soon as every instance's is in (default: %(default)s)",
    )
    gw.add_argument(
        "--event-buffer", type=int, default=2048, help="events kept in memory for resumes (default: %(default)s)"
    )
    gw.add_argument(
        "--max-replay",
        type=int,
        default=100_000,
        help="most events a resume fetches from JetStream before it resets instead (default: %(default)s)",
    )
    gw.add_argument(
        "--events-max-age",
        type=float,
        default=86_400.0,
        metavar="SECONDS",
        help="how long the events stream keeps events; set on the stream (default: %(default)s)",
    )
    gw.add_argument(
        "--events-max-bytes",
        type=int,
        default=1 << 30,
        metavar="BYTES",
        help="size bound of the events stream, oldest dropped first; set on the stream (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["loadtest"]:  # its own parser, options and --help
        from .live.loadtest import main as loadtest_main

        return int(loadtest_main(args_list[1:]))
    if args_list[:1] == ["collector"]:  # its own parser too (collector_tools)
        from .collector_tools import main as collector_main

        return collector_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if args.cmd == "demo":
            return _demo(args)
        if args.cmd == "config" and args.config_cmd == "check":
            return _config_check(args.file)
        if args.cmd == "config" and args.config_cmd == "docs":
            return _config_docs(args.write)
        if args.cmd == "docs":
            return _docs(args.page)
        if args.cmd == "doctor":
            return _doctor(args.service_url, args.timeout)
        if args.cmd == "live" and args.live_cmd == "gateway":
            return _gateway(args)
    except KeyboardInterrupt:  # Ctrl-C before a server took over the signal: stop quietly
        return 130
    except BrokenPipeError:  # `tradeobs config check | head`: the reader left; stop quietly, as other tools do
        _stdout_to_devnull()
        return 1
    # `tradeobs` or `tradeobs config` alone: show what there is, as a usage error.
    print(args.help_text(), end="", file=sys.stderr)
    return 2


def _stdout_to_devnull() -> None:
    """After a broken pipe: what is still buffered for stdout goes nowhere (the interpreter flushes it at exit, and
    would print a second error about the same pipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# --------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    from ._serve import bind, bind_error, serve
    from .demo import DemoConfig

    try:
        config = DemoConfig.sized(args.symbols, tick_hz=args.tick_hz, orders_hz=args.orders_hz, seed=args.seed)
    except ValueError as exc:
        print(f"tradeobs demo: {exc}", file=sys.stderr)
        return 2
    try:  # before anything starts, so a port in use is one line, not a traceback after the URLs
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"tradeobs demo: {bind_error(args.host, args.port, exc, '--port N', '--host')}", file=sys.stderr)
        return 1
    with sock:
        from . import agent as _agent
        from .demo import create_app
        from .live.app import count_closed

        init_kwargs: dict[str, Any] = {}
        if args.prometheus_port is not None:
            from .options import PrometheusOptions

            init_kwargs["prometheus"] = PrometheusOptions(port=args.prometheus_port, enabled=True)
        named = _host_name_given(args.host)
        if named is not None:  # the name the demo prints: its live view answers it (the DNS rebinding guard)
            from .options import LiveOptions

            hosts = resolve_settings()[0].live_allowed_hosts
            init_kwargs["live"] = LiveOptions(allowed_hosts=(*hosts, named) if named not in hosts else hosts)
        app = create_app(config, **init_kwargs)
        address, port = sock.getsockname()[:2]
        agent = _agent.get_agent()
        _print_demo_urls(config, args.host, port, agent)
        _warn_if_exposed(address)
        serve(app, sock, duration=args.duration, lifespan="on", on_close=count_closed)
        _print_demo_stopped(app.state.engine.orders, agent)
    return 0


def _print_demo_stopped(orders: int, agent: Any) -> None:
    """The last line after Ctrl-C: that it stopped, and what it leaves on disk. Before, Ctrl-C ended the demo without
    a word, and a newcomer did not know whether the logs/ it wrote in the current directory were kept or temporary."""
    files = _demo_files(agent)
    kept = [(what, where) for what, where, why in files if why is None]
    lost = [(what, where, why) for what, where, why in files if why is not None]
    said = ""
    if len(kept) == 2 and os.path.dirname(kept[1][1]) == kept[0][1].rstrip(os.sep):
        said = f"; its JSON logs and order traces stay in {kept[0][1]}"  # traces.jsonl in the logs' directory
    elif kept:
        said = "; its " + " and its ".join(f"{what} stay in {where}" for what, where in kept)
    if lost:  # a read-only or foreign directory: the banner said so; no "stay in" for files never written
        reasons = {why for _, _, why in lost}
        if len(reasons) == 1:  # traces.jsonl in the logs' directory: one reason for both
            said += f"; no {' or '.join(what for what, _, _ in lost)} were written ({reasons.pop()})"
        else:
            said += "; no " + " and no ".join(f"{what} were written ({why})" for what, _, why in lost)
    print(f"tradeobs demo: stopped after {orders} orders{said}", flush=True)


def _demo_files(agent: Any) -> list[tuple[str, str, str | None]]:
    """What the demo writes: ("JSON logs", its directory, why it cannot be written there or None), then the same for
    its order traces when they go to a file. Started in a directory it may not write to (read-only, another user's),
    the demo printed that its logs were in ./logs/ and, at Ctrl-C, that they "stay" there: nothing was."""
    if agent is None:
        return []
    s = agent.settings
    files: list[tuple[str, str, str | None]] = []
    if s.log_dir and agent.logs is not None:
        logs = os.path.join(os.path.abspath(s.log_dir), "")
        files.append(("JSON logs", logs, _cannot_write(logs)))
    if agent.traces_file is not None:
        path = agent.traces_file.path
        files.append(("order traces", path, _cannot_write(os.path.dirname(path))))
    return files


def _cannot_write(directory: str) -> str | None:
    """Why a file cannot be made in ``directory``, made if missing as the log files' sink does (``"cannot write
    /srv/logs/: Read-only file system"``), or None if one can: a real file is made and removed, so a read-only file
    system, a directory of another user's and a path through a file all answer as the sink would."""
    import tempfile

    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"cannot write {os.path.join(directory, '')}: {exc.strerror or exc}"
    return None


def _host_name_given(host: str) -> str | None:
    """``--host`` as a host name (not an address), lower case: ``tradeobs demo --host desk-box`` prints
    http://desk-box:PORT/telemetry/, and where that name resolves to loopback (an /etc/hosts alias of this machine)
    the live view would refuse it (403) unless it is in live_allowed_hosts. The user chose that name to serve on: no
    rebinding page controls it."""
    import ipaddress

    from ._parsers import host_name

    name = host_name(host)
    if name is None:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None


def _warn_if_exposed(host: str) -> None:
    """On stderr: the demo's live view listens beyond this machine with no token (``live.auth.exposure_warning``)."""
    from .agent import get_agent
    from .live.auth import exposure_warning

    agent = get_agent()
    secret = agent.settings.live_token if agent is not None else resolve_settings()[0].live_token
    warning = exposure_warning(host, secret)
    if warning:
        print(f"tradeobs demo: warning: {warning}", file=sys.stderr)


def _browser_host(host: str) -> str:
    """Where a browser on this machine opens a server listening on ``host``. A wildcard (every interface) is no
    address to open: ``http://0.0.0.0:PORT/`` reaches loopback with ``Host: 0.0.0.0``, which the live view's DNS
    rebinding guard refuses (403) when it has no live_token; this machine's loopback address is served."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host.strip("[]") == "::":
        return "::1"
    return host


def _print_demo_urls(config: Any, host: str, port: int, agent: Any) -> None:
    host = _browser_host(host)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    print(f"tradeobs demo: paper trading {config.symbols} symbols")
    print(f"  live dashboard   {base}/telemetry/")
    print(f"  live stream      {base}/telemetry/stream")
    print(f"  health           {base}/healthz  {base}/readyz")
    if agent is not None:
        s = agent.settings
        prometheus = agent.prometheus_url or "off"
        taken = f"{s.prometheus_host}:{s.prometheus_port}"
        if agent.prometheus is not None and agent.prometheus_url is None:  # its port is taken: tried again
            prometheus = f"not yet: {taken} is in use (tried again until it is free); or --prometheus-port N"
        elif agent.prometheus_url is None and s.prometheus_enabled and not agent.disabled:
            prometheus = f"off: cannot listen on {taken}; pick another with --prometheus-port N"
        print(f"  Prometheus       {prometheus}")
        # Both as full paths: "logs/" beside an absolute traces.jsonl read as two places, and only worked from
        # the directory the demo was started in.
        files = {what: (where, why) for what, where, why in _demo_files(agent)}
        logs, why = files.get("JSON logs", ("off", None))
        fix = "start the demo in a directory you can write to, or set TRADEOBS_LOG_DIR"
        print(f"  JSON logs        {logs}" if why is None else f"  JSON logs        none: {why}; {fix}")
        if "order traces" in files:
            path, why = files["order traces"]
            fix = "set TRADEOBS_TRACES_FILE to a file you can write"
            print(
                f"  order traces     {path} (OTLP/JSON lines)"
                if why is None
                else f"  order traces     none: {why}; {fix}"
            )
        if agent.export == "not_configured":
            print("  OTLP collector   not configured: everything above works on its own (set TRADEOBS_OTLP_ENDPOINT)")
        elif agent.export == "on":
            from ._internal.otlp_probe import probe

            target = otlp_for(s, "traces")
            # An empty OTLP export, as doctor sends: a TCP connect alone said "reachable" for any server on that port
            found = probe(target, "traces", 1.0)
            if found.ok:
                state = "an OTLP receiver answered"
            else:
                state = f"not reachable as a collector: {found.detail}; batches are kept and retried"
            print(f"  OTLP collector   {target.shown} ({state})")
    print("Ctrl-C to stop.", flush=True)


# --------------------------------------------------------------------------- live gateway


def _gateway(args: argparse.Namespace) -> int:
    from .exceptions import TradeObsConfigError

    try:
        import nats  # noqa: F401 - the optional dependency
    except ImportError:
        print("tradeobs live gateway needs nats-py: pip install 'tradeobs[nats]'", file=sys.stderr)
        return 2
    from .live.gateway import run_gateway

    for name, value, lo in (("--event-buffer", args.event_buffer, 1), ("--max-replay", args.max_replay, 0)):
        if value < lo:
            print(f"tradeobs live gateway: {name} must be >= {lo}, got {value}", file=sys.stderr)
            return 2
    if not 0 <= args.phase_ms < 1000:
        print(f"tradeobs live gateway: --phase-ms must be in [0, 1000), got {args.phase_ms:g}", file=sys.stderr)
        return 2
    if args.events_max_age <= 0 or args.events_max_bytes < 1024:
        print("tradeobs live gateway: --events-max-age must be > 0 and --events-max-bytes >= 1024", file=sys.stderr)
        return 2
    _say_info_on_stderr()
    try:
        run_gateway(
            args.nats,
            args.host,
            args.port,
            hz=args.hz,
            max_clients=args.max_clients,
            phase=args.phase_ms / 1000.0,
            event_buffer=args.event_buffer,
            max_replay=args.max_replay,
            events_max_age=args.events_max_age,
            events_max_bytes=args.events_max_bytes,
        )
    except TradeObsConfigError as exc:
        print(f"tradeobs live gateway: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tradeobs live gateway: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _say_info_on_stderr() -> None:
    """tradeobs' own INFO lines on stderr, bare as its warnings: with no handler configured only warnings got
    there (Python's last resort), so the gateway said NATS was lost and never that it was back."""
    log = logging.getLogger("tradeobs")
    if log.handlers or logging.getLogger().handlers:  # logging configured already: left as it is
        return
    log.addHandler(logging.StreamHandler())  # stderr, the message alone
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


# --------------------------------------------------------------------------- config


def _config_check(path: str | None) -> int:
    settings, report = resolve_settings(config_file=path, config_file_label="--file")
    report.problems.extend(_directory_problems(settings, report))
    rows = describe(settings, report)
    width = max(len(r[0]) for r in rows)
    vwidth = min(48, max(len(r[1]) for r in rows))
    print(f"{'setting':<{width}}  {'value':<{vwidth}}  source")
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {source}")
    if report.config_file:
        print(f"\nconfig file: {report.config_file}")
    if report.problems:
        print(f"\n{len(report.problems)} problem(s):")
        for p in report.problems:
            print(f"  - {p}")
        return 1
    print("\nno problems")
    return 0


def _directory_problems(settings: Any, report: Any) -> list[Any]:
    """The directories the settings name that this user could not write files in (checked here, not at ``init()``,
    which tries and reports each failure as it happens)."""
    from pathlib import Path

    from ._config_report import Problem

    wanted = []
    if settings.logs_enabled and settings.log_dir:
        wanted.append(("log_dir", settings.log_dir))
    if settings.multiprocess_dir:
        wanted.append(("multiprocess_dir", settings.multiprocess_dir))
    problems = []
    for name, value in wanted:
        path = Path(value).expanduser()
        why = None
        if path.exists():
            if not path.is_dir():
                why = "it is not a directory"
            elif not os.access(path, os.W_OK | os.X_OK):
                why = "this user cannot write in it"
        else:
            parent = next((p for p in path.absolute().parents if p.exists()), None)
            if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                why = f"it does not exist and cannot be created in {parent}"
        if why is not None:
            source = report.source(name)
            problems.append(
                Problem(
                    name,
                    value,
                    source,
                    "a directory this user can write in",
                    f"{name} {value!r} (from {source}): {why}; expected a directory this user can write in",
                )
            )
    return problems


_BEGIN, _END = "<!-- BEGIN settings", "<!-- END settings -->"


def settings_table() -> str:
    lines = ["| setting | environment | standard fallback | default | allowed | meaning |", "|---|---|---|---|---|---|"]
    for f in FIELDS:
        default = "(per protocol)" if f.name == "otlp_endpoint" else ("(unset)" if f.secret else repr(f.default))
        unit = ""
        if f.otel_parse is not None:
            unit = " (milliseconds)" if "milliseconds" in allowed(f.otel_parse) else " (`true` or `false` only)"
        otel = ", ".join(f"`{v}`{unit}" for v in f.otel)
        meaning = f.help + (f"; empty = {f.empty}" if f.empty else "")
        lines.append(f"| `{f.name}` | `{f.env}` | {otel} | `{default}` | {f.allowed} | {meaning} |")
    return "\n".join(lines) + "\n"


def _docs(page: str | None) -> int:
    from . import _docs as where
    from ._names import did_you_mean

    found = where.pages()
    if not found:
        print(
            "tradeobs docs: the documentation is not installed here (it comes with tradeobs' wheel and sdist, in "
            f"share/doc/tradeobs/docs/ under the environment, {sys.prefix})",
            file=sys.stderr,
        )
        return 1
    if page is None:
        width = max(map(len, found))
        print(f"tradeobs {__version__}'s documentation, in {next(iter(found.values())).parent}/:")
        for name, path in found.items():
            print(f"  {name:<{width}}  {where.title(path)}")
        print("tradeobs docs PAGE prints one (tradeobs docs first-ten-minutes | less)")
        return 0
    chosen = found.get(page.removesuffix(".md").removeprefix("docs/"))
    if chosen is None:
        hint = did_you_mean(page, found) or "`tradeobs docs` alone lists the pages"
        print(f"tradeobs docs: no page {page!r}; {hint}", file=sys.stderr)
        return 2
    sys.stdout.write(chosen.read_text(encoding="utf-8"))
    return 0


def _config_docs(write: str | None = None) -> int:
    if write is None:
        print(settings_table(), end="")
        return 0
    from pathlib import Path

    path = Path(write)
    try:  # a missing or unwritable file is one line, not a traceback
        text = path.read_text(encoding="utf-8")
        head, sep, rest = text.partition(_BEGIN)
        marker_line, _, rest = rest.partition("\n")
        _, sep2, tail = rest.partition(_END)
        if not sep or not sep2:
            print(f"{write}: no '{_BEGIN} ... {_END}' markers", file=sys.stderr)
            return 1
        path.write_text(head + _BEGIN + marker_line + "\n" + settings_table() + _END + tail, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"tradeobs config docs: cannot update {write}: {reason}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- doctor


def _http_ok(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[bool, str, int | None]:
    """Whether ``url`` answered 2xx, what happened in words, and the HTTP status (``None``: no answer)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as resp:
            return 200 <= resp.status < 300, f"HTTP {resp.status}", resp.status
    except Exception as exc:
        status = exc.code if isinstance(exc, urllib.error.HTTPError) else None
        return False, type(exc).__name__ + ": " + str(exc)[:80], status


def _live_snapshot_url(service_url: str) -> str:
    """The live snapshot to ask for: ``--service-url`` may be the service's base URL, or the dashboard's URL that
    ``tradeobs demo`` prints (``.../telemetry/``; with ``/telemetry`` appended again it was a 404), with or without
    ``http://`` (without, urllib said "unknown url type" and doctor asked whether the service was running)."""
    url = service_url.strip()
    if "://" not in url:
        url = "http://" + url
    base = url.rstrip("/")
    if not base.endswith("/telemetry"):
        base += "/telemetry"
    return base + "/snapshot"


def _doctor(service_url: str | None, timeout: float) -> int:
    from ._internal.otlp_probe import probe
    from ._internal.providers import otlp_mode

    # gRPC's C core prints its own lines (a failed TLS handshake, invalid metadata) on stderr; the table says each.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    settings, report = resolve_settings()
    rows: list[tuple[str, str, str, str]] = []  # status: OK, FAIL, WARN (a doubt) or SKIP (not checked)
    mode = otlp_mode(settings, report)
    if mode == "not_configured":
        rows.append(
            (
                "collector",
                otlp_for(settings, "traces").shown,
                "WARN",
                "not configured (the embedded default: Prometheus endpoint, live stream, JSON logs and "
                "logs/traces.jsonl work on their own). To export, run a collector (`tradeobs docs collector`) and "
                "set TRADEOBS_OTLP_ENDPOINT",
            )
        )
    elif settings.otlp_enabled:
        for signal in ("traces", "metrics", "logs"):  # each: a collector may take one signal and not another
            t = otlp_for(settings, signal)
            result = probe(t, signal, timeout)
            status = {True: "OK", False: "FAIL", None: "WARN"}[result.ok]
            rows.append((f"collector {signal} ({t.protocol})", t.shown, status, result.detail))
    else:
        rows.append(("collector", "-", "OK", "OTLP disabled"))
    if settings.prometheus_enabled:
        host = settings.prometheus_host
        url = f"http://{f'[{host}]' if ':' in host else host}:{settings.prometheus_port}/metrics"
        ok, detail, http_status = _http_ok(url, timeout)
        # `tradeobs demo --prometheus-port 9465` (first-ten-minutes.md, for a port in use) is not this shell's setting
        hint = " (is the service running? on another port: set TRADEOBS_PROMETHEUS_PORT here as the service has it)"
        if http_status == 403:  # the DNS rebinding guard (docs/metrics.md, Security)
            hint = (
                " (on a loopback address the endpoint answers only loopback host names: set TRADEOBS_PROMETHEUS_HOST "
                "here as the service has it, or add this name to the service's TRADEOBS_PROMETHEUS_ALLOWED_HOSTS)"
            )
        rows.append(("prometheus endpoint", url, "OK" if ok else "FAIL", detail + ("" if ok else hint)))
    rows.append(_worker_groups_row(settings))
    if not settings.live_enabled:
        rows.append(("live stream", "-", "SKIP", "skipped: live_enabled is false"))
    elif service_url is None:
        rows.append(
            (
                "live stream",
                "-",
                "SKIP",
                "not checked: give the running service's base URL with --service-url http://HOST:PORT",
            )
        )
    else:
        live_url = _live_snapshot_url(service_url)
        auth: dict[str, str] = {}
        if settings.live_token:  # the service asks for a token: one of a minute, signed with the same secret
            from .live.auth import make_token

            auth["Authorization"] = f"Bearer {make_token(settings.live_token, ttl=60)}"
        ok, detail, http_status = _http_ok(live_url, timeout, auth)
        hint = " (is the service running? on another address: --service-url http://HOST:PORT)"
        if http_status == 403 and not settings.live_token:  # the DNS rebinding guard (docs/live.md, Security)
            name = urllib.parse.urlsplit(live_url).hostname
            hint = (
                " (with no live_token, a live view on loopback answers only loopback host names: use "
                "--service-url http://127.0.0.1:PORT, or add this name to the service's TRADEOBS_LIVE_ALLOWED_HOSTS"
                + (f"={name}" if name else "")
                + ")"
            )
        rows.append(("live stream", shown_url(live_url), "OK" if ok else "FAIL", detail + ("" if ok else hint)))
    rows.append(
        (
            "configuration",
            report.config_file or "(no file)",
            "FAIL" if report.problems else "OK",
            f"{len(report.problems)} problem(s)" if report.problems else "ok",
        )
    )
    _table(["check", "target", "status", "detail"], rows)
    for p in report.problems:
        print(f"  - {p}")
    return 1 if any(r[2] == "FAIL" for r in rows) else 0


def _worker_groups_row(settings: Any) -> tuple[str, str, str, str]:
    """The running services' worker groups in the shared directory (docs/agent.md, "Several worker processes"): how
    many workers each has, whether one leads (serves the shared endpoint), and whether the directory has room for
    every worker to write its snapshot again (through a copy: a snapshot that does not fit is missing from /metrics)."""
    from ._internal.workers import default_base, running_groups

    if settings.multiprocess == "off":
        return ("worker groups", "-", "SKIP", "skipped: multiprocess is off")
    base = settings.multiprocess_dir or default_base()
    root = os.path.join(base, f"tradeobs-{os.getuid()}")
    groups = running_groups(base)
    if not groups:
        return (
            "worker groups",
            root,
            "OK",
            "none running (a single process needs none; workers of gunicorn or "
            "uvicorn --workers form one when their service runs as this user)",
        )
    try:
        st = os.statvfs(base)
        free: int | None = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    led = {True: "a leader", False: "NO leader (no shared endpoint)"}
    parts = [f"{g.service} ({g.kind}): {g.members} worker(s), {led[g.leader]}, {_mb(g.size)}" for g in groups]
    used = sum(g.size for g in groups)
    status = "OK" if all(g.leader for g in groups) else "WARN"
    if free is not None:
        parts.append(f"{_mb(free)} free in {base}")
        if free < used:
            status = "WARN"
            parts.append(
                "less than the groups' files: a worker's snapshot that does not fit is missing from /metrics; give "
                "TRADEOBS_MULTIPROCESS_DIR a larger directory, or the container a larger /dev/shm (docker --shm-size)"
            )
    return ("worker groups", root, status, "; ".join(parts))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
