"""Fleet live view benchmark: gateways fed by 10 publishing services over NATS vs one agent's own stream, same run.

    python benchmarks/live_gateway.py [--services 10] [--duration 12] [--plan agent:2000,gw1:2000,gw1:4000,gw2:4000]

Starts nats-server with JetStream (scripts/build-nats.sh), ``--services`` agent processes (each a service of
its own: ``init()`` with ``live_nats_url``, the synthetic 10-symbol state of ``tradeobs loadtest`` moving every
tick, and one fill a second), then measures each entry of the plan with ``tradeobs loadtest``'s :func:`run`
(``tradeobs_agent/live/loadtest.py``: raw asyncio SSE clients in separate processes, delivered = frames received
in the steady-state window / clients x hz x window):

* ``agent``: the peer, the same clients on one agent's own ``/telemetry/stream`` (latency = receipt - its tick);
* ``gwN``: N ``tradeobs live gateway`` processes (the clients split evenly, as a load balancer would), latency =
  receipt - the publish time of the oldest agent frame the merged frame carries (its ``ts``), so from the
  agent's publish to the client, through NATS and the gateway.

Everything (NATS, the services, the gateways, the load generators) runs on this machine. Results: docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # the loadtest extra

from tradeobs_agent.live import loadtest

HERE = Path(__file__).resolve()


def _nats_binary() -> str:
    cached = Path(os.environ.get("TRADEOBS_CACHE", Path.home() / ".cache" / "tradeobs")) / "bin" / "nats-server"
    found = str(cached) if cached.exists() else shutil.which("nats-server")
    if not found:
        sys.exit("nats-server not found: run scripts/install.d/40-nats.sh (scripts/build-nats.sh)")
    return found


def _agent(argv: list[str]) -> int:
    """One publishing service: the synthetic trading state, published to NATS until SIGTERM."""
    import tradeobs_agent

    p = argparse.ArgumentParser()
    p.add_argument("--service", required=True)
    p.add_argument("--hz", type=float, default=10.0)
    p.add_argument("--symbols", type=int, default=10)
    args = p.parse_args(argv)
    tradeobs_agent.init(service_name=args.service, otlp=False, prometheus=False, logs=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    feeder = threading.Thread(target=loadtest.feed, args=(args.symbols, args.hz, stop), daemon=True)
    feeder.start()
    stop.wait()
    tradeobs_agent.shutdown()
    return 0


def _serve_gateway(argv: list[str]) -> int:
    """``loadtest.run()``'s server interface (``--port --hz --symbols --max-clients``) for a gateway."""
    from tradeobs_agent.live.gateway import run_gateway

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hz", type=float, default=10.0)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--max-clients", type=int, default=10000)
    args = p.parse_args(argv)
    loadtest.raise_nofile()
    run_gateway(None, "127.0.0.1", args.port, hz=args.hz, max_clients=args.max_clients)
    return 0


def _wait_fleet(url: str, services: int, timeout: float = 60.0) -> None:
    """A throwaway gateway's /snapshot until every service shows (the agents publish, NATS has the streams)."""
    port = loadtest._free_port()
    env = {**os.environ, "TRADEOBS_LIVE_NATS_URL": url}
    proc = subprocess.Popen([sys.executable, str(HERE), "serve-gateway", "--port", str(port)], env=env)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot", timeout=2) as r:
                    if json.load(r)["health"].get("services") == services:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the {services} services did not all show up on a gateway within {timeout:.0f} s")
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str]) -> int:
    if argv[:1] == ["agent"]:
        return _agent(argv[1:])
    if argv[:1] == ["serve-gateway"]:
        return _serve_gateway(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    loadtest.add_arguments(p)
    p.set_defaults(p99_ms=150.0)
    p.add_argument("--services", type=int, default=10, help="publishing services (one agent process each)")
    p.add_argument("--repeat", type=int, default=1, help="run the whole plan this many times (medians reported)")
    p.add_argument(
        "--plan",
        default="agent:2000,gw1:2000,gw1:4000,gw2:4000",
        help="runs as server:clients; server is 'agent' (the peer) or gwN (N gateways)",
    )
    args = p.parse_args(argv)
    loadtest.raise_nofile()
    if args.procs % 2:
        args.procs += 1  # two gateways: each gets the same number of load generators
    work = Path(tempfile.mkdtemp(prefix="tradeobs-bench-gateway-"))
    nats_port, mon_port = loadtest._free_port(), loadtest._free_port()
    nats = subprocess.Popen(
        [_nats_binary(), "-js", "-sd", str(work / "js"), "-a", "127.0.0.1", "-p", str(nats_port), "-m", str(mon_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"nats://127.0.0.1:{nats_port}"
    env = {"TRADEOBS_LIVE_NATS_URL": url, "TRADEOBS_LOG_DIR": ""}
    agents: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    try:
        time.sleep(1.0)
        for i in range(args.services):
            cmd = [sys.executable, str(HERE), "agent", "--service", f"svc{i:02d}", "--hz", str(args.hz)]
            agents.append(subprocess.Popen([*cmd, "--symbols", str(args.symbols)], env={**os.environ, **env}))
        _wait_fleet(url, args.services)
        fleet = [psutil.Process(p.pid) for p in [nats, *agents]]
        for entry in [e for _ in range(args.repeat) for e in args.plan.split(",")]:
            server, _, n = entry.partition(":")
            clients = int(n)
            print(f"... {server} with {clients:,} clients", file=sys.stderr, flush=True)
            c0, w0 = sum(sum(p.cpu_times()[:2]) for p in fleet), time.time()
            if server == "agent":  # the peer: one agent's own live stream (its own process, no NATS)
                row = loadtest.run("agent", clients, args, env={"TRADEOBS_LIVE_NATS_URL": ""}, warm=True)
            else:
                replicas = int(server.removeprefix("gw"))
                cmd = [sys.executable, str(HERE), "serve-gateway"]
                impl = f"gateway x{replicas}"
                row = loadtest.run(impl, clients, args, server=cmd, env=env, replicas=replicas, warm=True)
            row["fleet_cpu_pct"] = (sum(sum(p.cpu_times()[:2]) for p in fleet) - c0) / (time.time() - w0) * 100
            rows.append(row)
    finally:
        for a in agents:
            a.terminate()
        for a in agents:
            try:
                a.wait(10)
            except subprocess.TimeoutExpired:
                a.kill()
                a.wait()
        nats.terminate()
        nats.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nFleet live view, {args.services} services publishing a {args.symbols}-symbol state at {args.hz:g} Hz to "
        f"NATS JetStream, {args.duration:g} s steady state; nats-server, the services, the gateways and "
        f"{args.procs} load-generator process(es) on this machine ({os.cpu_count()} CPUs), loop={loadtest.event_loop()}"
    )
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        runs.setdefault((r["impl"], r["clients"]), []).append(r)
    medians = [sorted(rs, key=lambda r: r["p99_ms"])[len(rs) // 2] for rs in runs.values()]
    if args.repeat > 1:
        print(f"The run with the median p99 of {args.repeat} per configuration (the plan repeated in order):")
    print(loadtest.table(medians))
    if args.repeat > 1:
        print("\n| server | clients | runs | delivered (each run) | p99 ms (each run) |")
        print("|---|---:|---:|---|---|")
        for (impl, clients), rs in runs.items():
            pct = ", ".join(f"{r['pct']:.1f}%" for r in rs)
            p99 = ", ".join(f"{r['p99_ms']:.0f}" for r in rs)
            print(f"| {impl} | {clients:,} | {len(rs)} | {pct} | {p99} |")
    print(f"\nWhere the {os.cpu_count()} cores went in each run (% of one core):")
    print(f"| server | clients | server(s) | load generators | {args.services} services + nats-server (whole run) |")
    print("|---|---:|---:|---:|---:|")
    for r in medians:
        print(
            f"| {r['impl']} | {r['clients']:,} | {r['cpu_pct']:.0f} | {r['loader_cpu_pct']:.0f} | "
            f"{r['fleet_cpu_pct']:.0f} |"
        )
    crit = f">= {args.min_pct:g}% delivered, p99 <= {args.p99_ms:g} ms"
    held = {r["impl"]: loadtest.sustained(medians, r["impl"], args.p99_ms, args.min_pct) for r in medians}
    print(f"Sustained ({crit}, of the counts run): " + ", ".join(f"{k} {v:,} clients" for k, v in held.items()) + ".")
    if held.get("agent"):  # the peer
        vs = ", ".join(f"{k} {v / held['agent']:.1f}x" for k, v in held.items() if k != "agent")
        print(f"Sustained clients vs one agent's own stream: {vs or '-'}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
