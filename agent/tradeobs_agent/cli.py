"""The ``tradeobs`` command.

tradeobs demo [--host 127.0.0.1] [--port 8000] [--symbols 10] [--tick-hz 10] [--orders-hz 2]
tradeobs config check [--file tradeobs.toml]     resolved settings, their sources, every problem
tradeobs config docs                             the settings table as Markdown
tradeobs doctor [--service-url URL]              what is reachable: collector, Prometheus, live stream
tradeobs loadtest ...                            SSE fan-out load test (see docs/live.md)
"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from .config import FIELDS, describe, otlp_for, resolve_settings


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["loadtest"]:  # its own parser, options and --help
        from .live.loadtest import main as loadtest_main

        return int(loadtest_main(args_list[1:]))
    parser = argparse.ArgumentParser(prog="tradeobs", description="Observability for Python trading systems")
    sub = parser.add_subparsers(dest="cmd", required=True)

    demo = sub.add_parser("demo", help="run the paper-trading demo service, instrumented")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--symbols", type=int, default=10)
    demo.add_argument("--tick-hz", type=float, default=10.0, help="market-data steps per second")
    demo.add_argument("--orders-hz", type=float, default=2.0, help="orders per second")
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    cfg = sub.add_parser("config", help="inspect configuration")
    cfg_sub = cfg.add_subparsers(dest="config_cmd", required=True)
    check = cfg_sub.add_parser("check", help="print resolved settings and problems; exit 1 on problems")
    check.add_argument("--file", default=None, help="config file (default: tradeobs.toml / pyproject.toml)")
    docs = cfg_sub.add_parser("docs", help="print the settings reference as Markdown")
    docs.add_argument("--write", metavar="FILE", help="replace the generated table in FILE instead of printing")

    doctor = sub.add_parser("doctor", help="check what the configured agent can reach")
    doctor.add_argument("--service-url", default="http://127.0.0.1:8000", help="where the live stream is served")
    doctor.add_argument("--timeout", type=float, default=2.0)

    sub.add_parser("loadtest", help="SSE fan-out load test (tradeobs loadtest --help)", add_help=False)

    args = parser.parse_args(args_list)
    if args.cmd == "demo":
        return _demo(args)
    if args.cmd == "config":
        return _config_check(args.file) if args.config_cmd == "check" else _config_docs(args.write)
    return _doctor(args.service_url, args.timeout)


# --------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    import uvicorn

    from . import agent as _agent
    from .demo import DemoConfig, create_app

    try:
        config = DemoConfig(symbols=args.symbols, tick_hz=args.tick_hz, orders_hz=args.orders_hz, seed=args.seed)
    except ValueError as exc:
        print(f"tradeobs demo: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    agent = _agent.get_agent()
    server = _Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on")
    )
    base = f"http://{args.host}:{args.port}"
    print(f"tradeobs demo: paper trading {config.symbols} symbols")
    print(f"  live dashboard   {base}/telemetry/")
    print(f"  live stream      {base}/telemetry/stream")
    print(f"  health           {base}/healthz  {base}/readyz")
    if agent is not None:
        s = agent.settings
        print(f"  Prometheus       {agent.prometheus_url or 'off'}")
        print(f"  JSON logs        {s.log_dir or 'off'}/")
        if s.otlp_enabled:
            target = otlp_for(s, "traces")
            state = "reachable" if _tcp_ok(target.endpoint, 0.5) else "not reachable: exports are counted as failed"
            print(f"  OTLP collector   {target.endpoint} ({state})")
    print("Ctrl-C to stop.", flush=True)

    async def serve() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # a clean stop, exit status 0
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve())
        await asyncio.wait({task}, timeout=args.duration)
        server.should_exit = True
        await task

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


class _Server:
    """uvicorn.Server without its signal capture (which re-raises SIGTERM after a graceful stop)."""

    def __new__(cls, config: Any) -> Any:
        import contextlib

        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        return Server(config)


# --------------------------------------------------------------------------- config


def _config_check(path: str | None) -> int:
    settings, report = resolve_settings(config_file=path, config_file_label="--file")
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


_BEGIN, _END = "<!-- BEGIN settings", "<!-- END settings -->"


def settings_table() -> str:
    lines = ["| setting | environment | standard fallback | default | allowed | meaning |", "|---|---|---|---|---|---|"]
    for f in FIELDS:
        default = "(per protocol)" if f.name == "otlp_endpoint" else ("(unset)" if f.secret else repr(f.default))
        unit = " (milliseconds)" if f.otel_parse is not None else ""
        otel = ", ".join(f"`{v}`{unit}" for v in f.otel)
        meaning = f.help + (f"; empty = {f.empty}" if f.empty else "")
        lines.append(f"| `{f.name}` | `{f.env}` | {otel} | `{default}` | {f.allowed} | {meaning} |")
    return "\n".join(lines) + "\n"


def _config_docs(write: str | None = None) -> int:
    if write is None:
        print(settings_table(), end="")
        return 0
    from pathlib import Path

    path = Path(write)
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition(_BEGIN)
    marker_line, _, rest = rest.partition("\n")
    _, sep2, tail = rest.partition(_END)
    if not sep or not sep2:
        print(f"{write}: no '{_BEGIN} ... {_END}' markers", file=sys.stderr)
        return 1
    path.write_text(head + _BEGIN + marker_line + "\n" + settings_table() + _END + tail, encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- doctor


def _tcp_ok(url: str, timeout: float) -> bool:
    u = urllib.parse.urlparse(url if "://" in url else "http://" + url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "localhost", port), timeout=timeout):
            return True
    except OSError:
        return False


def _http_ok(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except Exception as exc:
        return False, type(exc).__name__ + ": " + str(exc)[:80]


def _doctor(service_url: str, timeout: float) -> int:
    settings, report = resolve_settings()
    rows: list[tuple[str, str, bool, str]] = []
    if settings.otlp_enabled:
        seen: set[str] = set()
        for signal in ("traces", "metrics", "logs"):
            t = otlp_for(settings, signal)
            if t.endpoint in seen:
                continue
            seen.add(t.endpoint)
            ok = _tcp_ok(t.endpoint, timeout)
            rows.append((f"collector ({t.protocol})", t.endpoint, ok, "TCP connect ok" if ok else "connection failed"))
    else:
        rows.append(("collector", "-", True, "OTLP disabled"))
    if settings.prometheus_enabled:
        url = f"http://{settings.prometheus_host}:{settings.prometheus_port}/metrics"
        ok, detail = _http_ok(url, timeout)
        rows.append(("prometheus endpoint", url, ok, detail + ("" if ok else " (is the service running?)")))
    live_url = service_url.rstrip("/") + "/telemetry/snapshot"
    ok, detail = _http_ok(live_url, timeout)
    rows.append(("live stream", live_url, ok, detail))
    rows.append(
        (
            "configuration",
            report.config_file or "(no file)",
            not report.problems,
            f"{len(report.problems)} problem(s)" if report.problems else "ok",
        )
    )
    _table(["check", "target", "status", "detail"], [(a, b, "OK" if c else "FAIL", d) for a, b, c, d in rows])
    for p in report.problems:
        print(f"  - {p}")
    return 0 if all(r[2] for r in rows) else 1


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
