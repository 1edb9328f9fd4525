"""Run one documentation page: its blocks in order, in a temporary directory (see tests/docs/__init__.py)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests._util import free_port, installed_metadata, wait_for

from .pages import CHECKED, NOT_RUN, REPO, RUN, Block, Page, commands

# How long a command may take before the test fails: bounds a broken run, measures nothing.
LIMIT = 240.0
# pytest options followed by their value (-n 4, -p plugin ...): the value is no path
_VALUED = frozenset({"-n", "-p", "-k", "-m", "-W", "-o", "-c", "--numprocesses"})
_SHELL_WORDS = {"tradeobs", "python3", "python", "curl", "grep", "tail", "head", "ls", "cat", "cp", "chmod", "mkdir"}
_SERVER_WORDS = {"uvicorn", "gunicorn"}
# Servers that run alongside the others, each in a terminal of its own (NATS, the fleet gateway): a later server
# does not stop them; the end of their section does.
_ALONGSIDE = {"nats-server", "tradeobs live gateway", "otelcol-tradeobs"}
# The collector's listeners (collector/otel-collector.yaml's defaults) -> the variables that move them.
_COLLECTOR_PORTS = {
    4317: "TRADEOBS_OTLP_GRPC_ENDPOINT",
    4318: "TRADEOBS_OTLP_HTTP_ENDPOINT",
    8889: "TRADEOBS_PROMETHEUS_EXPORTER_ENDPOINT",
    8888: "TRADEOBS_COLLECTOR_METRICS_PORT",
    13133: "TRADEOBS_HEALTH_CHECK_ENDPOINT",
    1777: "TRADEOBS_PPROF_ENDPOINT",
    55679: "TRADEOBS_ZPAGES_ENDPOINT",
}
# What the collector logs when it retries a store that is not there: a page's collector must run quietly.
_COLLECTOR_NOISE = ("Exporting failed", "connection refused", "dial tcp")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")


# Options of Compose v2 that the v1 binary here (docker-compose 1.29) lacks, by subcommand: checked for the shape of
# their value (a capability name), then left out of what v1 validates.
_V2_ONLY = {"run": {"--cap-add", "--cap-drop"}}


def _without_v2_only(block: Block, sub: str, args: list[str]) -> list[str]:
    out: list[str] = []
    it = iter(args)
    for a in it:
        if a in _V2_ONLY.get(sub, ()):
            value = next(it, "")
            assert re.fullmatch(r"[A-Z_]+", value), f"{block.where}: compose {sub} {a} {value!r}: not a capability"
            continue
        out.append(a)
    return out


def clean_env() -> dict[str, str]:
    """The developer's environment without any tradeobs or OpenTelemetry setting (PYTHONPATH is kept)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}


@dataclass
class Server:
    what: str
    proc: subprocess.Popen[str]
    log: Path
    port: int
    kind: str = ""  # the rule that started it: "tradeobs demo", "uvicorn", "nats-server", ...

    def stop(self) -> None:
        """Ctrl-C, as in its terminal; it must exit 0 without a traceback."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(LIMIT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.what}: still running {LIMIT:.0f}s after Ctrl-C\n{self.tail()}") from None
        out = self.tail()
        assert self.proc.returncode == 0, f"{self.what}: exit {self.proc.returncode} after Ctrl-C\n{out}"
        assert "Traceback" not in out, f"{self.what}: traceback on Ctrl-C\n{out}"
        if self.kind == "otelcol-tradeobs":
            lines = self.log.read_text(errors="replace").splitlines()
            noise = [ln for ln in lines if any(n in ln for n in _COLLECTOR_NOISE)]
            shown = "\n".join(noise[:5])
            assert not noise, f"{self.what}: the collector logged failed exports ({len(noise)} lines)\n{shown}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class PageRun:
    page: Page
    workdir: Path
    substitutions: dict[str, str] = field(default_factory=dict)
    service_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    nats_http_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    collector_ports: dict[int, int] = field(default_factory=lambda: {p: free_port() for p in _COLLECTOR_PORTS})
    servers: list[Server] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # `# file: NAME` blocks waiting to be used
    shell_vars: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    last_output: str = ""
    compose_project: str = ""
    compose_doc: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ the page

    def prepare_compose(self) -> None:
        """The page's compose commands work on a copy of this repository's compose/ and collector/."""
        for d in ("compose", "collector"):
            if not (self.workdir / d).exists():
                shutil.copytree(REPO / d, self.workdir / d, ignore=shutil.ignore_patterns(".env", "backups"))

    def run(self) -> None:
        shell = [b.text for b in self.page.blocks if b.lang in ("bash", "sh")]
        if any("docker compose" in t or "otelcol-tradeobs" in t for t in shell):
            self.prepare_compose()
        section = 0
        try:
            for block in self.page.blocks:
                if block.section != section:
                    self.stop_servers()
                    section = block.section
                self.block(block)
            self.stop_servers()
        finally:
            for s in self.servers:
                s.kill()
        assert not self.files, f"{self.page.path}: saved but never used by a later command: {sorted(self.files)}"

    def block(self, block: Block) -> None:
        if block.output:
            return self.output(block)
        if block.lang in NOT_RUN:
            return
        assert block.lang in RUN | CHECKED, (
            f"{block.where}: a fence needs a language: bash/sh or python (run), toml (checked), "
            f"text or mermaid (not run); got {block.lang!r}"
        )
        if block.lang == "python":
            self.python(block)
        elif block.lang == "toml":
            self.toml(block)
        else:
            for command in commands(block):
                for part in _split_and(command):
                    self.command(block, part)

    def env(self, **extra: str) -> dict[str, str]:
        return {**clean_env(), "TRADEOBS_PROMETHEUS_PORT": str(self.prometheus_port), **extra}

    def adapt(self, text: str) -> str:
        """The page's ports -> free ports, and the listed substitutions."""
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        ports = {
            8000: self.service_port,
            9464: self.prometheus_port,
            4222: self.nats_port,
            8222: self.nats_http_port,
            8765: self.gateway_port,
            **self.collector_ports,
        }
        for old_port, new_port in ports.items():
            text = re.sub(rf"\b{old_port}\b", str(new_port), text)
        return text

    def output(self, block: Block) -> None:
        """A sample output: its lines (``...`` skips any) appear in the previous command's output, in order."""
        assert block.lang == "text", f"{block.where}: an output sample is a text block"
        actual = [line.rstrip() for line in self.last_output.splitlines()]
        pos = 0
        for want in self.adapt(block.text).splitlines():
            if want.strip() in ("", "..."):
                continue
            while pos < len(actual) and actual[pos] != want.rstrip():
                pos += 1
            assert pos < len(actual), f"{block.where}: {want!r} is not in the output\n{self.last_output[-3000:]}"
            pos += 1
        self.ran.append(f"{block.where}: output matches")

    # ------------------------------------------------------------------ python

    def python(self, block: Block) -> None:
        code = self.adapt(block.text)
        first = code.splitlines()[0] if code.strip() else ""
        if m := re.match(r"#\s*file:\s*(\S+)\s*$", first):
            (self.workdir / m.group(1)).write_text(code)
            self.files[m.group(1)] = block.where
            return
        tree = ast.parse(code, filename=block.where)
        if block.fragment:
            imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
            self.run_checked(block, [sys.executable, "-c", ast.unparse(ast.Module(imports, []))], "fragment imports")
            return
        tests = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
        name = f"test_snippet_{block.line}.py" if tests else f"snippet_{block.line}.py"
        (self.workdir / name).write_text(code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name] if tests else [
            sys.executable, name,
        ]  # fmt: skip
        out = self.run_checked(block, argv, "snippet", TRADEOBS_PROMETHEUS_PORT="0")
        if tests:
            assert f"{len(tests)} passed" in out, f"{block.where}: expected {len(tests)} passing test(s)\n{out}"
        assert "tradeobs config:" not in out, f"{block.where}: the snippet has a configuration problem\n{out}"

    def run_checked(self, block: Block, argv: list[str], what: str, **env: str) -> str:
        res = subprocess.run(argv, cwd=self.workdir, env=self.env(**env), capture_output=True, text=True, timeout=LIMIT)
        out = res.stdout + res.stderr
        self.last_output = out
        self.ran.append(f"{block.where}: {what}")
        assert res.returncode == 0, f"{block.where}: {what} exited {res.returncode}\n{out[-4000:]}"
        assert "Traceback" not in out or argv[1:3] == ["-m", "pytest"], f"{block.where}: traceback\n{out[-4000:]}"
        return out

    # ------------------------------------------------------------------ toml

    def toml(self, block: Block) -> None:
        cfg = self.workdir / f"config_{block.line}" / "tradeobs.toml"
        cfg.parent.mkdir()
        cfg.write_text(self.adapt(block.text))
        out = self.run_checked(block, ["tradeobs", "config", "check", "--file", str(cfg)], "tradeobs config check")
        assert "no problems" in out, f"{block.where}: the config file has problems\n{out}"

    # ------------------------------------------------------------------ commands

    def command(self, block: Block, command: str) -> None:
        words = shlex.split(command)
        if len(words) == 1 and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # dc="docker compose -f ..."
            name, _, value = words[0].partition("=")
            self.shell_vars[name] = value
            return
        for name, value in self.shell_vars.items():
            command = command.replace(f"${name}", value)
        words = shlex.split(command)
        head = [w for w in words if not _ASSIGN.match(w)]  # VAR=x tradeobs ... -> tradeobs
        first = head[0] if head else ""
        for name in list(self.files):
            if name in words:
                del self.files[name]
        if words[:4] == ["python3", "-m", "pip", "install"] or words[:2] == ["pip", "install"]:
            return self.pip(block, words[words.index("install") + 1 :])
        if first == "./scripts/test.sh":
            return self.test_script(block)
        if head[:3] == ["python", "-m", "pytest"] or head[:3] == ["python3", "-m", "pytest"]:
            return self.suite_part(block, head[3:])
        if first in ("python", "python3") and len(head) > 1 and head[1].startswith("scripts/"):
            return self.repo_tool(block, head[1])
        if words[:2] == ["docker", "compose"]:
            return self.docker_compose(block, words[2:])
        if head[:2] == ["tradeobs", "demo"] and "--duration" not in head:
            return self.server(block, command, "tradeobs demo")
        if first == "otelcol-tradeobs" and "--config" in head:
            return self.server(block, command, first)
        if first in _SERVER_WORDS or first == "nats-server":
            return self.server(block, command, first)
        if head[:3] == ["tradeobs", "live", "gateway"] and "--help" not in head:
            return self.server(block, command, "tradeobs live gateway")
        if head[:2] == ["tradeobs", "doctor"]:
            return self.doctor(block, command)
        assert first in _SHELL_WORDS, (
            f"{block.where}: no rule for {command!r}: teach tests/docs/runner.py how to run it"
        )
        self.shell(block, command)

    def shell(self, block: Block, command: str) -> str:
        return self.run_checked(block, ["bash", "-c", self.adapt(command)], command)

    def pip(self, block: Block, args: list[str]) -> None:
        """Not run (shared environment): what it installs must be installed."""
        names = [a for a in args if not a.startswith("-")]
        assert names, f"{block.where}: pip install of nothing"
        for name in names:
            m = re.fullmatch(r"([^\[<>=]+)(?:\[([^\]]+)\])?.*", name)
            assert m, f"{block.where}: cannot read the requirement {name!r}"
            dist = "tradeobs" if m.group(1) == "." else m.group(1)
            extras = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
            _installed(block, dist)
            for req in importlib.metadata.requires(dist) or []:  # and what the named extras pull in
                marker = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
                if marker and marker.group(1) in extras:
                    _installed(block, re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0])
            if m.group(1) == ".":
                assert shutil.which("tradeobs"), f"{block.where}: the tradeobs command is not on PATH"
        self.ran.append(f"{block.where}: pip install {' '.join(args)} (checked installed)")

    def test_script(self, block: Block) -> None:
        script = REPO / "scripts" / "test.sh"
        assert script.is_file() and os.access(script, os.X_OK), f"{block.where}: scripts/test.sh is not executable"
        res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"{block.where}: scripts/test.sh does not parse: {res.stderr}"
        self.ran.append(f"{block.where}: ./scripts/test.sh (checked, not run)")

    def suite_part(self, block: Block, args: list[str]) -> None:
        """A part of this test suite (the suite runs it anyway; some rewrite snapshots): its paths must exist. Paths
        that are all files the page wrote (a user's own tests, ``# file: test_x.py``) are that user's suite: run in
        the page's directory, it must pass, with this checkout's metadata as installed (its pytest plugin)."""
        paths = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] not in _VALUED)]
        assert paths, f"{block.where}: pytest of what?"
        if all((self.workdir / p.split("::")[0]).is_file() for p in paths):
            tests = " ".join((self.workdir / p.split("::")[0]).read_text() for p in paths)
            for name in list(self.files):  # a module of the page's that the tests import is used by this command
                if name.endswith(".py") and re.search(rf"^\s*(import|from) {re.escape(name[:-3])}\b", tests, re.M):
                    del self.files[name]
            # as installed: pytest finds tradeobs' plugin by its entry point (this checkout's pyproject)
            site = installed_metadata(self.workdir.parent / f"{self.workdir.name}-site")
            pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
            argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
            out = self.run_checked(block, argv, "pytest", PYTHONPATH=pythonpath)
            assert " passed" in out and " failed" not in out, f"{block.where}: the page's tests did not pass\n{out}"
            return
        for path in paths:
            assert (REPO / path.split("::")[0]).exists(), f"{block.where}: {path} does not exist"
        self.ran.append(f"{block.where}: python -m pytest {' '.join(args)} (checked, not run)")

    def repo_tool(self, block: Block, script: str) -> None:
        """A maintainer tool of this repository (builds venvs, downloads releases): it must answer --help."""
        path = REPO / script
        assert path.is_file(), f"{block.where}: {script} does not exist"
        res = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and "usage:" in res.stdout, f"{block.where}: {script} --help\n{res.stderr}"
        self.ran.append(f"{block.where}: {script} --help (a maintainer tool: not run)")

    # ------------------------------------------------------------------ servers

    def server(self, block: Block, command: str, what: str) -> None:
        if what not in _ALONGSIDE:
            self.stop_servers(alongside=False)  # one at a time, as in one terminal
        port = {
            "nats-server": self.nats_port,
            "tradeobs live gateway": self.gateway_port,
            "otelcol-tradeobs": self.collector_ports[13133],
        }.get(what, self.service_port)
        words = shlex.split(command)
        env = self.env()
        if what == "otelcol-tradeobs":  # its listeners on the page's free ports (the config's defaults otherwise)
            for default, name in _COLLECTOR_PORTS.items():
                moved = self.collector_ports[default]
                env[name] = str(moved) if name.endswith("_PORT") else f"127.0.0.1:{moved}"
        if what in ("tradeobs demo", "tradeobs live gateway") and "--port" not in words:
            command += f" --port {port}"
        elif what == "nats-server":
            assert "-p" in words or "--port" in words, f"{block.where}: nats-server without -p: its port is 4222"
        elif what == "uvicorn":
            env["UVICORN_PORT"] = str(port)
        elif what == "gunicorn":
            env["GUNICORN_CMD_ARGS"] = f"--bind 127.0.0.1:{port}"
        # The page's Prometheus port (env()): with several workers, the group's leader serves it for all of them.
        env["TRADEOBS_MULTIPROCESS_DIR"] = str(self.workdir)  # the workers' shared files, this page's only
        log = self.workdir / f"server_{block.line}_{len(self.servers)}.log"
        # `VAR=x cmd` -> `VAR=x exec cmd`: the assignments stay the command's environment
        m = re.fullmatch(r"((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(.*)", self.adapt(command), re.S)
        assert m is not None
        assigns, rest = m.groups()
        with log.open("w") as fh:
            proc = subprocess.Popen(
                ["bash", "-c", f"{assigns}exec {rest}"],
                cwd=self.workdir,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        server = Server(f"{block.where}: {command}", proc, log, port, what)
        self.servers.append(server)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, f"{server.what}: exited {proc.returncode}\n{server.tail()}"
            if what == "nats-server":
                return _tcp_ok(port)
            if what in ("tradeobs live gateway", "otelcol-tradeobs"):
                return _http_ok(base + "/")  # the collector's health_check: 200 once its pipelines run
            if not _http_ok(base + "/readyz"):
                return False
            if what != "tradeobs demo":
                return True
            # The page's next commands look at fills and logs: wait until there are some.
            metrics = _http_text(f"http://127.0.0.1:{self.prometheus_port}/metrics")
            if not ("trading_orders_filled_total{" in metrics and (self.workdir / "logs" / "execution.jsonl").exists()):
                return False
            # Sending to the page's collector: the page then looks at what arrived there, so wait until it has.
            # Sending to the page's collector: the page then looks at what arrived there, so wait until it has
            # (the metrics on its Prometheus page, the spans and log records in the files it writes them to).
            collectors = [s for s in self.servers if s.kind == "otelcol-tradeobs"]
            if collectors and "TRADEOBS_OTLP_ENDPOINT" in command:
                page = _http_text(f"http://127.0.0.1:{self.collector_ports[8889]}/metrics")
                out = self.workdir / ".tradeobs" / "collector"
                files = [out / f"{n}.jsonl" for n in ("traces", "logs") if f"file/{n}" in collectors[-1].what]
                return "trading_orders_filled_total{" in page and all(f.exists() and f.stat().st_size for f in files)
            return True

        wait_for(ready, f"{server.what} to serve", limit=LIMIT, interval=0.25)
        self.last_output = log.read_text(errors="replace")
        self.ran.append(f"{block.where}: {command} (server)")

    def stop_servers(self, alongside: bool = True) -> None:
        """The servers started last first; ``alongside=False`` leaves NATS and gateways running."""
        for server in reversed(list(self.servers)):
            if alongside or server.kind not in _ALONGSIDE:
                self.servers.remove(server)
                server.stop()

    def doctor(self, block: Block, command: str) -> None:
        """Run with everything reachable: a real collector and a demo service, on free ports."""
        from tests._util import dead_endpoint
        from tests.integration.procs import start_collector

        work = self.workdir / f"doctor_{block.line}"
        work.mkdir()
        with start_collector(work / "collector", traces_endpoint=dead_endpoint().removeprefix("http://")) as col:
            endpoint = "http://" + col.otlp_grpc_endpoint
            port, prom = free_port(), free_port()
            env = self.env(TRADEOBS_OTLP_ENDPOINT=endpoint, TRADEOBS_PROMETHEUS_PORT=str(prom))
            log = work / "demo.log"
            with log.open("w") as fh:
                demo = subprocess.Popen(
                    ["tradeobs", "demo", "--port", str(port)],
                    cwd=work,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
            server = Server("demo for tradeobs doctor", demo, log, port)
            try:
                wait_for(lambda: _http_ok(f"http://127.0.0.1:{port}/readyz"), "the demo", limit=LIMIT)
                if "--service-url" not in command:
                    command += f" --service-url http://127.0.0.1:{port}"
                res = subprocess.run(
                    ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=LIMIT
                )
                assert res.returncode == 0, (
                    f"{block.where}: {command} exited {res.returncode}\n{res.stdout}{res.stderr}"
                )
                assert "FAIL" not in res.stdout, res.stdout
                server.stop()
            finally:
                server.kill()
        self.ran.append(f"{block.where}: {command} (collector and demo up)")

    # ------------------------------------------------------------------ docker compose (no engine here)

    def docker_compose(self, block: Block, args: list[str]) -> None:
        binary = shutil.which("docker-compose")
        assert binary, (
            "docker-compose is not installed: run `apt-get install -y docker-compose` (scripts/install.d/20-apt.sh)"
        )
        files: list[Path] = []
        while args[:1] == ["-f"]:
            files.append(self.compose_copy(args[1]))
            args = args[2:]
        assert files, f"{block.where}: docker compose without -f FILE"
        sub, rest = args[0], args[1:]
        rest = _without_v2_only(block, sub, rest)
        env = {**clean_env(), "DOCKER_HOST": f"unix://{self.workdir}/no-docker-engine.sock"}
        # What compose/.env holds once up.sh made it (compose refuses to start without an admin password).
        env["GRAFANA_ADMIN_PASSWORD"] = "generated-by-up-sh"
        argv = [binary, *[a for f in files for a in ("-f", str(f))], sub, *rest]
        res = subprocess.run(argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=LIMIT)
        out = res.stdout + res.stderr
        # It parsed the options and loaded and validated the file, and stopped where it needs the engine.
        assert "Usage:" not in out, f"{block.where}: docker compose {sub} rejects its options\n{out[-3000:]}"
        assert "Error while fetching server API version" in out, f"{block.where}: docker compose {sub}\n{out[-3000:]}"
        self.compose_names(block, files[0], sub, rest)
        self.ran.append(f"{block.where}: docker compose {sub} (parsed and validated; no engine here)")

    def compose_copy(self, compose_file: str) -> Path:
        """A copy of ``compose_file`` (in the page's copy of compose/) that Compose v1 reads."""
        target = self.workdir / compose_file
        doc = yaml.safe_load(target.read_text())
        if not self.compose_doc:
            self.compose_project = doc.get("name", target.parent.name)
            self.compose_doc = doc
        doc.pop("name", None)  # v1 predates the top-level name key
        v1 = target.with_name(target.stem + ".v1.yml")
        v1.write_text(yaml.safe_dump(doc, sort_keys=False))
        return v1

    def compose_names(self, block: Block, copy: Path, sub: str, rest: list[str]) -> None:
        doc: dict[str, Any] = self.compose_doc
        services = doc["services"]
        takes_value = _COMPOSE_VALUE_OPTIONS.get(sub, set())
        positional: list[str] = []
        volumes: list[str] = []
        i = 0
        while i < len(rest):
            arg = rest[i]
            if arg in takes_value:
                if arg in ("-v", "--volume"):
                    volumes.append(rest[i + 1])
                i += 2
                continue
            if arg.startswith("-") and not positional:
                i += 1
                continue
            positional.append(arg)
            i += 1
        if sub in ("exec", "run"):
            names, argv = positional[:1], positional[1:]
        else:
            names, argv = positional, []
        for name in names:
            assert name in services, f"{block.where}: no service {name!r} in the compose file ({sorted(services)})"
        declared = doc.get("volumes", {}) or {}
        for spec in volumes:
            source = spec.split(":")[0]
            if not source.startswith((".", "/")):
                known = {(declared[v] or {}).get("name", f"{self.compose_project}_{v}") for v in declared}
                assert source in known, f"{block.where}: no volume {source!r} ({sorted(known)})"
        for arg in argv:  # a script inside the container must come from a mounted directory of this repository
            if not arg.startswith("/"):
                continue
            for mount in services[names[0]].get("volumes", []):
                src, _, target = str(mount).partition(":")
                target = target.split(":")[0]
                host = copy.parent / src
                if src.startswith(".") and host.is_dir() and arg.startswith(target + "/"):
                    assert (host / arg[len(target) + 1 :]).is_file(), f"{block.where}: {arg} is not in {src}"


# Options that take a value, per docker compose subcommand (the rest are flags).
_COMPOSE_VALUE_OPTIONS = {
    "run": {"-v", "--volume", "-e", "--env", "--entrypoint", "-u", "--user", "-w", "--workdir", "--name", "-p"},
    "exec": {"-e", "--env", "-u", "--user", "-w", "--workdir", "--index"},
    "kill": {"-s", "--signal"},
    "stop": {"-t", "--timeout"},
    "restart": {"-t", "--timeout"},
    "up": {"-t", "--timeout", "--scale"},
    "down": {"-t", "--timeout", "--rmi"},
}


def _installed(block: Block, dist: str) -> None:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise AssertionError(f"{block.where}: {dist!r} is not installed (pyproject.toml test extra)") from None


def _split_and(command: str) -> list[str]:
    """``a && b`` -> ``[a, b]`` (each part is checked on its own rule)."""
    return [part.strip() for part in re.split(r"\s&&\s", command) if part.strip()]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(200 <= resp.status < 300)
    except OSError:
        return False


def _tcp_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _http_text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""
