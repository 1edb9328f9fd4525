"""Thanos on loopback: the metrics store beyond one Prometheus (docs/scaling.md).

>>> with start_thanos(tmp / "thanos") as store:                           # doctest: +SKIP
...     config = prometheus_yaml + remote_write_config(store.remote_write_url)
...     prometheus_query(store.query_url, "up")                             # the query tier answers like Prometheus

Two ``thanos receive`` nodes (the storage nodes) in one hashring with replication factor 2: a
sample written to either is forwarded to both, and the write succeeds once ONE has it (Thanos'
write quorum is rf/2+1, except for rf=2: 1, pkg/receive/handler.go writeQuorum). A node that is
down misses what is written meanwhile (receive has no hand-off); ``thanos query`` fans out to both
over gRPC and deduplicates the replicas by their ``receive_replica`` label (``chain``: a 1:1 merge
of the samples), which fills such a gap from the other replica. It serves the Prometheus HTTP
API, so Grafana's Prometheus datasource (and ``grafana_eval.Evaluator``) works against it
unchanged. Each node writes its TSDB under its own directory, so a node stopped with
:meth:`ReceiveNode.stop` can be started again on its data with :meth:`ThanosStore.restart`. The
binary comes from scripts/build-thanos.sh (scripts/install.d/40-thanos.sh).

Labels the store adds to every series (compare without them): the receiver's tenant label
``tenant_id`` and the external labels Prometheus sends with remote write.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .procs import REPO, ManagedProcess, _start_and_wait, find_binary, free_port

__all__ = [
    "REPLICA_LABEL",
    "TENANT_LABEL",
    "ReceiveNode",
    "ThanosStore",
    "local_midnight_zone",
    "remote_write_config",
    "start_thanos",
]

REPLICA_LABEL = "receive_replica"
TENANT_LABEL = "tenant_id"
# The exemplar ring of each receive node: compose's (thanos-receive-0's --tsdb.max-exemplars).
MAX_EXEMPLARS = next(
    a.partition("=")[2]
    for a in yaml.safe_load((REPO / "compose" / "docker-compose.yml").read_text())["services"]["thanos-receive-0"][
        "command"
    ]
    if a.startswith("--tsdb.max-exemplars=")
)


@dataclass
class ReceiveNode:
    index: int
    workdir: Path
    grpc: str  # host:port, the node's endpoint in the hashring (and for the query tier)
    http: str  # host:port: /-/ready, /metrics
    remote_write: str  # host:port: POST /api/v1/receive
    capnproto: str  # host:port: replication between the nodes (Cap'n Proto; unused with the default gRPC)
    proc: ManagedProcess | None = None

    @property
    def remote_write_url(self) -> str:
        return f"http://{self.remote_write}/api/v1/receive"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


@dataclass
class ThanosStore:
    nodes: list[ReceiveNode]
    query: ManagedProcess
    query_url: str
    hashring: Path
    replication_factor: int
    env: dict[str, str] = field(default_factory=dict)
    procs: list[ManagedProcess] = field(default_factory=list)

    @property
    def remote_write_url(self) -> str:
        """Where Prometheus writes: node 0 (any node routes and replicates)."""
        return self.nodes[0].remote_write_url

    def restart(self, node: ReceiveNode) -> None:
        """Start a stopped node again on its own TSDB directory and ports."""
        assert node.proc is None, f"receive node {node.index} is running"
        node.proc = _start_receive(node, self.hashring, self.replication_factor, self.env)

    def stop(self) -> None:
        self.query.stop()
        for n in self.nodes:
            n.stop()

    def __enter__(self) -> ThanosStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start_receive(node: ReceiveNode, hashring: Path, replication_factor: int, env: dict[str, str]) -> ManagedProcess:
    binary = find_binary("thanos")
    node.workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "receive",
        f"--tsdb.path={node.workdir / 'tsdb'}",
        "--tsdb.retention=1d",
        f"--tsdb.max-exemplars={MAX_EXEMPLARS}",
        f"--grpc-address={node.grpc}",
        f"--http-address={node.http}",
        f"--remote-write.address={node.remote_write}",
        f"--receive.capnproto-address={node.capnproto}",
        f"--receive.hashrings-file={hashring}",
        f"--receive.local-endpoint={node.grpc}",
        f"--receive.replication-factor={replication_factor}",
        f'--label={REPLICA_LABEL}="{node.index}"',
        "--log.level=info",
    ]
    return _start_and_wait(f"thanos-receive-{node.index}", argv, env, node.workdir, f"http://{node.http}/-/ready")


def start_thanos(
    workdir: Path, nodes: int = 2, replication_factor: int = 2, env: dict[str, str] | None = None
) -> ThanosStore:
    """``nodes`` receive nodes in one hashring (``replication_factor``) and a query node over them;
    ``env`` is added to the receive nodes' environment (e.g. :func:`local_midnight_zone`)."""
    env = dict(env or {})
    workdir.mkdir(parents=True, exist_ok=True)
    receive = [
        ReceiveNode(
            i,
            workdir / f"receive-{i}",
            grpc=f"127.0.0.1:{free_port()}",
            http=f"127.0.0.1:{free_port()}",
            remote_write=f"127.0.0.1:{free_port()}",
            capnproto=f"127.0.0.1:{free_port()}",
        )
        for i in range(nodes)
    ]
    hashring = workdir / "hashring.json"
    hashring.write_text(json.dumps([{"hashring": "default", "endpoints": [n.grpc for n in receive]}], indent=2))
    started: list[ReceiveNode] = []
    try:
        for n in receive:
            n.proc = _start_receive(n, hashring, replication_factor, env)
            started.append(n)
        query_http = f"127.0.0.1:{free_port()}"
        endpoints = "endpoints:\n" + "".join(f"  - address: {n.grpc}\n" for n in receive)
        query = _start_and_wait(
            "thanos-query",
            [
                find_binary("thanos"),
                "query",
                f"--http-address={query_http}",
                f"--grpc-address=127.0.0.1:{free_port()}",
                f"--endpoint.sd-config={endpoints}",
                f"--query.replica-label={REPLICA_LABEL}",
                # Receive replicas hold the same samples (same timestamps): merge them 1:1. The default
                # "penalty" algorithm, made for independently scraping Prometheus pairs, skips samples
                # where it switches replicas around a gap (seen here: an older value at a step).
                "--deduplication.func=chain",
                # a node gone answers with what the others have, and a warning naming it
                "--query.partial-response",
                "--store.response-timeout=5s",
            ],
            {},
            workdir,
            f"http://{query_http}/-/ready",
        )
    except BaseException:
        for n in started:
            n.stop()
        raise
    return ThanosStore(receive, query, f"http://{query_http}", hashring, replication_factor, env)


def local_midnight_zone(path: Path, after: float = 5.0) -> dict[str, str]:
    """An environment whose clock zone puts local time ``after`` seconds past midnight now.

    Writes a TZif file (RFC 8536, version 1: no transitions, one fixed UTC offset, whole seconds)
    at ``path`` and returns ``{"TZ": str(path)}``: Go programs read an absolute ``TZ`` path as their
    local zone. Local midnight is a minute at which Thanos receive runs its tenant pruning (it runs
    when the local minute of the day is a multiple of twice the block duration, and 0 is one), so a
    node started now runs it at once; without this, only starts in a few minutes of the day do.
    """
    now = dt.datetime.now(dt.UTC)
    since_midnight = now.hour * 3600 + now.minute * 60 + now.second
    # the offset that maps now to 00:00:<after> local, within +-12 h
    offset = (round(after) - since_midnight + 43200) % 86400 - 43200
    designation = b"TRO\0"
    header = b"TZif" + b"\0" + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, len(designation))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + struct.pack(">lBB", offset, 0, 0) + designation)
    return {"TZ": str(path)}


def remote_write_config(url: str) -> str:
    """The remote_write section appended to a Prometheus config (compose/prometheus/prometheus-store.yml
    has the same settings; tests/compose checks that)."""
    return (
        "remote_write:\n"
        f"  - url: {url}\n"
        "    send_exemplars: true\n"
        "    queue_config:\n"
        "      batch_send_deadline: 5s\n"
        "      max_backoff: 5s\n"
    )
