"""A single process (no worker group) started twice: the second copy's warning names the first by its pid and
command (found by the socket that holds the port; a single process writes no file of tradeobs' own), and a crashed
group leader's record is never believed. The worker-group case is ``test_multiworker_shared.py``'s started-twice
test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tradeobs_agent._internal.workers.detect import process_start

from .procs import _clean_env, free_port

SERVICE = "twice-single"
RUN = """
import sys, time, tradeobs_agent
tradeobs_agent.init(otlp=False, live=False, logs=tradeobs_agent.LogOptions(dir=""))
print("ready", flush=True)
time.sleep(float(sys.argv[1]))
"""


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **_clean_env(),
        "TRADEOBS_SERVICE_NAME": SERVICE,
        "TRADEOBS_PROMETHEUS_PORT": str(port),
        "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path),
    }


@contextmanager
def _bot(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``python bot.py`` serving its own endpoint on ``port``, running until the block ends."""
    argv = [sys.executable, "-c", RUN, "60"]
    with subprocess.Popen(argv, env=_env(tmp_path, port), stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            yield proc
        finally:
            proc.kill()


def _second(tmp_path: Path, port: int) -> str:
    """The second copy's ``tradeobs:`` line about the port."""
    argv = [sys.executable, "-c", RUN, "0"]
    done = subprocess.run(argv, env=_env(tmp_path, port), capture_output=True, text=True, timeout=60, check=True)
    (line,) = [x for x in done.stderr.splitlines() if "cannot serve the Prometheus endpoint" in x]
    return line


@pytest.mark.integration
def test_a_single_process_started_twice_names_the_first_by_its_pid(tmp_path: Path) -> None:
    port = free_port()
    with _bot(tmp_path, port) as first:
        line = _second(tmp_path, port)
    assert f"pid {first.pid} ({sys.executable} -c " in line, line
    assert "holds it (another program, or a single process of this service started before)" in line, line
    assert "Stop the duplicate" in line, line
    assert not list(tmp_path.glob("tradeobs-*/*")), "a single process writes no file of tradeobs' own (issue 11)"


@pytest.mark.integration
def test_a_crashed_runs_record_is_not_believed(tmp_path: Path) -> None:
    """A worker group's leader was killed (its record stays: here written as it writes it, for a process that ran)
    and another program takes the port: that program is named, by its pid, and the crashed run's record is said not
    to be believed."""
    port = free_port()
    with _bot(tmp_path, port) as first:
        start = process_start(first.pid)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    root = tmp_path / f"tradeobs-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    record = {"pid": first.pid, "start": start, "service": SERVICE, "host": "127.0.0.1", "port": port}
    record |= {"group": "g-test", "started_by": os.getpid(), "kind": "gunicorn"}
    (root / f"p-{port}.json").write_text(json.dumps(record))
    other = socket.create_server(("127.0.0.1", port))
    try:
        line = _second(tmp_path, port)
    finally:
        other.close()
    assert f"pid {os.getpid()} ({sys.executable}" in line and "holds it (another program" in line, line
    assert f"the record of pid {first.pid}, which no longer serves it, was not believed" in line, line
    assert "runs twice" not in line, line
