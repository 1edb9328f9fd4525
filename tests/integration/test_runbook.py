"""A runbook that runs: every command in docs/runbook.md, docs/alerts.md and docs/collector.md.

The docs follow one convention (docs/runbook.md, "How to read the commands"):

- every fenced block names its language; shell blocks are ``sh``;
- ``sh`` blocks run natively: each is run here with bash from the repository root, after the file's
  ``sh setup`` block, against a real native stack (our collector with the shipped config, Jaeger,
  Prometheus with compose's scrape config and every rule file, Alertmanager rendered from compose's
  template, the demo service), and must exit 0;
- ``sh compose-only`` blocks are not run; the next block must be an ``sh`` block, their native equivalent;
- a command quoted inline in the text (`tradeobs collector reload`, `promtool ...`) must be one of the
  commands of the blocks, so no command escapes the run.

The native start command of the collector (runbook, OtelCollectorDown) is run after stopping the
collector, and must bring it back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .agent_proc import agent_env
from .alerting import RULES_DIR, Webhook, compose_like_prometheus_config, render_alertmanager
from .procs import (
    READY_TIMEOUT,
    REPO,
    CollectorProc,
    ManagedProcess,
    _clean_env,
    cache_dir,
    find_binary,
    free_port,
    http_ok,
    jaeger_trace,
    prometheus_exemplars,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)

pytestmark = pytest.mark.integration

DOCS = ("docs/runbook.md", "docs/alerts.md", "docs/collector.md")
SHELLS = {"sh", "bash", "shell", "console"}
# Inline code that starts like this is a command, and must be one of the blocks' commands.
COMMAND_PREFIXES = ("tradeobs ", "otelcol-tradeobs ", "jaeger ", "promtool ", "amtool ", "docker ", "curl ", "python ")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    flags: tuple[str, ...]
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in SHELLS and not self.flags


def blocks(doc: str) -> list[Block]:
    out = []
    lines = (REPO / doc).read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        info = m.group(1).split()
        start = i
        i += 1
        body = []
        while not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        out.append(Block(doc, start + 1, info[0] if info else "", tuple(info[1:]), "\n".join(body) + "\n"))
    return out


ALL = [b for d in DOCS for b in blocks(d)]
RUNNABLE = [b for b in ALL if b.runs]


def test_the_docs_have_commands_and_every_block_names_its_language() -> None:
    assert {b.doc for b in RUNNABLE} == set(DOCS)
    unnamed = [b.id for b in ALL if not b.lang]
    assert unnamed == [], f"fenced blocks without a language (a command must be sh): {unnamed}"
    flags = {f for b in ALL if b.lang in SHELLS for f in b.flags}
    assert flags <= {"setup", "compose-only"}, flags


def test_compose_only_commands_have_their_native_equivalent_next() -> None:
    for doc in DOCS:
        bs = blocks(doc)
        for i, b in enumerate(bs):
            if "compose-only" in b.flags:
                nxt = bs[i + 1] if i + 1 < len(bs) else None
                assert nxt is not None and nxt.runs, f"{b.id}: compose-only block without a native sh block after it"
                assert "docker" not in nxt.text, f"{nxt.id}: the native equivalent uses docker"


def test_inline_commands_are_commands_of_the_blocks() -> None:
    commands = "\n".join(b.text for b in ALL if b.lang in SHELLS)
    for doc in DOCS:
        text = (REPO / doc).read_text()
        prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
        for span in re.findall(r"`([^`\n]+)`", prose):
            if span.startswith(COMMAND_PREFIXES):
                assert span in commands, f"{doc}: inline command `{span}` is in no sh block"


def test_runbook_has_doctor_and_the_collector_queue_in_its_disk_section() -> None:
    runbook = (REPO / "docs" / "runbook.md").read_text()
    assert any("tradeobs doctor" in b.text for b in blocks("docs/runbook.md") if b.runs)
    disk = runbook[runbook.index("### HostDiskSpaceLow") : runbook.index("### HostMemoryLow")]
    for needle in ("collector's disk queue", "TRADEOBS_COLLECTOR_STORAGE_DIR", "compact", "does not shrink"):
        assert needle in disk, needle


# --------------------------------------------------------------------------- a native stack to run them on


@dataclass
class NativeStack:
    env: dict[str, str]
    collector: CollectorProc
    pid_file: Path
    procs: tuple[ManagedProcess, ...]


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    tmp = tmp_path_factory.mktemp("runbook")
    webhook = Webhook()
    with (
        start_jaeger(tmp / "jaeger") as jaeger,
        start_collector(tmp / "collector", jaeger.otlp_grpc_endpoint) as collector,
    ):
        pid_file = tmp / "otelcol.pid"
        pid_file.write_text(f"{collector.proc.pid}\n")
        am_addr = f"127.0.0.1:{free_port()}"
        am_env = {"ALERT_WEBHOOK_URL": webhook.url + "/alerts", "ALERT_DEADMANSSWITCH_URL": webhook.url + "/deadman"}
        am_cfg = render_alertmanager(tmp / "am-render", find_binary("busybox"), **am_env)
        am = ManagedProcess(
            "alertmanager",
            [
                find_binary("prometheus-alertmanager"),
                f"--config.file={am_cfg}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address={am_addr}",
                "--cluster.listen-address=",
            ],
            {},
            tmp,
        )
        prom_port = free_port()
        targets = {
            "otelcol": collector.metrics_target,
            "otelcol-exporter": collector.prometheus_exporter_target,
            "prometheus": f"127.0.0.1:{prom_port}",
            "alertmanager": am_addr,
        }
        rules = sorted(RULES_DIR.glob("*.yml"))
        demo_port, demo_prom_port = free_port(), free_port()
        demo_env = {
            **agent_env(collector, tmp / "demo", "runbook-demo"),
            "TRADEOBS_PROMETHEUS_PORT": str(demo_prom_port),
        }
        demo = ManagedProcess(
            "demo",
            [sys.executable, "-m", "tradeobs_agent.cli", "demo", "--port", str(demo_port), "--orders-hz", "1"],
            demo_env,
            tmp,
        )
        try:
            with start_prometheus(
                tmp / "prometheus",
                compose_like_prometheus_config(targets, am_addr, rules, 1.0),
                features=("expand-external-labels",),
                env={"TRADEOBS_RUNBOOK_URL": "https://runbooks.example.test/runbook.md"},
                port=prom_port,
                flags=("--web.enable-admin-api",),
            ) as prom:
                procs = (collector.proc, jaeger.proc, am, prom.proc, demo)
                wait_for(lambda: http_ok(f"http://{am_addr}/-/ready"), "Alertmanager", READY_TIMEOUT, procs=procs)
                wait_for(
                    lambda: http_ok(f"http://127.0.0.1:{demo_port}/readyz"), "the demo", READY_TIMEOUT, procs=procs
                )
                # the walk from a dot to its trace (One order, ...) starts from a filled order's exemplar and trace
                wait_for(
                    lambda: [
                        e
                        for e in prometheus_exemplars(prom.url, "trading_order_submit_to_fill_latency_seconds_bucket")
                        if jaeger_trace(jaeger.query_url, e["labels"]["trace_id"])
                    ],
                    "a filled order's exemplar and trace",
                    procs=procs,
                )
                env = {
                    **_clean_env(),
                    **collector.env,
                    "TRADEOBS_CACHE": str(cache_dir()),
                    "PROM": prom.url,
                    "AM": f"http://{am_addr}",
                    "SERVICE_URL": f"http://127.0.0.1:{demo_port}",
                    "JAEGER": jaeger.query_url,
                    "TRADEOBS_LOG_DIR": demo_env["TRADEOBS_LOG_DIR"],
                    "OTELCOL_LOG": str(collector.proc.log_path),
                    "TRADEOBS_COLLECTOR_PID_FILE": str(pid_file),
                    "PROM_DATA": str(tmp / "prometheus" / "data"),
                    "BACKUP_DIR": str(tmp / "backups"),
                    "BACKUP_TEXTFILE_DIR": str(tmp / "textfile"),
                    # the service's settings, for `tradeobs doctor` / `tradeobs config check`
                    "OTEL_EXPORTER_OTLP_ENDPOINT": demo_env["OTEL_EXPORTER_OTLP_ENDPOINT"],
                    "TRADEOBS_PROMETHEUS_PORT": str(demo_prom_port),
                    "TRADEOBS_SERVICE_NAME": "runbook-demo",
                }
                stack = NativeStack(env, collector, pid_file, procs)
                try:
                    yield stack
                finally:
                    stack.collector.stop()  # the one the start command's test started again, if it ran
        finally:
            demo.stop()
            am.stop()
            webhook.close()
            _stop_pid_file(pid_file, collector)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _stop_pid_file(pid_file: Path, collector: CollectorProc) -> None:
    """Stop a collector a runbook block started (its pid is in the pid file; it is not our child)."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    if pid == collector.proc.pid or _gone(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while not _gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def run_block(block: Block, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    setup = "".join(b.text for b in blocks(block.doc) if "setup" in b.flags)
    script = "set -eu\n" + setup + block.text
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_native_command_runs(native: NativeStack, block: Block) -> None:
    for p in native.procs:
        p.check_alive()
    res = run_block(block, native.env)
    assert res.returncode == 0, (
        f"{block.id} exited {res.returncode}:\n{block.text}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}"
    )


def _collector_back(native: NativeStack) -> None:
    """The stack's own collector started again, as before (its ports, queue and log file), in its pid file."""
    old = native.collector
    new = start_collector(old.proc.workdir, old.env["TRADEOBS_TRACES_OTLP_ENDPOINT"], env=old.env)
    native.collector = new
    native.procs = tuple(new.proc if p is old.proc else p for p in native.procs)
    native.pid_file.write_text(f"{new.proc.pid}\n")


def test_the_start_command_brings_a_stopped_collector_back(native: NativeStack) -> None:
    """The block starts a collector in place of the stack's; the stack's own is started again after it. Before, the
    stack was left with no collector, so every test of the file that came after it on the same stack failed (each
    block's test checks that the stack's processes run): they passed only in the file's order, after it (run first,
    e.g. under pytest-xdist's worksteal or with -k, docs/runbook.md:750 and :796 failed)."""
    (block,) = [b for b in RUNNABLE if b.doc == "docs/runbook.md" and "otelcol-tradeobs --config" in b.text]
    native.collector.stop()  # the collector is down (OtelCollectorDown)
    try:
        res = run_block(block, native.env)
        assert res.returncode == 0, res.stdout + res.stderr
        pid = int(native.pid_file.read_text())
        assert pid != native.collector.proc.pid and Path(f"/proc/{pid}").exists()
        assert http_ok(native.collector.health_url)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert Path(cmdline[0].decode()).name == "otelcol-tradeobs"
        assert b"collector/otel-collector.yaml" in cmdline
    finally:
        _stop_pid_file(native.pid_file, native.collector)
        _collector_back(native)  # the stack whole again, for whichever test runs next on it
    for p in native.procs:
        p.check_alive()
    assert http_ok(native.collector.health_url)


def test_the_backup_command_records_its_run_where_backuptooold_reads_it(native: NativeStack, tmp_path: Path) -> None:
    """Run by hand as the runbook says, a backup must reach the metric BackupTooOld reads (node-exporter's
    textfile directory): the block ran backup.sh without BACKUP_TEXTFILE_DIR, so the backup was made, no
    metric was written and the alert it was run for kept firing."""
    (block,) = [b for b in RUNNABLE if b.doc == "docs/runbook.md" and "compose/backup/backup.sh" in b.text]
    env = {k: v for k, v in native.env.items() if k != "BACKUP_TEXTFILE_DIR"}
    res = run_block(block, env)
    assert res.returncode != 0 and "BACKUP_TEXTFILE_DIR" in res.stderr, res.stdout + res.stderr
    textfile = tmp_path / "textfile"
    res = run_block(block, {**env, "BACKUP_TEXTFILE_DIR": str(textfile)})
    assert res.returncode == 0, res.stdout + res.stderr
    metrics = (textfile / "tradeobs_backup.prom").read_text()
    assert re.search(r"^tradeobs_backup_last_success_timestamp_seconds \d+$", metrics, re.M), metrics
    assert re.search(r"^tradeobs_backup_last_run_success 1$", metrics, re.M), metrics


def test_the_walk_from_a_dot_prints_the_slowest_fills_trace_and_log_lines(native: NativeStack) -> None:
    """docs/runbook.md, "One order, from a dot to its trace and logs": the slowest fill's exemplar, its trace's
    steps (order, risk_check, submit, ack, fill with their tags) and the service's log lines of that trace."""
    (block,) = [b for b in RUNNABLE if b.doc == "docs/runbook.md" and "query_exemplars" in b.text]
    res = run_block(block, native.env)
    assert res.returncode == 0, res.stdout + res.stderr
    slowest = re.findall(r"^\s*([\d.]+) s  (\S+)  venue=(\S+)  trace_id=([0-9a-f]{32})$", res.stdout, re.M)
    assert slowest and slowest[0][1] == "runbook-demo", res.stdout
    assert [float(r[0]) for r in slowest] == sorted((float(r[0]) for r in slowest), reverse=True), res.stdout
    trace_id = slowest[0][3]
    steps = re.findall(r"^(\w+)\s+([\d.]+) ms  (\{.*\})$", res.stdout, re.M)
    assert {"order", "risk_check", "submit", "ack", "fill"} <= {s[0] for s in steps}, res.stdout
    (fill,) = [s for s in steps if s[0] == "fill"][:1]
    assert "fill.slippage_bps" in fill[2] and "fill.price" in fill[2], fill
    logs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert logs and {r["trace_id"] for r in logs} == {trace_id}, res.stdout


# ``date`` on a clock fixed at $FAKE_NOW (epoch seconds): ``date +%s``, and ``-d 'today HH:MM'``/``'yesterday HH:MM'``
# read on that instant's date (in the caller's TZ); anything else is the real ``date``'s
_FIXED_DATE = r"""#!/bin/bash
args=()
for a in "$@"; do
  case "$a" in
    "today "*) a="$(/usr/bin/date -d "@$FAKE_NOW" +%F) ${a#today }" ;;
    "yesterday "*) a="$(/usr/bin/date -d "$(/usr/bin/date -d "@$FAKE_NOW" +%F) -1 day" +%F) ${a#yesterday }" ;;
  esac
  args+=("$a")
done
if [ "$*" = "+%s" ]; then echo "$FAKE_NOW"; else exec /usr/bin/date "${args[@]}"; fi
"""


@pytest.mark.parametrize("wall", ["17:00:00", "16:59:59", "17:00:01"])
def test_the_days_fills_query_runs_at_the_days_start(native: NativeStack, tmp_path: Path, wall: str) -> None:
    """docs/runbook.md's day's filled orders, run at 17:00:00 New York: its range was ``0s`` ("parse error: duration
    must be greater than 0"), so the block failed for that second of each day (a run of this file at 22:00:00 UTC)."""
    (block,) = [b for b in RUNNABLE if b.doc == "docs/runbook.md" and "date -d 'today 17:00'" in b.text]
    h, m, s = map(int, wall.split(":"))
    now = dt.datetime(2026, 12, 7, h, m, s, tzinfo=ZoneInfo("America/New_York")).timestamp()
    (tmp_path / "date").write_text(_FIXED_DATE)
    (tmp_path / "date").chmod(0o755)
    env = {**native.env, "PATH": f"{tmp_path}:{native.env['PATH']}", "FAKE_NOW": str(int(now))}
    res = run_block(block, env)
    assert res.returncode == 0, f"{block.id} at {wall} New York exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
